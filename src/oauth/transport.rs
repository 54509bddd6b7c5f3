//! How a token request reaches the token endpoint: any Tower HTTP service (a hyper-util client,
//! a test double), with a cap on the answer's size.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
//! use tower_bearer::TokenSource;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // A stand-in for your HTTP client: a token endpoint that always answers the same.
//! let http_client = tower::service_fn(|_req: http::Request<Full<Bytes>>| async {
//!     let answer = r#"{"access_token":"eyJ...","token_type":"Bearer","expires_in":3600}"#;
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(answer))))
//! });
//! let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap();
//! let auth = ClientAuth::client_secret_post("client-7", "s3cret");
//! let source = ClientCredentials::new(request, auth, ServiceTransport::new(http_client));
//! assert_eq!(source.token().await.unwrap().lifetime().unwrap().as_secs(), 3600);
//! # }
//! ```

use std::fmt;
use std::future::{Future, poll_fn};
use std::marker::PhantomData;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower_service::Service;

use crate::error::{TokenError, TokenErrorKind};
use crate::origin::Origin;
use crate::redirect::FinalUri;

/// Default cap on a token endpoint's answer: far above any real token response, far below
/// anything that could hurt.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sends a token request and reads the whole answer.
///
/// Implemented by [`ServiceTransport`] for any Tower HTTP service; implement it yourself for
/// anything else. Failures to reach the endpoint are [`TokenErrorKind::Transport`] errors; an
/// HTTP error status is not a failure here (the answer is parsed).
///
/// The request carries the client's credentials: a transport of your own must send it only to
/// the request's URL, and must not follow a redirect to another origin (scheme, host, port);
/// if it follows redirects at all, it should refuse an answer from another origin as
/// [`ServiceTransport`] does, or at least hand back the 3xx, which is a
/// [`TokenErrorKind::Configuration`] error.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use tower_bearer::error::TokenError;
/// use tower_bearer::oauth::Transport;
///
/// /// Answers every token request with the same JSON (a test double).
/// struct Canned(&'static str);
///
/// impl Transport for Canned {
///     async fn send(&self, _request: Request<Vec<u8>>) -> Result<Response<Bytes>, TokenError> {
///         Ok(Response::new(Bytes::from_static(self.0.as_bytes())))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let answer = Canned(r#"{"access_token":"t","token_type":"Bearer"}"#)
///     .send(Request::post("https://idp.example/token").body(Vec::new()).unwrap()).await.unwrap();
/// assert!(answer.body().starts_with(b"{"));
/// # }
/// ```
pub trait Transport: Send + Sync {
    /// Sends `request` and returns the answer with its body read.
    ///
    /// A [`ClientCredentials`](crate::oauth::ClientCredentials) calls it; called directly:
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower_bearer::oauth::{ServiceTransport, Transport};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let transport = ServiceTransport::new(tower::service_fn(|_req: http::Request<Full<Bytes>>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"{}"))))
    /// }));
    /// let request = http::Request::post("https://idp.example/token").body(b"grant_type=client_credentials".to_vec());
    /// let answer = transport.send(request.unwrap()).await.unwrap();
    /// assert_eq!(answer.body().as_ref(), b"{}");
    /// # }
    /// ```
    fn send(
        &self,
        request: Request<Vec<u8>>,
    ) -> impl Future<Output = Result<Response<Bytes>, TokenError>> + Send;
}

/// Any `tower::Service<http::Request<B>>` as a [`Transport`], reading at most
/// `max_response_bytes` of the answer.
///
/// Before it reads any of the answer's body it checks two things:
///
/// - where the answer came from: if the response carries a [`FinalUri`] extension (set by a
///   service that follows redirects itself, such as `ReqwestService` (feature `reqwest`))
///   whose origin (scheme, host,
///   port) is not the token URL's, the answer is refused with a
///   [`TokenErrorKind::Configuration`] error naming both origins (never a path or query) and
///   the hint "the token endpoint redirected to another origin; configure the final token
///   URL". The token that other server issued is never used. This cannot undo what the service
///   already did: a service that follows a redirect to another origin has sent the request,
///   client secret or assertion included, there. Use a service that does not follow
///   redirects across origins (`ReqwestService::with_default_client`, or
///   `ReqwestTransport` (feature `reqwest`)), or one with redirects off. A
///   redirect answer itself (3xx) is a configuration error too. A service that follows
///   redirects and does not set [`FinalUri`] cannot be checked;
/// - its size: a `Content-Length` (or a body size hint) above `max_response_bytes` is refused
///   at once, as a [`TokenErrorKind::MalformedAnswer`], without waiting for a body that may
///   never come.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use bytes::Bytes;
/// use tower_bearer::oauth::ServiceTransport;
///
/// let transport: ServiceTransport<_, Full<Bytes>> = ServiceTransport::new(tower::service_fn(|_req: Request<Full<Bytes>>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(br#"{"access_token":"t"}"#))))
/// }));
/// # let _ = transport;
/// ```
pub struct ServiceTransport<S, ReqBody> {
    service: S,
    max_response_bytes: usize,
    _body: PhantomData<fn(ReqBody)>,
}

