//! [`ReplayUnauthorizedLayer`]: when a response is `401`, send the request once more, with the
//! fresh token that the bearer layer fetches after dropping the refused one (opt-in).
//!
//! Put it *outside* [`BearerTokenLayer`](crate::BearerTokenLayer), so the replay passes through
//! the bearer layer again:
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_bearer::{BearerTokenLayer, StaticToken, Token};
//! use tower_bearer::replay::ReplayUnauthorizedLayer;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let client = ServiceBuilder::new()
//!     .layer(ReplayUnauthorizedLayer::new())
//!     .layer(BearerTokenLayer::new(StaticToken::new(Token::new("t"))))
//!     .service(service_fn(|_req: Request<String>| async {
//!         Ok::<_, Infallible>(Response::new(()))
//!     }));
//! let response = client.oneshot(Request::post("https://api.example/").body("{}".to_owned()).unwrap()).await;
//! assert!(response.is_ok());
//! # }
//! ```
//!
//! # Rules
//!
//! - Only a `401` that carries a [`TokenRejected`] extension is replayed: the bearer layer
//!   sets it when the `401` answered a request that carried its token, came from the origin
//!   the token was sent to (not from a redirect target), and made the cache drop that token.
//!   So a request that went without the token (a host outside the allow-list, a request with
//!   its own `Authorization`), a `401` inside the invalidation cooldown, or a `403` is never
//!   replayed; nor is anything when this layer sits *inside* the bearer layer (it then never
//!   sees the mark).
//! - Before replaying it waits for the cache's next token, and replays only if that token has
//!   another value than the refused one (a provider may hand the same token out again);
//!   otherwise, or if no token can be had, the `401` is returned as it came.
//! - At most once per request: a second `401` is returned as it is.
//! - Only requests whose body can be replayed: the body type must be `Clone` (`String`,
//!   `Bytes`, `Full<Bytes>`, `()`...). Streaming bodies cannot go through this layer; buffer
//!   them first.
//! - Side effects: a `401` normally means the server did nothing, but a server that acted and
//!   then answered `401` sees a non-idempotent request (`POST`, `PATCH`) twice. Use
//!   [`ReplayUnauthorizedLayer::idempotent_only`] to replay only `GET`, `HEAD`, `OPTIONS`,
//!   `TRACE`, `PUT` and `DELETE`.
//! - Cost: each request keeps a clone of itself and of the inner service until its response
//!   arrives.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::cache::Dropped;
use crate::token::Fingerprint;

/// Response extension: this `401` (or gRPC `UNAUTHENTICATED`) answered a request that carried
/// the bearer layer's token, to the origin that token was meant for, and the cache dropped that
/// token because of it.
///
/// Set by [`BearerToken`](crate::BearerToken), and by the `grpc` layer on a trailers-only
/// `UNAUTHENTICATED` (an HTTP `200`) that dropped the token; [`ReplayUnauthorized`] replays
/// only `401` responses that carry it, and only once [`replaced`](Self::replaced) says a token
/// with another value is available. Use it the same way in a replay of your own.
///
/// ```
/// use tower_bearer::replay::TokenRejected;
///
/// # async fn handle(response: http::Response<()>) {
/// if let Some(rejected) = response.extensions().get::<TokenRejected>().cloned() {
///     if rejected.replaced().await {
///         // Safe to send the request again: it will carry a different token.
///     }
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct TokenRejected {
    dropped: Arc<Dropped>,
}

impl TokenRejected {
    pub(crate) fn new(dropped: Dropped) -> Self {
        Self {
            dropped: Arc::new(dropped),
        }
    }

