//! `BearerTokenLayer::routes()`: one layer, several APIs, each origin with a cache of its own.
//! Against two emulators on two loopback origins whose APIs want different audiences (a token
//! sent to the wrong one is answered `401`), and against echo APIs for the destination rules.

use std::convert::Infallible;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use tower_bearer::error::DestinationErrorKind;
use tower_bearer::oauth::ServiceTransport;
use tower_bearer::providers::KontrollePlus;
use tower_bearer::{BearerTokenLayer, Error, OtherHosts, TokenCache};
use tower_bearer_emulator::{Emulator, Provider};

use crate::common::*;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A Kontrolle+ cache for `emulator`'s app (its audience), fetching through `http`.
fn kontrolle_cache(emulator: &Emulator, http: &HttpClient) -> TokenCache {
    let source = KontrollePlus::new()
        .authority(emulator.authority())
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .app_id_uri(emulator.app_id_uri())
        .build(ServiceTransport::new(http.clone()))
        .expect("valid settings");
    TokenCache::new(source)
}

fn origin(emulator: &Emulator) -> String {
    format!("http://{}", emulator.addr())
}

fn api_get(emulator: &Emulator, path: &str) -> Request<Full<Bytes>> {
    Request::get(emulator.api_url(Provider::KontrollePlus, path))
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn two_apis_with_different_audiences_each_get_their_own_token_through_one_layer() {
    let billing = Emulator::builder()
        .app_id_uri("api://billing")
        .start()
        .await
        .unwrap();
    let files = Emulator::builder()
        .app_id_uri("api://files")
        .start()
        .await
        .unwrap();
    let http: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let layer = BearerTokenLayer::routes()
        .route(&origin(&billing), kontrolle_cache(&billing, &http))
        .unwrap()
        .route(&origin(&files), kontrolle_cache(&files, &http))
        .unwrap();
    let client = layer.layer(http.clone());

    // Twenty concurrent requests to each API, interleaved, from a cold start.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let emulator = if i % 2 == 0 { &billing } else { &files };
        let request = api_get(emulator, &format!("v1/items/{i}"));
        tasks.push(tokio::spawn(client.clone().oneshot(request)));
    }
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "a token of the wrong audience?"
        );
    }
    assert_eq!(billing.token_requests(Provider::KontrollePlus), 1);
    assert_eq!(files.token_requests(Provider::KontrollePlus), 1);
    assert_eq!(billing.api_requests(), 20);
    assert_eq!(files.api_requests(), 20);

    // Billing revokes its tokens: the `401` drops billing's token only.
    billing.revoke_all();
    let response = client
        .clone()
        .oneshot(api_get(&billing, "v1/after-revocation"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let billing_cache = layer.cache(&origin(&billing)).unwrap();
    let files_cache = layer.cache(&origin(&files)).unwrap();
    assert_eq!(billing_cache.stats().invalidations, 1);
    assert_eq!(files_cache.stats().invalidations, 0);
    for emulator in [&billing, &files] {
        let response = client
            .clone()
            .oneshot(api_get(emulator, "v1/again"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(billing.token_requests(Provider::KontrollePlus), 2);
    assert_eq!(files.token_requests(Provider::KontrollePlus), 1);

    // An origin without a route: refused, never sent.
    let stray = Request::get("http://127.0.0.1:9/v1/items")
        .body(Full::default())
        .unwrap();
    match client.oneshot(stray).await {
        Err(Error::Destination(e)) => assert_eq!(e.kind(), DestinationErrorKind::HostNotAllowed),
        other => panic!("expected a destination error, got {other:?}"),
    }
}

/// Two scripted caches behind echo APIs: tokens `a-<n>` and `b-<n>`.
fn two_routes() -> (tower_bearer::RoutedBearerTokenLayer, Scripted, Scripted) {
    let a = Scripted::new(SECOND, |n| {
        Ok(tower_bearer::Token::new(format!("a-{n}")).with_expires_in(60 * MINUTE))
    });
    let b = Scripted::new(SECOND, |n| {
        Ok(tower_bearer::Token::new(format!("b-{n}")).with_expires_in(60 * MINUTE))
    });
    let layer = BearerTokenLayer::routes()
        .route("https://a.example", TokenCache::new(a.clone()))
        .unwrap()
        .route("https://b.example:8443", TokenCache::new(b.clone()))
        .unwrap();
    (layer, a, b)
}

#[tokio::test(start_paused = true)]
async fn the_origin_picks_the_cache_and_a_401_drops_only_that_caches_token() {
    let (layer, a, b) = two_routes();
    let seen = Seen::default();
    // The API refuses `a-0` once it has been revoked; everything else is fine.
    let service = layer.layer(api(seen.clone(), |auth| {
        if auth == "Bearer a-0" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        }
    }));
    let body = |r: Result<http::Response<String>, Error<Infallible>>| {
        let r = r.unwrap();
        (r.status(), r.into_body())
    };
    assert_eq!(
        body(
            service
                .clone()
                .oneshot(get("https://b.example:8443/x"))
                .await
        ),
        (StatusCode::OK, "Bearer b-0".to_owned())
    );
    // Scheme and host case and an explicit default port name the same origin.
    assert_eq!(
        body(
            service
                .clone()
                .oneshot(get("HTTPS://A.example:443/y"))
                .await
        ),
        (StatusCode::UNAUTHORIZED, "Bearer a-0".to_owned())
    );
    assert_eq!(
        body(service.clone().oneshot(get("https://a.example/y")).await),
        (StatusCode::OK, "Bearer a-1".to_owned())
    );
    assert_eq!(
        body(
            service
                .clone()
                .oneshot(get("https://b.example:8443/z"))
                .await
        ),
        (StatusCode::OK, "Bearer b-0".to_owned())
    );
    assert_eq!((a.calls(), b.calls()), (2, 1));
    assert_eq!(
        layer
            .cache("https://a.example")
            .unwrap()
            .stats()
            .invalidations,
        1
    );
    assert_eq!(
        layer
            .cache("https://b.example:8443")
            .unwrap()
            .stats()
            .invalidations,
        0
    );
    assert_eq!(seen.sensitive.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn requests_without_a_route_are_refused_or_sent_without_a_token_as_chosen() {
    let (layer, a, b) = two_routes();
    let seen = Seen::default();
    let service = layer.clone().layer(ok_api(seen.clone()));
    let mut host_mismatch = get("https://a.example/x");
    host_mismatch
        .headers_mut()
        .insert(http::header::HOST, "b.example".parse().unwrap());
    for (request, kind) in [
        // Another port of a routed host is another origin.
        (
            get("https://b.example/x"),
            DestinationErrorKind::HostNotAllowed,
        ),
        (
            get("http://a.example/x"),
            DestinationErrorKind::HostNotAllowed,
        ),
        (
            get("https://c.example/x"),
            DestinationErrorKind::HostNotAllowed,
        ),
        // A path-only URI names no origin to route by.
        (get("/x"), DestinationErrorKind::HostNotAllowed),
        (host_mismatch, DestinationErrorKind::HostMismatch),
    ] {
        match service.clone().oneshot(request).await {
            Err(Error::Destination(e)) => assert_eq!(e.kind(), kind),
            other => panic!("expected {kind:?}, got {other:?}"),
        }
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0, "nothing was sent");
    assert_eq!((a.calls(), b.calls()), (0, 0), "no token was fetched");

    let service = layer
        .other_hosts(OtherHosts::SendWithoutToken)
        .layer(ok_api(seen.clone()));
    let response = service.oneshot(get("https://c.example/x")).await.unwrap();
    assert_eq!(response.body(), "", "sent without a token");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
    assert_eq!((a.calls(), b.calls()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_plain_http_route_needs_loopback_or_allow_insecure_http() {
    let source = Scripted::numbered(SECOND, 60 * MINUTE);
    // One cache for two origins: the same token for both.
    let cache = TokenCache::new(source.clone());
    let layer = BearerTokenLayer::routes()
        .route("http://api.internal.example", cache.clone())
        .unwrap()
        .route("http://127.0.0.1:8080", cache.clone())
        .unwrap()
        .route("http://[::1]:8080", cache)
        .unwrap();
    let service = layer.clone().layer(ok_api(Seen::default()));
    match service
        .clone()
        .oneshot(get("http://api.internal.example/x"))
        .await
    {
        Err(Error::Destination(e)) => assert_eq!(e.kind(), DestinationErrorKind::InsecureScheme),
        other => panic!("expected InsecureScheme, got {other:?}"),
    }
    // As written, and by the origin's rules: another spelling of the IPv6 address, user
    // information (which says nothing about where the request goes).
    for uri in [
        "http://127.0.0.1:8080/x",
        "http://[0:0::1]:8080/x",
        "http://user@127.0.0.1:8080/x",
    ] {
        let response = service.clone().oneshot(get(uri)).await.unwrap();
        assert_eq!(response.body(), "Bearer token-0", "{uri}");
    }

    let service = layer
        .allow_insecure_http(true)
        .layer(ok_api(Seen::default()));
    let response = service
        .oneshot(get("http://api.internal.example/x"))
        .await
        .unwrap();
    assert_eq!(
        response.body(),
        "Bearer token-0",
        "the shared cache's token"
    );
    assert_eq!(source.calls(), 1);
}

#[test]
fn bad_and_duplicate_origins_are_refused_when_the_layer_is_built() {
    let cache = || {
        TokenCache::new(tower_bearer::StaticToken::new(tower_bearer::Token::new(
            "t",
        )))
    };
    for bad in [
        "api.example",
        "https://user:pw@api.example",
        "ftp://api.example",
        "",
    ] {
        let error = BearerTokenLayer::routes()
            .route(bad, cache())
            .expect_err(bad);
        assert!(!error.to_string().is_empty());
    }
    let error = BearerTokenLayer::routes()
        .route("https://api.example", cache())
        .unwrap()
        .route("https://API.example:443/v1", cache())
        .expect_err("the same origin twice");
    assert!(error.to_string().contains("has a route already"), "{error}");
}
