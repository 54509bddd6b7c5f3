//! Instruction counts of a warm request through the routed layer (`BearerTokenLayer::routes()`,
//! two origins, the request's the second), for `valgrind --tool=callgrind`: the request and the
//! inner service of `callgrind_hot_path`, and one `#[inline(never)]` function per request, so
//! its inclusive count divided by the requests is the cost of one.
//!
//! A binary of its own: a second layer in `callgrind_hot_path` changes what LLVM inlines there
//! and moves `BearerToken`'s figure (measured: 1,246 alone, 1,260 with this variant beside it).
//! `bash scripts/callgrind-hot-path.sh` runs both.

use std::hint::black_box;

use http::{Request, Response};
use tower::Layer;
use tower_bearer::{BearerTokenLayer, RoutedBearerToken, TokenCache};

#[path = "../../benches/support/warm_path.rs"]
mod warm_path;
use warm_path::{HourToken, Inner, make_request, realistic_token, send, warm_up_runtime};

#[inline(never)]
fn request_routed(service: &mut RoutedBearerToken<Inner>, request: Request<()>) -> Response<()> {
    send(service, request)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().expect("number of requests"));
    let api = TokenCache::new(HourToken(realistic_token()));
    let layer = BearerTokenLayer::routes()
        .route(
            "https://billing.partner.example",
            TokenCache::new(HourToken("billing".to_owned())),
        )
        .expect("an origin")
        .route("https://api.partner.example", api.clone())
        .expect("an origin");
    let mut routed = layer.layer(Inner);
    // Warm the cache; the runtime lives on (not driven) so the refresh timer stays armed.
    let runtime = warm_up_runtime();
    runtime
        .block_on(api.prefetch())
        .expect("warming the cache failed");
    let warm = api.stats();
    assert_eq!(warm.fetches, 1);

    for _ in 0..n {
        let request = make_request();
        black_box(request_routed(&mut routed, black_box(request)));
    }

    // Every request used the cached token: no fetch, no wait.
    assert_eq!(api.stats(), warm);
    println!("sent {n} routed requests");
    drop(runtime);
}
