//! The providers we support, each a [`ClientCredentials`](crate::oauth::ClientCredentials)
//! token source set up in a few lines with that provider's own defaults:
//!
//! - [`KontrollePlus`]: Entra ID-style; `<app-id-uri>/.default`, secret or certificate,
//!   claims checked before first use (`aud`, `roles` contains `ProviderApi.Access`, `exp`);
//! - [`ScreeningEagle`]: HTTP Basic (raw RFC 7617), space-separated scopes, id and refresh
//!   tokens kept;
//! - [`Kpn`]: KPN API Store (Apigee): `grant_type` in the query string, string-typed JSON.
//!
//! Any other RFC 6749 server: use [`ClientCredentials`](crate::oauth::ClientCredentials)
//! directly.

mod kontrolle_plus;
mod kpn;
mod screening_eagle;

pub use kontrolle_plus::{KontrollePlus, PROVIDER_API_ACCESS_ROLE};
pub use kpn::{KPN_TOKEN_URL, Kpn};
pub use screening_eagle::{SCREENING_EAGLE_TOKEN_PATH, ScreeningEagle};

use crate::error::{TokenError, TokenErrorKind};

/// A missing required setting.
pub(crate) fn missing(provider: &str, field: &str, fix: &'static str) -> TokenError {
    TokenError::new(
        TokenErrorKind::Configuration,
        format!("{provider}: `{field}` is not set"),
    )
    .with_hint(fix)
}
