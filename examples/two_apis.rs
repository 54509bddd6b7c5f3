//! `two_apis`: what a service owner wires up at start-up and shutdown. One client calls two
//! APIs that want tokens for different audiences, through one layer
//! (`BearerTokenLayer::routes()`); the tokens are fetched before the service reports itself
//! ready (`prefetch`, `is_ready`); at shutdown the caches stop (`shutdown`) and their tasks end.
//!
//! ```text
//! cargo run --example two_apis
//! ```
//!
//! No credentials needed: two loopback emulators play the billing and files APIs and their
//! token endpoints, each accepting only tokens for its own audience.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use tower_bearer::oauth::ServiceTransport;
use tower_bearer::providers::KontrollePlus;
use tower_bearer::{BearerTokenLayer, TokenCache};
use tower_bearer_emulator::{Emulator, Provider};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let billing = Emulator::builder()
        .app_id_uri("api://billing")
        .start()
        .await?;
    let files = Emulator::builder()
        .app_id_uri("api://files")
        .start()
        .await?;
    let http: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    // One cache per API: its own audience (`<app id URI>/.default`), its own token.
    let cache_for = |emulator: &Emulator| -> Result<TokenCache, tower_bearer::TokenError> {
        let source = KontrollePlus::new()
            .authority(emulator.authority())
            .client_id(emulator.client_id())
            .client_secret(emulator.client_secret())
            .app_id_uri(emulator.app_id_uri())
            .build(ServiceTransport::new(http.clone()))?;
        Ok(TokenCache::builder(source)
            .name(emulator.app_id_uri())
            .build())
    };
    // The request's origin picks the cache; any other origin is refused.
    let layer = BearerTokenLayer::routes()
        .route(&format!("http://{}", billing.addr()), cache_for(&billing)?)?
        .route(&format!("http://{}", files.addr()), cache_for(&files)?)?
        .max_wait(Duration::from_secs(5));

    // Start-up: fetch both tokens before reporting ready (a failure stops the start).
    println!("ready before prefetch: {}", layer.is_ready());
    layer.prefetch().await?;
    println!("ready after prefetch: {}", layer.is_ready());

    let client = layer.layer(http.clone());
    for (name, emulator) in [("billing", &billing), ("files", &files)] {
        for i in 0..3 {
            let request =
                Request::get(emulator.api_url(Provider::KontrollePlus, &format!("v1/items/{i}")))
                    .body(Full::default())?;
            let status = client.clone().oneshot(request).await?.status();
            println!("GET {name} items/{i}: {status}");
            if status != StatusCode::OK {
                return Err(format!("{name} answered {status}").into());
            }
        }
    }
    let stray = Request::get("http://127.0.0.1:9/v1/items").body(Full::default())?;
    match client.clone().oneshot(stray).await {
        Err(e) => println!("GET an origin without a route: refused ({e})"),
        Ok(response) => return Err(format!("sent without a route: {}", response.status()).into()),
    }
    for (name, emulator) in [("billing", &billing), ("files", &files)] {
        let cache = layer
            .cache(&format!("http://{}", emulator.addr()))
            .ok_or("a route")?;
        let token = tower_bearer::TokenSource::token(cache).await?;
        println!(
            "{name}: token requests: {}; token {}",
            emulator.token_requests(Provider::KontrollePlus),
            token.fingerprint()
        );
    }

    // Shutdown: no more token requests; requests in flight keep the tokens held.
    layer.shutdown();
    drop(client);
    println!("ready after shutdown: {}", layer.is_ready());
    // Dropping the last handle (layers, services, caches) ends the caches' tasks too.
    drop(layer);
    Ok(())
}
