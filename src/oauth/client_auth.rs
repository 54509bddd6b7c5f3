//! Client authentication at the token endpoint, chosen explicitly per provider: the secret is
//! sent one way only, never tried one way and then another.
//!
//! ```
//! use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // The method the provider documents: here the secret in the form body.
//! let auth = ClientAuth::client_secret_post("client-7", "s3cret");
//! let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap();
//! let credentials = auth.credentials(request.token_url()).await.unwrap();
//! let http = request.http_request(&credentials).unwrap();
//! assert!(http.body().ends_with(b"&client_secret=s3cret"));
//! assert!(!format!("{auth:?} {credentials:?}").contains("s3cret"));
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::BoxFuture;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{TokenError, TokenErrorKind};
use crate::oauth::redact::Redactor;
use crate::token::secret_from;

/// How the client id and secret are put into an HTTP Basic `Authorization` header.
///
/// ```
/// use tower_bearer::oauth::BasicEncoding;
/// use tower_bearer::oauth::client_auth::basic_authorization;
///
/// // The secret `päss`: form-encoded first (RFC 6749), or as it is (RFC 7617).
/// let form = basic_authorization("id", "päss", BasicEncoding::FormUrlEncoded).unwrap();
/// assert_eq!(form, "Basic aWQ6cCVDMyVBNHNz"); // id:p%C3%A4ss
/// let raw = basic_authorization("id", "päss", BasicEncoding::Raw).unwrap();
/// assert_eq!(raw, "Basic aWQ6cMOkc3M="); // id:päss
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BasicEncoding {
    /// RFC 6749 §2.3.1: form-urlencode the id and the secret, then join with `:` and base64.
    /// What OAuth 2.0 servers must accept; the default.
    #[default]
    FormUrlEncoded,
    /// RFC 7617: join the raw id and secret with `:` and base64, for servers that do not decode
    /// the form encoding. The client id may not contain `:`.
    Raw,
}

/// How the client proves its identity to the token endpoint.
///
/// ```
/// use tower_bearer::oauth::ClientAuth;
///
/// let auth = ClientAuth::client_secret_basic("my-client", "s3cr3t");
/// assert_eq!(auth.method(), "client_secret_basic");
/// assert!(!format!("{auth:?}").contains("s3cr3t"));
/// ```
#[derive(Clone)]
pub struct ClientAuth {
    client_id: String,
    method: Method,
    assertion_audience: Option<String>,
    /// Names the credential of an assertion hook in a store key (not a secret).
    assertion_identity: Option<String>,
    /// Finds the secret in what a server echoed back.
    redactor: Arc<Redactor>,
}

#[derive(Clone)]
enum Method {
    SecretPost(SecretString),
    SecretBasic(SecretString, BasicEncoding),
    #[cfg(feature = "private-key-jwt")]
    PrivateKeyJwt(Arc<crate::oauth::assertion::JwtSigner>),
    Hook(AssertionHook),
}

/// Supplies a client assertion for each token request (keys held in a vault or an HSM).
pub(crate) type AssertionHook =
    Arc<dyn Fn(AssertionContext) -> BoxFuture<'static, Result<String, TokenError>> + Send + Sync>;

