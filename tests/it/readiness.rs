//! Readiness and shutdown, on Tokio's paused clock: `TokenCache::prefetch` and `is_ready` (a
//! health check's view), `TokenCache::shutdown`, and what dropping every handle ends.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::advance;
use tower::{Layer, ServiceExt};
use tower_bearer::{BearerTokenLayer, Error, TokenCache, TokenErrorKind};

use crate::common::*;

/// Tokens `token-<n>`, living 10 minutes, refreshed from 5 minutes before expiry.
fn cache(source: &Scripted) -> TokenCache {
    TokenCache::builder(source.clone())
        .refresh_margin(5 * MINUTE)
        .refresh_jitter(Duration::ZERO)
        .build()
}

async fn send(cache: &TokenCache) -> Result<String, Error<std::convert::Infallible>> {
    let service = BearerTokenLayer::from_cache(cache.clone()).layer(ok_api(Seen::default()));
    Ok(service
        .oneshot(get("https://api.example/"))
        .await?
        .into_body())
}

/// Lets every task that can run now run (the paused clock does not move).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn ready_after_prefetch_and_not_after_expiry_without_a_refresh() {
    let source = Scripted::numbered(SECOND, 10 * MINUTE);
    let cache = cache(&source);
    assert!(!cache.is_ready(), "no token yet");

    cache.prefetch().await.unwrap();
    assert!(cache.is_ready());
    assert_eq!(source.calls(), 1);
    // A usable token is held: no second token request.
    cache.prefetch().await.unwrap();
    assert_eq!(source.calls(), 1);

    // In the refresh window the token is still usable: ready.
    advance(6 * MINUTE).await;
    assert!(cache.is_ready());
    // Expired, and no request came to refresh it: not ready, and nothing was fetched.
    advance(5 * MINUTE).await;
    assert!(!cache.is_ready());
    assert_eq!(source.calls(), 1);

    cache.prefetch().await.unwrap();
    assert!(cache.is_ready());
    assert_eq!(source.calls(), 2);
    assert_eq!(send(&cache).await.unwrap(), "Bearer token-1");
}

#[tokio::test(start_paused = true)]
async fn prefetch_shares_one_token_request_with_concurrent_requests() {
    let source = Scripted::numbered(2 * SECOND, 10 * MINUTE);
    let cache = cache(&source);
    let prefetch = tokio::spawn({
        let cache = cache.clone();
        async move { cache.prefetch().await }
    });
    let requests = join_all((0..100).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move { send(&cache).await })
    }));
    for answer in requests.await {
        assert_eq!(answer.unwrap().unwrap(), "Bearer token-0");
    }
    prefetch.await.unwrap().unwrap();
    assert_eq!(source.calls(), 1);
    assert!(cache.is_ready());
}

#[tokio::test(start_paused = true)]
async fn prefetch_returns_the_sources_error_and_the_cache_stays_unready() {
    let source = Scripted::failing(SECOND);
    let cache = cache(&source);
    let error = cache.prefetch().await.unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Unavailable);
    assert!(!cache.is_ready());
    // Backing off: the next prefetch fails at once with the same error, without a request.
    let again = cache.prefetch().await.unwrap_err();
    assert_eq!(again.kind(), TokenErrorKind::Unavailable);
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_401_makes_the_cache_unready_until_the_next_token() {
    let source = Scripted::numbered(SECOND, 10 * MINUTE);
    let cache = cache(&source);
    cache.prefetch().await.unwrap();
    let token = tower_bearer::TokenSource::token(&cache).await.unwrap();
    assert!(cache.invalidate(&token));
    assert!(!cache.is_ready());
    cache.prefetch().await.unwrap();
    assert!(cache.is_ready());
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_serves_the_held_token_until_expiry_and_fetches_no_more() {
    let source = Scripted::numbered(SECOND, 10 * MINUTE);
    let cache = cache(&source);
    cache.prefetch().await.unwrap();
    cache.shutdown();
    assert!(!cache.is_ready(), "a cache that was shut down is not ready");

    // Draining requests still get the held token, even past its refresh time.
    assert_eq!(send(&cache).await.unwrap(), "Bearer token-0");
    advance(7 * MINUTE).await;
    assert_eq!(send(&cache).await.unwrap(), "Bearer token-0");
    assert_eq!(cache.stats().early_refreshes, 0);

    // Expired: a typed error that says why, and still no token request.
    advance(4 * MINUTE).await;
    match send(&cache).await {
        Err(Error::Token(e)) => {
            assert_eq!(e.kind(), TokenErrorKind::Configuration);
            assert!(e.to_string().contains("shut down"), "{e}");
        }
        other => panic!("expected a token error, got {other:?}"),
    }
    assert!(cache.prefetch().await.is_err());
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_and_dropping_every_handle_end_the_caches_tasks() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();

    // Shut down explicitly: the refresh timer ends while the cache lives on.
    let source = Scripted::numbered(SECOND, 10 * MINUTE);
    let kept = cache(&source);
    kept.prefetch().await.unwrap();
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), baseline + 1, "the refresh timer");
    kept.shutdown();
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), baseline);

    // Dropped: the layer, its services and the cache go, and their tasks with them.
    let source = Scripted::numbered(SECOND, 10 * MINUTE);
    let layer = BearerTokenLayer::from_cache(cache(&source));
    let service = layer.layer(ok_api(Seen::default()));
    let response = service
        .clone()
        .oneshot(get("https://api.example/"))
        .await
        .unwrap();
    assert_eq!(response.body(), "Bearer token-0");
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), baseline + 1, "the refresh timer");
    drop((layer, service));
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), baseline);

    // Past the refresh time and the expiry: nobody asks for a token.
    advance(60 * MINUTE).await;
    settle().await;
    assert_eq!(source.calls(), 1);
    assert_eq!(metrics.num_alive_tasks(), baseline);
}

#[tokio::test(start_paused = true)]
async fn a_cache_dropped_during_a_fetch_ends_when_the_fetch_does() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let source = Scripted::numbered(5 * SECOND, 10 * MINUTE);
    let cache = cache(&source);
    // Start a fetch and walk away from it.
    let waiting = tokio::spawn({
        let cache = cache.clone();
        async move { cache.prefetch().await }
    });
    settle().await;
    waiting.abort();
    drop(cache);
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), baseline + 1, "the fetch runs on");
    advance(5 * SECOND).await;
    settle().await;
    assert_eq!(
        metrics.num_alive_tasks(),
        baseline,
        "no timer for a cache that is gone"
    );
    advance(60 * MINUTE).await;
    settle().await;
    assert_eq!(source.calls(), 1);
}
