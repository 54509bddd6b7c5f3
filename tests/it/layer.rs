//! What the layer does to requests: the header, where it may go, what it keeps of the inner
//! service, and what it never shows.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::common::*;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};
use tower_bearer::error::DestinationErrorKind;
use tower_bearer::{
    BearerToken, BearerTokenLayer, BoxTokenSource, Error, ExistingAuthorization, OtherHosts,
    StaticToken, Token, TokenCache, TokenError, TokenErrorKind, TokenSource, token_source_fn,
};

const SECRET: &str = "eyJhbGciOiJSUzI1NiJ9.SECRET-PAYLOAD.SECRET-SIGNATURE";
crate::known_secrets!("layer.rs SECRET" => SECRET);

fn secret_layer() -> BearerTokenLayer {
    BearerTokenLayer::new(StaticToken::new(
        Token::new(SECRET).with_expires_in(Duration::from_secs(3600)),
    ))
}

#[tokio::test]
async fn sets_a_sensitive_bearer_header() {
    let seen = Seen::default();
    let service = ServiceBuilder::new()
        .layer(secret_layer())
        .service(ok_api(seen.clone()));
    let response = service.oneshot(get("https://api.example/")).await.unwrap();
    assert_eq!(response.body(), &format!("Bearer {SECRET}"));
    assert_eq!(seen.sensitive.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_request_debug_shows_no_token() {
    let service = secret_layer().layer(service_fn(|req: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(format!("{req:?}")))
    }));
    let debug = service.oneshot(get("https://api.example/")).await.unwrap();
    assert!(debug.body().contains("authorization"));
    assert!(!debug.body().contains("SECRET"), "{}", debug.body());
}

#[tokio::test]
async fn existing_authorization_is_overwritten_by_default() {
    let service = secret_layer().layer(ok_api(Seen::default()));
    let mut request = get("https://api.example/");
    request
        .headers_mut()
        .insert(AUTHORIZATION, "Bearer inbound-user-token".parse().unwrap());
    request
        .headers_mut()
        .append(AUTHORIZATION, "Basic second".parse().unwrap());
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.body(), &format!("Bearer {SECRET}"));
}

#[tokio::test]
async fn existing_authorization_can_be_kept() {
    let layer = secret_layer().existing_authorization(ExistingAuthorization::Keep);
    let service = layer.layer(api(Seen::default(), |_| StatusCode::UNAUTHORIZED));
    let mut request = get("https://api.example/");
    request
        .headers_mut()
        .insert(AUTHORIZATION, "Basic dXNlcjpwdw==".parse().unwrap());
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.body(), "Basic dXNlcjpwdw==");
    // The 401 was for the caller's header, not our token: nothing to invalidate (nor fetched).
    assert_eq!(layer.cache().stats().invalidations, 0);
    assert_eq!(layer.cache().stats().fetches, 0);
    // Requests without a header still get ours.
    let response = service.oneshot(get("https://api.example/")).await.unwrap();
    assert_eq!(response.body(), &format!("Bearer {SECRET}"));
}

#[tokio::test]
async fn plain_http_is_refused_before_any_token_is_fetched() {
    let seen = Seen::default();
    let layer = secret_layer();
    let service = layer.layer(ok_api(seen.clone()));
    let err = service
        .clone()
        .oneshot(get("http://api.example.com/items"))
        .await
        .unwrap_err();
    let Error::Destination(err) = err else {
        panic!("expected a destination error, got {err:?}");
    };
    assert_eq!(err.kind(), DestinationErrorKind::InsecureScheme);
    assert_eq!(err.host(), "api.example.com");
    assert!(err.to_string().contains("allow_insecure_http"));
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        0,
        "the request was not sent"
    );
    assert_eq!(layer.cache().stats().fetches, 0);

    // Loopback is fine, and so is any host once allowed.
    for uri in [
        "http://localhost:8080/",
        "http://127.0.0.1/",
        "http://[::1]/",
    ] {
        service.clone().oneshot(get(uri)).await.unwrap();
    }
    let insecure = secret_layer()
        .allow_insecure_http(true)
        .layer(ok_api(seen.clone()));
    insecure
        .oneshot(get("http://api.example.com/"))
        .await
        .unwrap();
}

