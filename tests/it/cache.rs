//! The cache's promises, driven through the layer on Tokio's paused clock.

use std::time::Duration;

use crate::common::*;
use futures_util::future::join_all;
use http::StatusCode;
use tokio::time::{Instant, advance, sleep, timeout};
use tower::Service;
use tower::{Layer, ServiceExt};
use tower_bearer::{
    BearerTokenLayer, Error, Token, TokenCache, TokenError, TokenErrorKind, TokenSource,
};

fn layer(source: Scripted) -> BearerTokenLayer {
    BearerTokenLayer::from_cache(
        TokenCache::builder(source)
            .refresh_margin(5 * MINUTE)
            .refresh_jitter(Duration::ZERO)
            .build(),
    )
}

/// Sends one request through `layer` and returns the token it carried.
async fn send(layer: &BearerTokenLayer) -> Result<String, Error<std::convert::Infallible>> {
    let service = layer.layer(ok_api(Seen::default()));
    let response = service.oneshot(get("https://api.example/")).await?;
    Ok(response.into_body())
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_cold_requests_make_one_fetch() {
    let source = Scripted::numbered(200 * MILLI, 60 * MINUTE);
    let layer = layer(source.clone());
    let seen = Seen::default();
    let service = layer.layer(ok_api(seen.clone()));

    let mut tasks = Vec::new();
    for _ in 0..10_000 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            service.oneshot(get("https://api.example/")).await
        }));
    }
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert_eq!(response.body(), "Bearer token-0");
    }
    assert_eq!(source.calls(), 1);
    assert_eq!(layer.cache().stats().fetches, 1);
    assert_eq!(layer.cache().stats().waits, 10_000);
    assert_eq!(
        seen.requests.load(std::sync::atomic::Ordering::SeqCst),
        10_000
    );
}

