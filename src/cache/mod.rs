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
//!
//! ```
//! use std::time::Duration;
//! use tower_bearer::{token_source_fn, Token, TokenCache, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let cache = TokenCache::new(token_source_fn(|| async {
//!     Ok(Token::new("eyJ...").with_expires_in(Duration::from_secs(3600)))
//! }));
//! // Three callers at the same moment: one token request.
//! let (a, b, c) = tokio::join!(cache.token(), cache.token(), cache.token());
//! assert!(a.is_ok() && b.is_ok() && c.is_ok());
//! assert_eq!(cache.stats().fetches, 1);
//! # }
//! ```

mod clock;
mod core;
mod decision;
mod entry;
mod fleet;
mod grant;
#[cfg(test)]
mod model;
mod state;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::TokenError;
use crate::source::{BoxTokenSource, TokenSource};
use crate::store::{StoreKey, TokenStore};
use crate::token::Token;
use core::Core;
use entry::Config;
use fleet::Fleet;
pub use fleet::{DEFAULT_STORE_BUDGET, DEFAULT_STORE_RETRY, DEFAULT_STORE_TIMEOUT};
pub(crate) use grant::{Dropped, Grant, Handle, Refusal, Ticket, Wait};

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
/// Default time a fetch may take before it fails with
/// [`TokenErrorKind::Timeout`](crate::error::TokenErrorKind::Timeout). Longer than
/// [`DEFAULT_MAX_WAIT`]: a request gives up first, and the fetch goes on for later requests.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// Default longest time a request (and [`TokenCache::token`]) waits for a token: the worst
/// case of a request with no token cached, whatever the token endpoint, the source or a
/// fleet's lease holder does. After it the request fails with a
/// [`Timeout`](crate::error::TokenErrorKind::Timeout) error, and the fetch goes on for later
/// requests. Change it with [`TokenCacheBuilder::max_wait`] or
/// [`BearerTokenLayer::max_wait`](crate::BearerTokenLayer::max_wait).
///
/// The OAuth client's defaults fit inside it: 3 attempts of 3 s, 0.25 and 0.5 s apart at most,
/// fail a fetch against a hung token endpoint within 9.75 s.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);
/// Default shortest time between two tokens dropped because of `401` answers.
pub const DEFAULT_INVALIDATION_COOLDOWN: Duration = Duration::from_secs(5);

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
    core: Arc<Core>,
}

impl Clone for TokenCache {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
        }
    }
}

impl TokenCache {
    /// A cache with the default settings.
    ///
    /// ```
    /// use tower_bearer::token::ExposeSecret;
    /// use tower_bearer::{CacheStats, StaticToken, Token, TokenCache, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = TokenCache::new(StaticToken::new(Token::new("eyJ...")));
    /// assert_eq!(cache.stats(), CacheStats::default()); // nothing asked yet
    /// let token = cache.token().await.unwrap();
    /// assert_eq!(token.access_token().expose_secret(), "eyJ...");
    /// # }
    /// ```
    pub fn new(source: impl TokenSource + 'static) -> Self {
        Self::builder(source).build()
    }

    /// A builder to change the settings.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{StaticToken, Token, TokenCache, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = TokenCache::builder(StaticToken::new(Token::new("t")))
    ///     .name("partner-api")
    ///     .fetch_timeout(Duration::from_secs(5))
    ///     .build();
    /// assert!(cache.token().await.is_ok());
    /// # }
    /// ```
    pub fn builder(source: impl TokenSource + 'static) -> TokenCacheBuilder {
        TokenCacheBuilder {
            source: source.boxed(),
            fleet: None,
            name: "default".to_owned(),
            config: Config {
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                refresh_jitter: DEFAULT_REFRESH_JITTER,
                initial_backoff: DEFAULT_INITIAL_BACKOFF,
                max_backoff: DEFAULT_MAX_BACKOFF,
                max_retry_after: DEFAULT_MAX_RETRY_AFTER,
                fetch_timeout: DEFAULT_FETCH_TIMEOUT,
                invalidation_cooldown: DEFAULT_INVALIDATION_COOLDOWN,
                max_wait: DEFAULT_MAX_WAIT,
            },
        }
    }

