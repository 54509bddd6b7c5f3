//! The generic client (`providers::Generic`) against the emulator: a token URL, or the issuer
//! whose metadata (RFC 8414, or OpenID Connect Discovery) names the token endpoint, found at
//! the first fetch, once, and checked (the issuer, the endpoint's scheme, the size, the
//! authentication methods).

crate::known_secrets!(
    "generic.rs client secret" => SECRET,
    "generic.rs token" => TOKEN,
    "generic.rs build secret" => "Generic-Build-S3cret",
);

const SECRET: &str = "Generic-Discovery-S3cret";
const TOKEN: &str = "generic-discovery-token-5c1e";

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_bearer::config::ProviderConfig;
use tower_bearer::oauth::ServiceTransport;
use tower_bearer::providers::{AuthMethod, Generic};
use tower_bearer::{TokenCache, TokenErrorKind, TokenSource};
use tower_bearer_emulator::{Emulator, Fault, Provider};

type Transport = ServiceTransport<
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    Full<Bytes>,
>;

fn transport() -> Transport {
    ServiceTransport::new(Client::builder(TokioExecutor::new()).build_http())
}

/// The generic client for the emulator's client, without a URL yet.
fn client(emulator: &Emulator) -> Generic {
    Generic::new()
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
}

fn kontrolle_scope(emulator: &Emulator) -> String {
    format!("{}/.default", emulator.app_id_uri())
}

#[tokio::test]
async fn a_token_url_and_a_method_in_one_expression() {
    let emulator = Emulator::start().await.unwrap();
    let source = client(&emulator)
        .token_url(emulator.token_url(Provider::KontrollePlus))
        .auth_method(AuthMethod::ClientSecretPost)
        .scope(kontrolle_scope(&emulator))
        .build(transport())
        .unwrap();
    assert!(source.token().await.unwrap().is_bearer());
    assert_eq!(emulator.token_requests(Provider::KontrollePlus), 1);
    assert_eq!(source.issuer(), None);

    // The default method is client_secret_basic, which this endpoint refuses (Entra-style).
    let basic = client(&emulator)
        .token_url(emulator.token_url(Provider::KontrollePlus))
        .scope(kontrolle_scope(&emulator))
        .build(transport())
        .unwrap();
    assert_eq!(basic.auth().method(), "client_secret_basic");
    let err = basic.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected, "{err}");
}

#[tokio::test]
async fn the_issuers_metadata_names_the_endpoint_once_and_chooses_the_method() {
    let emulator = Emulator::start().await.unwrap();
    let issuer = emulator.issuer(Provider::KontrollePlus);
    let source = client(&emulator)
        .issuer(&issuer)
        .scope(kontrolle_scope(&emulator))
        .build(transport())
        .unwrap();
    // Nothing is asked before the first fetch.
    assert_eq!(emulator.metadata_requests(Provider::KontrollePlus), 0);
    assert_eq!(source.issuer(), Some(issuer.as_str()));
    assert_eq!(source.request().token_url().to_string(), issuer);

    // Two first fetches at once share one discovery.
    let (a, b) = tokio::join!(source.token(), source.token());
    assert!(a.unwrap().is_bearer() && b.unwrap().is_bearer());
    assert!(source.token().await.is_ok());
    assert_eq!(emulator.metadata_requests(Provider::KontrollePlus), 1);
    assert_eq!(emulator.token_requests(Provider::KontrollePlus), 3);
    assert_eq!(
        source.request().token_url().to_string(),
        emulator.token_url(Provider::KontrollePlus)
    );
    // The metadata lists client_secret_post and private_key_jwt: the secret goes in the body.
    assert_eq!(source.auth().method(), "client_secret_post");
}

