//! The fetch coordination state that the cache's lock guards, and every change made to it, as
//! plain synchronous methods that take the time as an argument and do no I/O: no clock, no
//! spawning, no timers. The cache calls them with its lock held and carries out what they
//! return; the model check (`cache::model`, run under `shuttle`) calls the same methods from
//! every interleaving of concurrent requests, fetches, `401`s and cancellations.
//!
//! Generic over `F`, the handle that waiters of a running fetch share: the cache's
//! [`FetchFuture`](super::FetchFuture), or the model's own.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::decision::{Decision, backoff, decide};
use super::entry::{Config, Entry, later};
use crate::error::{TokenError, TokenErrorKind};

/// Extra time a waiter gives a fetch beyond its timeout before giving up on it.
const FETCH_GRACE: Duration = Duration::from_secs(1);

/// A fetch in progress.
pub(crate) struct Fetch<F> {
    pub(crate) id: u64,
    /// After this, waiters give up and the next caller starts a new fetch (the task that runs
    /// this one may sit on a runtime that is no longer driven).
    pub(crate) give_up_at: Instant,
    pub(crate) handle: F,
}

/// The last fetch failed: its error, when the next may start, and how many failed in a row.
pub(crate) struct Failure {
    pub(crate) error: TokenError,
    pub(crate) retry_at: Instant,
    pub(crate) attempts: u32,
}

/// What the cache's lock guards.
pub(crate) struct State<F> {
    /// Counter behind `Entry::generation` and fetch ids.
    next_id: u64,
    pub(crate) fetching: Option<Fetch<F>>,
    pub(crate) failure: Option<Failure>,
    /// When a `401` last dropped a token.
    last_invalidation: Option<Instant>,
}

impl<F> Default for State<F> {
    fn default() -> Self {
        Self {
            next_id: 0,
            fetching: None,
            failure: None,
            last_invalidation: None,
        }
    }
}

/// What a request that found no fresh token on the fast path does next.
pub(crate) enum Step<F> {
    /// Send this token.
    Use(Arc<Entry>),
    /// Send this token, and start fetch `id` in the background (early refresh).
    UseAndStart(Arc<Entry>, u64),
    /// Wait for the running fetch, until the given time.
    Wait(F, Instant),
    /// Start fetch `id` and wait for it.
    Start(u64),
    /// Fail with this error.
    Fail(TokenError),
}

/// What [`State::invalidate`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Invalidation {
    /// Drop the current token.
    Drop,
    /// The token that was refused is no longer the current one: nothing to do.
    NotCurrent,
    /// A token was dropped less than the cooldown ago: keep this one.
    Cooldown,
}

impl<F: Clone> State<F> {
    /// A new id for a fetch or a token generation.
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The step for a request at `now`, given the cached token. For `Start` and `UseAndStart`
    /// the caller starts the fetch and calls [`State::started`] before unlocking.
    pub(crate) fn step(&mut self, now: Instant, current: Option<Arc<Entry>>) -> Step<F> {
        // A fetch past its deadline is given up on (its task may sit on a runtime that is no
        // longer driven); the decision below then starts another.
        if self.fetching.as_ref().is_some_and(|f| f.give_up_at <= now) {
            self.fetching = None;
        }
        let decision = decide(
            now,
            current.as_ref().map(|e| e.timing),
            self.fetching.is_some(),
            self.failure.as_ref().map(|f| f.retry_at),
        );
        match (decision, current) {
            (Decision::Use, Some(entry)) => Step::Use(entry),
            (Decision::UseAndRefresh, Some(entry)) => Step::UseAndStart(entry, self.next_id()),
            (Decision::Wait, _) => match &self.fetching {
                Some(fetch) => Step::Wait(fetch.handle.clone(), fetch.give_up_at),
                None => Step::Fail(no_fetch()),
            },
            (Decision::FailFast, _) => Step::Fail(
                self.failure
                    .as_ref()
                    .map_or_else(no_fetch, |f| f.error.clone()),
            ),
            // `StartAndWait`, and the (impossible) use of a missing token.
            (_, _) => Step::Start(self.next_id()),
        }
    }

    /// Records that fetch `id` started at `now` and shares `handle`; returns when its waiters
    /// give up.
    pub(crate) fn started(
        &mut self,
        id: u64,
        now: Instant,
        fetch_timeout: Duration,
        handle: F,
    ) -> Instant {
        let give_up_at = later(now, fetch_timeout.saturating_add(FETCH_GRACE));
        self.fetching = Some(Fetch {
            id,
            give_up_at,
            handle,
        });
        give_up_at
    }
}

