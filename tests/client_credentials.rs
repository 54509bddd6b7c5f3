//! The client-credentials flow against an in-process token endpoint (a Tower service), on
//! Tokio's paused clock: what is sent, what is retried, what is redacted.

mod common;

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
known_secrets!(
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
    assert_eq!(err.kind(), TokenErrorKind::Server);
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
    assert_eq!(err.kind(), TokenErrorKind::InvalidClient);
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
    assert_eq!(err.kind(), TokenErrorKind::MalformedResponse);
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
    assert_eq!(err.kind(), TokenErrorKind::InvalidToken);
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
