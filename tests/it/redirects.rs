//! Redirects in every composition: the token reaches only the origin the caller addressed.
//!
//! Two real loopback servers, A (where requests are addressed) and B (another port; also
//! reached as `localhost`, another host), record every request and the `Authorization` it
//! carried. A redirects to B (or to itself); B answers 200 or 401. The client is hyper-util's,
//! with tower-http's `FollowRedirect` outside or inside the bearer layer, with and without
//! `PinOrigin`, with `Retry` and the 401 replay around it.

#![cfg(feature = "follow-redirect")]

crate::known_secrets!("redirects.rs presigned query" => "presigned-secret-0a1b2c3d");

use std::error::Error as StdError;
use std::future::Ready;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response as AxumResponse};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_bearer::error::{DestinationError, DestinationErrorKind};
use tower_bearer::redirect::{CrossOriginRedirects, PinOrigin, RedirectLocation};
use tower_bearer::replay::ReplayUnauthorizedLayer;
use tower_bearer::{BearerTokenLayer, TokenCache};
use tower_http::follow_redirect::FollowRedirectLayer;
use tower_http::follow_redirect::policy::{self, PolicyExt};

const PRESIGNED: &str = "presigned-secret-0a1b2c3d";

/// What one server saw: (path, `Authorization` or "").
type Log = Arc<Mutex<Vec<(String, String)>>>;

#[derive(Clone)]
struct Server {
    log: Log,
}

async fn handle(
    State(server): State<Server>,
    uri: axum::http::Uri,
    headers: HeaderMap,
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
            "credentials received by a redirect test server",
            credentials,
        );
    }
    server
        .log
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), auth));
    let status = param("status").map_or(200, |s| s.parse().unwrap());
    let status = StatusCode::from_u16(status).unwrap();
    match param("to") {
        Some(to) => (status, [("location", to)]).into_response(),
        None => status.into_response(),
    }
}

async fn start_server() -> (u16, Log) {
    let log = Log::default();
    let app = Router::new()
        .fallback(handle)
        .with_state(Server { log: log.clone() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, log)
}

struct Servers {
    a: u16,
    a_log: Log,
    b: u16,
    b_log: Log,
}

impl Servers {
    async fn start() -> Self {
        let (a, a_log) = start_server().await;
        let (b, b_log) = start_server().await;
        Self { a, a_log, b, b_log }
    }

    /// A URL on A that answers `status` with `Location: to`.
    fn redirect(&self, status: u16, to: &str) -> String {
        let to: String = form_urlencoded::byte_serialize(to.as_bytes()).collect();
        format!("http://127.0.0.1:{}/start?status={status}&to={to}", self.a)
    }

    /// The cross-origin targets: B by port, B by another host name.
    fn elsewhere(&self, status: u16) -> [String; 2] {
        [
            format!(
                "http://127.0.0.1:{}/landing?status={status}&X-Amz-Signature={PRESIGNED}",
                self.b
            ),
            format!(
                "http://localhost:{}/landing?status={status}&X-Amz-Signature={PRESIGNED}",
                self.b
            ),
        ]
    }

    /// Requests B saw that carried a token.
    fn tokens_at_b(&self) -> usize {
        self.b_log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, auth)| !auth.is_empty())
            .count()
    }

    fn b_requests(&self) -> usize {
        self.b_log.lock().unwrap().len()
    }

    fn a_log(&self) -> Vec<(String, String)> {
        self.a_log.lock().unwrap().clone()
    }
}

type Client_ = BoxCloneSyncService<Request<Full<Bytes>>, Response<Incoming>, BoxError>;

fn http_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn cache() -> TokenCache {
    TokenCache::new(Scripted::numbered(Duration::ZERO, 60 * MINUTE))
}

fn bearer(cache: &TokenCache) -> BearerTokenLayer {
    BearerTokenLayer::from_cache(cache.clone())
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::default()).unwrap()
}

