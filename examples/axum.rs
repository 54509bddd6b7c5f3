//! An axum app whose handlers call a partner API through one shared, layered client kept in
//! state. Runs against the loopback provider emulator (`tower-bearer-emulator`); no credentials needed.
//!
//! ```text
//! cargo run --example axum
//! ```

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use tower_bearer::oauth::ServiceTransport;
use tower_bearer::providers::KontrollePlus;
use tower_bearer::{BearerToken, BearerTokenLayer};
use tower_bearer_emulator::{Emulator, Provider};

type Http = Client<HttpConnector, Full<Bytes>>;

#[derive(Clone)]
struct AppState {
    /// The partner API client: a hyper client behind the bearer layer.
    partner: BearerToken<Http>,
    partner_base: String,
}

/// `GET /controls/{id}`: asks the partner API, answers with its status.
async fn control(
    State(state): State<AppState>,
    Path(id): Path<u32>,
) -> Result<(StatusCode, String), PartnerError> {
    let request = http::Request::get(format!("{}/{id}", state.partner_base))
        .body(Full::default())
        .expect("valid request");
    let response = state.partner.oneshot(request).await?;
    Ok((
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        format!("partner answered {}\n", response.status()),
    ))
}

/// The partner call's error as this app's answer: `?` in a handler turns
/// `tower_bearer::Error` into it.
struct PartnerError(tower_bearer::Error<hyper_util::client::legacy::Error>);

impl From<tower_bearer::Error<hyper_util::client::legacy::Error>> for PartnerError {
    fn from(error: tower_bearer::Error<hyper_util::client::legacy::Error>) -> Self {
        Self(error)
    }
}

impl IntoResponse for PartnerError {
    fn into_response(self) -> Response {
        use tower_bearer::Error;
        // The message is typed and free of secrets: safe to log and to show.
        let message = format!("{}\n", self.0);
        match &self.0 {
            // No token: the provider is down or throttling (try again, when it says), or our
            // credentials or configuration are wrong (ours to fix: a 500).
            Error::Token(e) if e.kind().is_transient() => {
                let mut response = (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
                if let Some(after) = e.retry_after() {
                    response.headers_mut().insert(
                        http::header::RETRY_AFTER,
                        http::HeaderValue::from(after.as_secs().max(1)),
                    );
                }
                response
            }
            Error::Token(_) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
            // The request would have taken the token where it must not go: a bug or a
            // misconfiguration of ours.
            Error::Destination(_) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
            // The partner could not be reached.
            Error::Service(_) => (StatusCode::BAD_GATEWAY, message).into_response(),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start().await?;
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let source = KontrollePlus::new()
        .authority(emulator.authority())
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .app_id_uri(emulator.app_id_uri())
        .build(ServiceTransport::new(http.clone()))?;
    let state = AppState {
        partner: BearerTokenLayer::new(source).layer(http.clone()),
        partner_base: emulator.api_url(Provider::KontrollePlus, "controls"),
    };
    let app = Router::new()
        .route("/controls/{id}", get(control))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Call our own app 100 times, concurrently, over loopback.
    let mut calls = Vec::new();
    for id in 0..100 {
        let http = http.clone();
        calls.push(tokio::spawn(async move {
            let uri = format!("http://{addr}/controls/{id}");
            http.get(uri.parse().expect("valid URI"))
                .await
                .map(|r| r.status())
        }));
    }
    let mut ok = 0;
    for call in calls {
        if call.await?? == http::StatusCode::OK {
            ok += 1;
        }
    }
    println!(
        "app on {addr}: {ok}/100 handler calls answered 200; the partner API saw {} requests; \
         the token endpoint saw {} token request(s)",
        emulator.api_requests(),
        emulator.token_requests(Provider::KontrollePlus)
    );
    Ok(())
}
