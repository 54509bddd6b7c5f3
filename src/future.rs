//! [`ResponseFuture`]: the future a [`BearerToken`](crate::BearerToken) service returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::FutureExt;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::cache::{Core, FetchFuture};
use crate::error::Error;
use crate::service::attach;

/// The cache and generation of the token a request carried, to drop it on `401`.
type Carried = (Arc<Core>, u64);

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
        // No usable token yet: waiting for the fetch, holding a ready service.
        Waiting {
            fetch: FetchFuture,
            service: Option<S>,
            request: Option<Request<B>>,
            core: Arc<Core>,
        },
        // The request was not sent.
        Failed {
            error: Option<Error<S::Error>>,
        },
    }
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
        service: S,
        request: Request<B>,
        core: Arc<Core>,
    ) -> Self {
        Self {
            state: State::Waiting {
                fetch,
                service: Some(service),
                request: Some(request),
                core,
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future, carried } => {
                    let response = ready!(future.poll(cx)).map_err(Error::Service)?;
                    if response.status() == StatusCode::UNAUTHORIZED
                        && let Some((core, generation)) = carried.take()
                    {
                        core.invalidate(generation);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Waiting {
                    fetch,
                    service,
                    request,
                    core,
                } => {
                    let entry = ready!(fetch.poll_unpin(cx)).map_err(Error::Token)?;
                    let (Some(mut service), Some(mut request)) = (service.take(), request.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let generation = attach(&mut request, &entry);
                    let future = service.call(request);
                    let carried = Some((Arc::clone(core), generation));
                    this.state.set(State::Called { future, carried });
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
