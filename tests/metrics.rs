//! The `metrics` feature: what a recorder sees after cold requests, cache hits, a 401, a
//! failed fetch and two replicas sharing a token store.
#![cfg(feature = "metrics")]

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower::{Layer, ServiceExt};
use tower_bearer::metrics as names;
use tower_bearer::{BearerTokenLayer, TokenCache};

#[tokio::test(start_paused = true)]
async fn counters_and_histograms_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder in this test binary");

    // token-0 is refused once by the API; the next fetch fails; then token-2 works.
    let source = Scripted::new(Duration::from_millis(100), |n| match n {
        1 => Err(server_error(n)),
        n => Ok(tower_bearer::Token::new(format!("token-{n}")).with_expires_in(60 * MINUTE)),
    });
    let cache = TokenCache::builder(source).name("partner").build();
    let layer = BearerTokenLayer::from_cache(cache);
    let refusing = layer.layer(api(Seen::default(), |auth| {
        if auth == "Bearer token-0" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        }
    }));

    // 50 cold requests: 1 fetch, 50 waits; each got token-0 and a 401 (one invalidation).
    let mut calls = Vec::new();
    for _ in 0..50 {
        calls.push(tokio::spawn(
            refusing.clone().oneshot(get("https://api.example/")),
        ));
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    // The next fetch fails: 1 waiter gets the error, 1 more fails fast.
    assert!(
        refusing
            .clone()
            .oneshot(get("https://api.example/"))
            .await
            .is_err()
    );
    assert!(
        refusing
            .clone()
            .oneshot(get("https://api.example/"))
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // 1 waits for token-2, then 2,000 hits on one service, then it is dropped (flushes).
    let mut service = layer.layer(ok_api(Seen::default()));
    for _ in 0..2_001 {
        tower::ServiceExt::ready(&mut service).await.unwrap();
        tower::Service::call(&mut service, get("https://api.example/"))
            .await
            .unwrap();
    }
    drop(service);
    drop(refusing);
    // One request for each reason a token is withheld.
    tower_bearer_withheld(layer.clone()).await;
    // Two replicas sharing a token store: A misses, wins the lease and fetches; B takes A's
    // token from the store (2 more waits, 1 more token request).
    let store = tower_bearer::store::MemoryStore::new();
    let key = tower_bearer::store::StoreKey::new("metrics", "partner");
    let source = Scripted::numbered(Duration::from_millis(100), 60 * MINUTE);
    for _ in 0..2 {
        let replica = TokenCache::builder(source.clone())
            .name("partner")
            .store(store.clone(), key.clone())
            .build();
        tower_bearer::TokenSource::token(&replica).await.unwrap();
    }

    let mut counters = std::collections::BTreeMap::new();
    let mut durations = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        assert!(labels.contains(&"cache=partner".to_owned()), "{labels:?}");
        match value {
            DebugValue::Counter(n) => {
                counters.insert(format!("{}{labels:?}", key.key().name()), n);
            }
            DebugValue::Histogram(values) if key.key().name() == names::TOKEN_REQUEST_DURATION => {
                durations += values.len();
                assert!(values.iter().all(|v| v.into_inner() >= 0.1), "{values:?}");
            }
            _ => {}
        }
    }
    let get = |name: &str, outcome: Option<&str>| {
        let labels = match outcome {
            Some(o) => format!("[\"cache=partner\", \"outcome={o}\"]"),
            None => "[\"cache=partner\"]".to_owned(),
        };
        counters
            .get(&format!("{name}{labels}"))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(get(names::TOKEN_REQUESTS, Some("ok")), 3, "{counters:?}");
    assert_eq!(
        get(names::TOKEN_REQUESTS, Some("unavailable")),
        1,
        "{counters:?}"
    );
    assert_eq!(durations, 4);
    assert_eq!(get(names::REQUESTS_WAITED, None), 54, "{counters:?}");
    assert_eq!(get(names::STORE, Some("miss")), 1, "{counters:?}");
    assert_eq!(get(names::STORE, Some("lease_won")), 1, "{counters:?}");
    assert_eq!(get(names::STORE, Some("hit")), 1, "{counters:?}");
    assert_eq!(get(names::STORE, Some("failed")), 0, "{counters:?}");
    assert_eq!(get(names::REQUESTS_FAILED_FAST, None), 1, "{counters:?}");
    assert_eq!(get(names::INVALIDATIONS, None), 1, "{counters:?}");
    // The waiting requests are not hits; every request served from the cache is (2,000, and
    // the one whose answer redirected elsewhere).
    assert_eq!(get(names::CACHE_HITS, None), 2_001, "{counters:?}");
    for reason in [
        "insecure_scheme",
        "host_not_allowed",
        "host_mismatch",
        "cross_origin_redirect",
    ] {
        let key = format!(
            "{}[\"cache=partner\", \"reason={reason}\"]",
            names::TOKENS_WITHHELD
        );
        assert_eq!(counters.get(&key).copied(), Some(1), "{key}: {counters:?}");
    }
}

async fn tower_bearer_withheld(layer: BearerTokenLayer) {
    let kinds = withhold_once_for_each_reason(layer).await;
    assert_eq!(kinds.len(), 4);
}
