//! Robustness: runtimes that shut down or stop being driven, overflowing durations, fleets,
//! APIs that refuse every token, and odd URIs. (Found by a second reader of the cache; each
//! test failed before its fix.) Some use real time on purpose: they check the coarse-clock
//! guard that protects a token when Tokio timers cannot fire.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::*;
use http::StatusCode;
use tokio::time::{Instant, advance, sleep};
use tower::{Layer, ServiceExt};
use tower_bearer::error::DestinationErrorKind;
use tower_bearer::{
    BearerTokenLayer, Error, StaticToken, Token, TokenCache, TokenError, TokenErrorKind,
    TokenSource,
};

const MILLI: Duration = Duration::from_millis(1);

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn real_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Was a defect: `start_fetch` creates its `ClearFetch` guard *inside* the spawned async block,
/// so a fetch task that is dropped before its first poll (its runtime shut down) never clears
/// `State::fetching`. From then on the cache believes a fetch is running forever: it never
/// refreshes, and once the token expires every caller "waits" on the cancelled fetch and gets
/// "the token fetch was cancelled" — permanently, with no further source call.
///
/// Deterministic trigger: a current-thread runtime polls the `block_on` future before its
/// queued tasks, so an early refresh started by a request that completes in one poll is spawned
/// but never polled; then the runtime is dropped (e.g. one runtime per `#[tokio::test]` with a
/// shared, static client).
#[test]
fn a_fetch_task_dropped_before_it_runs_does_not_wedge_the_cache() {
    let source = Scripted::numbered(Duration::ZERO, 10 * SECOND);
    let cache = TokenCache::builder(source.clone())
        .refresh_jitter(Duration::ZERO)
        .build();

    let first = paused_runtime();
    first.block_on(async {
        cache.token().await.unwrap(); // token-0, refresh due at 5 s
        advance(6 * SECOND).await;
        tokio::task::yield_now().await; // let the refresh timer clear `fresh`
        // In the refresh window: UseAndRefresh spawns the fetch and returns at once, so this
        // block_on completes without ever polling the fetch task.
        cache.token().await.unwrap();
    });
    drop(first); // the unpolled fetch task is dropped

    let second = paused_runtime();
    second.block_on(async {
        advance(11 * SECOND).await; // token-0 has expired
        // Keep trying for an hour: every call fails at once, and the source is never asked.
        let mut failures = 0;
        for _ in 0..60 {
            if cache.token().await.is_err() {
                failures += 1;
            }
            advance(MINUTE).await;
        }
        assert_eq!(
            failures,
            0,
            "cache wedged: {failures}/60 calls over an hour failed with {:?}; source calls = {}",
            cache.token().await.unwrap_err().message(),
            source.calls()
        );
    });
}

/// Was a defect: The hot path trusts `Entry::fresh`, which only a Tokio timer clears. A
/// current-thread runtime driven by `block_on` (sync wrappers, CLIs) polls the `block_on`
/// future before it fires due timers, so the first request after an idle gap longer than the
/// token's lifetime gets the *expired* token on the fast path.
#[test]
fn block_on_after_an_idle_gap_never_serves_an_expired_token() {
    let source = Scripted::numbered(Duration::ZERO, 200 * MILLI);
    let cache = TokenCache::new(source.clone());
    let rt = real_runtime();
    rt.block_on(cache.token()).unwrap();
    std::thread::sleep(Duration::from_millis(300)); // idle past expiry
    let token = rt.block_on(cache.token()).unwrap();
    assert!(
        !token.is_expired_at(Instant::now()),
        "served a token that expired {:?} ago (source calls: {})",
        Instant::now() - token.expires_at().unwrap(),
        source.calls()
    );
}

