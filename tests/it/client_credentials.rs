//! The client-credentials flow against an in-process token endpoint (a Tower service), on
//! Tokio's paused clock: what is sent, what is retried, what is redacted.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};
use tower_bearer::oauth::{
    ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport,
};
use tower_bearer::{BearerTokenLayer, TokenErrorKind, TokenSource};

const SECRET: &str = "cl1ent-s3cret-VALUE";
crate::known_secrets!(
    "client_credentials.rs SECRET" => SECRET,
    "client_credentials.rs token" => "eyJ.payload.sig",
    "client_credentials.rs assertion 1" => "signed.by.vault1",
    "client_credentials.rs assertion 2" => "signed.by.vault2",
);

/// A token endpoint answering the n-th request (0-based) with `answer(n)`, recording requests.
#[derive(Clone)]
struct Endpoint {
    calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
}

type Answer = fn(usize) -> Result<Response<Full<Bytes>>, std::io::Error>;

impl Endpoint {
    fn new() -> Self {
        Self {
            calls: Arc::default(),
            seen: Arc::default(),
        }
    }

    fn source(
        &self,
        answer: Answer,
    ) -> ClientCredentials<impl tower_bearer::oauth::Transport + use<>> {
        let endpoint = self.clone();
        let service = service_fn(move |req: Request<Full<Bytes>>| {
            let endpoint = endpoint.clone();
            async move {
                let n = endpoint.calls.fetch_add(1, Ordering::SeqCst);
                let uri = req.uri().to_string();
                let auth = req
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let body = String::from_utf8(body.to_vec()).unwrap();
                endpoint.seen.lock().unwrap().push((uri, auth, body));
                answer(n)
            }
        });
        ClientCredentials::new(
            ClientCredentialsRequest::new("https://login.example/tenant/oauth2/v2.0/token")
                .unwrap()
                .scope("api://partner/.default"),
            ClientAuth::client_secret_post("client-id", SECRET),
            ServiceTransport::new(service),
        )
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn json(status: u16, body: &str) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(response)
}

const OK: &str = r#"{"access_token":"eyJ.payload.sig","token_type":"Bearer","expires_in":3599}"#;

#[tokio::test(start_paused = true)]
async fn sends_the_documented_request_and_parses_the_token() {
    let endpoint = Endpoint::new();
    let token = endpoint.source(|_| json(200, OK)).token().await.unwrap();
    assert_eq!(token.lifetime(), Some(Duration::from_secs(3599)));
    let (uri, auth, body) = endpoint.seen.lock().unwrap()[0].clone();
    assert_eq!(uri, "https://login.example/tenant/oauth2/v2.0/token");
    assert_eq!(auth, "");
    assert_eq!(
        body,
        "grant_type=client_credentials&scope=api%3A%2F%2Fpartner%2F.default\
         &client_id=client-id&client_secret=cl1ent-s3cret-VALUE"
    );
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_backoff() {
    let endpoint = Endpoint::new();
    let start = Instant::now();
    let token = endpoint
        .source(|n| match n {
            0 => json(503, r#"{"error":"temporarily_unavailable"}"#),
            1 => Err(std::io::Error::other("connection reset")),
            _ => json(200, OK),
        })
        .token()
        .await
        .unwrap();
    assert!(token.is_bearer());
    assert_eq!(endpoint.calls(), 3);
    let waited = Instant::now() - start;
    assert!(waited >= Duration::from_millis(125 + 250) && waited <= Duration::from_millis(750));
}

#[tokio::test(start_paused = true)]
async fn attempts_are_bounded() {
    let endpoint = Endpoint::new();
    let err = endpoint
        .source(|_| json(502, "<html>Bad Gateway</html>"))
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Unavailable);
    assert_eq!(endpoint.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_not_retried_and_say_what_to_fix() {
    let endpoint = Endpoint::new();
    let err = endpoint
        .source(|_| {
            json(
                400,
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","trace_id":"tr-1","correlation_id":"co-1"}"#,
            )
        })
        .token()
        .await
        .unwrap_err();
    assert_eq!(endpoint.calls(), 1);
    assert_eq!(err.kind(), TokenErrorKind::CredentialsRejected);
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    let text = err.to_string();
    assert!(
        text.contains("AADSTS7000215") && text.contains("correlation_id=co-1"),
        "{text}"
    );
    assert!(
        text.contains("hint: check the client id and secret"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_retry_after_is_left_to_the_cache() {
    let endpoint = Endpoint::new();
    let err = endpoint
        .source(|_| {
            let mut r = json(429, r#"{"error":"slow_down"}"#)?;
            r.headers_mut().insert("retry-after", "60".parse().unwrap());
            Ok(r)
        })
        .token()
        .await
        .unwrap_err();
    assert_eq!(endpoint.calls(), 1);
    assert_eq!(err.kind(), TokenErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_that_never_answers_times_out() {
    let service = service_fn(|_req: Request<Full<Bytes>>| async {
        std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>().await
    });
    let source = ClientCredentials::new(
        ClientCredentialsRequest::new("https://login.example/token").unwrap(),
        ClientAuth::client_secret_basic("id", SECRET),
        ServiceTransport::new(service),
    )
    .attempt_timeout(Duration::from_secs(2))
    .max_attempts(2);
    let start = Instant::now();
    let err = source.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Timeout);
    let took = Instant::now() - start;
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_huge_answer_is_cut_off() {
    let endpoint = Endpoint::new();
    let err = endpoint
        .source(|_| {
            json(
                200,
                &format!(r#"{{"access_token":"{}"}}"#, "a".repeat(100_000)),
            )
        })
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
    assert!(err.to_string().contains("larger than 65536 bytes"));
}

#[tokio::test(start_paused = true)]
async fn an_echoed_secret_is_redacted() {
    let endpoint = Endpoint::new();
    let err = endpoint
        .source(|_| {
            json(
                401,
                r#"{"error":"invalid_client","error_description":"bad secret cl1ent-s3cret-VALUE for client-id"}"#,
            )
        })
        .token()
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(
        shown.contains("bad secret [redacted] for client-id"),
        "{shown}"
    );
}

#[tokio::test(start_paused = true)]
async fn behind_the_layer_many_requests_make_one_token_request() {
    let endpoint = Endpoint::new();
    let layer = BearerTokenLayer::new(endpoint.source(|_| json(200, OK)));
    let api = layer.layer(service_fn(|req: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(req.headers()["authorization"].clone()))
    }));
    let mut tasks = Vec::new();
    for _ in 0..1_000 {
        let api = api.clone();
        tasks.push(tokio::spawn(
            api.oneshot(Request::get("https://api.example/").body(()).unwrap()),
        ));
    }
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap().body(),
            "Bearer eyJ.payload.sig"
        );
    }
    assert_eq!(endpoint.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_token_failing_the_claims_check_is_not_used() {
    use tower_bearer::oauth::ClaimsCheck;
    // {"aud":"api://other","roles":["Reader"],"exp":4102444800}
    const WRONG: Answer = |_| {
        json(
            200,
            r#"{"access_token":"eyJhbGciOiJub25lIn0.eyJhdWQiOiJhcGk6Ly9vdGhlciIsInJvbGVzIjpbIlJlYWRlciJdLCJleHAiOjQxMDI0NDQ4MDB9.","expires_in":3600}"#,
        )
    };
    let endpoint = Endpoint::new();
    let source = endpoint.source(WRONG).check_claims(
        ClaimsCheck::new()
            .audience("api://kontrolle-plus")
            .require_role("ProviderApi.Access"),
    );
    let err = source.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
    assert!(err.to_string().contains("`aud`"), "{err}");
    assert_eq!(endpoint.calls(), 1, "not retried");

    let source = endpoint
        .source(WRONG)
        .check_claims(ClaimsCheck::new().audience("api://other"));
    assert!(source.token().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn an_assertion_hook_signs_each_request() {
    use tower_bearer::oauth::{AssertionContext, ServiceTransport};
    let seen: Arc<Mutex<Vec<AssertionContext>>> = Arc::default();
    let auth = {
        let seen = Arc::clone(&seen);
        ClientAuth::client_assertion("app-id", move |ctx| {
            seen.lock().unwrap().push(ctx.clone());
            let n = seen.lock().unwrap().len();
            async move { Ok(format!("signed.by.vault{n}")) }
        })
    };
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let transport = {
        let bodies = Arc::clone(&bodies);
        ServiceTransport::new(service_fn(move |req: Request<Full<Bytes>>| {
            let bodies = Arc::clone(&bodies);
            async move {
                let body = req.into_body().collect().await.unwrap().to_bytes();
                bodies
                    .lock()
                    .unwrap()
                    .push(String::from_utf8(body.to_vec()).unwrap());
                json(200, OK)
            }
        }))
    };
    let source = ClientCredentials::new(
        ClientCredentialsRequest::new("https://login.example/t/oauth2/v2.0/token").unwrap(),
        auth,
        transport,
    );
    source.token().await.unwrap();
    source.token().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].client_id, "app-id");
    assert_eq!(
        seen[0].audience,
        "https://login.example/t/oauth2/v2.0/token"
    );
    let bodies = bodies.lock().unwrap();
    assert!(bodies[0].ends_with(
        "client_id=app-id&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=signed.by.vault1"
    ), "{}", bodies[0]);
    assert!(bodies[1].ends_with("client_assertion=signed.by.vault2"));
}

/// A secret with characters every encoding treats differently.
const ECHO_SECRET: &str = "Q3h8Q~Zt2 s/e+c\"ret&x";
/// A client assertion as a vault would sign it (JWT-shaped).
const ECHO_ASSERTION: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJlY2hvLWNsaWVudCJ9.ZWNoby12YXVsdC1zaWduYXR1cmU";

/// How a token endpoint, a proxy or an error page echoes what it received.
#[derive(Clone, Copy, Debug)]
enum Echo {
    /// The form body, in a JSON `error_description`.
    BodyInJson,
    /// The form body, in an HTML page.
    BodyInHtml,
    /// The form body, base64 (a request dump).
    BodyBase64,
    /// The client secret decoded, in an HTML page.
    SecretDecoded,
    /// The client secret percent-encoded (RFC 3986), in JSON.
    SecretPercent,
    /// The `Authorization` header, in JSON.
    AuthorizationInJson,
    /// The form body after noise: cut at 300 characters inside the secret.
    BodyCut,
    /// The form body, cut short by the server 8 characters into the secret.
    ServerCut,
}

/// Where the secret starts in a form body: the 5th character before the 300-character cut
/// after `294 - value_at` characters of noise and a space.
fn value_at(body: &str) -> usize {
    body.find("client_secret=")
        .map(|i| i + "client_secret=".len())
        .or_else(|| {
            body.find("client_assertion=")
                .map(|i| i + "client_assertion=".len())
        })
        .unwrap()
}

fn echo_source(
    echo: Echo,
    auth: ClientAuth,
) -> ClientCredentials<impl tower_bearer::oauth::Transport + use<>> {
    use base64::Engine;
    let service = service_fn(move |req: Request<Full<Bytes>>| async move {
        let authorization = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        let secret = form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "client_secret")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let json = |text: &str| {
            format!(
                r#"{{"error":"invalid_client","error_description":{}}}"#,
                serde_json::to_string(text).unwrap()
            )
        };
        let answer = match echo {
            Echo::BodyInJson => json(&format!("received {body}")),
            Echo::BodyInHtml => format!("<html><pre>received {body}</pre></html>"),
            Echo::BodyBase64 => json(&format!(
                "dump {}",
                base64::engine::general_purpose::STANDARD.encode(&body)
            )),
            Echo::SecretDecoded => format!("<p>secret {secret} is not valid</p>"),
            Echo::SecretPercent => json(&format!(
                "secret {} is not valid",
                secret
                    .bytes()
                    .map(|b| if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    })
                    .collect::<String>()
            )),
            Echo::AuthorizationInJson => json(&format!("bad header {authorization}")),
            Echo::BodyCut => json(&format!("{} {body}", "x".repeat(294 - value_at(&body)))),
            Echo::ServerCut => json(&format!("received {}", &body[..value_at(&body) + 8])),
        };
        json_answer(401, &answer)
    });
    ClientCredentials::new(
        ClientCredentialsRequest::new("https://login.example/tenant/oauth2/v2.0/token").unwrap(),
        auth,
        ServiceTransport::new(service),
    )
}

fn json_answer(status: u16, body: &str) -> Result<Response<Full<Bytes>>, std::io::Error> {
    json(status, body)
}

/// Every form a secret can be echoed in, registered with the TRACE capture so the scan looks
/// for them too.
fn echo_forms(secret: &str, basic_id: Option<&str>) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let percent: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let json = serde_json::to_string(secret).unwrap();
    let mut forms = vec![
        secret.to_owned(),
        form.clone(),
        percent,
        json[1..json.len() - 1].to_owned(),
        STANDARD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
    ];
    if let Some(id) = basic_id {
        let id_form: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
        forms.push(STANDARD.encode(format!("{id}:{secret}")));
        forms.push(STANDARD.encode(format!("{id_form}:{form}")));
    }
    for (i, form) in forms.iter().enumerate() {
        crate::common::capture::register(
            &format!("client_credentials.rs echoed secret form {i}"),
            form,
        );
    }
    forms
}

#[tokio::test(start_paused = true)]
async fn an_echoed_secret_is_redacted_in_every_form_in_display_debug_and_logs() {
    let post = |echo| {
        (
            echo,
            ClientAuth::client_secret_post("client-id", ECHO_SECRET),
            echo_forms(ECHO_SECRET, None),
        )
    };
    let assertion = |echo| {
        (
            echo,
            ClientAuth::client_assertion("client-id", |_| async { Ok(ECHO_ASSERTION.to_owned()) }),
            echo_forms(ECHO_ASSERTION, None),
        )
    };
    let mut cases: Vec<(Echo, ClientAuth, Vec<String>)> = [
        Echo::BodyInJson,
        Echo::BodyInHtml,
        Echo::BodyBase64,
        Echo::SecretDecoded,
        Echo::SecretPercent,
        Echo::BodyCut,
        Echo::ServerCut,
    ]
    .into_iter()
    .map(post)
    .collect();
    cases.push((
        Echo::AuthorizationInJson,
        ClientAuth::client_secret_basic("client id", ECHO_SECRET),
        echo_forms(ECHO_SECRET, Some("client id")),
    ));
    cases.push((
        Echo::AuthorizationInJson,
        ClientAuth::client_secret_basic_raw("client-id", ECHO_SECRET).unwrap(),
        echo_forms(ECHO_SECRET, Some("client-id")),
    ));
    cases.extend(
        [Echo::BodyInJson, Echo::BodyCut, Echo::ServerCut]
            .into_iter()
            .map(assertion),
    );
    for (echo, auth, forms) in cases {
        let method = auth.method();
        let err = echo_source(echo, auth).token().await.unwrap_err();
        // As an application would log it.
        tracing::debug!(error = %err, "token request failed ({echo:?})");
        tracing::trace!(error = ?err, "token request failed ({echo:?})");
        let shown = format!("{err} {err:?} {err:#?}");
        // Redacted (and perhaps cut after that).
        assert!(shown.contains("[reda"), "{echo:?} {method}: {shown}");
        for form in &forms {
            // Also a prefix of it, left where the text was cut.
            let cut: String = form.chars().take(6).collect();
            assert!(
                !shown.contains(&cut),
                "{echo:?} {method}: {cut:?} in {shown}"
            );
        }
    }
}
