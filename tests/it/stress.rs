//! Stress on the multi-thread runtime: many tasks on two workers, short-lived tokens rolling
//! over, a token endpoint that fails at random, an API that refuses tokens at random, and
//! requests cancelled at random points. Real time has to pass here (Tokio's clock can only be
//! paused on the current-thread runtime), so nothing asserts how long anything took: the tests
//! check invariants that hold whatever the scheduling.
//!
//! - the token source is never called twice at once (single-flight);
//! - every request is answered, with a response or a typed error;
//! - no request carries a token that had expired or that the source never issued;
//! - after the disorder stops, the next requests succeed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};
use tower_bearer::{BearerTokenLayer, Error, Token, TokenCache, TokenError, TokenSource};

/// A token endpoint that notes each token it issues, fails a share of calls, and checks it is
/// never called twice at once.
#[derive(Clone)]
struct Endpoint {
    issued: Arc<Mutex<HashMap<String, Instant>>>,
    calls: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    overlapped: Arc<AtomicBool>,
    lifetime: Duration,
    /// Share of calls that fail, in percent.
    failing_percent: Arc<AtomicUsize>,
}

impl Endpoint {
    fn new(lifetime: Duration, failing_percent: usize) -> Self {
        Self {
            issued: Arc::default(),
            calls: Arc::default(),
            running: Arc::default(),
            overlapped: Arc::default(),
            lifetime,
            failing_percent: Arc::new(AtomicUsize::new(failing_percent)),
        }
    }

    /// Whether `header` carries a token this endpoint issued that has not expired.
    fn accepts(&self, header: &str) -> bool {
        let Some(token) = header.strip_prefix("Bearer ") else {
            return false;
        };
        let issued = self.issued.lock().unwrap();
        issued
            .get(token)
            .is_some_and(|expires| Instant::now() < *expires)
    }
}

impl TokenSource for Endpoint {
    async fn token(&self) -> Result<Token, TokenError> {
        let n = self.calls.fetch_add(1, SeqCst);
        if self.running.fetch_add(1, SeqCst) != 0 {
            self.overlapped.store(true, SeqCst);
        }
        // A round trip of a few milliseconds, so that requests pile up behind it.
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.running.fetch_sub(1, SeqCst);
        if fastrand::usize(..100) < self.failing_percent.load(SeqCst) {
            return Err(crate::common::server_error(n));
        }
        let token =
            Token::new(format!("stress-{n}-{}", fastrand::u64(..))).with_expires_in(self.lifetime);
        let expires = token.expires_at().unwrap();
        use secrecy::ExposeSecret;
        let value = token.access_token().expose_secret();
        crate::common::capture::register("stress access token", value);
        self.issued
            .lock()
            .unwrap()
            .insert(value.to_owned(), expires);
        Ok(token)
    }
}

/// An API that answers 200 to a valid token it knows, 401 otherwise, and 401 to a share of
/// valid ones too (a token revoked early).
fn api(
    endpoint: Endpoint,
    refusing_percent: Arc<AtomicUsize>,
    bad_tokens: Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<()>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    service_fn(move |req: Request<()>| {
        let header = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let valid = endpoint.accepts(&header);
        if !valid {
            bad_tokens.fetch_add(1, SeqCst);
        }
        let refused = !valid || fastrand::usize(..100) < refusing_percent.load(SeqCst);
        let mut response = Response::new(());
        if refused {
            *response.status_mut() = StatusCode::UNAUTHORIZED;
        }
        async move { Ok(response) }
    })
}

fn layer(endpoint: &Endpoint, margin: Duration) -> BearerTokenLayer {
    BearerTokenLayer::from_cache(
        TokenCache::builder(endpoint.clone())
            .refresh_margin(margin)
            .refresh_jitter(Duration::from_millis(5))
            .backoff(Duration::from_millis(5), Duration::from_millis(20))
            .invalidation_cooldown(Duration::from_millis(10))
            .build(),
    )
}

