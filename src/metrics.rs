//! Metrics through the `metrics` facade (feature `metrics`): what they are called and when they
//! are recorded. Without the feature every call here is empty and compiled away.
//!
//! | name | kind | labels | recorded when |
//! | --- | --- | --- | --- |
//! | `tower_bearer_token_requests_total` | counter | `cache`, `outcome` (`ok`, or the [`TokenErrorKind`](crate::TokenErrorKind) name: `credentials_rejected`, `not_permitted`, `rate_limited`, `unavailable`, `timeout`, `transport`, `malformed_answer`, `configuration`, `other`) | a fetch ends |
//! | `tower_bearer_token_request_duration_seconds` | histogram | `cache` | a fetch ends |
//! | `tower_bearer_cache_hits_total` | counter | `cache` | requests used a cached token (counted per service without atomics, added in batches of 1024 and when the service is dropped; the reqwest middleware adds each request's at once) |
//! | `tower_bearer_requests_waited_total` | counter | `cache` | a request had to wait for a token |
//! | `tower_bearer_requests_failed_fast_total` | counter | `cache` | a request failed at once while backing off |
//! | `tower_bearer_early_refreshes_total` | counter | `cache` | a refresh started ahead of expiry |
//! | `tower_bearer_invalidations_total` | counter | `cache` | a `401` (or, with the `grpc` layer, a gRPC `UNAUTHENTICATED`) dropped a token |
//! | `tower_bearer_tokens_withheld_total` | counter | `cache`, `reason` (`insecure_scheme`, `host_not_allowed`, `host_mismatch`, `cross_origin_redirect`) | a request went without the token or was refused, or a redirect was not followed with it |
//! | `tower_bearer_store_total` | counter | `cache`, `outcome` (`hit`, `miss`, `lease_won`, `lease_held`, `wait_expired`, `save_fenced`, `backing_off`, `failed`) | a fetch of a cache with a [token store](crate::store) took a stored token, found none it could take (each read), won or found the lease held, gave up waiting for another replica, found a newer token when saving, found the fleet backing off after another replica's `Retry-After`, or met a failing store |
//! | `tower_bearer_store_unreadable_total` | counter | | a [`RedisStore`](crate::store) read a value it could not decrypt or parse (ignored, replaced by the next save) |
//!
//! The `cache` label is the name given with
//! [`TokenCacheBuilder::name`](crate::TokenCacheBuilder::name) (`default` otherwise).
//!
//! With a recorder installed (here `metrics-util`'s debugging one, in place of your exporter),
//! a first request for a token counts one token request:
//!
//! ```
//! # #[cfg(feature = "metrics")] fn main() {
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//! use tower_bearer::{metrics as names, StaticToken, Token, TokenCache, TokenSource};
//!
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! metrics::with_local_recorder(&recorder, || {
//!     let cache = TokenCache::builder(StaticToken::new(Token::new("t"))).name("partner").build();
//!     runtime.block_on(cache.token()).unwrap();
//! });
//! let requests = snapshotter.snapshot().into_vec().into_iter()
//!     .find(|(key, ..)| key.key().name() == names::TOKEN_REQUESTS);
//! assert!(matches!(requests, Some((.., DebugValue::Counter(1)))));
//! # }
//! # #[cfg(not(feature = "metrics"))] fn main() {}
//! ```

#[cfg(feature = "metrics")]
use std::sync::Arc;
use std::time::Duration;

/// `tower_bearer_token_requests_total`.
pub const TOKEN_REQUESTS: &str = "tower_bearer_token_requests_total";
/// `tower_bearer_token_request_duration_seconds`.
pub const TOKEN_REQUEST_DURATION: &str = "tower_bearer_token_request_duration_seconds";
/// `tower_bearer_cache_hits_total`.
pub const CACHE_HITS: &str = "tower_bearer_cache_hits_total";
/// `tower_bearer_requests_waited_total`.
pub const REQUESTS_WAITED: &str = "tower_bearer_requests_waited_total";
/// `tower_bearer_requests_failed_fast_total`.
pub const REQUESTS_FAILED_FAST: &str = "tower_bearer_requests_failed_fast_total";
/// `tower_bearer_early_refreshes_total`.
pub const EARLY_REFRESHES: &str = "tower_bearer_early_refreshes_total";
/// `tower_bearer_invalidations_total`.
pub const INVALIDATIONS: &str = "tower_bearer_invalidations_total";
/// `tower_bearer_tokens_withheld_total`.
pub const TOKENS_WITHHELD: &str = "tower_bearer_tokens_withheld_total";
/// `tower_bearer_store_total`.
pub const STORE: &str = "tower_bearer_store_total";
/// `tower_bearer_store_unreadable_total`.
pub const STORE_UNREADABLE: &str = "tower_bearer_store_unreadable_total";

pub(crate) const STORE_HIT: &str = "hit";
pub(crate) const STORE_MISS: &str = "miss";
pub(crate) const STORE_LEASE_WON: &str = "lease_won";
pub(crate) const STORE_LEASE_HELD: &str = "lease_held";
pub(crate) const STORE_WAIT_EXPIRED: &str = "wait_expired";
pub(crate) const STORE_SAVE_FENCED: &str = "save_fenced";
pub(crate) const STORE_FAILED: &str = "failed";
pub(crate) const STORE_BACKING_OFF: &str = "backing_off";

/// The cache's name, as the `cache` label.
#[derive(Clone, Debug)]
pub(crate) struct Name(#[cfg(feature = "metrics")] pub(crate) Arc<str>);

impl Name {
    pub(crate) fn new(_name: &str) -> Self {
        Self(
            #[cfg(feature = "metrics")]
            Arc::from(_name),
        )
    }

    #[cfg(feature = "metrics")]
    fn label(&self) -> metrics::SharedString {
        metrics::SharedString::from(self.0.to_string())
    }
}

/// A fetch ended with `outcome` (`ok` or an error kind) after `took`.
pub(crate) fn token_request(_name: &Name, _outcome: &'static str, _took: Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(TOKEN_REQUESTS, "cache" => _name.label(), "outcome" => _outcome)
            .increment(1);
        metrics::histogram!(TOKEN_REQUEST_DURATION, "cache" => _name.label())
            .record(_took.as_secs_f64());
    }
}

/// One of the slow-path counters.
pub(crate) fn count(_name: &Name, _metric: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(_metric, "cache" => _name.label()).increment(1);
}

/// The token was not sent, for `_reason` (a [`DestinationErrorKind`](crate::error::DestinationErrorKind) name).
pub(crate) fn withheld(_name: &Name, _reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(TOKENS_WITHHELD, "cache" => _name.label(), "reason" => _reason).increment(1);
}

/// A fetch through the token store: `_outcome` is one of the `STORE_*` names.
pub(crate) fn store(_name: &Name, _outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(STORE, "cache" => _name.label(), "outcome" => _outcome).increment(1);
}

/// A stored value did not decrypt or parse.
#[cfg(feature = "redis")]
pub(crate) fn store_unreadable() {
    #[cfg(feature = "metrics")]
    metrics::counter!(STORE_UNREADABLE).increment(1);
}

/// Cache hits of one service, counted without atomics and added to the counter in batches.
#[derive(Debug)]
pub(crate) struct Hits {
    #[cfg(feature = "metrics")]
    name: Name,
    #[cfg(feature = "metrics")]
    count: u64,
}

impl Hits {
    pub(crate) fn new(_name: &Name) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            name: _name.clone(),
            #[cfg(feature = "metrics")]
            count: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn hit(&mut self) {
        #[cfg(feature = "metrics")]
        {
            self.count += 1;
            if self.count == 1024 {
                self.flush();
            }
        }
    }

    #[cfg(feature = "metrics")]
    #[inline(never)]
    fn flush(&mut self) {
        if self.count > 0 {
            metrics::counter!(CACHE_HITS, "cache" => self.name.label()).increment(self.count);
            self.count = 0;
        }
    }
}

impl Clone for Hits {
    fn clone(&self) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            name: self.name.clone(),
            #[cfg(feature = "metrics")]
            count: 0,
        }
    }
}

#[cfg(feature = "metrics")]
impl Drop for Hits {
    fn drop(&mut self) {
        self.flush();
    }
}