    /// A handle for one service: its view of the current token, to ask for [`Grant`]s.
    pub(crate) fn handle(&self) -> Handle {
        Handle::new(&self.core)
    }

    /// A token for the request with these `headers`, through the service's `handle`: when one
    /// is at hand it is put into `Authorization` at once (see [`Grant`]).
    #[inline(always)]
    pub(crate) fn grant(&self, handle: &mut Handle, headers: &mut http::HeaderMap) -> Grant {
        handle.grant(&self.core, headers)
    }

    /// A token for a request sent from async code (the reqwest middleware), put into the
    /// `Authorization` of its `headers`: the cached one, or a fetch's, waited for no longer
    /// than `max_wait` (if given, else the cache's) and the fetch's own deadline. The ticket
    /// reports a `401`.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) async fn authorize(
        &self,
        headers: &mut http::HeaderMap,
        max_wait: Option<Duration>,
    ) -> Result<Ticket, TokenError> {
        // A handle per request: the middleware is shared (`&self`), and a handle's view of
        // the current token is a mutable cache of its own.
        let grant = self.grant(&mut self.handle(), headers);
        match grant {
            Grant::Ready(ticket) => Ok(ticket),
            Grant::Wait(wait) => {
                let wait = match max_wait {
                    Some(max_wait) => wait.max_wait(max_wait),
                    None => wait,
                };
                let (header, ticket) = wait.await?;
                headers.insert(http::header::AUTHORIZATION, header);
                Ok(ticket)
            }
            Grant::Failed(error) => Err(error),
        }
    }

    /// A request goes without the token, for `reason`: counts it.
    pub(crate) fn withheld(&self, reason: crate::error::DestinationErrorKind) {
        crate::metrics::withheld(&self.core.name, reason.as_str());
    }
}

impl TokenCache {
    /// Drops the cached token if it is still `token`, so the next request fetches a new one.
    ///
    /// Returns whether it was dropped. A token that was already replaced is left alone, so many
    /// callers reporting the same bad token cause one new fetch, not one each. (The layer does
    /// this itself on `401`, at most once per
    /// [`invalidation_cooldown`](TokenCacheBuilder::invalidation_cooldown).)
    ///
    /// ```
    /// use tower_bearer::{StaticToken, Token, TokenCache, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let refused = cache.token().await.unwrap();
    /// assert!(cache.invalidate(&refused));
    /// assert!(!cache.invalidate(&refused)); // already dropped: no second fetch
    /// cache.token().await.unwrap();
    /// assert_eq!(cache.stats().fetches, 2);
    /// # }
    /// ```
    pub fn invalidate(&self, token: &Token) -> bool {
        use secrecy::ExposeSecret;
        let generation = match &*self.core.current.load() {
            Some(entry)
                if entry.token.access_token().expose_secret()
                    == token.access_token().expose_secret() =>
            {
                entry.generation
            }
            _ => return false,
        };
        self.core.invalidate(generation, None).is_some()
    }

    /// Fetches a token now unless a usable one is held, and returns the error if that fails:
    /// for start-up, so that the first requests find a token, and a service reports itself
    /// ready only once it can call the API.
    ///
    /// It is an ordinary request for a token: concurrent requests share its fetch (one token
    /// request however many ask), a token due for refresh is used while a refresh starts in
    /// the background, and while the cache backs off after a failure it fails at once with the
    /// last error. It waits at most the cache's
    /// [`fetch_timeout`](TokenCacheBuilder::fetch_timeout) (plus a second's grace).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{token_source_fn, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = TokenCache::new(token_source_fn(|| async {
    ///     Ok(Token::new("eyJ...").with_expires_in(Duration::from_secs(3600)))
    /// }));
    /// assert!(!cache.is_ready());
    /// cache.prefetch().await.expect("the token endpoint must answer at start-up");
    /// assert!(cache.is_ready());
    /// # }
    /// ```
    pub async fn prefetch(&self) -> Result<(), TokenError> {
        grant::entry(&self.core, None).await.map(|_| ())
    }

