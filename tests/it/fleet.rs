//! Several replicas (independent caches) sharing tokens through a `TokenStore`: the in-process
//! `MemoryStore`, on Tokio's paused clock. (The Redis store's own tests are in `redis_store`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::{BoxFuture, join_all};
use secrecy::ExposeSecret;
use tower::{Layer, ServiceExt};
use tower_bearer::store::{
    Lease, LeaseId, MemoryStore, Saved, StoreError, StoreKey, Stored, TokenStore,
};
use tower_bearer::{BearerTokenLayer, Token, TokenCache, TokenSource};

use crate::common::*;

const FETCH: Duration = Duration::from_millis(200);

fn key() -> StoreKey {
    StoreKey::new("tests", "partner-api")
}

fn replica(source: &Scripted, store: &MemoryStore) -> TokenCache {
    TokenCache::builder(source.clone())
        .store(store.clone(), key())
        .build()
}

fn value(token: &Token) -> String {
    token.access_token().expose_secret().to_owned()
}

#[tokio::test(start_paused = true)]
async fn a_cold_fleet_makes_one_token_request() {
    // 8 replicas, 1,000 concurrent cold requests each.
    let source = Scripted::numbered(FETCH, Duration::from_secs(3600));
    let store = MemoryStore::new();
    let replicas: Vec<TokenCache> = (0..8).map(|_| replica(&source, &store)).collect();
    let mut requests = Vec::new();
    for cache in &replicas {
        for _ in 0..1000 {
            let cache = cache.clone();
            requests.push(tokio::spawn(async move { cache.token().await }));
        }
    }
    for request in join_all(requests).await {
        assert_eq!(value(&request.unwrap().unwrap()), "token-0");
    }
    assert_eq!(source.calls(), 1);
    let hits: u64 = replicas.iter().map(|c| c.stats().store_hits).sum();
    assert_eq!(hits, 7, "every other replica took the token from the store");
    assert!(replicas.iter().all(|c| c.stats().store_fallbacks == 0));
}

#[tokio::test(start_paused = true)]
async fn without_a_store_each_replica_fetches() {
    // The baseline of the test above.
    let source = Scripted::numbered(FETCH, Duration::from_secs(3600));
    let replicas: Vec<TokenCache> = (0..8).map(|_| TokenCache::new(source.clone())).collect();
    join_all(replicas.iter().map(|c| c.token())).await;
    assert_eq!(source.calls(), 8);
}

