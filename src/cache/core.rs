//! The cache's shared core: the source, the current token, the fetch coordination state under
//! its lock, the refresh timer, and the registry that lets a response report a `401` without
//! holding a reference to the cache. Private to `cache`: the rest of the crate sees the
//! [`grant`](super::grant) face.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::entry::{Config, Entry};
use super::fleet::{Avoid, Fleet, How, Labels, Obtained};
use super::state::{Invalidation, State, Step};
use crate::error::{TokenError, TokenErrorKind};
use crate::source::{BoxTokenSource, TokenSource};
use crate::sync::lock;
use crate::token::Token;

pub(super) type FetchResult = Result<Arc<Entry>, TokenError>;
/// A running fetch; every waiter holds a clone and gets the same result.
pub(super) type FetchFuture = Shared<BoxFuture<'static, FetchResult>>;

/// What the slow path found, once the fetch it may need has been started.
pub(super) enum Acquired {
    Ready(Arc<Entry>),
    /// Wait for this fetch, but not past the instant.
    Wait(FetchFuture, Instant),
    Failed(TokenError),
}

/// Slow-path counters; the hot path never touches them.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) fetches: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) early_refreshes: AtomicU64,
    pub(super) waits: AtomicU64,
    pub(super) fail_fast: AtomicU64,
    pub(super) invalidations: AtomicU64,
    pub(super) store_hits: AtomicU64,
    pub(super) store_fallbacks: AtomicU64,
}

pub(super) struct Core {
    /// Key of this cache in `REGISTRY`.
    pub(super) id: u64,
    /// The `cache` label of its metrics.
    pub(super) name: crate::metrics::Name,
    /// The current token. Read lock-free by every request; replaced only with `state` locked.
    pub(super) current: ArcSwapOption<Entry>,
    /// Fetch coordination and the refresh timer. Locked briefly on the slow path, by a fetch
    /// that ends and by a `401`; never held across `.await`.
    state: Mutex<Locked>,
    pub(super) config: Config,
    pub(super) stats: Counters,
    /// The source, type-erased: it is called once per fetch, in its own task, so a boxed
    /// future costs nothing that matters, and no user type carries its type.
    source: BoxTokenSource,
    /// The token store the fleet shares, if any: consulted by fetches only.
    fleet: Option<Fleet>,
    /// Set once by `TokenCache::shutdown`: no fetch starts after it. Read under `state`'s lock
    /// when a fetch would start, so no fetch starts after `shutdown` returns.
    closed: AtomicBool,
}

/// What the core's lock guards: the coordination state (pure, shared with the model check)
/// and the timer that marks the current token stale when its refresh is due.
#[derive(Default)]
struct Locked {
    state: State<FetchFuture>,
    refresh_timer: Option<tokio::task::AbortHandle>,
    /// The store generation of a token a `401` refused, for the next fetch to remove from the
    /// store before it reads it.
    refused_in_store: Option<u64>,
}

impl Deref for Locked {
    type Target = State<FetchFuture>;

    fn deref(&self) -> &Self::Target {
        &self.state
    }
}

impl DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.state
    }
}

/// Live caches by id, so that a response future carries two integers instead of a reference
/// (a reference count shared by every request on every core; see `grant::Ticket` for the
/// measurement). Locked only when a cache is made or dropped, when a response is a `401` and
/// when a redirect is refused; never held across `.await`.
static REGISTRY: Mutex<BTreeMap<u64, Weak<Core>>> = Mutex::new(BTreeMap::new());
/// Source of cache ids.
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

fn registry() -> MutexGuard<'static, BTreeMap<u64, Weak<Core>>> {
    lock(&REGISTRY)
}

/// The live cache with `id`, if any.
pub(super) fn registered(id: u64) -> Option<Arc<Core>> {
    let weak = registry().get(&id).cloned();
    // Upgraded outside the registry lock: dropping the last reference runs `Core::drop`,
    // which takes that lock.
    weak.and_then(|w| w.upgrade())
}

impl Core {
    pub(super) fn new(
        source: BoxTokenSource,
        fleet: Option<Fleet>,
        config: Config,
        name: crate::metrics::Name,
    ) -> Arc<Self> {
        let core = Arc::new(Self {
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            name,
            current: ArcSwapOption::empty(),
            state: Mutex::new(Locked::default()),
            config,
            stats: Counters::default(),
            source,
            fleet,
            closed: AtomicBool::new(false),
        });
        registry().insert(core.id, Arc::downgrade(&core));
        core
    }

