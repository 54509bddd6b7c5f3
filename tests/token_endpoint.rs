//! Where the client's credentials may go: token URLs with user information are refused without
//! echoing it (every provider and the configuration path), a token answer from anywhere but the
//! token URL's origin is refused, and an oversized answer is refused before its body is read.

mod common;

known_secrets!(
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
    tower_bearer::oauth::ClientCredentialsRequest::new(url)
        .unwrap()
        .build(&tower_bearer::oauth::ClientAuth::client_secret_post(
            "id",
            CLIENT_SECRET,
        ))
        .unwrap()
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
    assert_eq!(err.kind(), TokenErrorKind::MalformedResponse);
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