/// Sends `GET url` through a clone of `client`.
async fn send<S, B>(client: &S, url: &str) -> Result<S::Response, S::Error>
where
    S: tower::Service<Request<B>> + Clone,
    B: Default,
{
    let request = Request::get(url).body(B::default()).unwrap();
    client.clone().oneshot(request).await
}

/// A client of these layers (outermost first) over hyper-util's, as one type.
macro_rules! stack {
    ($($layer:expr),+ $(,)?) => {
        boxed(ServiceBuilder::new()$(.layer($layer))+.service(http_client()))
    };
}

/// One client type for every composition.
fn boxed<S>(service: S) -> Client_
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<Incoming>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(service.map_err(Into::into))
}

/// The kind of the `DestinationError` somewhere in `err`'s chain.
fn kind(err: &BoxError) -> Option<DestinationErrorKind> {
    destination(err).map(|e| e.kind())
}

/// The `DestinationError` of the layer's error somewhere in `err`'s chain: the layer's error is
/// `Error<E>` with the inner client's error (hyper-util's, reqwest's, a test double's), or
/// `BoxError` when a layer inside boxes it.
fn destination(err: &BoxError) -> Option<&DestinationError> {
    fn ours<'a, E: std::fmt::Debug + std::fmt::Display + 'static>(
        e: &'a (dyn StdError + 'static),
    ) -> Option<&'a DestinationError> {
        e.downcast_ref::<tower_bearer::Error<E>>()?
            .destination_error()
    }
    let mut next: Option<&(dyn StdError + 'static)> = Some(err.as_ref());
    while let Some(e) = next {
        let found = ours::<hyper_util::client::legacy::Error>(e)
            .or_else(|| ours::<BoxError>(e))
            .or_else(|| ours::<std::convert::Infallible>(e));
        #[cfg(feature = "reqwest")]
        let found = found.or_else(|| ours::<reqwest::Error>(e));
        if found.is_some() {
            return found;
        }
        next = e.source();
    }
    None
}

/// The client for each order of FollowRedirect (standard policy) and the bearer layer.
fn follow_outside(cache: &TokenCache) -> Client_ {
    stack!(FollowRedirectLayer::new(), bearer(cache))
}

#[tokio::test]
async fn follow_redirect_outside_refuses_cross_origin_redirects_and_sends_nothing_there() {
    let servers = Servers::start().await;
    let cache = cache();
    let listed = BearerTokenLayer::from_cache(cache.clone())
        .allowed_hosts(["127.0.0.1:*", "localhost:*"])
        .unwrap();
    let clients = [
        follow_outside(&cache),
        stack!(FollowRedirectLayer::new(), listed),
    ];
    for client in clients {
        for status in [301, 302, 303, 307, 308] {
            for target in servers.elsewhere(200) {
                let err = send(&client, &servers.redirect(status, &target))
                    .await
                    .expect_err(&target);
                let refused = destination(&err).expect("a typed destination error");
                assert_eq!(refused.kind(), DestinationErrorKind::CrossOriginRedirect);
                assert_eq!(refused.redirect_status().map(|s| s.as_u16()), Some(status));
                let shown = format!("{err} {err:?}");
                assert!(!shown.contains(PRESIGNED), "{shown}");
                assert!(!shown.contains("/landing"), "{shown}");
                assert!(
                    refused
                        .redirect_origin()
                        .unwrap()
                        .ends_with(&servers.b.to_string())
                );
            }
        }
    }
    assert_eq!(servers.b_requests(), 0);
    // The redirecting server itself got the token each time: it is the addressed origin.
    assert!(
        servers
            .a_log()
            .iter()
            .all(|(_, auth)| auth == "Bearer token-0")
    );
}

