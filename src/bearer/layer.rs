//! [`BearerTokenLayer`]: adds `Authorization: Bearer <token>` to every request of a service.

use std::fmt;
use std::time::Duration;

use tower_layer::Layer;

use super::routes::RoutedBearerTokenLayer;
use super::service::{BearerToken, ExistingAuthorization};
use crate::cache::TokenCache;
use crate::destination::{DestinationPolicy, OtherHosts};
use crate::error::DestinationConfigError;
use crate::redirect::CrossOriginRedirects;
use crate::source::TokenSource;

/// A [`Layer`] that authenticates every request with a bearer token from a [`TokenSource`],
/// cached by a [`TokenCache`].
///
/// The token goes only to the origin a request addresses: never over plain `http://` except
/// to loopback (see [`allow_insecure_http`](Self::allow_insecure_http)), with an
/// [`allowed_hosts`](Self::allowed_hosts) list only to those hosts and ports, never when the
/// `Host` header disagrees with the URI, and never to another origin a redirect points to
/// (see [`crate::redirect`] for the safe orders with `FollowRedirect`, `Retry`, the replay
/// layer and reqwest). Each time it withholds the token it logs a DEBUG event and counts
/// [`tower_bearer_tokens_withheld_total`](crate::metrics::TOKENS_WITHHELD) with the reason.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_bearer::{token_source_fn, BearerTokenLayer, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let source = token_source_fn(|| async {
///     Ok(Token::new("eyJhbGciOi...").with_expires_in(Duration::from_secs(3600)))
/// });
/// let client = ServiceBuilder::new()
///     .layer(BearerTokenLayer::new(source))
///     .service(service_fn(|req: Request<String>| async move {
///         let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
///         Ok::<_, Infallible>(Response::new(auth))
///     }));
///
/// let request = Request::get("https://api.partner.example/v1/items").body(String::new()).unwrap();
/// let response = client.oneshot(request).await.unwrap();
/// assert_eq!(response.body(), "Bearer eyJhbGciOi...");
/// # }
/// ```
pub struct BearerTokenLayer {
    cache: TokenCache,
    existing: ExistingAuthorization,
    destination: DestinationPolicy,
    redirects: CrossOriginRedirects,
    max_wait: Option<Duration>,
}

impl BearerTokenLayer {
    /// A layer whose tokens come from `source`, through a [`TokenCache`] with default settings.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|req: http::Request<()>| async move {
    /// #     let auth = req.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(auth))
    /// # });
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("eyJ..."))).layer(api);
    /// let request = http::Request::get("https://api.partner.example/v1").body(()).unwrap();
    /// let response = client.oneshot(request).await.unwrap();
    /// // `api` answers with the `Authorization` header it was sent.
    /// assert_eq!(response.body().as_deref(), Some("Bearer eyJ..."));
    /// # }
    /// ```
    pub fn new(source: impl TokenSource + 'static) -> Self {
        Self::from_cache(TokenCache::new(source))
    }
}

