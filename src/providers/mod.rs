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

use crate::error::TokenError;

/// A missing required setting.
pub(crate) fn missing(provider: &str, field: &str, fix: &'static str) -> TokenError {
    TokenError::configuration(format!("{provider}: `{field}` is not set"), fix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderConfig;

    const SECRET: &str = "Pr0vider-S3cret";

    #[test]
    fn debug_of_builders_and_config_never_shows_the_secret() {
        let shown = [
            format!("{:?}", KontrollePlus::new().client_secret(SECRET)),
            format!("{:#?}", KontrollePlus::new().client_secret(SECRET)),
            format!("{:?}", Kpn::new().client_secret(SECRET)),
            format!("{:#?}", Kpn::new().client_id("id").client_secret(SECRET)),
            format!("{:?}", ScreeningEagle::new().client_secret(SECRET)),
            format!("{:#?}", ScreeningEagle::new().client_secret(SECRET)),
        ];
        for shown in shown {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("sha256"), "{shown}");
        }
        for text in [
            format!(r#"{{"provider":"kpn","client_id":"id","client_secret":"{SECRET}"}}"#),
            format!(
                r#"{{"provider":"kpn","client_id":"id","client_secret":{{"value":"{SECRET}"}}}}"#
            ),
            format!(
                r#"{{"provider":"kpn","client_id":"id","client_secret":{{"token":"{SECRET}"}}}}"#
            ),
        ] {
            let config: ProviderConfig = serde_json::from_str(&text).unwrap();
            let shown = format!("{config:?} {config:#?}");
            assert!(!shown.contains(SECRET), "{shown}");
        }
    }
}