/// What a client assertion is for: handed to the hook of [`ClientAuth::client_assertion`].
///
/// ```
/// use tower_bearer::oauth::{AssertionContext, ClientAuth, ClientCredentialsRequest};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let auth = ClientAuth::client_assertion("client-7", |ctx: AssertionContext| async move {
///     assert_eq!(ctx.client_id, "client-7");
///     // The token URL without its query, unless `assertion_audience` says otherwise.
///     assert_eq!(ctx.audience, "https://login.example/oauth2/token");
///     Ok("eyJ.signed.by-the-vault".to_owned())
/// });
/// let request = ClientCredentialsRequest::new("https://login.example/oauth2/token?v=2").unwrap();
/// auth.credentials(request.token_url()).await.unwrap();
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssertionContext {
    /// The client id: the assertion's `iss` and `sub`.
    pub client_id: String,
    /// The assertion's `aud`: the token endpoint, unless set otherwise.
    pub audience: String,
}

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl ClientAuth {
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let auth = ClientAuth::client_secret_post("client-7", "s3cret");
    /// let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap();
    /// let http = request.http_request(&auth.credentials(request.token_url()).await.unwrap()).unwrap();
    /// assert_eq!(http.body(), b"grant_type=client_credentials&client_id=client-7&client_secret=s3cret");
    /// assert!(http.headers().get("authorization").is_none());
    /// # }
    /// ```
    pub fn client_secret_post(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::secret_post(client_id.into(), secret_from(secret.into()))
    }

    pub(crate) fn secret_post(client_id: String, secret: SecretString) -> Self {
        Self {
            client_id,
            redactor: Arc::new(Redactor::new().secret(secret.expose_secret())),
            method: Method::SecretPost(secret),
            assertion_audience: None,
            assertion_identity: None,
        }
    }

    /// `client_secret_basic` with RFC 6749 §2.3.1 encoding.
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let auth = ClientAuth::client_secret_basic("my client", "s3cr3t");
    /// let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap();
    /// let http = request.http_request(&auth.credentials(request.token_url()).await.unwrap()).unwrap();
    /// // base64("my+client:s3cr3t"): the id and secret are form-encoded first.
    /// assert_eq!(http.headers()["authorization"], "Basic bXkrY2xpZW50OnMzY3IzdA==");
    /// assert_eq!(http.body(), b"grant_type=client_credentials");
    /// # }
    /// ```
    pub fn client_secret_basic(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::basic(
            client_id.into(),
            secret_from(secret.into()),
            BasicEncoding::FormUrlEncoded,
        )
    }

    pub(crate) fn basic(client_id: String, secret: SecretString, encoding: BasicEncoding) -> Self {
        Self {
            redactor: Arc::new(
                Redactor::new().basic_credentials(&client_id, secret.expose_secret()),
            ),
            client_id,
            method: Method::SecretBasic(secret, encoding),
            assertion_audience: None,
            assertion_identity: None,
        }
    }

    /// `client_secret_basic` with plain RFC 7617 encoding; fails if the client id contains `:`.
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let auth = ClientAuth::client_secret_basic_raw("my client", "s3cr3t").unwrap();
    /// let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap();
    /// let http = request.http_request(&auth.credentials(request.token_url()).await.unwrap()).unwrap();
    /// // base64("my client:s3cr3t"), as RFC 7617 joins them.
    /// assert_eq!(http.headers()["authorization"], "Basic bXkgY2xpZW50OnMzY3IzdA==");
    /// assert!(ClientAuth::client_secret_basic_raw("urn:client", "s").is_err(), "`:` in the id");
    /// # }
    /// ```
    pub fn client_secret_basic_raw(
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Result<Self, TokenError> {
        let client_id = client_id.into();
        check_raw_client_id(&client_id)?;
        Ok(Self::basic(
            client_id,
            secret_from(secret.into()),
            BasicEncoding::Raw,
        ))
    }

    pub(crate) fn basic_raw(client_id: String, secret: SecretString) -> Result<Self, TokenError> {
        check_raw_client_id(&client_id)?;
        Ok(Self::basic(client_id, secret, BasicEncoding::Raw))
    }

    /// `private_key_jwt` (RFC 7523): a fresh assertion signed by `signer` for each token
    /// request, sent with `client_id`.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientAuth;
    /// use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    ///
    /// let key = std::fs::read_to_string("tests/fixtures/rsa-pkcs8.pem").unwrap();
    /// let auth = ClientAuth::private_key_jwt("client-id", JwtSigner::from_pem(&key, Algorithm::Rs256).unwrap());
    /// assert_eq!(auth.method(), "private_key_jwt");
    /// ```
    #[cfg(feature = "private-key-jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
    pub fn private_key_jwt(
        client_id: impl Into<String>,
        signer: crate::oauth::assertion::JwtSigner,
    ) -> Self {
        Self::private_key_jwt_shared(client_id.into(), Arc::new(signer))
    }

    /// `private_key_jwt` with a signer shared with a provider builder.
    #[cfg(feature = "private-key-jwt")]
    pub(crate) fn private_key_jwt_shared(
        client_id: String,
        signer: Arc<crate::oauth::assertion::JwtSigner>,
    ) -> Self {
        Self {
            client_id,
            method: Method::PrivateKeyJwt(signer),
            assertion_audience: None,
            assertion_identity: None,
            redactor: Arc::default(),
        }
    }

    /// A client assertion from your own code for each token request (the key stays in a vault
    /// or an HSM); sent as `private_key_jwt`.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientAuth;
    ///
    /// let auth = ClientAuth::client_assertion("client-id", |ctx| async move {
    ///     // ask the vault to sign {iss, sub: ctx.client_id, aud: ctx.audience, jti, exp}
    ///     Ok(format!("eyJ...signed-for-{}", ctx.audience.len()))
    /// });
    /// assert_eq!(auth.method(), "private_key_jwt");
    /// ```
    pub fn client_assertion<F, Fut>(client_id: impl Into<String>, hook: F) -> Self
    where
        F: Fn(AssertionContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<String, TokenError>> + Send + 'static,
    {
        Self {
            client_id: client_id.into(),
            method: Method::Hook(Arc::new(move |ctx| Box::pin(hook(ctx)))),
            assertion_audience: None,
            assertion_identity: None,
            redactor: Arc::default(),
        }
    }

    /// The `aud` of client assertions. Default: the token endpoint URL (without its query).
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // Some servers want the issuer as `aud`, not the token endpoint.
    /// let auth = ClientAuth::client_assertion("client-7", |ctx| async move {
    ///     assert_eq!(ctx.audience, "https://login.example");
    ///     Ok("eyJ.signed.for-the-issuer".to_owned())
    /// })
    /// .assertion_audience("https://login.example");
    /// let request = ClientCredentialsRequest::new("https://login.example/oauth2/token").unwrap();
    /// assert!(auth.credentials(request.token_url()).await.is_ok());
    /// # }
    /// ```
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion_audience = Some(audience.into());
        self
    }

    /// Names the credential behind an assertion hook ([`client_assertion`](Self::client_assertion))
    /// for the store key of a fleet (`ClientCredentials::store_key`, feature `redis`): the
    /// hook's key is out of this crate's sight, so two hooks for one client id would otherwise
    /// share a token. Give what tells the signing keys apart and changes when the key does, e.g.
    /// the vault key's name and version or the certificate's thumbprint. Not a secret: it is
    /// shown in `Debug`. Required for a store key with a hook; with any other method it is
    /// added to the key.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientAuth;
    ///
    /// let auth = ClientAuth::client_assertion("client-id", |ctx| async move {
    ///     Ok(format!("eyJ...signed-for-{}", ctx.audience.len()))
    /// })
    /// .assertion_identity("vault:transit/keys/partner-signing@v3");
    /// assert!(format!("{auth:?}").contains("partner-signing@v3"));
    /// ```
    pub fn assertion_identity(mut self, identity: impl Into<String>) -> Self {
        self.assertion_identity = Some(identity.into());
        self
    }

    /// Appends what identifies this client's credential to a store key's parts: the client
    /// id, the method, then the credential (the secret itself, hashed by the caller under the
    /// fleet's secret; a signer's public key hash, certificate thumbprint and key id; a hook's
    /// identity), then the optional [`assertion_identity`](Self::assertion_identity).
    #[cfg(feature = "redis")]
    pub(crate) fn key_parts<'a>(&'a self, parts: &mut Vec<Cow<'a, str>>) -> Result<(), TokenError> {
        parts.push(Cow::Borrowed(&self.client_id));
        parts.push(Cow::Borrowed(self.method()));
        match &self.method {
            // The encoding of Basic is left out: one secret, encoded two ways, is one client.
            Method::SecretPost(secret) | Method::SecretBasic(secret, _) => {
                parts.push(Cow::Borrowed(secret.expose_secret()));
            }
            #[cfg(feature = "private-key-jwt")]
            Method::PrivateKeyJwt(signer) => {
                parts.extend(signer.key_identity().map(Cow::Owned));
            }
            Method::Hook(_) => {
                if self.assertion_identity.is_none() {
                    return Err(TokenError::configuration(
                        "a store key for a client assertion hook needs to know which key signs:                          the hook's key is not visible to this crate",
                        "name the signing key with `ClientAuth::assertion_identity(\"...\")`                          (the vault key's name and version, or the certificate's thumbprint)",
                    ));
                }
            }
        }
        match &self.assertion_identity {
            None => parts.push(Cow::Borrowed("0")),
            Some(identity) => {
                parts.push(Cow::Borrowed("1"));
                parts.push(Cow::Borrowed(identity));
            }
        }
        Ok(())
    }

    /// The assertion's context for a request to `token_url`.
    fn context(&self, token_url: &http::Uri) -> AssertionContext {
        let audience = self.assertion_audience.clone().unwrap_or_else(|| {
            let scheme = token_url.scheme_str().unwrap_or("https");
            let authority = token_url.authority().map_or("", |a| a.as_str());
            format!("{scheme}://{authority}{}", token_url.path())
        });
        AssertionContext {
            client_id: self.client_id.clone(),
            audience,
        }
    }

    /// The client id.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientAuth;
    ///
    /// assert_eq!(ClientAuth::client_secret_post("client-7", "s").client_id(), "client-7");
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The method's name as in RFC 7591 (`token_endpoint_auth_method`).
    ///
    /// ```
    /// use tower_bearer::oauth::ClientAuth;
    ///
    /// assert_eq!(ClientAuth::client_secret_post("id", "s").method(), "client_secret_post");
    /// assert_eq!(ClientAuth::client_secret_basic("id", "s").method(), "client_secret_basic");
    /// ```
    pub fn method(&self) -> &'static str {
        match self.method {
            Method::SecretPost(_) => "client_secret_post",
            Method::SecretBasic(..) => "client_secret_basic",
            #[cfg(feature = "private-key-jwt")]
            Method::PrivateKeyJwt(_) => "private_key_jwt",
            Method::Hook(_) => "private_key_jwt",
        }
    }

    /// The credentials for one token request to `token_url`: a secret needs nothing, a
    /// `private_key_jwt` signer signs a fresh assertion, an assertion hook is awaited. Build
    /// the request from them with
    /// [`ClientCredentialsRequest::http_request`](crate::oauth::ClientCredentialsRequest::http_request),
    /// which does no I/O.
    ///
    /// An error (a signing failure, the hook's own error) has this client's secrets redacted.
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let request = ClientCredentialsRequest::new("https://login.example/t/oauth2/v2.0/token").unwrap();
    /// let auth = ClientAuth::client_assertion("client-id", |ctx| async move {
    ///     Ok(format!("eyJ.signed-for.{}", ctx.client_id))
    /// });
    /// let credentials = auth.credentials(request.token_url()).await.unwrap();
    /// assert!(!format!("{credentials:?}").contains("signed-for"));
    /// let http = request.http_request(&credentials).unwrap();
    /// assert!(http.body().ends_with(b"&client_assertion=eyJ.signed-for.client-id"));
    /// # }
    /// ```
    pub async fn credentials(&self, token_url: &http::Uri) -> Result<Credentials<'_>, TokenError> {
        match &self.method {
            Method::Hook(hook) => {
                let assertion = hook(self.context(token_url))
                    .await
                    .map_err(|e| e.redact(&self.redactor))?;
                Ok(self.with_assertion(Zeroizing::new(assertion)))
            }
            _ => self.credentials_now(token_url),
        }
    }

    /// The credentials of every method but the hook's, which needs an `.await`.
    pub(crate) fn credentials_now(
        &self,
        token_url: &http::Uri,
    ) -> Result<Credentials<'_>, TokenError> {
        let _ = token_url; // read only by `private_key_jwt`
        if let Some(credentials) = self.secret_credentials() {
            return Ok(credentials);
        }
        match &self.method {
            #[cfg(feature = "private-key-jwt")]
            Method::PrivateKeyJwt(signer) => {
                let ctx = self.context(token_url);
                let assertion = signer
                    .sign(&ctx.client_id, &ctx.audience)
                    .map_err(|e| e.redact(&self.redactor))?;
                Ok(self.with_assertion(Zeroizing::new(assertion)))
            }
            _ => Err(TokenError::configuration(
                "this client authenticates with an assertion hook, which is async",
                "make the credentials with `ClientAuth::credentials(..).await`, then build with \
                 `ClientCredentialsRequest::http_request`",
            )),
        }
    }

    /// Credentials that send `assertion` for `private_key_jwt`; the secret methods send their
    /// secret (as the deprecated `build_with_assertion` always did).
    pub(crate) fn credentials_with_assertion(&self, assertion: &str) -> Credentials<'_> {
        self.secret_credentials()
            .unwrap_or_else(|| self.with_assertion(Zeroizing::new(assertion.to_owned())))
    }

    /// The credentials of `client_secret_post` and `client_secret_basic`; `None` for the
    /// assertion methods.
    fn secret_credentials(&self) -> Option<Credentials<'_>> {
        let kind = match &self.method {
            Method::SecretPost(secret) => Kind::Post(secret),
            Method::SecretBasic(secret, encoding) => Kind::Basic(secret, *encoding),
            _ => return None,
        };
        Some(Credentials {
            client_id: &self.client_id,
            kind,
            redactor: Cow::Borrowed(&self.redactor),
        })
    }

    /// Credentials sending `assertion`, whose redactor also knows it.
    fn with_assertion(&self, assertion: Zeroizing<String>) -> Credentials<'_> {
        Credentials {
            client_id: &self.client_id,
            redactor: Cow::Owned(Redactor::clone(&self.redactor).secret(&assertion)),
            kind: Kind::Assertion(assertion),
        }
    }
}

