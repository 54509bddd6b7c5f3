use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::builder_core::{BuilderCore, SecretAs, Spec};
use super::{Provider, invalid};
use crate::error::TokenError;
use crate::oauth::{ClaimsCheck, ClientCredentials, Transport};

/// How the client authenticates at the token endpoint (RFC 7591 `token_endpoint_auth_method`
/// names).
///
/// ```
/// use tower_bearer::providers::AuthMethod;
///
/// assert_eq!("client_secret_post".parse::<AuthMethod>().unwrap(), AuthMethod::ClientSecretPost);
/// assert!("client_secret_jwt".parse::<AuthMethod>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// The client id and secret in an HTTP Basic header, RFC 6749 §2.3.1 encoding.
    ClientSecretBasic,
    /// The client id and secret in the form body.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523; feature `private-key-jwt`).
    PrivateKeyJwt,
}

impl AuthMethod {
    /// The method's RFC 7591 name: `client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt`.
    ///
    /// ```
    /// use tower_bearer::providers::AuthMethod;
    ///
    /// assert_eq!(AuthMethod::PrivateKeyJwt.as_str(), "private_key_jwt");
    /// assert_eq!(AuthMethod::ClientSecretBasic.to_string(), "client_secret_basic");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMethod {
    type Err = TokenError;

    /// Reads [`as_str`](Self::as_str)'s names.
    fn from_str(name: &str) -> Result<Self, TokenError> {
        [
            Self::ClientSecretBasic,
            Self::ClientSecretPost,
            Self::PrivateKeyJwt,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
        .ok_or_else(|| {
            TokenError::configuration(
                format!(
                    "`{}` is not a client authentication method",
                    crate::error::sanitize(name)
                ),
                "use client_secret_basic, client_secret_post or private_key_jwt",
            )
        })
    }
}

/// Any RFC 6749 authorization server: the client-credentials flow in one expression, with
/// the same shared settings and checks as the providers' builders.
///
/// - where: [`token_url`](Self::token_url), or [`issuer`](Self::issuer) to discover the token
///   endpoint from the server's metadata (RFC 8414, or OpenID Connect Discovery) at the first
///   token request;
/// - who: [`client_id`](Self::client_id) and [`client_secret`](Self::client_secret) (or a
///   `private_key`, feature `private-key-jwt`), sent as
///   [`auth_method`](Self::auth_method) says; by default `client_secret_basic`, or, when
///   discovering, `client_secret_post` if the metadata says the endpoint does not take Basic;
/// - what: [`scope`](Self::scope), [`resource`](Self::resource) (RFC 8707),
///   [`audience`](Self::audience);
/// - how: through the transport given to [`build`](Self::build) (timeouts, attempts and the
///   default lifetime are set on the [`ClientCredentials`] it returns).
///
/// `build()` checks everything it can without the network (a URL that is not `https://` nor
/// loopback `http://` unless [`allow_insecure_http`](Self::allow_insecure_http), an empty
/// client id or secret, a scope RFC 6749 §3.3 does not allow, a method that does not fit the
/// credential) and fails with a configuration error naming the setting and the fix.
///
/// ```
/// use tower_bearer::providers::{AuthMethod, Generic};
/// # use tower_bearer::oauth::ServiceTransport;
/// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// # });
/// # let client_secret = "from your secret store";
///
/// let source = Generic::new()
///     .token_url("https://login.partner.example/oauth2/token")
///     .client_id("client-7")
///     .client_secret(client_secret)
///     .auth_method(AuthMethod::ClientSecretPost)
///     .scope("orders.read orders.write")
///     .audience("https://api.partner.example")
///     .build(ServiceTransport::new(http_client.clone()))
///     .unwrap();
/// assert_eq!(source.request().requested_scopes(), ["orders.read", "orders.write"]);
///
/// // The token endpoint from the issuer's metadata, found at the first token request.
/// let source = Generic::new()
///     .issuer("https://login.partner.example/tenant-7")
///     .client_id("client-7")
///     .client_secret(client_secret)
///     .build(ServiceTransport::new(http_client.clone()))
///     .unwrap();
/// assert_eq!(source.issuer(), Some("https://login.partner.example/tenant-7"));
///
/// // Checked when built: the error names the setting and the fix.
/// let err = Generic::new()
///     .token_url("https://login.partner.example/oauth2/token")
///     .client_id("")
///     .client_secret(client_secret)
///     .build(ServiceTransport::new(http_client))
///     .unwrap_err();
/// assert_eq!(err.to_string(), "token error (configuration): OAuth 2.0: `client_id` is empty; \
///     hint: set the client id the provider gave you");
/// ```
#[derive(Clone, Default)]
pub struct Generic {
    core: BuilderCore,
    method: Option<AuthMethod>,
    scopes: Vec<String>,
    resources: Vec<String>,
    audience: Option<String>,
    claims: Option<ClaimsCheck>,
}

impl Generic {
    /// An empty configuration.
    ///
    /// ```
    /// use tower_bearer::providers::Generic;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let err = Generic::new().build(ServiceTransport::new(http_client)).unwrap_err();
    /// assert!(err.hint().unwrap().contains("token endpoint URL, or the issuer"), "{err}");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    shared_setters!();