#[tokio::test]
async fn without_rfc_8414_metadata_the_openid_configuration_is_read() {
    let emulator = Emulator::start().await.unwrap();
    // Screening Eagle ID's issuer has only /.well-known/openid-configuration.
    let source = client(&emulator)
        .issuer(emulator.issuer(Provider::ScreeningEagle))
        .scopes(["openid", "inspect"])
        .build(transport())
        .unwrap();
    assert!(source.token().await.unwrap().is_bearer());
    assert_eq!(emulator.metadata_requests(Provider::ScreeningEagle), 1);
    assert_eq!(source.auth().method(), "client_secret_basic");
    assert_eq!(
        source.request().token_url().to_string(),
        emulator.token_url(Provider::ScreeningEagle)
    );
}

#[tokio::test]
async fn a_discovered_endpoint_keeps_grant_type_in_its_query() {
    let emulator = Emulator::start().await.unwrap();
    let source = client(&emulator)
        .issuer(emulator.issuer(Provider::Kpn))
        .build(transport())
        .unwrap();
    assert!(source.token().await.unwrap().is_bearer());
    assert_eq!(emulator.token_requests(Provider::Kpn), 1);
    assert_eq!(source.auth().method(), "client_secret_post");
}

#[tokio::test]
async fn an_issuer_without_metadata_is_a_configuration_error_naming_both_urls() {
    let emulator = Emulator::start().await.unwrap();
    let issuer = format!("http://{}/nowhere", emulator.addr());
    let err = client(&emulator)
        .issuer(&issuer)
        .build(transport())
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Configuration, "{err}");
    let message = err.message();
    assert!(
        message.contains("/.well-known/oauth-authorization-server/nowhere")
            && message.contains("/nowhere/.well-known/openid-configuration")
            && message.contains("404"),
        "{err}"
    );

    // Nothing listening: a transport error, said as the metadata's.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = client(&emulator)
        .issuer(&issuer)
        .build(transport())
        .unwrap()
        .max_attempts(1)
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Transport, "{err}");
    assert!(
        err.message()
            .starts_with(&format!("the issuer's metadata at `{issuer}/.well-known/")),
        "{err}"
    );
}

