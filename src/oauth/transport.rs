//! How a token request reaches the token endpoint: any Tower HTTP service (a hyper-util client,
//! a test double), with a cap on the answer's size.

use std::fmt;
use std::future::{Future, poll_fn};
use std::marker::PhantomData;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower_service::Service;

use crate::error::{TokenError, TokenErrorKind};

/// Default cap on a token endpoint's answer: far above any real token response, far below
/// anything that could hurt.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sends a token request and reads the whole answer.
///
/// Implemented by [`ServiceTransport`] for any Tower HTTP service; implement it yourself for
/// anything else. Failures to reach the endpoint are [`TokenErrorKind::Transport`] errors; an
/// HTTP error status is not a failure here (the answer is parsed).
pub trait Transport: Send + Sync {
    /// Sends `request` and returns the answer with its body read.
    fn send(
        &self,
        request: Request<Vec<u8>>,
    ) -> impl Future<Output = Result<Response<Bytes>, TokenError>> + Send;
}

/// Any `tower::Service<http::Request<B>>` as a [`Transport`], reading at most
/// `max_response_bytes` of the answer.
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
    pub fn new(service: S) -> Self {
        Self {
            service,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            _body: PhantomData,
        }
    }

    /// Caps the size of the answer; a larger one is a [`TokenErrorKind::MalformedResponse`].
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
    ReqBody: From<Vec<u8>> + Send,
    ResBody: http_body::Body + Send,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Bytes>, TokenError> {
        let mut service = self.service.clone();
        poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(|e| transport_error(e.into()))?;
        let response = service
            .call(request.map(ReqBody::from))
            .await
            .map_err(|e| transport_error(e.into()))?;
        let (parts, body) = response.into_parts();
        let status = parts.status;
        let body = Limited::new(body, self.max_response_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    too_large(self.max_response_bytes, status)
                } else {
                    transport_error(e)
                }
            })?
            .to_bytes();
        Ok(Response::from_parts(parts, body))
    }
}

/// The token request failed on the way there or back.
pub(crate) fn transport_error(error: BoxError) -> TokenError {
    TokenError::new(
        TokenErrorKind::Transport,
        "the token request did not reach the token endpoint, or its answer was lost",
    )
    .with_hint(
        "check the token URL, DNS, proxies, TLS trust (root certificates) and that the endpoint \
         is up",
    )
    .with_source(error)
}

/// The answer is larger than `max` bytes.
pub(crate) fn too_large(max: usize, status: http::StatusCode) -> TokenError {
    TokenError::new(
        TokenErrorKind::MalformedResponse,
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
