//! [`BearerToken`]: the service that [`BearerTokenLayer`](crate::BearerTokenLayer) makes.

use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{Request, Response, Uri};
use tower_service::Service;

use super::future::{Carried, MaxWait, ResponseFuture};
use crate::cache::{Grant, Handle, TokenCache};
use crate::destination::{DestinationPolicy, Verdict};
use crate::error::{DestinationErrorKind, Error};
use crate::redirect::CrossOriginRedirects;

/// What to do with a request that already carries an `Authorization` header.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_bearer::{BearerTokenLayer, ExistingAuthorization, StaticToken, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let echo = service_fn(|req: Request<()>| async move {
///     Ok::<_, Infallible>(Response::new(req.headers()["authorization"].clone()))
/// });
/// let layer = BearerTokenLayer::new(StaticToken::new(Token::new("ours")))
///     .existing_authorization(ExistingAuthorization::Keep);
/// let client = ServiceBuilder::new().layer(layer).service(echo);
/// let request = Request::get("https://api.example/").header("authorization", "Basic dTpw").body(())?;
/// assert_eq!(client.oneshot(request).await?.body(), "Basic dTpw");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExistingAuthorization {
    /// Replace it with the token. The default: a header copied from elsewhere (an inbound
    /// request being proxied, say) is never passed on to the partner API by mistake.
    #[default]
    Overwrite,
    /// Leave the request as it is and send it without our token.
    Keep,
}

/// Adds `Authorization: Bearer <token>` to each request, then calls the inner service.
///
/// With a fresh cached token the request goes straight on: one lock-free load and one header
/// clone. Otherwise it waits for the token (with a clone of the inner service swapped in, as
/// `poll_ready` requires) or fails with [`Error::Token`]. A `401 Unauthorized` answer drops the
/// token that request carried, so the next request fetches a new one; `403 Forbidden` does not
/// (a new token would not have more rights).
///
/// Made by [`BearerTokenLayer`](crate::BearerTokenLayer), or directly:
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
/// use tower_bearer::{BearerToken, StaticToken, Token, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let inner = service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
/// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
/// let service = BearerToken::new(inner, cache);
/// let response = service.oneshot(Request::get("https://api.example/").body(()).unwrap()).await;
/// assert!(response.is_ok());
/// # }
/// ```
pub struct BearerToken<S> {
    inner: S,
    cache: TokenCache,
    /// This service's handle on the cache, which grants it tokens.
    handle: Handle,
    existing: ExistingAuthorization,
    destination: DestinationPolicy,
    redirects: CrossOriginRedirects,
    /// How long a request waits for a token at most (`None`: the cache's `max_wait`).
    max_wait: Option<Duration>,
    /// The same, as each response future carries it for a `401`'s replay.
    carried_max_wait: MaxWait,
}

impl<S> BearerToken<S> {
    /// Wraps `inner`, with tokens from `cache` and the layer's default options: the same as
    /// `BearerTokenLayer::from_cache(cache).layer(inner)`.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_bearer::{BearerToken, Error, StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let inner = service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
    /// let service = BearerToken::new(inner, TokenCache::new(StaticToken::new(Token::new("t"))));
    /// // The defaults hold: no token over plain http to a host that is not loopback.
    /// let request = Request::get("http://api.example/").body(()).unwrap();
    /// assert!(matches!(service.oneshot(request).await, Err(Error::Destination(_))));
    /// # }
    /// ```
    pub fn new(inner: S, cache: TokenCache) -> Self {
        Self::build(
            inner,
            cache,
            ExistingAuthorization::default(),
            DestinationPolicy::default(),
            CrossOriginRedirects::default(),
            None,
        )
    }

    /// The one place a service is built (the layer and [`new`](Self::new) both call it).
    pub(crate) fn build(
        inner: S,
        cache: TokenCache,
        existing: ExistingAuthorization,
        destination: DestinationPolicy,
        redirects: CrossOriginRedirects,
        max_wait: Option<Duration>,
    ) -> Self {
        Self {
            inner,
            handle: cache.handle(),
            cache,
            existing,
            destination,
            redirects,
            max_wait,
            carried_max_wait: MaxWait::new(max_wait),
        }
    }

