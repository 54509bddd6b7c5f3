//! [`ReqwestTransport`]: token requests over reqwest with rustls (feature `reqwest`).
//!
//! ```
//! use tower_bearer::TokenSource;
//! use tower_bearer::oauth::ReqwestTransport;
//! use tower_bearer::providers::Kpn;
//! use tower_bearer_emulator::{Emulator, Provider};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = Emulator::start().await?; // a loopback token endpoint
//! let source = Kpn::new()
//!     .token_url(emulator.token_url(Provider::Kpn))
//!     .client_id(emulator.client_id())
//!     .client_secret(emulator.client_secret())
//!     .build(ReqwestTransport::new()?)?;
//! assert!(source.token().await?.is_bearer());
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};

use crate::error::{TokenError, TokenErrorKind};
use crate::oauth::transport::{
    DEFAULT_MAX_RESPONSE_BYTES, Transport, check_answer_origin, endpoint_name, too_large,
    transport_error,
};

/// Default time to establish a connection (TCP and TLS) to the token endpoint.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time for a whole token request, connection to last byte: the OAuth client's
/// [`DEFAULT_ATTEMPT_TIMEOUT`](crate::oauth::client::DEFAULT_ATTEMPT_TIMEOUT), so that an attempt ends
/// at the same time, whichever of the two ends it.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = crate::oauth::client::DEFAULT_ATTEMPT_TIMEOUT;

/// Sends token requests with reqwest over rustls: redirects are not followed (a redirect could
/// carry the client secret elsewhere; a 3xx answer is a [`TokenErrorKind::Configuration`]
/// error), connect and total timeouts apply, and the answer is read up to a size cap (a larger
/// `Content-Length` is refused before the body is read). Trusts the system's roots, plus any
/// you add (a private CA).
///
/// As a second line of defence, an answer whose URL (reqwest's `Response::url()`) is not of
/// the token URL's origin (scheme, host, port) is refused, before its body is read, with a
/// [`TokenErrorKind::Configuration`] error naming both origins and the hint "the token endpoint
/// redirected to another origin; configure the final token URL". With the transport built
/// here that cannot happen; with [`from_client`](ReqwestTransport::from_client) and a client
/// that follows redirects it can, and then the request, client secret included, has already
/// gone to the other origin: only its answer is refused.
///
/// Uses ring as rustls's crypto provider: if the process has no default provider yet, ring is
/// installed as the default.
///
/// # Proxies
///
/// Like reqwest, the transport sends token requests through the proxy the environment names,
/// read when it is built: `HTTPS_PROXY` for `https://` token URLs, `HTTP_PROXY` for `http://`
/// ones, `ALL_PROXY` for both (and their lower-case spellings), except to the hosts in
/// `NO_PROXY` (comma-separated domains, which match their subdomains too, IP addresses and
/// networks, or `*`). reqwest makes no exception for loopback: with `HTTP_PROXY` set, a token
/// request to `http://127.0.0.1:8080/token` goes through the proxy unless `NO_PROXY` names
/// `127.0.0.1`. [`ReqwestTransportBuilder::no_proxy`] ignores the environment;
/// [`ReqwestTransportBuilder::proxy`] names proxies instead of it. The proxy sees the token
/// request's host (a `CONNECT` for https); for `http://` token URLs it sees the whole request,
/// client secret and token included. Proxies and their credentials are never logged, nor
/// shown by `Debug`.
///
/// ```no_run
/// use tower_bearer::oauth::ReqwestTransport;
///
/// let transport = ReqwestTransport::builder()
///     .add_root_certificate_pem(&std::fs::read("corp-ca.pem").unwrap())
///     .unwrap()
///     .build()
///     .unwrap();
/// # let _ = transport;
/// ```
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    max_response_bytes: usize,
    /// The timeouts the client was built with, for messages (unknown for a client of yours).
    timeouts: Option<Timeouts>,
}

/// A built client's timeouts.
#[derive(Clone, Copy, Debug)]
struct Timeouts {
    connect: Duration,
    request: Duration,
}

