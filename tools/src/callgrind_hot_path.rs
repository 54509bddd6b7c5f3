//! Instruction counts of the warm path, for `valgrind --tool=callgrind`: the same three services
//! as `benches/hot_path.rs` (bare inner service, tower-http's `AddAuthorization`, our
//! `BearerToken` with a fresh cached token; built with feature `grpc`, `BearerToken` with
//! `GrpcUnauthenticatedLayer` inside it instead), each request sent through one `#[inline(never)]`
//! function per variant, so callgrind's inclusive count of that function divided by the number
//! of requests is the cost of one request (`poll_ready`, `call`, one poll, and dropping the
//! request inside the inner service). Requests are built and responses dropped outside it.
//!
//! Instruction counts are repeatable where wall-clock time on a shared machine is not. Run:
//!
//! ```text
//! bash scripts/callgrind-hot-path.sh
//! ```
//!
//! which builds this tool (`tools/`, a crate of the workspace) in release mode, runs it under callgrind with 100,000 requests
//! per variant and prints instructions per request and the ratios. Outside callgrind it just
//! sends the requests and checks that every one took the fast path.

use std::hint::black_box;

use http::{Request, Response};
use tower::Layer;
#[cfg(feature = "grpc")]
use tower_bearer::grpc::{GrpcBody, GrpcUnauthenticated, GrpcUnauthenticatedLayer};
use tower_bearer::store::{MemoryStore, StoreKey};
use tower_bearer::{BearerToken, BearerTokenLayer, TokenCache, TokenSource};
use tower_http::auth::{AddAuthorization, AddAuthorizationLayer};

#[path = "../../benches/support/warm_path.rs"]
mod warm_path;
use warm_path::{HourToken, Inner, make_request, realistic_token, send, warm_up_runtime};

#[inline(never)]
fn request_bare(service: &mut Inner, request: Request<()>) -> Response<()> {
    send(service, request)
}

#[inline(never)]
fn request_add_authorization(
    service: &mut AddAuthorization<Inner>,
    request: Request<()>,
) -> Response<()> {
    send(service, request)
}

#[cfg(not(feature = "grpc"))]
#[inline(never)]
fn request_bearer_token(service: &mut BearerToken<Inner>, request: Request<()>) -> Response<()> {
    send(service, request)
}

#[cfg(feature = "grpc")]
#[inline(never)]
fn request_bearer_token_grpc(
    service: &mut BearerToken<GrpcUnauthenticated<Inner>>,
    request: Request<()>,
) -> Response<GrpcBody<()>> {
    send(service, request)
}

fn run<S, B>(n: u64, service: &mut S, one: fn(&mut S, Request<()>) -> Response<B>) {
    for _ in 0..n {
        let request = make_request();
        black_box(one(service, black_box(request)));
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().expect("number of requests"));
    // `store`: the layer's cache shares its tokens through a token store. Measured in a run
    // of its own, so that both runs measure the same machine code (a second call site of the
    // same function changes what LLVM inlines): a warm request must not touch the store.
    let with_store = std::env::args().nth(2).as_deref() == Some("store");
    let token = realistic_token();

    let mut bare = Inner;
    let mut add_authorization = AddAuthorizationLayer::bearer(&token)
        .as_sensitive(true)
        .layer(Inner);
    let mut cache = TokenCache::builder(HourToken(token));
    if with_store {
        cache = cache.store(MemoryStore::new(), StoreKey::new("callgrind", "hot-path"));
    }
    let layer = BearerTokenLayer::from_cache(cache.build());
    // With feature `grpc`, the layer with `GrpcUnauthenticatedLayer` inside it instead: a
    // binary of its own, as a second layered service in this one changes what LLVM inlines
    // into the first (measured: 1,292 instead of 1,246 for the plain layer).
    #[cfg(not(feature = "grpc"))]
    let mut bearer_token = layer.layer(Inner);
    #[cfg(feature = "grpc")]
    let mut bearer_token_grpc = layer.layer(GrpcUnauthenticatedLayer::new(&layer).layer(Inner));
    // Warm the cache; the runtime lives on (not driven) so the refresh timer stays armed.
    let runtime = warm_up_runtime();
    runtime
        .block_on(layer.cache().token())
        .expect("warming the cache failed");
    let warm = layer.cache().stats();
    assert_eq!(warm.fetches, 1);

    run(n, &mut bare, request_bare);
    run(n, &mut add_authorization, request_add_authorization);
    #[cfg(not(feature = "grpc"))]
    run(n, &mut bearer_token, request_bearer_token);
    #[cfg(feature = "grpc")]
    run(n, &mut bearer_token_grpc, request_bearer_token_grpc);

    // Every request used the cached token: no fetch, no wait.
    assert_eq!(layer.cache().stats(), warm);
    println!("sent {n} requests per variant");
    drop(runtime);
}
