//! [`GrpcUnauthenticatedLayer`]: a gRPC `UNAUTHENTICATED` drops the token as a `401` does
//! (opt-in, feature `grpc`).
//!
//! A gRPC server refuses a token with HTTP `200` and `grpc-status: 16` (`UNAUTHENTICATED`):
//! in the headers of a trailers-only response (a call refused before it started, as tonic's
//! interceptors do), or in the trailers after a stream of messages (a token revoked during a
//! streaming call). The bearer layer reads only the HTTP status, so it keeps such a token;
//! this layer reports it to the cache, which drops it by the rules of a `401`: only if it is
//! still the cached token, at most once per
//! [`invalidation_cooldown`](crate::TokenCacheBuilder::invalidation_cooldown), with the same
//! INFO event (the token's fingerprint, never its value) and the same
//! [`tower_bearer_invalidations_total`](crate::metrics::INVALIDATIONS) count. The next call
//! fetches a new token. Any other status (`PERMISSION_DENIED` included: a new token would not
//! have more rights) changes nothing.
//!
//! Put it *inside* [`BearerTokenLayer`] (after it in a `ServiceBuilder`), made from that layer:
//! it recognises the token by the `Authorization` header the bearer layer set, so a request
//! that went without the layer's token (withheld, or with an `Authorization` of its own) never
//! drops it. Outside the bearer layer it would see no token, and do nothing.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use http::{Request, Response};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_bearer::grpc::GrpcUnauthenticatedLayer;
//! use tower_bearer::{token_source_fn, BearerTokenLayer, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let fetches = Arc::new(AtomicUsize::new(0));
//! let counter = Arc::clone(&fetches);
//! let source = token_source_fn(move || {
//!     let n = counter.fetch_add(1, Ordering::SeqCst);
//!     async move { Ok(Token::new(format!("token-{n}"))) }
//! });
//! // A gRPC server (a tonic `Channel` in real life) that has revoked token-0.
//! let server = service_fn(|request: Request<String>| async move {
//!     let mut response = Response::builder().header("content-type", "application/grpc");
//!     if request.headers()["authorization"] == "Bearer token-0" {
//!         response = response.header("grpc-status", "16"); // UNAUTHENTICATED, trailers-only
//!     }
//!     Ok::<_, Infallible>(response.body(String::new()).unwrap())
//! });
//!
//! let bearer = BearerTokenLayer::new(source);
//! let grpc = GrpcUnauthenticatedLayer::new(&bearer);
//! let client = ServiceBuilder::new().layer(bearer).layer(grpc).service(server);
//!
//! let call = || Request::post("https://grpc.partner.example/pkg.Service/Method").body(String::new()).unwrap();
//! let refused = client.clone().oneshot(call()).await.unwrap();
//! assert_eq!(refused.headers()["grpc-status"], "16");
//! let accepted = client.oneshot(call()).await.unwrap(); // with token-1
//! assert!(accepted.headers().get("grpc-status").is_none());
//! assert_eq!(fetches.load(Ordering::SeqCst), 2);
//! # }
//! ```
//!
//! # Cost
//!
//! Requests through the bearer layer alone are unchanged (this layer is a type of its own).
//! Through this layer, a request costs one `Authorization` lookup and a comparison with the
//! cached token's header (its pointer, as the bearer layer shares the header's bytes); its
//! answer one `grpc-status` lookup. An answer that has its status in the headers (or that
//! answered a request without the layer's token) is passed on as it is; any other has its body
//! watched for trailers: one branch per frame, and the trailers' `grpc-status` read once. The
//! callgrind harness counts 1,534 instructions per warm request through both layers, against
//! 1,246 through the bearer layer alone (BENCHMARKS.md).
//!
//! # What it does not do
//!
//! It does not retry the refused call: a gRPC call's request body is a stream, and tonic
//! consumes it. The call fails with `UNAUTHENTICATED`; the next call carries a new token. A
//! trailers-only refusal that dropped the token is marked with [`TokenRejected`], for a retry
//! of your own at the HTTP level.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::bearer::BearerTokenLayer;
use crate::cache::{Handle, Refusal, Ticket, TokenCache};
use crate::replay::TokenRejected;

