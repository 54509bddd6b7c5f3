//! The parts of the cache that do not depend on the source's type: the current token, the fetch
//! coordination state, the refresh timer, and the registry that lets a response report a `401`
//! without holding a reference to the cache.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use arc_swap::ArcSwapOption;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::entry::{Config, Entry};
use super::state::{Invalidation, State};
use crate::error::TokenError;
use crate::token::Token;

pub(crate) type FetchResult = Result<Arc<Entry>, TokenError>;
/// A running fetch; every waiter holds a clone and gets the same result.
pub(crate) type FetchFuture = Shared<BoxFuture<'static, FetchResult>>;

/// Slow-path counters; the hot path never touches them.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) fetches: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) early_refreshes: AtomicU64,
    pub(crate) waits: AtomicU64,
    pub(crate) fail_fast: AtomicU64,
    pub(crate) invalidations: AtomicU64,
}

pub(crate) struct Core {
    /// Key of this cache in `REGISTRY`.
    pub(crate) id: u64,
    /// The `cache` label of its metrics.
    pub(crate) name: crate::metrics::Name,
    /// The current token. Read lock-free by every request; replaced only with `state` locked.
    pub(crate) current: ArcSwapOption<Entry>,
    /// Fetch coordination. Locked briefly on the slow path; never held across `.await`.
    pub(crate) state: Mutex<State<FetchFuture>>,
    pub(crate) config: Config,
    pub(crate) stats: Counters,
    /// The cache that owns this core, set once when it is built; weak, since it owns us.
    pub(crate) owner: OnceLock<Weak<dyn NextEntry>>,
}

/// Live caches by id, so that a response future carries two integers instead of a reference
/// (a reference count shared by every request on every core). Locked only when a cache is made
/// or dropped and when a response is a `401`; never held across `.await`.
static REGISTRY: Mutex<BTreeMap<u64, Weak<Core>>> = Mutex::new(BTreeMap::new());
/// Source of cache ids.
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

fn registry() -> MutexGuard<'static, BTreeMap<u64, Weak<Core>>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while locked leaves `State` consistent (every write is a single assignment).
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts a token not sent by a service of cache `cache_id`, for `reason`.
pub(crate) fn withheld(cache_id: u64, reason: crate::error::DestinationErrorKind) {
    let weak = registry().get(&cache_id).cloned();
    if let Some(core) = weak.and_then(|w| w.upgrade()) {
        crate::metrics::withheld(&core.name, reason.as_str());
    }
}

/// A token a `401` made the cache drop, with the cache, to tell whether a different token is
/// available now.
pub(crate) struct Dropped {
    pub(crate) core: Arc<Core>,
    pub(crate) entry: Arc<Entry>,
}

/// Reports that a request carrying token `generation` of cache `cache_id` got a `401`;
/// returns the token if this report dropped it.
pub(crate) fn report_unauthorized(cache_id: u64, generation: u64) -> Option<Dropped> {
    let weak = registry().get(&cache_id).cloned();
    // Upgraded outside the registry lock: dropping the last reference runs `Core::drop`,
    // which takes that lock.
    let core = weak.and_then(|w| w.upgrade())?;
    let entry = core.invalidate(generation, true)?;
    Some(Dropped { core, entry })
}

/// The cache behind a [`Core`], with its source's type erased: gets a usable token, fetching
/// one if needed. Only a `401`'s replay check uses it.
pub(crate) trait NextEntry: Send + Sync {
    fn next_entry(self: Arc<Self>) -> BoxFuture<'static, FetchResult>;
}

impl Core {
    pub(crate) fn new(config: Config, name: crate::metrics::Name) -> Arc<Self> {
        let core = Arc::new(Self {
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            name,
            current: ArcSwapOption::empty(),
            state: Mutex::new(State::default()),
            config,
            stats: Counters::default(),
            owner: OnceLock::new(),
        });
        registry().insert(core.id, Arc::downgrade(&core));
        core
    }

