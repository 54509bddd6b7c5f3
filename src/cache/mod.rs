//! [`TokenCache`]: wraps any [`TokenSource`], refreshes ahead of expiry, and asks the source
//! once however many requests need a token at the same moment (single-flight).
//!
//! # How it works
//!
//! - The current token lives in an [`ArcSwapOption`], with its `Authorization` header value
//!   built once. A request loads it lock-free; while the token's `fresh` flag is set it uses it
//!   at once: no lock, no clock read, no allocation, no `.await`.
//! - A timer clears `fresh` when the token enters its refresh window. The next request then
//!   takes the slow path: it reads the clock, locks `state` briefly and asks the pure function
//!   `decision::decide` whether to use the token, use it and start a background refresh, wait
//!   for a fetch, start one, or fail fast with the last error while backing off.
//! - A fetch runs in its own Tokio task, so it finishes for everyone even if the request that
//!   started it is dropped. Waiters share its result through a [`Shared`] future.

mod decision;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use http::HeaderValue;
use tokio::time::Instant;

use crate::error::{TokenError, TokenErrorKind};
use crate::source::TokenSource;
use crate::token::Token;
use decision::{Decision, Timing, backoff, decide, refresh_at};

/// Default time before expiry at which a token is refreshed (capped at half its lifetime).
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Default upper bound of the random amount added to the refresh margin.
pub const DEFAULT_REFRESH_JITTER: Duration = Duration::from_secs(30);
/// Default wait after the first failed fetch; it doubles with each failure after that.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Default longest wait between failed fetches.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Default longest `Retry-After` that is honoured; longer ones are cut to this.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);
/// Default time a fetch may take before it fails with [`TokenErrorKind::Timeout`].
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// A cached token with its prebuilt header value.
pub(crate) struct Entry {
    pub(crate) token: Token,
    /// `Authorization: Bearer <token>`, marked sensitive; cloned into every request.
    pub(crate) header: HeaderValue,
    /// Identifies this token for invalidation ("drop it only if it is still the cached one").
    pub(crate) generation: u64,
    timing: Timing,
    /// True until the token enters its refresh window; the hot path trusts it without reading
    /// the clock. Cleared by the refresh timer. Lock-free; never waited on.
    fresh: AtomicBool,
}

impl Entry {
    pub(crate) fn is_fresh(&self) -> bool {
        self.fresh.load(Ordering::Relaxed)
    }
}

type FetchResult = Result<Arc<Entry>, TokenError>;
/// A running fetch; every waiter holds a clone and gets the same result.
pub(crate) type FetchFuture = Shared<BoxFuture<'static, FetchResult>>;

/// What the slow path found.
pub(crate) enum Acquired {
    Ready(Arc<Entry>),
    Wait(FetchFuture),
    Failed(TokenError),
}

#[derive(Clone, Copy, Debug)]
struct Config {
    refresh_margin: Duration,
    refresh_jitter: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    fetch_timeout: Duration,
}

/// The parts of the cache that do not depend on the source's type.
pub(crate) struct Core {
    /// The current token. Read lock-free by every request; replaced only with `state` locked.
    current: ArcSwapOption<Entry>,
    /// Fetch coordination. Locked briefly on the slow path; never held across `.await`.
    state: Mutex<State>,
    config: Config,
    stats: Counters,
}

#[derive(Default)]
struct State {
    /// Counter behind `Entry::generation` and fetch ids.
    next_id: u64,
    /// The fetch that is running, with its id.
    fetching: Option<(u64, FetchFuture)>,
    /// The last fetch failed: its error, when the next may start, and how many failed in a row.
    failure: Option<Failure>,
    /// The timer that will clear the current token's `fresh` flag.
    refresh_timer: Option<tokio::task::AbortHandle>,
}

struct Failure {
    error: TokenError,
    retry_at: Instant,
    attempts: u32,
}

/// Slow-path counters; the hot path never touches them.
#[derive(Default)]
struct Counters {
    fetches: AtomicU64,
    failures: AtomicU64,
    early_refreshes: AtomicU64,
    waits: AtomicU64,
    fail_fast: AtomicU64,
    invalidations: AtomicU64,
}

