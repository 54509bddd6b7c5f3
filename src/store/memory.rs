//! [`MemoryStore`]: the in-process [`TokenStore`], for tests and for several caches in one
//! process.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Lease, LeaseId, Saved, StoreError, StoreErrorKind, StoreKey, Stored, TokenStore};
use crate::token::Token;

/// A [`TokenStore`] in this process's memory, with the semantics of the Redis store: a lease
/// with a time to live, saves fenced by generation, entries that expire with their token.
///
/// Clones share the store. For tests it can be made to fail ([`set_available`]) or to answer
/// slowly ([`set_delay`]), so the fallbacks can be exercised without a server.
///
/// [`set_available`]: Self::set_available
/// [`set_delay`]: Self::set_delay
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::store::{MemoryStore, StoreKey};
/// use tower_bearer::{token_source_fn, Token, TokenCache, TokenSource};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::new();
/// let key = StoreKey::new("app", "partner-api");
/// let replica = || {
///     TokenCache::builder(token_source_fn(|| async {
///         Ok(Token::new("eyJ...").with_expires_in(Duration::from_secs(3600)))
///     }))
///     .store(store.clone(), key.clone())
///     .build()
/// };
/// let (a, b) = (replica(), replica());
/// a.token().await.unwrap();
/// b.token().await.unwrap();
/// // One token request: the second replica took the first one's token from the store.
/// assert_eq!(a.stats().fetches + b.stats().fetches, 1);
/// assert_eq!(b.stats().store_hits, 1);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// The entries. Locked for the length of one call; never held across `.await`.
    entries: Mutex<HashMap<StoreKey, Entry>>,
    /// Wakes `wait_changed` callers after a save or a removal.
    changed: Notify,
    /// `false`: every call fails with `Unavailable`.
    down: AtomicBool,
    /// Milliseconds each call waits before it runs.
    delay_ms: AtomicU64,
}

#[derive(Default)]
struct Entry {
    token: Option<(Token, u64, Option<Instant>)>,
    lease: Option<(LeaseId, Instant)>,
    /// The fleet waits until then, and why.
    backoff: Option<(String, Instant)>,
    /// The last generation saved under this key.
    generation: u64,
}

impl Entry {
    /// Drops what has expired by `now`.
    fn expire(&mut self, now: Instant) {
        if self
            .token
            .as_ref()
            .is_some_and(|(_, _, expires_at)| expires_at.is_some_and(|at| at <= now))
        {
            self.token = None;
        }
        if self.lease.as_ref().is_some_and(|(_, until)| *until <= now) {
            self.lease = None;
        }
        if self
            .backoff
            .as_ref()
            .is_some_and(|(_, until)| *until <= now)
        {
            self.backoff = None;
        }
    }
}

impl MemoryStore {
    /// An empty store.
    ///
    /// ```
    /// use tower_bearer::store::{MemoryStore, StoreKey};
    ///
    /// let store = MemoryStore::new();
    /// assert_eq!(store.generation(&StoreKey::new("app", "api")), None);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call fail (`false`) or work again (`true`).
    ///
    /// ```
    /// use tower_bearer::store::{MemoryStore, StoreKey, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
    /// store.set_available(false);
    /// assert!(store.load(&key).await.is_err());
    /// store.set_available(true);
    /// assert!(store.load(&key).await.is_ok());
    /// # }
    /// ```
    pub fn set_available(&self, available: bool) {
        self.shared.down.store(!available, Ordering::Relaxed);
    }