/// The gRPC status header and trailer, parsed once (a `&str` key is parsed at each lookup).
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// Drops the token a gRPC server refused with `UNAUTHENTICATED`; see the [module docs](self).
///
/// Only `UNAUTHENTICATED` drops the token: a call refused with `PERMISSION_DENIED` (`7`)
/// keeps it, as a new token would not have more rights.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_bearer::grpc::GrpcUnauthenticatedLayer;
/// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = service_fn(|_req: Request<String>| async {
///     Ok::<_, Infallible>(Response::builder().header("grpc-status", "7").body(String::new()).unwrap())
/// });
/// let bearer = BearerTokenLayer::new(StaticToken::new(Token::new("t")));
/// let client = ServiceBuilder::new().layer(bearer.clone()).layer(GrpcUnauthenticatedLayer::new(&bearer)).service(server);
/// let answer = client.oneshot(Request::post("https://grpc.example/pkg.S/M").body(String::new())?).await?;
/// assert_eq!(answer.headers()["grpc-status"], "7");
/// assert!(bearer.cache().is_ready(), "PERMISSION_DENIED keeps the token");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct GrpcUnauthenticatedLayer {
    cache: TokenCache,
    max_wait: Option<Duration>,
}

impl GrpcUnauthenticatedLayer {
    /// For the tokens of `bearer` (its cache, and its
    /// [`max_wait`](crate::BearerTokenLayer::max_wait) for
    /// [`TokenRejected::replaced`]). Put it inside `bearer`:
    ///
    /// ```no_run
    /// use tonic::transport::Channel;
    /// use tonic_health::pb::health_client::HealthClient;
    /// use tower::ServiceBuilder;
    /// use tower_bearer::grpc::GrpcUnauthenticatedLayer;
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let channel = Channel::from_static("https://grpc.partner.example").connect().await?;
    /// let bearer = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
    ///     .origin("https://grpc.partner.example")?;
    /// let grpc = GrpcUnauthenticatedLayer::new(&bearer);
    /// let client = HealthClient::new(ServiceBuilder::new().layer(bearer).layer(grpc).service(channel));
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(bearer: &BearerTokenLayer) -> Self {
        Self {
            cache: bearer.cache().clone(),
            max_wait: bearer.wait_limit(),
        }
    }

    /// For the tokens of `cache`, for a [`BearerToken`](crate::BearerToken) made from it
    /// directly. Put it inside that service.
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_bearer::grpc::GrpcUnauthenticatedLayer;
    /// use tower_bearer::{BearerToken, StaticToken, Token, TokenCache};
    ///
    /// # fn wrap<S>(channel: S) -> BearerToken<tower_bearer::grpc::GrpcUnauthenticated<S>> {
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let inner = GrpcUnauthenticatedLayer::from_cache(cache.clone()).layer(channel);
    /// BearerToken::new(inner, cache)
    /// # }
    /// ```
    pub fn from_cache(cache: TokenCache) -> Self {
        Self {
            cache,
            max_wait: None,
        }
    }
}

impl<S> Layer<S> for GrpcUnauthenticatedLayer {
    type Service = GrpcUnauthenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcUnauthenticated {
            inner,
            handle: self.cache.handle(),
            max_wait: self.max_wait,
        }
    }
}

impl fmt::Debug for GrpcUnauthenticatedLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcUnauthenticatedLayer")
            .field("cache", &self.cache)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