/// Metadata that must not be used: each a typed error at the fetch, and the next fetch asks
/// again and succeeds once the metadata is right.
#[tokio::test]
async fn unusable_metadata_fails_the_fetch_and_is_asked_again_at_the_next() {
    let emulator = Emulator::start().await.unwrap();
    let issuer = emulator.issuer(Provider::KontrollePlus);
    let token_url = emulator.token_url(Provider::KontrollePlus);
    let metadata = |issuer: &str, token_endpoint: &str| {
        format!(r#"{{"issuer":"{issuer}","token_endpoint":"{token_endpoint}"}}"#)
    };
    let faults = [
        (
            "another issuer (RFC 8414 §3.3)",
            Fault::Body(metadata(&format!("{issuer}/"), &token_url)),
            TokenErrorKind::Configuration,
            "§3.3",
        ),
        (
            "a token endpoint over plain http to another host",
            Fault::Body(metadata(&issuer, "http://login.partner.example/token")),
            TokenErrorKind::Configuration,
            "plain http://",
        ),
        (
            "a body over the size cap",
            Fault::Huge(100_000),
            TokenErrorKind::MalformedAnswer,
            "larger than",
        ),
        (
            "not JSON",
            Fault::Body("<html>".into()),
            TokenErrorKind::MalformedAnswer,
            "not a JSON object",
        ),
        (
            "a server error",
            Fault::Status {
                status: 503,
                retry_after: None,
                body: String::new(),
            },
            TokenErrorKind::Unavailable,
            "503",
        ),
    ];
    let source = client(&emulator)
        .issuer(&issuer)
        .scope(kontrolle_scope(&emulator))
        .build(transport())
        .unwrap()
        .max_attempts(1);
    for (i, (name, fault, kind, says)) in faults.into_iter().enumerate() {
        emulator.inject_metadata(Provider::KontrollePlus, fault);
        let err = source.token().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{name}: {err}");
        assert!(err.to_string().contains(says), "{name}: {err}");
        assert_eq!(
            emulator.metadata_requests(Provider::KontrollePlus),
            i as u64 + 1,
            "{name}"
        );
        assert_eq!(
            emulator.token_requests(Provider::KontrollePlus),
            0,
            "{name}"
        );
    }
    assert!(source.token().await.unwrap().is_bearer());
    assert_eq!(emulator.metadata_requests(Provider::KontrollePlus), 6);
    assert_eq!(emulator.token_requests(Provider::KontrollePlus), 1);
}

/// Through the cache, in process on the paused clock: a failed discovery is the fetch's
/// error, the cache backs off (requests inside the backoff fail at once, asking nothing), and
/// the fetch after the backoff discovers and gets a token.
#[tokio::test(start_paused = true)]
async fn a_failed_discovery_is_retried_by_the_cache_after_its_backoff() {
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&asked);
    let service = tower::service_fn(move |req: Request<Full<Bytes>>| {
        let path = req.uri().path().to_owned();
        let mut seen = seen.lock().unwrap();
        let metadata_before = seen.iter().filter(|p| p.contains("well-known")).count();
        seen.push(path.clone());
        let (status, body) = if path == "/.well-known/oauth-authorization-server" {
            if metadata_before == 0 {
                (503, String::new())
            } else {
                (
                    200,
                    r#"{"issuer":"https://as.partner.example","token_endpoint":"https://as.partner.example/token"}"#
                        .to_owned(),
                )
            }
        } else if path == "/token" {
            (
                200,
                format!(r#"{{"access_token":"{TOKEN}","token_type":"Bearer","expires_in":3600}}"#),
            )
        } else {
            (404, String::new())
        };
        async move {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let source = Generic::new()
        .issuer("https://as.partner.example")
        .client_id("client-7")
        .client_secret(SECRET)
        .build(ServiceTransport::new(service))
        .unwrap()
        .max_attempts(1);
    let cache = TokenCache::builder(source).build();
    let err = cache.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Unavailable, "{err}");
    // Inside the backoff the error comes at once, and nothing is asked.
    tokio::time::advance(Duration::from_millis(500)).await;
    assert!(cache.token().await.is_err());
    assert_eq!(asked.lock().unwrap().len(), 1);
    // After it (1 s, with jitter below 2 s), the metadata and then the token.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(cache.token().await.unwrap().is_bearer());
    assert_eq!(
        *asked.lock().unwrap(),
        [
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-authorization-server",
            "/token"
        ]
    );
}

#[tokio::test]
async fn a_method_the_endpoint_does_not_list_is_refused_before_the_secret_is_sent() {
    let emulator = Emulator::start().await.unwrap();
    let err = client(&emulator)
        .issuer(emulator.issuer(Provider::KontrollePlus))
        .auth_method(AuthMethod::ClientSecretBasic)
        .scope(kontrolle_scope(&emulator))
        .build(transport())
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Configuration, "{err}");
    assert!(
        err.message().contains("client_secret_post")
            && err.message().contains("not `client_secret_basic`"),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("auth method"), "{err}");
    assert_eq!(emulator.token_requests(Provider::KontrollePlus), 0);
}

#[cfg(feature = "private-key-jwt")]
#[tokio::test]
async fn private_key_jwt_signs_for_the_discovered_endpoint() {
    use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    let emulator = Emulator::start().await.unwrap();
    let signer =
        JwtSigner::from_pem(include_str!("../fixtures/rsa-pkcs8.pem"), Algorithm::Rs256).unwrap();
    let source = Generic::new()
        .issuer(emulator.issuer(Provider::KontrollePlus))
        .client_id(emulator.client_id())
        .private_key(signer)
        .scope(kontrolle_scope(&emulator))
        .build(transport())
        .unwrap();
    // The emulator accepts the assertion only if its `aud` is the token endpoint.
    assert!(source.token().await.unwrap().is_bearer());
    assert_eq!(source.auth().method(), "private_key_jwt");
}

#[tokio::test]
async fn a_generic_configuration_with_an_issuer() {
    let emulator = Emulator::start().await.unwrap();
    let secret = std::env::temp_dir().join(format!(
        "tower-bearer-{}-generic-issuer",
        std::process::id()
    ));
    std::fs::write(&secret, emulator.client_secret()).unwrap();
    let config: ProviderConfig = toml::from_str(&format!(
        r#"
        provider = "generic"
        issuer = "{}"
        client_id = "{}"
        client_secret = {{ file = "{}" }}
        scope = "{}"
        "#,
        emulator.issuer(Provider::KontrollePlus),
        emulator.client_id(),
        secret.display(),
        kontrolle_scope(&emulator),
    ))
    .unwrap();
    let source = config.build(transport()).unwrap();
    assert!(source.token().await.unwrap().is_bearer());
    assert_eq!(emulator.metadata_requests(Provider::KontrollePlus), 1);

    // The token URL (`token_url`, the builders' word, reads as `token_endpoint`) and a method.
    let config: ProviderConfig = toml::from_str(&format!(
        r#"
        provider = "generic"
        token_url = "{}"
        auth_method = "client_secret_post"
        client_id = "{}"
        client_secret = {{ file = "{}" }}
        scope = "{}"
        "#,
        emulator.token_url(Provider::KontrollePlus),
        emulator.client_id(),
        secret.display(),
        kontrolle_scope(&emulator),
    ))
    .unwrap();
    let source = config.build(transport()).unwrap();
    assert_eq!(source.auth().method(), "client_secret_post");
    assert!(source.token().await.unwrap().is_bearer());
    assert_eq!(emulator.metadata_requests(Provider::KontrollePlus), 1);
    assert_eq!(emulator.token_requests(Provider::KontrollePlus), 2);
}

/// What `build()` refuses, naming the setting and the fix.
#[test]
fn build_refuses_what_cannot_work() {
    let base = || {
        Generic::new()
            .token_url("https://login.partner.example/oauth2/token")
            .client_id("client-7")
            .client_secret("Generic-Build-S3cret")
    };
    let rows: Vec<(&str, Generic, &str, &str)> = vec![
        (
            "an empty client id",
            base().client_id(" "),
            "`client_id` is empty",
            "client id",
        ),
        (
            "an empty secret",
            base().client_secret(""),
            "`client_secret` is empty",
            "client secret",
        ),
        (
            "a scope with a backslash",
            base().scope("orders\\read"),
            "`scope` `orders\\read` holds",
            "printable ASCII",
        ),
        (
            "plain http to another host",
            base().token_url("http://gateway.internal/token"),
            "`token_url` is not usable",
            "`.allow_insecure_http(true)`",
        ),
        (
            "a token URL and an issuer",
            base().issuer("https://login.partner.example"),
            "`token_url` and `issuer` are both set",
            "set one",
        ),
        (
            "an issuer with a fragment",
            Generic::new()
                .issuer("https://login.partner.example/#x")
                .client_id("client-7")
                .client_secret("Generic-Build-S3cret"),
            "`issuer` is not usable",
            "issuer identifier",
        ),
        (
            "private_key_jwt with a secret",
            base().auth_method(AuthMethod::PrivateKeyJwt),
            "`auth_method` is private_key_jwt",
            "client_secret_basic or client_secret_post",
        ),
        (
            "no URL",
            Generic::new()
                .client_id("client-7")
                .client_secret("Generic-Build-S3cret"),
            "`token_url` is not set",
            "issuer",
        ),
    ];
    for (name, builder, says, fix) in rows {
        let err = builder.build(transport()).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Configuration, "{name}");
        assert!(err.message().contains(says), "{name}: {err}");
        assert!(err.hint().unwrap().contains(fix), "{name}: {err}");
        assert!(!err.to_string().contains("Generic-Build-S3cret"), "{name}");
    }
    // Allowed explicitly, plain http to another host builds.
    assert!(
        base()
            .token_url("http://gateway.internal/token")
            .allow_insecure_http(true)
            .build(transport())
            .is_ok()
    );
}