    /// Whether the cache holds a token that has not expired, so a request can be sent at once
    /// (a token due for refresh counts: requests use it while it is refreshed). Cheap and
    /// synchronous, no token request: for readiness checks. `false` before the first token,
    /// once the token expired without a refresh (no request came to start one, or the token
    /// endpoint failed), after a `401` dropped it, and after [`shutdown`](Self::shutdown).
    ///
    /// The cache refreshes when requests come, so a service that was idle past its token's
    /// lifetime holds no usable token until the next request. A readiness probe that only
    /// read `is_ready` would then take the service out of traffic, and no request would come
    /// to fetch a new token: let the probe [`prefetch`](Self::prefetch) when no token is held
    /// (one token request shared with everyone, or the last error at once while the cache
    /// backs off). A readiness handler for Kubernetes with axum:
    ///
    /// ```
    /// use axum::{extract::State, http::StatusCode, routing::get, Router};
    /// use tower_bearer::{StaticToken, Token, TokenCache};
    ///
    /// async fn ready(State(cache): State<TokenCache>) -> StatusCode {
    ///     if cache.is_ready() || cache.prefetch().await.is_ok() {
    ///         StatusCode::OK
    ///     } else {
    ///         StatusCode::SERVICE_UNAVAILABLE
    ///     }
    /// }
    ///
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let app: Router = Router::new().route("/ready", get(ready)).with_state(cache);
    /// # let _ = app;
    /// ```
    pub fn is_ready(&self) -> bool {
        self.core.has_usable_token()
    }

    /// Stops the cache: it starts no token request from now on, and its refresh timer ends.
    /// Requests still get the token it holds until that expires (so requests draining during
    /// a graceful shutdown go on); after that, or after a `401` drops it, they fail with a
    /// [`Configuration`](crate::error::TokenErrorKind::Configuration) error that says the
    /// cache was shut down. A token request already running finishes and serves its waiters.
    /// [`is_ready`](Self::is_ready) is `false` from now on. It acts on every clone of the cache
    /// and every layer that uses it, and cannot be undone.
    ///
    /// Without it, dropping the last clone of the cache (layers and services hold one each)
    /// ends its tasks just the same: the refresh timer holds no reference to the cache, and a
    /// running token request ends within the fetch timeout.
    ///
    /// ```
    /// use tower_bearer::{StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// cache.prefetch().await.unwrap();
    /// cache.shutdown();
    /// assert!(!cache.is_ready());
    /// # }
    /// ```
    pub fn shutdown(&self) {
        self.core.shut_down();
    }

    /// What the cache has done so far.
    ///
    /// ```
    /// use tower_bearer::{StaticToken, Token, TokenCache, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// for _ in 0..3 {
    ///     cache.token().await.unwrap();
    /// }
    /// let stats = cache.stats();
    /// assert_eq!((stats.fetches, stats.failures), (1, 0)); // one token for three requests
    /// # }
    /// ```
    pub fn stats(&self) -> CacheStats {
        let c = &self.core.stats;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        CacheStats {
            fetches: get(&c.fetches),
            failures: get(&c.failures),
            early_refreshes: get(&c.early_refreshes),
            waits: get(&c.waits),
            fail_fast: get(&c.fail_fast),
            invalidations: get(&c.invalidations),
            store_hits: get(&c.store_hits),
            store_fallbacks: get(&c.store_fallbacks),
        }
    }
}

impl TokenSource for TokenCache {
    /// The cached token, or the result of a fetch, waited for
    /// [`max_wait`](TokenCacheBuilder::max_wait) at most.
    async fn token(&self) -> Result<Token, TokenError> {
        grant::entry(&self.core, None)
            .await
            .map(|entry| entry.token.clone())
    }

