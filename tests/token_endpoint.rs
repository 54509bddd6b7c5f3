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