/// What a cache has done so far (see [`TokenCache::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Calls to the token source.
    pub fetches: u64,
    /// Calls to the token source that failed.
    pub failures: u64,
    /// Fetches started in the background while the cached token was still valid.
    pub early_refreshes: u64,
    /// Requests that found no usable token and waited for a fetch.
    pub waits: u64,
    /// Requests that failed at once with the last error while backing off.
    pub fail_fast: u64,
    /// Tokens dropped because a response said they were refused (or by [`TokenCache::invalidate`]).
    pub invalidations: u64,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while locked leaves `State` consistent (every write is a single assignment).
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Core {
    /// The cached token if it is fresh: the hot path.
    #[inline]
    pub(crate) fn fresh(&self) -> Option<arc_swap::Guard<Option<Arc<Entry>>>> {
        let guard = self.current.load();
        match &*guard {
            Some(entry) if entry.is_fresh() => Some(guard),
            _ => None,
        }
    }

    /// Drops the cached token if it is still the one with `generation`.
    pub(crate) fn invalidate(&self, generation: u64) -> bool {
        let _state = lock(&self.state);
        let current = self.current.load();
        if current.as_ref().is_some_and(|e| e.generation == generation) {
            self.current.store(None);
            self.stats.invalidations.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Stores the outcome of fetch `id` and returns what its waiters get.
    fn complete(self: &Arc<Self>, id: u64, result: Result<Token, TokenError>) -> FetchResult {
        let now = Instant::now();
        let mut state = lock(&self.state);
        if state.fetching.as_ref().is_some_and(|(f, _)| *f == id) {
            state.fetching = None;
        }
        let result = result.and_then(|token| self.entry(token, now, &mut state));
        match result {
            Ok(entry) => {
                state.failure = None;
                self.current.store(Some(Arc::clone(&entry)));
                if let Some(old) = state.refresh_timer.take() {
                    old.abort();
                }
                if let Some(at) = entry.timing.refresh_at.filter(|_| entry.is_fresh()) {
                    let timer =
                        tokio::spawn(mark_stale_at(Arc::downgrade(self), at, entry.generation));
                    state.refresh_timer = Some(timer.abort_handle());
                }
                Ok(entry)
            }
            Err(error) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                let attempts = state.failure.as_ref().map_or(0, |f| f.attempts) + 1;
                let c = &self.config;
                let delay = backoff(
                    attempts,
                    c.initial_backoff,
                    c.max_backoff,
                    error.retry_after(),
                    c.max_retry_after,
                    fastrand::f64(),
                );
                state.failure = Some(Failure {
                    error: error.clone(),
                    retry_at: now + delay,
                    attempts,
                });
                Err(error)
            }
        }
    }

    /// Checks a fetched token and builds its entry.
    fn entry(&self, token: Token, now: Instant, state: &mut State) -> FetchResult {
        let header = token.header_value()?;
        if token.is_expired_at(now) {
            return Err(TokenError::new(
                TokenErrorKind::InvalidToken,
                format!(
                    "the token source returned a token (fingerprint {}) that had already expired",
                    token.fingerprint()
                ),
            )
            .with_hint("check the token lifetime the server reports (`expires_in`)"));
        }
        let c = &self.config;
        let timing = Timing {
            refresh_at: refresh_at(
                token.received_at(),
                token.expires_at(),
                c.refresh_margin,
                c.refresh_jitter,
                fastrand::f64(),
            ),
            expires_at: token.expires_at(),
        };
        state.next_id += 1;
        // Warm the header's shared buffer so that cloning it on the hot path never allocates.
        drop(header.clone());
        Ok(Arc::new(Entry {
            fresh: AtomicBool::new(timing.is_fresh_at(now)),
            token,
            header,
            generation: state.next_id,
            timing,
        }))
    }
}

/// Clears the `fresh` flag of token `generation` at `at`.
///
/// Should the timer die first (its runtime shut down while another runtime still uses the
/// cache), the flag is cleared then: requests fall back to the slow path, which reads the
/// clock, rather than trust a flag that nothing will clear.
async fn mark_stale_at(core: Weak<Core>, at: Instant, generation: u64) {
    let _stale = MarkStaleOnDrop { core, generation };
    tokio::time::sleep_until(at).await;
}

struct MarkStaleOnDrop {
    core: Weak<Core>,
    generation: u64,
}

impl Drop for MarkStaleOnDrop {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade()
            && let Some(entry) = &*core.current.load()
            && entry.generation == self.generation
        {
            entry.fresh.store(false, Ordering::Relaxed);
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Don't leave a timer sleeping for a cache that is gone.
        if let Some(timer) = lock(&self.state).refresh_timer.take() {
            timer.abort();
        }
    }
}

pub(crate) struct Inner<S> {
    pub(crate) core: Arc<Core>,
    source: S,
}

/// Caches the tokens of a [`TokenSource`]: refreshes them ahead of expiry, in the background,
/// and fetches once for any number of concurrent callers. It is a `TokenSource` itself.
///
/// Clones share the cache. Two caches never share a token, so give each client, scope or
/// audience its own.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::{token_source_fn, Token, TokenCache, TokenSource};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache = TokenCache::builder(token_source_fn(|| async {
///     Ok(Token::new("eyJ...").with_expires_in(Duration::from_secs(3600)))
/// }))
/// .refresh_margin(Duration::from_secs(120))
/// .build();
///
/// let first = cache.token().await.unwrap();
/// let second = cache.token().await.unwrap();
/// assert_eq!(first.fingerprint(), second.fingerprint());
/// assert_eq!(cache.stats().fetches, 1);
/// # }
/// ```
pub struct TokenCache<S> {
    pub(crate) inner: Arc<Inner<S>>,
}

impl<S> Clone for TokenCache<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: TokenSource + 'static> TokenCache<S> {
    /// A cache with the default settings.
    pub fn new(source: S) -> Self {
        Self::builder(source).build()
    }

    /// A builder to change the settings.
    pub fn builder(source: S) -> TokenCacheBuilder<S> {
        TokenCacheBuilder {
            source,
            config: Config {
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                refresh_jitter: DEFAULT_REFRESH_JITTER,
                initial_backoff: DEFAULT_INITIAL_BACKOFF,
                max_backoff: DEFAULT_MAX_BACKOFF,
                max_retry_after: DEFAULT_MAX_RETRY_AFTER,
                fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            },
        }
    }

    /// The slow path: decide with the clock and the state, under the lock.
    pub(crate) fn acquire(&self) -> Acquired {
        let core = &self.inner.core;
        let now = Instant::now();
        let mut state = lock(&core.state);
        let entry = core.current.load_full();
        let decision = decide(
            now,
            entry.as_ref().map(|e| e.timing),
            state.fetching.is_some(),
            state.failure.as_ref().map(|f| f.retry_at),
        );
        match (decision, entry) {
            (Decision::Use, Some(entry)) => Acquired::Ready(entry),
            (Decision::UseAndRefresh, Some(entry)) => {
                core.stats.early_refreshes.fetch_add(1, Ordering::Relaxed);
                // Should the task fail to start, the current token is still good to use.
                let _ = self.start_fetch(&mut state);
                Acquired::Ready(entry)
            }
            (Decision::Wait, _) => match &state.fetching {
                Some((_, fetch)) => {
                    core.stats.waits.fetch_add(1, Ordering::Relaxed);
                    Acquired::Wait(fetch.clone())
                }
                None => Acquired::Failed(no_fetch()),
            },
            (Decision::FailFast, _) => {
                core.stats.fail_fast.fetch_add(1, Ordering::Relaxed);
                match &state.failure {
                    Some(failure) => Acquired::Failed(failure.error.clone()),
                    None => Acquired::Failed(no_fetch()),
                }
            }
            // `StartAndWait`, and the (impossible) use of a missing token.
            (_, _) => {
                core.stats.waits.fetch_add(1, Ordering::Relaxed);
                match self.start_fetch(&mut state) {
                    Ok(fetch) => Acquired::Wait(fetch),
                    Err(error) => Acquired::Failed(error),
                }
            }
        }
    }

    /// Starts a fetch in its own task, so it completes even if every waiter goes away.
    fn start_fetch(&self, state: &mut State) -> Result<FetchFuture, TokenError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            TokenError::new(
                TokenErrorKind::Configuration,
                "the token cache needs a Tokio runtime to fetch a token",
            )
            .with_hint("use the layer or the cache from within a Tokio runtime")
        })?;
        state.next_id += 1;
        let id = state.next_id;
        let inner = Arc::clone(&self.inner);
        let task = runtime.spawn(async move {
            // Whatever happens to this task, the fetch stops counting as running.
            let _clear = ClearFetch {
                core: &inner.core,
                id,
            };
            let outcome = tokio::time::timeout(
                inner.core.config.fetch_timeout,
                AssertUnwindSafe(inner.source.token()).catch_unwind(),
            )
            .await;
            let result = match outcome {
                Ok(Ok(result)) => result,
                Ok(Err(_panic)) => Err(TokenError::new(
                    TokenErrorKind::Other,
                    "the token source panicked",
                )),
                Err(_elapsed) => Err(TokenError::new(
                    TokenErrorKind::Timeout,
                    format!(
                        "the token source gave no answer within {:?}",
                        inner.core.config.fetch_timeout
                    ),
                )
                .with_hint("check that the token endpoint is reachable, or raise `fetch_timeout`")),
            };
            inner.core.complete(id, result)
        });
        let fetch = async move {
            task.await.unwrap_or_else(|_| {
                Err(TokenError::new(
                    TokenErrorKind::Other,
                    "the token fetch was cancelled (the Tokio runtime shut down)",
                ))
            })
        }
        .boxed()
        .shared();
        state.fetching = Some((id, fetch.clone()));
        self.inner
            .core
            .stats
            .fetches
            .fetch_add(1, Ordering::Relaxed);
        Ok(fetch)
    }

    /// A usable token: the cached one, or the result of a fetch.
    pub(crate) async fn entry(&self) -> FetchResult {
        if let Some(guard) = self.inner.core.fresh()
            && let Some(entry) = &*guard
        {
            return Ok(Arc::clone(entry));
        }
        match self.acquire() {
            Acquired::Ready(entry) => Ok(entry),
            Acquired::Wait(fetch) => fetch.await,
            Acquired::Failed(error) => Err(error),
        }
    }
}

