//! [`ResponseFuture`]: the future a [`BearerToken`](crate::BearerToken) service returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::cache::{FetchFuture, report_unauthorized, timeout_error};
use crate::error::Error;
use crate::service::attach;

/// The cache id and generation of the token a request carried, to drop it on `401`. Plain
/// integers: carrying a reference would cost every request an atomic increment and decrement.
type Carried = (u64, u64);

pin_project! {
    /// Response future of [`BearerToken`](crate::BearerToken).
    ///
    /// With a fresh token it is the inner future plus a status check; otherwise it first waits
    /// for the token.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // The request is on its way (the fast path starts here).
        Called {
            #[pin]
            future: S::Future,
            carried: Option<Carried>,
        },
        // No usable token yet: waiting for the fetch, holding a ready service. Boxed: rare,
        // and it keeps the fast path's future small.
        Waiting {
            waiting: Box<Waiting<S, B>>,
        },
        // The request was not sent.
        Failed {
            error: Option<Error<S::Error>>,
        },
    }
}

struct Waiting<S, B> {
    fetch: FetchFuture,
    give_up_at: Instant,
    fetch_timeout: Duration,
    /// Made at the first poll inside a runtime, so a future polled elsewhere cannot panic.
    deadline: Option<Pin<Box<Sleep>>>,
    service: Option<S>,
    request: Option<Request<B>>,
    cache_id: u64,
}

impl<S: Service<Request<B>>, B> ResponseFuture<S, B> {
    #[inline]
    pub(crate) fn called(future: S::Future, carried: Option<Carried>) -> Self {
        Self {
            state: State::Called { future, carried },
        }
    }

    pub(crate) fn waiting(
        fetch: FetchFuture,
        give_up_at: Instant,
        fetch_timeout: Duration,
        service: S,
        request: Request<B>,
        cache_id: u64,
    ) -> Self {
        Self {
            state: State::Waiting {
                waiting: Box::new(Waiting {
                    fetch,
                    give_up_at,
                    fetch_timeout,
                    deadline: None,
                    service: Some(service),
                    request: Some(request),
                    cache_id,
                }),
            },
        }
    }

    pub(crate) fn failed(error: Error<S::Error>) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResBody>, Error<S::Error>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        // The fast path: no loop, no state change; everything else is out of line.
        if let StateProj::Called { future, carried } = state.as_mut().project() {
            return poll_called(future, carried, cx);
        }
        poll_slow(state, cx)
    }
}

/// Polls the inner future; on `401`, drops the token the request carried.
#[inline(always)]
fn poll_called<F, ResBody, E>(
    future: Pin<&mut F>,
    carried: &mut Option<Carried>,
    cx: &mut Context<'_>,
) -> Poll<Result<Response<ResBody>, Error<E>>>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    let poll = future.poll(cx);
    if let Poll::Ready(Ok(response)) = &poll
        && response.status() == StatusCode::UNAUTHORIZED
        && let Some((cache_id, generation)) = carried.take()
    {
        report_unauthorized(cache_id, generation);
    }
    poll.map_err(Error::Service)
}

/// Waits for the token and sends the request, or reports why it was not sent.
#[inline(never)]
fn poll_slow<S, B, ResBody>(
    mut state: Pin<&mut State<S, B>>,
    cx: &mut Context<'_>,
) -> Poll<Result<Response<ResBody>, Error<S::Error>>>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    loop {
        match state.as_mut().project() {
            StateProj::Called { future, carried } => return poll_called(future, carried, cx),
            StateProj::Waiting { waiting } => {
                let w = &mut **waiting;
                let entry = match w.fetch.poll_unpin(cx) {
                    Poll::Ready(entry) => entry.map_err(Error::Token)?,
                    Poll::Pending => {
                        if w.deadline.is_none() && tokio::runtime::Handle::try_current().is_ok() {
                            w.deadline = Some(Box::pin(tokio::time::sleep_until(w.give_up_at)));
                        }
                        if let Some(deadline) = &mut w.deadline
                            && deadline.as_mut().poll(cx).is_ready()
                        {
                            return Poll::Ready(Err(Error::Token(timeout_error(w.fetch_timeout))));
                        }
                        return Poll::Pending;
                    }
                };
                let (Some(mut service), Some(mut request)) = (w.service.take(), w.request.take())
                else {
                    panic!("ResponseFuture polled after completion");
                };
                let generation = attach(&mut request, &entry);
                let future = service.call(request);
                let carried = Some((w.cache_id, generation));
                state.set(State::Called { future, carried });
            }
            StateProj::Failed { error } => {
                let error = error
                    .take()
                    .expect("ResponseFuture polled after completion");
                return Poll::Ready(Err(error));
            }
        }
    }
}

impl<S: Service<Request<B>>, B> fmt::Debug for ResponseFuture<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "Called",
            State::Waiting { .. } => "Waiting",
            State::Failed { .. } => "Failed",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
