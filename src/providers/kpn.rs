use std::fmt;

use super::Provider;
use super::builder_core::{BuilderCore, SecretAs, Spec};
use crate::error::TokenError;
use crate::oauth::{ClientCredentials, GrantTypeIn, Transport};

/// The KPN API Store token endpoint. Sandbox and production use the same endpoint; the
/// credentials (the Sandbox page's, or a project's) decide which you get.
pub const KPN_TOKEN_URL: &str = "https://api-prd.kpn.com/oauth/client_credential/accesstoken";

const SPEC: Spec = Spec {
    provider: Provider::Kpn,
    default_url: Some(KPN_TOKEN_URL),
    below_base: None,
    no_url: ("token_url", "set the token URL"),
    method_from_metadata: false,
    secret_as: SecretAs::Post,
    no_credential: "set the client secret (from a secret store)",
};

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
/// # let client_secret = "from your secret store";
///
/// let source = Kpn::new()
///     .client_id("APP_CLIENT_ID")
///     .client_secret(client_secret)
///     .build(ServiceTransport::new(http_client))
///     .unwrap();
/// assert_eq!(source.request().token_url(), "https://api-prd.kpn.com/oauth/client_credential/accesstoken");
/// # let _ = source;
/// ```
#[derive(Clone, Default)]
pub struct Kpn {
    core: BuilderCore,
}

impl Kpn {
    /// An empty configuration, for [`KPN_TOKEN_URL`].
    ///
    /// ```
    /// use tower_bearer::providers::{KPN_TOKEN_URL, Kpn};
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let source = Kpn::new().client_id("id").client_secret("s")
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// assert_eq!(source.request().token_url(), KPN_TOKEN_URL);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    shared_setters!();

    /// The token source; fails with a configuration error naming the setting that is missing
    /// or unusable (its source a [`SettingError`](super::SettingError)).
    ///
    /// ```
    /// use tower_bearer::providers::Kpn;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    /// let source = Kpn::new().client_id("id").client_secret("s")
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// // How it will send: `grant_type` in the query, the credentials in the body.
    /// let (request, auth) = (source.request(), source.auth());
    /// let http = request.http_request(&auth.credentials(request.token_url()).await.unwrap()).unwrap();
    /// assert_eq!(http.uri().query(), Some("grant_type=client_credentials"));
    /// assert_eq!(http.body(), b"client_id=id&client_secret=s");
    /// # }
    /// ```
    pub fn build<T: Transport>(self, transport: T) -> Result<ClientCredentials<T>, TokenError> {
        let mut parts = self.core.finish(&SPEC)?;
        parts.request = parts.request.grant_type_in(GrantTypeIn::Query);
        Ok(parts.into_source(transport))
    }
}

impl fmt::Debug for Kpn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Kpn");
        self.core.debug_fields(&mut d, "");
        d.finish()
    }
}
