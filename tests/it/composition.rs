//! The layer among tower's own layers, in the orders users write: Timeout, Retry,
//! ConcurrencyLimit, Buffer and load shedding, outside and inside.

use std::future::Ready;
use std::time::Duration;

use crate::common::*;
use http::Request;
use tower::retry::Policy;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_bearer::BearerTokenLayer;

#[tokio::test(start_paused = true)]
async fn timeout_outside_bounds_the_wait_for_a_token_and_the_fetch_goes_on() {
    let source = Scripted::numbered(2 * SECOND, 60 * MINUTE);
    let client = ServiceBuilder::new()
        .timeout(SECOND)
        .layer(BearerTokenLayer::new(source.clone()))
        .service(ok_api(Seen::default()));
    let err = client
        .clone()
        .oneshot(get("https://api.example/"))
        .await
        .unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    // The fetch finished without the request that started it.
    tokio::time::sleep(2 * SECOND).await;
    let response = client.oneshot(get("https://api.example/")).await.unwrap();
    assert_eq!(response.body(), "Bearer token-0");
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_inside_reaches_the_caller_as_the_inner_error() {
    let slow_api = tower::service_fn(|_req: Request<()>| async {
        tokio::time::sleep(10 * SECOND).await;
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    });
    let client = ServiceBuilder::new()
        .layer(BearerTokenLayer::new(Scripted::numbered(
            Duration::ZERO,
            60 * MINUTE,
        )))
        .timeout(SECOND)
        .service(slow_api);
    let err = client
        .oneshot(get("https://api.example/"))
        .await
        .unwrap_err();
    let tower_bearer::Error::Service(inner) = err else {
        panic!("expected the inner service's error");
    };
    assert!(inner.is::<tower::timeout::error::Elapsed>());
}

/// Retries any error once.
#[derive(Clone)]
struct RetryOnce(bool);

impl<Res, E> Policy<Request<()>, Res, E> for RetryOnce {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _req: &mut Request<()>,
        result: &mut Result<Res, E>,
    ) -> Option<Self::Future> {
        (result.is_err() && !self.0).then(|| {
            self.0 = true;
            std::future::ready(())
        })
    }

    fn clone_request(&mut self, req: &Request<()>) -> Option<Request<()>> {
        let mut clone = Request::new(());
        *clone.uri_mut() = req.uri().clone();
        Some(clone)
    }
}

#[tokio::test(start_paused = true)]
async fn retry_outside_does_not_storm_a_failing_token_endpoint() {
    let source = Scripted::failing(Duration::ZERO);
    let client = ServiceBuilder::new()
        .retry(RetryOnce(false))
        .layer(BearerTokenLayer::new(source.clone()))
        .service(ok_api(Seen::default()));
    for _ in 0..20 {
        let err = client
            .clone()
            .oneshot(get("https://api.example/"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("token endpoint failed"), "{err}");
    }
    // 20 requests, each retried once: the retries fail fast inside the backoff window.
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn buffer_and_concurrency_limit_outside_share_one_fetch() {
    let source = Scripted::numbered(100 * MILLI, 60 * MINUTE);
    let client = ServiceBuilder::new()
        .buffer(1024)
        .concurrency_limit(64)
        .layer(BearerTokenLayer::new(source.clone()))
        .service(ok_api(Seen::default()));
    let mut calls = Vec::new();
    for _ in 0..500 {
        calls.push(tokio::spawn(
            client.clone().oneshot(get("https://api.example/")),
        ));
    }
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().body(), "Bearer token-0");
    }
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn load_shedding_outside_sheds_without_fetching_more() {
    let source = Scripted::numbered(100 * MILLI, 60 * MINUTE);
    let mut client = ServiceBuilder::new()
        .load_shed()
        .layer(BearerTokenLayer::new(source.clone()))
        .concurrency_limit(1)
        .service(ok_api(Seen::default()));
    // The first request takes the only slot while it waits for the token; the second is shed.
    let first = client
        .ready()
        .await
        .unwrap()
        .call(get("https://api.example/"));
    let second: Result<_, BoxError> = client
        .ready()
        .await
        .unwrap()
        .call(get("https://api.example/"))
        .await;
    assert!(
        second
            .unwrap_err()
            .is::<tower::load_shed::error::Overloaded>()
    );
    assert_eq!(first.await.unwrap().body(), "Bearer token-0");
    assert_eq!(source.calls(), 1);
}

const MILLI: Duration = Duration::from_millis(1);