impl ReqwestTransport {
    /// A transport with the default settings.
    ///
    /// ```
    /// use tower_bearer::oauth::ReqwestTransport;
    ///
    /// let transport = ReqwestTransport::new()?;
    /// // The answer cap, among the defaults (the client's settings are reqwest's own).
    /// assert!(format!("{transport:?}").contains("max_response_bytes: 65536"));
    /// # Ok::<(), tower_bearer::TokenError>(())
    /// ```
    pub fn new() -> Result<Self, TokenError> {
        Self::builder().build()
    }

    /// Settings.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::oauth::ReqwestTransport;
    ///
    /// let transport = ReqwestTransport::builder()
    ///     .connect_timeout(Duration::from_secs(2))
    ///     .timeout(Duration::from_secs(4))
    ///     .build()?;
    /// # let _ = transport;
    /// # Ok::<(), tower_bearer::TokenError>(())
    /// ```
    pub fn builder() -> ReqwestTransportBuilder {
        ReqwestTransportBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_REQUEST_TIMEOUT,
            roots: Vec::new(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            proxies: Proxies::Environment,
        }
    }

    /// Your own client, used as it is. Configure it not to follow redirects
    /// (`redirect(reqwest::redirect::Policy::none())`) and with timeouts: a client that
    /// follows a redirect to another origin sends the client secret or assertion there, and
    /// only the answer is refused then.
    ///
    /// ```
    /// use tower_bearer::oauth::ReqwestTransport;
    ///
    /// # let _ = ReqwestTransport::new(); // installs ring as rustls's provider
    /// let client = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .timeout(std::time::Duration::from_secs(8))
    ///     .build()
    ///     .unwrap();
    /// let transport = ReqwestTransport::from_client(client);
    /// # let _ = transport;
    /// ```
    pub fn from_client(client: reqwest::Client) -> Self {
        Self {
            client,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            timeouts: None,
        }
    }
}

/// Settings of a [`ReqwestTransport`].
///
/// ```
/// use tower_bearer::oauth::ReqwestTransport;
///
/// let builder = ReqwestTransport::builder()
///     .add_root_certificate_pem(&std::fs::read("tests/fixtures/ca-cert.pem").unwrap())?
///     .max_response_bytes(16 * 1024);
/// let debug = format!("{builder:?}");
/// assert!(debug.contains("roots: 1") && debug.contains("max_response_bytes: 16384"), "{debug}");
/// assert!(builder.build().is_ok());
/// # Ok::<(), tower_bearer::TokenError>(())
/// ```
pub struct ReqwestTransportBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    roots: Vec<reqwest::Certificate>,
    max_response_bytes: usize,
    proxies: Proxies,
}

