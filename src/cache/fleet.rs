//! The fetch of a cache that shares its tokens through a [`TokenStore`]: the lease and fencing
//! protocol described in [`crate::store`], with a fallback to a local fetch wherever the store
//! fails or another replica's fetch takes too long.
//!
//! Runs inside the cache's fetch task, so the local single-flight still holds: one replica asks
//! the store once per fetch, whatever its number of waiting requests.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::decision::take_stored;
use super::entry::{Config, later};
use crate::error::{TokenError, TokenErrorKind};
use crate::store::{Lease, LeaseId, Saved, StoreError, StoreErrorKind, StoreKey, TokenStore};
use crate::token::Token;

/// Default longest time one store call may take.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(250);
/// Default longest time all the store calls of one fetch may take together (not counting the
/// wait for another replica's fetch).
pub const DEFAULT_STORE_BUDGET: Duration = Duration::from_secs(1);
/// Default time a cache skips its store after a store call failed.
pub const DEFAULT_STORE_RETRY: Duration = Duration::from_secs(5);
/// A lease outlives the fetch it covers by this much (the lease is the fetch timeout plus it).
const LEASE_SLACK: Duration = Duration::from_secs(2);
/// Longest pause between two reads of the store while another replica fetches.
const MAX_POLL: Duration = Duration::from_millis(500);
/// First pause between two reads of the store while another replica fetches.
const FIRST_POLL: Duration = Duration::from_millis(10);

/// Which cache is talking, for logs (`id`) and metrics (`name`).
#[derive(Clone, Copy)]
pub(super) struct Labels<'a> {
    pub(super) id: u64,
    pub(super) name: &'a crate::metrics::Name,
    /// Set while this fetch waits for another replica's token (for timeout errors).
    pub(super) waiting: &'a std::sync::atomic::AtomicBool,
}

/// A cache's store and how it uses it.
pub(super) struct Fleet {
    store: Box<dyn TokenStore>,
    key: StoreKey,
    timeout: Duration,
    budget: Duration,
    retry: Duration,
    /// Until when the store is skipped after a failure. Locked only to read or set it; never
    /// held across `.await`.
    skip_until: Mutex<Option<Instant>>,
}

/// What a fetch through the store got: a token, and its generation in the store if it is
/// stored there (for a `401` to remove it, and to tell it from a newer one).
pub(super) struct Obtained {
    pub(super) token: Token,
    pub(super) stored: Option<u64>,
    pub(super) how: How,
}

/// How a token was obtained, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum How {
    /// Read from the store: no token request.
    StoreHit,
    /// Fetched under the lease and saved.
    LeaseWon,
    /// Fetched locally: the store failed or another replica's fetch took too long.
    Fallback,
    /// Fetched from the source by a cache without a store.
    Source,
}

/// The store generations a fetch must not take.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Avoid {
    /// The token being replaced (a refresh).
    pub(super) replacing: Option<u64>,
    /// The token a `401` refused; removed from the store first.
    pub(super) refused: Option<u64>,
}

impl Fleet {
    pub(super) fn new(store: Box<dyn TokenStore>, key: StoreKey) -> Self {
        Self {
            store,
            key,
            timeout: DEFAULT_STORE_TIMEOUT,
            budget: DEFAULT_STORE_BUDGET,
            retry: DEFAULT_STORE_RETRY,
            skip_until: Mutex::new(None),
        }
    }

    pub(super) fn set_timeouts(&mut self, call: Duration, budget: Duration, retry: Duration) {
        self.timeout = call;
        self.budget = budget;
        self.retry = retry;
    }

    /// How much longer than a plain fetch a fetch through the store may take: its store calls,
    /// and the wait for another replica's token ([`wait_bound`]).
    pub(super) fn extra_time(&self, fetch_timeout: Duration) -> Duration {
        self.budget.saturating_add(wait_bound(fetch_timeout))
    }

    pub(super) fn key(&self) -> &StoreKey {
        &self.key
    }

    /// Obtains a token: from the store, or by calling `fetch` (the source, under the fetch
    /// timeout) under the lease, or by calling it anyway when the store fails.
    pub(super) async fn obtain<F, Fut>(
        &self,
        labels: Labels<'_>,
        config: &Config,
        avoid: Avoid,
        fetch: F,
    ) -> Result<Obtained, TokenError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, TokenError>>,
    {
        if self.skipping() {
            return fallback(fetch().await?);
        }
        let mut calls = Calls {
            fleet: self,
            labels,
            spent: Duration::ZERO,
        };
        let before_fetch = self.with_store(&mut calls, config, avoid).await;
        labels.waiting.store(false, Ordering::Relaxed);
        match before_fetch {
            Ok(Step::Take(obtained)) => Ok(obtained),
            Ok(Step::Fetch { lease, fence }) => {
                let token = match fetch().await {
                    Ok(token) => token,
                    Err(error) => {
                        // A `Retry-After` holds for the whole fleet; otherwise the next
                        // replica may try at once. Best effort: the lease expires by itself.
                        let release = match error.retry_after() {
                            Some(after) => self.store.back_off(
                                &self.key,
                                &lease,
                                after.min(config.max_retry_after),
                                error.kind().as_str(),
                            ),
                            None => self.store.release(&self.key, &lease),
                        };
                        let _ = calls.run("back_off_or_release", release).await;
                        return Err(error);
                    }
                };
                self.save(&mut calls, config, avoid, lease, fence, token)
                    .await
            }
            Ok(Step::FetchAlone) => fallback(fetch().await?),
            Ok(Step::BackOff(error)) => Err(error),
            Err(error) => {
                self.failed(labels, &error);
                fallback(fetch().await?)
            }
        }
    }