#[tokio::test]
async fn allow_list_rejects_or_skips_other_hosts() {
    let seen = Seen::default();
    let layer = secret_layer()
        .allowed_hosts(["api.partner.example", "*.kpn.example"])
        .unwrap();
    let service = layer.layer(ok_api(seen.clone()));
    for uri in [
        "https://api.partner.example/x",
        "https://api-prd.kpn.example/x",
    ] {
        let response = service.clone().oneshot(get(uri)).await.unwrap();
        assert_eq!(response.body(), &format!("Bearer {SECRET}"), "{uri}");
    }
    let err = service
        .clone()
        .oneshot(get("https://attacker.example/"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Destination(e) if e.kind() == DestinationErrorKind::HostNotAllowed)
    );
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);

    let skipping = layer
        .other_hosts(OtherHosts::SendWithoutToken)
        .layer(ok_api(seen.clone()));
    let response = skipping
        .oneshot(get("https://public.example/"))
        .await
        .unwrap();
    assert_eq!(response.body(), "", "sent without a token");
}

#[derive(Debug)]
struct InnerError;

impl std::fmt::Display for InnerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("inner failed")
    }
}

impl std::error::Error for InnerError {}

#[tokio::test]
async fn the_inner_error_is_kept() {
    let service = secret_layer().layer(service_fn(|_req: Request<()>| async {
        Err::<Response<()>, _>(InnerError)
    }));
    let err = service
        .oneshot(get("https://api.example/"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Service(InnerError)));
    // And it converts into tower's BoxError for use with other layers.
    let boxed: tower::BoxError = err.into();
    assert!(boxed.to_string().contains("inner failed"));
}