    /// Whether the cache now has a token with another value than the refused one, fetching
    /// one if it has none (waiting no longer than the layer's
    /// [`max_wait`](crate::BearerTokenLayer::max_wait)); `false` if none can be had in that
    /// time or the cache is gone.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::BearerTokenLayer;
    /// use tower_bearer::replay::TokenRejected;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// # use tower_bearer::{token_source_fn, Token};
    /// # static FETCHES: AtomicU32 = AtomicU32::new(0);
    /// # let source = token_source_fn(|| async {
    /// #     Ok(Token::new(format!("t-{}", FETCHES.fetch_add(1, Ordering::Relaxed) + 1)))
    /// # });
    /// # let api = tower::service_fn(|req: http::Request<String>| async move {
    /// #     let status = if req.headers()["authorization"] == "Bearer t-1" { 401 } else { 200 };
    /// #     Ok::<_, std::convert::Infallible>(http::Response::builder().status(status).body(()).unwrap())
    /// # });
    /// // `source` gives t-1, then t-2; `api` refuses t-1.
    /// let client = BearerTokenLayer::new(source).layer(api);
    /// let request = http::Request::get("https://api.example/orders").body(String::new()).unwrap();
    /// // A clone: the mark needs the cache, which the layer holds.
    /// let response = client.clone().oneshot(request).await.unwrap();
    /// let rejected = response.extensions().get::<TokenRejected>().unwrap();
    /// assert!(rejected.replaced().await, "the cache fetched t-2");
    /// # }
    /// ```
    pub async fn replaced(&self) -> bool {
        self.dropped.replaced().await
    }

    /// The fingerprint of the refused token.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::BearerTokenLayer;
    /// use tower_bearer::replay::TokenRejected;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// # use tower_bearer::{token_source_fn, Token};
    /// # static FETCHES: AtomicU32 = AtomicU32::new(0);
    /// # let source = token_source_fn(|| async {
    /// #     Ok(Token::new(format!("t-{}", FETCHES.fetch_add(1, Ordering::Relaxed) + 1)))
    /// # });
    /// # let api = tower::service_fn(|req: http::Request<String>| async move {
    /// #     let status = if req.headers()["authorization"] == "Bearer t-1" { 401 } else { 200 };
    /// #     Ok::<_, std::convert::Infallible>(http::Response::builder().status(status).body(()).unwrap())
    /// # });
    /// // `source` gives t-1, then t-2; `api` refuses t-1.
    /// let client = BearerTokenLayer::new(source).layer(api);
    /// let request = http::Request::get("https://api.example/orders").body(String::new()).unwrap();
    /// // A clone: the mark needs the cache, which the layer holds.
    /// let response = client.clone().oneshot(request).await.unwrap();
    /// let rejected = response.extensions().get::<TokenRejected>().unwrap();
    /// assert_eq!(rejected.fingerprint(), Token::new("t-1").fingerprint());
    /// # }
    /// ```
    pub fn fingerprint(&self) -> Fingerprint {
        self.dropped.fingerprint()
    }
}

impl fmt::Debug for TokenRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRejected")
            .field("token", &self.fingerprint())
            .finish()
    }
}

/// Replays a request once when its response is `401`; see the [module docs](self).
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_bearer::BearerTokenLayer;
/// use tower_bearer::replay::ReplayUnauthorizedLayer;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # use std::sync::atomic::{AtomicU32, Ordering};
/// # use tower_bearer::{token_source_fn, Token};
/// # static FETCHES: AtomicU32 = AtomicU32::new(0);
/// # let source = token_source_fn(|| async {
/// #     Ok(Token::new(format!("t-{}", FETCHES.fetch_add(1, Ordering::Relaxed) + 1)))
/// # });
/// # let api = tower::service_fn(|req: http::Request<String>| async move {
/// #     let status = if req.headers()["authorization"] == "Bearer t-1" { 401 } else { 200 };
/// #     Ok::<_, std::convert::Infallible>(http::Response::builder().status(status).body(()).unwrap())
/// # });
/// // `source` gives t-1, then t-2; `api` refuses t-1.
/// let client = ServiceBuilder::new()
///     .layer(ReplayUnauthorizedLayer::new())
///     .layer(BearerTokenLayer::new(source))
///     .service(api);
/// let request = http::Request::post("https://api.example/orders").body("{}".to_owned()).unwrap();
/// assert_eq!(client.oneshot(request).await.unwrap().status(), 200, "replayed with t-2");
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayUnauthorizedLayer {
    idempotent_only: bool,
}