impl<F> State<F> {
    /// Fetch `id` ended, however it ended (also when its task was dropped or cancelled).
    pub(crate) fn ended(&mut self, id: u64) {
        if self.fetching.as_ref().is_some_and(|f| f.id == id) {
            self.fetching = None;
        }
    }

    /// Fetch `id` brought a token, which the caller stores as the current one.
    pub(crate) fn succeeded(&mut self, id: u64) {
        self.ended(id);
        self.failure = None;
    }

    /// Fetch `id` failed at `now`; returns how long to back off. `unit` (in `[0, 1]`) is the
    /// random part of the backoff's jitter.
    pub(crate) fn failed(
        &mut self,
        id: u64,
        error: &TokenError,
        now: Instant,
        config: &Config,
        unit: f64,
    ) -> (Duration, u32) {
        self.ended(id);
        let attempts = self.failure.as_ref().map_or(0, |f| f.attempts) + 1;
        let delay = backoff(
            attempts,
            config.initial_backoff,
            config.max_backoff,
            error.retry_after(),
            config.max_retry_after,
            unit,
        );
        self.failure = Some(Failure {
            error: error.clone(),
            retry_at: later(now, delay),
            attempts,
        });
        (delay, attempts)
    }

    /// A request that carried token `generation` was refused at `now`. With `cooldown`, at most
    /// one token is dropped per that much time, so an API that refuses every token does not
    /// cause one token request per API request.
    pub(crate) fn invalidate(
        &mut self,
        now: Instant,
        current: Option<&Entry>,
        generation: u64,
        cooldown: Option<Duration>,
    ) -> Invalidation {
        if current.is_none_or(|e| e.generation != generation) {
            return Invalidation::NotCurrent;
        }
        if let Some(cooldown) = cooldown
            && self
                .last_invalidation
                .is_some_and(|at| now < later(at, cooldown))
        {
            return Invalidation::Cooldown;
        }
        self.last_invalidation = Some(now);
        Invalidation::Drop
    }
}

fn no_fetch() -> TokenError {
    TokenError::new(TokenErrorKind::Other, "no token and no fetch to wait for")
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_fetch_past_its_deadline_is_replaced() {
        let t0 = Instant::now();
        let mut state = State::<()>::default();
        let Step::Start(first) = state.step(t0, None) else {
            panic!("an empty cache starts a fetch")
        };
        let give_up_at = state.started(first, t0, 30 * S, ());
        assert!(matches!(state.step(t0 + S, None), Step::Wait((), at) if at == give_up_at));
        // The task behind it may sit on a runtime nobody drives: start another.
        let Step::Start(second) = state.step(give_up_at, None) else {
            panic!("a fetch past its deadline is given up on")
        };
        assert_ne!(first, second);
        // The old fetch ending late does not clear the new one.
        state.started(second, give_up_at, 30 * S, ());
        state.ended(first);
        assert_eq!(state.fetching.as_ref().map(|f| f.id), Some(second));
    }

    #[test]
    fn failures_back_off_and_fail_fast_with_the_last_error() {
        let t0 = Instant::now();
        let config = Config {
            refresh_margin: 60 * S,
            refresh_jitter: Duration::ZERO,
            initial_backoff: S,
            max_backoff: 8 * S,
            max_retry_after: 60 * S,
            fetch_timeout: 30 * S,
            invalidation_cooldown: 5 * S,
            max_wait: 10 * S,
        };
        let mut state = State::<()>::default();
        let error = TokenError::new(TokenErrorKind::Unavailable, "down");
        let (first, attempts) = state.failed(1, &error, t0, &config, 1.0);
        assert_eq!((first, attempts), (S, 1));
        assert!(matches!(state.step(t0, None), Step::Fail(e) if e.message() == "down"));
        let (second, attempts) = state.failed(2, &error, t0 + first, &config, 1.0);
        assert_eq!((second, attempts), (2 * S, 2));
        // Once the backoff is over, the next request fetches; success forgets the failures.
        assert!(matches!(
            state.step(t0 + first + second, None),
            Step::Start(_)
        ));
        state.succeeded(3);
        assert!(state.failure.is_none());
    }
}