    /// The authorization server's issuer identifier, instead of a token URL: the token
    /// endpoint is read from its metadata at the first token request, through the same
    /// transport, from `<origin>/.well-known/oauth-authorization-server<path>` (RFC 8414
    /// §3.1), or else `<issuer>/.well-known/openid-configuration`. The metadata's `issuer`
    /// must be exactly this one (RFC 8414 §3.3), its token endpoint `https://` (as the token
    /// URL), and its `token_endpoint_auth_methods_supported`, if listed, must include the
    /// method. Found once; a failed discovery fails that fetch with a typed error and is
    /// tried again at the next (after the cache's backoff).
    ///
    /// ```
    /// use tower_bearer::providers::Generic;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let source = Generic::new()
    ///     .issuer("https://login.partner.example/tenant-7")
    ///     .client_id("client-7")
    ///     .client_secret("secret")
    ///     .build(ServiceTransport::new(http_client))
    ///     .unwrap();
    /// assert_eq!(source.issuer(), Some("https://login.partner.example/tenant-7"));
    /// ```
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.core.issuer = Some(issuer.into());
        self
    }

    /// Authenticates with a `private_key_jwt` assertion signed by this key, instead of a
    /// secret.
    ///
    /// ```
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    /// use tower_bearer::providers::Generic;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let key = std::fs::read_to_string("tests/fixtures/ec-pkcs8.pem").unwrap(); // from your vault
    /// let source = Generic::new()
    ///     .token_url("https://as.example/oauth2/token")
    ///     .client_id("client-7")
    ///     .private_key(JwtSigner::from_pem(&key, Algorithm::Es256).unwrap())
    ///     .build(ServiceTransport::new(http_client))
    ///     .unwrap();
    /// assert_eq!(source.auth().method(), "private_key_jwt");
    /// ```
    #[cfg(feature = "private-key-jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
    pub fn private_key(mut self, signer: crate::oauth::assertion::JwtSigner) -> Self {
        self.core.credential = Some(super::builder_core::Credential::Certificate(
            std::sync::Arc::new(signer),
        ));
        self
    }

    /// How the client authenticates. Default: `client_secret_basic` with a secret (when
    /// discovering: `client_secret_post` if the endpoint does not take Basic),
    /// `private_key_jwt` with a key.
    ///
    /// ```
    /// use tower_bearer::providers::{AuthMethod, Generic};
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let generic = || Generic::new().token_url("https://as.example/token").client_id("id").client_secret("s");
    /// let source = generic().auth_method(AuthMethod::ClientSecretPost)
    ///     .build(ServiceTransport::new(http_client.clone())).unwrap();
    /// assert_eq!(source.auth().method(), "client_secret_post");
    /// // A secret cannot make a private_key_jwt assertion: refused when built.
    /// assert!(generic().auth_method(AuthMethod::PrivateKeyJwt).build(ServiceTransport::new(http_client)).is_err());
    /// ```
    pub fn auth_method(mut self, method: AuthMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Asks for a scope (repeatable; a string with spaces is several).
    ///
    /// ```
    /// use tower_bearer::providers::Generic;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let source = Generic::new().token_url("https://as.example/token").client_id("id").client_secret("s")
    ///     .scope("orders.read orders.write")
    ///     .scope("invoices.read")
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// assert_eq!(source.request().requested_scopes(), ["orders.read", "orders.write", "invoices.read"]);
    /// ```
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.scopes.push(scope.as_ref().to_owned());
        self
    }

