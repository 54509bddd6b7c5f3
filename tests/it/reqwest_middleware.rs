//! `reqwest_auth::BearerTokenMiddleware` in a `reqwest_middleware` client, against real
//! loopback servers: the token on `client.get(url).send()`, one fetch for concurrent sends,
//! the `401` (dropped token, one replay of a `.json()` request, a streaming body returned as it
//! came), the destination policy, reqwest's redirects, `reqwest-retry` around it, typed errors
//! and no secret in `Debug` or `Display`.

#![cfg(feature = "reqwest-middleware")]

crate::known_secrets!(
    "reqwest_middleware.rs own token" => OWN_TOKEN,
    "reqwest_middleware.rs URL password" => URL_PASSWORD,
);

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use ::reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Error};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response as AxumResponse};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use tower_bearer::error::DestinationErrorKind;
use tower_bearer::redirect::{CrossOriginRedirects, RedirectLocation};
use tower_bearer::replay::TokenRejected;
use tower_bearer::reqwest_auth::BearerTokenMiddleware;
use tower_bearer::{
    DestinationError, ExistingAuthorization, OtherHosts, Token, TokenCache, TokenError,
    TokenErrorKind, TokenSource,
};

const OWN_TOKEN: &str = "own-token-7c1d9e";
const URL_PASSWORD: &str = "url-pa55word-4b8f";

/// What a server saw of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: String,
    path: String,
    /// `Authorization`, or "".
    auth: String,
    body: String,
}

/// A loopback server that records every request and answers as its query says:
/// `status=N` (default 200), `to=URL` (a `Location`), `refuse=TOKEN` (`401` to
/// `Bearer TOKEN`), `fail=N` (`503` to the first N requests that ask).
#[derive(Clone, Default)]
struct Server {
    log: Arc<Mutex<Vec<Seen>>>,
    failed: Arc<AtomicUsize>,
}

async fn handle(
    State(server): State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> AxumResponse {
    let query = uri.query().unwrap_or("").as_bytes();
    let param = |name: &str| {
        form_urlencoded::parse(query)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    if let Some((_, credentials)) = auth.split_once(' ') {
        capture::register(
            "credentials received by a reqwest_middleware.rs server",
            credentials,
        );
    }
    server.log.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        auth: auth.clone(),
        body,
    });
    if let Some(fail) = param("fail").map(|n| n.parse::<usize>().unwrap())
        && server.failed.fetch_add(1, Ordering::SeqCst) < fail
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(refused) = param("refuse")
        && auth == format!("Bearer {refused}")
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let status = param("status").map_or(200, |s| s.parse().unwrap());
    let status = StatusCode::from_u16(status).unwrap();
    match param("to") {
        Some(to) => (status, [("location", to)]).into_response(),
        None => status.into_response(),
    }
}

impl Server {
    /// Starts a server; returns it and its port.
    async fn start() -> (Self, u16) {
        let server = Self::default();
        let app = Router::new().fallback(handle).with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (server, port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// The `Authorization` of each request, in order.
    fn auths(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.auth).collect()
    }
}

/// A `reqwest_middleware` client with `middlewares` in order (reqwest's default redirects).
fn client_with(build: impl FnOnce(ClientBuilder) -> ClientBuilder) -> ClientWithMiddleware {
    // This crate's reqwest has no crypto provider of its own (`rustls-no-provider`).
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    build(ClientBuilder::new(reqwest::Client::new())).build()
}

fn with(auth: BearerTokenMiddleware) -> ClientWithMiddleware {
    client_with(|b| b.with(auth))
}

/// The error our middleware put into `Error::Middleware`, if it is a `T`.
fn ours<T: std::error::Error + Send + Sync + 'static>(error: &Error) -> Option<&T> {
    match error {
        Error::Middleware(e) => e.downcast_ref::<T>(),
        Error::Reqwest(_) => None,
    }
}

