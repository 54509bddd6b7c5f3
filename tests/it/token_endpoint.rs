//! Where the client's credentials may go: token URLs with user information are refused without
//! echoing it (every provider and the configuration path), a token answer from anywhere but the
//! token URL's origin is refused, and an oversized answer is refused before its body is read.

crate::known_secrets!(
    "token_endpoint.rs userinfo password" => USERINFO_PASSWORD,
    "token_endpoint.rs userinfo user" => USERINFO_USER,
    "token_endpoint.rs client secret" => CLIENT_SECRET,
    "token_endpoint.rs token issued by the redirect target" => REDIRECT_TARGET_TOKEN,
);

use tower_bearer::TokenErrorKind;
use tower_bearer::config::ProviderConfig;
use tower_bearer::oauth::ServiceTransport;
use tower_bearer::providers::{KontrollePlus, Kpn, ScreeningEagle};

const USERINFO_USER: &str = "userinfo-user-7c1";
const USERINFO_PASSWORD: &str = "Userinfo-Passw0rd-9d4";
const CLIENT_SECRET: &str = "token-endpoint-client-S3cret";
const REDIRECT_TARGET_TOKEN: &str = "issued-by-the-redirect-target-5e0";

type Null = tower::util::ServiceFn<
    fn(
        http::Request<http_body_util::Full<bytes::Bytes>>,
    ) -> std::future::Ready<
        Result<http::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible>,
    >,
>;

/// A transport that is never reached: building fails first.
fn unused() -> ServiceTransport<Null, http_body_util::Full<bytes::Bytes>> {
    fn answer(
        _: http::Request<http_body_util::Full<bytes::Bytes>>,
    ) -> std::future::Ready<
        Result<http::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible>,
    > {
        panic!("no request is sent for a refused configuration")
    }
    ServiceTransport::new(tower::service_fn(answer as fn(_) -> _))
}

/// The spellings of credentials in a URL: plain, percent-encoded, in an http URL.
fn userinfo_urls(path: &str) -> Vec<String> {
    let encoded_user: String = USERINFO_USER.bytes().map(|b| format!("%{b:02X}")).collect();
    let encoded_password: String = USERINFO_PASSWORD
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    vec![
        format!("https://{USERINFO_USER}:{USERINFO_PASSWORD}@login.example{path}"),
        format!("http://{USERINFO_USER}:{USERINFO_PASSWORD}@login.example{path}"),
        format!("http://{USERINFO_USER}:{USERINFO_PASSWORD}@127.0.0.1:9{path}"),
        format!("https://{encoded_user}:{encoded_password}@login.example{path}"),
        format!("https://{USERINFO_PASSWORD}@login.example:8443{path}"),
    ]
}

fn assert_not_shown(what: &str, shown: &str) {
    let encoded: String = USERINFO_PASSWORD
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    for secret in [USERINFO_USER, USERINFO_PASSWORD, &encoded[..12]] {
        assert!(!shown.contains(secret), "{what} shows the user information");
    }
}

#[test]
fn userinfo_in_provider_token_urls_is_refused_and_never_shown() {
    for url in userinfo_urls("/tenant/oauth2/v2.0/token") {
        let kontrolle = KontrollePlus::new()
            .token_url(&url)
            .client_id("id")
            .client_secret(CLIENT_SECRET)
            .app_id_uri("api://x");
        assert_not_shown("KontrollePlus Debug", &format!("{kontrolle:?}"));
        let err = kontrolle.build(unused()).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
        assert_not_shown("KontrollePlus error", &format!("{err} {err:?}"));

        let authority = url.trim_end_matches("/oauth2/v2.0/token");
        let kontrolle = KontrollePlus::new()
            .authority(authority)
            .client_id("id")
            .client_secret(CLIENT_SECRET)
            .app_id_uri("api://x");
        assert_not_shown("KontrollePlus Debug", &format!("{kontrolle:?}"));
        let err = kontrolle.build(unused()).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
        assert_not_shown("KontrollePlus error", &format!("{err} {err:?}"));

        for eagle in [
            ScreeningEagle::new().token_url(&url),
            ScreeningEagle::new().base_url(url.trim_end_matches("/tenant/oauth2/v2.0/token")),
        ] {
            let eagle = eagle.client_id("id").client_secret(CLIENT_SECRET);
            assert_not_shown("ScreeningEagle Debug", &format!("{eagle:?}"));
            let err = eagle.build(unused()).unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::Configuration);
            assert_not_shown("ScreeningEagle error", &format!("{err} {err:?}"));
        }

        let kpn = Kpn::new()
            .token_url(&url)
            .client_id("id")
            .client_secret(CLIENT_SECRET);
        assert_not_shown("Kpn Debug", &format!("{kpn:?}"));
        let err = kpn.build(unused()).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration);
        assert_not_shown("Kpn error", &format!("{err} {err:?}"));
    }
}

