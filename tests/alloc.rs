//! Heap allocations on the warm path: with a fresh cached token, a request through
//! `BearerTokenLayer` allocates exactly as much as one through tower-http's `AddAuthorization`
//! (only what inserting a header into the request's `HeaderMap` may need), and our own part of
//! the work allocates nothing.
//!
//! A counting global allocator counts the allocations (`alloc`, `alloc_zeroed`, `realloc`) each
//! thread makes; a measurement is the difference of the calling thread's count around the
//! measured section, so tests running in parallel threads do not disturb each other. Requests
//! are built before the measured section; responses are dropped after it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::fmt::Debug;

use http::header::{ACCEPT, AUTHORIZATION, USER_AGENT};
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_bearer::TokenSource;
use tower_http::auth::AddAuthorizationLayer;

#[path = "../benches/support/warm_path.rs"]
mod warm_path;
use warm_path::{hour_token_layer, inner, realistic_token, send, warm_up_runtime};

struct CountingAllocator;

thread_local! {
    /// Allocations made by this thread. Const-initialised and without destructor, so using it
    /// from the allocator never allocates and never fails.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the same arguments.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` and returns how many allocations this thread made meanwhile, with its result.
fn allocations_during<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    let after = ALLOCATIONS.with(Cell::get);
    (after - before, result)
}

/// A request as a client sends it: the header map already holds a few headers.
fn realistic_request() -> Request<()> {
    Request::get("https://api.partner.example/v1/items?page=2")
        .header(ACCEPT, "application/json")
        .header(USER_AGENT, "partner-client/1.4.2")
        .body(())
        .unwrap()
}

/// A request without headers: the `Authorization` header is the first one, so inserting it
/// allocates the header map's storage.
fn headerless_request() -> Request<()> {
    Request::get("https://api.partner.example/v1/items")
        .body(())
        .unwrap()
}

/// Allocations made by sending each request through `service` (built beforehand).
fn allocations_sending<S>(service: &mut S, requests: Vec<Request<()>>) -> u64
where
    S: Service<Request<()>>,
    S::Error: Debug,
{
    let mut responses = Vec::with_capacity(requests.len());
    let mut requests = requests.into_iter();
    let (allocations, ()) = allocations_during(|| {
        for request in requests.by_ref() {
            responses.push(send(service, request));
        }
    });
    drop(responses);
    allocations
}

/// The three services of the benchmark; ours with a warm cache. The runtime that fetched the
/// token must outlive the measurements (its refresh timer keeps the token marked fresh).
struct Services<B, A, O> {
    bare: B,
    add_authorization: A,
    ours: O,
    _runtime: tokio::runtime::Runtime,
}

/// A service as the tests use it.
trait Client: Service<Request<()>, Response = Response<()>, Error: Debug> {}

impl<S: Service<Request<()>, Response = Response<()>, Error: Debug>> Client for S {}

fn services() -> Services<impl Client, impl Client, impl Client> {
    let token = realistic_token();
    let add_authorization = AddAuthorizationLayer::bearer(&token)
        .as_sensitive(true)
        .layer(inner());
    let layer = hour_token_layer(token);
    let mut ours = layer.layer(inner());
    let runtime = warm_up_runtime();
    runtime
        .block_on(ours.clone().oneshot(realistic_request()))
        .expect("warming the cache failed");
    assert_eq!(layer.cache().stats().fetches, 1);

    // Both add the same header.
    let mut spy_theirs = AddAuthorizationLayer::bearer(&realistic_token()).layer(echo());
    let mut spy_ours = layer.layer(echo());
    assert_eq!(
        send(&mut spy_theirs, realistic_request()).into_body(),
        send(&mut spy_ours, realistic_request()).into_body(),
    );

    let mut bare = inner();
    let mut add_authorization = add_authorization;
    // One unmeasured request each on this thread first: first uses on a thread (such as
    // arc-swap registering the thread) are not per-request costs.
    send(&mut bare, realistic_request());
    send(&mut add_authorization, realistic_request());
    send(&mut ours, realistic_request());

    Services {
        bare,
        add_authorization,
        ours,
        _runtime: runtime,
    }
}