#[tokio::test]
async fn locations_that_are_not_provably_same_origin_are_refused() {
    let servers = Servers::start().await;
    let client = follow_outside(&cache());
    for location in [
        format!("//localhost:{}/landing", servers.b),
        "landing".to_owned(),
        format!("https://127.0.0.1:{}/landing", servers.a),
        format!("http://user@127.0.0.1:{}/landing", servers.a),
    ] {
        let err = send(&client, &servers.redirect(302, &location))
            .await
            .expect_err(&location);
        assert_eq!(
            kind(&err),
            Some(DestinationErrorKind::CrossOriginRedirect),
            "{location}"
        );
    }
    assert_eq!(servers.b_requests(), 0);
}

#[tokio::test]
async fn same_origin_redirects_are_followed_with_the_token() {
    let servers = Servers::start().await;
    let client = follow_outside(&cache());
    for location in [
        "/landing".to_owned(),
        format!("http://127.0.0.1:{}/landing", servers.a),
        format!("HTTP://127.0.0.1:{}/landing", servers.a),
    ] {
        let response = send(&client, &servers.redirect(307, &location))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{location}");
    }
    let log = servers.a_log();
    assert_eq!(log.len(), 6);
    assert!(
        log.iter().all(|(_, auth)| auth == "Bearer token-0"),
        "{log:?}"
    );
}

/// `PinOrigin` outside does not switch the guard off: whoever follows the redirect (a policy
/// that stops, an outer follower, the caller) might not carry the pin.
#[tokio::test]
async fn pin_origin_outside_still_refuses_cross_origin_redirects() {
    let servers = Servers::start().await;
    let cache = cache();
    let clients: [Client_; 2] = [
        stack!(
            FollowRedirectLayer::with_policy(PinOrigin::new(policy::Standard::default(),)),
            bearer(&cache)
        ),
        // A policy after the pin that clears extensions, as `FilterCredentials` does.
        stack!(
            FollowRedirectLayer::with_policy(
                PinOrigin::new(policy::Standard::default())
                    .and::<_, (), ()>(policy::FilterCredentials::new()),
            ),
            bearer(&cache)
        ),
    ];
    for client in clients {
        for target in servers.elsewhere(200) {
            let err = send(&client, &servers.redirect(302, &target))
                .await
                .unwrap_err();
            assert_eq!(kind(&err), Some(DestinationErrorKind::CrossOriginRedirect));
        }
    }
    assert_eq!(servers.b_requests(), 0);
}

/// A hop that carries the pin of another origin never gets the token, even if it reaches the
/// layer (here: the caller follows a hidden redirect through a pinned client by hand).
#[tokio::test]
async fn a_pinned_hop_to_another_origin_goes_without_the_token() {
    let servers = Servers::start().await;
    let cache = cache();
    let client = stack!(bearer(&cache).cross_origin_redirects(CrossOriginRedirects::HideLocation));
    let [target, _] = servers.elsewhere(200);
    let response = send(&client, &servers.redirect(302, &target))
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    // The next hop, marked as `PinOrigin` marks it (the mark is only made by the crate; take
    // it from a request that went through a pinned follower).
    let mark = Arc::new(Mutex::new(None));
    let recorder = {
        let mark = Arc::clone(&mark);
        tower::service_fn(move |req: Request<Full<Bytes>>| {
            *mark.lock().unwrap() = req
                .extensions()
                .get::<tower_bearer::redirect::PinnedOrigin>()
                .cloned();
            std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(())))
        })
    };
    ServiceBuilder::new()
        .layer(FollowRedirectLayer::with_policy(PinOrigin::new(
            policy::Standard::default(),
        )))
        .service(recorder)
        .oneshot(get(&servers.redirect(200, "/")))
        .await
        .unwrap();
    let mut hop = get(response
        .extensions()
        .get::<RedirectLocation>()
        .unwrap()
        .location()
        .to_str()
        .unwrap());
    hop.extensions_mut()
        .insert(mark.lock().unwrap().clone().expect("a pin"));
    let response = client.oneshot(hop).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(servers.b_requests(), 1);
    assert_eq!(servers.tokens_at_b(), 0);
}