    fn describe(&self) -> Option<String> {
        self.core.describe_source()
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.core.current.load();
        f.debug_struct("TokenCache")
            .field("token", &current.as_ref().map(|e| e.token.fingerprint()))
            .field("config", &self.core.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What a cache has done so far (see [`TokenCache::stats`]).
///
/// ```
/// use tower_bearer::{token_source_fn, TokenCache, TokenError, TokenErrorKind, TokenSource};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let cache = TokenCache::new(token_source_fn(|| async {
///     Err(TokenError::new(TokenErrorKind::Unavailable, "the token endpoint is down"))
/// }));
/// assert!(cache.token().await.is_err()); // asks the source, which fails
/// assert!(cache.token().await.is_err()); // fails at once while backing off
/// let stats = cache.stats();
/// assert_eq!((stats.fetches, stats.failures, stats.fail_fast), (1, 1, 1));
/// # }
/// ```
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
    /// Fetches that took a token from the [token store](crate::store) instead of calling the
    /// source.
    pub store_hits: u64,
    /// Fetches that called the source without the store: it failed or was being skipped, or
    /// another replica's fetch took too long.
    pub store_fallbacks: u64,
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
    fleet: Option<Fleet>,
}

impl TokenCacheBuilder {
    /// How long before expiry a token is refreshed; capped at half the token's lifetime.
    /// Default: [`DEFAULT_REFRESH_MARGIN`] (5 minutes).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{token_source_fn, Token, TokenCache, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// # let source = token_source_fn(|| async {
    /// #     Ok(Token::new("t").with_expires_in(Duration::from_secs(3600)))
    /// # });
    /// let cache = TokenCache::builder(source) // tokens that live an hour
    ///     .refresh_margin(Duration::from_secs(600))
    ///     .refresh_jitter(Duration::ZERO)
    ///     .build();
    /// cache.token().await.unwrap();
    /// tokio::time::sleep(Duration::from_secs(3001)).await; // 599 s before expiry
    /// cache.token().await.unwrap(); // the held token, while a new one is fetched
    /// assert_eq!(cache.stats().early_refreshes, 1);
    /// # }
    /// ```
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.config.refresh_margin = margin;
        self
    }

    /// Upper bound of a random delay added to the refresh time (at most half the lead), so a
    /// fleet does not refresh in lockstep. Default: [`DEFAULT_REFRESH_JITTER`] (30 seconds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{token_source_fn, Token, TokenCache, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// # let source = token_source_fn(|| async {
    /// #     Ok(Token::new("t").with_expires_in(Duration::from_secs(3600)))
    /// # });
    /// let cache = TokenCache::builder(source) // tokens that live an hour, 5 min margin
    ///     .refresh_jitter(Duration::from_secs(60))
    ///     .build();
    /// cache.token().await.unwrap();
    /// tokio::time::sleep(Duration::from_secs(3299)).await; // before the margin: never
    /// cache.token().await.unwrap();
    /// assert_eq!(cache.stats().early_refreshes, 0);
    /// tokio::time::sleep(Duration::from_secs(62)).await; // past margin and jitter: always
    /// cache.token().await.unwrap();
    /// assert_eq!(cache.stats().early_refreshes, 1);
    /// # }
    /// ```
    pub fn refresh_jitter(mut self, jitter: Duration) -> Self {
        self.config.refresh_jitter = jitter;
        self
    }

    /// Wait after the first failed fetch, doubling up to `max`. Defaults:
    /// [`DEFAULT_INITIAL_BACKOFF`] (1 second) and [`DEFAULT_MAX_BACKOFF`] (1 minute).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{token_source_fn, TokenCache, TokenError, TokenErrorKind, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// # let source = token_source_fn(|| async {
    /// #     Err(TokenError::new(TokenErrorKind::Unavailable, "the token endpoint is down"))
    /// # });
    /// let cache = TokenCache::builder(source) // a source that always fails
    ///     .backoff(Duration::from_secs(2), Duration::from_secs(30))
    ///     .build();
    /// assert!(cache.token().await.is_err());
    /// assert!(cache.token().await.is_err()); // within the 2 s: the last error, no fetch
    /// assert_eq!(cache.stats().fetches, 1);
    /// tokio::time::sleep(Duration::from_secs(3)).await;
    /// assert!(cache.token().await.is_err()); // asks the source again
    /// assert_eq!(cache.stats().fetches, 2);
    /// # }
    /// ```
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.config.initial_backoff = initial;
        self.config.max_backoff = max.max(initial);
        self
    }