/// An inner service that answers with the `Authorization` header it got.
fn echo() -> impl Service<
    Request<()>,
    Response = Response<Option<http::HeaderValue>>,
    Error = Infallible,
    Future: Unpin,
> + Clone {
    service_fn(|request: Request<()>| {
        let header = request.headers().get(AUTHORIZATION).cloned();
        std::future::ready(Ok::<_, Infallible>(Response::new(header)))
    })
}

#[test]
fn the_counter_counts() {
    let (n, boxed) = allocations_during(|| Box::new(7_u64));
    assert_eq!(n, 1);
    drop(boxed);
    let (n, ()) = allocations_during(|| {});
    assert_eq!(n, 0);
}

/// Checks one request shape: ours allocates no more than `AddAuthorization`, and what it adds
/// over the bare service is exactly what `AddAuthorization` adds.
fn check(make_request: fn() -> Request<()>, requests: usize) {
    let Services {
        mut bare,
        mut add_authorization,
        mut ours,
        _runtime,
    } = services();
    let batch = || (0..requests).map(|_| make_request()).collect::<Vec<_>>();
    let bare = allocations_sending(&mut bare, batch());
    let theirs = allocations_sending(&mut add_authorization, batch());
    let ours = allocations_sending(&mut ours, batch());
    eprintln!(
        "{requests} request(s): allocations bare {bare}, add_authorization {theirs}, bearer_token {ours}"
    );
    assert!(
        ours <= theirs,
        "bearer_token made {ours} allocations, add_authorization {theirs} ({requests} requests)"
    );
    assert_eq!(
        ours - bare,
        theirs - bare,
        "bearer_token adds {} allocations to the bare service, add_authorization {} \
         ({requests} requests)",
        ours - bare,
        theirs - bare
    );
}

#[test]
fn one_warm_request_allocates_like_add_authorization() {
    check(realistic_request, 1);
}

#[test]
fn many_warm_requests_allocate_like_add_authorization() {
    check(realistic_request, 1_000);
}

#[test]
fn inserting_the_first_header_allocates_the_same_for_both() {
    check(headerless_request, 1);
    check(headerless_request, 1_000);
}

/// The first request after a fetch is the first to clone the new token's header value. A
/// `HeaderValue` built from a `Vec` allocates on its first clone (its buffer is promoted to a
/// shared one), so the cache clones it once when it stores the token; this checks that the
/// request does not pay for it. The cache is warmed without a request, so no request has
/// cloned the header before the measured one.
#[test]
fn the_first_request_after_a_fetch_does_not_allocate() {
    let token = realistic_token();
    let mut add_authorization = AddAuthorizationLayer::bearer(&token)
        .as_sensitive(true)
        .layer(inner());
    let layer = hour_token_layer(token);
    let mut ours = layer.layer(inner());
    let runtime = warm_up_runtime();
    // On this thread, so the cache has been read from it already.
    runtime
        .block_on(layer.cache().token())
        .expect("warming the cache failed");
    let mut bare = inner();

    let bare = allocations_sending(&mut bare, vec![realistic_request()]);
    let theirs = allocations_sending(&mut add_authorization, vec![realistic_request()]);
    let ours = allocations_sending(&mut ours, vec![realistic_request()]);
    eprintln!(
        "first request after the fetch: allocations bare {bare}, add_authorization {theirs}, \
         bearer_token {ours}"
    );
    assert_eq!(layer.cache().stats().fetches, 1);
    assert!(
        ours <= theirs,
        "bearer_token {ours}, add_authorization {theirs}"
    );
    assert_eq!(ours - bare, theirs - bare);
    drop(runtime);
}
