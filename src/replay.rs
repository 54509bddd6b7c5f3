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
//! - Only a `401` is replayed, never a `403` (a new token would not have more rights).
//! - At most once per request: a second `401` is returned as it is. (The bearer layer drops at
//!   most one token per `invalidation_cooldown`, 5 s by default; a replay inside that window
//!   may carry the same token and get the same `401`.)
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
use std::task::{Context, Poll, ready};

use http::{Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// Replays a request once when its response is `401`; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayUnauthorizedLayer {
    idempotent_only: bool,
}

impl ReplayUnauthorizedLayer {
    /// Replays every method.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replays only idempotent methods (`GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`, `DELETE`).
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
#[derive(Clone, Debug)]
pub struct ReplayUnauthorized<S> {
    inner: S,
    idempotent_only: bool,
}

fn idempotent(method: &Method) -> bool {
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
                    if response.status() != StatusCode::UNAUTHORIZED || replay.is_none() {
                        return Poll::Ready(Ok(response));
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