/// The client credentials of one token request, made by [`ClientAuth::credentials`]: the
/// client id with its secret, or a client assertion made for this request. Sent by
/// [`ClientCredentialsRequest::http_request`](crate::oauth::ClientCredentialsRequest::http_request).
///
/// An assertion is wiped on drop; a secret is borrowed from its [`ClientAuth`]. `Debug` shows
/// neither.
///
/// ```
/// use tower_bearer::oauth::ClientAuth;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let auth = ClientAuth::client_secret_basic("my-client", "s3cr3t-value");
/// let credentials = auth.credentials(&"https://as.example/token".parse().unwrap()).await.unwrap();
/// assert_eq!(credentials.method(), "client_secret_basic");
/// assert!(!format!("{credentials:?}").contains("s3cr3t"));
/// // What finds the secret in a server's answer to this request.
/// assert_eq!(credentials.redactor().redact("echo: s3cr3t-value"), "echo: [redacted]");
/// # }
/// ```
pub struct Credentials<'a> {
    client_id: &'a str,
    kind: Kind<'a>,
    /// Finds the client secret, or this request's assertion, in what a server echoes.
    redactor: Cow<'a, Redactor>,
}

enum Kind<'a> {
    /// `client_secret_post`.
    Post(&'a SecretString),
    /// `client_secret_basic`.
    Basic(&'a SecretString, BasicEncoding),
    /// `private_key_jwt`: this request's assertion.
    Assertion(Zeroizing<String>),
}

impl Credentials<'_> {
    /// The client id.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientAuth;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let auth = ClientAuth::client_secret_post("client-7", "s");
    /// let credentials = auth.credentials(&"https://idp.example/token".parse().unwrap()).await.unwrap();
    /// assert_eq!(credentials.client_id(), "client-7");
    /// # }
    /// ```
    pub fn client_id(&self) -> &str {
        self.client_id
    }

    /// The method's name as in RFC 7591, as [`ClientAuth::method`].
    ///
    /// ```
    /// use tower_bearer::oauth::ClientAuth;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let auth = ClientAuth::client_assertion("client-7", |_ctx| async { Ok("eyJ.a.b".to_owned()) });
    /// let credentials = auth.credentials(&"https://idp.example/token".parse().unwrap()).await.unwrap();
    /// assert_eq!(credentials.method(), "private_key_jwt");
    /// # }
    /// ```
    pub fn method(&self) -> &'static str {
        match self.kind {
            Kind::Post(_) => "client_secret_post",
            Kind::Basic(..) => "client_secret_basic",
            Kind::Assertion(_) => "private_key_jwt",
        }
    }

    /// What finds these credentials' secrets (the client secret, or this request's assertion)
    /// in what a server answered: for
    /// [`parse_token_response_redacting`](crate::oauth::response::parse_token_response_redacting)
    /// and its kin.
    ///
    /// ```
    /// use tower_bearer::oauth::ClientAuth;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let auth = ClientAuth::client_secret_post("client-7", "s3cret-value");
    /// let credentials = auth.credentials(&"https://idp.example/token".parse().unwrap()).await.unwrap();
    /// let echoed = r#"{"error":"invalid_client","error_description":"bad secret s3cret-value"}"#;
    /// assert!(!credentials.redactor().redact(echoed).contains("s3cret-value"));
    /// # }
    /// ```
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The most bytes the credentials can take in a form body (see
    /// `ClientCredentialsRequest::form_capacity`): each byte of a name or value encodes to at
    /// most 3, plus `=` and `&`.
    pub(crate) fn form_capacity(&self) -> usize {
        let pair = |name: &str, value: &str| 3 * (name.len() + value.len()) + 2;
        let id = pair("client_id", self.client_id);
        match &self.kind {
            Kind::Post(secret) => id + pair("client_secret", secret.expose_secret()),
            Kind::Basic(..) => 0,
            Kind::Assertion(assertion) => {
                id + pair("client_assertion_type", JWT_BEARER_ASSERTION_TYPE)
                    + pair("client_assertion", assertion)
            }
        }
    }

    /// Writes the credentials into a token request's form fields and headers.
    pub(crate) fn write(
        &self,
        form: &mut form_urlencoded::Serializer<'_, &mut String>,
        headers: &mut http::HeaderMap,
    ) -> Result<(), TokenError> {
        match &self.kind {
            Kind::Post(secret) => {
                form.append_pair("client_id", self.client_id);
                form.append_pair("client_secret", secret.expose_secret());
            }
            Kind::Basic(secret, encoding) => {
                let value = basic_authorization(self.client_id, secret.expose_secret(), *encoding)?;
                headers.insert(http::header::AUTHORIZATION, value);
            }
            Kind::Assertion(assertion) => {
                form.append_pair("client_id", self.client_id);
                form.append_pair("client_assertion_type", JWT_BEARER_ASSERTION_TYPE);
                form.append_pair("client_assertion", assertion);
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Credentials");
        d.field("client_id", &self.client_id)
            .field("method", &self.method());
        match &self.kind {
            Kind::Post(_) => d.field("secret", &REDACTED),
            Kind::Basic(_, encoding) => d.field("secret", &REDACTED).field("encoding", encoding),
            Kind::Assertion(_) => d.field("assertion", &REDACTED),
        };
        d.finish()
    }
}

/// What `Debug` shows for a client secret.
const REDACTED: Redacted = Redacted;

struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ClientAuth");
        d.field("client_id", &self.client_id)
            .field("method", &self.method());
        match &self.method {
            // No fingerprint: a hash of a client secret (unlike a token's) can be checked
            // offline against a dictionary of weak secrets.
            Method::SecretPost(_) => {
                d.field("secret", &REDACTED);
            }
            Method::SecretBasic(_, e) => {
                d.field("secret", &REDACTED).field("encoding", e);
            }
            #[cfg(feature = "private-key-jwt")]
            Method::PrivateKeyJwt(signer) => {
                d.field("signer", signer);
            }
            Method::Hook(_) => {
                d.field("assertion", &"from a hook");
            }
        }
        d.field("assertion_audience", &self.assertion_audience);
        if let Some(identity) = &self.assertion_identity {
            d.field("assertion_identity", identity);
        }
        d.finish()
    }
}

