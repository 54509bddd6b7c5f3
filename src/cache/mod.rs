//! [`TokenCache`]: wraps any [`TokenSource`], refreshes ahead of expiry, and asks the source
//! once however many requests need a token at the same moment (single-flight).
//!
//! # How it works
//!
//! - The current token lives in an [`ArcSwapOption`](arc_swap::ArcSwapOption), with its
//!   `Authorization` header value built once. Each service keeps an `arc_swap::Cache` of it, so
//!   a request compares one pointer, checks that the token is fresh (a flag and a coarse clock
//!   read of a few nanoseconds), and clones the header: no lock, no allocation, no `.await`.
//! - When the token enters its refresh window, the next request takes the slow path: it reads
//!   the clock, locks the state briefly and asks the pure function `decision::decide` whether
//!   to use the token, use it and start a background refresh, wait for a fetch, start one, or
//!   fail fast with the last error while backing off.
//! - A fetch runs in its own Tokio task, so it finishes for everyone even if the request that
//!   started it is dropped. Waiters share its result through a `Shared` future.

mod core;
mod decision;
mod entry;
#[cfg(test)]
mod model;
mod state;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;

use crate::error::{TokenError, TokenErrorKind};
use crate::source::{BoxTokenSource, TokenSource};
use crate::token::Token;
use core::NextEntry;
use core::{ClearFetch, lock};
pub(crate) use core::{
    Core, Dropped, FetchFuture, FetchResult, Slot, View, report_unauthorized, withheld,
};
use entry::Config;
pub(crate) use entry::Entry;
use state::{State, Step};

/// Default time before expiry at which a token is refreshed (capped at half its lifetime).
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Default upper bound of the random delay added to the refresh time (at most half the lead).
pub const DEFAULT_REFRESH_JITTER: Duration = Duration::from_secs(30);
/// Default wait after the first failed fetch; it doubles with each failure after that.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Default longest wait between failed fetches.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Default longest `Retry-After` that is honoured; longer ones are cut to this.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);
/// Default time a fetch may take before it fails with [`TokenErrorKind::Timeout`].
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Default shortest time between two tokens dropped because of `401` answers.
pub const DEFAULT_INVALIDATION_COOLDOWN: Duration = Duration::from_secs(5);

/// What the slow path found.
pub(crate) enum Acquired {
    Ready(Arc<Entry>),
    /// Wait for this fetch, but not past the instant.
    Wait(FetchFuture, Instant),
    Failed(TokenError),
}

pub(crate) struct Inner {
    pub(crate) core: Arc<Core>,
    /// The source, type-erased: it is called once per fetch, in its own task, so a boxed
    /// future costs nothing that matters, and no user type carries its type.
    source: BoxTokenSource,
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
pub struct TokenCache {
    pub(crate) inner: Arc<Inner>,
}

impl Clone for TokenCache {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl TokenCache {
    /// A cache with the default settings.
    pub fn new(source: impl TokenSource + 'static) -> Self {
        Self::builder(source).build()
    }

    /// A builder to change the settings.
    pub fn builder(source: impl TokenSource + 'static) -> TokenCacheBuilder {
        TokenCacheBuilder {
            source: source.boxed(),
            name: "default".to_owned(),
            config: Config {
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                refresh_jitter: DEFAULT_REFRESH_JITTER,
                initial_backoff: DEFAULT_INITIAL_BACKOFF,
                max_backoff: DEFAULT_MAX_BACKOFF,
                max_retry_after: DEFAULT_MAX_RETRY_AFTER,
                fetch_timeout: DEFAULT_FETCH_TIMEOUT,
                invalidation_cooldown: DEFAULT_INVALIDATION_COOLDOWN,
            },
        }
    }

