//! gRPC `UNAUTHENTICATED` (`grpc-status: 16`) drops the token as a `401` does, with
//! `grpc::GrpcUnauthenticatedLayer` inside the bearer layer: against a tonic server that checks
//! tokens with the emulator (refused in the headers of a trailers-only answer, or in the
//! trailers of a stream), and against hand-built answers for the rules (the cooldown, other
//! codes, a request that did not carry the layer's token).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;
use tonic::Status;
use tonic::transport::{Channel, Server};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};
use tower_bearer::grpc::GrpcUnauthenticatedLayer;
use tower_bearer::oauth::ServiceTransport;
use tower_bearer::providers::Kpn;
use tower_bearer::replay::TokenRejected;
use tower_bearer::{BearerTokenLayer, ExistingAuthorization, TokenCache};
use tower_bearer_emulator::{Emulator, Provider, TokenCheck};

use crate::common::{Captured, Scripted, capture};

/// How the server judges a token (the bearer token from the `authorization` metadata, `""`
/// if none).
type Judge = Arc<dyn Fn(&str) -> Result<(), Status> + Send + Sync>;

/// A health service that checks every call's token with `judge`. `watch` sends one message,
/// then, once `end_streams` is notified, judges the token again: a refusal ends the stream
/// with its status in the trailers (a token revoked during a streaming call).
struct Guarded {
    judge: Judge,
    end_streams: Arc<Notify>,
}

fn token_of<T>(request: &tonic::Request<T>) -> String {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned()
}

fn serving() -> HealthCheckResponse {
    HealthCheckResponse {
        status: ServingStatus::Serving as i32,
    }
}

#[tonic::async_trait]
impl Health for Guarded {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, Status> {
        (self.judge)(&token_of(&request))?;
        Ok(tonic::Response::new(serving()))
    }

    type WatchStream = BoxStream<'static, Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, Status> {
        let token = token_of(&request);
        (self.judge)(&token)?;
        let judge = Arc::clone(&self.judge);
        let end = Arc::clone(&self.end_streams);
        let last = futures_util::stream::once(async move {
            end.notified().await;
            judge(&token).err()
        })
        .filter_map(|refusal| async move { refusal.map(Err) });
        let stream = futures_util::stream::once(async { Ok(serving()) }).chain(last);
        Ok(tonic::Response::new(stream.boxed()))
    }
}

