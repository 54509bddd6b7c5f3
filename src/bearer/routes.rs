//! [`RoutedBearerTokenLayer`]: one layer for a client that calls several APIs, each origin with
//! a token of its own (another audience, scope or client), and the [`RoutedBearerToken`]
//! service it makes. The request's origin picks the route; the route's cache gives the token.
//! Responses are the single-cache layer's [`ResponseFuture`], so a `401` drops the token of
//! the cache that granted it (its ticket names that cache).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{AUTHORIZATION, HOST};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::future::{Carried, MaxWait, ResponseFuture};
use super::service::{ExistingAuthorization, withheld};
use crate::cache::{Grant, Handle, TokenCache};
use crate::destination::{DestinationPolicy, OtherHosts, Verdict};
use crate::error::{DestinationConfigError, DestinationError, DestinationErrorKind, Error};
use crate::origin::{Origin, default_port, is_loopback};
use crate::redirect::CrossOriginRedirects;

/// A [`Layer`] that sends each request with the token of its origin: routes map an origin
/// (`https://host[:port]`) to a [`TokenCache`], so one client calls several APIs that want
/// tokens for different audiences or scopes. Made with
/// [`BearerTokenLayer::routes`](crate::BearerTokenLayer::routes).
///
/// A request goes to the route whose origin is its URI's (scheme, host and port, compared as
/// [`origin`](crate::BearerTokenLayer::origin) compares them). A request to any other origin,
/// or with a path-only URI, gets no token: it fails with a
/// [`HostNotAllowed`](crate::error::DestinationErrorKind::HostNotAllowed) error, or goes out
/// without a token if [`other_hosts`](Self::other_hosts) says
/// [`OtherHosts::SendWithoutToken`]. (A tonic `Channel` hands its layers path-only URIs: give
/// each channel a [`BearerTokenLayer`](crate::BearerTokenLayer) with its
/// [`origin`](crate::BearerTokenLayer::origin) instead.) Within a route the single-cache layer's rules hold: plain
/// `http://` only to loopback unless [allowed](Self::allow_insecure_http), the `Host` header
/// must name the route's origin, no token to another origin a redirect points to, and a `401`
/// drops the token of that route's cache only. A request refused or sent on for want of a
/// route is logged at DEBUG; the withheld-token metric, labelled by cache, does not count it.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_bearer::{token_source_fn, BearerTokenLayer, Token, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let billing = TokenCache::new(token_source_fn(|| async {
///     Ok(Token::new("billing-token").with_expires_in(Duration::from_secs(3600)))
/// }));
/// let files = TokenCache::new(token_source_fn(|| async {
///     Ok(Token::new("files-token").with_expires_in(Duration::from_secs(3600)))
/// }));
/// let client = ServiceBuilder::new()
///     .layer(
///         BearerTokenLayer::routes()
///             .route("https://billing.partner.example", billing)?
///             .route("https://files.partner.example:8443", files)?,
///     )
///     .service(service_fn(|req: Request<()>| async move {
///         Ok::<_, Infallible>(Response::new(req.headers()["authorization"].clone()))
///     }));
///
/// let get = |uri: &str| Request::get(uri).body(()).unwrap();
/// let answer = client.clone().oneshot(get("https://billing.partner.example/v1/invoices")).await?;
/// assert_eq!(answer.body(), "Bearer billing-token");
/// let answer = client.clone().oneshot(get("https://files.partner.example:8443/v2/")).await?;
/// assert_eq!(answer.body(), "Bearer files-token");
/// // No route for this origin: refused, not sent.
/// assert!(client.oneshot(get("https://elsewhere.example/")).await.is_err());
/// # Ok(()) }
/// ```
pub struct RoutedBearerTokenLayer {
    routes: Vec<Route>,
    existing: ExistingAuthorization,
    allow_insecure_http: bool,
    other_hosts: OtherHosts,
    redirects: CrossOriginRedirects,
    max_wait: Option<Duration>,
}

/// An origin and the cache of its tokens.
#[derive(Clone)]
struct Route {
    origin: Arc<Origin>,
    cache: TokenCache,
}

impl RoutedBearerTokenLayer {
    pub(super) fn new() -> Self {
        Self {
            routes: Vec::new(),
            existing: ExistingAuthorization::default(),
            allow_insecure_http: false,
            other_hosts: OtherHosts::Reject,
            redirects: CrossOriginRedirects::default(),
            max_wait: None,
        }
    }

