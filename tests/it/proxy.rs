//! The reqwest transport and proxies: what reqwest does by default (the environment's
//! `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY`, no exception for loopback), and the
//! builder's `proxy` and `no_proxy`. An HTTP proxy on loopback counts what it forwards to the
//! emulator. The environment is read in child processes only (the `token` example), so the
//! other tests of this binary never see a proxy.

crate::known_secrets!(
    "proxy.rs proxy password" => PROXY_PASSWORD,
);

use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_bearer::oauth::{ClientCredentials, ReqwestTransport};
use tower_bearer::providers::Kpn;
use tower_bearer::{TokenErrorKind, TokenSource};
use tower_bearer_emulator::{Emulator, Provider};

const PROXY_PASSWORD: &str = "proxy-pass-5c1d9e";

/// A forwarding HTTP proxy: records the absolute URI of each request and sends it on.
#[derive(Clone)]
struct Forwarder {
    seen: Arc<Mutex<Vec<String>>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

async fn forward(State(proxy): State<Forwarder>, request: Request) -> Response {
    proxy.seen.lock().unwrap().push(request.uri().to_string());
    let (mut parts, body) = request.into_parts();
    parts.headers.remove("proxy-authorization");
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let answer = match proxy
        .client
        .request(http::Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(answer) => answer,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let (parts, body) = answer.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Starts the proxy; returns its log of URIs and its URL.
async fn start_proxy() -> (Arc<Mutex<Vec<String>>>, String) {
    let proxy = Forwarder {
        seen: Arc::default(),
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    let seen = Arc::clone(&proxy.seen);
    let app = Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (seen, url)
}

fn kpn(emulator: &Emulator, transport: ReqwestTransport) -> ClientCredentials<ReqwestTransport> {
    Kpn::new()
        .token_url(emulator.token_url(Provider::Kpn))
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .build(transport)
        .expect("valid settings")
}

#[tokio::test]
async fn a_given_proxy_carries_token_requests_and_its_exceptions_hold() {
    let emulator = Emulator::start().await.unwrap();
    let (seen, proxy_url) = start_proxy().await;

    let through = ReqwestTransport::builder()
        .proxy(reqwest::Proxy::http(&proxy_url).unwrap())
        .build()
        .unwrap();
    kpn(&emulator, through).token().await.unwrap();
    let uris = seen.lock().unwrap().clone();
    assert_eq!(
        uris.len(),
        1,
        "one token request, through the proxy, loopback or not"
    );
    assert!(
        uris[0].starts_with(&emulator.token_url(Provider::Kpn)),
        "{uris:?}"
    );
    assert_eq!(emulator.token_requests(Provider::Kpn), 1);

    // The proxy's own exception list: loopback connects directly.
    let excepted = ReqwestTransport::builder()
        .proxy(
            reqwest::Proxy::http(&proxy_url)
                .unwrap()
                .no_proxy(reqwest::NoProxy::from_string("127.0.0.1")),
        )
        .build()
        .unwrap();
    kpn(&emulator, excepted).token().await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1, "not through the proxy");
    assert_eq!(emulator.token_requests(Provider::Kpn), 2);
}

#[tokio::test]
async fn proxy_credentials_appear_in_no_error_and_no_debug() {
    let emulator = Emulator::start().await.unwrap();
    // A proxy that is not there: the token request fails to connect.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let proxy = reqwest::Proxy::all(format!("http://ops:{PROXY_PASSWORD}@{addr}")).unwrap();
    let builder = ReqwestTransport::builder().proxy(proxy);
    assert!(!format!("{builder:?}").contains(PROXY_PASSWORD));
    let transport = builder.build().unwrap();
    assert!(!format!("{transport:?}").contains(PROXY_PASSWORD));

    let error = kpn(&emulator, transport).token().await.unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Transport, "{error}");
    let mut text = format!("{error} {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    assert!(!text.contains(PROXY_PASSWORD), "{text}");
    assert_eq!(emulator.token_requests(Provider::Kpn), 0);
}

/// Runs the `token` example for the emulator's KPN endpoint with `env` (and nothing else of
/// this process's environment) and `extra` arguments.
async fn token_cli(emulator: &Emulator, env: &[(&str, &str)], extra: &[&str]) -> Output {
    let path = crate::common::example_binary("token");
    let url = emulator.token_url(Provider::Kpn);
    let client_id = emulator.client_id();
    let mut command = tokio::process::Command::new(path);
    command
        .args([
            "--provider",
            "kpn",
            "--token-url",
            &url,
            "--client-id",
            &client_id,
        ])
        .args(extra)
        .env_clear()
        .env("CLIENT_SECRET", emulator.client_secret());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.unwrap();
    crate::common::capture::record_output("token example stderr", &output.stderr);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn by_default_the_environment_names_the_proxy_and_no_proxy_ignores_it() {
    let emulator = Emulator::start().await.unwrap();
    let (seen, proxy_url) = start_proxy().await;
    let proxied = || seen.lock().unwrap().len();

    // reqwest's default: `HTTP_PROXY` for an http token URL, loopback included.
    token_cli(&emulator, &[("HTTP_PROXY", &proxy_url)], &[]).await;
    assert_eq!(proxied(), 1);
    token_cli(&emulator, &[("ALL_PROXY", &proxy_url)], &[]).await;
    assert_eq!(proxied(), 2);
    // `HTTPS_PROXY` is for https token URLs only.
    token_cli(&emulator, &[("HTTPS_PROXY", &proxy_url)], &[]).await;
    assert_eq!(proxied(), 2);
    // `NO_PROXY` names the exceptions.
    token_cli(
        &emulator,
        &[
            ("HTTP_PROXY", &proxy_url),
            ("NO_PROXY", "localhost,127.0.0.1"),
        ],
        &[],
    )
    .await;
    assert_eq!(proxied(), 2);
    // `ReqwestTransportBuilder::no_proxy`: the environment is ignored.
    token_cli(&emulator, &[("HTTP_PROXY", &proxy_url)], &["--no-proxy"]).await;
    token_cli(&emulator, &[("ALL_PROXY", &proxy_url)], &["--no-proxy"]).await;
    assert_eq!(proxied(), 2);
    assert_eq!(emulator.token_requests(Provider::Kpn), 6);
}
