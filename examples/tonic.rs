//! A gRPC client over a tonic `Channel` with the bearer layer and, inside it, the layer that
//! drops a token the server refuses with `UNAUTHENTICATED`; calling a loopback tonic server
//! that demands a bearer token (the standard health service, so no `protoc` is needed).
//!
//! After the first call the server revokes the token it saw, as an administrator might: the
//! next call fails with `UNAUTHENTICATED` (HTTP 200, `grpc-status: 16`), the layer drops the
//! token, and the calls after it carry a new one.
//!
//! ```text
//! cargo run --example tonic --features grpc
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;
use tower_bearer::grpc::GrpcUnauthenticatedLayer;
use tower_bearer::token::Fingerprint;
use tower_bearer::{BearerTokenLayer, Token, token_source_fn};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A server that accepts any bearer token it has not revoked, and prints its fingerprint.
    let revoked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let last_seen: Arc<Mutex<Option<String>>> = Arc::default();
    let check = {
        let revoked = Arc::clone(&revoked);
        let last_seen = Arc::clone(&last_seen);
        move |request: Request<()>| {
            let token = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| Status::unauthenticated("a bearer token is required"))?
                .to_owned();
            if revoked.lock().unwrap().contains(&token) {
                println!("server: refused revoked token {}", Fingerprint::of(&token));
                return Err(Status::unauthenticated("token revoked"));
            }
            println!("server: call with token {}", Fingerprint::of(&token));
            *last_seen.lock().unwrap() = Some(token);
            Ok(request)
        }
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

    // The client: any token source (here a closure standing in for a provider flow), the
    // bearer layer, and inside it the gRPC layer made from it.
    let fetches = Arc::new(AtomicUsize::new(0));
    let source = {
        let fetches = Arc::clone(&fetches);
        token_source_fn(move || {
            fetches.fetch_add(1, Ordering::SeqCst);
            async {
                Ok(Token::new(format!("demo-{:x}", fastrand::u64(..)))
                    .with_expires_in(Duration::from_secs(3600)))
            }
        })
    };
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let bearer = BearerTokenLayer::new(source);
    let grpc = GrpcUnauthenticatedLayer::new(&bearer);
    let mut client = HealthClient::new(
        ServiceBuilder::new()
            .layer(bearer)
            .layer(grpc)
            .service(channel),
    );

    for call in 0..4 {
        let answer = client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        match answer {
            Ok(response) => println!("client: health status {}", response.into_inner().status),
            Err(status) if status.code() == Code::Unauthenticated => println!(
                "client: UNAUTHENTICATED ({}): the layer dropped the token",
                status.message()
            ),
            Err(status) => return Err(status.into()),
        }
        if call == 0 {
            let token = last_seen.lock().unwrap().take().ok_or("no call seen")?;
            println!("server: token {} revoked", Fingerprint::of(&token));
            revoked.lock().unwrap().insert(token);
        }
    }
    println!("client: {} token requests", fetches.load(Ordering::SeqCst));
    Ok(())
}
