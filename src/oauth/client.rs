//! [`ClientCredentials`]: the OAuth 2.0 client-credentials flow as a [`TokenSource`], read top
//! to bottom: make the credentials, build the request, send it, parse the answer, retry what
//! is worth retrying.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use tower_bearer::TokenSource;
//! use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
//! # use std::convert::Infallible;
//! # use bytes::Bytes;
//! # use http::{Request, Response};
//! # use http_body_util::Full;
//! # fn answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
//! #     Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
//! # }
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! static CALLS: AtomicUsize = AtomicUsize::new(0);
//! // A token endpoint that is down for its first request.
//! let server = tower::service_fn(|_req: Request<Full<Bytes>>| async {
//!     Ok::<_, Infallible>(match CALLS.fetch_add(1, Ordering::SeqCst) {
//!         0 => answer(503, ""),
//!         _ => answer(200, r#"{"access_token":"eyJ...","token_type":"Bearer","expires_in":3600}"#),
//!     })
//! });
//! let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap();
//! let source = ClientCredentials::new(request, ClientAuth::client_secret_post("id", "s3cret"), ServiceTransport::new(server));
//! assert!(source.token().await.is_ok(), "the 503 was retried");
//! assert_eq!(CALLS.load(Ordering::SeqCst), 2);
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::error::{TokenError, TokenErrorKind};
use crate::oauth::claims::ClaimsCheck;
use crate::oauth::client_auth::{ClientAuth, Credentials};
use crate::oauth::discovery::{Metadata, parse_metadata, try_next};
use crate::oauth::request::ClientCredentialsRequest;
use crate::oauth::response::parse_token_response_redacting;
use crate::oauth::transport::{Transport, endpoint_name};
use crate::source::TokenSource;
use crate::token::Token;

/// Default lifetime of a token whose answer has no `expires_in` (never "forever").
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Default time one attempt may take, connection to last byte. With
/// [`DEFAULT_MAX_ATTEMPTS`] and the pauses between attempts (0.25 and 0.5 s at most), a hung
/// token endpoint fails a fetch within 9.75 s, inside the cache's
/// [`DEFAULT_MAX_WAIT`](crate::cache::DEFAULT_MAX_WAIT) (10 s).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default number of attempts for transient failures (network errors, 5xx, 429).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// A `Retry-After` longer than this is not waited out within one fetch: the error goes to the
/// cache, which backs off for as long as the server asked.
pub const MAX_RETRY_AFTER_WITHIN_FETCH: Duration = Duration::from_secs(5);

/// The client-credentials flow (RFC 6749 §4.4) against any token endpoint.
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use tower_bearer::TokenSource;
/// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let http_client = tower::service_fn(|_req: Request<Full<Bytes>>| async {
/// #     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
/// #         br#"{"access_token":"eyJ...","token_type":"Bearer","expires_in":3599}"#))))
/// # });
/// let source = ClientCredentials::new(
///     ClientCredentialsRequest::new("https://login.example/tenant/oauth2/v2.0/token")
///         .unwrap()
///         .scope("api://partner/.default"),
///     ClientAuth::client_secret_post("client-id", "client-secret"),
///     ServiceTransport::new(http_client),
/// );
/// let token = source.token().await.unwrap();
/// assert_eq!(token.lifetime(), Some(std::time::Duration::from_secs(3599)));
/// # }
/// ```
pub struct ClientCredentials<T> {
    request: ClientCredentialsRequest,
    auth: ClientAuth,
    transport: T,
    default_lifetime: Duration,
    attempt_timeout: Duration,
    max_attempts: u32,
    claims: Option<ClaimsCheck>,
    label: Cow<'static, str>,
    /// The issuer whose metadata names the token endpoint, if it is to be discovered.
    discovery: Option<Box<Discovery>>,
}

/// Discovery of the token endpoint from the issuer's metadata, at the first token request
/// (built by `providers::Generic::issuer`).
pub(crate) struct Discovery {
    /// The issuer as configured: the metadata's `issuer` must be exactly this.
    pub(crate) issuer: String,
    /// The RFC 8414 URL, then the OpenID Connect one.
    pub(crate) urls: [String; 2],
    pub(crate) allow_insecure_http: bool,
    /// The secret sent in the body, for an endpoint whose metadata does not list
    /// `client_secret_basic`; `None` if the method was chosen.
    pub(crate) post_fallback: Option<ClientAuth>,
    /// The request to the discovered endpoint, and the authentication if it changed: set once
    /// (a failed discovery leaves it empty, and the next fetch asks again).
    pub(crate) resolved: tokio::sync::OnceCell<Resolved>,
}

pub(crate) struct Resolved {
    request: ClientCredentialsRequest,
    auth: Option<ClientAuth>,
}