#[tokio::test]
async fn follow_redirect_inside_never_carries_the_token_to_another_origin() {
    let servers = Servers::start().await;
    let cache = cache();
    // tower-http's standard policy strips `Authorization` on a cross-origin hop; `PinOrigin`
    // does it whatever the wrapped policy does (here one that filters nothing).
    let standard = stack!(bearer(&cache), FollowRedirectLayer::new());
    let pinned_lax = ServiceBuilder::new()
        .layer(bearer(&cache))
        .layer(FollowRedirectLayer::with_policy(PinOrigin::new(
            policy::Limited::default()
                .and::<_, (), ()>(policy::FilterCredentials::new().block_none()),
        )))
        .service(http_client());
    for target in servers.elsewhere(200) {
        let response = send(&standard, &servers.redirect(307, &target))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let response = send(&pinned_lax, &servers.redirect(307, &target))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(servers.b_requests(), 4);
    assert_eq!(servers.tokens_at_b(), 0);
}

#[tokio::test]
async fn a_401_from_a_redirect_target_neither_drops_the_token_nor_is_replayed() {
    let servers = Servers::start().await;
    let cache = cache();
    let inside = stack!(
        ReplayUnauthorizedLayer::new(),
        bearer(&cache),
        FollowRedirectLayer::new()
    );
    let outside = stack!(
        ReplayUnauthorizedLayer::new(),
        FollowRedirectLayer::with_policy(PinOrigin::new(policy::Standard::default(),)),
        bearer(&cache)
    );
    for target in servers.elsewhere(401) {
        let response = send(&inside, &servers.redirect(302, &target))
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        // With the follower outside, the redirect is refused before anything reaches B.
        let err = send(&outside, &servers.redirect(302, &target))
            .await
            .unwrap_err();
        assert_eq!(kind(&err), Some(DestinationErrorKind::CrossOriginRedirect));
    }
    // One request each to B (no replay), none with a token, and the token stays.
    assert_eq!(servers.b_requests(), 2);
    assert_eq!(servers.tokens_at_b(), 0);
    assert_eq!(cache.stats().invalidations, 0);
    assert_eq!(cache.stats().fetches, 1);
}

#[tokio::test]
async fn hide_location_returns_the_redirect_without_its_location() {
    let servers = Servers::start().await;
    let cache = cache();
    let client = stack!(
        FollowRedirectLayer::new(),
        bearer(&cache).cross_origin_redirects(CrossOriginRedirects::HideLocation)
    );
    let [target, _] = servers.elsewhere(200);
    let response = client
        .oneshot(get(&servers.redirect(302, &target)))
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert!(response.headers().get("location").is_none());
    let location = response.extensions().get::<RedirectLocation>().unwrap();
    assert_eq!(location.location(), target.as_str());
    let shown = format!("{location:?}");
    assert!(
        !shown.contains(PRESIGNED) && shown.contains(&servers.b.to_string()),
        "{shown}"
    );
    assert_eq!(servers.b_requests(), 0);
}

/// Retries a request once when its answer is a 401 or an error. Like any retry policy between
/// FollowRedirect and the bearer layer, it must copy the request's extensions: they carry
/// `PinOrigin`'s mark (see `tower_bearer::redirect`).
#[derive(Clone)]
struct RetryOnce(bool);

impl<E> tower::retry::Policy<Request<Full<Bytes>>, Response<Incoming>, E> for RetryOnce {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _req: &mut Request<Full<Bytes>>,
        result: &mut Result<Response<Incoming>, E>,
    ) -> Option<Self::Future> {
        let again = result.as_ref().map_or(true, |r| r.status() == 401);
        (again && !self.0).then(|| {
            self.0 = true;
            std::future::ready(())
        })
    }

    fn clone_request(&mut self, req: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
        let mut clone = Request::new(req.body().clone());
        *clone.uri_mut() = req.uri().clone();
        *clone.headers_mut() = req.headers().clone();
        *clone.extensions_mut() = req.extensions().clone();
        Some(clone)
    }
}