impl<S, ReqBody> ServiceTransport<S, ReqBody> {
    /// Wraps `service`, with the default answer size cap.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::ServiceBuilder;
    /// use tower_bearer::oauth::ServiceTransport;
    ///
    /// # let http_client = tower::service_fn(|_req: http::Request<Full<Bytes>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    /// # });
    /// // Any Tower HTTP service with its own layers, here a timeout around `http_client`.
    /// let service = ServiceBuilder::new().timeout(Duration::from_secs(10)).service(http_client);
    /// let transport: ServiceTransport<_, Full<Bytes>> = ServiceTransport::new(service);
    /// assert_eq!(format!("{transport:?}"), "ServiceTransport { max_response_bytes: 65536, .. }");
    /// ```
    pub fn new(service: S) -> Self {
        Self {
            service,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            _body: PhantomData,
        }
    }

    /// Caps the size of the answer; a larger one is a [`TokenErrorKind::MalformedAnswer`],
    /// refused before its body is read if its `Content-Length` says so. Default:
    /// [`DEFAULT_MAX_RESPONSE_BYTES`] (64 KiB).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower_bearer::TokenErrorKind;
    /// use tower_bearer::oauth::{ServiceTransport, Transport};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let transport = ServiceTransport::new(tower::service_fn(|_req: http::Request<Full<Bytes>>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(vec![b' '; 4096]))))
    /// }))
    /// .max_response_bytes(1024);
    /// let request = http::Request::post("https://idp.example/token").body(Vec::new()).unwrap();
    /// let err = transport.send(request).await.unwrap_err();
    /// assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer);
    /// # }
    /// ```
    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }
}

impl<S: Clone, ReqBody> Clone for ServiceTransport<S, ReqBody> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            max_response_bytes: self.max_response_bytes,
            _body: PhantomData,
        }
    }
}

impl<S, ReqBody, ResBody> Transport for ServiceTransport<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + Sync,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: From<Bytes> + Send,
    ResBody: http_body::Body + Send,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Bytes>, TokenError> {
        let mut service = self.service.clone();
        let token_url = request.uri().clone();
        poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(|e| transport_error(&token_url, e.into()))?;
        let response = service
            // The body holds the client secret or assertion: wiped when the HTTP client drops
            // it (copies the client makes on the way are its own).
            .call(
                request.map(|body| ReqBody::from(Bytes::from_owner(zeroize::Zeroizing::new(body)))),
            )
            .await
            .map_err(|e| transport_error(&token_url, e.into()))?;
        let (parts, body) = response.into_parts();
        let status = parts.status;
        // Before anything of the body is read: where the answer came from, and its size.
        if let Some(FinalUri(answered)) = parts.extensions.get::<FinalUri>() {
            check_answer_origin(&token_url, answered)?;
        }
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        let max = self.max_response_bytes as u64;
        if declared.is_some_and(|n| n > max) || body.size_hint().lower() > max {
            return Err(too_large(self.max_response_bytes, status));
        }
        let body = Limited::new(body, self.max_response_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    too_large(self.max_response_bytes, status)
                } else {
                    transport_error(&token_url, e)
                }
            })?
            .to_bytes();
        Ok(Response::from_parts(parts, body))
    }
}

/// The host (and port, if the URL names one) of `token_url`, for messages: never its path,
/// query or user information.
pub(crate) fn endpoint_name(token_url: &Uri) -> String {
    match (token_url.host(), token_url.port_u16()) {
        (Some(host), Some(port)) => crate::error::sanitize(&format!("{host}:{port}")),
        (Some(host), None) => crate::error::sanitize(host),
        (None, _) => "the token endpoint".to_owned(),
    }
}

/// The longest cause quoted in a message.
const MAX_CAUSE: usize = 120;