impl<T: Transport> ClientCredentials<T> {
    /// The flow: what to ask for, how to authenticate, how to send.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use tower_bearer::{TokenErrorKind, TokenSource};
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # fn answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    /// #     Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// static CALLS: AtomicUsize = AtomicUsize::new(0);
    /// let server = tower::service_fn(|_req: Request<Full<Bytes>>| async {
    ///     CALLS.fetch_add(1, Ordering::SeqCst);
    ///     Ok::<_, Infallible>(answer(401, r#"{"error":"invalid_client"}"#))
    /// });
    /// let source = ClientCredentials::new(
    ///     ClientCredentialsRequest::new("https://idp.example/token").unwrap(),
    ///     ClientAuth::client_secret_post("client-7", "an old secret"),
    ///     ServiceTransport::new(server),
    /// );
    /// let err = source.token().await.unwrap_err();
    /// assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
    /// assert_eq!(CALLS.load(Ordering::SeqCst), 1, "a rejected secret is not tried again");
    /// # }
    /// ```
    pub fn new(request: ClientCredentialsRequest, auth: ClientAuth, transport: T) -> Self {
        Self {
            request,
            auth,
            transport,
            default_lifetime: DEFAULT_TOKEN_LIFETIME,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            claims: None,
            label: Cow::Borrowed("oauth2"),
            discovery: None,
        }
    }

    /// Finds the token endpoint from `discovery`'s issuer at the first fetch; `request` (the
    /// template, to the issuer) gives the scopes and parameters.
    pub(crate) fn discover(mut self, discovery: Discovery) -> Self {
        self.discovery = Some(Box::new(discovery));
        self
    }