#[test]
fn userinfo_in_configured_token_endpoints_is_refused_and_never_shown() {
    let secret = std::env::temp_dir().join(format!(
        "tower-bearer-{}-token-endpoint-secret",
        std::process::id()
    ));
    std::fs::write(&secret, CLIENT_SECRET).unwrap();
    let secret = secret.display();
    for url in userinfo_urls("/token") {
        for provider in ["generic", "kpn", "screening-eagle", "kontrolle"] {
            let text = format!(
                r#"provider = "{provider}"
                token_endpoint = "{url}"
                client_id = "id"
                scope = "api://x/.default"
                client_secret = {{ file = "{secret}" }}"#
            );
            let config: ProviderConfig = toml::from_str(&text).unwrap();
            assert_not_shown(provider, &format!("{config:?}"));
            let Err(err) = config.build(unused()) else {
                panic!("{provider}: a token endpoint with user information was accepted");
            };
            assert_eq!(err.kind(), TokenErrorKind::Configuration, "{provider}");
            assert_not_shown(provider, &format!("{err} {err:?}"));
        }
    }
}

/// A body that never yields a byte nor ends: a server that declared a length and stalled.
struct Stalled;

impl http_body::Body for Stalled {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

fn token_request(url: &str) -> http::Request<Vec<u8>> {
    use futures_util::FutureExt;
    let request = tower_bearer::oauth::ClientCredentialsRequest::new(url).unwrap();
    let auth = tower_bearer::oauth::ClientAuth::client_secret_post("id", CLIENT_SECRET);
    // A secret's credentials are ready at once.
    let credentials = auth
        .credentials(request.token_url())
        .now_or_never()
        .unwrap()
        .unwrap();
    request.http_request(&credentials).unwrap()
}

/// The paused clock turns "waits for ever" into a quick, certain failure of this bound.
const NEVER: std::time::Duration = std::time::Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn oversized_content_length_is_refused_before_the_body_is_read() {
    use tower_bearer::oauth::Transport;
    let transport: ServiceTransport<_, http_body_util::Full<bytes::Bytes>> =
        ServiceTransport::new(tower::service_fn(
            |_: http::Request<http_body_util::Full<bytes::Bytes>>| async {
                let mut response = http::Response::new(Stalled);
                response.headers_mut().insert(
                    http::header::CONTENT_LENGTH,
                    http::HeaderValue::from_static("10000000"),
                );
                Ok::<_, std::convert::Infallible>(response)
            },
        ));
    let sent = tokio::time::timeout(NEVER, transport.send(token_request("https://as.example/t")))
        .await
        .expect("refused at once, not after waiting for the body");
    let err = sent.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
    assert!(err.to_string().contains("larger than 65536 bytes"), "{err}");
    assert_eq!(err.status(), Some(http::StatusCode::OK));
}

/// A service answering with `FinalUri(final_uri)` and a body that never comes.
fn answering_from(
    final_uri: &'static str,
) -> impl tower::Service<
    http::Request<http_body_util::Full<bytes::Bytes>>,
    Response = http::Response<Stalled>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync {
    tower::service_fn(
        move |_: http::Request<http_body_util::Full<bytes::Bytes>>| async move {
            let mut response = http::Response::new(Stalled);
            response
                .extensions_mut()
                .insert(tower_bearer::redirect::FinalUri(http::Uri::from_static(
                    final_uri,
                )));
            Ok::<_, std::convert::Infallible>(response)
        },
    )
}

#[tokio::test(start_paused = true)]
async fn answers_from_another_origin_are_refused_before_the_body_is_read() {
    use tower_bearer::oauth::Transport;
    let token_url = "https://login.example/tenant/token-path-a1";
    for elsewhere in [
        "http://login.example/tenant/token-path-a1",
        "https://login.example:8443/landing-path-x1?sig=presigned-q",
        "https://evil.example/landing-path-x1?sig=presigned-q",
        "https://login.example./landing-path-x1",
    ] {
        let transport: ServiceTransport<_, http_body_util::Full<bytes::Bytes>> =
            ServiceTransport::new(answering_from(elsewhere));
        let sent = tokio::time::timeout(NEVER, transport.send(token_request(token_url)))
            .await
            .expect("refused before the body is read");
        let err = sent.unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration, "{elsewhere}");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("`https://login.example:443`"), "{shown}");
        assert!(
            shown.contains(
                "the token endpoint redirected to another origin; configure the final token URL"
            ),
            "{shown}"
        );
        for private in ["token-path-a1", "landing-path", "presigned", "tenant"] {
            assert!(!shown.contains(private), "{elsewhere}: {shown}");
        }
    }
    // The same origin, however spelled, is the token endpoint's answer: read as usual (here a
    // body that never comes, so the bound runs out).
    let transport: ServiceTransport<_, http_body_util::Full<bytes::Bytes>> =
        ServiceTransport::new(answering_from("https://LOGIN.example:443/other"));
    assert!(
        tokio::time::timeout(NEVER, transport.send(token_request(token_url)))
            .await
            .is_err()
    );
}