const MILLI: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn early_refresh_runs_in_the_background_and_nobody_waits() {
    let source = Scripted::numbered(2 * SECOND, 60 * MINUTE);
    let layer = layer(source.clone());
    assert_eq!(send(&layer).await.unwrap(), "Bearer token-0");

    // Into the refresh window (5 minutes before expiry).
    sleep(56 * MINUTE).await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..1_000 {
        let layer = layer.clone();
        tasks.push(tokio::spawn(async move {
            let token = send(&layer).await.unwrap();
            (token, Instant::now())
        }));
    }
    for task in tasks {
        let (token, at) = task.await.unwrap();
        assert_eq!(token, "Bearer token-0");
        assert_eq!(at, start, "a request waited for the refresh");
    }
    assert_eq!(source.calls(), 2, "exactly one refresh");

    // The refresh lands in the background; then requests carry the new token.
    sleep(3 * SECOND).await;
    assert_eq!(send(&layer).await.unwrap(), "Bearer token-1");
    let stats = layer.cache().stats();
    assert_eq!(
        (stats.fetches, stats.early_refreshes, stats.waits),
        (2, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn refresh_margin_is_capped_at_half_a_short_lifetime() {
    let source = Scripted::numbered(Duration::ZERO, 60 * SECOND);
    let layer = layer(source.clone());
    assert_eq!(send(&layer).await.unwrap(), "Bearer token-0");
    sleep(29 * SECOND).await;
    send(&layer).await.unwrap();
    assert_eq!(source.calls(), 1, "refreshed before half the lifetime");
    sleep(2 * SECOND).await;
    send(&layer).await.unwrap();
    sleep(MILLI).await;
    assert_eq!(source.calls(), 2, "not refreshed after half the lifetime");
    assert_eq!(send(&layer).await.unwrap(), "Bearer token-1");
}

#[tokio::test(start_paused = true)]
async fn failed_refresh_keeps_serving_the_valid_token_and_backs_off() {
    let source = Scripted::new(Duration::ZERO, |n| match n {
        0 => Ok(Token::new("token-0").with_expires_in(60 * MINUTE)),
        n => Err(server_error(n)),
    });
    let layer = layer(source.clone());
    send(&layer).await.unwrap();

    // From the refresh window to one second before expiry, a request every 100 ms.
    sleep(55 * MINUTE).await;
    let window_start = Instant::now();
    while Instant::now() < window_start + 5 * MINUTE - SECOND {
        assert_eq!(send(&layer).await.unwrap(), "Bearer token-0");
        sleep(100 * MILLI).await;
    }

    // Backoff 1 s doubling to 60 s: the gaps between retries grow and stay within bounds.
    let times = source.call_times();
    let retries = &times[1..];
    assert!(
        retries.len() >= 5,
        "the refresh was retried: {}",
        retries.len()
    );
    // Shortest possible gaps (half of each step): 0.5+1+2+4+8+16 s, then 30 s: 15 in 299 s.
    assert!(
        retries.len() <= 15,
        "retries are bounded by the backoff: {}",
        retries.len()
    );
    for (i, pair) in retries.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let step = (SECOND * (1 << i.min(6))).min(60 * SECOND);
        assert!(
            gap >= step / 2,
            "retry {i} came after {gap:?}, before the backoff {step:?}"
        );
        assert!(
            gap <= step + 200 * MILLI,
            "retry {i} came after {gap:?}, backoff was {step:?}"
        );
    }
    assert_eq!(layer.cache().stats().fail_fast, 0);
}

#[tokio::test(start_paused = true)]
async fn retry_after_from_the_source_is_honoured() {
    let source = Scripted::new(Duration::ZERO, |n| match n {
        0 => Ok(Token::new("token-0").with_expires_in(60 * MINUTE)),
        n => Err(
            TokenError::new(TokenErrorKind::RateLimited, format!("slow down {n}"))
                .with_retry_after(40 * SECOND),
        ),
    });
    let layer = layer(source.clone());
    send(&layer).await.unwrap();
    sleep(55 * MINUTE).await;
    for _ in 0..1_000 {
        assert_eq!(send(&layer).await.unwrap(), "Bearer token-0");
        sleep(100 * MILLI).await;
    }
    let times = source.call_times();
    assert!(times.len() >= 3);
    for pair in times[1..].windows(2) {
        assert!(
            pair[1] - pair[0] >= 40 * SECOND,
            "retried after {:?}",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn failure_without_a_token_fails_waiters_and_fails_fast_without_a_storm() {
    let source = Scripted::failing(100 * MILLI);
    let layer = layer(source.clone());

    let mut tasks = Vec::new();
    for _ in 0..1_000 {
        let layer = layer.clone();
        tasks.push(tokio::spawn(async move { send(&layer).await }));
    }
    for task in tasks {
        match task.await.unwrap() {
            Err(Error::Token(e)) => {
                assert_eq!(e.kind(), TokenErrorKind::Unavailable);
                assert_eq!(e.message(), "token endpoint failed (call 0)");
            }
            other => panic!("expected a token error, got {other:?}"),
        }
    }
    assert_eq!(source.calls(), 1);

    // Within the backoff: the last error at once, no new fetch.
    let start = Instant::now();
    for _ in 0..1_000 {
        let err = send(&layer).await.unwrap_err();
        assert!(matches!(&err, Error::Token(e) if e.message() == "token endpoint failed (call 0)"));
    }
    assert_eq!(Instant::now(), start, "fail-fast errors come at once");
    assert_eq!(source.calls(), 1);
    assert_eq!(layer.cache().stats().fail_fast, 1_000);

    // After the backoff (at most 1 s for the first failure), exactly one new fetch.
    sleep(SECOND).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let layer = layer.clone();
        tasks.push(tokio::spawn(async move { send(&layer).await }));
    }
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn outage_then_recovery() {
    // Tokens live 10 minutes; the endpoint is down from 1 s to 20 minutes.
    let t0 = Instant::now();
    let outage_end = t0 + 20 * MINUTE;
    let source = Scripted::new(Duration::ZERO, move |n| {
        let now = Instant::now();
        if n > 0 && now < outage_end {
            Err(server_error(n))
        } else {
            Ok(Token::new(format!("token-{n}")).with_expires_in(10 * MINUTE))
        }
    });
    let layer = layer(source.clone());
    let (mut failed_while_valid, mut failed_after_expiry) = (0, 0);
    let mut recovered_at = None;
    while Instant::now() < t0 + 30 * MINUTE {
        match send(&layer).await {
            Ok(token) if token != "Bearer token-0" && recovered_at.is_none() => {
                recovered_at = Some(Instant::now());
            }
            Ok(_) => {}
            Err(Error::Token(e)) => {
                assert_eq!(
                    e.kind(),
                    TokenErrorKind::Unavailable,
                    "the last cause is carried"
                );
                if Instant::now() < t0 + 10 * MINUTE {
                    failed_while_valid += 1;
                } else {
                    failed_after_expiry += 1;
                }
            }
            Err(other) => panic!("{other}"),
        }
        sleep(100 * MILLI).await;
    }
    assert_eq!(
        failed_while_valid, 0,
        "no failure while the token was valid"
    );
    assert!(failed_after_expiry > 0);
    // Token requests during the outage are bounded by the backoff (1 s doubling to 60 s):
    // 6 quick retries, then at least 30 s apart for the remaining ~15 minutes.
    let during: Vec<_> = source
        .call_times()
        .into_iter()
        .filter(|t| *t < outage_end)
        .collect();
    assert!(
        during.len() <= 1 + 6 + 30,
        "{} token requests during the outage",
        during.len()
    );
    // Recovery within one backoff step (at most 60 s) of the endpoint's return.
    let recovered_at = recovered_at.expect("the cache recovered");
    assert!(recovered_at >= outage_end && recovered_at <= outage_end + 61 * SECOND);
    // The figures RELIABILITY.md reports (`-- --nocapture` shows them).
    println!(
        "outage: 0 failures while valid, {failed_after_expiry} fast failures after expiry, \
         {} token requests in 20 min of outage, recovered {:?} after the endpoint returned",
        during.len(),
        recovered_at - outage_end
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_initiator_does_not_cancel_the_fetch() {
    let source = Scripted::numbered(SECOND, 60 * MINUTE);
    let layer = layer(source.clone());

    // The request that starts the fetch gives up after 10 ms.
    let first = timeout(10 * MILLI, send(&layer)).await;
    assert!(first.is_err(), "the first request timed out");

    // Another request joins the same fetch and gets its token.
    assert_eq!(send(&layer).await.unwrap(), "Bearer token-0");
    assert_eq!(source.calls(), 1);

    // Even with every waiter gone, the fetch completes and fills the cache.
    let cache = TokenCache::new(Scripted::numbered(SECOND, 60 * MINUTE));
    assert!(timeout(10 * MILLI, cache.token()).await.is_err());
    sleep(2 * SECOND).await;
    let before = Instant::now();
    let token = cache.token().await.unwrap();
    assert_eq!(Instant::now(), before, "served from the cache, no wait");
    assert_eq!(cache.stats().fetches, 1);
    assert_eq!(token.fingerprint(), Token::new("token-0").fingerprint());
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_401s_for_one_token_causes_one_refresh() {
    let source = Scripted::numbered(100 * MILLI, 60 * MINUTE);
    let layer = layer(source.clone());
    let mut service = layer.layer(api(Seen::default(), |auth| {
        if auth == "Bearer token-0" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        }
    }));
    layer.cache().token().await.unwrap();

    // 500 requests are sent with token-0 before any answer comes back; all come back 401.
    let mut in_flight = Vec::new();
    for _ in 0..500 {
        let ready = service.ready().await.unwrap();
        in_flight.push(ready.call(get("https://api.example/")));
    }
    for response in join_all(in_flight).await {
        assert_eq!(response.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(layer.cache().stats().invalidations, 1);

    // The next 500 requests share one new fetch and succeed.
    let mut tasks = Vec::new();
    for _ in 0..500 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            service.oneshot(get("https://api.example/")).await.unwrap()
        }));
    }
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body(), "Bearer token-1");
    }
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_403_never_refreshes() {
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let layer = layer(source.clone());
    let service = layer.layer(api(Seen::default(), |_| StatusCode::FORBIDDEN));
    for _ in 0..100 {
        let response = service
            .clone()
            .oneshot(get("https://api.example/"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(source.calls(), 1);
    assert_eq!(layer.cache().stats().invalidations, 0);
}

#[tokio::test(start_paused = true)]
async fn a_late_401_for_a_replaced_token_is_ignored() {
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let cache = TokenCache::new(source.clone());
    let old = cache.token().await.unwrap();
    assert!(cache.invalidate(&old));
    let new = cache.token().await.unwrap();
    assert_ne!(old.fingerprint(), new.fingerprint());
    // Reporting the old token again does not drop the new one.
    assert!(!cache.invalidate(&old));
    assert_eq!(
        cache.token().await.unwrap().fingerprint(),
        new.fingerprint()
    );
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn two_sources_never_share_a_token() {
    let a = layer(Scripted::new(Duration::ZERO, |_| Ok(Token::new("token-a"))));
    let b = layer(Scripted::new(Duration::ZERO, |_| Ok(Token::new("token-b"))));
    for _ in 0..3 {
        assert_eq!(send(&a).await.unwrap(), "Bearer token-a");
        assert_eq!(send(&b).await.unwrap(), "Bearer token-b");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_source_times_out() {
    let source = Scripted::numbered(10 * MINUTE, 60 * MINUTE);
    let cache = TokenCache::builder(source.clone())
        .fetch_timeout(5 * SECOND)
        .build();
    let start = Instant::now();
    let err = cache.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Timeout);
    assert_eq!(Instant::now() - start, 5 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_source_is_an_error_not_a_hang() {
    let source = Scripted::new(Duration::ZERO, |n| {
        if n == 0 {
            panic!("source bug");
        }
        Ok(Token::new("token-1"))
    });
    let cache = TokenCache::new(source.clone());
    let err = cache.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Other);
    assert!(err.to_string().contains("panicked"));
    sleep(SECOND).await;
    assert!(cache.token().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn unusable_tokens_are_errors_with_backoff() {
    for (token, says) in [
        (
            Token::new("a\r\nSet-Cookie: x"),
            "cannot be sent in a header",
        ),
        (Token::new(""), "empty"),
        (Token::new("abc").with_token_type("mac"), "mac"),
        (
            Token::new("abc").with_expires_in(Duration::ZERO),
            "already expired",
        ),
    ] {
        let source = Scripted::new(Duration::ZERO, move |_| Ok(token.clone()));
        let cache = TokenCache::new(source.clone());
        let err = cache.token().await.unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
        assert!(err.to_string().contains(says), "{err}");
        // No storm: the next callers fail fast.
        assert!(cache.token().await.is_err());
        assert_eq!(source.calls(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn tokens_without_expiry_are_fetched_once() {
    let source = Scripted::new(Duration::ZERO, |n| Ok(Token::new(format!("token-{n}"))));
    let layer = layer(source.clone());
    for _ in 0..10 {
        assert_eq!(send(&layer).await.unwrap(), "Bearer token-0");
        advance(24 * 60 * MINUTE).await;
    }
    assert_eq!(source.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_holds_on_the_multi_thread_runtime() {
    for round in 0..20 {
        let source = Scripted::numbered(MILLI, 60 * MINUTE);
        let layer = layer(source.clone());
        let service = layer.layer(ok_api(Seen::default()));
        let mut tasks = Vec::new();
        for _ in 0..2_000 {
            let service = service.clone();
            tasks.push(tokio::spawn(async move {
                service
                    .oneshot(get("https://api.example/"))
                    .await
                    .unwrap()
                    .into_body()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), "Bearer token-0");
        }
        assert_eq!(source.calls(), 1, "round {round}");
    }
}

#[tokio::test]
async fn the_cache_is_a_token_source() {
    async fn twice<S: TokenSource>(source: &S) -> (Token, Token) {
        (source.token().await.unwrap(), source.token().await.unwrap())
    }
    let cache = TokenCache::new(Scripted::numbered(Duration::ZERO, 60 * MINUTE));
    let (a, b) = twice(&cache).await;
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(cache.stats().fetches, 1);
}

#[test]
fn a_cache_outliving_its_runtime_still_refreshes_on_time() {
    let paused_runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    };
    let source = Scripted::numbered(Duration::ZERO, 10 * SECOND);
    let cache = TokenCache::builder(source.clone())
        .refresh_jitter(Duration::ZERO)
        .build();

    // The first runtime fetches the token (refresh due after 5 s), then shuts down, taking the
    // refresh timer with it.
    let first = paused_runtime();
    first.block_on(cache.token()).unwrap();
    drop(first);

    // Another runtime keeps using the cache past the refresh deadline: the token is refreshed.
    let second = paused_runtime();
    second.block_on(async {
        advance(6 * SECOND).await;
        let token = cache.token().await.unwrap();
        assert_eq!(token.fingerprint(), Token::new("token-0").fingerprint());
        sleep(MILLI).await;
        assert_eq!(source.calls(), 2, "the early refresh started");
        let token = cache.token().await.unwrap();
        assert_eq!(token.fingerprint(), Token::new("token-1").fingerprint());
    });
}