    /// A name for this source in traces (the providers set theirs). Default: `oauth2`.
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # fn answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    /// #     Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
    /// # }
    /// # let server = tower::service_fn(|_req: Request<Full<Bytes>>| async { Ok::<_, Infallible>(answer(503, "")) });
    /// let source = ClientCredentials::new(
    ///     ClientCredentialsRequest::new("https://idp.example/token").unwrap(),
    ///     ClientAuth::client_secret_post("client-7", "s3cret"),
    ///     ServiceTransport::new(server),
    /// )
    /// .label("billing-api");
    /// let debug = format!("{source:?}");
    /// assert!(debug.contains(r#"label: "billing-api""#));
    /// assert!(!debug.contains("s3cret"));
    /// ```
    pub fn label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = label.into();
        self
    }

    /// Checks each new token's claims before it is used; a token that fails is not used and
    /// the fetch fails with an error naming the claim. See [`ClaimsCheck`] (no signature check).
    ///
    /// ```
    /// use tower_bearer::TokenSource;
    /// use tower_bearer::oauth::ClaimsCheck;
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # fn answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    /// #     Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // An access token whose claims are {"roles": ["ProviderApi.Access"]}.
    /// let server = tower::service_fn(|_req: Request<Full<Bytes>>| async {
    ///     Ok::<_, Infallible>(answer(200, r#"{"access_token":"eyJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJQcm92aWRlckFwaS5BY2Nlc3MiXX0.","token_type":"Bearer"}"#))
    /// });
    /// let source = ClientCredentials::new(
    ///     ClientCredentialsRequest::new("https://idp.example/token").unwrap(),
    ///     ClientAuth::client_secret_post("client-7", "s3cret"),
    ///     ServiceTransport::new(server),
    /// )
    /// .check_claims(ClaimsCheck::new().require_role("Admin"));
    /// let err = source.token().await.unwrap_err();
    /// assert!(err.to_string().contains("`roles` was expected to contain `Admin`"), "{err}");
    /// # }
    /// ```
    pub fn check_claims(mut self, check: ClaimsCheck) -> Self {
        self.claims = Some(check);
        self
    }

    /// Lifetime of a token whose answer has no `expires_in`. Default:
    /// [`DEFAULT_TOKEN_LIFETIME`] (10 minutes).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::TokenSource;
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # fn answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    /// #     Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // The answer has no `expires_in`.
    /// let server = tower::service_fn(|_req: Request<Full<Bytes>>| async {
    ///     Ok::<_, Infallible>(answer(200, r#"{"access_token":"opaque","token_type":"Bearer"}"#))
    /// });
    /// let source = ClientCredentials::new(
    ///     ClientCredentialsRequest::new("https://idp.example/token").unwrap(),
    ///     ClientAuth::client_secret_post("client-7", "s3cret"),
    ///     ServiceTransport::new(server),
    /// )
    /// .default_lifetime(Duration::from_secs(300));
    /// assert_eq!(source.token().await.unwrap().lifetime(), Some(Duration::from_secs(300)));
    /// # }
    /// ```
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// Time one attempt may take. Default: [`DEFAULT_ATTEMPT_TIMEOUT`] (3 s). Keep
    /// `attempts × timeout` plus the pauses between attempts (250 ms, then doubling, at most)
    /// below the cache's [`max_wait`](crate::TokenCacheBuilder::max_wait), or a request gives
    /// up before the last attempt ends.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{TokenErrorKind, TokenSource};
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # fn answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    /// #     Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// // A token endpoint that never answers.
    /// let server = tower::service_fn(|_req: Request<Full<Bytes>>| std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>());
    /// let source = ClientCredentials::new(
    ///     ClientCredentialsRequest::new("https://idp.example/token").unwrap(),
    ///     ClientAuth::client_secret_post("client-7", "s3cret"),
    ///     ServiceTransport::new(server),
    /// )
    /// .attempt_timeout(Duration::from_secs(2))
    /// .max_attempts(1);
    /// assert_eq!(source.token().await.unwrap_err().kind(), TokenErrorKind::Timeout);
    /// # }
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Attempts for transient failures, at least 1. Default: [`DEFAULT_MAX_ATTEMPTS`] (3).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use tower_bearer::{TokenErrorKind, TokenSource};
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # fn answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    /// #     Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static CALLS: AtomicUsize = AtomicUsize::new(0);
    /// let server = tower::service_fn(|_req: Request<Full<Bytes>>| async {
    ///     CALLS.fetch_add(1, Ordering::SeqCst);
    ///     Ok::<_, Infallible>(answer(503, ""))
    /// });
    /// let source = ClientCredentials::new(
    ///     ClientCredentialsRequest::new("https://idp.example/token").unwrap(),
    ///     ClientAuth::client_secret_post("client-7", "s3cret"),
    ///     ServiceTransport::new(server),
    /// )
    /// .max_attempts(2);
    /// assert_eq!(source.token().await.unwrap_err().kind(), TokenErrorKind::Unavailable);
    /// assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    /// # }
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The token request. For a flow that discovers its token endpoint, until the first
    /// successful discovery its [`token_url`](ClientCredentialsRequest::token_url) is the
    /// issuer's; then it is the discovered endpoint.
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # fn answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    /// #     Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
    /// # }
    /// # let server = tower::service_fn(|_req: Request<Full<Bytes>>| async { Ok::<_, Infallible>(answer(503, "")) });
    /// let source = ClientCredentials::new(
    ///     ClientCredentialsRequest::new("https://idp.example/token").unwrap().scope("api.read"),
    ///     ClientAuth::client_secret_post("client-7", "s3cret"),
    ///     ServiceTransport::new(server),
    /// );
    /// assert_eq!(source.request().token_url(), "https://idp.example/token");
    /// ```
    pub fn request(&self) -> &ClientCredentialsRequest {
        self.resolved().map_or(&self.request, |r| &r.request)
    }

    /// The client authentication (for a discovering flow, as chosen from the metadata once
    /// discovered).
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # fn answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    /// #     Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
    /// # }
    /// # let server = tower::service_fn(|_req: Request<Full<Bytes>>| async { Ok::<_, Infallible>(answer(503, "")) });
    /// let source = ClientCredentials::new(
    ///     ClientCredentialsRequest::new("https://idp.example/token").unwrap(),
    ///     ClientAuth::client_secret_basic("client-7", "s3cret"),
    ///     ServiceTransport::new(server),
    /// );
    /// assert_eq!(source.auth().method(), "client_secret_basic");
    /// assert_eq!(source.auth().client_id(), "client-7");
    /// ```
    pub fn auth(&self) -> &ClientAuth {
        self.resolved()
            .and_then(|r| r.auth.as_ref())
            .unwrap_or(&self.auth)
    }

    /// The issuer whose metadata names the token endpoint, if this flow discovers it.
    ///
    /// ```
    /// use tower_bearer::providers::Generic;
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # fn answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    /// #     Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
    /// # }
    /// # let server = tower::service_fn(|_req: Request<Full<Bytes>>| async { Ok::<_, Infallible>(answer(503, "")) });
    /// let fixed = ClientCredentials::new(
    ///     ClientCredentialsRequest::new("https://idp.example/token").unwrap(),
    ///     ClientAuth::client_secret_post("client-7", "s3cret"),
    ///     ServiceTransport::new(server),
    /// );
    /// assert_eq!(fixed.issuer(), None);
    /// let discovering = Generic::new()
    ///     .issuer("https://login.partner.example/tenant-7")
    ///     .client_id("client-7")
    ///     .client_secret("s3cret")
    ///     .build(ServiceTransport::new(server))
    ///     .unwrap();
    /// assert_eq!(discovering.issuer(), Some("https://login.partner.example/tenant-7"));
    /// ```
    pub fn issuer(&self) -> Option<&str> {
        self.discovery.as_deref().map(|d| d.issuer.as_str())
    }

    fn resolved(&self) -> Option<&Resolved> {
        self.discovery.as_deref().and_then(|d| d.resolved.get())
    }

    /// The request and the authentication to use: for a discovering flow, discovered once
    /// (concurrent first fetches share one discovery).
    async fn endpoint(&self) -> Result<(&ClientCredentialsRequest, &ClientAuth), TokenError> {
        let Some(discovery) = self.discovery.as_deref() else {
            return Ok((&self.request, &self.auth));
        };
        let resolved = discovery
            .resolved
            .get_or_try_init(|| self.discover_endpoint(discovery))
            .await?;
        Ok((
            &resolved.request,
            resolved.auth.as_ref().unwrap_or(&self.auth),
        ))
    }

    /// Asks the issuer's metadata URLs in order (the next one only if one has none), with
    /// the transport and the attempt timeout of token requests.
    async fn discover_endpoint(&self, discovery: &Discovery) -> Result<Resolved, TokenError> {
        let mut statuses = Vec::new();
        for url in &discovery.urls {
            let request = http::Request::get(url.as_str())
                .header(http::header::ACCEPT, "application/json")
                .body(Vec::new())
                .map_err(|_| {
                    TokenError::configuration(
                        "the issuer's metadata URL is not a valid URL",
                        "check the issuer",
                    )
                })?;
            let response = tokio::time::timeout(self.attempt_timeout, self.transport.send(request))
                .await
                .map_err(|_| {
                    TokenError::new(
                        TokenErrorKind::Timeout,
                        format!(
                            "the issuer's metadata did not come within {:?}",
                            self.attempt_timeout
                        ),
                    )
                    .with_hint("check that the issuer is reachable, or raise the attempt timeout")
                })?
                .map_err(|e| metadata_error(url, e))?;
            match parse_metadata(
                &discovery.issuer,
                response.status(),
                response.body(),
                discovery.allow_insecure_http,
            ) {
                Ok(metadata) => return self.resolve(discovery, &metadata),
                Err(error) if try_next(&error) => statuses.push(response.status()),
                Err(error) => return Err(error),
            }
        }
        Err(TokenError::configuration(
            format!(
                "the issuer `{}` has no metadata: `{}` answered {} and `{}` answered {}",
                crate::error::sanitize(&discovery.issuer),
                discovery.urls[0],
                statuses[0],
                discovery.urls[1],
                statuses[1],
            ),
            "check the issuer (the authorization server's issuer identifier), or set the token \
             URL instead",
        ))
    }

    /// The request to the metadata's token endpoint, and the client authentication it
    /// accepts: the configured one, or the secret in the body when the endpoint does not take
    /// `client_secret_basic` and no method was chosen.
    fn resolve(&self, discovery: &Discovery, metadata: &Metadata) -> Result<Resolved, TokenError> {
        let request = self
            .request
            .at(metadata.token_endpoint(), discovery.allow_insecure_http)?;
        let method = self.auth.method();
        let auth = match metadata.auth_methods() {
            Some(methods) if !methods.iter().any(|m| m == method) => {
                match discovery
                    .post_fallback
                    .as_ref()
                    .filter(|post| methods.iter().any(|m| m == post.method()))
                {
                    Some(post) => Some(post.clone()),
                    None => {
                        return Err(TokenError::configuration(
                            format!(
                                "the token endpoint accepts {}, not `{method}` (its metadata's \
                                 token_endpoint_auth_methods_supported)",
                                crate::error::sanitize(&format!("{methods:?}")),
                            ),
                            "set the auth method to one it accepts: client_secret_basic or \
                             client_secret_post with a secret, private_key_jwt with a key",
                        ));
                    }
                }
            }
            _ => None,
        };
        tracing::debug!(
            issuer = %discovery.issuer,
            token_url = %request.token_url(),
            auth = auth.as_ref().unwrap_or(&self.auth).method(),
            "token endpoint discovered"
        );
        Ok(Resolved { request, auth })
    }

    /// The key under which a fleet shares this flow's tokens in a
    /// [`TokenStore`](crate::store::TokenStore), for
    /// [`TokenCacheBuilder::store`](crate::TokenCacheBuilder::store): `prefix:{name}`, where
    /// the name is the HMAC-SHA256 of everything that makes two tokens different, under
    /// `secret`, a secret of the fleet ([`StoreKey::derive`](crate::store::StoreKey::derive)).
    /// Every replica with the same configuration and secret computes the same key; any other
    /// configuration gets another one, and the name tells whoever reads the store nothing.
    ///
    /// What goes in, in this order, each part length-prefixed (lists after their length):
    ///
    /// - the grant (`client_credentials`);
    /// - the token URL as given, with its own query (a URL written two ways gives two keys:
    ///   one extra token request each, never a token of the wrong configuration);
    /// - the scopes, sorted and without duplicates (RFC 6749 §3.3: a set), the resources in
    ///   order, the audience, the extra parameters in order;
    /// - the client id and the authentication method (`client_secret_post`, ...);
    /// - the credential: the client secret itself (it goes into the HMAC only, and cannot be
    ///   found from the name without `secret`); for `private_key_jwt` with a
    ///   `JwtSigner`, the SHA-256 of its public key, its certificate's `x5t#S256` and its `kid`;
    ///   for an assertion hook, [`ClientAuth::assertion_identity`], which is then required;
    /// - the assertion identity, if one was set;
    /// - for a flow that discovers its token endpoint, the words `discovered from the issuer`
    ///   (the URL above is then the issuer as given; the endpoint and method it finds are left
    ///   out: every replica with that configuration finds the same).
    ///
    /// Left out, because they change how the request is sent and not the token: where
    /// `grant_type` travels, the Basic encoding, the assertion's `aud` and lifetime, timeouts,
    /// retries, the claims check and the label.
    ///
    /// `prefix` is the application's namespace (a Redis ACL key pattern can name it): 1 to 100
    /// visible ASCII characters without `{` or `}` (the name's braces are the Redis Cluster
    /// hash tag that keeps a token and its lease in one slot). `secret` must be at least 32
    /// bytes (random, from your secret store), and the same on every replica.
    ///
    /// Fails with a [`Configuration`](crate::TokenErrorKind::Configuration) error for a
    /// prefix or secret that does not fit, or an assertion hook without an identity.
    ///
    /// ```
    /// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
    /// use tower_bearer::store::MemoryStore;
    /// use tower_bearer::TokenCache;
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http::{Request, Response};
    /// # use http_body_util::Full;
    /// # let http_client = tower::service_fn(|_req: Request<Full<Bytes>>| async {
    /// #     Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    /// # });
    ///
    /// let store_secret = [0x5a; 32]; // from your secret store, the same on every replica
    /// let source = ClientCredentials::new(
    ///     ClientCredentialsRequest::new("https://login.partner.example/oauth2/token")
    ///         .unwrap()
    ///         .scope("api.read"),
    ///     ClientAuth::client_secret_basic("client-7", "the client secret"),
    ///     ServiceTransport::new(http_client),
    /// );
    /// let key = source.store_key("billing", &store_secret).unwrap();
    /// assert!(key.as_str().starts_with("billing:{"));
    /// assert!(!key.as_str().contains("client-7"));
    /// let cache = TokenCache::builder(source).store(MemoryStore::new(), key).build();
    /// # let _ = cache;
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn store_key(
        &self,
        prefix: &str,
        secret: &[u8],
    ) -> Result<crate::store::StoreKey, TokenError> {
        if let Err(problem) = check_store_prefix(prefix) {
            return Err(TokenError::configuration(
                format!("the store key prefix {problem}"),
                STORE_PREFIX_HINT,
            ));
        }
        if secret.len() < MIN_STORE_SECRET_LEN {
            return Err(TokenError::configuration(
                format!(
                    "the store key secret is {} bytes; it must be at least \
                     {MIN_STORE_SECRET_LEN}",
                    secret.len()
                ),
                STORE_SECRET_HINT,
            ));
        }
        let mut parts = vec![Cow::Borrowed("client_credentials")];
        // A discovering flow's template request: its URL is the issuer.
        self.request.key_parts(&mut parts);
        self.auth.key_parts(&mut parts)?;
        if self.discovery.is_some() {
            parts.push(Cow::Borrowed("discovered from the issuer"));
        }
        let parts: Vec<&str> = parts.iter().map(|p| p.as_ref()).collect();
        Ok(crate::store::StoreKey::derive(prefix, &parts, secret))
    }

    /// One attempt: make the credentials, build, send, parse.
    async fn attempt(&self) -> Result<Token, TokenError> {
        let (request, auth) = self.endpoint().await?;
        // Errors of this step are redacted by it.
        let credentials = auth.credentials(request.token_url()).await?;
        // The redactor finds the client secret, or this request's assertion, in what the
        // server echoes.
        self.send(request, &credentials)
            .await
            .map_err(|e| e.redact(credentials.redactor()))
    }

    async fn send(
        &self,
        request: &ClientCredentialsRequest,
        credentials: &Credentials<'_>,
    ) -> Result<Token, TokenError> {
        let request = request.http_request(credentials)?;
        let response = tokio::time::timeout(self.attempt_timeout, self.transport.send(request))
            .await
            .map_err(|_| {
                TokenError::new(
                    TokenErrorKind::Timeout,
                    format!(
                        "no answer from {} within {:?}, the attempt timeout",
                        endpoint_name(self.request.token_url()),
                        self.attempt_timeout
                    ),
                )
                .with_hint(
                    "check the route to the token endpoint and its health, or raise the \
                     attempt timeout",
                )
            })??;
        let token = parse_token_response_redacting(
            response.status(),
            response.headers(),
            response.body(),
            Instant::now(),
            SystemTime::now(),
            self.default_lifetime,
            credentials.redactor(),
        );
        // The answer holds the token: wipe it, if no one else holds the buffer (the transport
        // or the HTTP client may still).
        if let Ok(mut body) = response.into_body().try_into_mut() {
            zeroize::Zeroize::zeroize(&mut body[..]);
        }
        let token = token?;
        if let Some(check) = &self.claims {
            check.check(token.access_token().expose_secret(), SystemTime::now())?;
        }
        Ok(token)
    }
}