#[tokio::test]
async fn retry_and_replay_in_every_order_never_take_the_token_elsewhere() {
    let servers = Servers::start().await;
    let cache = cache();
    let pin = || FollowRedirectLayer::with_policy(PinOrigin::new(policy::Standard::default()));
    let retry = || tower::retry::RetryLayer::new(RetryOnce(false));
    let orders: Vec<(&str, Client_)> = vec![
        (
            "retry, follow, bearer",
            stack!(retry(), pin(), bearer(&cache)),
        ),
        (
            "follow, retry, bearer",
            stack!(pin(), retry(), bearer(&cache)),
        ),
        (
            "bearer, retry, follow",
            stack!(bearer(&cache), retry(), pin()),
        ),
        (
            "replay, follow, bearer",
            stack!(ReplayUnauthorizedLayer::new(), pin(), bearer(&cache)),
        ),
        (
            "follow, replay, bearer",
            stack!(pin(), ReplayUnauthorizedLayer::new(), bearer(&cache)),
        ),
        (
            "replay, bearer, follow",
            stack!(
                ReplayUnauthorizedLayer::new(),
                bearer(&cache),
                FollowRedirectLayer::new()
            ),
        ),
    ];
    for (order, client) in orders {
        for target in servers.elsewhere(401) {
            match send(&client, &servers.redirect(307, &target)).await {
                // The follower inside the bearer layer: B answers, without the token.
                Ok(response) => assert_eq!(response.status(), 401, "{order}"),
                // The follower outside: the redirect is refused, B sees nothing.
                Err(err) => assert_eq!(
                    kind(&err),
                    Some(DestinationErrorKind::CrossOriginRedirect),
                    "{order}: {err}"
                ),
            }
        }
        assert_eq!(servers.tokens_at_b(), 0, "{order}");
    }
    assert_eq!(cache.stats().invalidations, 0);
    assert_eq!(cache.stats().fetches, 1);
}

/// reqwest follows redirects itself: a user's client strips `Authorization` on a cross-origin
/// hop but loses the final URL when converted to an `http::Response`; `ReqwestService` keeps it
/// in `FinalUri`, so a 401 from the redirect target says nothing about our token. Its default
/// client follows same-origin redirects only, so the layer's guard sees the cross-origin ones.
#[cfg(feature = "reqwest")]
mod reqwest_redirects {
    use super::*;
    use tower_bearer::reqwest_client::ReqwestService;

    #[tokio::test]
    async fn a_users_reqwest_client_never_drops_or_replays_for_a_401_from_elsewhere() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let servers = Servers::start().await;
        let cache = cache();
        let client = ServiceBuilder::new()
            .layer(ReplayUnauthorizedLayer::new())
            .layer(bearer(&cache))
            .service(ReqwestService::new(reqwest::Client::new()));
        for target in servers.elsewhere(401) {
            let response = send::<_, String>(&client, &servers.redirect(302, &target))
                .await
                .unwrap();
            assert_eq!(response.status(), 401);
        }
        assert_eq!(servers.b_requests(), 2);
        assert_eq!(servers.tokens_at_b(), 0);
        assert_eq!(cache.stats().invalidations, 0);
        assert_eq!(cache.stats().fetches, 1);
    }

    #[tokio::test]
    async fn the_default_reqwest_client_stops_at_cross_origin_redirects() {
        let servers = Servers::start().await;
        let cache = cache();
        let client = ServiceBuilder::new()
            .layer(bearer(&cache))
            .service(ReqwestService::with_default_client().unwrap());
        for target in servers.elsewhere(200) {
            let err = send::<_, String>(&client, &servers.redirect(307, &target))
                .await
                .unwrap_err();
            let err: BoxError = err.into();
            assert_eq!(
                kind(&err),
                Some(DestinationErrorKind::CrossOriginRedirect),
                "{err}"
            );
        }
        assert_eq!(servers.b_requests(), 0);
        // Same-origin redirects are followed, with the token; a 401 there is ours.
        let response = send::<_, String>(
            &client,
            &servers.redirect(
                302,
                &format!("http://127.0.0.1:{}/landing?status=401", servers.a),
            ),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 401);
        assert!(
            servers
                .a_log()
                .iter()
                .all(|(_, auth)| auth == "Bearer token-0")
        );
        assert_eq!(cache.stats().invalidations, 1);
    }
}