/// Was a defect: Same root cause, permanent form: the refresh timer lives on the runtime that
/// completed the fetch. If that runtime is alive but no longer driven, and another runtime uses
/// the cache, `fresh` is never cleared: the expired token is served forever, never refreshed.
#[test]
fn a_timer_on_an_idle_runtime_does_not_keep_an_expired_token_fresh() {
    let source = Scripted::numbered(Duration::ZERO, 200 * MILLI);
    let cache = TokenCache::new(source.clone());
    let idle = real_runtime();
    idle.block_on(cache.token()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let other = real_runtime();
    let expired = other.block_on(async {
        let mut expired = 0;
        for _ in 0..10 {
            let token = cache.token().await.unwrap();
            if token.is_expired_at(Instant::now()) {
                expired += 1;
            }
            sleep(20 * MILLI).await;
        }
        expired
    });
    drop(idle);
    assert_eq!(
        expired,
        0,
        "{expired}/10 calls got an expired token; source calls: {}",
        source.calls()
    );
}

/// Was a defect: The fetch itself (and its `fetch_timeout`) runs on whichever runtime
/// started it. Started on a runtime that is then left idle, every caller on another runtime
/// that has no valid token waits forever: `fetch_timeout` cannot fire, nothing clears
/// `fetching`.
#[test]
fn a_fetch_on_an_idle_runtime_does_not_hang_callers_elsewhere() {
    let source = Scripted::numbered(Duration::ZERO, 300 * MILLI);
    let cache = TokenCache::builder(source.clone())
        .refresh_jitter(Duration::ZERO)
        .fetch_timeout(100 * MILLI)
        .build();
    let idle = real_runtime();
    idle.block_on(async {
        cache.token().await.unwrap(); // refresh due at 150 ms
        sleep(200 * MILLI).await; // the timer fires here
        cache.token().await.unwrap(); // spawns the early refresh, returns at once
    });
    // `idle` stays alive but is never driven again.
    std::thread::sleep(Duration::from_millis(200)); // token-0 expires
    let other = real_runtime();
    let result = other.block_on(async { tokio::time::timeout(2 * SECOND, cache.token()).await });
    drop(idle);
    assert!(
        result.is_ok(),
        "caller hung for 2 s although fetch_timeout is 100 ms (source calls: {})",
        source.calls()
    );
}

/// Was a defect: `complete` computes `now + delay` with a plain `Instant + Duration`. With
/// `max_retry_after(Duration::MAX)` (a user saying "always honour Retry-After") a server's huge
/// `Retry-After` (the oauth parser accepts any u64 seconds) panics inside `complete`: the fetch
/// task dies, waiters get a misleading "runtime shut down" error, no failure is recorded, so
/// there is no backoff and every later request triggers a new fetch.
#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_neither_panics_nor_disables_backoff() {
    let source = Scripted::new(Duration::ZERO, |_| {
        Err(TokenError::new(TokenErrorKind::RateLimited, "slow down")
            .with_retry_after(Duration::from_secs(u64::MAX)))
    });
    let cache = TokenCache::builder(source.clone())
        .max_retry_after(Duration::MAX)
        .build();
    let err = cache.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::RateLimited, "got: {err}");
    for _ in 0..10 {
        assert!(cache.token().await.is_err());
    }
    assert_eq!(source.calls(), 1, "fetch storm despite Retry-After");
}

/// Was a defect: Jitter is added to the margin *before* the cap at half
/// the lifetime, so for every token living at most 2 × (margin + jitter) — with the defaults,
/// any token of ≤ 10 min, e.g. Keycloak's default 5 min — the cap swallows the jitter and a
/// fleet refreshes in lockstep.
#[tokio::test(start_paused = true)]
async fn short_lived_tokens_get_refresh_jitter_too() {
    let t0 = Instant::now();
    let sources: Vec<_> = (0..20)
        .map(|_| Scripted::numbered(Duration::ZERO, 10 * MINUTE))
        .collect();
    let caches: Vec<_> = sources.iter().cloned().map(TokenCache::new).collect();
    for cache in &caches {
        cache.token().await.unwrap();
    }
    // Step through the window a second at a time; each cache refreshes when its timer fires.
    while Instant::now() < t0 + 10 * MINUTE - SECOND {
        for cache in &caches {
            cache.token().await.unwrap();
        }
        sleep(SECOND).await;
    }
    let refresh_times: std::collections::BTreeSet<_> =
        sources.iter().map(|s| s.call_times()[1] - t0).collect();
    assert!(
        refresh_times.len() > 1,
        "all 20 caches refreshed at the same moment: {refresh_times:?}"
    );
}