impl<T: Transport> TokenSource for ClientCredentials<T> {
    async fn token(&self) -> Result<Token, TokenError> {
        let span = tracing::info_span!(
            "token_request",
            provider = %self.label,
            token_url = %self.request().token_url(),
            client_id = %self.auth.client_id(),
            auth = self.auth().method(),
            scope = %self.request.requested_scopes().join(" "),
        );
        tracing::Instrument::instrument(self.token_with_retries(), span).await
    }

    /// The token URL's host (and port, if it names one).
    fn describe(&self) -> Option<String> {
        Some(endpoint_name(self.request.token_url()))
    }
}

impl<T: Transport> ClientCredentials<T> {
    async fn token_with_retries(&self) -> Result<Token, TokenError> {
        let started = Instant::now();
        let mut attempt = 1;
        let mut timeouts = 0;
        loop {
            let error = match self.attempt().await {
                Ok(token) => {
                    tracing::debug!(
                        token = %token.fingerprint(),
                        expires_in_s = token.lifetime().map(|l| l.as_secs()),
                        attempts = attempt,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "token issued"
                    );
                    return Ok(token);
                }
                Err(error) => error,
            };
            if error.kind() == TokenErrorKind::Timeout {
                timeouts += 1;
            }
            let wait = retry_wait(attempt, &error, fastrand::f64());
            match wait {
                Some(wait) if attempt < self.max_attempts => {
                    tracing::info!(
                        attempt,
                        kind = %error.kind(),
                        status = error.status().map(|s| s.as_u16()),
                        retry_in_ms = wait.as_millis() as u64,
                        "token request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => {
                    let error = self.after_attempts(error, attempt, timeouts, started.elapsed());
                    tracing::debug!(
                        attempts = attempt,
                        duration_ms = started.elapsed().as_millis() as u64,
                        %error,
                        "token request failed"
                    );
                    return Err(error);
                }
            }
        }
    }
}

impl<T> ClientCredentials<T> {
    /// The last attempt's error, told as the whole fetch's when it took more than one attempt:
    /// how many, how long in all, and, when every one timed out, the timeout of each.
    fn after_attempts(
        &self,
        error: TokenError,
        attempts: u32,
        timeouts: u32,
        took: Duration,
    ) -> TokenError {
        if attempts < 2 {
            return error;
        }
        // Whole milliseconds: "9.52s", not "9.520113s".
        let took = Duration::from_millis(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
        if timeouts == attempts {
            let host = endpoint_name(self.request.token_url());
            error.map_message(|_| {
                format!(
                    "no token from {host} within {took:?}: {attempts} attempts of {:?} each \
                     timed out",
                    self.attempt_timeout
                )
            })
        } else {
            error.map_message(|message| {
                format!("{message} (the last of {attempts} attempts, {took:?} in all)")
            })
        }
    }
}

/// A transport's error on the way to the issuer's metadata, said as such: the same kind, hint,
/// status and cause, the URL named (the cause stays the source, said once).
fn metadata_error(url: &str, error: TokenError) -> TokenError {
    let url = crate::error::sanitize(url);
    error.map_message(|message| format!("the issuer's metadata at `{url}`: {message}"))
}

/// The shortest store key secret [`ClientCredentials::store_key`] accepts, in bytes.
#[cfg(feature = "redis")]
pub(crate) const MIN_STORE_SECRET_LEN: usize = 32;

/// What to do about a store key secret that is too short.
#[cfg(feature = "redis")]
pub(crate) const STORE_SECRET_HINT: &str = "generate one with `openssl rand -base64 32` (32 random bytes or more), keep it in your \
     secret store and give every replica the same";

/// What to do about a store key prefix that does not fit.
#[cfg(feature = "redis")]
pub(crate) const STORE_PREFIX_HINT: &str =
    "use 1 to 100 visible ASCII characters without `{` or `}`, e.g. your application's name";

/// Whether `prefix` can stand before a store key's `{name}`; what is wrong with it if not.
#[cfg(feature = "redis")]
pub(crate) fn check_store_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() {
        Err("is empty")
    } else if prefix.len() > 100 {
        Err("is longer than 100 characters")
    } else if !prefix.bytes().all(|b| b.is_ascii_graphic()) {
        Err("holds a space, a control or a non-ASCII character")
    } else if prefix.contains(['{', '}']) {
        Err("holds `{` or `}`, which would take the Redis Cluster hash tag from the name")
    } else {
        Ok(())
    }
}

/// How long to wait before attempt `attempt + 1`, or `None` if the error is not worth another
/// attempt now: client errors are final, and a long `Retry-After` is left to the cache.
fn retry_wait(attempt: u32, error: &TokenError, unit: f64) -> Option<Duration> {
    if !error.kind().is_transient() {
        return None;
    }
    // 250 ms doubling, at most 8 times.
    let first = Duration::from_millis(250);
    let jittered = crate::backoff::jittered_exponential(attempt, first, first * 256, unit);
    match error.retry_after() {
        Some(asked) if asked > MAX_RETRY_AFTER_WITHIN_FETCH => None,
        Some(asked) => Some(asked.max(jittered)),
        None => Some(jittered),
    }
}

impl<T> fmt::Debug for ClientCredentials<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("request", &self.request)
            .field("auth", &self.auth)
            .field("default_lifetime", &self.default_lifetime)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("claims", &self.claims)
            .field("label", &self.label)
            .field(
                "issuer",
                &self.discovery.as_deref().map(|d| d.issuer.as_str()),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_errors_are_retried() {
        let server = TokenError::new(TokenErrorKind::Unavailable, "x");
        assert!(retry_wait(1, &server, 1.0).is_some());
        let client = TokenError::new(TokenErrorKind::CredentialsRejected, "x");
        assert_eq!(retry_wait(1, &client, 1.0), None);
    }

    #[test]
    fn retry_waits_grow_and_honour_short_retry_after() {
        let e = TokenError::new(TokenErrorKind::Transport, "x");
        assert_eq!(retry_wait(1, &e, 1.0), Some(Duration::from_millis(250)));
        assert_eq!(retry_wait(2, &e, 1.0), Some(Duration::from_millis(500)));
        assert_eq!(retry_wait(2, &e, 0.0), Some(Duration::from_millis(250)));
        let short = TokenError::new(TokenErrorKind::RateLimited, "x")
            .with_retry_after(Duration::from_secs(2));
        assert_eq!(retry_wait(1, &short, 1.0), Some(Duration::from_secs(2)));
        let long = TokenError::new(TokenErrorKind::RateLimited, "x")
            .with_retry_after(Duration::from_secs(60));
        assert_eq!(retry_wait(1, &long, 1.0), None);
    }
}

#[cfg(all(test, feature = "redis"))]
mod store_key_tests {
    use std::collections::HashSet;

