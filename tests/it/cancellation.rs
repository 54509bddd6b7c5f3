//! Dropping a request's future at any of its await points loses nothing: the token fetch
//! completes for others, the inner service's readiness (a concurrency permit) is released, and
//! the next request goes through with the same token.

use std::convert::Infallible;
use std::time::Duration;

use crate::common::*;
use http::{Request, Response};
use tokio::time::{Instant, sleep, timeout};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_bearer::BearerTokenLayer;

const MILLI: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn a_request_dropped_at_any_await_point_loses_nothing() {
    // The fetch takes 100 ms; the API takes 100 ms. Drop points: before the first poll, while
    // waiting for the token, at the moment it arrives, while the API works, after the answer.
    for drop_after in [0, 1, 50, 100, 101, 150, 199, 250] {
        let source = Scripted::numbered(100 * MILLI, 60 * MINUTE);
        let slow_api = service_fn(|req: Request<()>| async move {
            sleep(100 * MILLI).await;
            let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
            Ok::<_, Infallible>(Response::new(auth))
        });
        let mut client = ServiceBuilder::new()
            .layer(BearerTokenLayer::new(source.clone()))
            .concurrency_limit(1)
            .service(slow_api);

        let start = Instant::now();
        let first = client
            .ready()
            .await
            .unwrap()
            .call(get("https://api.example/"));
        let _ = timeout(drop_after * MILLI, first).await;

        // The next request: gets the only permit back and the one token.
        let second = timeout(
            SECOND,
            client
                .ready()
                .await
                .unwrap()
                .call(get("https://api.example/")),
        )
        .await
        .unwrap_or_else(|_| panic!("drop at {drop_after} ms: the next request hung"))
        .unwrap();
        assert_eq!(second.body(), "Bearer token-0", "drop at {drop_after} ms");
        assert_eq!(source.calls(), 1, "drop at {drop_after} ms: one fetch");
        assert!(
            Instant::now() - start <= 400 * MILLI,
            "drop at {drop_after} ms"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn many_waiters_dropped_while_one_keeps_waiting() {
    let source = Scripted::numbered(100 * MILLI, 60 * MINUTE);
    let client = ServiceBuilder::new()
        .layer(BearerTokenLayer::new(source.clone()))
        .service(ok_api(Seen::default()));
    let mut dropped = Vec::new();
    for _ in 0..100 {
        dropped.push(tokio::spawn(timeout(
            50 * MILLI,
            client.clone().oneshot(get("https://api.example/")),
        )));
    }
    let kept = tokio::spawn(client.clone().oneshot(get("https://api.example/")));
    for task in dropped {
        assert!(task.await.unwrap().is_err(), "timed out and dropped");
    }
    assert_eq!(kept.await.unwrap().unwrap().body(), "Bearer token-0");
    assert_eq!(source.calls(), 1);
}
