//! [`ResponseFuture`]: the future a [`BearerToken`](crate::BearerToken) service returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::answer::{self, Sent};
use crate::cache::{Ticket, Wait};
use crate::error::Error;
use crate::origin::Origin;
use crate::redirect::CrossOriginRedirects;

/// What the response check needs to know about a request that carried the token: which token
/// (its ticket), where it went, and what to do with a redirect to another origin.
pub(crate) struct Carried {
    ticket: Ticket,
    max_wait: MaxWait,
    sent_to: SentTo,
    redirects: CrossOriginRedirects,
}

/// The layer's `max_wait` in the room the response future has spare (whole milliseconds,
/// `u32::MAX` for none of its own: the cache's then): a `401`'s replay waits for a new token no
/// longer than a request does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MaxWait(u32);

impl MaxWait {
    pub(crate) fn new(max_wait: Option<Duration>) -> Self {
        Self(max_wait.map_or(u32::MAX, |d| {
            u32::try_from(d.as_millis()).map_or(u32::MAX - 1, |ms| ms.min(u32::MAX - 1))
        }))
    }

    fn get(self) -> Option<Duration> {
        (self.0 != u32::MAX).then(|| Duration::from_millis(u64::from(self.0)))
    }
}

/// Longest authority (`host[:port]`) kept. A longer one is not kept: a redirect answering it
/// is same-origin only if its `Location` is a path, and a `401` that says where it came from
/// ([`FinalUri`], tower-http's `RequestUri`) is not taken as a refusal of the token.
const MAX_AUTHORITY: usize = 62;

/// The scheme and authority of the request's URI, copied: cloning the URI's `Bytes` costs an
/// atomic increment and decrement, and the first clone of a freshly parsed URI allocates.
#[derive(Clone, Copy)]
struct SentTo {
    /// `0`: not kept (origin-form, another scheme, too long); `1`: https; `2`: http.
    scheme: u8,
    len: u8,
    authority: [u8; MAX_AUTHORITY],
}

impl SentTo {
    #[inline(always)]
    fn of(uri: &http::Uri) -> Self {
        let mut sent_to = Self {
            scheme: 0,
            len: 0,
            authority: [0; MAX_AUTHORITY],
        };
        let scheme = match uri.scheme_str() {
            Some("https") => 1,
            Some("http") => 2,
            _ => return sent_to,
        };
        if let Some(authority) = uri.authority()
            && let Some(to) = sent_to.authority.get_mut(..authority.as_str().len())
        {
            to.copy_from_slice(authority.as_str().as_bytes());
            sent_to.scheme = scheme;
            sent_to.len = authority.as_str().len() as u8;
        }
        sent_to
    }

    /// The origin the token was sent to, if kept.
    fn origin(&self) -> Option<Origin> {
        let scheme = match self.scheme {
            1 => "https",
            2 => "http",
            _ => return None,
        };
        let authority = std::str::from_utf8(&self.authority[..usize::from(self.len)]).ok()?;
        // User information says nothing about where the request went.
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        Origin::parse(&format!("{scheme}://{authority}/")).ok()
    }
}

impl Carried {
    #[inline(always)]
    pub(crate) fn new<B>(
        ticket: Ticket,
        request: &Request<B>,
        redirects: CrossOriginRedirects,
        max_wait: MaxWait,
    ) -> Self {
        Self {
            ticket,
            max_wait,
            sent_to: SentTo::of(request.uri()),
            redirects,
        }
    }

    /// What the answer check needs, unpacked (a `401` or a redirect: the rare path).
    fn sent(self) -> Sent {
        Sent {
            ticket: self.ticket,
            to: self.sent_to.origin(),
            redirects: self.redirects,
            max_wait: self.max_wait.get(),
        }
    }
}

pin_project! {
    /// Response future of [`BearerToken`](crate::BearerToken).
    ///
    /// With a fresh token it is the inner future plus a status check; otherwise it first waits
    /// for the token.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, Service, ServiceExt};
    /// use tower_bearer::{BearerToken, ResponseFuture, StaticToken, Token, TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let inner = service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new("ok")) });
    /// let mut service = BearerToken::new(inner, TokenCache::new(StaticToken::new(Token::new("t"))));
    /// let request = Request::get("https://api.example/").body(())?;
    /// let future: ResponseFuture<_, ()> = service.ready().await?.call(request);
    /// assert_eq!(*future.await?.body(), "ok");
    /// # Ok(()) }
    /// ```
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
    /// The cache's wait, with its own deadline and timeout error.
    wait: Wait,
    service: Option<S>,
    request: Option<Request<B>>,
    redirects: CrossOriginRedirects,
    max_wait: MaxWait,
}

impl<S: Service<Request<B>>, B> ResponseFuture<S, B> {
    #[inline]
    pub(crate) fn called(future: S::Future, carried: Option<Carried>) -> Self {
        Self {
            state: State::Called { future, carried },
        }
    }

    pub(crate) fn waiting(
        wait: Wait,
        service: S,
        request: Request<B>,
        redirects: CrossOriginRedirects,
        max_wait: MaxWait,
    ) -> Self {
        Self {
            state: State::Waiting {
                waiting: Box::new(Waiting {
                    wait,
                    service: Some(service),
                    request: Some(request),
                    redirects,
                    max_wait,
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

/// Polls the inner future; a `401` or a redirect answering a request that carried the token
/// goes to [`answer::check`].
#[inline(always)]
fn poll_called<F, ResBody, E>(
    future: Pin<&mut F>,
    carried: &mut Option<Carried>,
    cx: &mut Context<'_>,
) -> Poll<Result<Response<ResBody>, Error<E>>>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    let mut poll = future.poll(cx);
    if let Poll::Ready(Ok(response)) = &mut poll
        && carried.is_some()
        && answer::is_checked(response.status().as_u16())
        && let Some(carried) = carried.take()
        && let Err(refused) = answer::check(response, carried.sent())
    {
        return Poll::Ready(Err(Error::Destination(refused)));
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
                let (header, ticket) = match w.wait.poll_unpin(cx) {
                    Poll::Ready(granted) => granted.map_err(Error::Token)?,
                    Poll::Pending => return Poll::Pending,
                };
                let (Some(mut service), Some(mut request)) = (w.service.take(), w.request.take())
                else {
                    panic!("ResponseFuture polled after completion");
                };
                request.headers_mut().insert(AUTHORIZATION, header);
                let carried = Some(Carried::new(ticket, &request, w.redirects, w.max_wait));
                let future = service.call(request);
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