    use super::*;
    use crate::oauth::{ClientAuth, GrantTypeIn};
    use crate::store::StoreKey;

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
    const CLIENT_ID: &str = "client-7f3a";
    const SECRET: &str = "Store-Key-Client-S3cret";
    const FLEET: [u8; 32] = *b"store-key-test-fleet-secret-32by";

    fn request() -> ClientCredentialsRequest {
        ClientCredentialsRequest::new(URL)
            .unwrap()
            .scope("api.read api.write")
    }

    fn flow(request: ClientCredentialsRequest, auth: ClientAuth) -> ClientCredentials<Never> {
        ClientCredentials::new(request, auth, Never)
    }

    fn base() -> ClientCredentials<Never> {
        flow(
            request(),
            ClientAuth::client_secret_basic(CLIENT_ID, SECRET),
        )
    }

    fn key(source: &ClientCredentials<Never>) -> StoreKey {
        source.store_key("billing", &FLEET).unwrap()
    }

    /// Each row changes one thing that makes tokens different: every key differs from the base
    /// and from every other row's.
    #[test]
    fn every_part_changes_the_key() {
        let basic = |id: &str, secret: &str| ClientAuth::client_secret_basic(id, secret);
        let mut rows: Vec<(&str, StoreKey)> = vec![
            ("base", key(&base())),
            (
                "token URL host",
                key(&flow(
                    ClientCredentialsRequest::new("https://login.other.example/oauth2/token")
                        .unwrap()
                        .scope("api.read api.write"),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "token URL query",
                key(&flow(
                    ClientCredentialsRequest::new(&format!("{URL}?p=b2c_1_policy"))
                        .unwrap()
                        .scope("api.read api.write"),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "one scope fewer",
                key(&flow(
                    ClientCredentialsRequest::new(URL)
                        .unwrap()
                        .scope("api.read"),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "one scope more",
                key(&flow(
                    request().scope("api.admin"),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "no scope",
                key(&flow(
                    ClientCredentialsRequest::new(URL).unwrap(),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "a resource",
                key(&flow(
                    request().resource("https://api.partner.example"),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "two resources",
                key(&flow(
                    request()
                        .resource("https://api.partner.example")
                        .resource("https://files.partner.example"),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "the resources in the other order",
                key(&flow(
                    request()
                        .resource("https://files.partner.example")
                        .resource("https://api.partner.example"),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "an audience",
                key(&flow(
                    request().audience("partner-api"),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "an empty audience (sent as `audience=`)",
                key(&flow(request().audience(""), basic(CLIENT_ID, SECRET))),
            ),
            (
                "an extra parameter",
                key(&flow(
                    request().param("tenant", "t1"),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "another value of the extra parameter",
                key(&flow(
                    request().param("tenant", "t2"),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                // Boundaries: a scope moved into a parameter is not the same request.
                "a parameter named like a scope",
                key(&flow(
                    ClientCredentialsRequest::new(URL)
                        .unwrap()
                        .scope("api.read")
                        .param("api.write", ""),
                    basic(CLIENT_ID, SECRET),
                )),
            ),
            (
                "client id",
                key(&flow(request(), basic("client-other", SECRET))),
            ),
            (
                "client secret",
                key(&flow(request(), basic(CLIENT_ID, "Another-S3cret"))),
            ),
            (
                "method client_secret_post",
                key(&flow(
                    request(),
                    ClientAuth::client_secret_post(CLIENT_ID, SECRET),
                )),
            ),
            (
                "an assertion identity on a secret",
                key(&flow(
                    request(),
                    basic(CLIENT_ID, SECRET).assertion_identity("label"),
                )),
            ),
            (
                "hook, identity A",
                key(&flow(request(), hook().assertion_identity("vault:key@1"))),
            ),
            (
                "hook, identity B",
                key(&flow(request(), hook().assertion_identity("vault:key@2"))),
            ),
            (
                "the same URL as the issuer to discover the endpoint from",
                key(&base().discover(Discovery {
                    issuer: URL.to_owned(),
                    urls: crate::oauth::discovery::metadata_urls(URL).unwrap(),
                    allow_insecure_http: false,
                    post_fallback: None,
                    resolved: tokio::sync::OnceCell::new(),
                })),
            ),
            ("prefix", base().store_key("payments", &FLEET).unwrap()),
            (
                "fleet secret",
                base()
                    .store_key("billing", b"another-fleet-secret-of-32-bytes")
                    .unwrap(),
            ),
        ];
        #[cfg(feature = "private-key-jwt")]
        rows.extend(private_key_jwt_rows());
        let mut seen = HashSet::new();
        for (name, key) in &rows {
            assert!(seen.insert(key.clone()), "{name}: {key:?} repeats a key");
        }
        assert_eq!(seen.len(), rows.len());
    }

    fn hook() -> ClientAuth {
        ClientAuth::client_assertion(CLIENT_ID, |_| async { Ok(String::from("eyJ.e30.c2ln")) })
    }

    #[cfg(feature = "private-key-jwt")]
    fn private_key_jwt_rows() -> Vec<(&'static str, StoreKey)> {
        use crate::oauth::assertion::{Algorithm, JwtSigner};
        let rsa = include_str!("../../tests/fixtures/rsa-pkcs8.pem");
        let ec = include_str!("../../tests/fixtures/ec-pkcs8.pem");
        let cert = include_str!("../../tests/fixtures/rsa-cert.pem");
        let signer = |pem: &str, alg| JwtSigner::from_pem(pem, alg).unwrap();
        let jwt = |signer: JwtSigner| {
            key(&flow(
                request(),
                ClientAuth::private_key_jwt(CLIENT_ID, signer),
            ))
        };
        let rows = vec![
            (
                "private_key_jwt, RSA key",
                jwt(signer(rsa, Algorithm::Rs256)),
            ),
            ("private_key_jwt, EC key", jwt(signer(ec, Algorithm::Es256))),
            (
                "private_key_jwt, RSA key with its certificate",
                jwt(signer(rsa, Algorithm::Rs256)
                    .with_certificate_pem(cert)
                    .unwrap()),
            ),
            (
                "private_key_jwt, RSA key with a kid",
                jwt(signer(rsa, Algorithm::Rs256).with_kid("key-1")),
            ),
            (
                "private_key_jwt, RSA key with another kid",
                jwt(signer(rsa, Algorithm::Rs256).with_kid("key-2")),
            ),
        ];
        // The same key, read again: the same store key (a public key hash, no randomness).
        assert_eq!(rows[0].1, jwt(signer(rsa, Algorithm::Rs256)));
        rows
    }

    /// Configurations that ask for the same tokens share the key, however they were built:
    /// scope order and repeats, the Basic encoding, where `grant_type` travels, and the
    /// settings that only change how a request is sent.
    #[test]
    fn equal_configurations_give_equal_keys() {
        let expected = key(&base());
        // Built twice, from scratch.
        assert_eq!(key(&base()), expected);
        let same = [
            flow(
                ClientCredentialsRequest::new(URL)
                    .unwrap()
                    .scope("api.write")
                    .scope("api.read api.write"),
                ClientAuth::client_secret_basic(CLIENT_ID, SECRET),
            ),
            flow(
                request(),
                ClientAuth::client_secret_basic_raw(CLIENT_ID, SECRET).unwrap(),
            ),
            flow(
                request().grant_type_in(GrantTypeIn::Query),
                ClientAuth::client_secret_basic(CLIENT_ID, SECRET)
                    .assertion_audience("https://elsewhere.example"),
            ),
            base()
                .label("partner")
                .attempt_timeout(Duration::from_secs(1))
                .max_attempts(7)
                .default_lifetime(Duration::from_secs(60))
                .check_claims(ClaimsCheck::new().audience("x")),
        ];
        for source in &same {
            assert_eq!(key(source), expected, "{source:?}");
        }
    }

    /// The name is a keyed hash: neither the client id, the secret, the scopes nor the host
    /// are in it, nor an unkeyed hash of the secret (which a dictionary could reverse).
    #[test]
    fn the_key_shows_nothing_of_the_configuration() {
        use sha2::{Digest, Sha256};
        let key = key(&base());
        let name = key.as_str();
        let shown = format!("{key:?} {key}");
        let unkeyed: String = Sha256::digest(SECRET.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        for clear in [CLIENT_ID, SECRET, "api.read", "partner", &unkeyed[..8]] {
            assert!(!shown.contains(clear), "{clear} in {shown}");
        }
        // prefix, ":{", 40 hex digits, "}"
        assert_eq!(name.len(), "billing:{}".len() + 40, "{name}");
        assert!(
            name["billing:{".len()..name.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        );
    }

    /// The key is `StoreKey::derive` of the documented parts, and the same value in every
    /// process, build and platform: a fixed vector (a change of the derivation shows here; it
    /// would split a fleet running two versions during a rollout).
    #[test]
    fn the_key_is_the_documented_derivation_and_a_fixed_value() {
        let source = flow(
            request()
                .resource("https://api.partner.example")
                .audience("partner-api")
                .param("tenant", "t1"),
            ClientAuth::client_secret_post(CLIENT_ID, SECRET),
        );
        let parts = [
            "client_credentials",
            URL,
            "2",
            "api.read",
            "api.write",
            "1",
            "https://api.partner.example",
            "1",
            "partner-api",
            "1",
            "tenant",
            "t1",
            CLIENT_ID,
            "client_secret_post",
            SECRET,
            "0",
        ];
        let key = key(&source);
        assert_eq!(key, StoreKey::derive("billing", &parts, &FLEET));
        // Also computed with Python's `hmac` module from the parts above: the derivation is
        // plain HMAC-SHA256 (RFC 2104), readable by any implementation.
        assert_eq!(
            key.as_str(),
            "billing:{e6be61bb601961a88c4c17788021b5f9075f8d29}"
        );
    }

    #[test]
    fn unusable_prefixes_secrets_and_hooks_are_configuration_errors() {
        let source = base();
        for prefix in ["", "a b", "app{x}", "app}", "é", &"p".repeat(101)] {
            let err = source.store_key(prefix, &FLEET).unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::Configuration, "{prefix:?}");
            assert!(err.to_string().contains("prefix"), "{err}");
        }
        assert!(source.store_key(&"p".repeat(100), &FLEET).is_ok());
        let err = source.store_key("billing", &FLEET[..31]).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
        assert!(err.to_string().contains("31 bytes"), "{err}");
        assert!(err.hint().unwrap().contains("openssl rand"), "{err}");
        assert!(source.store_key("billing", &[7; 64]).is_ok());

        let err = flow(request(), hook())
            .store_key("billing", &FLEET)
            .unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
        assert!(err.hint().unwrap().contains("assertion_identity"), "{err}");
    }
}
