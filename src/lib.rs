//! OAuth 2.0 machine-to-machine authentication for any Tower HTTP client.
//!
//! [`BearerTokenLayer`] wraps any `tower::Service<http::Request<B>>` (a hyper-util client, a
//! tonic `Channel`, the outbound client of an axum app) and sets
//! `Authorization: Bearer <token>` on every request. Tokens come from a [`TokenSource`] behind
//! a [`TokenCache`] that refreshes them ahead of expiry and, when many requests need a token at
//! once, asks the source exactly once.
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use http::{Request, Response};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_bearer::{token_source_fn, BearerTokenLayer, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Where tokens come from: here a closure; in production a provider's client-credentials flow.
//! let source = token_source_fn(|| async {
//!     Ok(Token::new("eyJhbGciOi...").with_expires_in(Duration::from_secs(3600)))
//! });
//!
//! // Any Tower HTTP service; here one that echoes the header it got.
//! let http_client = service_fn(|req: Request<()>| async move {
//!     Ok::<_, Infallible>(Response::new(req.headers()["authorization"].clone()))
//! });
//!
//! let client = ServiceBuilder::new()
//!     .layer(BearerTokenLayer::new(source))
//!     .service(http_client);
//!
//! let response = client
//!     .oneshot(Request::get("https://api.partner.example/v1/items").body(()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.body(), "Bearer eyJhbGciOi...");
//! # }
//! ```
//!
//! # What the layer guarantees
//!
//! - **Invisible when warm.** With a fresh cached token, a request costs a pointer comparison,
//!   a coarse clock read (a few nanoseconds) and one clone of a prebuilt, sensitive header
//!   value: no lock, no allocation, no `.await`.
//! - **Refresh ahead.** A token is refreshed [`DEFAULT_REFRESH_MARGIN`](cache::DEFAULT_REFRESH_MARGIN)
//!   before it expires (at most half its lifetime; jitter moves it up to 30 s later), in the
//!   background, while requests keep using it.
//! - **Single-flight.** However many requests find no usable token, the source is called once,
//!   in its own task, so it completes even if the request that started it is dropped.
//! - **Failure without storms.** A failed refresh keeps the valid token in use and retries with
//!   exponential backoff (honouring `Retry-After`); with no valid token, requests during the
//!   backoff fail at once with the last error.
//! - **401 handling.** A `401` drops the token that request carried, if it is still the cached
//!   one (and at most once per 5 s), so a burst of 401s causes one new fetch. A `403` never
//!   causes a refresh. With `grpc::GrpcUnauthenticatedLayer` (feature `grpc`), a gRPC
//!   `UNAUTHENTICATED` does the same.
//! - **No leaks.** The token is never sent over plain `http://` except to loopback (unless
//!   allowed), optionally only to an allow-list of hosts, and never appears in `Debug`,
//!   `Display` or errors: a [`Fingerprint`](token::Fingerprint) stands in for it.
//!
//! # In a struct field
//!
//! The layered client is [`BearerToken<S>`](BearerToken) around your client, so it names
//! plainly in application state:
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::client::legacy::connect::HttpConnector;
//! use tonic::transport::Channel;
//! use tonic_health::pb::health_client::HealthClient;
//! use tower_bearer::BearerToken;
//!
//! #[derive(Clone)]
//! struct AppState {
//!     /// hyper-util: `BearerTokenLayer::new(source).layer(client)`.
//!     partner: BearerToken<Client<HttpConnector, Full<Bytes>>>,
//!     /// tonic: a generated client over the layered `Channel`.
//!     health: HealthClient<BearerToken<Channel>>,
//! }
//! ```
//!
//! reqwest users name `reqwest_middleware::ClientWithMiddleware` (feature
//! `reqwest-middleware`, see `reqwest_auth`). A longer stack (a replay, a redirect policy, a
//! timeout) erases to one type with tower's `BoxCloneService`; the layer's errors
//! ([`Error`]) convert into `tower::BoxError`:
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use hyper::body::Incoming;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::util::BoxCloneService;
//! use tower::{BoxError, ServiceBuilder, ServiceExt};
//! use tower_bearer::replay::ReplayUnauthorizedLayer;
//! use tower_bearer::{BearerTokenLayer, StaticToken, Token};
//!
//! /// The partner API client, whatever is stacked inside.
//! type PartnerClient = BoxCloneService<Request<Full<Bytes>>, Response<Incoming>, BoxError>;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let http = Client::builder(TokioExecutor::new()).build_http();
//! let partner: PartnerClient = ServiceBuilder::new()
//!     .layer(ReplayUnauthorizedLayer::new())
//!     .layer(BearerTokenLayer::new(StaticToken::new(Token::new("t"))))
//!     .timeout(std::time::Duration::from_secs(10))
//!     .service(http)
//!     .map_err(BoxError::from)
//!     .boxed_clone();
//! # let _ = partner;
//! # }
//! ```
//!
//! # Layout
//!
//! The core, which names no protocol:
//!
//! | module | what |
//! | --- | --- |
//! | the crate root | the middleware: [`BearerTokenLayer`], its service [`BearerToken`] and [`ResponseFuture`]; [`RoutedBearerTokenLayer`] and [`RoutedBearerToken`], the same for several APIs (a cache per origin) |
//! | [`cache`] | [`TokenCache`]: single-flight, refresh ahead, backoff, `401` invalidation; [`prefetch`](TokenCache::prefetch), [`is_ready`](TokenCache::is_ready) and [`shutdown`](TokenCache::shutdown) for start-up, health checks and shutdown |
//! | [`source`] | the [`TokenSource`] trait, [`StaticToken`], [`token_source_fn`], [`BoxTokenSource`] |
//! | [`token`] | [`Token`] and its [`Fingerprint`](token::Fingerprint) |
//! | [`error`] | [`Error`], [`TokenError`] and its kinds, [`DestinationError`] |
//! | [`replay`] | [`ReplayUnauthorizedLayer`](replay::ReplayUnauthorizedLayer): a `401` replayed once with the new token (opt-in) |
//! | [`redirect`] | what a redirect may do with the token; with feature `follow-redirect`, tower-http's redirect policy pinned to the origin |
//! | [`store`] | the [`TokenStore`](store::TokenStore) a fleet of replicas shares, [`MemoryStore`](store::MemoryStore); with feature `redis`, `RedisStore` |
//! | [`metrics`] | the names of the counters and histograms (feature `metrics`) |
//!
//! With feature `oauth` (on by default): `oauth`, the OAuth 2.0 client-credentials client
//! (the request, the response, client authentication, `private_key_jwt` assertions, discovery,
//! the transport), `providers`, the supported providers' builders over it and the generic one,
//! and `config`, their configuration from files and the environment. Without it
//! (`default-features = false`) the crate is the core alone, for token sources of your own (a
//! vault, a file, a sidecar).
//!
//! With feature `reqwest`: `reqwest_client`, a Tower service over a `reqwest::Client`, and
//! `oauth::ReqwestTransport`, the default HTTPS transport for token requests. With feature
//! `reqwest-middleware`: `reqwest_auth`, the same for reqwest users who keep reqwest, as a
//! `reqwest_middleware::Middleware` over the same cache, destination policy and `401` handling.
//!
//! The loopback provider emulator that the examples, tests and benches run against is the
//! workspace's crate `tower-bearer-emulator` (`emulator/`); the load and callgrind harnesses
//! are in `tools/`.
//!
//! With feature `grpc`: `grpc`, the layer (inside the bearer layer) that drops a token a gRPC
//! server refuses with `UNAUTHENTICATED`, as a `401` does.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

mod backoff;
mod bearer;
pub mod cache;
#[cfg(feature = "oauth")]
#[cfg_attr(docsrs, doc(cfg(feature = "oauth")))]
pub mod config;
mod destination;
pub mod error;
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
pub mod metrics;
#[cfg(feature = "oauth")]
#[cfg_attr(docsrs, doc(cfg(feature = "oauth")))]
pub mod oauth;
mod origin;
#[cfg(feature = "oauth")]
#[cfg_attr(docsrs, doc(cfg(feature = "oauth")))]
pub mod providers;
pub mod redirect;
pub mod replay;
#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub mod reqwest_auth;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest_client;
pub mod source;
pub mod store;
mod sync;
#[cfg(any(feature = "reqwest", feature = "redis"))]
mod tls;
pub mod token;

pub use bearer::{
    BearerToken, BearerTokenLayer, ExistingAuthorization, ResponseFuture, RoutedBearerToken,
    RoutedBearerTokenLayer,
};

/// Moved: the layer and its options are at the crate root.
#[deprecated(
    since = "0.2.0",
    note = "use `tower_bearer::BearerTokenLayer` and `tower_bearer::ExistingAuthorization`"
)]
pub mod layer {
    pub use crate::bearer::{BearerTokenLayer, ExistingAuthorization};
}