    /// Sends requests to `origin` (`https://host[:port]`; a path is ignored) with tokens from
    /// `cache`. Several origins may share a cache (the same token for each). Fails if `origin`
    /// is not an origin or already has a route.
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let duplicate = BearerTokenLayer::routes()
    ///     .route("https://api.partner.example", cache.clone())?
    ///     .route("HTTPS://API.partner.example:443/", cache);
    /// assert!(duplicate.is_err());
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn route(
        mut self,
        origin: &str,
        cache: TokenCache,
    ) -> Result<Self, DestinationConfigError> {
        let parsed =
            Origin::parse(origin).map_err(|reason| DestinationConfigError::new(origin, reason))?;
        if self.routes.iter().any(|r| *r.origin == parsed) {
            return Err(DestinationConfigError::new(
                origin,
                "this origin has a route already: give each origin one cache",
            ));
        }
        self.routes.push(Route {
            origin: Arc::new(parsed),
            cache,
        });
        Ok(self)
    }

    /// What to do with a request to an origin without a route. Default: [`OtherHosts::Reject`].
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, OtherHosts, StaticToken, Token, TokenCache};
    ///
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let layer = BearerTokenLayer::routes()
    ///     .route("https://api.partner.example", cache)?
    ///     .other_hosts(OtherHosts::SendWithoutToken);
    /// # let _ = layer;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn other_hosts(mut self, other: OtherHosts) -> Self {
        self.other_hosts = other;
        self
    }

    /// Allows the token over plain `http://` to routes whose host is not loopback. Off by
    /// default; see [`BearerTokenLayer::allow_insecure_http`](crate::BearerTokenLayer::allow_insecure_http).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{BearerTokenLayer, ExistingAuthorization, StaticToken, Token, TokenCache};
    /// use tower_bearer::redirect::CrossOriginRedirects;
    ///
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let layer = BearerTokenLayer::routes()
    ///     .route("http://api.internal.example", cache)?
    ///     .allow_insecure_http(true);
    /// # let _ = layer;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// How long a request waits for a token at most; see
    /// [`BearerTokenLayer::max_wait`](crate::BearerTokenLayer::max_wait).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{BearerTokenLayer, ExistingAuthorization, StaticToken, Token, TokenCache};
    /// use tower_bearer::redirect::CrossOriginRedirects;
    ///
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let layer = BearerTokenLayer::routes()
    ///     .route("http://api.internal.example", cache)?
    ///     .max_wait(Duration::from_secs(2));
    /// # let _ = layer;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// What to do with a request that already has an `Authorization` header.
    /// Default: [`ExistingAuthorization::Overwrite`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{BearerTokenLayer, ExistingAuthorization, StaticToken, Token, TokenCache};
    /// use tower_bearer::redirect::CrossOriginRedirects;
    ///
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let layer = BearerTokenLayer::routes()
    ///     .route("http://api.internal.example", cache)?
    ///     .existing_authorization(ExistingAuthorization::Keep);
    /// # let _ = layer;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn existing_authorization(mut self, existing: ExistingAuthorization) -> Self {
        self.existing = existing;
        self
    }

    /// What to do when an answer redirects to another origin. Default:
    /// [`CrossOriginRedirects::Refuse`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{BearerTokenLayer, ExistingAuthorization, StaticToken, Token, TokenCache};
    /// use tower_bearer::redirect::CrossOriginRedirects;
    ///
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let layer = BearerTokenLayer::routes()
    ///     .route("http://api.internal.example", cache)?
    ///     .cross_origin_redirects(CrossOriginRedirects::HideLocation);
    /// # let _ = layer;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn cross_origin_redirects(mut self, redirects: CrossOriginRedirects) -> Self {
        self.redirects = redirects;
        self
    }

    /// The cache of the route for `origin`, if it has one.
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let layer = BearerTokenLayer::routes().route("https://api.partner.example", cache)?;
    /// assert!(layer.cache("https://api.partner.example:443").is_some());
    /// assert!(layer.cache("https://other.example").is_none());
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn cache(&self, origin: &str) -> Option<&TokenCache> {
        let origin = Origin::parse(origin).ok()?;
        self.routes
            .iter()
            .find(|r| *r.origin == origin)
            .map(|r| &r.cache)
    }

    /// [`TokenCache::prefetch`] for every route, at the same time: `Ok` once each holds a
    /// token, or the first error. For start-up.
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = BearerTokenLayer::routes()
    ///     .route("https://a.example", TokenCache::new(StaticToken::new(Token::new("a"))))?
    ///     .route("https://b.example", TokenCache::new(StaticToken::new(Token::new("b"))))?;
    /// assert!(!layer.is_ready());
    /// layer.prefetch().await?;
    /// assert!(layer.is_ready());
    /// # Ok(()) }
    /// ```
    pub async fn prefetch(&self) -> Result<(), crate::TokenError> {
        futures_util::future::try_join_all(self.routes.iter().map(|r| r.cache.prefetch()))
            .await
            .map(drop)
    }

    /// Whether every route's cache [is ready](TokenCache::is_ready): for readiness checks
    /// (with a [`prefetch`](Self::prefetch) when it is not: see [`TokenCache::is_ready`]).
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = BearerTokenLayer::routes()
    ///     .route("https://a.example", TokenCache::new(StaticToken::new(Token::new("a"))))?;
    /// let ready = layer.is_ready() || layer.prefetch().await.is_ok();
    /// assert!(ready);
    /// # Ok(()) }
    /// ```
    pub fn is_ready(&self) -> bool {
        self.routes.iter().all(|r| r.cache.is_ready())
    }

    /// [`TokenCache::shutdown`] for every route's cache.
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cache = TokenCache::new(StaticToken::new(Token::new("a")));
    /// let layer = BearerTokenLayer::routes().route("https://a.example", cache.clone())?;
    /// layer.prefetch().await?;
    /// layer.shutdown();
    /// assert!(!cache.is_ready());
    /// # Ok(()) }
    /// ```
    pub fn shutdown(&self) {
        self.routes.iter().for_each(|r| r.cache.shutdown());
    }
}