    /// The slow path: decide with the clock and the state, under the lock.
    pub(crate) fn acquire(&self) -> Acquired {
        let core = &self.inner.core;
        let now = Instant::now();
        let mut state = lock(&core.state);
        match state.step(now, core.current.load_full()) {
            Step::Use(entry) => Acquired::Ready(entry),
            Step::UseAndStart(entry, id) => {
                core.stats.early_refreshes.fetch_add(1, Ordering::Relaxed);
                crate::metrics::count(&core.name, crate::metrics::EARLY_REFRESHES);
                tracing::debug!(cache = core.id, token = %entry.token.fingerprint(), "early refresh");
                // Should the task fail to start, the current token is still good to use.
                let _ = self.start_fetch(&mut state, id, now);
                Acquired::Ready(entry)
            }
            Step::Wait(fetch, give_up_at) => {
                core.stats.waits.fetch_add(1, Ordering::Relaxed);
                crate::metrics::count(&core.name, crate::metrics::REQUESTS_WAITED);
                Acquired::Wait(fetch, give_up_at)
            }
            Step::Start(id) => {
                core.stats.waits.fetch_add(1, Ordering::Relaxed);
                crate::metrics::count(&core.name, crate::metrics::REQUESTS_WAITED);
                match self.start_fetch(&mut state, id, now) {
                    Ok((fetch, give_up_at)) => Acquired::Wait(fetch, give_up_at),
                    Err(error) => Acquired::Failed(error),
                }
            }
            Step::Fail(error) => {
                if state.failure.is_some() {
                    core.stats.fail_fast.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::count(&core.name, crate::metrics::REQUESTS_FAILED_FAST);
                    tracing::trace!(cache = core.id, "no token and backing off: failing fast");
                }
                Acquired::Failed(error)
            }
        }
    }

    /// Starts fetch `id` in its own task, so it completes even if every waiter goes away.
    fn start_fetch(
        &self,
        state: &mut State<FetchFuture>,
        id: u64,
        now: Instant,
    ) -> Result<(FetchFuture, Instant), TokenError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            TokenError::configuration(
                "the token cache needs a Tokio runtime to fetch a token",
                "use the layer or the cache from within a Tokio runtime",
            )
        })?;
        let inner = Arc::clone(&self.inner);
        // Made before the task is spawned, so that even a task dropped before it ever runs
        // stops counting as a running fetch.
        let clear = ClearFetch {
            core: Arc::clone(&inner.core),
            id,
        };
        let fetch_timeout = inner.core.config.fetch_timeout;
        let span = tracing::info_span!("token_fetch", cache = inner.core.id, fetch = id);
        let task = runtime.spawn(tracing::Instrument::instrument(
            async move {
                let _clear = clear;
                let started = Instant::now();
                let outcome = tokio::time::timeout(
                    fetch_timeout,
                    AssertUnwindSafe(inner.source.token()).catch_unwind(),
                )
                .await;
                let result = match outcome {
                    Ok(Ok(result)) => result,
                    Ok(Err(_panic)) => Err(TokenError::new(
                        TokenErrorKind::Other,
                        "the token source panicked",
                    )),
                    Err(_elapsed) => Err(timeout_error(fetch_timeout)),
                };
                inner.core.complete(id, result, started)
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
        let give_up_at = state.started(id, now, fetch_timeout, future.clone());
        self.inner
            .core
            .stats
            .fetches
            .fetch_add(1, Ordering::Relaxed);
        Ok((future, give_up_at))
    }

    /// A usable token: the cached one, or the result of a fetch.
    pub(crate) async fn entry(&self) -> FetchResult {
        if let Some(entry) = &*self.inner.core.current.load()
            && entry.is_fresh()
        {
            return Ok(Arc::clone(entry));
        }
        match self.acquire() {
            Acquired::Ready(entry) => Ok(entry),
            Acquired::Wait(fetch, give_up_at) => {
                wait(fetch, give_up_at, self.inner.core.config.fetch_timeout).await
            }
            Acquired::Failed(error) => Err(error),
        }
    }
}

/// Waits for `fetch`, but not past `give_up_at` (when a timer is available).
async fn wait(fetch: FetchFuture, give_up_at: Instant, fetch_timeout: Duration) -> FetchResult {
    if tokio::runtime::Handle::try_current().is_err() {
        return fetch.await;
    }
    tokio::time::timeout_at(give_up_at, fetch)
        .await
        .unwrap_or_else(|_| Err(timeout_error(fetch_timeout)))
}

pub(crate) fn timeout_error(fetch_timeout: Duration) -> TokenError {
    TokenError::new(
        TokenErrorKind::Timeout,
        format!("the token source gave no answer within {fetch_timeout:?}"),
    )
    .with_hint("check that the token endpoint is reachable, or raise `fetch_timeout`")
}

impl TokenCache {
    /// Drops the cached token if it is still `token`, so the next request fetches a new one.
    ///
    /// Returns whether it was dropped. A token that was already replaced is left alone, so many
    /// callers reporting the same bad token cause one new fetch, not one each. (The layer does
    /// this itself on `401`, at most once per
    /// [`invalidation_cooldown`](TokenCacheBuilder::invalidation_cooldown).)
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
        self.inner.core.invalidate(generation, false).is_some()
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

    /// A per-service view of the current token for the hot path.
    pub(crate) fn view(&self) -> View {
        arc_swap::Cache::new(Slot(Arc::clone(&self.inner.core)))
    }
}

impl NextEntry for Inner {
    fn next_entry(self: Arc<Self>) -> futures_util::future::BoxFuture<'static, FetchResult> {
        let cache = TokenCache { inner: self };
        async move { cache.entry().await }.boxed()
    }
}

impl Dropped {
    /// Whether the cache has (or, fetching, gets) a token with another value than the dropped
    /// one. `false` when the fetch fails or the cache is gone.
    pub(crate) async fn replaced(&self) -> bool {
        use secrecy::ExposeSecret;
        let Some(owner) = self.core.owner.get().and_then(|w| w.upgrade()) else {
            return false;
        };
        match owner.next_entry().await {
            Ok(next) => {
                next.token.access_token().expose_secret()
                    != self.entry.token.access_token().expose_secret()
            }
            Err(_) => false,
        }
    }

