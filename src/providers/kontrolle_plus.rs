use std::fmt;

use super::builder_core::{BuilderCore, SecretAs, Spec};
use super::{Provider, invalid, missing};
use crate::error::TokenError;
use crate::oauth::{ClaimsCheck, ClientCredentials, Transport};

/// The app role the Kontrolle+ Provider API requires.
pub const PROVIDER_API_ACCESS_ROLE: &str = "ProviderApi.Access";

const SPEC: Spec = Spec {
    provider: Provider::KontrollePlus,
    default_url: None,
    below_base: Some(("authority", "/oauth2/v2.0/token")),
    no_url: (
        "token_url",
        "set the token endpoint, or the authority (https://login.microsoftonline.com/<tenant>)",
    ),
    method_from_metadata: false,
    secret_as: SecretAs::Post,
    no_credential: "set the client secret (from a secret store), or a certificate",
};

/// Kontrolle+ Provider API (Microsoft Entra ID v2 endpoints).
///
/// - token URL: given, or `<authority>/oauth2/v2.0/token`;
/// - scope: exactly `<app-id-uri>/.default`;
/// - client authentication: the secret in the form body (`client_secret_post`), or a
///   certificate (`private_key_jwt`, feature `private-key-jwt`);
/// - before first use each token's claims are checked (unless turned off): `aud` is the
///   expected audience (by default the app id URI; add the application id for v2 tokens),
///   `roles` contains `ProviderApi.Access`, `exp` is in the future.
///
/// ```
/// use tower_bearer::providers::KontrollePlus;
/// # use tower_bearer::oauth::ServiceTransport;
/// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// # });
/// # let client_secret = "from your secret store";
///
/// let source = KontrollePlus::new()
///     .authority("https://login.microsoftonline.com/contoso.onmicrosoft.com")
///     .client_id("6731de76-14a6-49ae-97bc-6eba6914391e")
///     .client_secret(client_secret)
///     .app_id_uri("api://kontrolle-plus")
///     .build(ServiceTransport::new(http_client))
///     .unwrap();
/// assert_eq!(source.request().requested_scopes(), ["api://kontrolle-plus/.default"]);
/// ```
#[derive(Clone, Default)]
pub struct KontrollePlus {
    core: BuilderCore,
    app_id_uri: Option<String>,
    scopes: Vec<String>,
    audiences: Vec<String>,
    role: Option<String>,
    check_claims: Option<bool>,
}

impl KontrollePlus {
    /// An empty configuration.
    ///
    /// ```
    /// use tower_bearer::providers::KontrollePlus;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let err = KontrollePlus::new().build(ServiceTransport::new(http_client)).unwrap_err();
    /// assert!(err.hint().unwrap().contains("login.microsoftonline.com"), "{err}");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    shared_setters!();