/// Starts a tonic server with the guarded health service; returns its address and the
/// notification that ends the streams.
async fn serve(judge: Judge) -> (SocketAddr, Arc<Notify>) {
    let end_streams = Arc::new(Notify::new());
    let service = HealthServer::new(Guarded {
        judge,
        end_streams: Arc::clone(&end_streams),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (addr, end_streams)
}

/// The emulator's protected API as a gRPC server would apply it: an unknown (revoked) or
/// expired token is `UNAUTHENTICATED`, a token without the role `PERMISSION_DENIED`.
fn emulator_judge(emulator: &Arc<Emulator>) -> Judge {
    let emulator = Arc::clone(emulator);
    Arc::new(
        move |token: &str| match emulator.check_token(Provider::Kpn, token) {
            TokenCheck::Accepted => Ok(()),
            TokenCheck::Unauthorized(why) => Err(Status::unauthenticated(why)),
            TokenCheck::Forbidden(why) => Err(Status::permission_denied(why)),
        },
    )
}

/// A KPN client-credentials source against the emulator.
fn kpn(emulator: &Emulator) -> impl tower_bearer::TokenSource + use<> {
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    Kpn::new()
        .token_url(emulator.token_url(Provider::Kpn))
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .build(ServiceTransport::new(http))
        .unwrap()
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// One `Check` call: `Ok` or the status code.
async fn check<T>(client: &mut HealthClient<T>) -> Result<(), tonic::Code>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
        .map_err(|status| status.code())
}

/// The case: the server rejects a revoked token once; the next call succeeds, with
/// exactly one new token request.
#[tokio::test]
async fn a_revoked_token_fails_one_call_and_the_next_gets_one_new_token() {
    let emulator = Arc::new(Emulator::start().await.unwrap());
    let (addr, _) = serve(emulator_judge(&emulator)).await;
    let bearer = BearerTokenLayer::new(kpn(&emulator));
    let cache = bearer.cache().clone();
    let grpc = GrpcUnauthenticatedLayer::new(&bearer);
    let mut client = HealthClient::new(
        ServiceBuilder::new()
            .layer(bearer)
            .layer(grpc)
            .service(channel(addr).await),
    );

    for _ in 0..3 {
        check(&mut client).await.expect("the token is good");
    }
    assert_eq!(emulator.token_requests(Provider::Kpn), 1);

    assert_eq!(emulator.revoke_all(), 1);
    assert_eq!(
        check(&mut client).await,
        Err(tonic::Code::Unauthenticated),
        "the call that carried the revoked token fails"
    );
    assert_eq!(cache.stats().invalidations, 1);
    for _ in 0..5 {
        check(&mut client)
            .await
            .expect("the next calls carry a new token");
    }
    assert_eq!(emulator.token_requests(Provider::Kpn), 2);
    assert_eq!(cache.stats().invalidations, 1);
}

/// The bearer layer alone reads only the HTTP status (200): the revoked token stays, and every
/// call fails.
#[tokio::test]
async fn without_the_layer_a_revoked_token_stays() {
    let emulator = Arc::new(Emulator::start().await.unwrap());
    let (addr, _) = serve(emulator_judge(&emulator)).await;
    let bearer = BearerTokenLayer::new(kpn(&emulator));
    let cache = bearer.cache().clone();
    let mut client = HealthClient::new(bearer.layer(channel(addr).await));

    check(&mut client).await.expect("the token is good");
    emulator.revoke_all();
    for _ in 0..3 {
        assert_eq!(check(&mut client).await, Err(tonic::Code::Unauthenticated));
    }
    assert_eq!(emulator.token_requests(Provider::Kpn), 1);
    assert_eq!(cache.stats().invalidations, 0);
}

/// A token revoked during a streaming call: the server ends the stream with `UNAUTHENTICATED`
/// in its trailers, after a message; the token goes, and the next call gets a new one.
#[tokio::test]
async fn unauthenticated_in_the_trailers_of_a_stream_drops_the_token() {
    let emulator = Arc::new(Emulator::start().await.unwrap());
    let (addr, end_streams) = serve(emulator_judge(&emulator)).await;
    let bearer = BearerTokenLayer::new(kpn(&emulator));
    let cache = bearer.cache().clone();
    let grpc = GrpcUnauthenticatedLayer::new(&bearer);
    let mut client = HealthClient::new(
        ServiceBuilder::new()
            .layer(bearer)
            .layer(grpc)
            .service(channel(addr).await),
    );

    let mut stream = client
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("the stream starts: the token is good")
        .into_inner();
    let first = stream.message().await.unwrap().expect("one message");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    assert_eq!(cache.stats().invalidations, 0);

    emulator.revoke_all();
    end_streams.notify_one();
    let refused = stream.message().await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(cache.stats().invalidations, 1);

    check(&mut client)
        .await
        .expect("the next call carries a new token");
    assert_eq!(emulator.token_requests(Provider::Kpn), 2);
}

/// `PERMISSION_DENIED`, in the headers or in a stream's trailers, never drops the token: a new
/// token would not have more rights.
#[tokio::test]
async fn permission_denied_never_drops_the_token() {
    let emulator = Arc::new(Emulator::start().await.unwrap());
    let deny = Arc::new(AtomicBool::new(false));
    let judge: Judge = {
        let deny = Arc::clone(&deny);
        let emulator = emulator_judge(&emulator);
        Arc::new(move |token: &str| {
            if deny.load(Ordering::SeqCst) {
                return Err(Status::permission_denied("not for this client"));
            }
            emulator(token)
        })
    };
    let (addr, end_streams) = serve(judge).await;
    let bearer = BearerTokenLayer::new(kpn(&emulator));
    let cache = bearer.cache().clone();
    let grpc = GrpcUnauthenticatedLayer::new(&bearer);
    let mut client = HealthClient::new(
        ServiceBuilder::new()
            .layer(bearer)
            .layer(grpc)
            .service(channel(addr).await),
    );

    let mut stream = client
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().expect("one message");
    deny.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(check(&mut client).await, Err(tonic::Code::PermissionDenied));
    }
    end_streams.notify_one();
    assert_eq!(
        stream.message().await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );

    deny.store(false, Ordering::SeqCst);
    check(&mut client).await.expect("the same token is good");
    assert_eq!(cache.stats().invalidations, 0);
    assert_eq!(emulator.token_requests(Provider::Kpn), 1);
}

/// A streamed body: frames of data, then trailers.
type Streamed = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// An answer as a gRPC server sends it: `grpc-status` in the headers (trailers-only), or a
/// message and then trailers.
fn grpc_answer(status: &'static str, in_trailers: bool) -> Response<Streamed> {
    let mut response = Response::builder().header("content-type", "application/grpc");
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = if in_trailers {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static(status));
        trailers.insert("grpc-message", HeaderValue::from_static("refused"));
        vec![
            Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
            Ok(Frame::trailers(trailers)),
        ]
    } else {
        response = response.header("grpc-status", status);
        Vec::new()
    };
    response
        .body(StreamBody::new(futures_util::stream::iter(frames).boxed()))
        .unwrap()
}