/// Moved: the service is at the crate root.
#[deprecated(since = "0.2.0", note = "use `tower_bearer::BearerToken`")]
pub mod service {
    pub use crate::bearer::BearerToken;
}

/// Moved: the response future is at the crate root.
#[deprecated(since = "0.2.0", note = "use `tower_bearer::ResponseFuture`")]
pub mod future {
    pub use crate::bearer::ResponseFuture;
}
pub use cache::{CacheStats, TokenCache, TokenCacheBuilder};
pub use destination::OtherHosts;
pub use error::{DestinationError, Error, ErrorDetail, TokenError, TokenErrorKind};

/// Moved: what a token endpoint said is OAuth's detail of a [`TokenError`].
#[cfg(feature = "oauth")]
#[cfg_attr(docsrs, doc(cfg(feature = "oauth")))]
#[deprecated(
    since = "0.2.0",
    note = "use `tower_bearer::oauth::ProviderError`, read with `TokenError::detail`; its `code` is `TokenError::code`"
)]
pub type ProviderError = oauth::ProviderError;
pub use source::{BoxTokenSource, StaticToken, TokenSource, TokenSourceFn, token_source_fn};
pub use token::Token;

// Compiles the README's examples as doctests (they use the OAuth client, the Redis store, the
// reqwest middleware and the gRPC layer; the test command builds with every feature).
#[cfg(all(
    doctest,
    feature = "oauth",
    feature = "redis",
    feature = "reqwest-middleware",
    feature = "grpc"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
