//! Shared by the warm-path measurements (`benches/hot_path.rs`, `tools/src/callgrind_hot_path.rs`,
//! `tools/src/callgrind_routed.rs`): a realistic token and request, the inner service that
//! answers at once (as a closure, and as a type to name), a source of hour-long tokens, and one
//! request sent without a runtime.
#![allow(dead_code)]

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::header::{ACCEPT, USER_AGENT};
use http::{Request, Response};
use tower::{Service, service_fn};
use tower_bearer::error::TokenError;
use tower_bearer::{Token, TokenSource};

/// The request every variant sends: a GET with a query and two ordinary headers.
pub fn make_request() -> Request<()> {
    Request::get("https://api.partner.example/v1/items?page=2")
        .header(ACCEPT, "application/json")
        .header(USER_AGENT, "partner-client/1.4.2 (tower-bearer bench)")
        .body(())
        .unwrap()
}

/// The inner service as a type a function signature can name: answers `200 OK` at once.
#[derive(Clone, Copy)]
pub struct Inner;

impl Service<Request<()>> for Inner {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<()>, Infallible>>;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, _request: Request<()>) -> Self::Future {
        std::future::ready(Ok(Response::new(())))
    }
}

/// A source of the token it holds, valid for an hour.
pub struct HourToken(pub String);

impl TokenSource for HourToken {
    async fn token(&self) -> Result<Token, TokenError> {
        Ok(Token::new(self.0.clone()).with_expires_in(std::time::Duration::from_secs(3600)))
    }
}

/// The inner service shared by all variants: answers `200 OK` at once.
pub fn inner()
-> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future: Unpin> + Clone {
    service_fn(|_req: Request<()>| std::future::ready(Ok::<_, Infallible>(Response::new(()))))
}

/// One request: `poll_ready`, `call`, and one poll of the response future with a no-op waker.
/// Panics if the service is not ready at once or the future does not complete in that poll.
#[inline(always)]
pub fn send<S>(service: &mut S, request: Request<()>) -> S::Response
where
    S: Service<Request<()>>,
    S::Error: Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(error)) => panic!("poll_ready failed: {error:?}"),
        Poll::Pending => panic!("service not ready at once"),
    }
    let future = pin!(service.call(request));
    match future.poll(&mut cx) {
        Poll::Ready(Ok(response)) => response,
        Poll::Ready(Err(error)) => panic!("request failed: {error:?}"),
        Poll::Pending => panic!("the response future did not complete in one poll"),
    }
}

/// A JWT-like access token of about 900 bytes (header.payload.signature, base64url), the size
/// of a typical RS256 token from an identity provider.
pub fn realistic_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut chunk = |len: usize| -> String {
        (0..len)
            .map(|_| {
                // xorshift: deterministic, so every run sends the same token.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ALPHABET[(state % 64) as usize] as char
            })
            .collect()
    };
    let header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImJlbmNoLWtleS0xIn0";
    let token = format!("{header}.{}.{}", chunk(490), chunk(342));
    debug_assert!((880..=920).contains(&token.len()), "{}", token.len());
    token
}

/// A layer whose source hands out `token`, valid for an hour.
pub fn hour_token_layer(token: String) -> tower_bearer::BearerTokenLayer {
    tower_bearer::BearerTokenLayer::new(tower_bearer::token_source_fn(move || {
        let token = token.clone();
        async move {
            Ok(tower_bearer::Token::new(token)
                .with_expires_in(std::time::Duration::from_secs(3600)))
        }
    }))
}

/// A current-thread runtime with timers, to warm a cache. Keep it alive while measuring:
/// dropping it stops the refresh timer, which then marks the token stale.
pub fn warm_up_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}