    /// Asks for several scopes.
    ///
    /// ```
    /// use tower_bearer::providers::Generic;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let source = Generic::new().token_url("https://as.example/token").client_id("id").client_secret("s")
    ///     .scopes(["orders.read", "invoices.read"])
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// assert_eq!(source.request().requested_scopes(), ["orders.read", "invoices.read"]);
    /// ```
    pub fn scopes<I>(self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        scopes.into_iter().fold(self, |b, s| b.scope(s))
    }

    /// Asks for a token for this resource (RFC 8707; repeatable).
    ///
    /// ```
    /// use tower_bearer::providers::Generic;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let source = Generic::new().token_url("https://as.example/token").client_id("id").client_secret("s")
    ///     .resource("https://orders.example")
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// assert!(format!("{:?}", source.request()).contains(r#"resources: ["https://orders.example"]"#));
    /// ```
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Asks for a token for this audience (the `audience` parameter of Auth0 and others).
    ///
    /// ```
    /// use tower_bearer::providers::Generic;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let source = Generic::new().token_url("https://tenant.auth0.example/oauth/token")
    ///     .client_id("id").client_secret("s")
    ///     .audience("https://orders.example")
    ///     .build(ServiceTransport::new(http_client)).unwrap();
    /// assert!(format!("{:?}", source.request()).contains(r#"audience: Some("https://orders.example")"#));
    /// ```
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Checks each token's claims before first use (see [`ClaimsCheck`]).
    ///
    /// ```
    /// use tower_bearer::oauth::ClaimsCheck;
    /// use tower_bearer::providers::Generic;
    /// use tower_bearer::TokenSource;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // `idp` answers with a JWT whose `aud` is api://kontrolle-plus.
    /// # let jwt = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJhcGk6Ly9rb250cm9sbGUtcGx1cyIsInJvbGVzIjpbIlByb3ZpZGVyQXBpLkFjY2VzcyJdfQ.";
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let idp = tower::service_fn(move |_r: http::Request<http_body_util::Full<bytes::Bytes>>| async move {
    /// #     let answer = format!(r#"{{"access_token":"{jwt}","token_type":"Bearer","expires_in":3600}}"#);
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from(answer))))
    /// # });
    /// let source = Generic::new().token_url("https://as.example/token").client_id("id").client_secret("s")
    ///     .check_claims(ClaimsCheck::new().audience("api://orders"))
    ///     .build(ServiceTransport::new(idp)).unwrap();
    /// let err = source.token().await.unwrap_err();
    /// assert!(err.to_string().contains("claims check failed: `aud`"), "{err}");
    /// # }
    /// ```
    pub fn check_claims(mut self, check: ClaimsCheck) -> Self {
        self.claims = Some(check);
        self
    }

    /// The token source; fails with a configuration error naming the setting that is missing
    /// or unusable (its source a [`SettingError`](super::SettingError)).
    ///
    /// ```
    /// use tower_bearer::providers::Generic;
    /// use tower_bearer::TokenErrorKind;
    /// # use tower_bearer::oauth::ServiceTransport;
    /// # let http_client = tower::service_fn(|_r: http::Request<http_body_util::Full<bytes::Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
    /// # });
    ///
    /// let err = Generic::new().token_url("https://as.example/token").client_id("id")
    ///     .build(ServiceTransport::new(http_client)).unwrap_err();
    /// assert_eq!(err.kind(), TokenErrorKind::Configuration);
    /// assert!(err.to_string().contains("`client_secret` is not set"), "{err}");
    /// ```
    pub fn build<T: Transport>(self, transport: T) -> Result<ClientCredentials<T>, TokenError> {
        use super::builder_core::Credential;
        let keyed = !matches!(self.core.credential, None | Some(Credential::Secret(_)));
        let secret = matches!(self.core.credential, Some(Credential::Secret(_)));
        match self.method {
            Some(AuthMethod::PrivateKeyJwt) if secret => {
                return Err(invalid(
                    Provider::Generic,
                    "auth_method",
                    "is private_key_jwt, but a client secret is set",
                    if cfg!(feature = "private-key-jwt") {
                        "set the private key instead of the secret, or choose \
                         client_secret_basic or client_secret_post"
                    } else {
                        "choose client_secret_basic or client_secret_post (private_key_jwt \
                         needs feature `private-key-jwt` and a private key)"
                    },
                ));
            }
            Some(method @ (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost))
                if keyed =>
            {
                return Err(invalid(
                    Provider::Generic,
                    "auth_method",
                    format!("is {method}, but a private key is set"),
                    "set a client secret instead of the key, or choose private_key_jwt",
                ));
            }
            _ => {}
        }
        let spec = Spec {
            provider: Provider::Generic,
            default_url: None,
            below_base: None,
            no_url: (
                "token_url",
                "set the token endpoint URL, or the issuer to discover it from",
            ),
            secret_as: match self.method {
                Some(AuthMethod::ClientSecretPost) => SecretAs::Post,
                _ => SecretAs::Basic,
            },
            method_from_metadata: self.method.is_none(),
            no_credential: if cfg!(feature = "private-key-jwt") {
                "set the client secret (from a secret store), or a private key"
            } else {
                "set the client secret (from a secret store)"
            },
        };
        let mut parts = self.core.finish(&spec)?.scopes("scope", &self.scopes)?;
        for resource in self.resources {
            parts.request = parts.request.resource(resource);
        }
        if let Some(audience) = self.audience {
            parts.request = parts.request.audience(audience);
        }
        let source = parts.into_source(transport);
        Ok(match self.claims {
            Some(check) => source.check_claims(check),
            None => source,
        })
    }
}