#[tokio::test(start_paused = true)]
async fn a_fleet_refreshes_once_per_token_lifetime() {
    // Tokens live 10 s: each is refreshed between 5 and 7.5 s after it was fetched (half its
    // lifetime, plus jitter). 8 replicas ask every 100 ms for 100 s.
    let lifetime = Duration::from_secs(10);
    let source = Scripted::numbered(FETCH, lifetime);
    let store = MemoryStore::new();
    let replicas: Vec<TokenCache> = (0..8).map(|_| replica(&source, &store)).collect();
    let tasks = replicas.iter().cloned().map(|cache| {
        tokio::spawn(async move {
            for _ in 0..1000 {
                let token = cache.token().await.expect("a token for every request");
                assert!(!token.is_expired_at(tokio::time::Instant::now()));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    for task in join_all(tasks).await {
        task.unwrap();
    }
    // No two token requests for one token: each came at least half a lifetime after the last.
    let times = source.call_times();
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= lifetime / 2, "two token requests {gap:?} apart");
    }
    // 100 s of tokens replaced every 5 to 7.7 s: 14 to 21 requests for the whole fleet.
    assert!(
        (14..=21).contains(&source.calls()),
        "{} token requests",
        source.calls()
    );
    assert!(replicas.iter().all(|c| c.stats().store_fallbacks == 0));
}

#[tokio::test(start_paused = true)]
async fn a_store_that_is_down_costs_local_fetches_not_requests() {
    let source = Scripted::numbered(FETCH, Duration::from_secs(10));
    let store = MemoryStore::new();
    store.set_available(false);
    let replicas: Vec<TokenCache> = (0..4).map(|_| replica(&source, &store)).collect();
    for result in join_all(replicas.iter().map(|c| c.token())).await {
        result.expect("served by a local fetch");
    }
    assert_eq!(source.calls(), 4);
    assert!(replicas.iter().all(|c| c.stats().store_fallbacks == 1));

    // The store comes back; the caches retry it after DEFAULT_STORE_RETRY (5 s), by when
    // their tokens are due for refresh: the fleet shares again, one request per round.
    store.set_available(true);
    tokio::time::sleep(Duration::from_secs(8)).await;
    for result in join_all(replicas.iter().map(|c| c.token())).await {
        result.expect("a token");
    }
    // Each replica refreshed; the first through the store, the rest took its token.
    tokio::time::sleep(FETCH * 2).await;
    for result in join_all(replicas.iter().map(|c| c.token())).await {
        result.expect("a token");
    }
    assert_eq!(source.calls(), 5);
    let hits: u64 = replicas.iter().map(|c| c.stats().store_hits).sum();
    assert_eq!(hits, 3);
}

#[tokio::test(start_paused = true)]
async fn a_slow_store_delays_a_fetch_by_its_timeout_at_most() {
    let source = Scripted::numbered(FETCH, Duration::from_secs(3600));
    let store = MemoryStore::new();
    store.set_delay(Duration::from_secs(10));
    let cache = replica(&source, &store);
    let started = tokio::time::Instant::now();
    cache.token().await.expect("served by a local fetch");
    // The read gave up after the store timeout (250 ms); then the token endpoint (200 ms).
    assert_eq!(started.elapsed(), Duration::from_millis(450));
    assert_eq!(cache.stats().store_fallbacks, 1);
    // The store is skipped for a while: the next fetch does not wait for it.
    assert!(cache.invalidate(&cache.token().await.unwrap()));
    let started = tokio::time::Instant::now();
    cache.token().await.unwrap();
    assert_eq!(started.elapsed(), FETCH);
}

#[tokio::test(start_paused = true)]
async fn a_fetch_that_outlived_its_lease_does_not_overwrite_a_newer_token() {
    // Replica A holds the lease (fence 0) and fetches for 5 s; meanwhile another writer saves
    // a token (as a replica would after A's lease lapsed, a paused process, ...).
    let source = Scripted::numbered(Duration::from_secs(5), Duration::from_secs(3600));
    let store = MemoryStore::new();
    let a = replica(&source, &store);
    let fetch = tokio::spawn({
        let a = a.clone();
        async move { a.token().await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let newer = Token::new("newer-token").with_expires_in(Duration::from_secs(3600));
    assert_eq!(
        store
            .save(&key(), &LeaseId::random(), 0, &newer)
            .await
            .unwrap(),
        Saved::Stored(1)
    );
    // A's save is fenced off, and A serves the newer token.
    assert_eq!(value(&fetch.await.unwrap().unwrap()), "newer-token");
    assert_eq!(store.generation(&key()), Some(1));
    let stored = store.load(&key()).await.unwrap().unwrap();
    assert_eq!(value(&stored.token), "newer-token");
}

#[tokio::test(start_paused = true)]
async fn a_crashed_lease_holder_is_taken_over_when_its_lease_expires() {
    let source = Scripted::numbered(FETCH, Duration::from_secs(3600));
    let store = MemoryStore::new();
    // A replica took the lease for 3 s and died.
    let lease = store
        .try_lease(&key(), Duration::from_secs(3))
        .await
        .unwrap();
    assert!(matches!(lease, Lease::Won { .. }));
    let cache = replica(&source, &store);
    let started = tokio::time::Instant::now();
    assert_eq!(value(&cache.token().await.unwrap()), "token-0");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(source.calls(), 1);
    assert_eq!(store.generation(&key()), Some(1));
}

#[tokio::test(start_paused = true)]
async fn replicas_outwait_a_dead_holders_lease_as_long_as_their_own_then_one_fetches() {
    // A replica took the lease as the replicas here do (fetch timeout + 2 s) and died. The
    // waiting replicas wait it out; then one takes the lease over and the others its token.
    // (A wait bound of one fetch timeout sent each of them to the token endpoint at 2 s.)
    let fetch_timeout = Duration::from_secs(2);
    let source = Scripted::numbered(FETCH, Duration::from_secs(3600));
    let store = MemoryStore::new();
    let lease = store
        .try_lease(&key(), fetch_timeout + Duration::from_secs(2))
        .await
        .unwrap();
    assert!(matches!(lease, Lease::Won { .. }));
    let replicas: Vec<TokenCache> = (0..4)
        .map(|_| {
            TokenCache::builder(source.clone())
                .fetch_timeout(fetch_timeout)
                .store(store.clone(), key())
                .build()
        })
        .collect();
    let started = tokio::time::Instant::now();
    for result in join_all(replicas.iter().map(|c| c.token())).await {
        assert_eq!(value(&result.unwrap()), "token-0");
    }
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "after the lease"
    );
    assert_eq!(source.calls(), 1);
    let hits: u64 = replicas.iter().map(|c| c.stats().store_hits).sum();
    assert_eq!(hits, 3);
    assert!(replicas.iter().all(|c| c.stats().store_fallbacks == 0));
}

#[tokio::test(start_paused = true)]
async fn with_the_defaults_a_stuck_lease_holder_costs_a_request_the_default_bound_at_most() {
    use tower_bearer::TokenErrorKind;
    use tower_bearer::cache::{DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_WAIT};
    // A replica took the lease as the defaults make it (the fetch timeout and 2 s: 17 s) and
    // died. The waiting replicas' requests give up at the default bound; their fetches go on,
    // outwait the dead holder's lease, and the fleet still makes one token request.
    let source = Scripted::numbered(FETCH, Duration::from_secs(3600));
    let store = MemoryStore::new();
    let lease_ttl = DEFAULT_FETCH_TIMEOUT + Duration::from_secs(2);
    let lease = store.try_lease(&key(), lease_ttl).await.unwrap();
    assert!(matches!(lease, Lease::Won { .. }));
    let replicas = [replica(&source, &store), replica(&source, &store)];
    let started = tokio::time::Instant::now();
    for result in join_all(replicas.iter().map(|c| c.token())).await {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Timeout);
        assert!(
            err.to_string().contains(
                "no token within 10s, the longest wait (`max_wait`): waited for a token for \
                 the cache `default`, which another replica is fetching (through the token \
                 store)"
            ),
            "{err}"
        );
    }
    assert_eq!(started.elapsed(), DEFAULT_MAX_WAIT);
    assert_eq!(source.calls(), 0);
    // The next requests join the fetches still running: one replica takes the lease over
    // once it expires and fetches, the other takes its token from the store.
    for result in join_all(replicas.iter().map(|c| c.token())).await {
        assert_eq!(value(&result.unwrap()), "token-0");
    }
    assert!(started.elapsed() >= lease_ttl, "after the lease");
    assert!(
        started.elapsed() < 2 * DEFAULT_MAX_WAIT,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(source.calls(), 1);
    assert!(replicas.iter().all(|c| c.stats().store_fallbacks == 0));
}

#[tokio::test(start_paused = true)]
async fn a_replica_waits_for_a_lease_at_most_a_lease_and_a_fetch_then_fetches_itself() {
    // A lease far longer than the replicas' own (a holder with another configuration, a stuck
    // lease): the replica fetches itself after a lease (2 + 2 s), a poll (0.5 s) and a fetch
    // timeout (2 s).
    let fetch_timeout = Duration::from_secs(2);
    let source = Scripted::numbered(FETCH, Duration::from_secs(3600));
    let store = MemoryStore::new();
    store.try_lease(&key(), 10 * MINUTE).await.unwrap();
    let cache = TokenCache::builder(source.clone())
        .fetch_timeout(fetch_timeout)
        .store(store.clone(), key())
        .build();
    let started = tokio::time::Instant::now();
    assert_eq!(value(&cache.token().await.unwrap()), "token-0");
    assert_eq!(started.elapsed(), Duration::from_millis(6500) + FETCH);
    assert_eq!(source.calls(), 1);
    assert_eq!(cache.stats().store_fallbacks, 1);
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_wins_the_lease_just_after_another_saved_takes_its_token() {
    // B reads the store (nothing yet), then its lease is slow to answer: by then A has fetched,
    // saved and released the lease, so B wins it. The lease's fence (A's generation) tells B
    // that someone saved since its read: B reads again and takes A's token.
    let source = Scripted::numbered(Duration::from_millis(100), Duration::from_secs(3600));
    let store = MemoryStore::new();
    let a = replica(&source, &store);
    let slow = Counting {
        inner: store.clone(),
        lease_delay: Duration::from_millis(150),
        ..Counting::default()
    };
    let b = TokenCache::builder(source.clone())
        .store(slow, key())
        .build();
    let (from_a, from_b) = tokio::join!(a.token(), b.token());
    assert_eq!(value(&from_a.unwrap()), "token-0");
    assert_eq!(value(&from_b.unwrap()), "token-0");
    assert_eq!(source.calls(), 1);
    assert_eq!(b.stats().store_hits, 1);
    assert_eq!(store.generation(&key()), Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_is_dropped_from_the_store_once() {
    let source = Scripted::numbered(FETCH, Duration::from_secs(3600));
    let store = MemoryStore::new();
    let (a, b) = (replica(&source, &store), replica(&source, &store));
    let first = a.token().await.unwrap();
    assert_eq!(value(&b.token().await.unwrap()), "token-0");
    // A's request gets a 401: A drops the token, and its next fetch removes it from the store
    // and fetches a new one.
    assert!(a.invalidate(&first));
    assert_eq!(value(&a.token().await.unwrap()), "token-1");
    // B's request with the same token gets a 401 too: B takes A's new token, no second fetch.
    assert!(b.invalidate(&first));
    assert_eq!(value(&b.token().await.unwrap()), "token-1");
    assert_eq!(source.calls(), 2);
}

/// A store that counts its calls, around a `MemoryStore`; its leases can be slow to answer.
#[derive(Clone, Default)]
struct Counting {
    inner: MemoryStore,
    calls: Arc<AtomicUsize>,
    lease_delay: Duration,
}

impl TokenStore for Counting {
    fn load<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<Option<Stored>, StoreError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key)
    }
    fn try_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(self.lease_delay).await;
            self.inner.try_lease(key, ttl).await
        })
    }
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
        fence: u64,
        token: &'a Token,
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.save(key, lease, fence, token)
    }
    fn release<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.release(key, lease)
    }
    fn remove<'a>(
        &'a self,
        key: &'a StoreKey,
        generation: u64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.remove(key, generation)
    }
}

