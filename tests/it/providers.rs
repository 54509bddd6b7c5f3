//! Each provider's flow against an in-process endpoint that answers as the provider documents,
//! checking what the provider expects to receive. (The loopback HTTP emulator comes with the
//! transport; these run without a network.)

crate::known_secrets!(
    "providers.rs client secret" => "s3cret",
    "providers.rs Screening Eagle secret" => "p@ss word",
    "providers.rs KPN secret" => "APP_CLIENT_SECRET",
    "providers.rs Debug secret" => "TOPSECRET",
    "providers.rs KPN token" => "staG765sBUuai4OMeZiTful6PTRt",
);

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::service_fn;
use tower_bearer::TokenErrorKind;
use tower_bearer::TokenSource;
use tower_bearer::oauth::{ServiceTransport, Transport};
use tower_bearer::providers::{KontrollePlus, Kpn, ScreeningEagle};

/// What the endpoint received: URI, Authorization header, form fields.
#[derive(Clone, Debug, Default)]
struct Received {
    uri: String,
    authorization: Option<String>,
    form: Vec<(String, String)>,
}

fn endpoint(status: u16, body: String) -> (impl Transport + use<>, Arc<Mutex<Vec<Received>>>) {
    let log: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = Arc::clone(&log);
    let service = service_fn(move |req: Request<Full<Bytes>>| {
        let seen = Arc::clone(&seen);
        let body = body.clone();
        async move {
            let uri = req.uri().to_string();
            let authorization = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = req.into_body().collect().await.unwrap().to_bytes();
            let form = form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            seen.lock().unwrap().push(Received {
                uri,
                authorization,
                form,
            });
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    (ServiceTransport::new(service), log)
}

fn jwt(claims: serde_json::Value) -> String {
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn in_an_hour() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

fn field<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.form
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn kontrolle_plus_posts_the_secret_and_checks_the_claims() {
    let token = jwt(serde_json::json!({
        "aud": "api://kontrolle-plus", "roles": ["ProviderApi.Access"], "exp": in_an_hour(),
    }));
    let (transport, log) = endpoint(
        200,
        format!(
            r#"{{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"{token}"}}"#
        ),
    );
    let source = KontrollePlus::new()
        .authority("https://login.example/tenant-id/")
        .client_id("app-id")
        .client_secret("s3cret")
        .app_id_uri("api://kontrolle-plus")
        .build(transport)
        .unwrap();
    let got = source.token().await.unwrap();
    assert_eq!(got.lifetime(), Some(Duration::from_secs(3599)));
    let r = &log.lock().unwrap()[0];
    assert_eq!(r.uri, "https://login.example/tenant-id/oauth2/v2.0/token");
    assert_eq!(r.authorization, None);
    assert_eq!(field(r, "grant_type"), Some("client_credentials"));
    assert_eq!(field(r, "scope"), Some("api://kontrolle-plus/.default"));
    assert_eq!(field(r, "client_id"), Some("app-id"));
    assert_eq!(field(r, "client_secret"), Some("s3cret"));
}

#[tokio::test]
async fn kontrolle_plus_refuses_a_token_without_the_role() {
    let token = jwt(serde_json::json!({
        "aud": "api://kontrolle-plus", "roles": [], "exp": in_an_hour(),
    }));
    let (transport, _) = endpoint(
        200,
        format!(r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"{token}"}}"#),
    );
    let err = KontrollePlus::new()
        .token_url("https://login.example/t/oauth2/v2.0/token")
        .client_id("app-id")
        .client_secret("s3cret")
        .app_id_uri("api://kontrolle-plus/.default")
        .build(transport)
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
    assert!(err.to_string().contains("ProviderApi.Access"), "{err}");
}

#[tokio::test]
async fn kontrolle_plus_accepts_the_v2_application_id_audience_when_told() {
    let token = jwt(serde_json::json!({
        "aud": "6731de76-14a6-49ae-97bc-6eba6914391e", "roles": ["ProviderApi.Access"], "exp": in_an_hour(),
    }));
    let body = format!(r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"{token}"}}"#);
    let build = |transport| {
        KontrollePlus::new()
            .token_url("https://login.example/t/oauth2/v2.0/token")
            .client_id("app-id")
            .client_secret("s3cret")
            .app_id_uri("api://kontrolle-plus")
            .build(transport)
            .unwrap()
    };
    let (transport, _) = endpoint(200, body.clone());
    assert!(build(transport).token().await.is_err());
    let (transport, _) = endpoint(200, body);
    let source = KontrollePlus::new()
        .token_url("https://login.example/t/oauth2/v2.0/token")
        .client_id("app-id")
        .client_secret("s3cret")
        .app_id_uri("api://kontrolle-plus")
        .expected_audience("api://kontrolle-plus")
        .expected_audience("6731de76-14a6-49ae-97bc-6eba6914391e")
        .build(transport)
        .unwrap();
    assert!(source.token().await.is_ok());
}

#[tokio::test]
async fn kontrolle_plus_invalid_scope_keeps_entra_support_fields() {
    let (transport, _) = endpoint(
        400,
        r#"{"error":"invalid_scope","error_description":"AADSTS70011: The provided request must include a 'scope' input parameter.","error_codes":[70011],"timestamp":"2026-11-23 12:00:00Z","trace_id":"8e2f","correlation_id":"c0ff"}"#.to_owned(),
    );
    let err = KontrollePlus::new()
        .token_url("https://login.example/t/oauth2/v2.0/token")
        .client_id("app-id")
        .client_secret("s3cret")
        .app_id_uri("api://kontrolle-plus")
        .build(transport)
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Configuration);
    assert_eq!(err.code(), Some("invalid_scope"));
    let text = err.to_string();
    assert!(
        text.starts_with("token error (configuration: invalid_scope, HTTP 400): "),
        "{text}"
    );
    assert!(
        text.contains("AADSTS70011") && text.contains("correlation_id=c0ff"),
        "{text}"
    );
    assert!(
        text.contains("/.default"),
        "the hint names the scope format: {text}"
    );
}

#[test]
fn kontrolle_plus_configuration_errors_name_the_field() {
    let (transport, _) = endpoint(200, String::new());
    let err = KontrollePlus::new()
        .authority("https://login.example/t")
        .client_id("app-id")
        .app_id_uri("api://kontrolle-plus")
        .build(transport)
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Configuration);
    assert!(err.to_string().contains("`client_secret`"), "{err}");
    let (transport, _) = endpoint(200, String::new());
    let err = KontrollePlus::new()
        .client_id("x")
        .client_secret("y")
        .app_id_uri("z")
        .build(transport)
        .unwrap_err();
    assert!(err.to_string().contains("`token_url`"), "{err}");
}

