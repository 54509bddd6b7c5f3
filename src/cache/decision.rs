//! The cache's decisions as pure functions of time and state: what a request does with the
//! cached token, when a token is refreshed, and how long to back off after a failure.
//! No clock, no lock, no I/O: the cache reads the clock once and asks these.

use std::time::Duration;

use tokio::time::Instant;

/// When the cached token must be refreshed and when it stops being usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timing {
    /// From here on the token is refreshed in the background; `None`: never.
    pub(crate) refresh_at: Option<Instant>,
    /// From here on the token is not sent; `None`: never expires.
    pub(crate) expires_at: Option<Instant>,
}

impl Timing {
    pub(crate) fn is_valid_at(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    pub(crate) fn is_fresh_at(&self, now: Instant) -> bool {
        self.is_valid_at(now) && self.refresh_at.is_none_or(|at| now < at)
    }
}

/// What a request does when the lock-free fast path found no fresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send the cached token.
    Use,
    /// Send the cached token, and start a background refresh (it is in its refresh window).
    UseAndRefresh,
    /// No usable token: wait for the fetch already running.
    Wait,
    /// No usable token and no fetch running: start one and wait for it.
    StartAndWait,
    /// No usable token, and the last fetch failed less than a backoff ago: fail now with its
    /// error rather than ask the token endpoint again.
    FailFast,
}

/// Use, refresh early, wait, or fail fast.
///
/// - `token`: timing of the cached token, if there is one;
/// - `fetching`: a fetch is running;
/// - `retry_at`: the last fetch failed, and the next may start at this time.
pub(crate) fn decide(
    now: Instant,
    token: Option<Timing>,
    fetching: bool,
    retry_at: Option<Instant>,
) -> Decision {
    let backing_off = retry_at.is_some_and(|at| now < at);
    match token {
        Some(t) if t.is_valid_at(now) => {
            let refresh_due = t.refresh_at.is_some_and(|at| at <= now);
            if refresh_due && !fetching && !backing_off {
                Decision::UseAndRefresh
            } else {
                Decision::Use
            }
        }
        _ if fetching => Decision::Wait,
        _ if backing_off => Decision::FailFast,
        _ => Decision::StartAndWait,
    }
}

/// When to refresh a token received at `received_at` that expires at `expires_at`.
///
/// The refresh starts `margin` before expiry, but never earlier than half-way through the
/// token's lifetime (so a short-lived token is not refreshed on every request). Jitter then
/// moves it later by up to `jitter * unit` (`unit` in `[0, 1]`), itself at most half that lead,
/// so a fleet of clients does not refresh in lockstep, whatever the token's lifetime.
pub(crate) fn refresh_at(
    received_at: Instant,
    expires_at: Option<Instant>,
    margin: Duration,
    jitter: Duration,
    unit: f64,
) -> Option<Instant> {
    let expires_at = expires_at?;
    let lifetime = expires_at.saturating_duration_since(received_at);
    let lead = margin.min(lifetime / 2);
    let spread = jitter.min(lead / 2).mul_f64(unit.clamp(0.0, 1.0));
    Some(expires_at - (lead - spread))
}

/// Whether a token read from the fleet's store (see [`crate::store`]) is taken instead of
/// fetching one: it is not one of the generations to `avoid` (the token being replaced, the
/// token a `401` refused), and it is not yet due for refresh, judged without jitter (a replica
/// never takes a token that the replica that fetched it would already refresh).
pub(crate) fn take_stored(
    now: Instant,
    received_at: Instant,
    expires_at: Option<Instant>,
    margin: Duration,
    generation: u64,
    avoid: [Option<u64>; 2],
) -> bool {
    if avoid.contains(&Some(generation)) {
        return false;
    }
    match refresh_at(received_at, expires_at, margin, Duration::ZERO, 0.0) {
        Some(at) => now < at,
        None => true,
    }
}

