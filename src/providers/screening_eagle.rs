use std::fmt;

use super::Provider;
use super::builder_core::{BuilderCore, SecretAs, Spec};
use crate::error::TokenError;
use crate::oauth::{ClientCredentials, Transport};

/// Path of the Screening Eagle ID token endpoint below its base URL.
pub const SCREENING_EAGLE_TOKEN_PATH: &str = "/api/id/v1/auth/token";

const SPEC: Spec = Spec {
    provider: Provider::ScreeningEagle,
    default_url: None,
    below_base: Some(("base_url", SCREENING_EAGLE_TOKEN_PATH)),
    no_url: (
        "base_url",
        "set the base URL (or the full token URL) of Screening Eagle ID",
    ),
    method_from_metadata: false,
    secret_as: SecretAs::BasicRaw,
    no_credential: "set the client secret (from a secret store)",
};

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
/// # let client_secret = "from your secret store";
///
/// let source = ScreeningEagle::new()
///     .base_url("https://id.screeningeagle.com")
///     .client_id("my-client")
///     .client_secret(client_secret)
///     .scopes(["openid", "email", "profile", "inspect"])
///     .build(ServiceTransport::new(http_client))
///     .unwrap();
/// assert_eq!(source.request().token_url(), "https://id.screeningeagle.com/api/id/v1/auth/token");
/// ```
#[derive(Clone, Default)]
pub struct ScreeningEagle {
    core: BuilderCore,
    scopes: Vec<String>,
}

impl ScreeningEagle {
    /// An empty configuration.
    ///
    /// ```
    /// use tower_bearer::providers::ScreeningEagle;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let err = ScreeningEagle::new().client_id("id").client_secret("s")
    ///     .build(ServiceTransport::new(http_client)).unwrap_err();
    /// assert!(err.to_string().contains("`base_url` is not set"), "{err}");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    shared_setters!();

    /// The service's base URL; the token URL is `<base>/api/id/v1/auth/token` (formed at
    /// `build()`; a [`token_url`](Self::token_url) wins over it).
    ///
    /// ```
    /// use tower_bearer::providers::ScreeningEagle;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let source = ScreeningEagle::new().base_url("https://id.screeningeagle.com/")
    ///     .client_id("id").client_secret("s")
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// assert_eq!(source.request().token_url(), "https://id.screeningeagle.com/api/id/v1/auth/token");
    /// ```
    pub fn base_url(mut self, base: impl AsRef<str>) -> Self {
        self.core.base_url = Some(base.as_ref().to_owned());
        self
    }

    /// Requested scopes (a string with spaces is several).
    ///
    /// ```
    /// use tower_bearer::providers::ScreeningEagle;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let source = ScreeningEagle::new().base_url("https://id.screeningeagle.com")
    ///     .client_id("id").client_secret("s")
    ///     .scopes(["openid email", "inspect"])
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// assert_eq!(source.request().requested_scopes(), ["openid", "email", "inspect"]);
    /// ```
    pub fn scopes<I>(mut self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.scopes
            .extend(scopes.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// The token source; fails with a configuration error naming the setting that is missing
    /// or unusable (its source a [`SettingError`](super::SettingError)).
    ///
    /// ```
    /// use tower_bearer::providers::ScreeningEagle;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let eagle = || ScreeningEagle::new().base_url("https://id.screeningeagle.com").client_secret("s");
    /// let source = eagle().client_id("my-client").build(ServiceTransport::new(http_client.clone())).unwrap();
    /// assert_eq!(source.auth().method(), "client_secret_basic");
    /// // Raw HTTP Basic cannot carry a `:` in the client id: refused when built.
    /// assert!(eagle().client_id("urn:client").build(ServiceTransport::new(http_client)).is_err());
    /// ```
    pub fn build<T: Transport>(self, transport: T) -> Result<ClientCredentials<T>, TokenError> {
        let parts = self.core.finish(&SPEC)?.scopes("scope", self.scopes)?;
        Ok(parts.into_source(transport))
    }
}

impl fmt::Debug for ScreeningEagle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ScreeningEagle");
        self.core.debug_fields(&mut d, "base_url");
        d.field("scopes", &self.scopes).finish()
    }
}