#[tokio::test(start_paused = true)]
async fn warm_requests_never_touch_the_store() {
    let source = Scripted::numbered(FETCH, Duration::from_secs(3600));
    let store = Counting::default();
    let cache = TokenCache::builder(source.clone())
        .store(store.clone(), key())
        .build();
    let service = BearerTokenLayer::from_cache(cache).layer(ok_api(Seen::default()));
    service
        .clone()
        .oneshot(get("https://api.example/"))
        .await
        .unwrap();
    let after_the_fetch = store.calls.load(Ordering::SeqCst);
    assert!(after_the_fetch >= 3, "load, lease, save");
    for _ in 0..1000 {
        service
            .clone()
            .oneshot(get("https://api.example/"))
            .await
            .unwrap();
    }
    assert_eq!(store.calls.load(Ordering::SeqCst), after_the_fetch);
    assert_eq!(source.calls(), 1);
}

#[test]
fn scripted_is_a_token_source() {
    fn is_source<T: TokenSource>(_: &T) {}
    is_source(&Scripted::numbered(FETCH, FETCH));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_told_to_one_replica_holds_for_the_fleet() {
    use tower_bearer::{TokenError, TokenErrorKind};
    // The token endpoint answers the first request with 429 and Retry-After: 30 s.
    let source = Scripted::new(FETCH, |n| {
        if n == 0 {
            Err(TokenError::new(TokenErrorKind::RateLimited, "slow down")
                .with_retry_after(Duration::from_secs(30)))
        } else {
            Ok(Token::new(format!("token-{n}")).with_expires_in(Duration::from_secs(3600)))
        }
    });
    let store = MemoryStore::new();
    let (a, b) = (replica(&source, &store), replica(&source, &store));
    let err = a.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::RateLimited);
    // Replica B does not ask: it fails at once, told how long the fleet waits.
    let err = b.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::RateLimited);
    let left = err.retry_after().expect("the fleet's wait");
    assert!(
        left > Duration::from_secs(29) && left <= Duration::from_secs(30),
        "{left:?}"
    );
    assert!(err.to_string().contains("another replica"), "{err}");
    assert_eq!(source.calls(), 1);
    // Once the wait is over, one replica fetches and the other takes its token.
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(value(&b.token().await.unwrap()), "token-1");
    assert_eq!(value(&a.token().await.unwrap()), "token-1");
    assert_eq!(source.calls(), 2);
}