fn call() -> Request<Full<Bytes>> {
    Request::post("https://grpc.partner.example/grpc.health.v1.Health/Check")
        .header("content-type", "application/grpc")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// One call through `client`, its answer read to the end as a gRPC client does.
async fn exchange<S, B>(client: S)
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = client.oneshot(call()).await.unwrap();
    response.into_body().collect().await.unwrap();
}

/// A burst of `UNAUTHENTICATED` answers drops one token: the others carried a token already
/// dropped, or came within the invalidation cooldown. After the cooldown, a refusal drops the
/// next token. The events are the ones a `401` logs, with fingerprints only.
#[tokio::test(start_paused = true)]
async fn a_burst_of_refusals_drops_one_token_per_cooldown() {
    let (captured, _guard) = Captured::trace();

    for in_trailers in [false, true] {
        let source = Scripted::numbered(Duration::ZERO, Duration::from_secs(3600));
        let cache = TokenCache::new(source.clone());
        let bearer = BearerTokenLayer::from_cache(cache.clone());
        let grpc = GrpcUnauthenticatedLayer::new(&bearer);
        let client = ServiceBuilder::new()
            .layer(bearer)
            .layer(grpc)
            .service(service_fn(move |_: Request<Full<Bytes>>| async move {
                Ok::<_, Infallible>(grpc_answer("16", in_trailers))
            }));
        // 16 at once, all with token-0: one drop.
        let burst = (0..16).map(|_| exchange(client.clone()));
        futures_util::future::join_all(burst).await;
        assert_eq!(source.calls(), 1);
        assert_eq!(cache.stats().invalidations, 1);

        // 16 in a row: the first fetches token-1; all are refused within the cooldown.
        for _ in 0..16 {
            exchange(client.clone()).await;
        }
        assert_eq!(source.calls(), 2, "one fetch for the whole burst");
        assert_eq!(cache.stats().invalidations, 1);

        // After the cooldown, a refusal drops the token again.
        tokio::time::advance(Duration::from_secs(6)).await;
        exchange(client.clone()).await;
        assert_eq!(cache.stats().invalidations, 2);
        exchange(client.clone()).await;
        assert_eq!(source.calls(), 3);
    }

    let text = captured.text();
    capture::record_output("grpc.rs own subscriber", text.as_bytes());
    for expected in [
        "token refused (grpc-status 16): dropped",
        "grpc-status 16 within the invalidation cooldown: token kept",
        "sha256:",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    for token in ["token-0", "token-1", "token-2"] {
        assert!(!text.contains(token), "{token} in:\n{text}");
    }
}

/// Only `UNAUTHENTICATED` (16) counts; another status, in the headers or the trailers, or a
/// streamed answer whose trailers were never read, keeps the token.
#[tokio::test(start_paused = true)]
async fn only_unauthenticated_read_in_full_drops_the_token() {
    for (status, in_trailers) in [
        ("7", false),
        ("7", true),
        ("0", true),
        ("14", false),
        ("160", false),
        ("1", true),
    ] {
        let source = Scripted::numbered(Duration::ZERO, Duration::from_secs(3600));
        let cache = TokenCache::new(source.clone());
        let bearer = BearerTokenLayer::from_cache(cache.clone());
        let grpc = GrpcUnauthenticatedLayer::new(&bearer);
        let client = ServiceBuilder::new()
            .layer(bearer)
            .layer(grpc)
            .service(service_fn(move |_: Request<Full<Bytes>>| async move {
                Ok::<_, Infallible>(grpc_answer(status, in_trailers))
            }));
        for _ in 0..3 {
            exchange(client.clone()).await;
        }
        assert_eq!(cache.stats().invalidations, 0, "grpc-status {status}");
        assert_eq!(source.calls(), 1, "grpc-status {status}");
    }

    // UNAUTHENTICATED in trailers that nobody reads (the body dropped after the headers).
    let source = Scripted::numbered(Duration::ZERO, Duration::from_secs(3600));
    let bearer = BearerTokenLayer::new(source.clone());
    let cache = bearer.cache().clone();
    let grpc = GrpcUnauthenticatedLayer::new(&bearer);
    let client = ServiceBuilder::new()
        .layer(bearer)
        .layer(grpc)
        .service(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(grpc_answer("16", true))
        }));
    drop(client.clone().oneshot(call()).await.unwrap());
    assert_eq!(cache.stats().invalidations, 0);
    // Read in full, the same answer drops it.
    let response = client.oneshot(call()).await.unwrap();
    let trailers = response.into_body().collect().await.unwrap();
    assert_eq!(trailers.trailers().unwrap()["grpc-status"], "16");
    assert_eq!(cache.stats().invalidations, 1);
}

