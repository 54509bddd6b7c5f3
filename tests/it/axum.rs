//! An axum app whose handlers call a downstream API through one shared, layered client kept in
//! state: the downstream (the emulator's protected API, a real loopback server) sees the token,
//! and many concurrent handler calls cause one token request.
crate::known_secrets!("axum.rs downstream token" => "api-token");

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use tower_bearer::oauth::ServiceTransport;
use tower_bearer::providers::Kpn;
use tower_bearer::{BearerToken, BearerTokenLayer};
use tower_bearer_emulator::{Emulator, Provider};

#[derive(Clone)]
struct AppState {
    downstream: BearerToken<Client<HttpConnector, Full<Bytes>>>,
    api_base: String,
}

async fn item(State(state): State<AppState>, Path(id): Path<u32>) -> StatusCode {
    let request = http::Request::get(format!("{}/{id}", state.api_base))
        .body(Full::default())
        .unwrap();
    match state.downstream.oneshot(request).await {
        Ok(response) => StatusCode::from_u16(response.status().as_u16()).unwrap(),
        Err(_) => StatusCode::BAD_GATEWAY,
    }
}

#[tokio::test]
async fn handlers_share_one_layered_client() {
    let emulator = Emulator::start().await.unwrap();
    let http = Client::builder(TokioExecutor::new()).build_http();
    let source = Kpn::new()
        .token_url(emulator.token_url(Provider::Kpn))
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .build(ServiceTransport::new(http.clone()))
        .unwrap();
    let state = AppState {
        downstream: BearerTokenLayer::new(source).layer(http),
        api_base: emulator.api_url(Provider::Kpn, "items"),
    };
    let app = Router::new()
        .route("/items/{id}", get(item))
        .with_state(state);

    let mut calls = Vec::new();
    for id in 0..200 {
        let app = app.clone();
        calls.push(tokio::spawn(async move {
            let request = http::Request::get(format!("/items/{id}"))
                .body(axum::body::Body::empty())
                .unwrap();
            app.oneshot(request).await.unwrap().status()
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        emulator.api_requests(),
        200,
        "the downstream saw every call"
    );
    assert_eq!(emulator.token_requests(Provider::Kpn), 1);
}

/// hyper-util's client with the layer, against a loopback axum API that checks the token.
#[tokio::test]
async fn a_hyper_client_against_an_axum_api_that_checks_the_token() {
    use axum::http::HeaderMap;
    use std::time::Duration;
    use tower_bearer::{Token, token_source_fn};

    async fn protected(headers: HeaderMap) -> StatusCode {
        match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some("Bearer api-token") => StatusCode::OK,
            Some(_) => StatusCode::FORBIDDEN,
            None => StatusCode::UNAUTHORIZED,
        }
    }
    let api = Router::new().route("/v1/items", get(protected));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api).await });

    let source = token_source_fn(|| async {
        Ok(Token::new("api-token").with_expires_in(Duration::from_secs(3600)))
    });
    let http: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let client = tower::ServiceBuilder::new()
        .layer(BearerTokenLayer::new(source))
        .service(http.clone());
    let uri = format!("http://{addr}/v1/items");
    let with = client
        .oneshot(http::Request::get(&uri).body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(with.status(), StatusCode::OK);
    let without = http.get(uri.parse().unwrap()).await.unwrap();
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
}
