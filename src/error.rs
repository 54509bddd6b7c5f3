//! Errors: [`TokenError`] from token sources and the cache, [`DestinationError`] when a request
//! may not carry a token, and [`Error`], which the layered service returns.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// What went wrong getting a token. Says what to check, never carries a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenErrorKind {
    /// The client id or secret (or assertion) was refused (`invalid_client`).
    InvalidClient,
    /// The scope is unknown, malformed or not granted (`invalid_scope`).
    InvalidScope,
    /// The grant or assertion is invalid or expired (`invalid_grant`).
    InvalidGrant,
    /// The request is missing a parameter or malformed (`invalid_request`).
    InvalidRequest,
    /// The client may not use this grant type (`unauthorized_client`).
    UnauthorizedClient,
    /// The server does not support this grant type (`unsupported_grant_type`).
    UnsupportedGrantType,
    /// The requested resource or audience is invalid (`invalid_target`, RFC 8707).
    InvalidTarget,
    /// The token endpoint asked us to slow down (HTTP 429 or a similar answer).
    RateLimited,
    /// The token endpoint failed (HTTP 5xx).
    Server,
    /// The token endpoint did not answer in time.
    Timeout,
    /// The request did not reach the token endpoint, or its answer was lost.
    Transport,
    /// The token endpoint answered with something that is not a token response.
    MalformedResponse,
    /// A token arrived but cannot be used: wrong type, not a valid header value, expired.
    InvalidToken,
    /// The token source or cache is set up wrongly.
    Configuration,
    /// Anything else.
    Other,
}

impl TokenErrorKind {
    /// Whether asking again later may succeed (rate limits, server errors, timeouts, transport).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Server | Self::Timeout | Self::Transport
        )
    }

    /// The RFC 6749 error code, or a short name for the kinds RFC 6749 does not define.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidClient => "invalid_client",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidRequest => "invalid_request",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidTarget => "invalid_target",
            Self::RateLimited => "rate_limited",
            Self::Server => "server_error",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::MalformedResponse => "malformed_response",
            Self::InvalidToken => "invalid_token",
            Self::Configuration => "configuration",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for TokenErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token could not be had.
///
/// Cheap to clone (the cache hands one error to every waiting caller). Its message, hint and
/// source must never hold a secret: token sources build it from status codes, error codes and
/// fingerprints only.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::error::{TokenError, TokenErrorKind};
///
/// let err = TokenError::new(TokenErrorKind::RateLimited, "token endpoint answered 429")
///     .with_retry_after(Duration::from_secs(30))
///     .with_hint("lower the request rate or ask the provider for a higher quota");
/// assert!(err.kind().is_transient());
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
/// assert!(err.to_string().contains("429"));
/// ```
#[derive(Clone)]
pub struct TokenError {
    inner: Arc<TokenErrorInner>,
}

#[derive(Clone)]
struct TokenErrorInner {
    kind: TokenErrorKind,
    message: Cow<'static, str>,
    hint: Option<Cow<'static, str>>,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    provider: Option<ProviderError>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

/// What a token endpoint said about an error, in whichever shape it used (RFC 6749, camelCase,
/// Apigee's `ErrorCode`/`fault`, Entra's extras), sanitised and shortened.
///
/// Keep `trace_id`, `correlation_id` and `timestamp` for support requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderError {
    /// The error code: `error`, Apigee's `ErrorCode` or `fault.detail.errorcode`.
    pub code: Option<String>,
    /// The description: `error_description`, `errorDescription`, Apigee's `Error` or
    /// `fault.faultstring`.
    pub description: Option<String>,
    /// `error_uri`.
    pub uri: Option<String>,
    /// Entra ID's numeric `error_codes` (AADSTS codes).
    pub error_codes: Vec<i64>,
    /// Entra ID's `trace_id`.
    pub trace_id: Option<String>,
    /// Entra ID's `correlation_id`.
    pub correlation_id: Option<String>,
    /// Entra ID's `timestamp`.
    pub timestamp: Option<String>,
    /// The start of a body that is not a JSON error, sanitised.
    pub body_snippet: Option<String>,
}