#[tokio::test]
async fn screening_eagle_sends_raw_basic_and_keeps_id_and_refresh_tokens() {
    let (transport, log) = endpoint(
        200,
        r#"{"scope":"openid email profile inspect","token_type":"Bearer","access_token":"eyJ.a.b","expires_in":604800,"id_token":"eyJ.c.d","refresh_token":"eyJ.e.f"}"#.to_owned(),
    );
    let source = ScreeningEagle::new()
        .base_url("https://id.example/")
        .client_id("client")
        .client_secret("p@ss word")
        .scopes(["openid email", "profile", "inspect"])
        .build(transport)
        .unwrap();
    let token = source.token().await.unwrap();
    assert_eq!(token.scope(), Some("openid email profile inspect"));
    assert!(token.id_token().is_some() && token.refresh_token().is_some());
    assert_eq!(token.lifetime(), Some(Duration::from_secs(604_800)));
    let r = &log.lock().unwrap()[0];
    assert_eq!(r.uri, "https://id.example/api/id/v1/auth/token");
    let basic = r
        .authorization
        .as_deref()
        .unwrap()
        .strip_prefix("Basic ")
        .unwrap();
    assert_eq!(STANDARD.decode(basic).unwrap(), b"client:p@ss word");
    assert_eq!(
        r.form,
        [
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            (
                "scope".to_owned(),
                "openid email profile inspect".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn screening_eagle_errors_are_read_in_camel_case() {
    for (status, kind) in [
        (400, TokenErrorKind::Configuration),
        (401, TokenErrorKind::CredentialsRejected),
        (403, TokenErrorKind::NotPermitted),
        (404, TokenErrorKind::Configuration),
        (500, TokenErrorKind::Unavailable),
    ] {
        let (transport, _) = endpoint(
            status,
            r#"{"error":"Forbidden","errorDescription":"permission denied"}"#.to_owned(),
        );
        let err = ScreeningEagle::new()
            .base_url("https://id.example")
            .client_id("client")
            .client_secret("secret")
            .build(transport)
            .unwrap()
            .max_attempts(1)
            .token()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{status}");
        assert_eq!(err.code(), Some("Forbidden"));
        assert_eq!(
            err.detail::<tower_bearer::oauth::ProviderError>()
                .unwrap()
                .description
                .as_deref(),
            Some("permission denied")
        );
    }
    let (transport, _) = endpoint(200, String::new());
    let err = ScreeningEagle::new()
        .base_url("https://id.example")
        .client_id("urn:client")
        .client_secret("secret")
        .build(transport)
        .unwrap_err();
    assert!(err.to_string().contains("`:`"), "{err}");
}

#[tokio::test]
async fn kpn_sends_grant_type_in_the_query_and_reads_string_json() {
    let (transport, log) = endpoint(
        200,
        r#"{
            "refresh_token_expires_in": "0", "api_product_list": "[xxxxxx]",
            "organization_name": "kpn", "developer_email": "demo123@kpn.com",
            "token_type": "BearerToken", "issued_at": "1587458037687", "client_id": "APP_CLIENT_ID",
            "access_token": "staG765sBUuai4OMeZiTful6PTRt", "application_name": "test_application",
            "level": "demo", "scope": "", "expires_in": "3599", "refresh_token": "",
            "refresh_count": "0", "status": "approved"
        }"#
        .to_owned(),
    );
    let source = Kpn::new()
        .client_id("APP_CLIENT_ID")
        .client_secret("APP_CLIENT_SECRET")
        .build(transport)
        .unwrap();
    let token = source.token().await.unwrap();
    assert!(token.is_bearer());
    assert_eq!(token.scope(), None);
    assert!(token.refresh_token().is_none());
    assert_eq!(token.extra()["status"], "approved");
    assert_eq!(token.extra()["api_product_list"], "[xxxxxx]");
    // issued_at is years ago by our clock: the clocks disagree, so expires_in is trusted.
    assert_eq!(token.lifetime(), Some(Duration::from_secs(3599)));
    let r = &log.lock().unwrap()[0];
    assert_eq!(
        r.uri,
        "https://api-prd.kpn.com/oauth/client_credential/accesstoken?grant_type=client_credentials"
    );
    assert_eq!(
        r.form,
        [
            ("client_id".to_owned(), "APP_CLIENT_ID".to_owned()),
            ("client_secret".to_owned(), "APP_CLIENT_SECRET".to_owned()),
        ]
    );
}

#[tokio::test]
async fn kpn_apigee_faults_are_typed() {
    let (transport, _) = endpoint(
        401,
        r#"{"fault":{"faultstring":"Invalid client identifier {0}","detail":{"errorcode":"oauth.v2.InvalidClientIdentifier"}}}"#.to_owned(),
    );
    let err = Kpn::new()
        .client_id("x")
        .client_secret("y")
        .build(transport)
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
    assert!(
        err.to_string().contains("Invalid client identifier"),
        "{err}"
    );
}

#[test]
fn provider_debug_shows_no_secret() {
    let kp = KontrollePlus::new().client_secret("TOPSECRET");
    let se = ScreeningEagle::new().client_secret("TOPSECRET");
    let kpn = Kpn::new().client_secret("TOPSECRET");
    for text in [format!("{kp:?}"), format!("{se:?}"), format!("{kpn:?}")] {
        assert!(!text.contains("TOPSECRET"), "{text}");
    }
    let (transport, _) = endpoint(200, String::new());
    let source = Kpn::new()
        .client_id("id")
        .client_secret("TOPSECRET")
        .build(transport)
        .unwrap();
    assert!(!format!("{source:?}").contains("TOPSECRET"));
}

/// The emulator names the providers with an enum of its own (it does not depend on the
/// library it tests): both must name the same providers, with the same names, which is also
/// what configuration reads; the protocol facts the emulator copies must be the library's.
#[test]
fn the_emulator_and_the_library_name_the_same_providers() {
    use tower_bearer::config::ProviderConfig;
    use tower_bearer::providers::Provider;
    use tower_bearer_emulator::Provider as Emulated;

    for emulated in Emulated::ALL {
        let provider: Provider = emulated.as_str().parse().unwrap();
        assert_eq!(provider.as_str(), emulated.as_str());
        assert_eq!(provider.to_string(), emulated.to_string());
        let config: ProviderConfig = toml::from_str(&format!(
            "provider = \"{}\"\nclient_id = \"id\"",
            emulated.as_str()
        ))
        .unwrap();
        assert_eq!(config.provider, provider);
    }
    let emulated: Vec<&str> = Emulated::ALL.iter().map(|p| p.as_str()).collect();
    let library: Vec<&str> = Provider::ALL
        .iter()
        .filter(|p| **p != Provider::Generic)
        .map(|p| p.as_str())
        .collect();
    assert_eq!(library, emulated, "the emulator plays every named provider");
    assert_eq!(
        tower_bearer::providers::SCREENING_EAGLE_TOKEN_PATH,
        tower_bearer_emulator::SCREENING_EAGLE_TOKEN_PATH
    );
    assert_eq!(
        tower_bearer::providers::PROVIDER_API_ACCESS_ROLE,
        tower_bearer_emulator::PROVIDER_API_ACCESS_ROLE
    );
}

/// The settings the builders share behave the same on each: a missing one names its setter
/// (typed, as the error's `SettingError` source), a full token URL wins over a base URL, and
/// the URL is formed at `build()`, whichever order the setters came in.
#[test]
fn the_shared_settings_behave_alike_on_every_builder() {
    use std::error::Error;
    use tower_bearer::providers::{Provider, SettingError};

    fn setting(err: &tower_bearer::TokenError) -> (Provider, &'static str) {
        assert_eq!(err.kind(), TokenErrorKind::Configuration, "{err}");
        let setting = err
            .source()
            .and_then(|s| s.downcast_ref::<SettingError>())
            .unwrap_or_else(|| panic!("no SettingError in {err:?}"));
        assert!(
            err.to_string()
                .contains(&format!("`{}`", setting.setting()))
        );
        assert!(err.hint().is_some(), "{err}");
        (setting.provider(), setting.setting())
    }
    let build_err = |result: Result<_, tower_bearer::TokenError>| match result {
        Ok(source) => panic!("built {source:?}"),
        Err(err) => setting(&err),
    };
    let t = || endpoint(200, String::new()).0;

    // No client id, then no secret.
    let kp = || {
        KontrollePlus::new()
            .authority("https://login.example/t")
            .app_id_uri("api://x")
    };
    assert_eq!(
        build_err(kp().build(t())),
        (Provider::KontrollePlus, "client_id")
    );
    assert_eq!(
        build_err(kp().client_id("id").build(t())),
        (Provider::KontrollePlus, "client_secret")
    );
    let se = || ScreeningEagle::new().base_url("https://id.example");
    assert_eq!(
        build_err(se().build(t())),
        (Provider::ScreeningEagle, "client_id")
    );
    assert_eq!(
        build_err(se().client_id("id").build(t())),
        (Provider::ScreeningEagle, "client_secret")
    );
    assert_eq!(
        build_err(Kpn::new().build(t())),
        (Provider::Kpn, "client_id")
    );
    assert_eq!(
        build_err(Kpn::new().client_id("id").build(t())),
        (Provider::Kpn, "client_secret")
    );
    // An unusable URL names the setter it came from, and what to write.
    assert_eq!(
        build_err(
            kp().authority("http://login.example/t")
                .client_id("id")
                .client_secret("s3cret")
                .build(t())
        ),
        (Provider::KontrollePlus, "authority")
    );
    assert_eq!(
        build_err(
            se().base_url("ftp://id.example")
                .client_id("id")
                .client_secret("s3cret")
                .build(t())
        ),
        (Provider::ScreeningEagle, "base_url")
    );
    assert_eq!(
        build_err(
            Kpn::new()
                .token_url("not a url")
                .client_id("id")
                .client_secret("s3cret")
                .build(t())
        ),
        (Provider::Kpn, "token_url")
    );
    // Kontrolle+ takes its scope as the app id URI or as the one `/.default` scope.
    assert_eq!(
        build_err(
            KontrollePlus::new()
                .authority("https://login.example/t")
                .client_id("id")
                .client_secret("s3cret")
                .scope("api://x/.default api://y/.default")
                .build(t())
        ),
        (Provider::KontrollePlus, "scope")
    );
    let scoped = KontrollePlus::new()
        .authority("https://login.example/t")
        .client_id("id")
        .client_secret("s3cret")
        .scope("api://x/.default")
        .build(t())
        .unwrap();
    assert_eq!(scoped.request().requested_scopes(), ["api://x/.default"]);

    // The full token URL wins over the base URL, set before or after it.
    for source in [
        se().token_url("https://proxy.example/token")
            .client_id("id")
            .client_secret("s3cret")
            .build(t())
            .unwrap(),
        ScreeningEagle::new()
            .token_url("https://proxy.example/token")
            .base_url("https://id.example")
            .client_id("id")
            .client_secret("s3cret")
            .build(t())
            .unwrap(),
    ] {
        assert_eq!(source.request().token_url(), "https://proxy.example/token");
    }
    let kontrolle = kp()
        .token_url("https://proxy.example/k/token")
        .client_id("id")
        .client_secret("s3cret")
        .build(t())
        .unwrap();
    assert_eq!(
        kontrolle.request().token_url(),
        "https://proxy.example/k/token"
    );
}