/// The service of [`GrpcUnauthenticatedLayer`].
///
/// It only watches requests that carry the cached token: made from a cache whose token the
/// request does not carry (no bearer layer outside it), it drops nothing.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_bearer::grpc::GrpcUnauthenticatedLayer;
/// use tower_bearer::{StaticToken, Token, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = service_fn(|_req: Request<String>| async {
///     Ok::<_, Infallible>(Response::builder().header("grpc-status", "16").body(String::new()).unwrap())
/// });
/// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
/// cache.prefetch().await?;
/// let service = GrpcUnauthenticatedLayer::from_cache(cache.clone()).layer(server);
/// service.oneshot(Request::post("https://grpc.example/pkg.S/M").body(String::new())?).await?;
/// assert!(cache.is_ready(), "the request carried no token of the cache");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct GrpcUnauthenticated<S> {
    inner: S,
    /// This service's view of the cached token, to recognise the header the bearer layer set.
    handle: Handle,
    max_wait: Option<Duration>,
}

impl<S> GrpcUnauthenticated<S> {
    /// The inner service.
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_bearer::grpc::GrpcUnauthenticatedLayer;
    /// use tower_bearer::{StaticToken, Token, TokenCache};
    ///
    /// # struct Channel { endpoint: &'static str }
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let service = GrpcUnauthenticatedLayer::from_cache(cache).layer(Channel { endpoint: "grpc.example" });
    /// assert_eq!(service.get_ref().endpoint, "grpc.example");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_bearer::grpc::GrpcUnauthenticatedLayer;
    /// use tower_bearer::{StaticToken, Token, TokenCache};
    ///
    /// # struct Channel { endpoint: &'static str }
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let mut service = GrpcUnauthenticatedLayer::from_cache(cache).layer(Channel { endpoint: "a.example" });
    /// service.get_mut().endpoint = "b.example";
    /// assert_eq!(service.get_ref().endpoint, "b.example");
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_bearer::grpc::GrpcUnauthenticatedLayer;
    /// use tower_bearer::{StaticToken, Token, TokenCache};
    ///
    /// # struct Channel { endpoint: &'static str }
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let service = GrpcUnauthenticatedLayer::from_cache(cache).layer(Channel { endpoint: "grpc.example" });
    /// let channel: Channel = service.into_inner();
    /// assert_eq!(channel.endpoint, "grpc.example");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for GrpcUnauthenticated<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcUnauthenticated")
            .field("inner", &self.inner)
            .field("handle", &self.handle)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcUnauthenticated<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<GrpcBody<ResBody>>;
    type Error = S::Error;
    type Future = GrpcFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let ticket = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|authorization| self.handle.ticket(authorization));
        GrpcFuture {
            future: self.inner.call(request),
            ticket,
            max_wait: self.max_wait,
        }
    }
}

pin_project! {
    /// Response future of [`GrpcUnauthenticated`].
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, Layer, Service, ServiceExt};
    /// use tower_bearer::grpc::{GrpcFuture, GrpcUnauthenticatedLayer};
    /// use tower_bearer::{StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = service_fn(|_req: Request<String>| async { Ok::<_, Infallible>(Response::new("hi".to_owned())) });
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let mut service = GrpcUnauthenticatedLayer::from_cache(cache).layer(server);
    /// let future: GrpcFuture<_> = service.ready().await?.call(Request::new(String::new()));
    /// assert_eq!(future.await?.into_body().into_inner(), "hi");
    /// # Ok(()) }
    /// ```
    pub struct GrpcFuture<F> {
        #[pin]
        future: F,
        // The layer's token, if the request carried it.
        ticket: Option<Ticket>,
        max_wait: Option<Duration>,
    }
}

impl<F, ResBody, E> Future for GrpcFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<GrpcBody<ResBody>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.future.poll(cx))?;
        let watch = match this.ticket.take() {
            None => None,
            // One lookup: a trailers-only answer has its status in the headers.
            Some(ticket) => match response.headers().get(&GRPC_STATUS) {
                Some(status) => {
                    if unauthenticated(status) {
                        refused_in_headers(&mut response, ticket, *this.max_wait);
                    }
                    None
                }
                None => Some(ticket),
            },
        };
        Poll::Ready(Ok(response.map(|inner| GrpcBody { inner, watch })))
    }
}

