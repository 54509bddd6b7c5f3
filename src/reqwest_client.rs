//! [`ReqwestService`]: a `reqwest::Client` as a Tower HTTP service, so that
//! [`BearerTokenLayer`](crate::BearerTokenLayer) can wrap it (feature `reqwest`).
//!
//! `reqwest::Client` is a `Service<reqwest::Request>`; the layer needs a
//! `Service<http::Request<B>>`. This adapter converts the request (re-parsing its URI, which
//! can fail: the error says why) and returns an `http::Response<reqwest::Body>`.
//!
//! ```no_run
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_bearer::reqwest_client::ReqwestService;
//! use tower_bearer::{BearerTokenLayer, StaticToken, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let client = ServiceBuilder::new()
//!     .layer(BearerTokenLayer::new(StaticToken::new(Token::new("t"))))
//!     .service(ReqwestService::with_default_client().unwrap());
//! let request = http::Request::get("https://api.partner.example/v1/items")
//!     .body(reqwest::Body::from(""))
//!     .unwrap();
//! let response = client.oneshot(request).await.unwrap();
//! # let _ = response;
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_service::Service;

/// A `reqwest::Client` as a `Service<http::Request<B>>`.
#[derive(Clone)]
pub struct ReqwestService {
    client: reqwest::Client,
}

impl ReqwestService {
    /// Wraps `client`.
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }

    /// A client with reqwest's defaults. With this crate's `reqwest` feature alone, rustls has
    /// no crypto provider until one is installed: this installs ring as the process default
    /// if none is set (as [`ReqwestTransport`](crate::oauth::ReqwestTransport) does).
    pub fn with_default_client() -> Result<Self, reqwest::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self::new(reqwest::Client::builder().build()?))
    }

    /// The wrapped client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl<B> Service<http::Request<B>> for ReqwestService
where
    B: Into<reqwest::Body>,
{
    type Response = http::Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request);
        Box::pin(async move {
            let response = client.execute(request?).await?;
            Ok(http::Response::from(response))
        })
    }
}

impl fmt::Debug for ReqwestService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestService").finish_non_exhaustive()
    }
}