    /// Makes every call wait `delay` before it runs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::{MemoryStore, StoreKey, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
    /// store.set_delay(Duration::from_millis(300));
    /// let start = tokio::time::Instant::now();
    /// store.load(&key).await.unwrap();
    /// assert_eq!(start.elapsed(), Duration::from_millis(300));
    /// # }
    /// ```
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// The generation stored under `key`, if a token is stored.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::Token;
    /// use tower_bearer::store::{Lease, MemoryStore, StoreKey, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
    /// assert_eq!(store.generation(&key), None);
    /// let Lease::Won { id, fence } = store.try_lease(&key, Duration::from_secs(5)).await.unwrap()
    /// else { unreachable!() };
    /// store.save(&key, &id, fence, &Token::new("t")).await.unwrap();
    /// assert_eq!(store.generation(&key), Some(1));
    /// # }
    /// ```
    pub fn generation(&self, key: &StoreKey) -> Option<u64> {
        let mut entries = self.entries();
        let entry = entries.get_mut(key)?;
        entry.expire(Instant::now());
        entry.token.as_ref().map(|(_, generation, _)| *generation)
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<StoreKey, Entry>> {
        crate::sync::lock(&self.shared.entries)
    }

    /// Waits for the configured delay, then runs `f` on the entry of `key` unless the store
    /// is down.
    fn call<'a, T: Send + 'a>(
        &'a self,
        key: &'a StoreKey,
        f: impl FnOnce(&mut Entry, Instant) -> T + Send + 'a,
    ) -> BoxFuture<'a, Result<T, StoreError>> {
        Box::pin(async move {
            let delay = self.shared.delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if self.shared.down.load(Ordering::Relaxed) {
                return Err(StoreError::new(
                    StoreErrorKind::Unavailable,
                    "the memory store is set unavailable",
                ));
            }
            let now = Instant::now();
            let mut entries = self.entries();
            let entry = entries.entry(key.clone()).or_default();
            entry.expire(now);
            Ok(f(entry, now))
        })
    }
}

impl TokenStore for MemoryStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<Option<Stored>, StoreError>> {
        // In one process the token's own instants hold (when it was received, when it
        // expires): what the Redis store rebuilds from the time to live and the lifetime.
        self.call(key, |entry, _now| {
            entry.token.as_ref().map(|(token, generation, _)| Stored {
                token: token.clone(),
                generation: *generation,
            })
        })
    }

    fn try_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        self.call(key, move |entry, now| {
            if let Some((reason, until)) = &entry.backoff {
                return Lease::BackingOff {
                    remaining: until.saturating_duration_since(now),
                    reason: reason.clone(),
                };
            }
            if entry.lease.is_some() {
                return Lease::Held;
            }
            let id = LeaseId::random();
            entry.lease = Some((id.clone(), now + ttl));
            Lease::Won {
                id,
                fence: entry.generation,
            }
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
        fence: u64,
        token: &'a Token,
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        let future = self.call(key, move |entry, _now| {
            if entry.lease.as_ref().is_some_and(|(id, _)| id == lease) {
                entry.lease = None;
            }
            if entry.generation > fence {
                return Saved::Newer(entry.generation);
            }
            entry.generation += 1;
            entry.token = Some((token.clone(), entry.generation, token.expires_at()));
            Saved::Stored(entry.generation)
        });
        Box::pin(async move {
            let saved = future.await?;
            self.shared.changed.notify_waiters();
            Ok(saved)
        })
    }

    fn release<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let future = self.call(key, move |entry, _now| {
            if entry.lease.as_ref().is_some_and(|(id, _)| id == lease) {
                entry.lease = None;
            }
        });
        Box::pin(async move {
            future.await?;
            self.shared.changed.notify_waiters();
            Ok(())
        })
    }

    fn back_off<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
        delay: Duration,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let future = self.call(key, move |entry, now| {
            if entry.lease.as_ref().is_some_and(|(id, _)| id == lease) {
                entry.lease = None;
                entry.backoff = Some((reason.to_owned(), now + delay));
            }
        });
        Box::pin(async move {
            future.await?;
            self.shared.changed.notify_waiters();
            Ok(())
        })
    }

    fn remove<'a>(
        &'a self,
        key: &'a StoreKey,
        generation: u64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let future = self.call(key, move |entry, _now| {
            if entry
                .token
                .as_ref()
                .is_some_and(|(_, stored, _)| *stored == generation)
            {
                entry.token = None;
                return true;
            }
            false
        });
        Box::pin(async move {
            let removed = future.await?;
            self.shared.changed.notify_waiters();
            Ok(removed)
        })
    }

    fn wait_changed<'a>(&'a self, _key: &'a StoreKey, at_most: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = tokio::time::timeout(at_most, self.shared.changed.notified()).await;
        })
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.entries().len())
            .field("available", &!self.shared.down.load(Ordering::Relaxed))
            .finish()
    }
}