/// A trailers-only refusal that dropped the token is marked `TokenRejected`, and the cache then
/// has another token; an answer to a request that did not carry the layer's token (its own
/// `Authorization`) drops nothing and is not marked.
#[tokio::test(start_paused = true)]
async fn only_the_layers_own_token_is_dropped() {
    let source = Scripted::numbered(Duration::ZERO, Duration::from_secs(3600));
    let bearer = BearerTokenLayer::new(source.clone())
        .existing_authorization(ExistingAuthorization::Keep)
        .max_wait(Duration::from_secs(2));
    let cache = bearer.cache().clone();
    let grpc = GrpcUnauthenticatedLayer::new(&bearer);
    let client = ServiceBuilder::new()
        .layer(bearer)
        .layer(grpc)
        .service(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(grpc_answer("16", false))
        }));

    let mut own = call();
    own.headers_mut()
        .insert("authorization", HeaderValue::from_static("Basic b3du"));
    capture::register("grpc.rs own credentials", "b3du");
    let response = client.clone().oneshot(own).await.unwrap();
    assert!(response.extensions().get::<TokenRejected>().is_none());
    assert_eq!(cache.stats().invalidations, 0);
    assert_eq!(source.calls(), 0, "the request went with its own header");

    let response = client.clone().oneshot(call()).await.unwrap();
    let rejected = response
        .extensions()
        .get::<TokenRejected>()
        .cloned()
        .expect("marked");
    assert_eq!(cache.stats().invalidations, 1);
    assert!(rejected.replaced().await, "token-1 differs from token-0");
    assert_eq!(source.calls(), 2);
}