/// Where the transport's proxies come from.
enum Proxies {
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` (reqwest's default).
    Environment,
    /// These, in order; the environment is ignored (none: a direct connection).
    Given(Vec<reqwest::Proxy>),
}

impl ReqwestTransportBuilder {
    /// Time to connect. Default: [`DEFAULT_CONNECT_TIMEOUT`] (2 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::oauth::ReqwestTransport;
    ///
    /// let builder = ReqwestTransport::builder().connect_timeout(Duration::from_millis(1500));
    /// assert!(format!("{builder:?}").contains("connect_timeout: 1.5s"));
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time for the whole request. Default: [`DEFAULT_REQUEST_TIMEOUT`] (3 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{TokenErrorKind, TokenSource};
    /// use tower_bearer::oauth::ReqwestTransport;
    /// use tower_bearer::providers::Kpn;
    /// use tower_bearer_emulator::{Emulator, Provider};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let emulator = Emulator::builder().token_delay(Duration::from_secs(5)).start().await?;
    /// let transport = ReqwestTransport::builder().timeout(Duration::from_millis(200)).build()?;
    /// # let kpn = Kpn::new().token_url(emulator.token_url(Provider::Kpn));
    /// # let kpn = kpn.client_id(emulator.client_id()).client_secret(emulator.client_secret());
    /// let source = kpn.build(transport)?.max_attempts(1); // a slow token endpoint
    /// assert_eq!(source.token().await.unwrap_err().kind(), TokenErrorKind::Timeout);
    /// # Ok(()) }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also trusts the certificates in this PEM (a private CA in front of the token endpoint).
    ///
    /// ```
    /// use tower_bearer::TokenErrorKind;
    /// use tower_bearer::oauth::ReqwestTransport;
    ///
    /// let ca = std::fs::read("tests/fixtures/ca-cert.pem").unwrap(); // your private CA
    /// assert!(ReqwestTransport::builder().add_root_certificate_pem(&ca).is_ok());
    /// let err = ReqwestTransport::builder().add_root_certificate_pem(b"not a certificate").unwrap_err();
    /// assert_eq!(err.kind(), TokenErrorKind::Configuration);
    /// assert!(err.hint().unwrap().contains("-----BEGIN CERTIFICATE-----"));
    /// ```
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Result<Self, TokenError> {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            TokenError::configuration(
                "the root certificate is not a PEM certificate",
                "give the CA certificate as PEM (-----BEGIN CERTIFICATE-----)",
            )
            .with_source(e)
        })?;
        if certs.is_empty() {
            return Err(TokenError::configuration(
                "the root certificate PEM holds no certificate",
                "give the CA certificate as PEM (-----BEGIN CERTIFICATE-----)",
            ));
        }
        self.roots.extend(certs);
        Ok(self)
    }

    /// Caps the size of the answer. Default: 64 KiB.
    ///
    /// ```
    /// use tower_bearer::{TokenErrorKind, TokenSource};
    /// use tower_bearer::oauth::ReqwestTransport;
    /// use tower_bearer::providers::Kpn;
    /// use tower_bearer_emulator::{Emulator, Provider};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let emulator = Emulator::start().await?;
    /// let transport = ReqwestTransport::builder().max_response_bytes(16).build()?;
    /// # let kpn = Kpn::new().token_url(emulator.token_url(Provider::Kpn));
    /// # let kpn = kpn.client_id(emulator.client_id()).client_secret(emulator.client_secret());
    /// let source = kpn.build(transport)?; // its answers are longer than 16 bytes
    /// assert_eq!(source.token().await.unwrap_err().kind(), TokenErrorKind::MalformedAnswer);
    /// # Ok(()) }
    /// ```
    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// Connects to the token endpoint directly, ignoring `HTTPS_PROXY`, `HTTP_PROXY`,
    /// `ALL_PROXY` and `NO_PROXY` (see [Proxies](ReqwestTransport#proxies)), and any
    /// [`proxy`](Self::proxy) given before.
    ///
    /// ```
    /// use tower_bearer::oauth::ReqwestTransport;
    ///
    /// let transport = ReqwestTransport::builder().no_proxy().build()?;
    /// # let _ = transport;
    /// # Ok::<(), tower_bearer::TokenError>(())
    /// ```
    pub fn no_proxy(mut self) -> Self {
        self.proxies = Proxies::Given(Vec::new());
        self
    }

    /// Sends token requests through `proxy` (reqwest's [`Proxy`](reqwest::Proxy): which
    /// requests it takes, its URL and credentials, its own exceptions), instead of the proxy
    /// the environment names. Several proxies are tried in the order given; a request none of
    /// them takes connects directly. Its credentials are never logged.
    ///
    /// ```
    /// use tower_bearer::oauth::ReqwestTransport;
    ///
    /// let proxy = reqwest::Proxy::https("http://proxy.corp.example:3128")
    ///     .expect("a valid proxy URL")
    ///     .no_proxy(reqwest::NoProxy::from_string("login.internal.example"));
    /// let transport = ReqwestTransport::builder().proxy(proxy).build()?;
    /// # let _ = transport;
    /// # Ok::<(), tower_bearer::TokenError>(())
    /// ```
    pub fn proxy(mut self, proxy: reqwest::Proxy) -> Self {
        match &mut self.proxies {
            Proxies::Given(proxies) => proxies.push(proxy),
            Proxies::Environment => self.proxies = Proxies::Given(vec![proxy]),
        }
        self
    }

    /// The transport.
    ///
    /// Redirects are never followed: a token endpoint that redirects is a configuration error.
    ///
    /// ```
    /// use tower_bearer::{TokenErrorKind, TokenSource};
    /// use tower_bearer::oauth::ReqwestTransport;
    /// use tower_bearer::providers::Kpn;
    /// use tower_bearer_emulator::{Emulator, Fault, Provider};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let emulator = Emulator::start().await?;
    /// emulator.inject(Provider::Kpn, Fault::Status { status: 302, retry_after: None, body: String::new() });
    /// # let kpn = Kpn::new().token_url(emulator.token_url(Provider::Kpn));
    /// # let kpn = kpn.client_id(emulator.client_id()).client_secret(emulator.client_secret());
    /// let source = kpn.build(ReqwestTransport::builder().build()?)?;
    /// let err = source.token().await.unwrap_err();
    /// assert_eq!(err.kind(), TokenErrorKind::Configuration);
    /// assert!(err.to_string().contains("redirect"), "{err}");
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> Result<ReqwestTransport, TokenError> {
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout);
        for root in self.roots {
            builder = builder.add_root_certificate(root);
        }
        if let Proxies::Given(proxies) = self.proxies {
            // Turns off the environment's proxies even when the list is empty.
            builder = builder.no_proxy();
            for proxy in proxies {
                builder = builder.proxy(proxy);
            }
        }
        let client = builder.build().map_err(|e| {
            TokenError::configuration(
                "the HTTP client for token requests could not be built",
                "see the cause; check the root certificates and timeouts given to the builder",
            )
            .with_source(e)
        })?;
        Ok(ReqwestTransport {
            client,
            max_response_bytes: self.max_response_bytes,
            timeouts: Some(Timeouts {
                connect: self.connect_timeout,
                request: self.timeout,
            }),
        })
    }
}

