//! Per-request cost of the warm path: what `BearerTokenLayer` adds to a request once a fresh
//! token is cached, next to the cheapest possible way of adding the same header.
//!
//! # What is measured
//!
//! Group `hot_path`, three services around the same inner service (a `service_fn` that answers
//! `200 OK` at once with `std::future::ready`):
//!
//! - `bare`: the inner service alone. The floor: `poll_ready`, `call`, one poll, and dropping
//!   the request (its URI and header map) inside the inner service.
//! - `add_authorization`: tower-http's `AddAuthorization` with the same ~900-byte token. It
//!   inserts a prebuilt `HeaderValue` into the request and hands the inner future back: the
//!   least any middleware can do to add a static header. This is the baseline.
//! - `bearer_token`: our `BearerTokenLayer` with a token valid for an hour, its cache warmed by
//!   one request on a Tokio runtime before timing starts, so every timed request takes the
//!   fresh-token fast path (load the cached entry, compare its refresh deadline with the coarse
//!   clock, insert a clone of its prebuilt header, carry what a `401` needs to invalidate it).
//!
//! Each iteration gets a realistic request built outside the timed part (`iter_batched`):
//! `GET https://api.partner.example/v1/items?page=2` with `accept` and `user-agent` headers.
//! The timed routine calls `poll_ready` and `call`, then polls the response future once with a
//! no-op waker: there is no runtime on the hot path, and the fast path must complete in that
//! one poll (the bench panics otherwise). The response is returned from the routine, so
//! criterion drops it outside the timed part, the same way for all three.
//!
//! # Reading the numbers
//!
//! - `bearer_token / add_authorization` is the figure of merit: how much more our layer costs
//!   than a static header. The goal is at most 1.05.
//! - `bearer_token - add_authorization` (in ns) is our own overhead per request: the cache
//!   load, the freshness check and the state kept for `401` handling.
//! - `add_authorization - bare` is the cost of inserting the header at all, which any way of
//!   authenticating the request pays.
//!
//! Absolute times include dropping the request inside the inner service (a few frees), which
//! all three pay; a real HTTP client costs microseconds per request, so the differences here
//! are an upper bound on the relative overhead. On a noisy machine run it a few times:
//!
//! ```text
//! cargo bench --bench hot_path -- --warm-up-time 2 --measurement-time 5
//! ```

use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Ready;
use std::hint::black_box;
use std::rc::Rc;
use std::task::{Context, Poll};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use tower::{Layer, Service, ServiceExt};
use tower_http::auth::AddAuthorizationLayer;

#[path = "support/warm_path.rs"]
mod warm_path;
use warm_path::{hour_token_layer, inner, make_request, realistic_token, send, warm_up_runtime};

/// An inner service that remembers the `Authorization` header of the last request.
#[derive(Clone, Default)]
struct Spy(Rc<RefCell<Option<HeaderValue>>>);

impl Service<Request<()>> for Spy {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        *self.0.borrow_mut() = request.headers().get(AUTHORIZATION).cloned();
        std::future::ready(Ok(Response::new(())))
    }
}

/// The `Authorization` header that `layer` puts on a request.
fn authorization_sent<L>(layer: L) -> Option<HeaderValue>
where
    L: Layer<Spy>,
    L::Service: Service<Request<()>, Response = Response<()>>,
    <L::Service as Service<Request<()>>>::Error: Debug,
{
    let spy = Spy::default();
    send(&mut layer.layer(spy.clone()), make_request());
    spy.0.take()
}

fn bench_hot_path(c: &mut Criterion) {
    let token = realistic_token();

    let mut bare = inner();
    let mut add_authorization = AddAuthorizationLayer::bearer(&token)
        // Same header as ours: marked sensitive (no effect on the cost of inserting it).
        .as_sensitive(true)
        .layer(inner());

    let layer = hour_token_layer(token);
    let mut bearer_token = layer.layer(inner());
    // Warm the cache: the one fetch runs on a runtime; the timed requests never need one. The
    // runtime lives until the end: dropping it would stop the refresh timer, which then marks
    // the token stale and sends requests down the slow path.
    let runtime = warm_up_runtime();
    runtime
        .block_on(bearer_token.clone().oneshot(make_request()))
        .expect("warming the cache failed");
    let warm = layer.cache().stats();
    assert_eq!(warm.fetches, 1);

    // Both add the same header.
    let theirs =
        authorization_sent(AddAuthorizationLayer::bearer(&realistic_token()).as_sensitive(true));
    let ours = authorization_sent(layer.clone());
    assert!(ours.as_ref().is_some_and(|v| v.is_sensitive()));
    assert_eq!(theirs, ours);

    let mut group = c.benchmark_group("hot_path");
    group.bench_function("bare", |b| {
        b.iter_batched(
            make_request,
            |request| send(&mut bare, black_box(request)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("add_authorization", |b| {
        b.iter_batched(
            make_request,
            |request| send(&mut add_authorization, black_box(request)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("bearer_token", |b| {
        b.iter_batched(
            make_request,
            |request| send(&mut bearer_token, black_box(request)),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // Every timed request used the cached token: no fetch, no wait.
    assert_eq!(layer.cache().stats(), warm);
    drop(runtime);
}

criterion_group!(benches, bench_hot_path);
criterion_main!(benches);