    /// Drops the cached token if it is still the one with `generation`. With `cooldown`, at
    /// most one token is dropped per `invalidation_cooldown`, so an API that refuses every
    /// token does not cause one token request per API request.
    /// Returns the dropped token.
    pub(crate) fn invalidate(&self, generation: u64, cooldown: bool) -> Option<Arc<Entry>> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        let current = self.current.load();
        let cooldown = cooldown.then_some(self.config.invalidation_cooldown);
        match state.invalidate(now, current.as_deref(), generation, cooldown) {
            Invalidation::NotCurrent => None,
            Invalidation::Cooldown => {
                tracing::debug!(
                    cache = self.id,
                    "401 within the invalidation cooldown: token kept"
                );
                None
            }
            Invalidation::Drop => {
                if let Some(entry) = &*current {
                    tracing::info!(cache = self.id, token = %entry.token.fingerprint(), "token refused (401): dropped");
                }
                self.current.store(None);
                self.stats.invalidations.fetch_add(1, Ordering::Relaxed);
                crate::metrics::count(&self.name, crate::metrics::INVALIDATIONS);
                current.clone()
            }
        }
    }

    /// Stores the outcome of fetch `id` and returns what its waiters get.
    pub(crate) fn complete(
        self: &Arc<Self>,
        id: u64,
        result: Result<Token, TokenError>,
        started: Instant,
    ) -> FetchResult {
        let now = Instant::now();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind().as_str(),
        };
        crate::metrics::token_request(&self.name, outcome, now.saturating_duration_since(started));
        let mut state = lock(&self.state);
        let entry = result.and_then(|token| {
            let generation = state.next_id();
            Entry::new(token, now, generation, &self.config, fastrand::f64()).map(Arc::new)
        });
        match entry {
            Ok(entry) => {
                state.succeeded(id);
                self.current.store(Some(Arc::clone(&entry)));
                if let Some(old) = state.refresh_timer.take() {
                    old.abort();
                }
                if let Some(at) = entry.timing.refresh_at.filter(|_| entry.is_fresh()) {
                    // Armed before the task is spawned: dropping the task, even unpolled,
                    // clears the flag (see `StaleOnDrop`).
                    let stale = StaleOnDrop {
                        core: Arc::downgrade(self),
                        generation: entry.generation,
                    };
                    let timer = tokio::spawn(async move {
                        let _stale = stale;
                        tokio::time::sleep_until(at).await;
                    });
                    state.refresh_timer = Some(timer.abort_handle());
                }
                tracing::info!(
                    cache = self.id,
                    token = %entry.token.fingerprint(),
                    lifetime_s = entry.token.lifetime().map(|l| l.as_secs()),
                    refresh_in_s = entry.timing.refresh_at.map(|at| at.saturating_duration_since(now).as_secs()),
                    "token stored"
                );
                Ok(entry)
            }
            Err(error) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                let (delay, attempts) =
                    state.failed(id, &error, now, &self.config, fastrand::f64());
                tracing::warn!(
                    cache = self.id,
                    kind = %error.kind(),
                    status = error.status().map(|s| s.as_u16()),
                    failures_in_a_row = attempts,
                    retry_in_ms = delay.as_millis() as u64,
                    %error,
                    "token fetch failed; backing off"
                );
                Err(error)
            }
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        registry().remove(&self.id);
        // Don't leave a timer sleeping for a cache that is gone.
        if let Some(timer) = lock(&self.state).refresh_timer.take() {
            timer.abort();
        }
    }
}

/// Marks token `generation` stale (`Entry::fresh_until = 0`) when dropped: when the refresh
/// timer fires, and also when the timer task dies first (its runtime shut down while another
/// runtime still uses the cache), so requests fall back to the slow path.
struct StaleOnDrop {
    core: Weak<Core>,
    generation: u64,
}

impl Drop for StaleOnDrop {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade()
            && let Some(entry) = &*core.current.load()
            && entry.generation == self.generation
        {
            entry.mark_stale();
        }
    }
}

/// Clears `State::fetching` when a fetch task ends, however it ends: completed, panicked,
/// cancelled, or dropped before it ever ran. Made before the task is spawned.
pub(crate) struct ClearFetch {
    pub(crate) core: Arc<Core>,
    pub(crate) id: u64,
}

impl Drop for ClearFetch {
    fn drop(&mut self) {
        lock(&self.core.state).ended(self.id);
    }
}

/// The current-token slot of a cache, for a per-service `arc_swap::Cache`: the hot path then
/// compares one pointer instead of taking and releasing a hazard slot.
#[derive(Clone)]
pub(crate) struct Slot(pub(crate) Arc<Core>);

impl Deref for Slot {
    type Target = ArcSwapOption<Entry>;

    fn deref(&self) -> &Self::Target {
        &self.0.current
    }
}

/// A per-service view of the current token.
pub(crate) type View = arc_swap::Cache<Slot, Option<Arc<Entry>>>;