impl TokenError {
    /// An error of `kind` with a message that says what happened.
    pub fn new(kind: TokenErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            inner: Arc::new(TokenErrorInner {
                kind,
                message: message.into(),
                hint: None,
                status: None,
                retry_after: None,
                provider: None,
                source: None,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut TokenErrorInner {
        // Builders normally run before the error is shared, so this rarely clones.
        Arc::make_mut(&mut self.inner)
    }

    /// Adds what to check or change to fix it.
    pub fn with_hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.inner_mut().hint = Some(hint.into());
        self
    }

    /// Adds the HTTP status the token endpoint answered with.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.inner_mut().status = Some(status);
        self
    }

    /// Adds how long the server asked us to wait before trying again.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.inner_mut().retry_after = Some(retry_after);
        self
    }

    /// Adds what the token endpoint said.
    pub fn with_provider_error(mut self, provider: ProviderError) -> Self {
        self.inner_mut().provider = Some(provider);
        self
    }

    /// Adds the underlying cause.
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.inner_mut().source = Some(Arc::from(source.into()));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> TokenErrorKind {
        self.inner.kind
    }

    /// What happened, in words.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// What to check or change, if known.
    pub fn hint(&self) -> Option<&str> {
        self.inner.hint.as_deref()
    }

    /// The HTTP status of the token endpoint's answer, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// What the token endpoint said, if it answered with an error.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        self.inner.provider.as_ref()
    }
}

impl TokenError {
    /// Redacts every form of the secrets `redactor` knows from what the error says: message,
    /// hint and the provider's fields (a server may echo a request back). The source, an error
    /// of another type, is kept as it is.
    pub(crate) fn redact(mut self, redactor: &crate::oauth::redact::Redactor) -> Self {
        if redactor.is_empty() {
            return self;
        }
        let scrub = |s: &mut String| {
            if let std::borrow::Cow::Owned(redacted) = redactor.redact(s) {
                *s = redacted;
            }
        };
        let scrub_cow = |s: &mut Cow<'static, str>| {
            if let Cow::Owned(redacted) = redactor.redact(s) {
                *s = Cow::Owned(redacted);
            }
        };
        let inner = self.inner_mut();
        scrub_cow(&mut inner.message);
        if let Some(hint) = &mut inner.hint {
            scrub_cow(hint);
        }
        if let Some(p) = &mut inner.provider {
            for field in [
                &mut p.code,
                &mut p.description,
                &mut p.uri,
                &mut p.trace_id,
                &mut p.correlation_id,
                &mut p.timestamp,
                &mut p.body_snippet,
            ]
            .into_iter()
            .flatten()
            {
                scrub(field);
            }
        }
        self
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token error ({}", self.inner.kind)?;
        if let Some(status) = self.inner.status {
            write!(f, ", HTTP {}", status.as_u16())?;
        }
        write!(f, "): {}", self.inner.message)?;
        if let Some(p) = &self.inner.provider {
            let ids = [
                ("trace_id", &p.trace_id),
                ("correlation_id", &p.correlation_id),
                ("timestamp", &p.timestamp),
            ];
            let mut first = true;
            for (name, value) in ids {
                if let Some(value) = value {
                    f.write_str(if first { " [" } else { ", " })?;
                    write!(f, "{name}={value}")?;
                    first = false;
                }
            }
            if !first {
                f.write_str("]")?;
            }
        }
        if let Some(hint) = &self.inner.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenError")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("hint", &self.inner.hint)
            .field("status", &self.inner.status)
            .field("retry_after", &self.inner.retry_after)
            .field("provider", &self.inner.provider)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl StdError for TokenError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Why a request may not carry the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DestinationErrorKind {
    /// Plain `http://` to a host that is not loopback.
    InsecureScheme,
    /// A host (or port, or scheme) that is not in the layer's allow-list, or not the origin
    /// named with [`origin`](crate::BearerTokenLayer::origin).
    HostNotAllowed,
    /// The `Host` header names another host or port than the request's URI (or the layer's
    /// named origin), or cannot be read.
    HostMismatch,
    /// A response to a request that carried the token redirects to another origin (or to a
    /// `Location` that is not provably the same origin). The request was sent; the redirect is
    /// not followed with the token.
    CrossOriginRedirect,
}

impl DestinationErrorKind {
    /// A short name, the `reason` label of the
    /// [`tower_bearer_tokens_withheld_total`](crate::metrics::TOKENS_WITHHELD) metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InsecureScheme => "insecure_scheme",
            Self::HostNotAllowed => "host_not_allowed",
            Self::HostMismatch => "host_mismatch",
            Self::CrossOriginRedirect => "cross_origin_redirect",
        }
    }
}