/// Found by a second reader: a long authority or one with user information lost the request's
/// origin, and a path `Location` with a tab (which URL parsers drop: `/\t/evil` resolves to
/// `//evil`) then passed as same-origin.
mod long_authorities {
    use super::*;
    use tower_bearer::redirect::FinalUri;

    const LONG: &str = "https://a-fairly-ordinary-service-name.eu-central-1.example.com";

    /// An API that records (host, authorization) and answers `/start` with a 302 to
    /// `location`, `/401` with a 401 (with `FinalUri` as a redirect-following transport sets
    /// it), and anything else with 200.
    fn api(
        log: Arc<Mutex<Vec<(String, String)>>>,
        location: &'static str,
    ) -> impl tower::Service<
        Request<Full<Bytes>>,
        Response = Response<String>,
        Error = std::convert::Infallible,
        Future = Ready<Result<Response<String>, std::convert::Infallible>>,
    > + Clone {
        tower::service_fn(move |req: Request<Full<Bytes>>| {
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            log.lock()
                .unwrap()
                .push((req.uri().host().unwrap_or("").to_owned(), auth));
            let mut response = Response::new(String::new());
            match req.uri().path() {
                "/start" => {
                    *response.status_mut() = http::StatusCode::FOUND;
                    response
                        .headers_mut()
                        .insert("location", http::HeaderValue::from_static(location));
                }
                "/401" => {
                    *response.status_mut() = http::StatusCode::UNAUTHORIZED;
                    response
                        .extensions_mut()
                        .insert(FinalUri(req.uri().clone()));
                }
                _ => {}
            }
            std::future::ready(Ok(response))
        })
    }

    #[tokio::test]
    async fn a_tab_in_a_path_location_never_takes_the_token_elsewhere() {
        for base in [
            LONG,
            // Longer than the 62 bytes the layer keeps.
            "https://an-even-longer-service-name-for-the-test.eu-central-1.example.com",
            "https://user@api.example.com",
        ] {
            let log = Arc::default();
            let client = ServiceBuilder::new()
                .layer(FollowRedirectLayer::new())
                .layer(bearer(&cache()))
                .service(api(Arc::clone(&log), "/\t/evil.example/x"));
            let err = client
                .oneshot(get(&format!("{base}/start")))
                .await
                .unwrap_err();
            let err: BoxError = err.into();
            assert_eq!(
                kind(&err),
                Some(DestinationErrorKind::CrossOriginRedirect),
                "{base}"
            );
            let log = log.lock().unwrap();
            assert!(
                log.iter().all(|(host, _)| host != "evil.example"),
                "{log:?}"
            );
        }
    }

    #[tokio::test]
    async fn long_authorities_keep_their_origin() {
        let log = Arc::default();
        let cache = cache();
        let client = ServiceBuilder::new()
            .layer(FollowRedirectLayer::new())
            .layer(bearer(&cache))
            .service(api(
                Arc::clone(&log),
                "https://a-fairly-ordinary-service-name.eu-central-1.example.com:443/next",
            ));
        // An absolute same-origin redirect is followed, with the token.
        let response = send(&client, &format!("{LONG}/start")).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            log.lock()
                .unwrap()
                .iter()
                .all(|(_, auth)| auth == "Bearer token-0")
        );
        // A 401 that says it came from this origin drops the token.
        let response = client.oneshot(get(&format!("{LONG}/401"))).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(cache.stats().invalidations, 1);
    }
}
