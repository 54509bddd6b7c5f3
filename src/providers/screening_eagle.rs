use std::fmt;

use secrecy::SecretString;

use crate::error::TokenError;
use crate::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, Transport};
use crate::token::secret_from;

use super::missing;

/// Path of the Screening Eagle ID token endpoint below its base URL.
pub const SCREENING_EAGLE_TOKEN_PATH: &str = "/api/id/v1/auth/token";

/// Screening Eagle ID (`POST /api/id/v1/auth/token`).
///
/// - client authentication: `Authorization: Basic base64(client_id:client_secret)`, raw as the
///   documentation shows (RFC 7617, no form-encoding; a client id with `:` is refused);
/// - scopes: space-separated, e.g. `openid email profile inspect`;
/// - the answer's `id_token` and `refresh_token` are kept on the [`Token`](crate::Token);
/// - errors come as `{"error", "errorDescription"}` and are read as such.
///
/// ```
/// use tower_bearer::providers::ScreeningEagle;
/// # use tower_bearer::oauth::ServiceTransport;
/// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// # });
///
/// let source = ScreeningEagle::new()
///     .base_url("https://id.screeningeagle.com")
///     .client_id("my-client")
///     .client_secret(std::env::var("CLIENT_SECRET").unwrap_or_default())
///     .scopes(["openid", "email", "profile", "inspect"])
///     .build(ServiceTransport::new(http_client))
///     .unwrap();
/// # let _ = source;
/// ```
#[derive(Clone, Default)]
pub struct ScreeningEagle {
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    scopes: Vec<String>,
}

impl ScreeningEagle {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The service's base URL; the token URL is `<base>/api/id/v1/auth/token`.
    pub fn base_url(mut self, base: impl AsRef<str>) -> Self {
        let base = base.as_ref().trim_end_matches('/');
        self.token_url = Some(format!("{base}{SCREENING_EAGLE_TOKEN_PATH}"));
        self
    }

    /// The full token URL, instead of [`base_url`](Self::base_url).
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// The client id.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The client secret (held as a secret: wiped on drop, never shown).
    pub fn client_secret(self, secret: impl Into<String>) -> Self {
        self.secret(secret_from(secret.into()))
    }

    pub(crate) fn secret(mut self, secret: SecretString) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// Requested scopes (a string with spaces is several).
    pub fn scopes<I>(mut self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.scopes
            .extend(scopes.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// The token source; fails with a configuration error naming what is missing.
    pub fn build<T: Transport>(self, transport: T) -> Result<ClientCredentials<T>, TokenError> {
        const NAME: &str = "Screening Eagle ID";
        let token_url = self.token_url.ok_or_else(|| {
            missing(
                NAME,
                "base_url",
                "set the base URL (or the full token URL) of Screening Eagle ID",
            )
        })?;
        let client_id = self
            .client_id
            .ok_or_else(|| missing(NAME, "client_id", "set the client id"))?;
        let secret = self.client_secret.ok_or_else(|| {
            missing(
                NAME,
                "client_secret",
                "set the client secret (from a secret store)",
            )
        })?;
        let request = ClientCredentialsRequest::new(&token_url)?.scopes(self.scopes);
        let auth = ClientAuth::basic_raw(client_id, secret)?;
        Ok(ClientCredentials::new(request, auth, transport).label(NAME))
    }
}

impl fmt::Debug for ScreeningEagle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScreeningEagle")
            .field(
                "token_url",
                &self
                    .token_url
                    .as_deref()
                    .map(crate::oauth::request::redact_userinfo),
            )
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .finish()
    }
}
