//! The opt-in 401 replay: once, with a fresh token, with the same body; never for 403.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use http::{Method, Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_bearer::replay::ReplayUnauthorizedLayer;
use tower_bearer::{BearerTokenLayer, ExistingAuthorization, OtherHosts, Token, TokenCache};

/// An API that records (authorization, body) and answers `status_for(authorization)`.
fn api(
    log: Arc<Mutex<Vec<(String, String)>>>,
    status_for: fn(&str) -> StatusCode,
) -> impl tower::Service<
    Request<String>,
    Response = Response<()>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<()>, Infallible>> + Send,
> + Clone
+ Send {
    service_fn(move |req: Request<String>| {
        let log = Arc::clone(&log);
        async move {
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let status = status_for(&auth);
            log.lock().unwrap().push((auth, req.into_body()));
            let mut response = Response::new(());
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        }
    })
}

fn post(body: &str) -> Request<String> {
    Request::post("https://api.example/orders")
        .body(body.to_owned())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_401_is_replayed_once_with_a_fresh_token_and_the_same_body() {
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let log = Arc::default();
    let client = ServiceBuilder::new()
        .layer(ReplayUnauthorizedLayer::new())
        .layer(BearerTokenLayer::new(source.clone()))
        .service(api(Arc::clone(&log), |auth| {
            if auth == "Bearer token-0" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            }
        }));
    let response = client.oneshot(post(r#"{"id":1}"#)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *log.lock().unwrap(),
        [
            ("Bearer token-0".to_owned(), r#"{"id":1}"#.to_owned()),
            ("Bearer token-1".to_owned(), r#"{"id":1}"#.to_owned()),
        ]
    );
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn never_more_than_once_and_never_for_403() {
    for (status, attempts) in [(StatusCode::UNAUTHORIZED, 2), (StatusCode::FORBIDDEN, 1)] {
        let log = Arc::default();
        let client = ServiceBuilder::new()
            .layer(ReplayUnauthorizedLayer::new())
            .layer(BearerTokenLayer::new(Scripted::numbered(
                Duration::ZERO,
                60 * MINUTE,
            )))
            .service(api(
                Arc::clone(&log),
                if status == StatusCode::UNAUTHORIZED {
                    |_: &str| StatusCode::UNAUTHORIZED
                } else {
                    |_: &str| StatusCode::FORBIDDEN
                },
            ));
        let response = client.oneshot(post("x")).await.unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(log.lock().unwrap().len(), attempts, "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn idempotent_only_leaves_post_alone() {
    let log = Arc::default();
    let client = ServiceBuilder::new()
        .layer(ReplayUnauthorizedLayer::new().idempotent_only())
        .layer(BearerTokenLayer::new(Scripted::numbered(
            Duration::ZERO,
            60 * MINUTE,
        )))
        .service(api(Arc::clone(&log), |auth| {
            if auth == "Bearer token-0" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            }
        }));
    let response = client.clone().oneshot(post("x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(log.lock().unwrap().len(), 1);
    // A PUT on a fresh client meeting the same refusal is replayed.
    let log = Arc::default();
    let client = ServiceBuilder::new()
        .layer(ReplayUnauthorizedLayer::new().idempotent_only())
        .layer(BearerTokenLayer::new(Scripted::numbered(
            Duration::ZERO,
            60 * MINUTE,
        )))
        .service(api(Arc::clone(&log), |auth| {
            if auth == "Bearer token-0" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            }
        }));
    let put = Request::builder()
        .method(Method::PUT)
        .uri("https://api.example/orders/1")
        .body("y".to_owned())
        .unwrap();
    assert_eq!(client.oneshot(put).await.unwrap().status(), StatusCode::OK);
    assert_eq!(log.lock().unwrap().len(), 2);
}

/// A 401 to a request that did not carry this layer's token says nothing about the token:
/// never replayed, the token never dropped.
#[tokio::test(start_paused = true)]
async fn requests_that_went_without_our_token_are_never_replayed() {
    let log = Arc::default();
    let cache = TokenCache::new(Scripted::numbered(Duration::ZERO, 60 * MINUTE));
    let unauthorized = |log| api(log, |_: &str| StatusCode::UNAUTHORIZED);
    // A host outside the allow-list, sent without the token.
    let outside = ServiceBuilder::new()
        .layer(ReplayUnauthorizedLayer::new())
        .layer(
            BearerTokenLayer::from_cache(cache.clone())
                .allowed_hosts(["api.example"])
                .unwrap()
                .other_hosts(OtherHosts::SendWithoutToken),
        )
        .service(unauthorized(Arc::clone(&log)));
    let request = Request::post("https://public.example/x")
        .body("a".to_owned())
        .unwrap();
    let response = outside.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The caller's own credentials, kept.
    let own = ServiceBuilder::new()
        .layer(ReplayUnauthorizedLayer::new())
        .layer(
            BearerTokenLayer::from_cache(cache.clone())
                .existing_authorization(ExistingAuthorization::Keep),
        )
        .service(unauthorized(Arc::clone(&log)));
    let mut request = post("b");
    request.headers_mut().insert(
        "authorization",
        "Bearer callers-own-credential".parse().unwrap(),
    );
    let response = own.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        *log.lock().unwrap(),
        [
            (String::new(), "a".to_owned()),
            ("Bearer callers-own-credential".to_owned(), "b".to_owned()),
        ]
    );
    assert_eq!(cache.stats().invalidations, 0);
}

/// Inside the invalidation cooldown the token is not dropped, so a replay would carry the
/// same token: it is not made.
#[tokio::test(start_paused = true)]
async fn a_401_inside_the_cooldown_is_not_replayed() {
    let log = Arc::default();
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let client = ServiceBuilder::new()
        .layer(ReplayUnauthorizedLayer::new())
        .layer(BearerTokenLayer::new(source.clone()))
        .service(api(Arc::clone(&log), |_: &str| StatusCode::UNAUTHORIZED));
    // token-0 refused and dropped: replayed once with token-1, refused too.
    let response = client.clone().oneshot(post("1")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Within the cooldown, token-1 is refused again but kept: no replay.
    let response = client.oneshot(post("2")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let auths: Vec<String> = log.lock().unwrap().iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(
        auths,
        ["Bearer token-0", "Bearer token-1", "Bearer token-1"]
    );
    assert_eq!(source.calls(), 2);
}

/// A provider may hand out the same token again; a replay with it would only repeat the 401.
#[tokio::test(start_paused = true)]
async fn a_replay_needs_a_token_with_another_value() {
    let log = Arc::default();
    let source = Scripted::new(Duration::ZERO, |_| {
        Ok(Token::new("replay-same-value").with_expires_in(60 * MINUTE))
    });
    let client = ServiceBuilder::new()
        .layer(ReplayUnauthorizedLayer::new())
        .layer(BearerTokenLayer::new(source.clone()))
        .service(api(Arc::clone(&log), |_: &str| StatusCode::UNAUTHORIZED));
    let response = client.oneshot(post("x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(log.lock().unwrap().len(), 1);
    // The token was dropped and fetched again, and that is how the replay knew.
    assert_eq!(source.calls(), 2);
}

/// `TokenRejected::replaced` is `false` once the cache is gone: a response kept somewhere does
/// not make a cache nobody uses fetch (found by a second reader).
#[tokio::test(start_paused = true)]
async fn replaced_is_false_once_the_cache_is_gone() {
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let log = Arc::default();
    let layer = BearerTokenLayer::new(source.clone());
    let service = tower::Layer::layer(&layer, api(log, |_| StatusCode::UNAUTHORIZED));
    let response = service.clone().oneshot(post("x")).await.unwrap();
    // Every handle on the cache is dropped: the cache is gone for its users.
    drop(service);
    drop(layer);
    let rejected = response
        .extensions()
        .get::<tower_bearer::replay::TokenRejected>()
        .expect("marked")
        .clone();
    drop(response);
    assert!(
        !rejected.replaced().await,
        "the cache is gone, yet replaced() fetched token #{}",
        source.calls()
    );
}

/// `max_wait` bounds how long a request waits for a token, also when it got a `401` and waits
/// in `TokenRejected::replaced` for the token of its replay (found by a second reader).
#[tokio::test(start_paused = true)]
async fn max_wait_also_bounds_the_replay_wait() {
    // Fetches take 12 s: the cache's own wait is long enough to warm it.
    let source = Scripted::numbered(Duration::from_secs(12), 60 * MINUTE);
    let cache = TokenCache::builder(source.clone())
        .max_wait(Duration::from_secs(30))
        .build();
    tower_bearer::TokenSource::token(&cache).await.unwrap(); // warm: token-0
    let log = Arc::default();
    let client = ServiceBuilder::new()
        .layer(ReplayUnauthorizedLayer::new())
        .layer(BearerTokenLayer::from_cache(cache).max_wait(Duration::from_secs(2)))
        .service(api(log, |auth| {
            if auth == "Bearer token-0" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            }
        }));
    let started = tokio::time::Instant::now();
    let _ = client.oneshot(post("x")).await;
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "the request took {:?} with max_wait 2s",
        started.elapsed()
    );
}