impl Transport for ReqwestTransport {
    async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Bytes>, TokenError> {
        let token_url = request.uri().clone();
        let request =
            reqwest::Request::try_from(request.map(reqwest::Body::from)).map_err(|e| {
                TokenError::configuration(
                    "the token request could not be converted for reqwest",
                    "see the cause; check the token URL",
                )
                .with_source(e)
            })?;
        let failed = |e| reqwest_error(&token_url, self.timeouts, e);
        let mut response = self.client.execute(request).await.map_err(failed)?;
        // Redirects are off, unless the client is your own: either way, an answer from
        // another origin is refused before its body is read.
        let came_from = crate::reqwest_client::final_uri(response.url()).ok_or_else(|| {
            TokenError::configuration(
                "the URL the token answer came from could not be read",
                "check the token URL (scheme, host and port)",
            )
        })?;
        check_answer_origin(&token_url, &came_from)?;
        let too_large = |status| too_large(self.max_response_bytes, status);
        let status = response.status();
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(too_large(status));
        }
        let mut answer = Response::builder()
            .status(status)
            .version(response.version());
        if let Some(headers) = answer.headers_mut() {
            *headers = response.headers().clone();
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large(status));
            }
            body.extend_from_slice(&chunk);
        }
        answer.body(body.freeze()).map_err(|e| {
            TokenError::new(TokenErrorKind::Other, "could not rebuild the answer").with_source(e)
        })
    }
}

/// A failed token request, named by its host: reqwest's error loses the URL (its query is
/// not shown anywhere) and stays the source.
fn reqwest_error(
    token_url: &http::Uri,
    timeouts: Option<Timeouts>,
    error: reqwest::Error,
) -> TokenError {
    let error = error.without_url();
    if error.is_timeout() {
        let host = endpoint_name(token_url);
        let message = match (timeouts, error.is_connect()) {
            (Some(t), true) => format!(
                "no connection to {host} within {:?}, the connect timeout",
                t.connect
            ),
            (Some(t), false) => format!(
                "no answer from {host} within {:?}, the request timeout",
                t.request
            ),
            (None, _) => format!("no answer from {host} within the HTTP client's timeout"),
        };
        TokenError::new(TokenErrorKind::Timeout, message)
            .with_hint("check the route to the token endpoint and its health, or raise the transport's timeouts")
            .with_source(error)
    } else {
        transport_error(token_url, error.into())
    }
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransport")
            .field("max_response_bytes", &self.max_response_bytes)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ReqwestTransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransportBuilder")
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("roots", &self.roots.len())
            .field("max_response_bytes", &self.max_response_bytes)
            .field("proxies", &self.proxies)
            .finish()
    }
}

impl fmt::Debug for Proxies {
    /// How many proxies, never their URLs: they may carry credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str("Environment"),
            Self::Given(proxies) => write!(f, "Given({} proxies)", proxies.len()),
        }
    }
}