/// A token source that hands out `gated-token-N` only once the test opens the gate.
#[derive(Clone)]
struct Gated {
    calls: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl Gated {
    fn closed() -> Self {
        Self {
            calls: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    fn open(&self) {
        self.gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS);
    }
}

impl TokenSource for Gated {
    async fn token(&self) -> Result<Token, TokenError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let _open = self.gate.acquire().await.unwrap();
        let token = format!("gated-token-{n}");
        capture::register("gated token", &token);
        Ok(Token::new(token).with_expires_in(60 * MINUTE))
    }
}

#[tokio::test]
async fn concurrent_sends_share_one_fetch_and_carry_its_token() {
    let (server, port) = Server::start().await;
    let source = Gated::closed();
    let auth = BearerTokenMiddleware::new(source.clone());
    let cache = auth.cache().clone();
    let client = with(auth);
    let sends: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .get(format!("http://127.0.0.1:{port}/v1/items/{i}"))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    // Every send is waiting for the one fetch before the source may answer.
    for _ in 0..100_000 {
        if cache.stats().waits == 20 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(cache.stats().waits, 20);
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    source.open();
    for send in sends {
        assert_eq!(send.await.unwrap().unwrap(), StatusCode::OK);
    }
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().fetches, 1);
    assert_eq!(server.auths(), vec!["Bearer gated-token-0".to_owned(); 20]);
    // Later sends take the cached token.
    let status = client
        .get(format!("http://127.0.0.1:{port}/v1/items"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.auths().len(), 21);
    assert_eq!(cache.stats().fetches, 1);
}

#[tokio::test]
async fn a_401_drops_the_token_and_a_json_request_is_replayed_once_with_the_next() {
    let (server, port) = Server::start().await;
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let auth = BearerTokenMiddleware::new(source.clone()).replay_unauthorized(true);
    let cache = auth.cache().clone();
    let client = with(auth);
    let url = format!("http://127.0.0.1:{port}/v1/orders?refuse=token-0");
    let response = client
        .post(&url)
        .json(&serde_json::json!({ "item": 42 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = r#"{"item":42}"#.to_owned();
    let sent = |auth: &str| Seen {
        method: "POST".to_owned(),
        path: "/v1/orders".to_owned(),
        auth: auth.to_owned(),
        body: body.clone(),
    };
    assert_eq!(
        server.seen(),
        [sent("Bearer token-0"), sent("Bearer token-1")]
    );
    assert_eq!(source.calls(), 2);
    assert_eq!(cache.stats().invalidations, 1);
}

#[tokio::test]
async fn without_the_replay_a_401_is_returned_and_the_next_request_has_a_new_token() {
    let (server, port) = Server::start().await;
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let auth = BearerTokenMiddleware::new(source.clone());
    let cache = auth.cache().clone();
    let client = with(auth);
    let url = format!("http://127.0.0.1:{port}/v1/items?refuse=token-0");
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The answer says the token was refused and dropped, as the layer's does.
    let rejected = response.extensions().get::<TokenRejected>().unwrap();
    assert!(rejected.replaced().await);
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.auths(), ["Bearer token-0", "Bearer token-1"]);
    assert_eq!(cache.stats().invalidations, 1);
    assert_eq!(source.calls(), 2);
}

#[tokio::test]
async fn the_replay_happens_once_never_for_403_and_idempotent_only_skips_post() {
    let (server, port) = Server::start().await;
    let base = format!("http://127.0.0.1:{port}");
    // Refused whatever the token: one replay, then the second 401 is returned.
    let client = with(
        BearerTokenMiddleware::new(Scripted::numbered(Duration::ZERO, 60 * MINUTE))
            .replay_unauthorized(true),
    );
    let response = client
        .put(format!("{base}/always?status=401"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.auths(), ["Bearer token-0", "Bearer token-1"]);

    // 403: a new token would not have more rights; no drop, no replay.
    let auth = BearerTokenMiddleware::new(Scripted::numbered(Duration::ZERO, 60 * MINUTE))
        .replay_unauthorized(true);
    let cache = auth.cache().clone();
    let client = with(auth);
    let before = server.seen().len();
    let response = client
        .get(format!("{base}/forbidden?status=403"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(server.seen().len(), before + 1);
    assert_eq!(cache.stats().invalidations, 0);

    // Idempotent only: a POST's 401 is returned (the token is still dropped), a PUT is replayed.
    // (No invalidation cooldown: the PUT's 401 comes right after the POST's.)
    let cache = TokenCache::builder(Scripted::numbered(Duration::ZERO, 60 * MINUTE))
        .invalidation_cooldown(Duration::ZERO)
        .build();
    let client = with(BearerTokenMiddleware::from_cache(cache).replay_idempotent_only(true));
    let before = server.seen().len();
    let response = client
        .post(format!("{base}/orders?refuse=token-0"))
        .body("y")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.seen().len(), before + 1);
    let response = client
        .put(format!("{base}/orders/1?refuse=token-1"))
        .body("z")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = server.seen();
    let put: Vec<_> = seen[before + 1..]
        .iter()
        .map(|s| (s.method.as_str(), s.auth.as_str(), s.body.as_str()))
        .collect();
    assert_eq!(
        put,
        [
            ("PUT", "Bearer token-1", "z"),
            ("PUT", "Bearer token-2", "z")
        ]
    );
}

#[tokio::test]
async fn a_streaming_body_401_is_returned_as_it_came() {
    let (server, port) = Server::start().await;
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let auth = BearerTokenMiddleware::new(source.clone()).replay_unauthorized(true);
    let cache = auth.cache().clone();
    let client = with(auth);
    let chunks = ["chunk-1 ", "chunk-2"].map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c)));
    let response = client
        .post(format!("http://127.0.0.1:{port}/upload?refuse=token-0"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.extensions().get::<TokenRejected>().is_some());
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].auth, "Bearer token-0");
    assert_eq!(seen[0].body, "chunk-1 chunk-2");
    // The refused token is gone all the same: the next request carries the next one.
    assert_eq!(cache.stats().invalidations, 1);
    client
        .get(format!("http://127.0.0.1:{port}/v1/items"))
        .send()
        .await
        .unwrap();
    assert_eq!(server.auths()[1], "Bearer token-1");
}

#[tokio::test]
async fn the_destination_policy_is_the_layers() {
    let (server, port) = Server::start().await;
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);

    // Plain http to a host that is not loopback: refused, nothing sent, no token fetched.
    let auth = BearerTokenMiddleware::new(source.clone());
    let client = with(auth);
    let error = client
        .get("http://api.partner.example/v1/items")
        .send()
        .await
        .unwrap_err();
    assert!(error.is_middleware());
    let refused = ours::<DestinationError>(&error).unwrap();
    assert_eq!(refused.kind(), DestinationErrorKind::InsecureScheme);
    assert_eq!(source.calls(), 0);

    // An allow-list: the listed host gets the token; another loopback name is refused, or with
    // `SendWithoutToken` sent without it.
    let allowed = BearerTokenMiddleware::new(source.clone())
        .allowed_hosts(["127.0.0.1:*"])
        .unwrap();
    let client = with(allowed.clone());
    client
        .get(format!("http://127.0.0.1:{port}/a"))
        .send()
        .await
        .unwrap();
    let error = client
        .get(format!("http://localhost:{port}/b"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        ours::<DestinationError>(&error).unwrap().kind(),
        DestinationErrorKind::HostNotAllowed
    );
    let client = with(allowed.other_hosts(OtherHosts::SendWithoutToken));
    client
        .get(format!("http://localhost:{port}/c"))
        .send()
        .await
        .unwrap();

    // A named origin: another port of the same host is another origin.
    let named = BearerTokenMiddleware::new(source.clone())
        .origin(&format!("http://127.0.0.1:{port}"))
        .unwrap();
    let error = with(named)
        .get("http://127.0.0.1:1/d")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        ours::<DestinationError>(&error).unwrap().kind(),
        DestinationErrorKind::HostNotAllowed
    );

    // A request with its own `Authorization`: overwritten by default, kept if asked.
    let client = with(BearerTokenMiddleware::new(source.clone()));
    client
        .get(format!("http://127.0.0.1:{port}/e"))
        .bearer_auth(OWN_TOKEN)
        .send()
        .await
        .unwrap();
    let client = with(
        BearerTokenMiddleware::new(source.clone())
            .existing_authorization(ExistingAuthorization::Keep),
    );
    client
        .get(format!("http://127.0.0.1:{port}/f"))
        .bearer_auth(OWN_TOKEN)
        .send()
        .await
        .unwrap();

    let seen: Vec<_> = server
        .seen()
        .into_iter()
        .map(|s| (s.path, s.auth))
        .collect();
    let own = format!("Bearer {OWN_TOKEN}");
    assert_eq!(
        seen,
        [
            ("/a".to_owned(), "Bearer token-0".to_owned()),
            ("/c".to_owned(), String::new()),
            ("/e".to_owned(), "Bearer token-1".to_owned()),
            ("/f".to_owned(), own),
        ]
    );
}

#[tokio::test]
async fn reqwest_drops_the_token_on_a_cross_origin_redirect_and_its_401_keeps_the_token() {
    let (a, a_port) = Server::start().await;
    let (b, b_port) = Server::start().await;
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let auth = BearerTokenMiddleware::new(source.clone()).replay_unauthorized(true);
    let cache = auth.cache().clone();
    let client = with(auth);
    let redirect = |to: &str| {
        let to: String = form_urlencoded::byte_serialize(to.as_bytes()).collect();
        format!("http://127.0.0.1:{a_port}/start?status=307&to={to}")
    };
    // Same origin: followed with the token.
    let response = client
        .get(redirect(&format!("http://127.0.0.1:{a_port}/landing")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(a.auths(), ["Bearer token-0", "Bearer token-0"]);
    // Another port, another host name: followed without it; their 401 says nothing of our
    // token, which is neither dropped nor replayed.
    for target in [
        format!("http://127.0.0.1:{b_port}/landing?status=401"),
        format!("http://localhost:{b_port}/landing?status=401"),
    ] {
        let response = client.get(redirect(&target)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.extensions().get::<TokenRejected>().is_none());
    }
    assert_eq!(b.auths(), ["", ""]);
    assert_eq!(cache.stats().invalidations, 0);
    assert_eq!(source.calls(), 1);
}

#[tokio::test]
async fn a_cross_origin_redirect_that_comes_back_is_refused_or_loses_its_location() {
    let (a, a_port) = Server::start().await;
    let (b, b_port) = Server::start().await;
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let no_redirects = || {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let target = format!("http://127.0.0.1:{b_port}/landing");
    let to: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    let url = format!("http://127.0.0.1:{a_port}/start?status=302&to={to}");
    let auth = BearerTokenMiddleware::new(Scripted::numbered(Duration::ZERO, 60 * MINUTE));
    let client = ClientBuilder::new(no_redirects())
        .with(auth.clone())
        .build();
    let error = client.get(&url).send().await.unwrap_err();
    let refused = ours::<DestinationError>(&error).unwrap();
    assert_eq!(refused.kind(), DestinationErrorKind::CrossOriginRedirect);
    let client = ClientBuilder::new(no_redirects())
        .with(auth.cross_origin_redirects(CrossOriginRedirects::HideLocation))
        .build();
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(response.headers().get("location").is_none());
    let hidden = response.extensions().get::<RedirectLocation>().unwrap();
    assert_eq!(hidden.location(), target.as_str());
    assert_eq!(a.seen().len(), 2);
    assert!(b.seen().is_empty());
}

#[tokio::test]
async fn composed_with_reqwest_retry() {
    let (server, port) = Server::start().await;
    let retry = || {
        RetryTransientMiddleware::new_with_policy(
            ExponentialBackoff::builder()
                .retry_bounds(Duration::from_millis(1), Duration::from_millis(2))
                .build_with_max_retries(2),
        )
    };
    // Retry outside: each attempt takes the current token through the middleware.
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let auth = BearerTokenMiddleware::new(source.clone()).replay_unauthorized(true);
    let cache = auth.cache().clone();
    let client = client_with(|b| b.with(retry()).with(auth));
    let response = client
        .post(format!("http://127.0.0.1:{port}/flaky?fail=2"))
        .json(&serde_json::json!({ "n": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.auths(), vec!["Bearer token-0"; 3]);
    assert_eq!(cache.stats().fetches, 1);
    // A 401 is not transient for the retry; the middleware replays it once.
    let response = client
        .get(format!("http://127.0.0.1:{port}/refused?refuse=token-0"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(&server.auths()[3..], ["Bearer token-0", "Bearer token-1"]);

    // A token failure is fatal for the retry, which wraps it in its `RetryError`.
    let client = client_with(|b| {
        b.with(retry())
            .with(BearerTokenMiddleware::new(Scripted::failing(
                Duration::ZERO,
            )))
    });
    let error = client
        .get(format!("http://127.0.0.1:{port}/x"))
        .send()
        .await
        .unwrap_err();
    let Some(
        reqwest_retry::RetryError::Error(inner)
        | reqwest_retry::RetryError::WithRetries { err: inner, .. },
    ) = ours::<reqwest_retry::RetryError>(&error)
    else {
        panic!("expected a RetryError, got {error:?}");
    };
    assert_eq!(
        ours::<TokenError>(inner).unwrap().kind(),
        TokenErrorKind::Unavailable
    );

    // Retry inside: the attempts carry the token the middleware put in.
    let (server, port) = Server::start().await;
    let source = Scripted::numbered(Duration::ZERO, 60 * MINUTE);
    let client = client_with(|b| {
        b.with(BearerTokenMiddleware::new(source.clone()))
            .with(retry())
    });
    let response = client
        .get(format!("http://127.0.0.1:{port}/flaky?fail=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.auths(), ["Bearer token-0", "Bearer token-0"]);
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn token_failures_are_typed_errors_to_downcast() {
    // The source fails: the request is not sent, the error is the cache's `TokenError`.
    let client = with(BearerTokenMiddleware::new(Scripted::failing(
        Duration::ZERO,
    )));
    let error = client
        .get("https://api.partner.example/v1/items")
        .send()
        .await
        .unwrap_err();
    let token_error = ours::<TokenError>(&error).unwrap();
    assert_eq!(token_error.kind(), TokenErrorKind::Unavailable);
    assert_eq!(error.to_string(), token_error.to_string());

    // No token within `max_wait`: a `Timeout` that names the limit.
    let source = Gated::closed();
    let client = with(BearerTokenMiddleware::new(source).max_wait(Duration::from_secs(2)));
    let error = client
        .get("https://api.partner.example/v1/items")
        .send()
        .await
        .unwrap_err();
    let token_error = ours::<TokenError>(&error).unwrap();
    assert_eq!(token_error.kind(), TokenErrorKind::Timeout);
    assert!(error.to_string().contains("max_wait of 2s"), "{error}");
}

#[tokio::test]
async fn no_secret_in_debug_or_display() {
    let (_server, port) = Server::start().await;
    let token = "mw-secret-token-5a6b7c";
    capture::register("reqwest_middleware.rs token", token);
    let cache = TokenCache::new(tower_bearer::StaticToken::new(
        Token::new(token).with_expires_in(60 * MINUTE),
    ));
    let auth = BearerTokenMiddleware::from_cache(cache.clone()).replay_unauthorized(true);
    let client = with(auth.clone());
    client
        .get(format!("http://127.0.0.1:{port}/v1/items"))
        .send()
        .await
        .unwrap();
    let debug = format!("{auth:?}");
    assert!(!debug.contains(token), "{debug}");
    let fingerprint = cache.token().await.unwrap().fingerprint().to_string();
    assert!(debug.contains(&fingerprint), "{debug}");

    // A refused URL with user information: the error names the host only.
    let error = client
        .get(format!("http://user:{URL_PASSWORD}@api.partner.example/v1"))
        .send()
        .await
        .unwrap_err();
    for shown in [
        format!("{error}"),
        format!("{error:?}"),
        format!("{error:#}"),
        format!("{:?}", ours::<DestinationError>(&error).unwrap()),
    ] {
        assert!(!shown.contains(URL_PASSWORD), "{shown}");
        assert!(!shown.contains(token), "{shown}");
    }
    assert!(
        format!("{error}").contains("api.partner.example"),
        "{error}"
    );
}

/// The example runs against its own emulator: three GETs with one token, then a revocation
/// whose `401` on a `.json()` POST is replayed with a second token.
#[cfg(feature = "reqwest")]
#[tokio::test]
async fn the_example_runs() {
    let output = tokio::process::Command::new(crate::common::example_binary("reqwest_middleware"))
        .env_clear()
        .output()
        .await
        .unwrap();
    capture::record_output("reqwest_middleware example stdout", &output.stdout);
    capture::record_output("reqwest_middleware example stderr", &output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for i in 0..3 {
        assert!(
            stdout.contains(&format!("GET items/{i}: 200 OK")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("POST orders after a revocation: 200 OK"),
        "{stdout}"
    );
    assert!(stdout.contains("token requests: 2;"), "{stdout}");
    assert!(stdout.contains("sha256:"), "{stdout}");
}