impl<F> fmt::Debug for GrpcFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcFuture").finish_non_exhaustive()
    }
}

/// Whether a `grpc-status` says `UNAUTHENTICATED` (16).
fn unauthenticated(status: &HeaderValue) -> bool {
    status.as_bytes() == b"16"
}

/// A trailers-only `UNAUTHENTICATED`: the token goes as for a `401`, and the answer says so.
#[inline(never)]
fn refused_in_headers<B>(response: &mut Response<B>, ticket: Ticket, max_wait: Option<Duration>) {
    if let Some(dropped) = ticket.refused(Refusal::GrpcUnauthenticated, max_wait) {
        response
            .extensions_mut()
            .insert(TokenRejected::new(dropped));
    }
}

/// `UNAUTHENTICATED` in the trailers of a streamed answer: the token goes as for a `401`
/// (the answer has been handed on already, so nothing marks it).
#[inline(never)]
fn refused_in_trailers(trailers: &HeaderMap, ticket: Ticket) {
    if trailers.get(&GRPC_STATUS).is_some_and(unauthenticated) {
        // Nothing waits for a replacement: no one holds the dropped token.
        drop(ticket.refused(Refusal::GrpcUnauthenticated, None));
    }
}

pin_project! {
    /// Response body of [`GrpcUnauthenticated`]: the inner body, whose trailers are read for
    /// `grpc-status: 16` when the answer's headers had no status.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{HeaderMap, Request, Response};
    /// use http_body_util::{BodyExt, Full};
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    /// use tower_bearer::grpc::GrpcUnauthenticatedLayer;
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A streaming call whose token is revoked midway: `UNAUTHENTICATED` in the trailers.
    /// let server = service_fn(|_req: Request<String>| async {
    ///     let trailers = HeaderMap::from_iter([("grpc-status".parse().unwrap(), "16".parse().unwrap())]);
    ///     let body = Full::new(Bytes::from("message")).with_trailers(async { Some(Ok(trailers)) });
    ///     Ok::<_, Infallible>(Response::new(body))
    /// });
    /// let bearer = BearerTokenLayer::new(StaticToken::new(Token::new("t")));
    /// let client = ServiceBuilder::new().layer(bearer.clone()).layer(GrpcUnauthenticatedLayer::new(&bearer)).service(server);
    /// let answer = client.oneshot(Request::post("https://grpc.example/pkg.S/Watch").body(String::new())?).await?;
    /// assert!(bearer.cache().is_ready(), "the headers said nothing");
    /// answer.into_body().collect().await?; // the trailers are read
    /// assert!(!bearer.cache().is_ready(), "the token was dropped");
    /// # Ok(()) }
    /// ```
    pub struct GrpcBody<B> {
        #[pin]
        inner: B,
        // The token to report if the trailers say `UNAUTHENTICATED`; `None`: nothing to watch.
        watch: Option<Ticket>,
    }
}

impl<B> GrpcBody<B> {
    /// The inner body, unwrapped.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_bearer::grpc::GrpcUnauthenticatedLayer;
    /// use tower_bearer::{StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = service_fn(|_req: Request<String>| async { Ok::<_, Infallible>(Response::new("hi".to_owned())) });
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let service = GrpcUnauthenticatedLayer::from_cache(cache).layer(server);
    /// let answer = service.oneshot(Request::new(String::new())).await?;
    /// let body: String = answer.into_body().into_inner();
    /// assert_eq!(body, "hi");
    /// # Ok(()) }
    /// ```
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: Body> Body for GrpcBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if this.watch.is_some()
            && let Poll::Ready(Some(Ok(frame))) = &frame
            && let Some(trailers) = frame.trailers_ref()
            && let Some(ticket) = this.watch.take()
        {
            refused_in_trailers(trailers, ticket);
        }
        frame
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: fmt::Debug> fmt::Debug for GrpcBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcBody")
            .field("inner", &self.inner)
            .field("watched", &self.watch.is_some())
            .finish()
    }
}
