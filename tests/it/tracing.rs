//! What the crate traces, captured at TRACE level: the events an operator needs are there, and
//! no secret is, whatever happens (fetch, refresh, failure and backoff, 401).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};
use tower_bearer::oauth::{
    ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport,
};
use tower_bearer::{BearerTokenLayer, TokenCache};

use crate::common::Captured;

const CLIENT_SECRET: &str = "cl1ent-S3CRET-value";
const ACCESS_TOKEN: &str = "eyJ.ACCESS-secret.sig";
const REFRESH_TOKEN: &str = "REFRESH-secret-token";
const ID_TOKEN: &str = "eyJ.ID-secret.sig";
crate::known_secrets!(
    "tracing.rs CLIENT_SECRET" => CLIENT_SECRET,
    "tracing.rs ACCESS_TOKEN" => ACCESS_TOKEN,
    "tracing.rs REFRESH_TOKEN" => REFRESH_TOKEN,
    "tracing.rs ID_TOKEN" => ID_TOKEN,
);

#[tokio::test(start_paused = true)]
async fn operators_see_what_happened_and_never_a_secret() {
    let (captured, _guard) = Captured::trace();

    // A token endpoint: the 1st answer fails with the secret echoed back, the 2nd and later
    // succeed with tokens that live 10 minutes.
    let calls = Arc::new(Mutex::new(0));
    let endpoint = {
        let calls = Arc::clone(&calls);
        service_fn(move |_req: Request<Full<Bytes>>| {
            let calls = Arc::clone(&calls);
            async move {
                let n = {
                    let mut c = calls.lock().unwrap();
                    *c += 1;
                    *c
                };
                let (status, body) = if n == 1 {
                    (
                        400,
                        format!(
                            r#"{{"error":"invalid_client","error_description":"bad secret {CLIENT_SECRET}"}}"#
                        ),
                    )
                } else {
                    (
                        200,
                        format!(
                            r#"{{"access_token":"{ACCESS_TOKEN}{n}","token_type":"Bearer","expires_in":600,"refresh_token":"{REFRESH_TOKEN}","id_token":"{ID_TOKEN}"}}"#
                        ),
                    )
                };
                let mut response = Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let source = ClientCredentials::new(
        ClientCredentialsRequest::new("https://login.example/t/oauth2/v2.0/token")
            .unwrap()
            .scope("api://partner/.default"),
        ClientAuth::client_secret_post("app-id", CLIENT_SECRET),
        ServiceTransport::new(endpoint),
    )
    .label("Partner");
    let layer = BearerTokenLayer::from_cache(TokenCache::new(source));
    let api = layer.layer(service_fn(|req: Request<()>| async move {
        // The API refuses token 2 once, then accepts everything.
        let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
        let mut response = Response::new(());
        if auth.ends_with('2') {
            *response.status_mut() = StatusCode::UNAUTHORIZED;
        }
        Ok::<_, std::convert::Infallible>(response)
    }));
    let get = || Request::get("https://api.example/").body(()).unwrap();

    // 1. Fails (backoff), 2. fails fast, 3. after the backoff: token 2, refused with 401,
    // 4. token 3; 5. into the refresh window: early refresh to token 4.
    assert!(api.clone().oneshot(get()).await.is_err());
    assert!(api.clone().oneshot(get()).await.is_err());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        api.clone().oneshot(get()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.clone().oneshot(get()).await.unwrap().status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_secs(6 * 60)).await;
    api.clone().oneshot(get()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(*calls.lock().unwrap(), 4);

    let text = captured.text();
    crate::common::capture::record_output("tracing.rs own subscriber", text.as_bytes());
    if std::env::var_os("SHOW_TRACE").is_some() {
        eprintln!("{text}");
    }
    for expected in [
        "token_request",
        "provider=Partner",
        "client_id=app-id",
        "auth=\"client_secret_post\"",
        "token fetch failed; backing off",
        "kind=credentials_rejected",
        "failing fast",
        "token stored",
        "token refused (401): dropped",
        "early refresh",
        "sha256:",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    for secret in [CLIENT_SECRET, "ACCESS-secret", REFRESH_TOKEN, "ID-secret"] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the trace:\n{text}"
        );
    }
}

/// Each reason a token is not sent is a DEBUG event naming the reason, never the redirect's
/// path or query.
#[tokio::test(start_paused = true)]
async fn every_withheld_token_is_a_debug_event_with_its_reason() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let layer = BearerTokenLayer::new(tower_bearer::StaticToken::new(tower_bearer::Token::new(
        ACCESS_TOKEN,
    )));
    crate::common::withhold_once_for_each_reason(layer).await;
    let text = captured.text();
    crate::common::capture::record_output("tracing.rs withheld", text.as_bytes());
    for reason in [
        "reason=\"insecure_scheme\"",
        "reason=\"host_not_allowed\"",
        "reason=\"host_mismatch\"",
        "reason=\"cross_origin_redirect\"",
    ] {
        assert!(text.contains(reason), "missing {reason} in:\n{text}");
    }
    assert_eq!(text.matches("DEBUG").count(), 4, "{text}");
    assert!(text.contains("https://elsewhere.example:443"), "{text}");
    for secret in ["presigned-withheld", "/landing", "ACCESS-secret"] {
        assert!(!text.contains(secret), "{secret} in:\n{text}");
    }
}
