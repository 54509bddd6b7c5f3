//! The cache's face to the middleware: a service asks its [`Handle`] for a [`Grant`] and gets
//! its token in the request's `Authorization` header and a [`Ticket`] (ready), a [`Wait`] future that owns its deadline and
//! timeout error (wait), or the error (failed). A `401` is reported through the ticket, which
//! hands back the [`Dropped`] token when the report dropped it.
//!
//! Nothing outside `cache/` sees the core, the cached entry or the fetch future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use tokio::time::{Instant, Sleep};

pub(crate) use super::core::Refusal;
use super::core::{Acquired, Core, FetchFuture, FetchResult, Slot, View, no_answer, registered};
use super::entry::Entry;
use crate::error::{DestinationErrorKind, TokenError, TokenErrorKind};
use crate::metrics::Hits;

/// What the cache gives a request.
pub(crate) enum Grant {
    /// A usable token, now in the request's `Authorization` header; the ticket reports a `401`.
    Ready(Ticket),
    /// No usable token yet: a fetch is running.
    Wait(Wait),
    /// No token can be had now (the last fetch failed and the cache is backing off, or there
    /// is no runtime to fetch on).
    Failed(TokenError),
}

/// Which token a request carried: the cache id and the token's generation, two plain integers.
/// Reports go through the registry of live caches. A `Weak` reference to the cache instead
/// costs every request an atomic increment and decrement on a counter that all cores share:
/// measured, 1,284 instead of 1,242 instructions per warm request (BENCHMARKS.md).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    cache_id: u64,
    generation: u64,
}

impl Ticket {
    fn of(cache_id: u64, entry: &Entry) -> Self {
        Self {
            cache_id,
            generation: entry.generation,
        }
    }

    /// The server the token was meant for refused the request that carried it (a `401`, a
    /// gRPC `UNAUTHENTICATED`): drops the token if it is still the cached one (outside the
    /// invalidation cooldown; logged and counted) and returns it. `max_wait` bounds the wait
    /// of [`Dropped::replaced`], as it bounds the wait of the request. The one way a refusal
    /// reaches the cache, whichever layer saw it.
    pub(crate) fn refused(self, refusal: Refusal, max_wait: Option<Duration>) -> Option<Dropped> {
        let core = registered(self.cache_id)?;
        let entry = core.invalidate(self.generation, Some(refusal))?;
        Some(Dropped {
            core: Arc::downgrade(&core),
            entry,
            max_wait,
        })
    }

    /// The token was not sent on, for `reason` (a redirect to another origin): counts it.
    pub(crate) fn withheld(self, reason: DestinationErrorKind) {
        if let Some(core) = registered(self.cache_id) {
            crate::metrics::withheld(&core.name, reason.as_str());
        }
    }
}

/// A token a `401` made the cache drop, with the cache, to tell whether a different token is
/// available now.
pub(crate) struct Dropped {
    /// Weak: a response kept somewhere must not keep a cache nobody uses (and its source and
    /// transport) alive, nor make it fetch.
    core: Weak<Core>,
    entry: Arc<Entry>,
    max_wait: Option<Duration>,
}