impl fmt::Display for DestinationErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The layer refused to send its token to a request's destination.
///
/// For every kind but [`CrossOriginRedirect`](DestinationErrorKind::CrossOriginRedirect) the
/// request was not sent. For that one the request was sent and answered with a redirect to
/// another origin, which the layer stops so that no redirect-following layer outside it
/// sends the token there; the error names origins only (a `Location` can carry a presigned
/// secret in its query).
///
/// ```
/// use tower_bearer::error::{DestinationError, DestinationErrorKind};
///
/// # fn check(err: DestinationError) {
/// if err.kind() == DestinationErrorKind::InsecureScheme {
///     eprintln!("{err}"); // says which host, and how to allow it
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationError {
    kind: DestinationErrorKind,
    host: String,
    redirect: Option<Redirect>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Redirect {
    status: StatusCode,
    to: Option<String>,
}

impl DestinationError {
    pub(crate) fn new(kind: DestinationErrorKind, host: &str) -> Self {
        Self {
            kind,
            host: sanitize(host),
            redirect: None,
        }
    }

    /// A redirect from `from` (an origin) to `to` (an origin, or `None` when the `Location`
    /// is not one), answered with `status`.
    pub(crate) fn cross_origin_redirect(
        from: Option<String>,
        status: StatusCode,
        to: Option<String>,
    ) -> Self {
        Self {
            kind: DestinationErrorKind::CrossOriginRedirect,
            host: from.unwrap_or_else(|| "the request's origin".to_owned()),
            redirect: Some(Redirect { status, to }),
        }
    }

    /// Why the request was refused.
    pub fn kind(&self) -> DestinationErrorKind {
        self.kind
    }

    /// The host the request was for (for a cross-origin redirect, the origin it was sent to,
    /// as `scheme://host:port`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// For a cross-origin redirect: the status of the redirect.
    pub fn redirect_status(&self) -> Option<StatusCode> {
        self.redirect.as_ref().map(|r| r.status)
    }

    /// For a cross-origin redirect: the origin it pointed to (`scheme://host:port`), if the
    /// `Location` named one.
    pub fn redirect_origin(&self) -> Option<&str> {
        self.redirect.as_ref().and_then(|r| r.to.as_deref())
    }
}

impl fmt::Display for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DestinationErrorKind::InsecureScheme => write!(
                f,
                "refused to send a bearer token over plain http:// to `{}`: use https://, or call \
                 `allow_insecure_http(true)` on the layer if this network is trusted",
                self.host
            ),
            DestinationErrorKind::HostNotAllowed => write!(
                f,
                "refused to send a bearer token to `{}`: the host (with its scheme and port) is \
                 not in the layer's `allowed_hosts` or is not its `origin`; add it there (with \
                 its port if not the default, e.g. `api.example.com:8443`), or choose \
                 `OtherHosts::SendWithoutToken`",
                self.host
            ),
            DestinationErrorKind::HostMismatch => write!(
                f,
                "refused to send a bearer token: the request's `Host` header `{}` names another \
                 host or port than its URI; remove the `Host` header or make it match the URI",
                self.host
            ),
            DestinationErrorKind::CrossOriginRedirect => {
                let (status, to) = match &self.redirect {
                    Some(r) => (r.status.as_u16(), r.to.as_deref()),
                    None => (0, None),
                };
                write!(
                    f,
                    "the answer from {} to a request carrying a bearer token is a redirect (HTTP \
                     {status}) to {}; it is not followed with the token: to follow it, put \
                     FollowRedirect inside the bearer layer (its standard policy, or any policy \
                     in `tower_bearer::redirect::PinOrigin`, sends cross-origin hops without the \
                     token), or choose `CrossOriginRedirects::HideLocation` on the layer to get \
                     the 3xx with its `Location` in a `RedirectLocation` extension",
                    self.host,
                    match to {
                        Some(origin) => format!("another origin, {origin}"),
                        None => "a location that is not provably the same origin".to_owned(),
                    }
                )
            }
        }
    }
}

impl StdError for DestinationError {}