/// The request to `token_url` (a token request, or the issuer's metadata) failed on the way
/// there or back. The message names the
/// host and the cause in words (the innermost error's, such as "connection refused" or
/// "invalid peer certificate: UnknownIssuer"), the hint what to check for that cause; the
/// error itself stays the source.
pub(crate) fn transport_error(token_url: &Uri, error: BoxError) -> TokenError {
    let (cause, hint) = cause(&*error, token_url);
    TokenError::new(
        TokenErrorKind::Transport,
        format!(
            "the request to {} failed: {cause}",
            endpoint_name(token_url)
        ),
    )
    .with_hint(hint)
    .with_source(error)
}

/// The innermost cause of `error` in words, and what to check for it.
pub(crate) fn cause(
    error: &(dyn std::error::Error + 'static),
    token_url: &Uri,
) -> (String, &'static str) {
    let mut innermost = error;
    let mut io_kind = None;
    loop {
        if let Some(io) = innermost.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        match innermost.source() {
            Some(next) => innermost = next,
            None => break,
        }
    }
    let mut words = innermost.to_string();
    // "Connection refused (os error 111)": the number says nothing more.
    if let Some(at) = words.find(" (os error ")
        && words.ends_with(')')
    {
        words.truncate(at);
    }
    // A sentence's capital, not a name's ("Connection refused", not "UnknownIssuer").
    let mut chars = words.chars();
    if let (Some(first), Some(second)) = (chars.next(), chars.next())
        && first.is_ascii_uppercase()
        && second.is_ascii_lowercase()
    {
        words.replace_range(..1, &first.to_ascii_lowercase().to_string());
    }
    // An HTTP client's own error may quote the URL; its query is not shown.
    if let Some(query) = token_url.query().filter(|q| !q.is_empty()) {
        words = words.replace(query, crate::error::REDACTED);
    }
    let words = crate::error::sanitize_with(words.trim(), MAX_CAUSE, |cut| cut);
    let lower = words.to_ascii_lowercase();
    use std::io::ErrorKind;
    let hint = if io_kind == Some(ErrorKind::ConnectionRefused) || lower.contains("refused") {
        "nothing accepts connections there: check the token URL's host and port, and that the \
         token endpoint is up"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        "the TLS connection failed: check that the token URL is the provider's, and that its \
         certificate's issuer is trusted (for a private CA, add it as a root certificate of the \
         transport)"
    } else if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
        "the host name did not resolve: check the token URL's host, and the DNS or proxy \
         settings"
    } else if io_kind == Some(ErrorKind::TimedOut) || lower.contains("timed out") {
        "no connection in time: check the route to the token endpoint (firewall, proxy)"
    } else if matches!(
        io_kind,
        Some(ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof)
    ) || lower.contains("closed")
        || lower.contains("reset")
    {
        "the connection was closed before the answer came: check proxies on the way and the \
         endpoint's health"
    } else {
        "check the token URL, DNS, proxies, TLS trust (root certificates) and that the endpoint \
         is up"
    };
    let words = if words.is_empty() {
        "no cause given".to_owned()
    } else {
        words
    };
    (words, hint)
}

/// Refuses an answer that did not come from the token URL's origin (scheme, host and port): a
/// transport followed a redirect elsewhere, so the client's credentials may have gone there and
/// the token is that other server's. The error names both origins, never a path or query.
pub(crate) fn check_answer_origin(token_url: &Uri, answered: &Uri) -> Result<(), TokenError> {
    let requested = Origin::of(token_url);
    if requested
        .as_ref()
        .is_some_and(|origin| origin.matches(answered))
    {
        return Ok(());
    }
    let show = |origin: Option<Origin>| {
        origin.map_or_else(|| String::from("an unknown origin"), |o| format!("`{o}`"))
    };
    Err(TokenError::configuration(
        format!(
            "the token answer came from {}, not from the token URL's origin {}; it was refused",
            show(Origin::of(answered)),
            show(requested),
        ),
        "the token endpoint redirected to another origin; configure the final token URL",
    ))
}

/// The answer is larger than `max` bytes.
pub(crate) fn too_large(max: usize, status: http::StatusCode) -> TokenError {
    TokenError::new(
        TokenErrorKind::MalformedAnswer,
        format!("the token endpoint's answer is larger than {max} bytes"),
    )
    .with_status(status)
    .with_hint("check the token URL: token responses are a few kilobytes")
}

impl<S, ReqBody> fmt::Debug for ServiceTransport<S, ReqBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTransport")
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}