    /// Everything before the fetch: remove a refused token, read, take the lease or wait for
    /// another replica's token.
    async fn with_store(
        &self,
        calls: &mut Calls<'_>,
        config: &Config,
        avoid: Avoid,
    ) -> Result<Step, StoreError> {
        let key = &self.key;
        if let Some(refused) = avoid.refused {
            calls.run("remove", self.store.remove(key, refused)).await?;
        }
        let (taken, mut seen) = self.read(calls, config, avoid).await?;
        if let Some(taken) = taken {
            return Ok(Step::Take(taken));
        }
        let lease_ttl = lease_ttl(config.fetch_timeout);
        let mut waited = false;
        // The lease found may be a dead holder's, and the replica that takes it over then
        // fetches: this one waits for both before it fetches itself.
        let give_up_at = later(Instant::now(), wait_bound(config.fetch_timeout));
        let mut pause = FIRST_POLL;
        loop {
            match calls
                .run("try_lease", self.store.try_lease(key, lease_ttl))
                .await?
            {
                Lease::Won { id, fence } => {
                    crate::metrics::store(calls.labels.name, crate::metrics::STORE_LEASE_WON);
                    // Someone saved between the last read and the lease (a holder that saved
                    // and released in between): the fence, the last generation saved, moved
                    // past what the read saw. Read again rather than fetch a second token.
                    if fence != seen.unwrap_or(0)
                        && let (Some(taken), _) = self.read(calls, config, avoid).await?
                    {
                        let _ = calls.run("release", self.store.release(key, &id)).await;
                        return Ok(Step::Take(taken));
                    }
                    return Ok(Step::Fetch { lease: id, fence });
                }
                Lease::BackingOff { remaining, reason } => {
                    crate::metrics::store(calls.labels.name, crate::metrics::STORE_BACKING_OFF);
                    return Ok(Step::BackOff(backing_off(remaining, &reason)));
                }
                Lease::Held => {
                    calls.labels.waiting.store(true, Ordering::Relaxed);
                    if !waited {
                        crate::metrics::store(calls.labels.name, crate::metrics::STORE_LEASE_HELD);
                        tracing::debug!(cache = calls.labels.id, key = %key, "another replica is fetching: waiting for its token");
                    }
                    waited = true;
                }
            }
            let now = Instant::now();
            if now >= give_up_at {
                crate::metrics::store(calls.labels.name, crate::metrics::STORE_WAIT_EXPIRED);
                tracing::info!(cache = calls.labels.id, key = %key, "another replica's fetch took too long: fetching here");
                return Ok(Step::FetchAlone);
            }
            self.store
                .wait_changed(key, pause.min(give_up_at - now))
                .await;
            pause = (pause * 2).min(MAX_POLL);
            let (taken, now_seen) = self.read(calls, config, avoid).await?;
            if let Some(taken) = taken {
                return Ok(Step::Take(taken));
            }
            seen = now_seen;
        }
    }

    /// Reads the store; a token that may be taken is a hit. Also returns the generation read,
    /// taken or not.
    async fn read(
        &self,
        calls: &mut Calls<'_>,
        config: &Config,
        avoid: Avoid,
    ) -> Result<(Option<Obtained>, Option<u64>), StoreError> {
        let loaded = calls.run("load", self.store.load(&self.key)).await?;
        let seen = loaded.as_ref().map(|stored| stored.generation);
        let taken = loaded.filter(|stored| {
            take_stored(
                Instant::now(),
                stored.token.received_at(),
                stored.token.expires_at(),
                config.refresh_margin,
                stored.generation,
                [avoid.replacing, avoid.refused],
            )
        });
        if taken.is_none() {
            crate::metrics::store(calls.labels.name, crate::metrics::STORE_MISS);
        }
        let taken = taken.map(|stored| Obtained {
            token: stored.token,
            stored: Some(stored.generation),
            how: How::StoreHit,
        });
        Ok((taken, seen))
    }