impl<S> TokenCache<S> {
    /// Drops the cached token if it is still `token`, so the next request fetches a new one.
    ///
    /// Returns whether it was dropped. A token that was already replaced is left alone, so many
    /// callers reporting the same bad token cause one new fetch, not one each.
    pub fn invalidate(&self, token: &Token) -> bool {
        use secrecy::ExposeSecret;
        let generation = match &*self.inner.core.current.load() {
            Some(entry)
                if entry.token.access_token().expose_secret()
                    == token.access_token().expose_secret() =>
            {
                entry.generation
            }
            _ => return false,
        };
        self.inner.core.invalidate(generation)
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.core.stats;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        CacheStats {
            fetches: get(&c.fetches),
            failures: get(&c.failures),
            early_refreshes: get(&c.early_refreshes),
            waits: get(&c.waits),
            fail_fast: get(&c.fail_fast),
            invalidations: get(&c.invalidations),
        }
    }

    /// The wrapped source.
    pub fn source(&self) -> &S {
        &self.inner.source
    }
}

fn no_fetch() -> TokenError {
    TokenError::new(TokenErrorKind::Other, "no token and no fetch to wait for")
}

/// Clears `State::fetching` when a fetch task ends, however it ends.
struct ClearFetch<'a> {
    core: &'a Core,
    id: u64,
}