impl<S> Layer<S> for RoutedBearerTokenLayer {
    type Service = RoutedBearerToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let routes = self
            .routes
            .iter()
            .map(|route| ServiceRoute {
                plain: route.origin.is_https()
                    || self.allow_insecure_http
                    || is_loopback(route.origin.host()),
                authority: format!("{}:{}", route.origin.host(), route.origin.port()).into(),
                default_port: default_port(route.origin.scheme()) == Some(route.origin.port()),
                handle: route.cache.handle(),
                policy: DestinationPolicy {
                    allow_insecure_http: self.allow_insecure_http,
                    allowed_hosts: None,
                    other_hosts: OtherHosts::Reject,
                    origin: Some(Arc::clone(&route.origin)),
                },
                route: route.clone(),
            })
            .collect();
        RoutedBearerToken {
            inner,
            routes,
            existing: self.existing,
            other_hosts: self.other_hosts,
            redirects: self.redirects,
            max_wait: self.max_wait,
            carried_max_wait: MaxWait::new(self.max_wait),
        }
    }
}

impl Clone for RoutedBearerTokenLayer {
    fn clone(&self) -> Self {
        Self {
            routes: self.routes.clone(),
            existing: self.existing,
            allow_insecure_http: self.allow_insecure_http,
            other_hosts: self.other_hosts,
            redirects: self.redirects,
            max_wait: self.max_wait,
        }
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("origin", &format_args!("{}", self.origin))
            .field("cache", &self.cache)
            .finish()
    }
}

impl fmt::Debug for RoutedBearerTokenLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedBearerTokenLayer")
            .field("routes", &self.routes)
            .field("existing", &self.existing)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("other_hosts", &self.other_hosts)
            .field("redirects", &self.redirects)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

/// A route as a service holds it: with its handle on the cache and the destination policy of
/// its one origin.
#[derive(Clone)]
struct ServiceRoute {
    route: Route,
    handle: Handle,
    policy: DestinationPolicy,
    /// The origin may carry the token (https, loopback, or plain http allowed): a request to
    /// it without a `Host` header or extensions (a pinned redirect hop) needs no other check,
    /// and skips the policy's general one (which parses the URI's origin again).
    plain: bool,
    /// `host:port` of the origin, for the scan of `route_of`.
    authority: Box<str>,
    /// The origin's port is its scheme's default: `host` alone names it too.
    default_port: bool,
}

/// Adds the token of the request's origin to each request, then calls the inner service; made
/// by [`RoutedBearerTokenLayer`].
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let inner = service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
/// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
/// let service = BearerTokenLayer::routes()
///     .route("https://api.partner.example", cache)?
///     .layer(inner);
/// let request = Request::get("https://api.partner.example/v1").body(())?;
/// assert!(service.oneshot(request).await.is_ok());
/// # Ok(()) }
/// ```
pub struct RoutedBearerToken<S> {
    inner: S,
    routes: Box<[ServiceRoute]>,
    existing: ExistingAuthorization,
    other_hosts: OtherHosts,
    redirects: CrossOriginRedirects,
    max_wait: Option<Duration>,
    carried_max_wait: MaxWait,
}

