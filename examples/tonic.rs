//! A gRPC client over a tonic `Channel` with the bearer layer, calling a loopback tonic server
//! that demands a bearer token (the standard health service, so no `protoc` is needed).
//!
//! ```text
//! cargo run --example tonic
//! ```

use std::time::Duration;

use tonic::transport::{Channel, Server};
use tonic::{Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;
use tower_bearer::token::Fingerprint;
use tower_bearer::{BearerTokenLayer, Token, token_source_fn};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A server that accepts any bearer token and prints its fingerprint.
    let check = |request: Request<()>| match request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        Some(token) => {
            println!("server: call with token {}", Fingerprint::of(token));
            Ok(request)
        }
        None => Err(Status::unauthenticated("a bearer token is required")),
    };
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        Server::builder()
            .layer(tonic::service::InterceptorLayer::new(check))
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    // The client: any token source; here a closure standing in for a provider flow.
    let source = token_source_fn(|| async {
        Ok(Token::new(format!("demo-{:x}", fastrand::u64(..)))
            .with_expires_in(Duration::from_secs(3600)))
    });
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = HealthClient::new(
        ServiceBuilder::new()
            .layer(BearerTokenLayer::new(source))
            .service(channel),
    );
    for _ in 0..3 {
        let status = client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?
            .into_inner()
            .status;
        println!("client: health status {status}");
    }
    Ok(())
}