    /// The authority base URL (`https://login.microsoftonline.com/<tenant>`); the token URL is
    /// then `<authority>/oauth2/v2.0/token` (formed at `build()`; a
    /// [`token_url`](Self::token_url) wins over it).
    ///
    /// ```
    /// use tower_bearer::providers::KontrollePlus;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let source = KontrollePlus::new()
    ///     .authority("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    ///     .client_id("id").client_secret("s").app_id_uri("api://kontrolle-plus")
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// assert_eq!(source.request().token_url(),
    ///     "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    /// ```
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.core.base_url = Some(authority.into());
        self
    }

    /// Authenticates with a certificate-based client assertion (`private_key_jwt`) instead of
    /// a secret; give the signer its certificate so the header carries `x5t#S256`.
    ///
    /// ```
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    /// use tower_bearer::providers::KontrollePlus;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// // The key and the certificate registered with Entra ID (from your vault).
    /// let key = std::fs::read_to_string("tests/fixtures/rsa-pkcs8.pem").unwrap();
    /// let cert = std::fs::read_to_string("tests/fixtures/rsa-cert.pem").unwrap();
    /// let signer = JwtSigner::from_pem(&key, Algorithm::Rs256).unwrap().with_certificate_pem(&cert).unwrap();
    /// let source = KontrollePlus::new()
    ///     .authority("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    ///     .client_id("id").certificate(signer).app_id_uri("api://kontrolle-plus")
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// assert_eq!(source.auth().method(), "private_key_jwt");
    /// ```
    #[cfg(feature = "private-key-jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
    pub fn certificate(mut self, signer: crate::oauth::assertion::JwtSigner) -> Self {
        self.core.credential = Some(super::builder_core::Credential::Certificate(
            std::sync::Arc::new(signer),
        ));
        self
    }

    /// The Provider API's application id URI; the scope is `<app-id-uri>/.default`.
    ///
    /// ```
    /// use tower_bearer::providers::KontrollePlus;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let source = KontrollePlus::new()
    ///     .authority("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    ///     .client_id("id").client_secret("s")
    ///     .app_id_uri("api://kontrolle-plus")
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// assert_eq!(source.request().requested_scopes(), ["api://kontrolle-plus/.default"]);
    /// ```
    pub fn app_id_uri(mut self, uri: impl Into<String>) -> Self {
        self.app_id_uri = Some(uri.into());
        self
    }

    /// The scope itself, `<app-id-uri>/.default`, instead of [`app_id_uri`](Self::app_id_uri)
    /// (as a runbook writes it). `build()` accepts exactly one such scope.
    ///
    /// ```
    /// use tower_bearer::providers::KontrollePlus;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let kontrolle = || KontrollePlus::new()
    ///     .authority("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    ///     .client_id("id").client_secret("s");
    /// let source = kontrolle().scope("api://kontrolle-plus/.default")
    ///     .build(ServiceTransport::new(http_client.clone())).unwrap();
    /// assert_eq!(source.request().requested_scopes(), ["api://kontrolle-plus/.default"]);
    /// assert!(kontrolle().scope("api://kontrolle-plus/read").build(ServiceTransport::new(http_client)).is_err());
    /// ```
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.scopes
            .extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self
    }

    /// An accepted `aud` (repeatable). Default: the app id URI. Entra v2 tokens carry the
    /// application id instead: add it here.
    ///
    /// ```
    /// use tower_bearer::providers::KontrollePlus;
    /// use tower_bearer::TokenSource;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // `idp` answers with an Entra v2 token: its `aud` is the application id.
    /// # let jwt = "eyJhbGciOiJub25lIn0.eyJhdWQiOiI2NzMxZGU3Ni0xNGE2LTQ5YWUtOTdiYy02ZWJhNjkxNDM5MWUiLCJyb2xlcyI6WyJQcm92aWRlckFwaS5BY2Nlc3MiXX0.";
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let idp = tower::service_fn(move |_r: http::Request<http_body_util::Full<bytes::Bytes>>| async move {
    /// #     let answer = format!(r#"{{"access_token":"{jwt}","token_type":"Bearer","expires_in":3600}}"#);
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from(answer))))
    /// # });
    /// let kontrolle = || KontrollePlus::new()
    ///     .authority("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    ///     .client_id("6731de76-14a6-49ae-97bc-6eba6914391e")
    ///     .client_secret("from your secret store")
    ///     .app_id_uri("api://kontrolle-plus");
    /// let source = kontrolle().build(ServiceTransport::new(idp.clone())).unwrap();
    /// assert!(source.token().await.is_err(), "not the app id URI");
    /// let source = kontrolle().expected_audience("6731de76-14a6-49ae-97bc-6eba6914391e")
    ///     .build(ServiceTransport::new(idp)).unwrap();
    /// assert!(source.token().await.is_ok());
    /// # }
    /// ```
    pub fn expected_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The role every token must carry. Default: [`PROVIDER_API_ACCESS_ROLE`].
    ///
    /// ```
    /// use tower_bearer::providers::KontrollePlus;
    /// use tower_bearer::TokenSource;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // `idp` answers with a token whose `roles` are ["Reports.Read"].
    /// # let jwt = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJhcGk6Ly9rb250cm9sbGUtcGx1cyIsInJvbGVzIjpbIlJlcG9ydHMuUmVhZCJdfQ.";
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let idp = tower::service_fn(move |_r: http::Request<http_body_util::Full<bytes::Bytes>>| async move {
    /// #     let answer = format!(r#"{{"access_token":"{jwt}","token_type":"Bearer","expires_in":3600}}"#);
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from(answer))))
    /// # });
    /// let kontrolle = || KontrollePlus::new()
    ///     .authority("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    ///     .client_id("6731de76-14a6-49ae-97bc-6eba6914391e")
    ///     .client_secret("from your secret store")
    ///     .app_id_uri("api://kontrolle-plus");
    /// let source = kontrolle().build(ServiceTransport::new(idp.clone())).unwrap();
    /// let err = source.token().await.unwrap_err();
    /// assert!(err.to_string().contains("`ProviderApi.Access`"), "{err}");
    /// let source = kontrolle().required_role("Reports.Read").build(ServiceTransport::new(idp)).unwrap();
    /// assert!(source.token().await.is_ok());
    /// # }
    /// ```
    pub fn required_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Whether to check each token's claims before first use. Default: yes.
    ///
    /// ```
    /// use tower_bearer::providers::KontrollePlus;
    /// use tower_bearer::TokenSource;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // `idp` answers with an opaque token: no claims to read.
    /// # let jwt = "opaque-token-value";
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let idp = tower::service_fn(move |_r: http::Request<http_body_util::Full<bytes::Bytes>>| async move {
    /// #     let answer = format!(r#"{{"access_token":"{jwt}","token_type":"Bearer","expires_in":3600}}"#);
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from(answer))))
    /// # });
    /// let kontrolle = || KontrollePlus::new()
    ///     .authority("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    ///     .client_id("6731de76-14a6-49ae-97bc-6eba6914391e")
    ///     .client_secret("from your secret store")
    ///     .app_id_uri("api://kontrolle-plus");
    /// assert!(kontrolle().build(ServiceTransport::new(idp.clone())).unwrap().token().await.is_err());
    /// let source = kontrolle().check_claims(false).build(ServiceTransport::new(idp)).unwrap();
    /// assert!(source.token().await.is_ok());
    /// # }
    /// ```
    pub fn check_claims(mut self, check: bool) -> Self {
        self.check_claims = Some(check);
        self
    }

    /// The token source; fails with a configuration error naming the setting that is missing
    /// or unusable (its source a [`SettingError`](super::SettingError)).
    ///
    /// ```
    /// use std::error::Error;
    /// use tower_bearer::providers::{KontrollePlus, SettingError};
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let err = KontrollePlus::new()
    ///     .authority("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    ///     .client_id("id").client_secret("s")
    ///     .build(ServiceTransport::new(http_client)).unwrap_err();
    /// let setting = err.source().unwrap().downcast_ref::<SettingError>().unwrap();
    /// assert_eq!((setting.setting(), setting.problem()), ("app_id_uri", "is not set"));
    /// ```
    pub fn build<T: Transport>(self, transport: T) -> Result<ClientCredentials<T>, TokenError> {
        let mut parts = self.core.finish(&SPEC)?;
        let (setting, app_id_uri) = match (self.app_id_uri, self.scopes.as_slice()) {
            (Some(uri), []) => ("app_id_uri", uri),
            (None, [scope]) if scope.ends_with("/.default") => ("scope", scope.clone()),
            (None, []) => {
                return Err(missing(
                    Provider::KontrollePlus,
                    "app_id_uri",
                    "set the Provider API's app id URI (the scope is `<app-id-uri>/.default`)",
                ));
            }
            (app_id_uri, scopes) => {
                return Err(invalid(
                    Provider::KontrollePlus,
                    "scope",
                    format!(
                        "must be exactly one `<app-id-uri>/.default`, got {:?}{}",
                        scopes,
                        if app_id_uri.is_some() {
                            " and an app id URI"
                        } else {
                            ""
                        }
                    ),
                    "set the app id URI, or the one scope `<app-id-uri>/.default`",
                ));
            }
        };
        let app_id_uri = app_id_uri
            .trim_end_matches("/.default")
            .trim_end_matches('/')
            .to_owned();
        if app_id_uri.split_whitespace().nth(1).is_some() {
            return Err(invalid(
                Provider::KontrollePlus,
                setting,
                "holds a space",
                "set the one app id URI, without spaces",
            ));
        }
        parts = parts.scopes(setting, [format!("{app_id_uri}/.default")])?;
        let check_claims = self.check_claims.unwrap_or(true);
        let mut source = parts.into_source(transport);
        if check_claims {
            let mut check = ClaimsCheck::new().require_role(
                self.role
                    .unwrap_or_else(|| PROVIDER_API_ACCESS_ROLE.to_owned()),
            );
            if self.audiences.is_empty() {
                check = check.audience(app_id_uri);
            }
            for audience in self.audiences {
                check = check.audience(audience);
            }
            source = source.check_claims(check);
        }
        Ok(source)
    }
}

impl fmt::Debug for KontrollePlus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("KontrollePlus");
        self.core.debug_fields(&mut d, "authority");
        d.field("app_id_uri", &self.app_id_uri)
            .field("scopes", &self.scopes)
            .field("audiences", &self.audiences)
            .field("role", &self.role)
            .field("check_claims", &self.check_claims)
            .finish()
    }
}