    /// Saves a token fetched under the lease; a newer token in the store wins.
    async fn save(
        &self,
        calls: &mut Calls<'_>,
        config: &Config,
        avoid: Avoid,
        lease: LeaseId,
        fence: u64,
        token: Token,
    ) -> Result<Obtained, TokenError> {
        match calls
            .run("save", self.store.save(&self.key, &lease, fence, &token))
            .await
        {
            Ok(Saved::Stored(generation)) => Ok(Obtained {
                token,
                stored: Some(generation),
                how: How::LeaseWon,
            }),
            Ok(Saved::Newer(newer)) => {
                crate::metrics::store(calls.labels.name, crate::metrics::STORE_SAVE_FENCED);
                tracing::info!(cache = calls.labels.id, key = %self.key, newer, "a newer token is stored (this fetch outlived its lease): taking it");
                match self.read(calls, config, avoid).await {
                    Ok((Some(taken), _)) => Ok(taken),
                    _ => Ok(Obtained {
                        token,
                        stored: None,
                        how: How::LeaseWon,
                    }),
                }
            }
            Err(error) => {
                self.failed(calls.labels, &error);
                Ok(Obtained {
                    token,
                    stored: None,
                    how: How::Fallback,
                })
            }
        }
    }

    fn skip_until(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        crate::sync::lock(&self.skip_until)
    }

    /// Whether the store is being skipped after a failure.
    fn skipping(&self) -> bool {
        let mut skip_until = self.skip_until();
        match *skip_until {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *skip_until = None;
                false
            }
            None => false,
        }
    }

    /// A store call failed: skip the store for a while. Logged once per outage, not per call.
    fn failed(&self, labels: Labels<'_>, error: &StoreError) {
        let mut skip_until = self.skip_until();
        let first = skip_until.is_none();
        *skip_until = Some(later(Instant::now(), self.retry));
        drop(skip_until);
        crate::metrics::store(labels.name, crate::metrics::STORE_FAILED);
        if first {
            tracing::warn!(cache = labels.id, key = %self.key, %error, retry_in_ms = self.retry.as_millis() as u64, "token store failed: fetching locally until it is retried");
        }
    }
}

/// The lease a replica takes to fetch: it outlives the fetch (its timeout) and the save.
fn lease_ttl(fetch_timeout: Duration) -> Duration {
    fetch_timeout.saturating_add(LEASE_SLACK)
}

/// How long a replica waits for another replica's token before it fetches itself: the lease it
/// found may be a dead holder's, which lasts up to a lease; a waiting replica then takes it over
/// (within a poll) and fetches for up to a fetch timeout. Waiting one fetch timeout only would
/// send every waiting replica to the token endpoint before a dead holder's lease expired.
fn wait_bound(fetch_timeout: Duration) -> Duration {
    lease_ttl(fetch_timeout)
        .saturating_add(MAX_POLL)
        .saturating_add(fetch_timeout)
}

/// What the store said before the fetch.
enum Step {
    Take(Obtained),
    /// This replica holds the lease: fetch, then save with this fence.
    Fetch {
        lease: LeaseId,
        fence: u64,
    },
    /// Fetch without the store (another replica's fetch took too long).
    FetchAlone,
    /// The fleet is backing off: fail with this error (which carries the time left as its
    /// `Retry-After`, so the cache backs off as long).
    BackOff(TokenError),
}

/// The error of a replica that must not fetch: the token endpoint told another replica to wait.
fn backing_off(remaining: Duration, reason: &str) -> TokenError {
    let kind = TokenErrorKind::from_name(reason).unwrap_or(TokenErrorKind::RateLimited);
    TokenError::new(
        kind,
        format!(
            "the token endpoint asked another replica of the fleet to wait ({}); no replica asks \
             again for {remaining:?}",
            crate::error::sanitize(reason)
        ),
    )
    .with_retry_after(remaining)
    .with_hint("the fleet shares the token endpoint's Retry-After: lower the request rate or raise the quota")
}

fn fallback(token: Token) -> Result<Obtained, TokenError> {
    Ok(Obtained {
        token,
        stored: None,
        how: How::Fallback,
    })
}

/// The store calls of one fetch, each under the call timeout and all within the budget.
struct Calls<'a> {
    fleet: &'a Fleet,
    labels: Labels<'a>,
    spent: Duration,
}

impl Calls<'_> {
    /// Runs store call `op` under the call timeout and what is left of the budget, in a span
    /// of its own.
    async fn run<T>(
        &mut self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let left = self.fleet.budget.saturating_sub(self.spent);
        let limit = self.fleet.timeout.min(left);
        let started = Instant::now();
        let span = tracing::debug_span!("token_store", op, key = %self.fleet.key);
        let result = tracing::Instrument::instrument(tokio::time::timeout(limit, call), span).await;
        self.spent += started.elapsed();
        result.unwrap_or_else(|_| {
            Err(StoreError::new(
                StoreErrorKind::Timeout,
                format!("{op}: no answer within {limit:?}"),
            ))
        })
    }
}