/// How long to wait after the `attempt`-th consecutive failure (1-based): exponential from
/// `initial`, capped at `max`, with "equal jitter" (between half and all of the step), and never
/// less than what the server asked for with `Retry-After` (itself capped at `max_retry_after`).
pub(crate) fn backoff(
    attempt: u32,
    initial: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    max_retry_after: Duration,
    unit: f64,
) -> Duration {
    let jittered = crate::backoff::jittered_exponential(attempt, initial, max, unit);
    jittered.max(retry_after.unwrap_or_default().min(max_retry_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn timing(t0: Instant, refresh: u64, expires: u64) -> Option<Timing> {
        Some(Timing {
            refresh_at: Some(t0 + S * refresh as u32),
            expires_at: Some(t0 + S * expires as u32),
        })
    }

    #[test]
    fn a_stored_token_is_taken_only_before_its_refresh_and_if_not_avoided() {
        let t0 = Instant::now();
        let expires = Some(t0 + S * 3600);
        let margin = S * 300;
        // Fresh, not avoided.
        assert!(take_stored(t0, t0, expires, margin, 7, [None, None]));
        assert!(take_stored(
            t0 + S * 3299,
            t0,
            expires,
            margin,
            7,
            [Some(6), None]
        ));
        // The token being replaced, or the one a 401 refused.
        assert!(!take_stored(t0, t0, expires, margin, 7, [Some(7), None]));
        assert!(!take_stored(t0, t0, expires, margin, 7, [None, Some(7)]));
        // In its refresh window (margin before expiry), or expired.
        assert!(!take_stored(
            t0 + S * 3300,
            t0,
            expires,
            margin,
            7,
            [None, None]
        ));
        assert!(!take_stored(
            t0 + S * 4000,
            t0,
            expires,
            margin,
            7,
            [None, None]
        ));
        // A short-lived token: due at half its lifetime, as its fetcher would refresh it.
        let short = Some(t0 + S * 60);
        assert!(take_stored(t0 + S * 29, t0, short, margin, 7, [None, None]));
        assert!(!take_stored(
            t0 + S * 30,
            t0,
            short,
            margin,
            7,
            [None, None]
        ));
        // A token without expiry never needs refreshing.
        assert!(take_stored(
            t0 + S * 99_999,
            t0,
            None,
            margin,
            7,
            [None, None]
        ));
    }

    #[test]
    fn fresh_token_is_used() {
        let t0 = Instant::now();
        assert_eq!(decide(t0, timing(t0, 50, 60), false, None), Decision::Use);
        // Even while a fetch runs or after a failure: a fresh token needs nothing.
        assert_eq!(decide(t0, timing(t0, 50, 60), true, None), Decision::Use);
        assert_eq!(
            decide(t0, timing(t0, 50, 60), false, Some(t0 + S)),
            Decision::Use
        );
    }

    #[test]
    fn token_in_refresh_window_is_used_and_refreshed_once() {
        let t0 = Instant::now();
        let now = t0 + S * 55;
        assert_eq!(
            decide(now, timing(t0, 50, 60), false, None),
            Decision::UseAndRefresh
        );
        // The refresh is running: keep using, start nothing.
        assert_eq!(decide(now, timing(t0, 50, 60), true, None), Decision::Use);
        // The refresh failed and we are backing off: keep using, start nothing.
        assert_eq!(
            decide(now, timing(t0, 50, 60), false, Some(now + S)),
            Decision::Use
        );
        // Backoff over: refresh again.
        assert_eq!(
            decide(now, timing(t0, 50, 60), false, Some(now)),
            Decision::UseAndRefresh
        );
    }

    #[test]
    fn no_usable_token_waits_starts_or_fails_fast() {
        let t0 = Instant::now();
        let expired = timing(t0, 50, 60);
        let now = t0 + S * 60;
        for token in [None, expired] {
            assert_eq!(decide(now, token, false, None), Decision::StartAndWait);
            assert_eq!(decide(now, token, true, None), Decision::Wait);
            assert_eq!(decide(now, token, false, Some(now + S)), Decision::FailFast);
            // A fetch already running is joined even while backing off.
            assert_eq!(decide(now, token, true, Some(now + S)), Decision::Wait);
            assert_eq!(decide(now, token, false, Some(now)), Decision::StartAndWait);
        }
    }

    #[test]
    fn token_without_expiry_is_always_used() {
        let t0 = Instant::now();
        let forever = Timing {
            refresh_at: None,
            expires_at: None,
        };
        let later = t0 + S * 1_000_000;
        assert_eq!(decide(later, Some(forever), false, None), Decision::Use);
        assert!(forever.is_fresh_at(later));
    }

    #[test]
    fn refresh_margin_applies_to_long_tokens() {
        let t0 = Instant::now();
        let at = refresh_at(t0, Some(t0 + S * 3600), S * 300, S * 30, 0.0);
        assert_eq!(at, Some(t0 + S * 3300));
        let at = refresh_at(t0, Some(t0 + S * 3600), S * 300, S * 30, 1.0);
        assert_eq!(at, Some(t0 + S * 3330));
    }

    #[test]
    fn refresh_margin_is_capped_at_half_the_lifetime() {
        let t0 = Instant::now();
        let at = refresh_at(t0, Some(t0 + S * 60), S * 300, S * 30, 0.0);
        assert_eq!(at, Some(t0 + S * 30));
        let at = refresh_at(t0, Some(t0), S * 300, S * 30, 0.5);
        assert_eq!(at, Some(t0));
        assert_eq!(refresh_at(t0, None, S * 300, S * 30, 0.5), None);
    }

    #[test]
    fn jitter_spreads_refreshes_within_bounds_for_every_lifetime() {
        let t0 = Instant::now();
        for (lifetime, lead, spread) in [
            (3600, 300, 30),
            (600, 300, 30),
            (300, 150, 30),
            (60, 30, 15),
        ] {
            let exp = t0 + S * lifetime;
            let at = |unit| refresh_at(t0, Some(exp), S * 300, S * 30, unit).unwrap();
            assert_eq!(at(0.0), exp - S * lead, "{lifetime}");
            assert_eq!(at(1.0), exp - S * (lead - spread), "{lifetime}");
            for i in 0..=100 {
                let at = at(f64::from(i) / 100.0);
                assert!(at >= exp - S * lead && at <= exp - S * (lead - spread));
                assert!(
                    at >= t0 + S * lifetime / 2,
                    "never before half the lifetime"
                );
            }
        }
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let hour = S * 3600;
        let b = |attempt, retry_after, unit| backoff(attempt, S, S * 60, retry_after, hour, unit);
        assert_eq!(b(1, None, 1.0), S);
        assert_eq!(b(1, None, 0.0), S / 2);
        assert_eq!(b(2, None, 1.0), S * 2);
        assert_eq!(b(4, None, 1.0), S * 8);
        assert_eq!(b(100, None, 1.0), S * 60);
        assert_eq!(b(u32::MAX, None, 0.0), S * 30);
        assert_eq!(b(1, Some(S * 20), 1.0), S * 20);
        assert_eq!(b(7, Some(S * 20), 1.0), S * 60);
        assert_eq!(b(1, Some(Duration::MAX), 1.0), hour);
    }
}
