//! Throughput under contention: 1,000 tasks on a 2-worker multi-thread runtime, each sending
//! 100 requests through a clone of the same layered service (100,000 requests per iteration).
//!
//! Compared in one run: the bare inner service, tower-http's `AddAuthorization` (static bearer,
//! the floor), a straightforward `RwLock<Option<HeaderValue>>` design (what hand-written token
//! code often looks like), and `BearerTokenLayer` with a warm cache. Target: throughput at
//! least 0.95x `AddAuthorization`, i.e. time per iteration at most 1/0.95 of it.
//!
//! ```text
//! cargo bench --bench contention -- --warm-up-time 2 --measurement-time 10
//! ```

use std::convert::Infallible;
use std::future::Ready;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use tower::{Layer, Service, ServiceExt};
use tower_bearer::{BearerTokenLayer, Token, token_source_fn};
use tower_http::auth::AddAuthorizationLayer;

const TASKS: usize = 1_000;
const PER_TASK: usize = 100;
const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJhcGk6Ly9rb250cm9sbGUtcGx1cyIsInJvbGVzIjpbIlByb3ZpZGVyQXBpLkFjY2VzcyJdfQ.c2lnbmF0dXJl";

/// Answers at once.
#[derive(Clone)]
struct Inner;

impl Service<Request<()>> for Inner {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        std::future::ready(Ok(Response::new(())))
    }
}

/// The hand-written design: a lock around the current header value.
#[derive(Clone)]
struct RwLockAuth<S> {
    inner: S,
    current: Arc<RwLock<Option<HeaderValue>>>,
}

impl<S: Service<Request<()>>> Service<Request<()>> for RwLockAuth<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<()>) -> Self::Future {
        if let Some(value) = self.current.read().unwrap().as_ref() {
            request.headers_mut().insert(AUTHORIZATION, value.clone());
        }
        self.inner.call(request)
    }
}

async fn drive<S>(service: S)
where
    S: Service<Request<()>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
{
    let mut tasks = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let mut service = service.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..PER_TASK {
                let request = Request::get("https://api.partner.example/v1/items")
                    .body(())
                    .unwrap();
                service.ready().await.unwrap().call(request).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let header = {
        let mut v = HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap();
        v.set_sensitive(true);
        v
    };
    let add_authorization = AddAuthorizationLayer::bearer(TOKEN)
        .as_sensitive(true)
        .layer(Inner);
    let rwlock = RwLockAuth {
        inner: Inner,
        current: Arc::new(RwLock::new(Some(header))),
    };
    let layer = BearerTokenLayer::new(token_source_fn(|| async {
        Ok(Token::new(TOKEN).with_expires_in(Duration::from_secs(3600)))
    }));
    let ours = layer.layer(Inner);
    // Warm the cache; the runtime stays alive, so its refresh timer does too.
    runtime
        .block_on(
            ours.clone()
                .oneshot(Request::get("https://x.example/").body(()).unwrap()),
        )
        .unwrap();

    let mut group = c.benchmark_group("contention");
    group.sample_size(20);
    group.bench_function("bare", |b| b.to_async(&runtime).iter(|| drive(Inner)));
    group.bench_function("add_authorization", |b| {
        b.to_async(&runtime)
            .iter(|| drive(add_authorization.clone()))
    });
    group.bench_function("rwlock_option", |b| {
        b.to_async(&runtime).iter(|| drive(rwlock.clone()))
    });
    group.bench_function("bearer_token", |b| {
        b.to_async(&runtime).iter(|| drive(ours.clone()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