impl fmt::Debug for Generic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Generic");
        self.core.debug_fields(&mut d, "");
        d.field("auth_method", &self.method)
            .field("scopes", &self.scopes)
            .field("resources", &self.resources)
            .field("audience", &self.audience)
            .field("claims", &self.claims)
            .finish()
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;
    use crate::TokenErrorKind;
    use crate::oauth::{ClientAuth, ClientCredentialsRequest};

    /// A transport that is never called: a store key needs no request.
    struct Never;

    impl Transport for Never {
        async fn send(
            &self,
            _: http::Request<Vec<u8>>,
        ) -> Result<http::Response<bytes::Bytes>, TokenError> {
            Err(TokenError::new(TokenErrorKind::Other, "not sent"))
        }
    }

    const URL: &str = "https://login.partner.example/oauth2/token";
    const FLEET: [u8; 32] = *b"store-key-test-fleet-secret-32by";

    /// The builder asks for the same tokens as the flow put together by hand, so the fleet's
    /// replicas built either way share their tokens; an issuer to discover from is another key.
    #[test]
    fn the_builder_and_the_flow_by_hand_share_a_store_key() {
        let by_hand = ClientCredentials::new(
            ClientCredentialsRequest::new(URL)
                .unwrap()
                .scope("api.read api.write"),
            ClientAuth::client_secret_basic("client-7f3a", "Store-Key-Client-S3cret"),
            Never,
        );
        let built = Generic::new()
            .token_url(URL)
            .client_id("client-7f3a")
            .client_secret("Store-Key-Client-S3cret")
            .scopes(["api.write", "api.read"])
            .build(Never)
            .unwrap();
        let key = |flow: &ClientCredentials<Never>| flow.store_key("billing", &FLEET).unwrap();
        assert_eq!(key(&built), key(&by_hand));
        let discovering = Generic::new()
            .issuer(URL)
            .client_id("client-7f3a")
            .client_secret("Store-Key-Client-S3cret")
            .scope("api.read api.write")
            .build(Never)
            .unwrap();
        assert_ne!(key(&discovering), key(&by_hand));
    }
}