    /// Longest server-supplied `Retry-After` that is honoured. Default:
    /// [`DEFAULT_MAX_RETRY_AFTER`] (5 minutes).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{token_source_fn, TokenCache, TokenError, TokenErrorKind, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let source = token_source_fn(|| async {
    ///     Err(TokenError::new(TokenErrorKind::RateLimited, "slow down")
    ///         .with_retry_after(Duration::from_secs(3600)))
    /// });
    /// let cache = TokenCache::builder(source).max_retry_after(Duration::from_secs(10)).build();
    /// assert!(cache.token().await.is_err());
    /// tokio::time::sleep(Duration::from_secs(11)).await; // not the hour asked for
    /// assert!(cache.token().await.is_err());
    /// assert_eq!(cache.stats().fetches, 2);
    /// # }
    /// ```
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.config.max_retry_after = max;
        self
    }

    /// How long one call to the source may take. Default: [`DEFAULT_FETCH_TIMEOUT`] (15 s).
    /// With a [`store`](Self::store), a fetch may also wait for another replica's token: a
    /// lease (the fetch timeout and 2 s), a poll and a fetch timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{token_source_fn, Token, TokenCache, TokenErrorKind, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let hung = token_source_fn(|| std::future::pending::<Result<Token, _>>());
    /// let cache = TokenCache::builder(hung)
    ///     .fetch_timeout(Duration::from_secs(2))
    ///     .build();
    /// let err = cache.token().await.unwrap_err();
    /// assert_eq!(err.kind(), TokenErrorKind::Timeout);
    /// # }
    /// ```
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.config.fetch_timeout = timeout;
        self
    }

    /// How long a caller waits for a token at most when none is cached: a request through a
    /// layer on this cache (unless the layer sets its own
    /// [`max_wait`](crate::BearerTokenLayer::max_wait)), a `401`'s replay, and
    /// [`TokenCache::token`]. After it the caller gets a
    /// [`Timeout`](crate::error::TokenErrorKind::Timeout) error that says what it waited for
    /// and how long; the fetch goes on, and later callers get its token. A caller never waits
    /// longer than the fetch may take, whatever this says. Default: [`DEFAULT_MAX_WAIT`]
    /// (10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{StaticToken, Token, TokenCache};
    ///
    /// let cache = TokenCache::builder(StaticToken::new(Token::new("t")))
    ///     .max_wait(Duration::from_secs(3))
    ///     .build();
    /// # let _ = cache;
    /// ```
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.config.max_wait = max_wait;
        self
    }

    /// Shortest time between two tokens dropped because of `401` answers (or gRPC
    /// `UNAUTHENTICATED` ones, with the `grpc` layer), so an API that
    /// refuses every token (wrong audience, client not allow-listed) does not cause a token
    /// request per API request. Default: [`DEFAULT_INVALIDATION_COOLDOWN`] (5 seconds).
    ///
    /// ```
    /// use std::time::Duration;
    /// # use tower::{Layer, ServiceExt};
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// # let api = tower::service_fn(|_: http::Request<()>| async {
    /// #     let refused = http::Response::builder().status(401).body(()).unwrap();
    /// #     Ok::<_, std::convert::Infallible>(refused)
    /// # });
    /// let cache = TokenCache::builder(StaticToken::new(Token::new("t")))
    ///     .invalidation_cooldown(Duration::from_secs(60))
    ///     .build();
    /// let client = BearerTokenLayer::from_cache(cache.clone()).layer(api);
    /// for _ in 0..3 {
    ///     let request = http::Request::get("https://api.example/").body(()).unwrap();
    ///     client.clone().oneshot(request).await.unwrap(); // 401
    /// }
    /// assert_eq!(cache.stats().invalidations, 1); // one token dropped per 60 s
    /// # }
    /// ```
    pub fn invalidation_cooldown(mut self, cooldown: Duration) -> Self {
        self.config.invalidation_cooldown = cooldown;
        self
    }

    /// A name for the cache, its `cache` label in [metrics](crate::metrics). Default: `default`.
    ///
    /// ```
    /// use tower_bearer::{StaticToken, Token, TokenCache};
    ///
    /// let builder = TokenCache::builder(StaticToken::new(Token::new("t"))).name("billing");
    /// assert!(format!("{builder:?}").contains("\"billing\""));
    /// let cache = builder.build();
    /// # let _ = cache;
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Shares the cache's tokens with the other replicas of a fleet through `store`, under
    /// `key`: a fetch takes the stored token, or fetches under the store's lease and saves it
    /// (see [`crate::store`]). Warm requests never touch the store.
    ///
    /// Every cache sharing `key` must get interchangeable tokens (same token URL, client,
    /// scopes, audience): the key must change with any of them.
    ///
    /// ```
    /// use tower_bearer::store::{MemoryStore, StoreKey};
    /// use tower_bearer::{StaticToken, Token, TokenCache};
    ///
    /// let cache = TokenCache::builder(StaticToken::new(Token::new("t")))
    ///     .store(MemoryStore::new(), StoreKey::new("billing", "partner-api"))
    ///     .build();
    /// # let _ = cache;
    /// ```
    pub fn store(mut self, store: impl TokenStore, key: StoreKey) -> Self {
        self.fleet = Some(Fleet::new(Box::new(store), key));
        self
    }

    /// How long the store may take: `per_call` for one call, `per_fetch` for all the calls of
    /// one fetch together (not counting the wait for another replica's token), and how long the
    /// store is skipped after it failed. Defaults: [`DEFAULT_STORE_TIMEOUT`] (250 ms),
    /// [`DEFAULT_STORE_BUDGET`] (1 s), [`DEFAULT_STORE_RETRY`] (5 s). No effect without a
    /// [`store`](Self::store).
    ///
    /// ```
    /// use tower_bearer::store::{MemoryStore, StoreKey};
    /// use tower_bearer::{StaticToken, Token, TokenCache, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ms = std::time::Duration::from_millis;
    /// let store = MemoryStore::new();
    /// let replica = || TokenCache::builder(StaticToken::new(Token::new("t")))
    ///     .store(store.clone(), StoreKey::new("billing", "partner-api"))
    ///     .store_timeouts(ms(100), ms(500), ms(10_000))
    ///     .build();
    /// let (first, second) = (replica(), replica());
    /// first.token().await.unwrap();
    /// second.token().await.unwrap();
    /// assert_eq!(second.stats().store_hits, 1); // the first replica's token
    /// # }
    /// ```
    pub fn store_timeouts(
        mut self,
        per_call: Duration,
        per_fetch: Duration,
        retry: Duration,
    ) -> Self {
        if let Some(fleet) = &mut self.fleet {
            fleet.set_timeouts(per_call, per_fetch, retry);
        }
        self
    }

    /// The cache.
    ///
    /// ```
    /// use tower_bearer::{StaticToken, Token, TokenCache, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = TokenCache::builder(StaticToken::new(Token::new("t"))).build();
    /// let clone = cache.clone(); // shares the token and the stats
    /// clone.token().await.unwrap();
    /// cache.token().await.unwrap();
    /// assert_eq!(cache.stats().fetches, 1);
    /// # }
    /// ```
    pub fn build(self) -> TokenCache {
        TokenCache {
            core: Core::new(self.source, self.fleet, self.config, &self.name),
        }
    }
}

impl fmt::Debug for TokenCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("store", &self.fleet.as_ref().map(|f| f.key()))
            .finish_non_exhaustive()
    }
}
