//! End to end over loopback HTTP: each provider's token source, against the emulator, through
//! the layer on a hyper-util client calling the emulator's protected API.
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use tower_bearer::oauth::{ClientCredentials, ServiceTransport, Transport};
use tower_bearer::providers::{KontrollePlus, Kpn, ScreeningEagle};
use tower_bearer::{BearerTokenLayer, TokenErrorKind, TokenSource};
use tower_bearer_emulator::{Emulator, Fault, Provider};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn transport() -> ServiceTransport<HttpClient, Full<Bytes>> {
    ServiceTransport::new(http_client())
}

fn kontrolle(emulator: &Emulator, secret: &str) -> KontrollePlus {
    KontrollePlus::new()
        .authority(emulator.authority())
        .client_id(emulator.client_id())
        .client_secret(secret)
        .app_id_uri(emulator.app_id_uri())
}

fn screening_eagle(emulator: &Emulator, secret: &str) -> ScreeningEagle {
    ScreeningEagle::new()
        .base_url(emulator.screening_eagle_base_url())
        .client_id(emulator.client_id())
        .client_secret(secret)
        .scopes(["openid", "email", "profile", "inspect"])
}

fn kpn(emulator: &Emulator, secret: &str) -> Kpn {
    Kpn::new()
        .token_url(emulator.token_url(Provider::Kpn))
        .client_id(emulator.client_id())
        .client_secret(secret)
}

fn source(
    emulator: &Emulator,
    provider: Provider,
    secret: &str,
) -> ClientCredentials<impl Transport + use<>> {
    match provider {
        Provider::KontrollePlus => kontrolle(emulator, secret).build(transport()),
        Provider::ScreeningEagle => screening_eagle(emulator, secret).build(transport()),
        Provider::Kpn => kpn(emulator, secret).build(transport()),
    }
    .unwrap()
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::default()).unwrap()
}

#[tokio::test]
async fn every_provider_end_to_end_with_one_token_request_for_many_calls() {
    let emulator = Emulator::start().await.unwrap();
    for provider in Provider::ALL {
        let layer = BearerTokenLayer::new(source(&emulator, provider, &emulator.client_secret()));
        let api = layer.layer(http_client());
        let mut calls = Vec::new();
        for i in 0..200 {
            let api = api.clone();
            let uri = emulator.api_url(provider, &format!("items/{i}"));
            calls.push(tokio::spawn(async move { api.oneshot(get(&uri)).await }));
        }
        for call in calls {
            let response = call.await.unwrap().unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{provider}");
        }
        assert_eq!(emulator.token_requests(provider), 1, "{provider}");
    }
    assert_eq!(emulator.api_requests(), 600);
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_for_every_provider() {
    let emulator = Emulator::start().await.unwrap();
    for provider in Provider::ALL {
        let err = source(&emulator, provider, "wrong-s3cret")
            .token()
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            TokenErrorKind::CredentialsRejected,
            "{provider}: {err}"
        );
        assert_eq!(
            emulator.token_requests(provider),
            1,
            "{provider}: not retried"
        );
        assert!(
            !err.to_string().contains("Wr0ng-s3cret"),
            "{provider}: {err}"
        );
    }
}