/// Token endpoints on loopback: `A` redirects (307, the body is to be sent again) to `B`, on
/// another port (another origin), which records what it receives and issues a token.
#[cfg(feature = "reqwest")]
mod redirects {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use tower_bearer::oauth::{
        ClientAuth, ClientCredentials, ClientCredentialsRequest, ReqwestTransport,
        ServiceTransport, Transport,
    };
    use tower_bearer::reqwest_client::ReqwestService;
    use tower_bearer::{TokenErrorKind, TokenSource};

    use super::{CLIENT_SECRET, REDIRECT_TARGET_TOKEN};

    /// What the redirect target received.
    #[derive(Clone, Default)]
    struct Received {
        requests: Arc<AtomicUsize>,
        with_secret: Arc<AtomicUsize>,
        paths: Arc<Mutex<Vec<String>>>,
    }

    fn token_answer() -> impl IntoResponse {
        (
            [(header::CONTENT_TYPE, "application/json")],
            format!(
                r#"{{"access_token":"{REDIRECT_TARGET_TOKEN}","token_type":"Bearer","expires_in":3600}}"#
            ),
        )
    }

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    /// `(token URL on A, what B received)`. A answers every token request with a 307 to
    /// `B/landing-path-x1?sig=presigned-q`; A also has `/moved`, a 307 to its own `/token-final`,
    /// which issues a token.
    async fn endpoints() -> (String, String, Received) {
        let received = Received::default();
        let target = {
            let received = received.clone();
            Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
                let received = received.clone();
                async move {
                    received.requests.fetch_add(1, Ordering::SeqCst);
                    received.paths.lock().unwrap().push(uri.path().to_owned());
                    let body = String::from_utf8_lossy(&body);
                    if body.contains(&*form_secret()) {
                        received.with_secret.fetch_add(1, Ordering::SeqCst);
                    }
                    token_answer()
                }
            })
        };
        let b = serve(target).await;
        let location = format!("{b}/landing-path-x1?sig=presigned-q");
        let a = serve(
            Router::new()
                .route(
                    "/token-path-a1",
                    post(move || {
                        let location = location.clone();
                        async move {
                            (
                                StatusCode::TEMPORARY_REDIRECT,
                                [(header::LOCATION, location)],
                            )
                        }
                    }),
                )
                .route(
                    "/moved",
                    post(|| async {
                        (
                            StatusCode::PERMANENT_REDIRECT,
                            [(header::LOCATION, "/token-final")],
                        )
                    }),
                )
                .route("/token-final", post(|| async { token_answer() })),
        )
        .await;
        (format!("{a}/token-path-a1"), a, received)
    }

    fn form_secret() -> String {
        form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect()
    }

    async fn fetch<T: Transport>(token_url: &str, transport: T) -> tower_bearer::TokenError {
        let source = ClientCredentials::new(
            ClientCredentialsRequest::new(token_url).unwrap(),
            ClientAuth::client_secret_post("client-id", CLIENT_SECRET),
            transport,
        );
        match source.token().await {
            Ok(_) => panic!("the redirect target's token was accepted"),
            Err(err) => err,
        }
    }

    fn assert_origins_only(err: &tower_bearer::TokenError, a: &str, b_port_hint: &str) {
        let shown = format!("{err} {err:?}");
        assert_eq!(err.kind(), TokenErrorKind::Configuration, "{shown}");
        assert!(shown.contains("another origin"), "{shown}");
        assert!(shown.contains(a), "{shown}");
        assert!(shown.contains(b_port_hint), "{shown}");
        for private in [
            "token-path-a1",
            "landing-path",
            "presigned",
            REDIRECT_TARGET_TOKEN,
        ] {
            assert!(!shown.contains(private), "{shown}");
        }
    }

    /// `ReqwestService::new` takes the user's client as it is: reqwest follows the 307 and
    /// sends the request, secret included, to B before anything else can see it. What the
    /// crate guarantees then: B's answer is refused, its token never used.
    #[tokio::test]
    async fn a_users_redirect_following_client_gets_the_answer_refused() {
        let _ = ReqwestTransport::new(); // installs ring as rustls's provider
        let (token_url, a, received) = endpoints().await;
        let err = fetch(
            &token_url,
            ServiceTransport::<_, reqwest::Body>::new(ReqwestService::new(reqwest::Client::new())),
        )
        .await;
        let b = received.paths.lock().unwrap().clone();
        assert_eq!(
            b,
            ["/landing-path-x1"],
            "reqwest followed the 307 (documented)"
        );
        assert_origins_only(&err, &a, "http://127.0.0.1:");
        assert_eq!(err.status(), None);
    }

    /// `ReqwestService::with_default_client` stops at a cross-origin redirect: B receives
    /// nothing, and the 3xx is a configuration error.
    #[tokio::test]
    async fn the_default_client_never_takes_the_secret_to_another_origin() {
        let (token_url, _a, received) = endpoints().await;
        let err = fetch(
            &token_url,
            ServiceTransport::<_, reqwest::Body>::new(
                ReqwestService::with_default_client().unwrap(),
            ),
        )
        .await;
        assert_eq!(received.requests.load(Ordering::SeqCst), 0);
        assert_eq!(received.with_secret.load(Ordering::SeqCst), 0);
        assert_eq!(err.kind(), TokenErrorKind::Configuration, "{err}");
        assert_eq!(err.status(), Some(http::StatusCode::TEMPORARY_REDIRECT));
    }

    /// ... and follows a redirect within the same origin (a 308 to another path).
    #[tokio::test]
    async fn the_default_client_follows_same_origin_redirects() {
        let (_token_url, a, received) = endpoints().await;
        let source = ClientCredentials::new(
            ClientCredentialsRequest::new(&format!("{a}/moved")).unwrap(),
            ClientAuth::client_secret_post("client-id", CLIENT_SECRET),
            ServiceTransport::<_, reqwest::Body>::new(
                ReqwestService::with_default_client().unwrap(),
            ),
        );
        let token = source.token().await.unwrap();
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(token.access_token()),
            REDIRECT_TARGET_TOKEN
        );
        assert_eq!(received.requests.load(Ordering::SeqCst), 0);
    }

    /// `ReqwestTransport` does not follow redirects: B receives nothing.
    #[tokio::test]
    async fn reqwest_transport_never_takes_the_secret_to_another_origin() {
        let (token_url, _a, received) = endpoints().await;
        let err = fetch(&token_url, ReqwestTransport::new().unwrap()).await;
        assert_eq!(received.requests.load(Ordering::SeqCst), 0);
        assert_eq!(err.kind(), TokenErrorKind::Configuration, "{err}");
        assert_eq!(err.status(), Some(http::StatusCode::TEMPORARY_REDIRECT));
    }

    /// `ReqwestTransport::from_client` with a client that follows redirects: reqwest takes the
    /// request to B, and the answer is refused by the transport's own origin check.
    #[tokio::test]
    async fn reqwest_transport_refuses_an_answer_from_another_origin() {
        let _ = ReqwestTransport::new(); // installs ring as rustls's provider
        let (token_url, a, received) = endpoints().await;
        let err = fetch(
            &token_url,
            ReqwestTransport::from_client(reqwest::Client::new()),
        )
        .await;
        assert_eq!(received.requests.load(Ordering::SeqCst), 1);
        assert_origins_only(&err, &a, "http://127.0.0.1:");
    }

    /// Every response of `ReqwestService` says where it came from.
    #[tokio::test]
    async fn reqwest_service_records_the_final_uri() {
        use tower::ServiceExt;
        let (_token_url, a, _received) = endpoints().await;
        let response = ReqwestService::with_default_client()
            .unwrap()
            .oneshot(
                http::Request::post(format!("{a}/moved"))
                    .body(reqwest::Body::from(""))
                    .unwrap(),
            )
            .await
            .unwrap();
        let final_uri = response
            .extensions()
            .get::<tower_bearer::redirect::FinalUri>()
            .expect("FinalUri is set");
        assert_eq!(final_uri.0.to_string(), format!("{a}/token-final"));
    }
}