/// An [`allowed_hosts`](crate::BearerTokenLayer::allowed_hosts) entry or an
/// [`origin`](crate::BearerTokenLayer::origin) that the layer cannot use; says what to write
/// instead.
///
/// ```
/// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
///
/// let err = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
///     .allowed_hosts(["api.example.com:99999"])
///     .unwrap_err();
/// assert!(err.to_string().contains("api.example.com:99999"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationConfigError {
    input: String,
    reason: &'static str,
}

impl DestinationConfigError {
    pub(crate) fn new(input: &str, reason: &'static str) -> Self {
        // User information (`user:password@`) is never echoed.
        let shown = match input.rfind('@') {
            Some(at) => {
                let scheme = input.find("://").filter(|&i| i < at).map_or(0, |i| i + 3);
                format!("{}***@{}", &input[..scheme], &input[at + 1..])
            }
            None => input.to_owned(),
        };
        Self {
            input: sanitize(&shown),
            reason,
        }
    }

    /// Why it cannot be used.
    pub fn reason(&self) -> &str {
        self.reason
    }
}

impl fmt::Display for DestinationConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a usable host or origin: {}; write `api.example.com` (default port \
             only), `api.example.com:8443`, `*.example.com`, `https://api.example.com:8443` or \
             `localhost:*` (any port)",
            self.input, self.reason
        )
    }
}

impl StdError for DestinationConfigError {}

/// The error of a [`BearerToken`](crate::BearerToken) service: no token, a refused
/// destination, or the inner service's own error, kept as it was.
#[derive(Debug)]
pub enum Error<E> {
    /// No token could be had; the request was not sent.
    Token(TokenError),
    /// The request's destination may not receive the token; the request was not sent (or, for
    /// [`CrossOriginRedirect`](DestinationErrorKind::CrossOriginRedirect), its redirect was
    /// not followed).
    Destination(DestinationError),
    /// The inner service failed.
    Service(E),
}

impl<E> Error<E> {
    /// The inner service's error, if that is what this is.
    pub fn into_service_error(self) -> Option<E> {
        match self {
            Self::Service(e) => Some(e),
            _ => None,
        }
    }

    /// The token error, if that is what this is.
    pub fn token_error(&self) -> Option<&TokenError> {
        match self {
            Self::Token(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(e) => write!(f, "request not sent: {e}"),
            Self::Destination(e) => write!(f, "request not sent: {e}"),
            Self::Service(e) => write!(f, "inner service failed: {e}"),
        }
    }
}

// Bounded on `Debug + Display` rather than `Error` so that `Error<BoxError>` (the error of
// tower's `Buffer`, `Timeout`, ...) is an error too; the inner error shows in `Display`.
impl<E: fmt::Debug + fmt::Display> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Token(e) => Some(e),
            Self::Destination(e) => Some(e),
            Self::Service(_) => None,
        }
    }
}

/// Keeps at most 64 visible ASCII characters of a server-supplied string for an error message.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_status_and_hint() {
        let err = TokenError::new(
            TokenErrorKind::InvalidClient,
            "client authentication failed",
        )
        .with_status(StatusCode::BAD_REQUEST)
        .with_hint("check the client id and secret");
        assert_eq!(
            err.to_string(),
            "token error (invalid_client, HTTP 400): client authentication failed; \
             hint: check the client id and secret"
        );
    }

    #[test]
    fn destination_error_says_how_to_fix() {
        let err = DestinationError::new(DestinationErrorKind::InsecureScheme, "api.example.com");
        assert!(err.to_string().contains("allow_insecure_http"));
        let err = DestinationError::new(DestinationErrorKind::HostNotAllowed, "evil\r\n.com");
        assert!(err.to_string().contains("evil??.com"));
        assert!(err.to_string().contains("allowed_hosts"));
    }

    #[test]
    fn service_error_is_kept_and_shown() {
        let err: Error<std::io::Error> = Error::Service(std::io::Error::other("boom"));
        assert_eq!(err.to_string(), "inner service failed: boom");
        assert!(err.into_service_error().is_some());
        // tower's own layers fail with `BoxError`; wrapping it still makes an error.
        let boxed: Box<dyn StdError + Send + Sync> = "inner".into();
        let err: Box<dyn StdError + Send + Sync> = Error::Service(boxed).into();
        assert_eq!(err.to_string(), "inner service failed: inner");
    }
}