impl<S> RoutedBearerToken<S> {
    /// The inner service.
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// # struct HttpClient { pool_size: usize }
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let layer = BearerTokenLayer::routes().route("https://api.partner.example", cache)?;
    /// let service = layer.layer(HttpClient { pool_size: 8 });
    /// assert_eq!(service.get_ref().pool_size, 8);
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// # struct HttpClient { pool_size: usize }
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let layer = BearerTokenLayer::routes().route("https://api.partner.example", cache)?;
    /// let mut service = layer.layer(HttpClient { pool_size: 8 });
    /// service.get_mut().pool_size = 16;
    /// assert_eq!(service.get_ref().pool_size, 16);
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// # struct HttpClient { pool_size: usize }
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let layer = BearerTokenLayer::routes().route("https://api.partner.example", cache)?;
    /// let client: HttpClient = layer.layer(HttpClient { pool_size: 8 }).into_inner();
    /// assert_eq!(client.pool_size, 8);
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RoutedBearerToken<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResBody>;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<S, ReqBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Service)
    }

    #[inline]
    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if self.existing == ExistingAuthorization::Keep
            && request.headers().contains_key(AUTHORIZATION)
        {
            return ResponseFuture::called(self.inner.call(request), None);
        }
        let Some(index) = route_of(&self.routes, request.uri()) else {
            return self.unrouted(request);
        };
        let route = &mut self.routes[index];
        let verdict = if route.plain
            && request.extensions().is_empty()
            && !request.headers().contains_key(HOST)
        {
            Ok(Verdict::Attach)
        } else {
            route.policy.check(&request)
        };
        match verdict {
            Ok(Verdict::Attach) => {}
            Ok(Verdict::Skip(reason)) => {
                withheld(&route.route.cache, reason, request.uri());
                return ResponseFuture::called(self.inner.call(request), None);
            }
            Err(error) => {
                withheld(&route.route.cache, error.kind(), request.uri());
                return ResponseFuture::failed(Error::Destination(error));
            }
        }
        match route
            .route
            .cache
            .grant(&mut route.handle, request.headers_mut())
        {
            Grant::Ready(ticket) => {
                let carried = Carried::new(ticket, &request, self.redirects, self.carried_max_wait);
                ResponseFuture::called(self.inner.call(request), Some(carried))
            }
            Grant::Wait(wait) => {
                let wait = match self.max_wait {
                    Some(max_wait) => wait.max_wait(max_wait),
                    None => wait,
                };
                // `self.inner` is ready; take it for this request and leave a clone, which
                // the next `poll_ready` drives to readiness.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::waiting(wait, ready, request, self.redirects, self.carried_max_wait)
            }
            Grant::Failed(error) => ResponseFuture::failed(Error::Token(error)),
        }
    }
}

/// The index of the route for `uri`'s origin. A handful of routes: a scan without allocation
/// beats hashing the host. First as written (a scheme and authority compared as text, which is
/// how clients write URIs), then by the origin's rules (user information, IPv6 spellings);
/// both agree (`Origin::is_origin_of`), the first is a few times cheaper.
#[inline]
fn route_of(routes: &[ServiceRoute], uri: &http::Uri) -> Option<usize> {
    if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
        let authority = authority.as_str();
        if let Some(index) = routes.iter().position(|r| r.written_as(scheme, authority)) {
            return Some(index);
        }
    }
    routes.iter().position(|r| r.route.origin.is_origin_of(uri))
}

impl ServiceRoute {
    /// Whether a URI with this scheme and authority is of this route's origin, as written: the
    /// origin's own spelling (any case), with its port, or without it if it is the default.
    #[inline]
    fn written_as(&self, scheme: &str, authority: &str) -> bool {
        scheme.eq_ignore_ascii_case(self.route.origin.scheme())
            && (authority.eq_ignore_ascii_case(&self.authority)
                || (self.default_port && authority.eq_ignore_ascii_case(self.route.origin.host())))
    }
}

impl<S> RoutedBearerToken<S> {
    /// No route for the request's origin: refused, or sent without a token.
    #[inline(never)]
    fn unrouted<ReqBody>(&mut self, request: Request<ReqBody>) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        let host = request.uri().host().unwrap_or("(no origin in the URI)");
        tracing::debug!(
            reason = DestinationErrorKind::HostNotAllowed.as_str(),
            host = %crate::error::sanitize(host),
            "no route for this origin: token not sent"
        );
        match self.other_hosts {
            OtherHosts::Reject => ResponseFuture::failed(Error::Destination(
                DestinationError::new(DestinationErrorKind::HostNotAllowed, host),
            )),
            OtherHosts::SendWithoutToken => ResponseFuture::called(self.inner.call(request), None),
        }
    }
}

impl<S: Clone> Clone for RoutedBearerToken<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            routes: self.routes.clone(),
            existing: self.existing,
            other_hosts: self.other_hosts,
            redirects: self.redirects,
            max_wait: self.max_wait,
            carried_max_wait: self.carried_max_wait,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for RoutedBearerToken<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<&Route> = self.routes.iter().map(|r| &r.route).collect();
        f.debug_struct("RoutedBearerToken")
            .field("inner", &self.inner)
            .field("routes", &routes)
            .field("existing", &self.existing)
            .field("other_hosts", &self.other_hosts)
            .field("redirects", &self.redirects)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}