fn check_raw_client_id(client_id: &str) -> Result<(), TokenError> {
    if client_id.contains(':') {
        return Err(TokenError::configuration(
            "the client id contains `:`, which raw HTTP Basic (RFC 7617) cannot carry",
            "use the RFC 6749 form-urlencoded Basic encoding, or client_secret_post",
        ));
    }
    Ok(())
}

/// The `Authorization: Basic ...` value for a client id and secret, marked sensitive.
///
/// ```
/// use tower_bearer::oauth::{basic_authorization, BasicEncoding};
///
/// // RFC 6749 Appendix B: " %&+£€" form-urlencodes as "+%25%26%2B%C2%A3%E2%82%AC".
/// let value = basic_authorization("id", " %&+£€", BasicEncoding::FormUrlEncoded).unwrap();
/// assert!(value.is_sensitive());
/// # use base64::Engine;
/// let decoded = base64::engine::general_purpose::STANDARD
///     .decode(&value.as_bytes()["Basic ".len()..]).unwrap();
/// assert_eq!(decoded, b"id:+%25%26%2B%C2%A3%E2%82%AC");
/// ```
pub fn basic_authorization(
    client_id: &str,
    secret: &str,
    encoding: BasicEncoding,
) -> Result<HeaderValue, TokenError> {
    let joined = basic_credentials(client_id, secret, encoding)?;
    // Room for all of it up front: a string that grows leaves its old buffer unwiped.
    let mut value = Zeroizing::new(String::with_capacity(
        "Basic ".len() + base64::encoded_len(joined.len(), true).unwrap_or_default(),
    ));
    value.push_str("Basic ");
    STANDARD.encode_string(joined.as_bytes(), &mut value);
    // The buffer moves into the header value (which cannot be wiped, and is marked sensitive).
    let mut value = HeaderValue::try_from(std::mem::take(&mut *value)).map_err(|_| {
        TokenError::new(TokenErrorKind::Other, "base64 made an invalid header value")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `id:secret` as HTTP Basic joins them, in memory that is wiped on drop.
fn basic_credentials(
    client_id: &str,
    secret: &str,
    encoding: BasicEncoding,
) -> Result<Zeroizing<String>, TokenError> {
    let (id, secret) = match encoding {
        BasicEncoding::FormUrlEncoded => (form_encode(client_id), form_encode(secret)),
        BasicEncoding::Raw => {
            check_raw_client_id(client_id)?;
            (
                Zeroizing::new(client_id.to_owned()),
                Zeroizing::new(secret.to_owned()),
            )
        }
    };
    let mut joined = Zeroizing::new(String::with_capacity(id.len() + 1 + secret.len()));
    joined.push_str(&id);
    joined.push(':');
    joined.push_str(&secret);
    Ok(joined)
}

/// `application/x-www-form-urlencoded`, into room reserved for the longest result, wiped on
/// drop.
fn form_encode(text: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(3 * text.len()));
    for piece in form_urlencoded::byte_serialize(text.as_bytes()) {
        out.push_str(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(value: &HeaderValue) -> String {
        let b64 = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn rfc6749_appendix_b_vector() {
        let v = basic_authorization(" %&+£€", " %&+£€", BasicEncoding::FormUrlEncoded).unwrap();
        assert_eq!(
            decode(&v),
            "+%25%26%2B%C2%A3%E2%82%AC:+%25%26%2B%C2%A3%E2%82%AC"
        );
    }

    #[test]
    fn form_encoding_protects_colons_and_raw_keeps_bytes() {
        let v = basic_authorization("urn:client:1", "a:b", BasicEncoding::FormUrlEncoded).unwrap();
        assert_eq!(decode(&v), "urn%3Aclient%3A1:a%3Ab");
        let v = basic_authorization("client", "a:b £", BasicEncoding::Raw).unwrap();
        assert_eq!(decode(&v), "client:a:b £");
        // RFC 7617's example.
        let v = basic_authorization("Aladdin", "open sesame", BasicEncoding::Raw).unwrap();
        assert_eq!(v, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn basic_intermediates_are_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        for encoding in [BasicEncoding::FormUrlEncoded, BasicEncoding::Raw] {
            let joined = basic_credentials("id", "s3cr3t £", encoding).unwrap();
            wiped_on_drop(&joined);
            // Room was reserved for all of it: it never grew.
            assert_eq!(joined.capacity(), joined.len());
        }
        let encoded = form_encode(" %&+£€");
        wiped_on_drop(&encoded);
        assert_eq!(&*encoded, "+%25%26%2B%C2%A3%E2%82%AC");
        // The room reserved up front (three bytes per input byte), never grown.
        assert_eq!(encoded.capacity(), 3 * " %&+£€".len());
    }

    #[test]
    fn raw_rejects_a_colon_in_the_client_id() {
        let err = ClientAuth::client_secret_basic_raw("a:b", "s").unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
        assert!(basic_authorization("a:b", "s", BasicEncoding::Raw).is_err());
    }

    #[test]
    fn debug_shows_neither_the_secret_nor_a_fingerprint_of_it() {
        use sha2::{Digest, Sha256};
        // A weak secret: one unsalted hash prefix in a log line was enough to find it again
        // in a dictionary.
        let weak = "Summer2024!";
        let hash: String = Sha256::digest(weak.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        for auth in [
            ClientAuth::client_secret_post("id", weak),
            ClientAuth::client_secret_basic("id", weak),
            ClientAuth::client_secret_basic_raw("id", weak).unwrap(),
        ] {
            let debug = format!("{auth:?} {auth:#?}");
            assert!(!debug.contains(weak), "{debug}");
            assert!(!debug.contains("sha256"), "{debug}");
            for len in 4..=hash.len() {
                assert!(!debug.contains(&hash[..len]), "{debug}");
            }
            assert!(debug.contains("secret: [redacted]"), "{debug}");
        }
    }
}