impl Drop for ClearFetch<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.core.state);
        if state.fetching.as_ref().is_some_and(|(f, _)| *f == self.id) {
            state.fetching = None;
        }
    }
}

impl<S: TokenSource + 'static> TokenSource for TokenCache<S> {
    async fn token(&self) -> Result<Token, TokenError> {
        self.entry().await.map(|entry| entry.token.clone())
    }
}

impl<S> fmt::Debug for TokenCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.inner.core.current.load();
        f.debug_struct("TokenCache")
            .field("token", &current.as_ref().map(|e| e.token.fingerprint()))
            .field("config", &self.inner.core.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`TokenCache`]; see [`TokenCache::builder`].
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::{StaticToken, Token, TokenCache};
///
/// let cache = TokenCache::builder(StaticToken::new(Token::new("t")))
///     .refresh_margin(Duration::from_secs(60))
///     .refresh_jitter(Duration::from_secs(10))
///     .backoff(Duration::from_millis(500), Duration::from_secs(30))
///     .fetch_timeout(Duration::from_secs(10))
///     .build();
/// # let _ = cache;
/// ```
pub struct TokenCacheBuilder<S> {
    source: S,
    config: Config,
}

impl<S: TokenSource + 'static> TokenCacheBuilder<S> {
    /// How long before expiry a token is refreshed; capped at half the token's lifetime.
    /// Default: [`DEFAULT_REFRESH_MARGIN`] (5 minutes).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.config.refresh_margin = margin;
        self
    }

    /// Upper bound of a random amount added to the margin, so a fleet does not refresh in
    /// lockstep. Default: [`DEFAULT_REFRESH_JITTER`] (30 seconds).
    pub fn refresh_jitter(mut self, jitter: Duration) -> Self {
        self.config.refresh_jitter = jitter;
        self
    }

    /// Wait after the first failed fetch, doubling up to `max`. Defaults:
    /// [`DEFAULT_INITIAL_BACKOFF`] (1 second) and [`DEFAULT_MAX_BACKOFF`] (1 minute).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.config.initial_backoff = initial;
        self.config.max_backoff = max.max(initial);
        self
    }

    /// Longest server-supplied `Retry-After` that is honoured. Default:
    /// [`DEFAULT_MAX_RETRY_AFTER`] (5 minutes).
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.config.max_retry_after = max;
        self
    }

    /// How long one call to the source may take. Default: [`DEFAULT_FETCH_TIMEOUT`] (30 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.config.fetch_timeout = timeout;
        self
    }

    /// The cache.
    pub fn build(self) -> TokenCache<S> {
        TokenCache {
            inner: Arc::new(Inner {
                core: Arc::new(Core {
                    current: ArcSwapOption::empty(),
                    state: Mutex::new(State::default()),
                    config: self.config,
                    stats: Counters::default(),
                }),
                source: self.source,
            }),
        }
    }
}

impl<S> fmt::Debug for TokenCacheBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
