//! Test helpers: a scripted token source that counts its calls, and an API that echoes the
//! `Authorization` header it received; and the suite-wide TRACE capture ([`capture`]), which
//! every test binary with `mod common;` installs when `TOWER_BEARER_TRACE_CAPTURE` is set.
#![allow(dead_code, unreachable_pub)]

pub mod capture;
pub mod redis_server;

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower::{Service, service_fn};
use tower_bearer::{Token, TokenError, TokenErrorKind, TokenSource};

pub const SECOND: Duration = Duration::from_secs(1);
pub const MINUTE: Duration = Duration::from_secs(60);

type Respond = dyn Fn(usize) -> Result<Token, TokenError> + Send + Sync;

/// A token source whose n-th call (0-based) answers `respond(n)` after `delay`.
#[derive(Clone)]
pub struct Scripted {
    calls: Arc<AtomicUsize>,
    times: Arc<Mutex<Vec<Instant>>>,
    delay: Duration,
    respond: Arc<Respond>,
}

impl Scripted {
    pub fn new(
        delay: Duration,
        respond: impl Fn(usize) -> Result<Token, TokenError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            calls: Arc::default(),
            times: Arc::default(),
            delay,
            respond: Arc::new(respond),
        }
    }

    /// Tokens `token-0`, `token-1`, ... each valid for `lifetime`.
    pub fn numbered(delay: Duration, lifetime: Duration) -> Self {
        Self::new(delay, move |n| {
            Ok(Token::new(format!("token-{n}")).with_expires_in(lifetime))
        })
    }

    /// Always fails with a server error.
    pub fn failing(delay: Duration) -> Self {
        Self::new(delay, |n| Err(server_error(n)))
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// When each call started.
    pub fn call_times(&self) -> Vec<Instant> {
        self.times.lock().unwrap().clone()
    }
}

impl TokenSource for Scripted {
    async fn token(&self) -> Result<Token, TokenError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.times.lock().unwrap().push(Instant::now());
        tokio::time::sleep(self.delay).await;
        let answer = (self.respond)(n);
        if let Ok(token) = &answer {
            capture::register(
                "scripted token",
                secrecy::ExposeSecret::expose_secret(token.access_token()),
            );
        }
        answer
    }
}

pub fn server_error(n: usize) -> TokenError {
    TokenError::new(
        TokenErrorKind::Unavailable,
        format!("token endpoint failed (call {n})"),
    )
    .with_status(StatusCode::SERVICE_UNAVAILABLE)
}

/// What the API saw of one request.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub requests: Arc<AtomicUsize>,
    pub sensitive: Arc<AtomicUsize>,
}

/// An API that answers with the `Authorization` header it received as the body ("" if none),
/// and with the status `status_for(header)`.
pub fn api(
    seen: Seen,
    status_for: impl Fn(&str) -> StatusCode + Send + Sync + 'static,
) -> impl Service<
    Request<()>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<String>, Infallible>> + Send + 'static,
> + Clone
+ Send
+ 'static {
    let status_for = Arc::new(status_for);
    service_fn(move |req: Request<()>| {
        let seen = seen.clone();
        let status_for = Arc::clone(&status_for);
        async move {
            seen.requests.fetch_add(1, Ordering::SeqCst);
            let auth = match req.headers().get(http::header::AUTHORIZATION) {
                Some(value) => {
                    if value.is_sensitive() {
                        seen.sensitive.fetch_add(1, Ordering::SeqCst);
                    }
                    let value = value.to_str().unwrap().to_owned();
                    if let Some((_, credentials)) = value.split_once(' ') {
                        capture::register("credentials received by the test API", credentials);
                    }
                    value
                }
                None => String::new(),
            };
            let mut response = Response::new(auth.clone());
            *response.status_mut() = status_for(&auth);
            Ok::<_, Infallible>(response)
        }
    })
}

/// An API that answers 200 to everything.
pub fn ok_api(
    seen: Seen,
) -> impl Service<
    Request<()>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<String>, Infallible>> + Send + 'static,
> + Clone
+ Send
+ 'static {
    api(seen, |_| StatusCode::OK)
}

pub fn get(uri: &str) -> Request<()> {
    Request::get(uri).body(()).unwrap()
}

/// One request for each reason the layer withholds its token, through `layer` over an API
/// that answers `/redirect` with a 302 to another origin (with a presigned-looking query) and
/// everything else with 200. Returns the kinds of the errors, in order.
pub async fn withhold_once_for_each_reason(
    layer: tower_bearer::BearerTokenLayer,
) -> Vec<tower_bearer::error::DestinationErrorKind> {
    use tower::{Layer, ServiceExt};
    capture::register("withheld presigned query", "presigned-withheld-7f3e");
    let api = service_fn(|req: Request<()>| async move {
        let mut response = Response::new(String::new());
        if req.uri().path() == "/redirect" {
            *response.status_mut() = StatusCode::FOUND;
            response.headers_mut().insert(
                http::header::LOCATION,
                http::HeaderValue::from_static(
                    "https://elsewhere.example/landing?X-Amz-Signature=presigned-withheld-7f3e",
                ),
            );
        }
        Ok::<_, Infallible>(response)
    });
    let service = layer
        .allowed_hosts(["api.example", "plain.example"])
        .expect("valid entries")
        .layer(api);
    let mut mismatch = get("https://api.example/x");
    mismatch
        .headers_mut()
        .insert(http::header::HOST, "other.example".parse().unwrap());
    let mut kinds = Vec::new();
    for request in [
        get("http://plain.example/x"),
        get("https://other.example/x"),
        mismatch,
        get("https://api.example/redirect"),
    ] {
        match service.clone().oneshot(request).await {
            Err(tower_bearer::Error::Destination(e)) => kinds.push(e.kind()),
            other => panic!("expected a destination error, got {other:?}"),
        }
    }
    kinds
}

/// Collects everything a test's own tracing subscriber writes (pass a clone as its writer).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything this thread logs, at TRACE, as plain text, until the guard is dropped.
    pub fn trace() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Self::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The binary of example `name`, which `cargo test --all-features` builds next to the test
/// binaries (`target/<profile>/examples/<name>`).
pub fn example_binary(name: &str) -> std::path::PathBuf {
    // target/<profile>/deps/<test binary> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps/<test binary>")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --all-features`, which builds examples",
        path.display()
    );
    path
}