impl ReplayUnauthorizedLayer {
    /// Replays every method.
    ///
    /// ```
    /// use tower_bearer::replay::ReplayUnauthorizedLayer;
    ///
    /// // Replays every method; the same as `ReplayUnauthorizedLayer::default()`.
    /// let layer = ReplayUnauthorizedLayer::new();
    /// assert_eq!(format!("{layer:?}"), "ReplayUnauthorizedLayer { idempotent_only: false }");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Replays only idempotent methods (`GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`, `DELETE`).
    ///
    /// ```
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_bearer::BearerTokenLayer;
    /// use tower_bearer::replay::ReplayUnauthorizedLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// # use tower_bearer::{token_source_fn, Token};
    /// # static FETCHES: AtomicU32 = AtomicU32::new(0);
    /// # let source = token_source_fn(|| async {
    /// #     Ok(Token::new(format!("t-{}", FETCHES.fetch_add(1, Ordering::Relaxed) + 1)))
    /// # });
    /// # let api = tower::service_fn(|req: http::Request<String>| async move {
    /// #     let status = if req.headers()["authorization"] == "Bearer t-1" { 401 } else { 200 };
    /// #     Ok::<_, std::convert::Infallible>(http::Response::builder().status(status).body(()).unwrap())
    /// # });
    /// // `source` gives t-1, then t-2; `api` refuses t-1.
    /// let client = ServiceBuilder::new()
    ///     .layer(ReplayUnauthorizedLayer::new().idempotent_only())
    ///     .layer(BearerTokenLayer::new(source))
    ///     .service(api);
    /// let request = http::Request::post("https://api.example/orders").body("{}".to_owned()).unwrap();
    /// assert_eq!(client.oneshot(request).await.unwrap().status(), 401, "a POST is not replayed");
    /// # }
    /// ```
    pub fn idempotent_only(mut self) -> Self {
        self.idempotent_only = true;
        self
    }
}

impl<S> Layer<S> for ReplayUnauthorizedLayer {
    type Service = ReplayUnauthorized<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReplayUnauthorized {
            inner,
            idempotent_only: self.idempotent_only,
        }
    }
}

/// The service of [`ReplayUnauthorizedLayer`].
///
/// ```
/// use tower::{Layer, ServiceExt};
/// use tower_bearer::BearerTokenLayer;
/// use tower_bearer::replay::{ReplayUnauthorized, ReplayUnauthorizedLayer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # use std::sync::atomic::{AtomicU32, Ordering};
/// # use tower_bearer::{token_source_fn, Token};
/// # static FETCHES: AtomicU32 = AtomicU32::new(0);
/// # let source = token_source_fn(|| async {
/// #     Ok(Token::new(format!("t-{}", FETCHES.fetch_add(1, Ordering::Relaxed) + 1)))
/// # });
/// # let api = tower::service_fn(|req: http::Request<String>| async move {
/// #     let status = if req.headers()["authorization"] == "Bearer t-1" { 401 } else { 200 };
/// #     Ok::<_, std::convert::Infallible>(http::Response::builder().status(status).body(()).unwrap())
/// # });
/// // `source` gives t-1, then t-2; `api` refuses t-1.
/// let client: ReplayUnauthorized<_> =
///     ReplayUnauthorizedLayer::new().layer(BearerTokenLayer::new(source).layer(api));
/// let request = http::Request::get("https://api.example/orders").body(String::new()).unwrap();
/// assert_eq!(client.oneshot(request).await.unwrap().status(), 200);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ReplayUnauthorized<S> {
    inner: S,
    idempotent_only: bool,
}

/// `GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT` or `DELETE` (also the reqwest middleware's
/// `replay_idempotent_only`).
pub(crate) fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// A copy of a request, made before it is sent.
fn copy<B: Clone>(request: &Request<B>) -> Request<B> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ReplayUnauthorized<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Clone,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ReplayFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let replay = (!self.idempotent_only || idempotent(request.method()))
            .then(|| (copy(&request), self.inner.clone()));
        ReplayFuture {
            state: ReplayState::First {
                future: self.inner.call(request),
                replay,
            },
        }
    }
}

