//! The bound on waiting for a token, with the default settings, on Tokio's paused clock: a hung
//! token endpoint fails the first request within `DEFAULT_MAX_WAIT`, with an error that says
//! what was waited for and how long; a slow source is given up on at the bound while its fetch
//! goes on for later requests. (The fleet's stuck lease holder is in `fleet.rs`.)

use std::convert::Infallible;
use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};
use tower_bearer::cache::DEFAULT_MAX_WAIT;
use tower_bearer::oauth::{
    ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport,
};
use tower_bearer::{
    BearerTokenLayer, Error, Token, TokenCache, TokenError, TokenErrorKind, TokenSource,
};

use crate::common::*;

const CLIENT_SECRET: &str = "waits-client-S3cret-4f1";
const SLOW_TOKEN: &str = "waits-slow-source-token-8b2";
crate::known_secrets!(
    "waits.rs client secret" => CLIENT_SECRET,
    "waits.rs slow source token" => SLOW_TOKEN,
);

/// The OAuth client with its default timeouts and retries, against a token endpoint that takes
/// every request and never answers; counts the requests.
fn hung_endpoint_client(requests: Arc<AtomicUsize>) -> impl TokenSource + 'static {
    let transport = ServiceTransport::new(service_fn(move |_: Request<Full<Bytes>>| {
        requests.fetch_add(1, Ordering::SeqCst);
        pending::<Result<Response<Full<Bytes>>, Infallible>>()
    }));
    ClientCredentials::new(
        ClientCredentialsRequest::new(
            "https://login.example.com/tenant-9c1/oauth2/v2.0/token?p=b2c_1_policy",
        )
        .unwrap()
        .scope("api://partner/.default"),
        ClientAuth::client_secret_post("client-1", CLIENT_SECRET),
        transport,
    )
}

#[tokio::test(start_paused = true)]
async fn a_hung_token_endpoint_fails_the_first_request_within_the_default_bound() {
    let requests = Arc::new(AtomicUsize::new(0));
    let service = BearerTokenLayer::new(hung_endpoint_client(Arc::clone(&requests)))
        .layer(ok_api(Seen::default()));
    let started = Instant::now();
    let err = service
        .oneshot(get("https://api.partner.example/v1/items"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    // 3 attempts of 3 s, and two pauses between them (125 to 250 ms, then 250 to 500 ms).
    assert!(took <= DEFAULT_MAX_WAIT, "the request waited {took:?}");
    assert!(took >= Duration::from_millis(9375), "{took:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    let Error::Token(err) = err else {
        panic!("expected a token error, got {err:?}")
    };
    assert_eq!(err.kind(), TokenErrorKind::Timeout);
    let text = err.to_string();
    // What was waited for (a token from the token URL's host), how long in all, and why.
    let expected =
        format!("no token from login.example.com within {took:?}: 3 attempts of 3s each timed out");
    assert!(text.contains(&expected), "{text}\nexpected: {expected}");
    assert!(text.contains("hint: "), "{text}");
    // The host only: neither the path nor the query.
    assert!(
        !text.contains("tenant-9c1") && !text.contains("b2c_1_policy"),
        "{text}"
    );
}

/// A source that takes `delay` and says where its tokens come from.
#[derive(Clone)]
struct Slow {
    delay: Duration,
    calls: Arc<AtomicUsize>,
}

impl TokenSource for Slow {
    async fn token(&self) -> Result<Token, TokenError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        Ok(Token::new(SLOW_TOKEN).with_expires_in(Duration::from_secs(3600)))
    }

    fn describe(&self) -> Option<String> {
        Some("vault.internal".to_owned())
    }
}

fn slow(delay: Duration) -> Slow {
    Slow {
        delay,
        calls: Arc::new(AtomicUsize::new(0)),
    }
}

/// The message of a request that gave up at the default bound on cache `partner`.
const GAVE_UP: &str = "no token within 10s, the longest wait (`max_wait`): waited for a token \
                       for the cache `partner` from vault.internal; the fetch goes on, and later \
                       requests get its token";

#[tokio::test(start_paused = true)]
async fn a_request_gives_up_at_the_default_bound_and_the_fetch_goes_on_for_later_ones() {
    // 12 s: longer than the default wait (10 s), shorter than the fetch timeout (15 s).
    let source = slow(Duration::from_secs(12));
    let cache = TokenCache::builder(source.clone()).name("partner").build();
    let service = BearerTokenLayer::from_cache(cache).layer(ok_api(Seen::default()));
    let started = Instant::now();
    let first = tokio::spawn(service.clone().oneshot(get("https://api.partner.example/")));
    // A second request comes 5 s later: its own wait ends at 15 s, after the fetch.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let second = tokio::spawn(service.clone().oneshot(get("https://api.partner.example/")));

    let err = first.await.unwrap().unwrap_err();
    assert_eq!(started.elapsed(), DEFAULT_MAX_WAIT);
    let Error::Token(err) = err else {
        panic!("expected a token error, got {err:?}")
    };
    assert_eq!(err.kind(), TokenErrorKind::Timeout);
    assert!(err.to_string().contains(GAVE_UP), "{err}");
    assert!(err.hint().unwrap().contains("raise `max_wait`"), "{err}");

    let response = second.await.unwrap().unwrap();
    assert_eq!(response.body(), &format!("Bearer {SLOW_TOKEN}"));
    assert_eq!(started.elapsed(), Duration::from_secs(12));
    let response = service
        .oneshot(get("https://api.partner.example/"))
        .await
        .unwrap();
    assert_eq!(response.body(), &format!("Bearer {SLOW_TOKEN}"));
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn token_cache_token_is_bounded_by_the_same_default() {
    let source = slow(Duration::from_secs(12));
    let cache = TokenCache::builder(source.clone()).name("partner").build();
    assert_eq!(cache.describe().as_deref(), Some("vault.internal"));
    let started = Instant::now();
    let err = cache.token().await.unwrap_err();
    assert_eq!(started.elapsed(), DEFAULT_MAX_WAIT);
    assert_eq!(err.kind(), TokenErrorKind::Timeout);
    assert!(err.to_string().contains(GAVE_UP), "{err}");
    // The fetch went on.
    let token = cache.token().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(12));
    assert_eq!(token.fingerprint(), Token::new(SLOW_TOKEN).fingerprint());
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_cache_s_max_wait_is_the_layer_s_default_and_the_layer_may_set_its_own() {
    let source = slow(Duration::from_secs(6));
    let cache = TokenCache::builder(source.clone())
        .name("partner")
        .max_wait(Duration::from_secs(4))
        .build();
    // The cache's 4 s.
    let started = Instant::now();
    let err = BearerTokenLayer::from_cache(cache.clone())
        .layer(ok_api(Seen::default()))
        .oneshot(get("https://api.partner.example/"))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(4));
    assert!(err.to_string().contains("no token within 4s"), "{err}");
    // The layer's own, longer wait: the fetch (started at 0) ends at 6 s.
    let response = BearerTokenLayer::from_cache(cache)
        .max_wait(Duration::from_secs(8))
        .layer(ok_api(Seen::default()))
        .oneshot(get("https://api.partner.example/"))
        .await
        .unwrap();
    assert_eq!(response.body(), &format!("Bearer {SLOW_TOKEN}"));
    assert_eq!(started.elapsed(), Duration::from_secs(6));
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}