/// Was a defect: 401 invalidation has no rate limit: an API that answers 401 to
/// every token (wrong audience, clock skew, revoked client) makes every request fetch a new
/// token, a fetch storm on the token endpoint proportional to the request rate.
#[tokio::test(start_paused = true)]
async fn an_api_refusing_every_token_causes_few_token_requests() {
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let layer = BearerTokenLayer::new(source.clone());
    let service = layer.layer(api(Seen::default(), |_| StatusCode::UNAUTHORIZED));
    for _ in 0..100 {
        let response = service
            .clone()
            .oneshot(get("https://api.example/"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        sleep(10 * MILLI).await;
    }
    assert!(
        source.calls() <= 10,
        "{} token fetches for 100 requests in 1 s",
        source.calls()
    );
}

/// Was a defect: A URI with a host but no scheme (authority-form, `api.example.com:80`) is
/// treated as secure (`secure = true` when the scheme is missing), so the token is attached
/// without knowing whether the connection is TLS. The docs say only URIs "without scheme and
/// host" are left unchecked.
#[tokio::test]
async fn an_authority_form_uri_is_not_trusted_as_https() {
    let seen = Seen::default();
    let service =
        BearerTokenLayer::new(StaticToken::new(Token::new("t"))).layer(ok_api(seen.clone()));
    let request = http::Request::get("api.example.com:80").body(()).unwrap();
    assert_eq!(request.uri().scheme(), None);
    assert_eq!(request.uri().host(), Some("api.example.com"));
    let result = service.oneshot(request).await;
    assert!(
        matches!(&result, Err(Error::Destination(e)) if e.kind() == DestinationErrorKind::InsecureScheme),
        "token attached to a scheme-less, non-loopback destination: {:?}",
        result.map(|r| r.into_body())
    );
}

/// Loopback is judged by name: `*.localhost`
/// and numeric hosts with a trailing dot count as loopback, but hyper-util's `GaiResolver`
/// hands such names to the system resolver/DNS, which does not pin `.localhost` (RFC 6761 is a
/// SHOULD); an on-path attacker answering DNS receives the token over plain http.
#[tokio::test]
async fn only_unambiguous_loopback_names_get_the_token_over_http() {
    let service =
        BearerTokenLayer::new(StaticToken::new(Token::new("t"))).layer(ok_api(Seen::default()));
    for uri in [
        "http://api.localhost/",
        "http://127.0.0.1./",
        "http://localhost./",
    ] {
        let result = service.clone().oneshot(get(uri)).await;
        assert!(
            matches!(&result, Err(Error::Destination(e)) if e.kind() == DestinationErrorKind::InsecureScheme),
            "{uri}: {:?}",
            result.map(|r| r.into_body())
        );
    }
    for uri in ["http://localhost/", "http://127.0.0.1/", "http://[::1]/"] {
        let response = service.clone().oneshot(get(uri)).await.unwrap();
        assert_eq!(response.body(), "Bearer t", "{uri}");
    }
}

/// odd URI forms do not bypass the http refusal or the allow-list.
#[tokio::test]
async fn odd_uris_do_not_bypass_the_destination_checks() {
    let seen = Seen::default();
    let plain = BearerTokenLayer::new(StaticToken::new(Token::new("t")));
    for uri in [
        "http://localhost@evil.example/", // userinfo
        "http://127.0.0.1@evil.example/", // userinfo
        "http://[::2]/",                  // IPv6 non-loopback
        "http://[::ffff:10.0.0.1]/",      // mapped non-loopback
        "HTTP://evil.example/",           // uppercase scheme
        "http://localhost.evil.example/", // loopback name as a label
        "http://127.0.0.1.evil.example/", // loopback IP as a label
        "http://0.0.0.0/",                // unspecified
        "http://[::]/",                   // unspecified
    ] {
        let result = plain.layer(ok_api(seen.clone())).oneshot(get(uri)).await;
        assert!(
            matches!(&result, Err(Error::Destination(_))),
            "{uri}: {:?}",
            result.map(|r| r.into_body())
        );
    }
    let listed = plain
        .clone()
        .allowed_hosts(["api.example.com", "*.partner.example"])
        .unwrap();
    for uri in [
        "https://api.example.com@evil.example/",
        "https://evil.example/api.example.com",
        "https://api.example.com.evil.example/",
        "https://evilpartner.example/",
        "https://partner.example/",
        "https://[::1]/",
        // An entry without a port means the default port only.
        "https://api.example.com:8443/",
    ] {
        let result = listed.layer(ok_api(seen.clone())).oneshot(get(uri)).await;
        assert!(
            matches!(&result, Err(Error::Destination(e)) if e.kind() == DestinationErrorKind::HostNotAllowed),
            "{uri}: {:?}",
            result.map(|r| r.into_body())
        );
    }
    for uri in [
        "https://API.EXAMPLE.COM./",
        "https://api.example.com:443/",
        "https://x.Partner.Example./",
    ] {
        let response = listed
            .layer(ok_api(seen.clone()))
            .oneshot(get(uri))
            .await
            .unwrap();
        assert_eq!(response.body(), "Bearer t", "{uri}");
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
}

/// a 401 for a token invalidated and re-fetched while the request was in flight does
/// not drop the new token, even when the server hands back the same access token string.
#[tokio::test(start_paused = true)]
async fn a_late_401_does_not_drop_a_refetched_token_with_the_same_string() {
    let source = Scripted::new(Duration::ZERO, |_| {
        Ok(Token::new("same").with_expires_in(60 * MINUTE))
    });
    let layer = BearerTokenLayer::new(source.clone());
    let slow_401 = tower::service_fn(|_req: http::Request<()>| async {
        sleep(SECOND).await;
        let mut response = http::Response::new(String::new());
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        Ok::<_, std::convert::Infallible>(response)
    });
    let service = layer.layer(slow_401);
    // a and b carry generation G; a's 401 (t=1 s) drops G; c (t=1.1 s) fetches "same" again as
    // generation G+1; b's late 401 (t=1.5 s) must leave G+1 alone.
    let a = tokio::spawn(service.clone().oneshot(get("https://api.example/")));
    sleep(500 * MILLI).await;
    let b = tokio::spawn(service.clone().oneshot(get("https://api.example/")));
    sleep(600 * MILLI).await;
    let c = tokio::spawn(service.clone().oneshot(get("https://api.example/")));
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert_eq!(layer.cache().stats().invalidations, 1);
    assert_eq!(source.calls(), 2);
    c.await.unwrap().unwrap();
}