pin_project! {
    /// Response future of [`ReplayUnauthorized`].
    ///
    /// ```
    /// use tower::{Layer, Service, ServiceExt};
    /// use tower_bearer::BearerTokenLayer;
    /// use tower_bearer::replay::{ReplayFuture, ReplayUnauthorizedLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// # use tower_bearer::{token_source_fn, Token};
    /// # static FETCHES: AtomicU32 = AtomicU32::new(0);
    /// # let source = token_source_fn(|| async {
    /// #     Ok(Token::new(format!("t-{}", FETCHES.fetch_add(1, Ordering::Relaxed) + 1)))
    /// # });
    /// # let api = tower::service_fn(|req: http::Request<String>| async move {
    /// #     let status = if req.headers()["authorization"] == "Bearer t-1" { 401 } else { 200 };
    /// #     Ok::<_, std::convert::Infallible>(http::Response::builder().status(status).body(()).unwrap())
    /// # });
    /// // `source` gives t-1, then t-2; `api` refuses t-1.
    /// let mut client = ReplayUnauthorizedLayer::new().layer(BearerTokenLayer::new(source).layer(api));
    /// let request = http::Request::get("https://api.example/orders").body(String::new()).unwrap();
    /// let future: ReplayFuture<_, String> = client.ready().await.unwrap().call(request);
    /// assert_eq!(future.await.unwrap().status(), 200);
    /// # }
    /// ```
    pub struct ReplayFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: ReplayState<S, B>,
    }
}

pin_project! {
    #[project = ReplayStateProj]
    enum ReplayState<S, B>
    where
        S: Service<Request<B>>,
    {
        // The first attempt, holding what a replay needs.
        First {
            #[pin]
            future: S::Future,
            replay: Option<(Request<B>, S)>,
        },
        // A `401` that dropped the token: is there a different token now?
        Checking {
            replaced: BoxFuture<'static, bool>,
            response: Option<S::Response>,
            replay: Option<(Request<B>, S)>,
        },
        // Waiting for the service to be ready for the replay.
        Ready {
            replay: Option<(Request<B>, S)>,
        },
        // The replay; its answer is final.
        Second {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, B, ResBody> Future for ReplayFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                ReplayStateProj::First { future, replay } => {
                    let response = ready!(future.poll(cx))?;
                    let rejected = match response.extensions().get::<TokenRejected>() {
                        Some(rejected)
                            if response.status() == StatusCode::UNAUTHORIZED
                                && replay.is_some() =>
                        {
                            rejected.clone()
                        }
                        _ => return Poll::Ready(Ok(response)),
                    };
                    let replaced = async move { rejected.replaced().await }.boxed();
                    let replay = replay.take();
                    this.state.set(ReplayState::Checking {
                        replaced,
                        response: Some(response),
                        replay,
                    });
                }
                ReplayStateProj::Checking {
                    replaced,
                    response,
                    replay,
                } => {
                    if !ready!(replaced.poll_unpin(cx)) {
                        tracing::debug!("401: no token with another value to replay with");
                        let response = response.take();
                        return Poll::Ready(Ok(
                            response.expect("ReplayFuture polled after completion")
                        ));
                    }
                    tracing::debug!("401: replaying the request once with a fresh token");
                    let replay = replay.take();
                    this.state.set(ReplayState::Ready { replay });
                }
                ReplayStateProj::Ready { replay } => {
                    let Some((_, service)) = replay.as_mut() else {
                        panic!("ReplayFuture polled after completion");
                    };
                    ready!(service.poll_ready(cx))?;
                    let Some((request, mut service)) = replay.take() else {
                        panic!("ReplayFuture polled after completion");
                    };
                    let future = service.call(request);
                    this.state.set(ReplayState::Second { future });
                }
                ReplayStateProj::Second { future } => return future.poll(cx),
            }
        }
    }
}

impl<S: Service<Request<B>>, B> fmt::Debug for ReplayFuture<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayFuture").finish_non_exhaustive()
    }
}
