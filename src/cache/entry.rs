//! A cached token ([`Entry`]) with its prebuilt header and freshness deadline, the cache's
//! settings ([`Config`]), and overflow-free deadline arithmetic: what both the coordination
//! state ([`state`](super::state)) and the cache's core ([`core`](super::core)) need.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;

use super::clock;
use super::decision::{Timing, refresh_at};
use crate::error::{TokenError, TokenErrorKind};
use crate::token::Token;

/// Longest delay ever added to an `Instant`, so deadline arithmetic cannot overflow.
const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// `at + delay`, saturating far in the future instead of overflowing.
pub(crate) fn later(at: Instant, delay: Duration) -> Instant {
    at.checked_add(delay.min(MAX_DELAY))
        .unwrap_or(at + Duration::from_secs(24 * 60 * 60))
}

/// A cached token with its prebuilt header value.
pub(crate) struct Entry {
    pub(crate) token: Token,
    /// `Authorization: Bearer <token>`, marked sensitive; cloned into every request.
    pub(crate) header: HeaderValue,
    /// Identifies this token for invalidation ("drop it only if it is still the cached one").
    pub(crate) generation: u64,
    pub(crate) timing: Timing,
    /// The token's generation in the fleet's token store, if it is stored there.
    pub(crate) stored: Option<u64>,
    /// Until when the hot path may use this token without asking the slow path, on the coarse
    /// monotonic clock of [`clock`] (a few ms resolution, a few ns to read): the refresh
    /// deadline, or `u64::MAX` for a token that never needs refreshing. Set to `0` by the
    /// refresh timer when the token enters its refresh window, so it follows Tokio's clock
    /// too (paused in tests). Comparing with the clock on every request means a token is never
    /// trusted past its refresh deadline even when the timer cannot fire (its runtime is not
    /// being driven). One word: one load and one comparison. Lock-free; never waited on.
    fresh_until: AtomicU64,
}

/// A cache's settings; see [`TokenCacheBuilder`](super::TokenCacheBuilder).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) refresh_margin: Duration,
    pub(crate) refresh_jitter: Duration,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) invalidation_cooldown: Duration,
    /// How long a caller waits for a fetch at most (the fetch goes on).
    pub(crate) max_wait: Duration,
}

impl Entry {
    /// Whether the hot path may use this token without asking the slow path.
    #[inline(always)]
    pub(crate) fn is_fresh(&self) -> bool {
        clock::now() < self.fresh_until.load(Ordering::Relaxed)
    }

    /// Checks a token fetched at `now` and builds its entry. `unit` (in `[0, 1]`) is the random
    /// part of the refresh jitter.
    pub(crate) fn new(
        token: Token,
        now: Instant,
        generation: u64,
        config: &Config,
        unit: f64,
    ) -> Result<Self, TokenError> {
        let header = token.header_value()?;
        if token.is_expired_at(now) {
            return Err(TokenError::new(
                TokenErrorKind::MalformedAnswer,
                format!(
                    "the token source returned a token (fingerprint {}) that had already expired",
                    token.fingerprint()
                ),
            )
            .with_hint("check the token lifetime the server reports (`expires_in`)"));
        }
        let timing = Timing {
            refresh_at: refresh_at(
                token.received_at(),
                token.expires_at(),
                config.refresh_margin,
                config.refresh_jitter,
                unit,
            ),
            expires_at: token.expires_at(),
        };
        let fresh_until = match timing.refresh_at {
            _ if !timing.is_fresh_at(now) => 0,
            Some(at) => clock::after(at.saturating_duration_since(now).min(MAX_DELAY)),
            None => u64::MAX,
        };
        // Keep a clone, not the original: the first clone moves the buffer into a shared,
        // reference-counted one (so cloning on the hot path never allocates), and only the
        // clone is marked as shared, so its clones skip the "is it shared yet?" test.
        let header = header.clone();
        Ok(Self {
            fresh_until: AtomicU64::new(fresh_until),
            token,
            header,
            generation,
            timing,
            stored: None,
        })
    }

    /// Marks the token as due for refresh, so requests take the slow path.
    pub(crate) fn mark_stale(&self) {
        self.fresh_until.store(0, Ordering::Relaxed);
    }
}
