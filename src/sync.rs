//! The one way the crate takes a `std::sync::Mutex`.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, also after a panic while it was held: every lock in the crate guards state
/// whose every change is a single assignment, so a poisoned lock still holds consistent state,
/// and a panic elsewhere must not turn every later request into a panic. Never held across
/// `.await` by any caller.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