#[tokio::test]
async fn kontrolle_plus_wrong_scope_and_missing_role() {
    let emulator = Emulator::start().await.unwrap();
    let err = KontrollePlus::new()
        .authority(emulator.authority())
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .app_id_uri("api://someone-else")
        .build(transport())
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Configuration);
    assert_eq!(err.code(), Some("invalid_scope"));
    // The emulator names the refused scope as Entra ID does; the hint names it too.
    assert!(
        err.hint()
            .unwrap()
            .starts_with("the provider refused the scope `api://someone-else/.default`; "),
        "{err}"
    );
    assert!(err.support_refs().any(|(name, _)| name == "correlation_id"));
    let said = err.detail::<tower_bearer::oauth::ProviderError>().unwrap();
    assert!(said.correlation_id.is_some());

    // A token without ProviderApi.Access: the claims check refuses it before first use...
    emulator.set_roles(["Reader"]);
    let err = source(
        &emulator,
        Provider::KontrollePlus,
        &emulator.client_secret(),
    )
    .token()
    .await
    .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
    assert!(err.to_string().contains("ProviderApi.Access"), "{err}");

    // ...and without the check, the API answers 403, which never causes a refresh.
    let layer = BearerTokenLayer::new(
        kontrolle(&emulator, &emulator.client_secret())
            .check_claims(false)
            .build(transport())
            .unwrap(),
    );
    let before = emulator.token_requests(Provider::KontrollePlus);
    let api = layer.layer(http_client());
    for _ in 0..5 {
        let response = api
            .clone()
            .oneshot(get(&emulator.api_url(Provider::KontrollePlus, "x")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(emulator.token_requests(Provider::KontrollePlus), before + 1);
}

#[tokio::test]
async fn a_token_expired_at_the_api_is_replaced_after_its_401() {
    let emulator = Emulator::start().await.unwrap();
    // The emulator issues 1-second tokens but the client believes they live an hour.
    emulator.set_token_lifetime(Duration::from_secs(1));
    let layer = BearerTokenLayer::new(tower_bearer::token_source_fn({
        let inner = source(&emulator, Provider::Kpn, &emulator.client_secret());
        let inner = std::sync::Arc::new(inner);
        move || {
            let inner = std::sync::Arc::clone(&inner);
            async move {
                let token = inner.token().await?;
                Ok(token.with_expires_in(Duration::from_secs(3600)))
            }
        }
    }));
    let api = layer.layer(http_client());
    let url = emulator.api_url(Provider::Kpn, "x");
    assert_eq!(
        api.clone().oneshot(get(&url)).await.unwrap().status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        api.clone().oneshot(get(&url)).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    emulator.set_token_lifetime(Duration::from_secs(3600));
    assert_eq!(
        api.clone().oneshot(get(&url)).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(emulator.token_requests(Provider::Kpn), 2);
    assert_eq!(layer.cache().stats().invalidations, 1);
}

#[tokio::test]
async fn faults_are_retried_or_reported_typed() {
    let emulator = Emulator::start().await.unwrap();
    let p = Provider::ScreeningEagle;
    let secret = emulator.client_secret();

    // 503 with a short Retry-After, then a dropped connection: retried within the fetch.
    emulator.inject(
        p,
        Fault::Status {
            status: 503,
            retry_after: Some(1),
            body: r#"{"error":"Service Unavailable","errorDescription":"maintenance"}"#.into(),
        },
    );
    emulator.inject(p, Fault::Drop);
    let token = source(&emulator, p, &secret).token().await.unwrap();
    assert!(token.id_token().is_some());
    assert_eq!(emulator.token_requests(p), 3);

    // 429 with a long Retry-After: left to the cache's backoff.
    emulator.inject(
        p,
        Fault::Status {
            status: 429,
            retry_after: Some(120),
            body: String::new(),
        },
    );
    let err = source(&emulator, p, &secret).token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));

    // Not a token response.
    for (fault, kind) in [
        (
            Fault::Body("<html>login</html>".into()),
            TokenErrorKind::MalformedAnswer,
        ),
        (
            Fault::Body(r#"{"access_token":"#.into()),
            TokenErrorKind::MalformedAnswer,
        ),
        (
            Fault::Body(r#"{"access_token":42}"#.into()),
            TokenErrorKind::MalformedAnswer,
        ),
        (
            Fault::Body(r#"{"access_token":"a\r\nb"}"#.into()),
            TokenErrorKind::MalformedAnswer,
        ),
        (
            Fault::Body(r#"{"access_token":"t","token_type":"mac"}"#.into()),
            TokenErrorKind::MalformedAnswer,
        ),
        (Fault::Huge(1 << 20), TokenErrorKind::MalformedAnswer),
    ] {
        emulator.inject(p, fault.clone());
        let err = source(&emulator, p, &secret).token().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{fault:?}: {err}");
    }

    // No answer at all: each attempt times out.
    emulator.inject(p, Fault::Hang);
    emulator.inject(p, Fault::Hang);
    let err = source(&emulator, p, &secret)
        .attempt_timeout(Duration::from_millis(200))
        .max_attempts(2)
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Timeout);
}

#[cfg(feature = "private-key-jwt")]
#[tokio::test]
async fn kontrolle_plus_with_a_certificate() {
    use tower_bearer::oauth::assertion::{Algorithm, JwtSigner};
    let emulator = Emulator::start().await.unwrap();
    let signer = JwtSigner::from_pem(include_str!("../fixtures/rsa-pkcs8.pem"), Algorithm::Rs256)
        .unwrap()
        .with_certificate_pem(include_str!("../fixtures/rsa-cert.pem"))
        .unwrap();
    let source = KontrollePlus::new()
        .authority(emulator.authority())
        .client_id(emulator.client_id())
        .certificate(signer)
        .app_id_uri(emulator.app_id_uri())
        .build(transport())
        .unwrap();
    let token = source.token().await.unwrap();
    assert!(token.is_bearer());
}

#[cfg(feature = "reqwest")]
#[tokio::test]
async fn reqwest_transport_talks_to_every_provider_and_follows_no_redirect() {
    use tower_bearer::oauth::ReqwestTransport;
    let emulator = Emulator::start().await.unwrap();
    let secret = emulator.client_secret();
    let reqwest = || ReqwestTransport::new().unwrap();
    let sources: Vec<tower_bearer::BoxTokenSource> = vec![
        kontrolle(&emulator, &secret)
            .build(reqwest())
            .unwrap()
            .boxed(),
        screening_eagle(&emulator, &secret)
            .build(reqwest())
            .unwrap()
            .boxed(),
        kpn(&emulator, &secret).build(reqwest()).unwrap().boxed(),
    ];
    for source in &sources {
        assert!(source.token().await.unwrap().is_bearer());
    }
    emulator.inject(
        Provider::Kpn,
        Fault::Status {
            status: 302,
            retry_after: None,
            body: String::new(),
        },
    );
    let err = kpn(&emulator, &secret)
        .build(reqwest())
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Configuration);
    assert!(err.to_string().contains("redirect"), "{err}");
    emulator.inject(Provider::Kpn, Fault::Huge(1 << 20));
    let err = kpn(&emulator, &secret)
        .build(reqwest())
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
    emulator.inject(Provider::Kpn, Fault::Drop);
    emulator.inject(Provider::Kpn, Fault::Drop);
    emulator.inject(Provider::Kpn, Fault::Drop);
    let err = kpn(&emulator, &secret)
        .build(reqwest())
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Transport, "{err}");
}

#[cfg(feature = "reqwest")]
mod tls {
    use super::*;
    use tower_bearer::oauth::ReqwestTransport;

    const CA: &str = include_str!("../fixtures/ca-cert.pem");

    async fn tls_emulator() -> Emulator {
        Emulator::builder()
            .tls(
                include_str!("../fixtures/server-cert.pem"),
                include_str!("../fixtures/server-key.pem"),
            )
            .unwrap()
            .start()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_private_ca_is_trusted_once_added() {
        let emulator = tls_emulator().await;
        let secret = emulator.client_secret();
        let trusting = ReqwestTransport::builder()
            .add_root_certificate_pem(CA.as_bytes())
            .unwrap()
            .build()
            .unwrap();
        let token = kpn(&emulator, &secret)
            .build(trusting)
            .unwrap()
            .token()
            .await
            .unwrap();
        assert!(token.is_bearer());
        assert!(
            emulator
                .token_url(Provider::Kpn)
                .starts_with("https://localhost:")
        );

        // Without the CA: a transport error that points at TLS trust; nothing was sent.
        let before = emulator.token_requests(Provider::Kpn);
        let err = kpn(&emulator, &secret)
            .build(ReqwestTransport::new().unwrap())
            .unwrap()
            .max_attempts(1)
            .token()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Transport, "{err}");
        assert!(
            err.message()
                .contains("invalid peer certificate: UnknownIssuer"),
            "{err}"
        );
        assert!(
            err.hint().unwrap().starts_with("the TLS connection failed"),
            "{err}"
        );
        assert_eq!(emulator.token_requests(Provider::Kpn), before);
    }

    #[tokio::test]
    async fn a_certificate_for_another_name_is_refused() {
        let emulator = tls_emulator().await;
        // The certificate names `localhost` only; connect by IP instead.
        let by_ip = emulator
            .token_url(Provider::Kpn)
            .replace("localhost", "127.0.0.1");
        let trusting = ReqwestTransport::builder()
            .add_root_certificate_pem(CA.as_bytes())
            .unwrap()
            .build()
            .unwrap();
        let err = Kpn::new()
            .token_url(by_ip)
            .client_id(emulator.client_id())
            .client_secret(emulator.client_secret())
            .build(trusting)
            .unwrap()
            .max_attempts(1)
            .token()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Transport, "{err}");
        assert_eq!(emulator.token_requests(Provider::Kpn), 0);
    }
}

#[cfg(feature = "reqwest")]
#[tokio::test]
async fn a_reqwest_client_behind_the_layer() {
    use tower_bearer::reqwest_client::ReqwestService;
    let emulator = Emulator::start().await.unwrap();
    let layer = BearerTokenLayer::new(source(&emulator, Provider::Kpn, &emulator.client_secret()));
    let client = layer.layer(ReqwestService::with_default_client().unwrap());
    let mut calls = Vec::new();
    for i in 0..100 {
        let request = http::Request::get(emulator.api_url(Provider::Kpn, &format!("v1/{i}")))
            .body(reqwest::Body::from(""))
            .unwrap();
        calls.push(tokio::spawn(client.clone().oneshot(request)));
    }
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(emulator.token_requests(Provider::Kpn), 1);
    // A request whose URI reqwest cannot take is an error, not a panic.
    let bad = http::Request::get("/relative")
        .body(reqwest::Body::from(""))
        .unwrap();
    assert!(client.clone().oneshot(bad).await.is_err());
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_every_token_request_waits_the_token_delay() {
    let emulator = Emulator::builder()
        .token_delay(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let source = source(&emulator, Provider::Kpn, &emulator.client_secret());
    let started = tokio::time::Instant::now();
    source.token().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let api = BearerTokenLayer::new(source).layer(http_client());
    let uri = emulator.api_url(Provider::Kpn, "items");
    let status = |response: Result<http::Response<hyper::body::Incoming>, _>| {
        let response: http::Response<_> = response.expect("an answer");
        response.status()
    };
    assert_eq!(status(api.clone().oneshot(get(&uri)).await), StatusCode::OK);
    // Revoked: the layer's token is refused once (and dropped), the next one is good.
    assert!(
        emulator.revoke_all() >= 2,
        "the source's token and the layer's"
    );
    assert_eq!(
        status(api.clone().oneshot(get(&uri)).await),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(api.clone().oneshot(get(&uri)).await), StatusCode::OK);
    assert_eq!(emulator.token_requests(Provider::Kpn), 3);
}