impl Dropped {
    /// Whether the cache has (or, fetching, gets) a token with another value than the dropped
    /// one. `false` when the fetch fails, takes longer than the layer's `max_wait`, or the
    /// cache is gone.
    pub(crate) async fn replaced(&self) -> bool {
        use secrecy::ExposeSecret;
        let Some(core) = self.core.upgrade() else {
            return false;
        };
        match entry(&core, self.max_wait).await {
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

/// A usable token: the cached one, or the result of a fetch (waited for `max_wait` at most).
pub(super) async fn entry(core: &Arc<Core>, max_wait: Option<Duration>) -> FetchResult {
    if let Some(entry) = &*core.current.load()
        && entry.is_fresh()
    {
        return Ok(Arc::clone(entry));
    }
    match core.acquire() {
        Acquired::Ready(entry) => Ok(entry),
        Acquired::Wait(fetch, give_up_at) => {
            let wait = Wait::new(core, fetch, give_up_at);
            let wait = match max_wait {
                Some(max_wait) => wait.at_most(max_wait),
                None => wait,
            };
            wait.entry().await
        }
        Acquired::Failed(error) => Err(error),
    }
}

/// One service's handle on the cache: its view of the current token (one pointer comparison
/// while the token is unchanged) and its count of cache hits (no atomics).
pub(crate) struct Handle {
    view: View,
    hits: Hits,
    /// The cache's id, for tickets (a copy, so the hot path reads no other memory).
    cache_id: u64,
}

impl Handle {
    pub(super) fn new(core: &Arc<Core>) -> Self {
        Self {
            view: arc_swap::Cache::new(Slot(Arc::clone(core))),
            hits: Hits::new(&core.name),
            cache_id: core.id,
        }
    }

    /// A token for the request with these `headers`: when one is at hand, it is put into
    /// `Authorization` at once. With a fresh cached token: no lock, no allocation, no `.await`.
    #[inline(always)]
    pub(super) fn grant(&mut self, core: &Arc<Core>, headers: &mut HeaderMap) -> Grant {
        if let Some(entry) = self.view.load()
            && entry.is_fresh()
        {
            headers.insert(AUTHORIZATION, entry.header.clone());
            self.hits.hit();
            return Grant::Ready(Ticket::of(self.cache_id, entry));
        }
        self.grant_slow(core, headers)
    }

    /// The ticket of the cached token if `authorization` is its header (fresh or not): for a
    /// layer inside the bearer layer, which sees the header it set but not its grant. `None`
    /// for a header that is not the current token's (the request's own, or a token replaced
    /// since). Reads no other memory than a grant does.
    #[cfg(feature = "grpc")]
    #[inline]
    pub(crate) fn ticket(&mut self, authorization: &HeaderValue) -> Option<Ticket> {
        let entry = self.view.load().as_ref()?;
        // The bearer layer cloned this very header, which shares its bytes: comparing the
        // pointers settles it without reading the token.
        let same = std::ptr::eq(entry.header.as_bytes(), authorization.as_bytes())
            || entry.header == *authorization;
        same.then(|| Ticket::of(self.cache_id, entry))
    }

    /// No fresh token at hand: asks the core, which may have to fetch one.
    #[inline(never)]
    fn grant_slow(&mut self, core: &Arc<Core>, headers: &mut HeaderMap) -> Grant {
        match core.acquire() {
            Acquired::Ready(entry) => {
                headers.insert(AUTHORIZATION, entry.header.clone());
                self.hits.hit();
                Grant::Ready(Ticket::of(self.cache_id, &entry))
            }
            Acquired::Wait(fetch, give_up_at) => Grant::Wait(Wait::new(core, fetch, give_up_at)),
            Acquired::Failed(error) => Grant::Failed(error),
        }
    }
}

impl Clone for Handle {
    fn clone(&self) -> Self {
        Self {
            view: self.view.clone(),
            hits: self.hits.clone(),
            cache_id: self.cache_id,
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("cache", &self.cache_id)
            .finish_non_exhaustive()
    }
}

/// Waits for a running fetch, but not past its deadline: the fetch's own (its timeout plus a
/// grace) or a shorter one from [`at_most`](Self::at_most). Giving up ends this wait only; the
/// fetch goes on for the others.
pub(crate) struct Wait {
    fetch: FetchFuture,
    give_up_at: Instant,
    /// What the timeout error says.
    limit: Limit,
    /// Made at the first poll inside a runtime, so a future polled elsewhere cannot panic.
    deadline: Option<Pin<Box<Sleep>>>,
    cache_id: u64,
}

#[derive(Clone, Copy)]
enum Limit {
    /// The fetch's timeout.
    Fetch(Duration),
    /// The caller's longest wait.
    MaxWait(Duration),
}

impl Wait {
    fn new(core: &Core, fetch: FetchFuture, give_up_at: Instant) -> Self {
        Self {
            fetch,
            give_up_at,
            limit: Limit::Fetch(core.config.fetch_timeout),
            deadline: None,
            cache_id: core.id,
        }
    }

    /// Gives up after `max_wait` from now, if that comes before the fetch's deadline.
    pub(crate) fn at_most(mut self, max_wait: Duration) -> Self {
        if let Some(at) = Instant::now().checked_add(max_wait)
            && at < self.give_up_at
        {
            self.give_up_at = at;
            self.limit = Limit::MaxWait(max_wait);
        }
        self
    }

    fn poll_entry(&mut self, cx: &mut Context<'_>) -> Poll<FetchResult> {
        if let Poll::Ready(result) = self.fetch.poll_unpin(cx) {
            return Poll::Ready(result);
        }
        if self.deadline.is_none() && tokio::runtime::Handle::try_current().is_ok() {
            self.deadline = Some(Box::pin(tokio::time::sleep_until(self.give_up_at)));
        }
        if let Some(deadline) = &mut self.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(self.timeout_error()));
        }
        Poll::Pending
    }

    async fn entry(mut self) -> FetchResult {
        std::future::poll_fn(|cx| self.poll_entry(cx)).await
    }

    fn timeout_error(&self) -> TokenError {
        match self.limit {
            Limit::Fetch(fetch_timeout) => no_answer(fetch_timeout),
            Limit::MaxWait(max_wait) => TokenError::new(
                TokenErrorKind::Timeout,
                format!(
                    "no token within max_wait of {max_wait:?}; the token fetch \
                     goes on for later requests"
                ),
            )
            .with_hint("check that the token endpoint is reachable, or raise `max_wait`"),
        }
    }
}

impl Future for Wait {
    type Output = Result<(HeaderValue, Ticket), TokenError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let cache_id = this.cache_id;
        this.poll_entry(cx)
            .map(|result| result.map(|entry| (entry.header.clone(), Ticket::of(cache_id, &entry))))
    }
}

impl fmt::Debug for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("give_up_at", &self.give_up_at)
            .finish_non_exhaustive()
    }
}