    /// The slow path: decide with the clock and the state, under the lock, and start the fetch
    /// the decision calls for.
    pub(super) fn acquire(self: &Arc<Self>) -> Acquired {
        let now = Instant::now();
        let mut state = lock(&self.state);
        match state.step(now, self.current.load_full()) {
            Step::Use(entry) => Acquired::Ready(entry),
            // A cache that was shut down serves its token until it expires, and fetches no more.
            Step::UseAndStart(entry, _) if self.is_closed() => Acquired::Ready(entry),
            Step::UseAndStart(entry, id) => {
                self.stats.early_refreshes.fetch_add(1, Ordering::Relaxed);
                crate::metrics::count(&self.name, crate::metrics::EARLY_REFRESHES);
                tracing::debug!(cache = self.id, token = %entry.token.fingerprint(), "early refresh");
                // Should the task fail to start, the current token is still good to use.
                let _ = self.start_fetch(&mut state, id, now);
                Acquired::Ready(entry)
            }
            Step::Wait(fetch, give_up_at) => {
                self.stats.waits.fetch_add(1, Ordering::Relaxed);
                crate::metrics::count(&self.name, crate::metrics::REQUESTS_WAITED);
                Acquired::Wait(fetch, give_up_at)
            }
            Step::Start(id) => {
                self.stats.waits.fetch_add(1, Ordering::Relaxed);
                crate::metrics::count(&self.name, crate::metrics::REQUESTS_WAITED);
                match self.start_fetch(&mut state, id, now) {
                    Ok((fetch, give_up_at)) => Acquired::Wait(fetch, give_up_at),
                    Err(error) => Acquired::Failed(error),
                }
            }
            Step::Fail(error) => {
                if state.failure.is_some() {
                    self.stats.fail_fast.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::count(&self.name, crate::metrics::REQUESTS_FAILED_FAST);
                    tracing::trace!(cache = self.id, "no token and backing off: failing fast");
                }
                Acquired::Failed(error)
            }
        }
    }

