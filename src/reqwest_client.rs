//! [`ReqwestService`]: a `reqwest::Client` as a Tower HTTP service, so that
//! [`BearerTokenLayer`](crate::BearerTokenLayer) can wrap it (feature `reqwest`).
//!
//! `reqwest::Client` is a `Service<reqwest::Request>`; the layer needs a
//! `Service<http::Request<B>>`. This adapter converts the request (re-parsing its URI, which
//! can fail: the error says why) and returns an `http::Response<reqwest::Body>` carrying the
//! URL it came from as a [`FinalUri`] extension.
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

use crate::redirect::FinalUri;

/// A `reqwest::Client` as a `Service<http::Request<B>>`.
///
/// Every response carries a [`FinalUri`] extension: the URL it actually came from (reqwest's
/// `Response::url()`, which `http::Response::from` would drop), after any redirects the
/// client followed. The layer and [`ServiceTransport`](crate::oauth::ServiceTransport) read it
/// (a token answer from another origin than the token URL's is refused).
///
/// ```
/// use tower::ServiceExt;
/// use tower_bearer::redirect::FinalUri;
/// use tower_bearer::reqwest_client::ReqwestService;
/// use tower_bearer_emulator::{Emulator, Provider};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let emulator = Emulator::start().await?; // a loopback API
/// let url = emulator.api_url(Provider::Kpn, "v1/items");
/// let request = http::Request::get(&url).body(reqwest::Body::from(""))?;
/// let response = ReqwestService::with_default_client()?.oneshot(request).await?;
/// assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED); // no token: no layer here
/// assert_eq!(response.extensions().get::<FinalUri>().unwrap().0, url.as_str());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ReqwestService {
    client: reqwest::Client,
}

/// The most redirects [`ReqwestService::with_default_client`] follows in one request (all to
/// the same origin), as reqwest's own default policy.
const MAX_SAME_ORIGIN_REDIRECTS: usize = 10;

impl ReqwestService {
    /// Wraps `client` as it is: its redirect policy is the one you gave it (reqwest's default
    /// follows up to 10 redirects, to any origin). [`FinalUri`] is recorded on every response
    /// either way.
    ///
    /// As a token transport (`ServiceTransport::new(ReqwestService::new(client))`), a client
    /// that follows redirects across origins sends the token request, client secret or
    /// assertion included, wherever the token endpoint redirects it (for a 307 or 308 the body
    /// is sent again) before anything here can see it: the answer is then refused, so the
    /// other server's token is never used, but the credentials have gone. Use
    /// [`with_default_client`](Self::with_default_client), or a client built with
    /// `redirect(reqwest::redirect::Policy::none())`, or
    /// [`ReqwestTransport`](crate::oauth::ReqwestTransport).
    ///
    /// ```
    /// use tower_bearer::reqwest_client::ReqwestService;
    ///
    /// # tower_bearer::reqwest_client::ReqwestService::with_default_client().unwrap();
    /// let client = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .build()
    ///     .unwrap();
    /// let service = ReqwestService::new(client);
    /// # let _ = service;
    /// ```
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }

    /// A client with reqwest's defaults, except for redirects: it follows only redirects to
    /// the same origin as the URL that redirected (scheme, host and port equal; up to 10 in a
    /// request) and stops at the first one to another origin, returning that 3xx response as
    /// it is. So a request, and whatever credentials it carries (a bearer token, a token
    /// request's client secret or assertion), never goes to another origin than the one it was
    /// addressed to. [`FinalUri`] is recorded on every response.
    ///
    /// With this crate's `reqwest` feature alone, rustls has no crypto provider until one is
    /// installed: this installs ring as the process default if none is set (as
    /// [`ReqwestTransport`](crate::oauth::ReqwestTransport) does).
    ///
    /// ```
    /// use tower_bearer::reqwest_client::ReqwestService;
    ///
    /// let service = ReqwestService::with_default_client().unwrap();
    /// # let _ = service;
    /// ```
    pub fn with_default_client() -> Result<Self, reqwest::Error> {
        crate::tls::install_crypto_provider();
        Ok(Self::new(
            reqwest::Client::builder()
                .redirect(same_origin_redirects())
                .build()?,
        ))
    }

    /// The wrapped client.
    ///
    /// ```
    /// use tower_bearer::reqwest_client::ReqwestService;
    ///
    /// let service = ReqwestService::with_default_client().unwrap();
    /// let client: &reqwest::Client = service.client();
    /// # let _ = client;
    /// ```
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// Follows a redirect only to the origin of the URL that redirected, at most
/// [`MAX_SAME_ORIGIN_REDIRECTS`] times; stops (returns the 3xx) at one to another origin.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        // `previous` starts with the request's own URL.
        if attempt.previous().len() > MAX_SAME_ORIGIN_REDIRECTS {
            return attempt.error("too many redirects (more than 10 to the same origin)");
        }
        let same = attempt.previous().last().is_some_and(|from| {
            let to = attempt.url();
            from.scheme() == to.scheme()
                && from.host_str().is_some()
                && from.host_str() == to.host_str()
                && from.port_or_known_default() == to.port_or_known_default()
        });
        if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// reqwest's final URL as an `http::Uri`: the whole URL, or its origin if the whole does not
/// convert.
pub(crate) fn final_uri(url: &reqwest::Url) -> Option<http::Uri> {
    url.as_str().parse().ok().or_else(|| {
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        format!("{}://{host}:{port}/", url.scheme()).parse().ok()
    })
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
            let came_from = final_uri(response.url());
            let mut response = http::Response::from(response);
            if let Some(uri) = came_from {
                response.extensions_mut().insert(FinalUri(uri));
            }
            Ok(response)
        })
    }
}

impl fmt::Debug for ReqwestService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestService").finish_non_exhaustive()
    }
}