/// The same over TLS: an `https://localhost` token URL (the fixture CA's server certificate)
/// redirecting to plain `http://127.0.0.1` elsewhere, the downgrade a redirect can hide.
#[cfg(feature = "reqwest")]
mod tls_redirects {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper_util::rt::TokioIo;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tower_bearer::oauth::{
        ClientAuth, ClientCredentials, ClientCredentialsRequest, ReqwestTransport, ServiceTransport,
    };
    use tower_bearer::reqwest_client::ReqwestService;
    use tower_bearer::{TokenErrorKind, TokenSource};

    use super::{CLIENT_SECRET, REDIRECT_TARGET_TOKEN};

    const CA: &str = include_str!("../fixtures/ca-cert.pem");

    /// A plain-http token endpoint on loopback that counts what it receives.
    async fn plain_http_target(received: Arc<AtomicUsize>) -> String {
        let app = axum::Router::new().fallback(move || {
            let received = Arc::clone(&received);
            async move {
                received.fetch_add(1, Ordering::SeqCst);
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    format!(r#"{{"access_token":"{REDIRECT_TARGET_TOKEN}","expires_in":3600}}"#),
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    /// An https token endpoint that answers every request with a 307 to `location`; its
    /// token URL.
    async fn tls_redirector(location: String) -> String {
        let certs = CertificateDer::pem_slice_iter(include_bytes!("../fixtures/server-cert.pem"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key =
            PrivateKeyDer::from_pem_slice(include_bytes!("../fixtures/server-key.pem")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let location = location.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |_request| {
                        let location = location.clone();
                        async move {
                            http::Response::builder()
                                .status(http::StatusCode::TEMPORARY_REDIRECT)
                                .header(http::header::LOCATION, location)
                                .body(http_body_util::Full::new(bytes::Bytes::new()))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        format!("https://localhost:{port}/token-path-a1")
    }

    fn source<T: tower_bearer::oauth::Transport>(
        token_url: &str,
        transport: T,
    ) -> ClientCredentials<T> {
        ClientCredentials::new(
            ClientCredentialsRequest::new(token_url).unwrap(),
            ClientAuth::client_secret_post("client-id", CLIENT_SECRET),
            transport,
        )
    }

    #[tokio::test]
    async fn an_https_token_url_redirecting_to_plain_http_never_gets_its_answer_used() {
        let received = Arc::new(AtomicUsize::new(0));
        let target = plain_http_target(Arc::clone(&received)).await;
        let token_url = tls_redirector(format!("{target}/landing-path-x1?sig=presigned-q")).await;

        // ReqwestTransport: nothing reaches the plain-http host.
        let transport = ReqwestTransport::builder()
            .add_root_certificate_pem(CA.as_bytes())
            .unwrap()
            .build()
            .unwrap();
        let err = source(&token_url, transport).token().await.unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration, "{err}");
        assert_eq!(err.status(), Some(http::StatusCode::TEMPORARY_REDIRECT));
        assert_eq!(received.load(Ordering::SeqCst), 0);

        // A user's client that follows redirects: reqwest takes the request there (documented),
        // and the answer is refused, naming the two origins only.
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(CA.as_bytes()).unwrap())
            .build()
            .unwrap();
        let transport = ServiceTransport::<_, reqwest::Body>::new(ReqwestService::new(client));
        let err = source(&token_url, transport).token().await.unwrap_err();
        assert_eq!(received.load(Ordering::SeqCst), 1);
        assert_eq!(err.kind(), TokenErrorKind::Configuration, "{err}");
        let shown = format!("{err} {err:?}");
        let https_origin = token_url.trim_end_matches("/token-path-a1");
        assert!(shown.contains(&format!("`{https_origin}`")), "{shown}");
        assert!(shown.contains(&format!("`{target}`")), "{shown}");
        for private in [
            "token-path-a1",
            "landing-path",
            "presigned",
            REDIRECT_TARGET_TOKEN,
        ] {
            assert!(!shown.contains(private), "{shown}");
        }
    }
}
