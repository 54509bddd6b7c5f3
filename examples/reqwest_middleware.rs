//! reqwest as reqwest users write it (`client.post(url).json(&x).send()`), with bearer tokens
//! from `BearerTokenMiddleware` through `reqwest-middleware`, and KPN's flow as the token
//! source, against the loopback provider emulator (`tower-bearer-emulator`). Then every token
//! is revoked: the next request meets a `401`, and the middleware replays it once with a new
//! token.
//!
//! ```text
//! cargo run --example reqwest_middleware --features reqwest,reqwest-middleware
//! ```

use reqwest_middleware::ClientBuilder;
use tower_bearer::TokenSource;
use tower_bearer::oauth::ReqwestTransport;
use tower_bearer::providers::Kpn;
use tower_bearer::reqwest_auth::BearerTokenMiddleware;
use tower_bearer_emulator::{Emulator, Provider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start().await?;
    // `ReqwestTransport::new` also installs ring as rustls' crypto provider, which this
    // crate's `reqwest` feature leaves to its user; reqwest with its default features brings
    // its own.
    let source = Kpn::new()
        .token_url(emulator.token_url(Provider::Kpn))
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .build(ReqwestTransport::new()?)?;
    let auth = BearerTokenMiddleware::new(source).replay_unauthorized(true);
    let cache = auth.cache().clone();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .build();

    for i in 0..3 {
        let url = emulator.api_url(Provider::Kpn, &format!("v1/items/{i}"));
        let response = client.get(url).send().await?;
        println!("GET items/{i}: {}", response.status());
    }

    // The provider revokes every token (a key rollover, say): the cached one is now refused.
    emulator.revoke_all();
    let response = client
        .post(emulator.api_url(Provider::Kpn, "v1/orders"))
        .json(&serde_json::json!({ "item": 42, "quantity": 1 }))
        .send()
        .await?;
    println!("POST orders after a revocation: {}", response.status());

    let token = cache.token().await?;
    println!(
        "token requests: {}; token {token:?}",
        emulator.token_requests(Provider::Kpn)
    );
    Ok(())
}
