//! A reqwest client behind the bearer layer, with tokens from KPN's flow over reqwest, against
//! the loopback provider emulator (`tower-bearer-emulator`).
//!
//! ```text
//! cargo run --example reqwest --features reqwest
//! ```

use tower::{ServiceBuilder, ServiceExt};
use tower_bearer::oauth::ReqwestTransport;
use tower_bearer::providers::Kpn;
use tower_bearer::reqwest_client::ReqwestService;
use tower_bearer::{BearerTokenLayer, TokenSource};
use tower_bearer_emulator::{Emulator, Provider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start().await?;
    let source = Kpn::new()
        .token_url(emulator.token_url(Provider::Kpn))
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .build(ReqwestTransport::new()?)?;
    let layer = BearerTokenLayer::new(source);
    let client = ServiceBuilder::new()
        .layer(layer.clone())
        .service(ReqwestService::with_default_client()?);
    for i in 0..3 {
        let request = http::Request::get(emulator.api_url(Provider::Kpn, &format!("v1/items/{i}")))
            .body(reqwest::Body::from(""))?;
        let response = client.clone().oneshot(request).await?;
        println!("GET items/{i}: {}", response.status());
    }
    let token = layer.cache().token().await?;
    println!(
        "token requests: {}; token {token:?}",
        emulator.token_requests(Provider::Kpn)
    );
    Ok(())
}
