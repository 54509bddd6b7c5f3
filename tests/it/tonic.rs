//! A gRPC client over a tonic `Channel` with the layer, against a loopback tonic server that
//! reads the `authorization` metadata (the health service, whose code tonic-health ships, so no
//! `protoc` is needed).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, Server};
use tonic::{Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;
use tower_bearer::{BearerTokenLayer, Token, token_source_fn};

/// A health server behind an interceptor that demands a bearer token; records the tokens seen.
async fn start_server() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let check = {
        let seen = Arc::clone(&seen);
        move |request: Request<()>| {
            let auth = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match auth {
                Some(auth) if auth.starts_with("Bearer ") => {
                    seen.lock().unwrap().push(auth);
                    Ok(request)
                }
                _ => Err(Status::unauthenticated("a bearer token is required")),
            }
        }
    };
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(tonic::service::InterceptorLayer::new(check))
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (addr, seen)
}

#[tokio::test]
async fn the_grpc_server_sees_the_bearer_token() {
    let (addr, seen) = start_server().await;

    // The client: a Channel behind the layer.
    let fetches = Arc::new(AtomicUsize::new(0));
    let source =
        {
            let fetches = Arc::clone(&fetches);
            token_source_fn(move || {
                let n = fetches.fetch_add(1, Ordering::SeqCst);
                async move {
                    Ok(Token::new(format!("grpc-token-{n}"))
                        .with_expires_in(Duration::from_secs(3600)))
                }
            })
        };
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = HealthClient::new(
        ServiceBuilder::new()
            .layer(BearerTokenLayer::new(source))
            .service(channel),
    );
    let mut calls = Vec::new();
    for _ in 0..50 {
        let mut client = client.clone();
        calls.push(tokio::spawn(async move {
            client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| r.into_inner().status)
        }));
    }
    for call in calls {
        call.await.unwrap().expect("the call is authorized");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 50);
        assert!(seen.iter().all(|auth| auth == "Bearer grpc-token-0"));
    }

    // Without the layer, the same server refuses.
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

/// tonic hands the layer path-only URIs; a named origin makes the destination checks apply.
#[tokio::test]
async fn a_named_origin_checks_path_only_grpc_requests() {
    let (addr, seen) = start_server().await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let source = || {
        token_source_fn(|| async {
            Ok(Token::new("grpc-origin-token").with_expires_in(Duration::from_secs(3600)))
        })
    };
    let check = |layer: BearerTokenLayer| {
        let mut client =
            HealthClient::new(ServiceBuilder::new().layer(layer).service(channel.clone()));
        async move {
            client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
        }
    };

    // The channel's own origin, allowed: the token goes.
    let allowed = BearerTokenLayer::new(source())
        .origin(&format!("http://{addr}"))
        .unwrap()
        .allowed_hosts([format!("127.0.0.1:{}", addr.port())])
        .unwrap();
    check(allowed).await.expect("the call is authorized");
    assert_eq!(seen.lock().unwrap().len(), 1);

    // A named origin over plain http to a host that is not loopback, or outside the
    // allow-list: the call fails before anything is sent.
    for layer in [
        BearerTokenLayer::new(source())
            .origin("http://grpc.partner.example")
            .unwrap(),
        BearerTokenLayer::new(source())
            .origin("https://grpc.partner.example")
            .unwrap()
            .allowed_hosts(["api.partner.example"])
            .unwrap(),
    ] {
        let status = check(layer).await.unwrap_err();
        assert!(
            status.message().contains("refused to send a bearer token"),
            "{status:?}"
        );
    }
    assert_eq!(seen.lock().unwrap().len(), 1);
}