#[tokio::test(start_paused = true)]
async fn waiting_requests_use_a_ready_service() {
    // ConcurrencyLimit panics if `call` comes without a successful `poll_ready`: the layer must
    // hand the ready instance to the waiting request, not a fresh clone.
    let source = Scripted::numbered(Duration::from_millis(100), Duration::from_secs(3600));
    let service = ServiceBuilder::new()
        .layer(BearerTokenLayer::new(source.clone()))
        .concurrency_limit(1)
        .service(ok_api(Seen::default()));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let service = service.clone();
        tasks.push(tokio::spawn(service.oneshot(get("https://api.example/"))));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().body(), "Bearer token-0");
    }
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn max_wait_bounds_a_request_and_the_fetch_goes_on() {
    // The token endpoint takes 12 s; the layer waits 2 s at most.
    let source = Scripted::numbered(Duration::from_secs(12), Duration::from_secs(3600));
    let service = BearerTokenLayer::new(source.clone())
        .max_wait(Duration::from_secs(2))
        .layer(ok_api(Seen::default()));
    let started = tokio::time::Instant::now();
    let err = service
        .clone()
        .oneshot(get("https://api.example/"))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    let Error::Token(err) = err else {
        panic!("expected a token error, got {err:?}")
    };
    assert_eq!(err.kind(), TokenErrorKind::Timeout);
    assert!(
        err.to_string()
            .contains("no token within 2s, the longest wait (`max_wait`)"),
        "{err}"
    );
    // The fetch went on: a request made once it is done gets its token, with no new fetch.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let response = service.oneshot(get("https://api.example/")).await.unwrap();
    assert_eq!(response.body(), "Bearer token-0");
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_longer_max_wait_on_the_layer_waits_for_a_slow_fetch() {
    // The cache would give up at its default 10 s; the layer's 25 s replaces it, and the
    // cache's fetch timeout of 30 s lets the 20 s fetch finish.
    let source = Scripted::numbered(Duration::from_secs(20), Duration::from_secs(3600));
    let cache = TokenCache::builder(source.clone())
        .fetch_timeout(Duration::from_secs(30))
        .build();
    let service = BearerTokenLayer::from_cache(cache)
        .max_wait(Duration::from_secs(25))
        .layer(ok_api(Seen::default()));
    let started = tokio::time::Instant::now();
    let response = service.oneshot(get("https://api.example/")).await.unwrap();
    assert_eq!(response.body(), "Bearer token-0");
    assert_eq!(started.elapsed(), Duration::from_secs(20));
}

#[tokio::test]
async fn works_with_tower_layers_around_and_inside() {
    let service = ServiceBuilder::new()
        .timeout(Duration::from_secs(5))
        .layer(secret_layer())
        .buffer(16)
        .service(ok_api(Seen::default()));
    let response = service.oneshot(get("https://api.example/")).await.unwrap();
    assert_eq!(response.body(), &format!("Bearer {SECRET}"));
}

#[tokio::test]
async fn boxed_sources_are_chosen_at_run_time() {
    for (name, expected) in [("static", "Bearer from-static"), ("fn", "Bearer from-fn")] {
        let source: BoxTokenSource = match name {
            "static" => StaticToken::new(Token::new("from-static")).boxed(),
            _ => token_source_fn(|| async { Ok(Token::new("from-fn")) }).boxed(),
        };
        let service = BearerTokenLayer::new(source).layer(ok_api(Seen::default()));
        let response = service.oneshot(get("https://api.example/")).await.unwrap();
        assert_eq!(response.body(), expected);
    }
}

#[tokio::test]
async fn source_errors_reach_the_caller_typed() {
    let source = token_source_fn(|| async {
        Err::<Token, _>(
            TokenError::new(
                TokenErrorKind::CredentialsRejected,
                "client authentication failed",
            )
            .with_status(StatusCode::BAD_REQUEST)
            .with_hint("check the client id and secret"),
        )
    });
    let service = BearerTokenLayer::new(source).layer(ok_api(Seen::default()));
    let err = service
        .oneshot(get("https://api.example/"))
        .await
        .unwrap_err();
    let token_error = err.token_error().expect("a token error");
    assert_eq!(token_error.kind(), TokenErrorKind::CredentialsRejected);
    assert_eq!(token_error.status(), Some(StatusCode::BAD_REQUEST));
    assert!(err.to_string().contains("check the client id and secret"));
}

#[test]
fn outside_a_runtime_a_cold_cache_is_a_clear_error() {
    let mut service = BearerToken::new(
        ok_api(Seen::default()),
        TokenCache::new(StaticToken::new(Token::new(SECRET))),
    );
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    let mut future = std::pin::pin!(service.call(get("https://api.example/")));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Err(Error::Token(e))) => {
            assert_eq!(e.kind(), TokenErrorKind::Configuration);
            assert!(e.to_string().contains("Tokio runtime"));
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn debug_of_every_public_type_shows_no_secret() {
    let layer = secret_layer();
    let mut service = layer.layer(ok_api(Seen::default()));
    service
        .ready()
        .await
        .unwrap()
        .call(get("https://api.example/"))
        .await
        .unwrap();
    let token = layer.cache().token().await.unwrap();
    let future = service.call(get("https://api.example/"));
    let builder = TokenCache::builder(StaticToken::new(Token::new(SECRET)));
    let error: Error<InnerError> = Error::Token(TokenError::new(TokenErrorKind::Other, "x"));
    let debug = [
        format!("{layer:?}"),
        format!("{:?}", layer.cache()),
        format!("{:?}", layer.cache().stats()),
        format!("{token:?}"),
        format!("{}", token.fingerprint()),
        format!("{:?}", token.header_value().unwrap()),
        format!("{:?}", StaticToken::new(token.clone())),
        format!("{:?}", StaticToken::new(token.clone()).boxed()),
        format!("{:?}", token_source_fn(|| async { Ok(Token::new(SECRET)) })),
        format!("{builder:?}"),
        format!("{future:?}"),
        format!("{error:?} {error}"),
    ];
    for text in debug {
        assert!(!text.contains("SECRET"), "secret in {text}");
    }
    #[derive(Debug)]
    struct Inner;
    assert!(!format!("{:?}", layer.layer(Inner)).contains("SECRET"));
    drop(future.await);
}

/// With an allow-list, the `Host` header must agree with the URI; an origin-form request is
/// judged by its `Host`; without `Host` (tonic) it still works.
#[tokio::test]
async fn a_host_header_that_disagrees_with_the_uri_gets_no_token() {
    let seen = Seen::default();
    let service = secret_layer()
        .allowed_hosts(["api.partner.example"])
        .unwrap()
        .layer(ok_api(seen.clone()));
    let with_host = |uri: &str, host: &str| {
        let mut request = get(uri);
        request
            .headers_mut()
            .insert(http::header::HOST, host.parse().unwrap());
        request
    };
    for (request, kind) in [
        (
            with_host("https://api.partner.example/x", "attacker.example"),
            DestinationErrorKind::HostMismatch,
        ),
        (
            with_host("https://api.partner.example/x", "api.partner.example:8443"),
            DestinationErrorKind::HostMismatch,
        ),
        (
            with_host("/x", "attacker.example"),
            DestinationErrorKind::HostNotAllowed,
        ),
        // The first agrees, a second does not: a proxy that routes by the last would take
        // the token there.
        (
            {
                let mut request = with_host("https://api.partner.example/x", "api.partner.example");
                request
                    .headers_mut()
                    .append(http::header::HOST, "attacker.example".parse().unwrap());
                request
            },
            DestinationErrorKind::HostMismatch,
        ),
    ] {
        let err = service.clone().oneshot(request).await.unwrap_err();
        assert!(
            matches!(&err, Error::Destination(e) if e.kind() == kind),
            "{err}"
        );
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
    for request in [
        with_host("https://api.partner.example/x", "API.partner.example:443"),
        with_host("/x", "api.partner.example"),
        get("/x"),
    ] {
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.body(), &format!("Bearer {SECRET}"));
    }
}