/// Tallies of what the requests got.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    unauthorized: AtomicUsize,
    token_errors: AtomicUsize,
    cancelled: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollover_under_load_never_sends_an_expired_token() {
    // Tokens live 200 ms and are refreshed from 100 ms on; 64 tasks send for 1.5 s: about
    // seven lifetimes.
    let endpoint = Endpoint::new(Duration::from_millis(200), 0);
    let bad = Arc::new(AtomicUsize::new(0));
    let service = layer(&endpoint, Duration::from_millis(100)).layer(api(
        endpoint.clone(),
        Arc::new(AtomicUsize::new(0)),
        Arc::clone(&bad),
    ));
    let tally = drive(service, false).await;
    assert!(!endpoint.overlapped.load(SeqCst), "two fetches ran at once");
    assert_eq!(bad.load(SeqCst), 0, "a request carried an expired token");
    assert_eq!(tally.unauthorized.load(SeqCst), 0);
    assert_eq!(
        tally.token_errors.load(SeqCst),
        0,
        "every request got a token"
    );
    assert!(
        tally.ok.load(SeqCst) > 1_000,
        "too few requests to mean anything"
    );
    assert!(
        endpoint.calls.load(SeqCst) >= 5,
        "the tokens were refreshed as they aged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_of_failures_refusals_and_cancellations_loses_nothing() {
    // A quarter of token requests fail, 2% of API answers are 401, and a third of requests
    // are cancelled after a random number of polls.
    let endpoint = Endpoint::new(Duration::from_millis(300), 25);
    let refusing = Arc::new(AtomicUsize::new(2));
    let bad = Arc::new(AtomicUsize::new(0));
    let layer = layer(&endpoint, Duration::from_millis(100));
    let cache = layer.cache().clone();
    let service = layer.layer(api(endpoint.clone(), Arc::clone(&refusing), bad));
    let tally = drive(service.clone(), true).await;
    assert!(!endpoint.overlapped.load(SeqCst), "two fetches ran at once");
    let total = tally.ok.load(SeqCst)
        + tally.unauthorized.load(SeqCst)
        + tally.token_errors.load(SeqCst)
        + tally.cancelled.load(SeqCst);
    assert!(total > 1_000, "too few requests to mean anything");
    // Many fail fast while no token is at hand and the endpoint backs off; that is by design.
    assert!(
        tally.ok.load(SeqCst) > total / 4,
        "a good share of requests succeeded"
    );
    let stats = cache.stats();
    eprintln!(
        "ok {} unauthorized {} token errors {} cancelled {} token requests {} {stats:?}",
        tally.ok.load(SeqCst),
        tally.unauthorized.load(SeqCst),
        tally.token_errors.load(SeqCst),
        tally.cancelled.load(SeqCst),
        endpoint.calls.load(SeqCst)
    );
    // Failures back off, so the endpoint saw far fewer calls than there were requests.
    assert!(
        endpoint.calls.load(SeqCst) < total / 20,
        "{} token requests for {total} requests",
        endpoint.calls.load(SeqCst)
    );
    assert!(stats.invalidations > 0, "the 401s dropped tokens");

    // The disorder stops: the next requests all succeed.
    endpoint.failing_percent.store(0, SeqCst);
    refusing.store(0, SeqCst);
    tokio::time::sleep(Duration::from_millis(30)).await; // past the longest backoff
    for _ in 0..100 {
        let response = service
            .clone()
            .oneshot(crate::common::get("https://api.example/"))
            .await
            .expect("a token once the endpoint works");
        assert_eq!(response.status(), StatusCode::OK);
    }
}

/// 64 tasks send requests through `service` for 1.5 s; with `cancelling`, a third of the
/// requests are dropped after 0 to 3 polls.
async fn drive<S>(service: S, cancelling: bool) -> Arc<Tally>
where
    S: tower::Service<Request<()>, Response = Response<()>, Error = Error<Infallible>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let until = Instant::now() + Duration::from_millis(1_500);
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let service = service.clone();
        let tally = Arc::clone(&tally);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let request = Box::pin(
                    service
                        .clone()
                        .oneshot(crate::common::get("https://api.example/")),
                );
                let outcome = if cancelling && fastrand::u8(..3) == 0 {
                    match cancel_after(request, fastrand::usize(..4)).await {
                        Some(outcome) => outcome,
                        None => {
                            tally.cancelled.fetch_add(1, SeqCst);
                            continue;
                        }
                    }
                } else {
                    request.await
                };
                match outcome {
                    Ok(response) if response.status() == StatusCode::OK => {
                        tally.ok.fetch_add(1, SeqCst)
                    }
                    Ok(_) => tally.unauthorized.fetch_add(1, SeqCst),
                    Err(Error::Token(_)) => tally.token_errors.fetch_add(1, SeqCst),
                    Err(other) => panic!("unexpected error: {other}"),
                };
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    tally
}

/// Polls `future` at most `polls` times; `None` if it was dropped unfinished.
async fn cancel_after<F: Future + Unpin>(mut future: F, polls: usize) -> Option<F::Output> {
    use std::task::Poll;
    let mut left = polls;
    std::future::poll_fn(move |cx| {
        if left == 0 {
            return Poll::Ready(None);
        }
        left -= 1;
        match std::pin::Pin::new(&mut future).poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
