//! The one backoff formula: exponential, capped, with "equal jitter" (between half and all of
//! the step), used by the cache between failed fetches and by the OAuth client between
//! attempts of one fetch.

use std::time::Duration;

/// The wait before retrying after `attempt` failures in a row (1 for the first): `initial`
/// doubled for each failure after the first, at most `max`, then between half and all of that
/// (`unit`, in `[0, 1]`, picks where). Never overflows.
pub(crate) fn jittered_exponential(
    attempt: u32,
    initial: Duration,
    max: Duration,
    unit: f64,
) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let step = initial.saturating_mul(1u32 << doublings).min(max);
    step / 2 + (step / 2).mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_caps_and_jitters_between_half_and_all() {
        assert_eq!(jittered_exponential(1, S, 60 * S, 1.0), S);
        assert_eq!(jittered_exponential(1, S, 60 * S, 0.0), S / 2);
        assert_eq!(jittered_exponential(3, S, 60 * S, 1.0), 4 * S);
        assert_eq!(jittered_exponential(30, S, 60 * S, 1.0), 60 * S);
        assert_eq!(jittered_exponential(u32::MAX, S, 60 * S, 0.5), 45 * S);
        assert_eq!(jittered_exponential(0, S, 60 * S, 1.0), S);
        // Huge settings and an out-of-range unit: no overflow, no panic.
        assert!(jittered_exponential(5, Duration::MAX, Duration::MAX, 2.0) >= Duration::MAX / 2);
    }
}