    /// The inner service.
    ///
    /// ```
    /// use tower_bearer::{BearerToken, StaticToken, Token, TokenCache};
    ///
    /// # struct HttpClient { pool_size: usize }
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let service = BearerToken::new(HttpClient { pool_size: 8 }, cache);
    /// assert_eq!(service.get_ref().pool_size, 8);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// ```
    /// use tower_bearer::{BearerToken, StaticToken, Token, TokenCache};
    ///
    /// # struct HttpClient { pool_size: usize }
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let mut service = BearerToken::new(HttpClient { pool_size: 8 }, cache);
    /// service.get_mut().pool_size = 16;
    /// assert_eq!(service.get_ref().pool_size, 16);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    ///
    /// ```
    /// use tower_bearer::{BearerToken, StaticToken, Token, TokenCache};
    ///
    /// # struct HttpClient { pool_size: usize }
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let service = BearerToken::new(HttpClient { pool_size: 8 }, cache);
    /// let client: HttpClient = service.into_inner();
    /// assert_eq!(client.pool_size, 8);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The token cache.
    ///
    /// ```
    /// use tower_bearer::{BearerToken, StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let service = BearerToken::new((), TokenCache::new(StaticToken::new(Token::new("t"))));
    /// // Fetch the first token before the first request (at startup, say).
    /// service.cache().prefetch().await?;
    /// assert!(service.cache().is_ready());
    /// # Ok(()) }
    /// ```
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerToken<S>
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
        match self.destination.check(&request) {
            Ok(Verdict::Attach) => {}
            Ok(Verdict::Skip(reason)) => {
                withheld(&self.cache, reason, request.uri());
                return ResponseFuture::called(self.inner.call(request), None);
            }
            Err(error) => {
                withheld(&self.cache, error.kind(), request.uri());
                return ResponseFuture::failed(Error::Destination(error));
            }
        }
        // Fast path: a fresh token; no lock, no allocation, no `.await`.
        match self.cache.grant(&mut self.handle, request.headers_mut()) {
            Grant::Ready(ticket) => {
                let carried = Carried::new(ticket, &request, self.redirects, self.carried_max_wait);
                ResponseFuture::called(self.inner.call(request), Some(carried))
            }
            Grant::Wait(wait) => self.wait(wait, request),
            Grant::Failed(error) => ResponseFuture::failed(Error::Token(error)),
        }
    }
}

/// The token is not sent with the request to `uri`, for `reason`: a DEBUG event and a metric.
/// (The layer and the reqwest middleware.)
#[inline(never)]
pub(crate) fn withheld(cache: &TokenCache, reason: DestinationErrorKind, uri: &Uri) {
    cache.withheld(reason);
    tracing::debug!(
        reason = reason.as_str(),
        host = %crate::error::sanitize(uri.host().unwrap_or("")),
        "bearer token not sent"
    );
}

impl<S> BearerToken<S> {
    /// No token yet: the request waits for the fetch with a ready service of its own.
    #[inline(never)]
    fn wait<ReqBody>(
        &mut self,
        wait: crate::cache::Wait,
        request: Request<ReqBody>,
    ) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>> + Clone,
    {
        let wait = match self.max_wait {
            Some(max_wait) => wait.max_wait(max_wait),
            None => wait,
        };
        // `self.inner` is ready; take it for this request and leave a clone, which will be
        // driven to readiness by the next `poll_ready`.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::waiting(wait, ready, request, self.redirects, self.carried_max_wait)
    }
}

impl<S: Clone> Clone for BearerToken<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            cache: self.cache.clone(),
            handle: self.handle.clone(),
            existing: self.existing,
            destination: self.destination.clone(),
            redirects: self.redirects,
            max_wait: self.max_wait,
            carried_max_wait: self.carried_max_wait,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for BearerToken<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("inner", &self.inner)
            .field("cache", &self.cache)
            .field("existing", &self.existing)
            .field("destination", &self.destination)
            .field("redirects", &self.redirects)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}