    /// Starts fetch `id` in its own task, so it completes even if every waiter goes away.
    fn start_fetch(
        self: &Arc<Self>,
        state: &mut Locked,
        id: u64,
        now: Instant,
    ) -> Result<(FetchFuture, Instant), TokenError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(shut_down());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            TokenError::configuration(
                "the token cache needs a Tokio runtime to fetch a token",
                "use the layer or the cache from within a Tokio runtime",
            )
        })?;
        // Made before the task is spawned, so that even a task dropped before it ever runs
        // stops counting as a running fetch.
        let clear = ClearFetch {
            core: Arc::clone(self),
            id,
        };
        let core = Arc::clone(self);
        let avoid = Avoid {
            replacing: self.current.load().as_ref().and_then(|e| e.stored),
            refused: state.refused_in_store.take(),
        };
        let span = tracing::info_span!("token_fetch", cache = self.id, fetch = id);
        let task = runtime.spawn(tracing::Instrument::instrument(
            async move {
                let _clear = clear;
                let result = match &core.fleet {
                    None => core.call_source().await.map(|token| Obtained {
                        token,
                        stored: None,
                        how: How::Source,
                    }),
                    Some(fleet) => {
                        let labels = Labels {
                            id: core.id,
                            name: &core.name,
                        };
                        fleet
                            .obtain(labels, &core.config, avoid, || core.call_source())
                            .await
                    }
                };
                core.complete(id, result)
            },
            span,
        ));
        let future: FetchFuture = async move {
            task.await.unwrap_or_else(|_| {
                Err(TokenError::new(
                    TokenErrorKind::Other,
                    "the token fetch was cancelled (its Tokio runtime shut down)",
                ))
            })
        }
        .boxed()
        .shared();
        let mut fetch_time = self.config.fetch_timeout;
        if let Some(fleet) = &self.fleet {
            fetch_time = fetch_time.saturating_add(fleet.extra_time(fetch_time));
        }
        let give_up_at = state.started(id, now, fetch_time, future.clone());
        Ok((future, give_up_at))
    }

    /// Calls the source once, under the fetch timeout, with a panic caught; counts and times
    /// the token request.
    async fn call_source(&self) -> Result<Token, TokenError> {
        self.stats.fetches.fetch_add(1, Ordering::Relaxed);
        let fetch_timeout = self.config.fetch_timeout;
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            fetch_timeout,
            AssertUnwindSafe(self.source.token()).catch_unwind(),
        )
        .await;
        let result = match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(_panic)) => Err(TokenError::new(
                TokenErrorKind::Other,
                "the token source panicked",
            )),
            Err(_elapsed) => Err(no_answer(fetch_timeout)),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind().as_str(),
        };
        crate::metrics::token_request(&self.name, outcome, started.elapsed());
        result
    }

    /// Drops the cached token if it is still the one with `generation`. For a server's
    /// `refusal`, at most one token is dropped per `invalidation_cooldown`, so an API that
    /// refuses every token does not cause one token request per API request; without one (a
    /// caller's [`TokenCache::invalidate`](super::TokenCache::invalidate)) there is no cooldown.
    /// Returns the dropped token.
    pub(super) fn invalidate(
        &self,
        generation: u64,
        refusal: Option<Refusal>,
    ) -> Option<Arc<Entry>> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        let current = self.current.load();
        let cooldown = refusal.map(|_| self.config.invalidation_cooldown);
        match state.invalidate(now, current.as_deref(), generation, cooldown) {
            Invalidation::NotCurrent => None,
            Invalidation::Cooldown => {
                tracing::debug!(
                    cache = self.id,
                    "{} within the invalidation cooldown: token kept",
                    Refusal::name(refusal)
                );
                None
            }
            Invalidation::Drop => {
                if let Some(entry) = &*current {
                    tracing::info!(
                        cache = self.id,
                        token = %entry.token.fingerprint(),
                        "token refused ({}): dropped",
                        Refusal::name(refusal)
                    );
                    if entry.stored.is_some() {
                        state.refused_in_store = entry.stored;
                    }
                }
                self.current.store(None);
                self.stats.invalidations.fetch_add(1, Ordering::Relaxed);
                crate::metrics::count(&self.name, crate::metrics::INVALIDATIONS);
                current.clone()
            }
        }
    }

    /// Stores the outcome of fetch `id` and returns what its waiters get.
    fn complete(self: &Arc<Self>, id: u64, result: Result<Obtained, TokenError>) -> FetchResult {
        let now = Instant::now();
        if let Ok(obtained) = &result {
            match obtained.how {
                How::StoreHit => {
                    self.stats.store_hits.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::store(&self.name, crate::metrics::STORE_HIT);
                }
                How::Fallback => {
                    self.stats.store_fallbacks.fetch_add(1, Ordering::Relaxed);
                }
                How::LeaseWon | How::Source => {}
            }
        }
        let mut state = lock(&self.state);
        let entry = result.and_then(|obtained| {
            let generation = state.next_id();
            let mut entry = Entry::new(
                obtained.token,
                now,
                generation,
                &self.config,
                fastrand::f64(),
            )?;
            entry.stored = obtained.stored;
            Ok(Arc::new(entry))
        });
        match entry {
            Ok(entry) => {
                state.succeeded(id);
                self.current.store(Some(Arc::clone(&entry)));
                if let Some(old) = state.refresh_timer.take() {
                    old.abort();
                }
                if let Some(at) = entry
                    .timing
                    .refresh_at
                    .filter(|_| entry.is_fresh() && !self.is_closed())
                {
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

impl Core {
    /// Whether a usable token is held: one that has not expired (it may be due for refresh),
    /// in a cache that was not shut down.
    pub(super) fn has_usable_token(&self) -> bool {
        !self.is_closed()
            && self
                .current
                .load()
                .as_ref()
                .is_some_and(|entry| !entry.token.is_expired_at(Instant::now()))
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Starts no fetch from now on and stops the refresh timer; a running fetch ends as it
    /// would (its waiters get its token).
    pub(super) fn shut_down(&self) {
        let mut state = lock(&self.state);
        let first = !self.closed.swap(true, Ordering::Relaxed);
        if let Some(timer) = state.refresh_timer.take() {
            timer.abort();
        }
        if first {
            tracing::info!(
                cache = self.id,
                "token cache shut down: no more token requests"
            );
        }
    }
}

/// The error of a request that needs a new token from a cache that was shut down.
fn shut_down() -> TokenError {
    TokenError::configuration(
        "the token cache was shut down (`TokenCache::shutdown`) and fetches no more tokens",
        "shut the cache down only after the last request that needs it, or build a new one",
    )
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
struct ClearFetch {
    core: Arc<Core>,
    id: u64,
}

impl Drop for ClearFetch {
    fn drop(&mut self) {
        lock(&self.core.state).ended(self.id);
    }
}

/// How a server refused a token a request carried: it names the refusal in logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// An HTTP `401 Unauthorized`.
    Unauthorized,
    /// A gRPC `grpc-status: 16` (`UNAUTHENTICATED`), in a response's headers or trailers.
    #[cfg(feature = "grpc")]
    GrpcUnauthenticated,
}

impl Refusal {
    /// The refusal as logs name it; `None` is a caller's own invalidation.
    fn name(refusal: Option<Self>) -> &'static str {
        match refusal {
            Some(Self::Unauthorized) => "401",
            #[cfg(feature = "grpc")]
            Some(Self::GrpcUnauthenticated) => "grpc-status 16",
            None => "TokenCache::invalidate",
        }
    }
}

/// The current-token slot of a cache, for a per-service `arc_swap::Cache`: the hot path then
/// compares one pointer instead of taking and releasing a hazard slot.
#[derive(Clone)]
pub(super) struct Slot(pub(super) Arc<Core>);

impl Deref for Slot {
    type Target = ArcSwapOption<Entry>;

    fn deref(&self) -> &Self::Target {
        &self.0.current
    }
}

/// A per-service view of the current token.
pub(super) type View = arc_swap::Cache<Slot, Option<Arc<Entry>>>;

/// The error of a fetch that took longer than `fetch_timeout`.
pub(super) fn no_answer(fetch_timeout: Duration) -> TokenError {
    TokenError::new(
        TokenErrorKind::Timeout,
        format!("the token source gave no answer within {fetch_timeout:?}"),
    )
    .with_hint("check that the token endpoint is reachable, or raise `fetch_timeout`")
}
