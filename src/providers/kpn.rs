use std::fmt;

use secrecy::SecretString;

use crate::error::TokenError;
use crate::oauth::{
    ClientAuth, ClientCredentials, ClientCredentialsRequest, GrantTypeIn, Transport,
};
use crate::token::secret_from;

use super::missing;

/// The KPN API Store token endpoint. Sandbox and production use the same endpoint; the
/// credentials (the Sandbox page's, or a project's) decide which you get.
pub const KPN_TOKEN_URL: &str = "https://api-prd.kpn.com/oauth/client_credential/accesstoken";

/// KPN API Store (Apigee).
///
/// - `POST <token URL>?grant_type=client_credentials`: the grant type in the query string;
/// - `client_id` and `client_secret` in the form body;
/// - answers with string-typed JSON (`"expires_in": "3599"`, `"issued_at"` in epoch ms, empty
///   strings for absent values) and an opaque token: no claims check.
///
/// ```
/// use tower_bearer::providers::Kpn;
/// # use tower_bearer::oauth::ServiceTransport;
/// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// # });
///
/// let source = Kpn::new()
///     .client_id("APP_CLIENT_ID")
///     .client_secret(std::env::var("CLIENT_SECRET").unwrap_or_default())
///     .build(ServiceTransport::new(http_client))
///     .unwrap();
/// assert_eq!(source.request().token_url(), "https://api-prd.kpn.com/oauth/client_credential/accesstoken");
/// # let _ = source;
/// ```
#[derive(Clone, Default)]
pub struct Kpn {
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
}

impl Kpn {
    /// An empty configuration, for [`KPN_TOKEN_URL`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Another token URL (a test double, a proxy).
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// The client id (from the Sandbox page, or a project).
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

    /// The token source; fails with a configuration error naming what is missing.
    pub fn build<T: Transport>(self, transport: T) -> Result<ClientCredentials<T>, TokenError> {
        const NAME: &str = "KPN API Store";
        let client_id = self.client_id.ok_or_else(|| {
            missing(
                NAME,
                "client_id",
                "set the client id from the Sandbox page or your project",
            )
        })?;
        let secret = self.client_secret.ok_or_else(|| {
            missing(
                NAME,
                "client_secret",
                "set the client secret (from a secret store)",
            )
        })?;
        let url = self.token_url.as_deref().unwrap_or(KPN_TOKEN_URL);
        let request = ClientCredentialsRequest::new(url)?.grant_type_in(GrantTypeIn::Query);
        let auth = ClientAuth::secret_post(client_id, secret);
        Ok(ClientCredentials::new(request, auth, transport).label(NAME))
    }
}

impl fmt::Debug for Kpn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kpn")
            .field(
                "token_url",
                &crate::oauth::request::redact_userinfo(
                    self.token_url.as_deref().unwrap_or(KPN_TOKEN_URL),
                ),
            )
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}