    /// The dropped token's fingerprint.
    pub(crate) fn fingerprint(&self) -> crate::token::Fingerprint {
        self.entry.token.fingerprint()
    }
}

impl TokenSource for TokenCache {
    async fn token(&self) -> Result<Token, TokenError> {
        self.entry().await.map(|entry| entry.token.clone())
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.inner.core.current.load();
        f.debug_struct("TokenCache")
            .field("token", &current.as_ref().map(|e| e.token.fingerprint()))
            .field("config", &self.inner.core.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
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
pub struct TokenCacheBuilder {
    source: BoxTokenSource,
    name: String,
    config: Config,
}

impl TokenCacheBuilder {
    /// How long before expiry a token is refreshed; capped at half the token's lifetime.
    /// Default: [`DEFAULT_REFRESH_MARGIN`] (5 minutes).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.config.refresh_margin = margin;
        self
    }

    /// Upper bound of a random delay added to the refresh time (at most half the lead), so a
    /// fleet does not refresh in lockstep. Default: [`DEFAULT_REFRESH_JITTER`] (30 seconds).
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

    /// Shortest time between two tokens dropped because of `401` answers, so an API that
    /// refuses every token (wrong audience, client not allow-listed) does not cause a token
    /// request per API request. Default: [`DEFAULT_INVALIDATION_COOLDOWN`] (5 seconds).
    pub fn invalidation_cooldown(mut self, cooldown: Duration) -> Self {
        self.config.invalidation_cooldown = cooldown;
        self
    }

    /// A name for the cache, its `cache` label in [metrics](crate::metrics). Default: `default`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The cache.
    pub fn build(self) -> TokenCache {
        let inner = Arc::new(Inner {
            core: Core::new(self.config, crate::metrics::Name::new(&self.name)),
            source: self.source,
        });
        let owner: std::sync::Weak<dyn NextEntry> = Arc::downgrade(&inner) as _;
        let _ = inner.core.owner.set(owner);
        TokenCache { inner }
    }
}

impl fmt::Debug for TokenCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