impl BearerTokenLayer {
    /// One layer for several APIs: each origin a route with a [`TokenCache`] of its own (an
    /// audience or scope per API); the request's origin picks the token. See
    /// [`RoutedBearerTokenLayer`].
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// let layer = BearerTokenLayer::routes()
    ///     .route("https://billing.partner.example", TokenCache::new(StaticToken::new(Token::new("b"))))?
    ///     .route("https://files.partner.example", TokenCache::new(StaticToken::new(Token::new("f"))))?;
    /// # let _ = layer;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn routes() -> RoutedBearerTokenLayer {
        RoutedBearerTokenLayer::new()
    }

    /// A layer that uses `cache`; layers and other users of the same cache share its token.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|req: http::Request<()>| async move {
    /// #     let auth = req.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(auth))
    /// # });
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let orders = BearerTokenLayer::from_cache(cache.clone()).layer(api.clone());
    /// let invoices = BearerTokenLayer::from_cache(cache.clone()).layer(api);
    /// let get = |path| http::Request::get(path).body(()).unwrap();
    /// orders.oneshot(get("https://api.partner.example/orders")).await.unwrap();
    /// invoices.oneshot(get("https://api.partner.example/invoices")).await.unwrap();
    /// assert_eq!(cache.stats().fetches, 1); // one token for both
    /// # }
    /// ```
    pub fn from_cache(cache: TokenCache) -> Self {
        Self {
            cache,
            existing: ExistingAuthorization::default(),
            destination: DestinationPolicy::default(),
            redirects: CrossOriginRedirects::default(),
            max_wait: None,
        }
    }

    /// How long a request waits for a token at most, when none is cached and a fetch is
    /// running; it also bounds a `401`'s replay's wait for a new token. After it the request
    /// fails with a [`Timeout`](crate::error::TokenErrorKind::Timeout) error that says what it
    /// waited for and how long; the fetch goes on, and later requests get its token. A request
    /// never waits longer than the fetch may take, whatever this says. Default: the cache's
    /// [`max_wait`](crate::TokenCacheBuilder::max_wait),
    /// [`DEFAULT_MAX_WAIT`](crate::cache::DEFAULT_MAX_WAIT) (10 s) unless set there.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// let layer = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
    ///     .max_wait(Duration::from_secs(2));
    /// # let _ = layer;
    /// ```
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// What to do with a request that already has an `Authorization` header.
    /// Default: [`ExistingAuthorization::Overwrite`].
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::{BearerTokenLayer, ExistingAuthorization, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|req: http::Request<()>| async move {
    /// #     let auth = req.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(auth))
    /// # });
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
    ///     .existing_authorization(ExistingAuthorization::Keep)
    ///     .layer(api);
    /// let request = http::Request::get("https://api.partner.example/")
    ///     .header("authorization", "Basic dXNlcjpwdw==")
    ///     .body(())
    ///     .unwrap();
    /// let response = client.oneshot(request).await.unwrap();
    /// assert_eq!(response.body().as_deref(), Some("Basic dXNlcjpwdw==")); // what `api` got
    /// # }
    /// ```
    pub fn existing_authorization(mut self, existing: ExistingAuthorization) -> Self {
        self.existing = existing;
        self
    }

    /// Allows sending the token over plain `http://` to hosts that are not loopback.
    ///
    /// Off by default: a bearer token sent in clear text can be replayed by anyone on the path.
    /// Loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) are always allowed.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|req: http::Request<()>| async move {
    /// #     let auth = req.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(auth))
    /// # });
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
    ///     .allow_insecure_http(true) // a private network, trusted
    ///     .layer(api);
    /// let request = http::Request::get("http://inventory.internal/v1").body(()).unwrap();
    /// let response = client.oneshot(request).await.unwrap();
    /// assert_eq!(response.body().as_deref(), Some("Bearer t")); // what `api` got
    /// # }
    /// ```
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.destination.allow_insecure_http = allow;
        self
    }

    /// Sends the token only to these hosts; requests to other hosts are handled as
    /// [`other_hosts`](Self::other_hosts) says.
    ///
    /// Each entry is a host (compared case-insensitively), optionally with a port and a
    /// scheme:
    ///
    /// | entry | matches |
    /// | --- | --- |
    /// | `api.example.com` | that host on the scheme's default port (443 for https, 80 for http) |
    /// | `api.example.com:8443` | that host on port 8443 |
    /// | `*.example.com` | any subdomain of `example.com` (not `example.com`), default port |
    /// | `https://api.example.com:8443` | only over https, port 8443 |
    /// | `localhost:*` | any port |
    ///
    /// A host entry without a port means the default port only, as an origin does: a token
    /// meant for `https://api.example.com` must not reach another service on
    /// `api.example.com:8443`. The scheme check (https, or loopback, or
    /// [`allow_insecure_http`](Self::allow_insecure_http)) applies on top.
    ///
    /// With an allow-list, a request whose `Host` header names another host or port than its
    /// URI is refused ([`HostMismatch`](crate::error::DestinationErrorKind::HostMismatch)), and
    /// an origin-form request (a path-only URI) is judged by its `Host` header if it has one.
    /// An origin-form request without `Host` (as tonic hands to its `Channel`) is not checked
    /// unless the layer has an [`origin`](Self::origin).
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// let layer = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
    ///     .allowed_hosts(["api.partner.example", "*.kpn.example", "files.example:8443"])?;
    /// # let _ = layer;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn allowed_hosts<I>(mut self, hosts: I) -> Result<Self, DestinationConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.destination.set_allowed_hosts(hosts)?;
        Ok(self)
    }

    /// The origin (`https://host[:port]`) of the requests this layer authenticates, for
    /// clients whose requests carry only a path, such as tonic's `Channel` (which adds its own
    /// origin after the layers run).
    ///
    /// Origin-form requests are then checked as if they went to this origin (scheme, allow-list,
    /// `Host` header), and requests whose URI names another origin are handled as
    /// [`other_hosts`](Self::other_hosts) says: the token is for this origin only.
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// // In front of `tonic::transport::Channel::from_static("https://grpc.partner.example")`.
    /// let layer = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
    ///     .origin("https://grpc.partner.example")?;
    /// # let _ = layer;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn origin(mut self, origin: &str) -> Result<Self, DestinationConfigError> {
        self.destination.set_origin(origin)?;
        Ok(self)
    }

    /// What to do when the answer to a request that carried the token redirects to another
    /// origin. Default: [`CrossOriginRedirects::Refuse`]. See [`crate::redirect`] for the safe
    /// ways to follow redirects.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::redirect::{CrossOriginRedirects, RedirectLocation};
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|_req: http::Request<()>| async {
    /// #     let redirect = http::Response::builder().status(302)
    /// #         .header("location", "https://cdn.example/file").body(()).unwrap();
    /// #     Ok::<_, std::convert::Infallible>(redirect)
    /// # });
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
    ///     .cross_origin_redirects(CrossOriginRedirects::HideLocation)
    ///     .layer(api);
    /// let request = http::Request::get("https://api.example/file").body(()).unwrap();
    /// let response = client.oneshot(request).await.unwrap(); // the 302, not an error
    /// assert_eq!(response.status(), 302);
    /// assert!(response.extensions().get::<RedirectLocation>().is_some());
    /// # }
    /// ```
    pub fn cross_origin_redirects(mut self, redirects: CrossOriginRedirects) -> Self {
        self.redirects = redirects;
        self
    }

    /// What to do with requests to hosts outside [`allowed_hosts`](Self::allowed_hosts).
    /// Default: [`OtherHosts::Reject`].
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::{BearerTokenLayer, OtherHosts, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|req: http::Request<()>| async move {
    /// #     let auth = req.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(auth))
    /// # });
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
    ///     .allowed_hosts(["api.partner.example"]).unwrap()
    ///     .other_hosts(OtherHosts::SendWithoutToken)
    ///     .layer(api);
    /// let request = http::Request::get("https://status.example/").body(()).unwrap();
    /// let response = client.oneshot(request).await.unwrap();
    /// assert_eq!(response.body(), &None); // `api` got no `Authorization`
    /// # }
    /// ```
    pub fn other_hosts(mut self, other: OtherHosts) -> Self {
        self.destination.other_hosts = other;
        self
    }

    /// The cache behind the layer.
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = BearerTokenLayer::new(StaticToken::new(Token::new("t")));
    /// layer.cache().prefetch().await.unwrap(); // at start-up, before the first request
    /// assert!(layer.cache().is_ready());
    /// # }
    /// ```
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The layer's [`max_wait`](Self::max_wait), for a layer that reports refusals of its
    /// tokens (`grpc`): what waits for their replacement waits no longer than a request.
    #[cfg(feature = "grpc")]
    pub(crate) fn wait_limit(&self) -> Option<Duration> {
        self.max_wait
    }
}

impl<S> Layer<S> for BearerTokenLayer {
    type Service = BearerToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerToken::build(
            inner,
            self.cache.clone(),
            self.existing,
            self.destination.clone(),
            self.redirects,
            self.max_wait,
        )
    }
}

impl Clone for BearerTokenLayer {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            existing: self.existing,
            destination: self.destination.clone(),
            redirects: self.redirects,
            max_wait: self.max_wait,
        }
    }
}

impl fmt::Debug for BearerTokenLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokenLayer")
            .field("cache", &self.cache)
            .field("existing", &self.existing)
            .field("destination", &self.destination)
            .field("redirects", &self.redirects)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}
