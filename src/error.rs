//! Errors: [`TokenError`] from token sources and the cache, [`DestinationError`] when a request
//! may not carry a token, and [`Error`], which the layered service returns.
//!
//! The core names no protocol. A [`TokenErrorKind`] is one of a small, transport-neutral set
//! that every token source (an OAuth client, a vault, a file) maps its failures onto; what the
//! source itself said stays with the error as detail: its own error [`code`](TokenError::code),
//! [support references](TokenError::support_refs) for its operators, and typed
//! [details](TokenError::detail) such as the OAuth client's
//! `oauth::ProviderError`.
//!
//! ```
//! use tower_bearer::{Error, TokenError, TokenErrorKind};
//!
//! // A request through the layer failed for want of a token:
//! let unavailable = TokenError::new(TokenErrorKind::Unavailable, "the token endpoint answered 503");
//! let err: Error<std::io::Error> = Error::Token(unavailable);
//! assert!(err.to_string().starts_with("request not sent: token error (unavailable)"));
//! // Worth sending again later: the token endpoint may answer then.
//! assert!(err.token_error().is_some_and(|e| e.kind().is_transient()));
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// What went wrong getting a token, in terms any token source can use. Says what to check,
/// never carries a secret.
///
/// This is the stable set that retry decisions, metrics and stores of tokens key on: a kind
/// says what kind of failure it was and whether asking again may help, not which protocol
/// said so. A source maps its own codes onto it and keeps them as
/// [`TokenError::code`]. The OAuth client maps RFC 6749 and the providers' codes so:
///
/// | kind | OAuth 2.0 |
/// | --- | --- |
/// | [`CredentialsRejected`](Self::CredentialsRejected) | `invalid_client`, `invalid_grant`; Entra ID's AADSTS700016 (no such application) and AADSTS7000112 (application disabled), whatever the code; HTTP 401 |
/// | [`NotPermitted`](Self::NotPermitted) | `unauthorized_client`, `invalid_target`, `access_denied`; HTTP 403 |
/// | [`RateLimited`](Self::RateLimited) | `slow_down`; HTTP 429 |
/// | [`Unavailable`](Self::Unavailable) | `server_error`, `temporarily_unavailable`; HTTP 5xx |
/// | [`Timeout`](Self::Timeout) | no answer in time; HTTP 408 |
/// | [`Transport`](Self::Transport) | the request or its answer was lost |
/// | [`MalformedAnswer`](Self::MalformedAnswer) | not a token response; a token of another type, not a valid header value, or already expired |
/// | [`Configuration`](Self::Configuration) | `invalid_request`, `unsupported_grant_type`, `invalid_scope` (a scope written wrongly); HTTP 400 without a code, 3xx, 404, 405; a bad token URL, key or setting |
/// | [`Other`](Self::Other) | anything else |
///
/// The enum is `#[non_exhaustive]`: match it with a wildcard arm.
///
/// ```
/// use tower_bearer::TokenErrorKind;
///
/// fn what_to_do(kind: TokenErrorKind) -> &'static str {
///     match kind {
///         TokenErrorKind::CredentialsRejected => "rotate the client secret",
///         kind if kind.is_transient() => "try again later",
///         _ => "fix the setup",
///     }
/// }
/// assert_eq!(what_to_do(TokenErrorKind::RateLimited), "try again later");
/// assert_eq!(what_to_do(TokenErrorKind::Configuration), "fix the setup");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenErrorKind {
    /// The source's credentials were refused: a wrong, disabled or expired client secret, key
    /// or assertion.
    CredentialsRejected,
    /// The credentials were accepted but do not allow this: a scope, audience, grant or API the
    /// client is not granted.
    NotPermitted,
    /// The source asked us to slow down.
    RateLimited,
    /// The source failed or is down.
    Unavailable,
    /// The source did not answer in time.
    Timeout,
    /// The request did not reach the source, or its answer was lost.
    Transport,
    /// The source's answer is not a usable token: not a token response, a token of another
    /// type, one that is not a valid header value, one already expired.
    MalformedAnswer,
    /// The source or cache is set up wrongly, including requests the source does not accept as
    /// sent (a missing or malformed parameter, an unsupported grant).
    Configuration,
    /// Anything else.
    Other,
}

impl TokenErrorKind {
    /// The kind named `name` by [`as_str`](Self::as_str), for a name that crossed a process
    /// boundary (a fleet's token store).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        use TokenErrorKind::*;
        [
            CredentialsRejected,
            NotPermitted,
            RateLimited,
            Unavailable,
            Timeout,
            Transport,
            MalformedAnswer,
            Configuration,
            Other,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }

    /// Whether asking again later may succeed: [`RateLimited`](Self::RateLimited),
    /// [`Unavailable`](Self::Unavailable), [`Timeout`](Self::Timeout) and
    /// [`Transport`](Self::Transport).
    ///
    /// ```
    /// use tower_bearer::TokenErrorKind;
    ///
    /// assert!(TokenErrorKind::Unavailable.is_transient());
    /// assert!(TokenErrorKind::Timeout.is_transient());
    /// assert!(!TokenErrorKind::CredentialsRejected.is_transient());
    /// assert!(!TokenErrorKind::Configuration.is_transient());
    /// ```
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Unavailable | Self::Timeout | Self::Transport
        )
    }

    /// The kind's snake_case name (`credentials_rejected`, `not_permitted`, ...): the
    /// `outcome` label of the
    /// [`tower_bearer_token_requests_total`](crate::metrics::TOKEN_REQUESTS) metric, and the
    /// first word of a [`TokenError`]'s `Display`.
    ///
    /// ```
    /// use tower_bearer::TokenErrorKind;
    ///
    /// assert_eq!(TokenErrorKind::CredentialsRejected.as_str(), "credentials_rejected");
    /// assert_eq!(TokenErrorKind::MalformedAnswer.to_string(), "malformed_answer");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CredentialsRejected => "credentials_rejected",
            Self::NotPermitted => "not_permitted",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::MalformedAnswer => "malformed_answer",
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

/// Typed detail a token source attaches to a [`TokenError`] with
/// [`with_detail`](TokenError::with_detail), for callers that know the source (the OAuth
/// client attaches `oauth::ProviderError`, what the token endpoint said).
///
/// The core shows a detail only in `Debug`. A detail must hold no secret, but it may hold text
/// a server wrote, which can echo one: [`for_each_text_mut`](Self::for_each_text_mut) hands
/// every such string to the crate's redaction.
///
/// ```
/// use tower_bearer::error::{ErrorDetail, TokenError, TokenErrorKind};
///
/// #[derive(Clone, Debug)]
/// struct VaultLease {
///     path: String,
/// }
///
/// impl ErrorDetail for VaultLease {
///     fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
///         f(&mut self.path);
///     }
/// }
///
/// let err = TokenError::new(TokenErrorKind::NotPermitted, "the vault refused the lease")
///     .with_detail(VaultLease { path: "secret/api".into() });
/// assert_eq!(err.detail::<VaultLease>().unwrap().path, "secret/api");
/// ```
pub trait ErrorDetail: Any + Clone + fmt::Debug + Send + Sync {
    /// Hands every string the detail holds to `f`, which may rewrite it (to remove an echoed
    /// secret). A detail that holds no text does nothing.
    ///
    /// ```
    /// use tower_bearer::error::ErrorDetail;
    ///
    /// #[derive(Clone, Debug)]
    /// struct ServerSaid(String);
    ///
    /// impl ErrorDetail for ServerSaid {
    ///     fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
    ///         f(&mut self.0);
    ///     }
    /// }
    ///
    /// let mut said = ServerSaid("client_secret=hunter2 is wrong".into());
    /// said.for_each_text_mut(&mut |s| *s = s.replace("hunter2", "[redacted]"));
    /// assert_eq!(said.0, "client_secret=[redacted] is wrong");
    /// ```
    fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String));
}

/// An [`ErrorDetail`] of any type, as a [`TokenError`] holds it.
trait AnyDetail: Send + Sync + fmt::Debug {
    fn as_any(&self) -> &dyn Any;
    fn clone_box(&self) -> Box<dyn AnyDetail>;
    fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String));
}

impl<T: ErrorDetail> AnyDetail for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn clone_box(&self) -> Box<dyn AnyDetail> {
        Box::new(self.clone())
    }

    fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
        ErrorDetail::for_each_text_mut(self, f);
    }
}

impl Clone for Box<dyn AnyDetail> {
    fn clone(&self) -> Self {
        (**self).clone_box()
    }
}

/// A token could not be had.
///
/// Cheap to clone (the cache hands one error to every waiting caller). Its message, hint, code,
/// support references, details and source must never hold a secret: token sources build it
/// from status codes, error codes and fingerprints only, and the OAuth client redacts what a
/// server echoed.
///
/// ```
/// use std::time::Duration;
/// use http::StatusCode;
/// use tower_bearer::error::{TokenError, TokenErrorKind};
///
/// let err = TokenError::new(TokenErrorKind::RateLimited, "token endpoint answered 429")
///     .with_status(StatusCode::TOO_MANY_REQUESTS)
///     .with_code("SpikeArrestViolation")
///     .with_retry_after(Duration::from_secs(30))
///     .with_hint("lower the request rate or ask the provider for a higher quota");
/// assert!(err.kind().is_transient());
/// assert_eq!(err.code(), Some("SpikeArrestViolation"));
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
/// assert!(err.to_string().starts_with(
///     "token error (rate_limited: SpikeArrestViolation, HTTP 429): token endpoint answered 429"
/// ));
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
    code: Option<Cow<'static, str>>,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    support_refs: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    details: Vec<Box<dyn AnyDetail>>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl TokenError {
    /// An error of `kind` with a message that says what happened.
    ///
    /// ```
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::Unavailable, "the vault is sealed");
    /// assert_eq!(err.kind(), TokenErrorKind::Unavailable);
    /// assert_eq!(err.message(), "the vault is sealed");
    /// assert_eq!(err.to_string(), "token error (unavailable): the vault is sealed");
    /// ```
    pub fn new(kind: TokenErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            inner: Arc::new(TokenErrorInner {
                kind,
                message: message.into(),
                hint: None,
                code: None,
                status: None,
                retry_after: None,
                support_refs: Vec::new(),
                details: Vec::new(),
                source: None,
            }),
        }
    }

    /// A [`Configuration`](TokenErrorKind::Configuration) error: what is set up wrongly, and
    /// what to write instead. Every configuration error of the crate is built with it.
    ///
    /// ```
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::configuration("no client id", "set `client_id`");
    /// assert_eq!(err.kind(), TokenErrorKind::Configuration);
    /// assert_eq!(err.to_string(), "token error (configuration): no client id; hint: set `client_id`");
    /// ```
    pub fn configuration(
        message: impl Into<Cow<'static, str>>,
        hint: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(TokenErrorKind::Configuration, message).with_hint(hint)
    }

    fn inner_mut(&mut self) -> &mut TokenErrorInner {
        // Builders normally run before the error is shared, so this rarely clones.
        Arc::make_mut(&mut self.inner)
    }

    /// Adds what to check or change to fix it.
    ///
    /// ```
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::CredentialsRejected, "the client secret was refused")
    ///     .with_hint("check that the secret has not expired");
    /// assert_eq!(err.hint(), Some("check that the secret has not expired"));
    /// assert!(err.to_string().ends_with("; hint: check that the secret has not expired"));
    /// ```
    pub fn with_hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.inner_mut().hint = Some(hint.into());
        self
    }

    /// Adds the source's own error code (for OAuth, the token endpoint's `error`, such as
    /// `invalid_scope`), shown after the kind. Sanitise what a server sent before adding it.
    ///
    /// ```
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::Configuration, "the scope is unknown")
    ///     .with_code("invalid_scope");
    /// assert_eq!(err.code(), Some("invalid_scope"));
    /// assert!(err.to_string().starts_with("token error (configuration: invalid_scope)"));
    /// ```
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.inner_mut().code = Some(code.into());
        self
    }

    /// Adds the HTTP status the source answered with.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::Unavailable, "the token endpoint failed")
    ///     .with_status(StatusCode::SERVICE_UNAVAILABLE);
    /// assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    /// assert!(err.to_string().starts_with("token error (unavailable, HTTP 503)"));
    /// ```
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.inner_mut().status = Some(status);
        self
    }

    /// Adds how long the source asked us to wait before trying again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::RateLimited, "too many token requests")
    ///     .with_retry_after(Duration::from_secs(20));
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(20)));
    /// ```
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.inner_mut().retry_after = Some(retry_after);
        self
    }

    /// Adds a reference for a support request (a trace or correlation id, a timestamp), shown
    /// in `Display` as `[name=value, ...]`. Sanitise what a server sent before adding it.
    ///
    /// ```
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::Unavailable, "the vault is sealed")
    ///     .with_support_ref("request_id", "7f3a");
    /// assert_eq!(err.support_refs().collect::<Vec<_>>(), [("request_id", "7f3a")]);
    /// assert!(err.to_string().ends_with("the vault is sealed [request_id=7f3a]"));
    /// ```
    pub fn with_support_ref(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.inner_mut()
            .support_refs
            .push((name.into(), value.into()));
        self
    }

    /// Attaches typed detail the source alone knows, replacing one of the same type (see
    /// [`ErrorDetail`]).
    ///
    /// ```
    /// use tower_bearer::error::{ErrorDetail, TokenError, TokenErrorKind};
    ///
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct Attempts(u32);
    ///
    /// impl ErrorDetail for Attempts {
    ///     fn for_each_text_mut(&mut self, _: &mut dyn FnMut(&mut String)) {}
    /// }
    ///
    /// let err = TokenError::new(TokenErrorKind::Timeout, "no answer")
    ///     .with_detail(Attempts(1))
    ///     .with_detail(Attempts(3)); // replaces the first
    /// assert_eq!(err.detail::<Attempts>(), Some(&Attempts(3)));
    /// ```
    pub fn with_detail<T: ErrorDetail>(mut self, detail: T) -> Self {
        let details = &mut self.inner_mut().details;
        details.retain(|d| !d.as_any().is::<T>());
        details.push(Box::new(detail));
        self
    }

    /// Adds the underlying cause.
    ///
    /// ```
    /// use std::error::Error as _;
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let cause = std::io::Error::other("connection refused");
    /// let err = TokenError::new(TokenErrorKind::Transport, "the token request failed")
    ///     .with_source(cause);
    /// assert_eq!(err.source().unwrap().to_string(), "connection refused");
    /// ```
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.inner_mut().source = Some(Arc::from(source.into()));
        self
    }

    /// Rewrites the message (to add what a caller knows: the attempts made, the time spent).
    #[cfg_attr(not(feature = "oauth"), allow(dead_code))]
    pub(crate) fn map_message(mut self, f: impl FnOnce(&str) -> String) -> Self {
        let inner = self.inner_mut();
        inner.message = Cow::Owned(f(&inner.message));
        self
    }

    /// What went wrong.
    ///
    /// ```
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::NotPermitted, "the API is not granted");
    /// assert_eq!(err.kind(), TokenErrorKind::NotPermitted);
    /// assert!(!err.kind().is_transient());
    /// ```
    pub fn kind(&self) -> TokenErrorKind {
        self.inner.kind
    }

    /// What happened, in words.
    ///
    /// ```
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::Other, "the key file is empty").with_hint("write a key");
    /// assert_eq!(err.message(), "the key file is empty"); // without kind, code or hint
    /// ```
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// What to check or change, if known.
    ///
    /// ```
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::configuration("no token URL", "set `token_url`");
    /// assert_eq!(err.hint(), Some("set `token_url`"));
    /// assert_eq!(TokenError::new(TokenErrorKind::Timeout, "no answer").hint(), None);
    /// ```
    pub fn hint(&self) -> Option<&str> {
        self.inner.hint.as_deref()
    }

    /// The source's own error code, if it gave one (for OAuth, the token endpoint's `error`,
    /// e.g. `invalid_scope`, or Apigee's `ErrorCode`).
    ///
    /// ```
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::CredentialsRejected, "refused")
    ///     .with_code("invalid_client");
    /// assert_eq!(err.code(), Some("invalid_client"));
    /// assert_eq!(TokenError::new(TokenErrorKind::Transport, "lost").code(), None);
    /// ```
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// The HTTP status of the source's answer, if there was one.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::CredentialsRejected, "refused")
    ///     .with_status(StatusCode::UNAUTHORIZED);
    /// assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    /// assert_eq!(TokenError::new(TokenErrorKind::Transport, "lost").status(), None);
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// How long the source asked us to wait, if it did.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::RateLimited, "slow down")
    ///     .with_retry_after(Duration::from_secs(5));
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    /// assert_eq!(TokenError::new(TokenErrorKind::Unavailable, "down").retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The references for a support request, as `(name, value)`, in the order they were added.
    ///
    /// ```
    /// use tower_bearer::{TokenError, TokenErrorKind};
    ///
    /// let err = TokenError::new(TokenErrorKind::Unavailable, "the token endpoint failed")
    ///     .with_support_ref("trace_id", "5d1c")
    ///     .with_support_ref("timestamp", "2026-12-02 05:30:00Z");
    /// let refs: Vec<_> = err.support_refs().collect();
    /// assert_eq!(refs, [("trace_id", "5d1c"), ("timestamp", "2026-12-02 05:30:00Z")]);
    /// ```
    pub fn support_refs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.inner
            .support_refs
            .iter()
            .map(|(name, value)| (&**name, &**value))
    }

    /// The detail of type `T`, if the source attached one.
    ///
    /// ```
    /// use tower_bearer::error::{ErrorDetail, TokenError, TokenErrorKind};
    ///
    /// #[derive(Clone, Debug)]
    /// struct Region(String);
    ///
    /// impl ErrorDetail for Region {
    ///     fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
    ///         f(&mut self.0);
    ///     }
    /// }
    ///
    /// let plain = TokenError::new(TokenErrorKind::Unavailable, "down");
    /// assert!(plain.detail::<Region>().is_none());
    /// let err = plain.with_detail(Region("eu-west-1".into()));
    /// assert_eq!(err.detail::<Region>().unwrap().0, "eu-west-1");
    /// ```
    pub fn detail<T: ErrorDetail>(&self) -> Option<&T> {
        self.inner
            .details
            .iter()
            .find_map(|d| d.as_any().downcast_ref::<T>())
    }

    /// Rewrites every piece of text the error holds with `scrub` (`Some` for a changed text):
    /// message, hint, code, support references and every detail's strings. The source, an
    /// error of another type, is kept as it is. The OAuth client redacts echoed secrets with it.
    #[cfg_attr(not(feature = "oauth"), allow(dead_code))]
    pub(crate) fn scrub_text(mut self, scrub: &dyn Fn(&str) -> Option<String>) -> Self {
        let scrub_cow = |s: &mut Cow<'static, str>| {
            if let Some(scrubbed) = scrub(s) {
                *s = Cow::Owned(scrubbed);
            }
        };
        let inner = self.inner_mut();
        scrub_cow(&mut inner.message);
        for text in [&mut inner.hint, &mut inner.code].into_iter().flatten() {
            scrub_cow(text);
        }
        for (name, value) in &mut inner.support_refs {
            scrub_cow(name);
            scrub_cow(value);
        }
        for detail in &mut inner.details {
            detail.for_each_text_mut(&mut |s: &mut String| {
                if let Some(scrubbed) = scrub(s) {
                    *s = scrubbed;
                }
            });
        }
        self
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token error ({}", self.inner.kind)?;
        if let Some(code) = &self.inner.code {
            write!(f, ": {code}")?;
        }
        if let Some(status) = self.inner.status {
            write!(f, ", HTTP {}", status.as_u16())?;
        }
        write!(f, "): {}", self.inner.message)?;
        for (i, (name, value)) in self.inner.support_refs.iter().enumerate() {
            f.write_str(if i == 0 { " [" } else { ", " })?;
            write!(f, "{name}={value}")?;
        }
        if !self.inner.support_refs.is_empty() {
            f.write_str("]")?;
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
            .field("code", &self.inner.code)
            .field("status", &self.inner.status)
            .field("retry_after", &self.inner.retry_after)
            .field("support_refs", &self.inner.support_refs)
            .field("details", &self.inner.details)
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
///
/// ```
/// use tower::{BoxError, Layer, ServiceExt};
/// use tower_bearer::error::DestinationErrorKind;
/// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let api = tower::service_fn(|_: http::Request<()>| async {
/// #     Ok::<_, BoxError>(http::Response::new(()))
/// # });
/// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
///     .allowed_hosts(["api.partner.example"]).unwrap()
///     .layer(api);
/// let request = http::Request::get("https://other.example/").body(()).unwrap();
/// let err = client.oneshot(request).await.unwrap_err();
/// let kind = err.destination_error().map(|e| e.kind());
/// assert_eq!(kind, Some(DestinationErrorKind::HostNotAllowed));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DestinationErrorKind {
    /// Plain `http://` to a host that is not loopback.
    InsecureScheme,
    /// A host (or port, or scheme) that is not in the layer's allow-list, not the origin
    /// named with [`origin`](crate::BearerTokenLayer::origin), or without a
    /// [`route`](crate::RoutedBearerTokenLayer::route).
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
    ///
    /// ```
    /// use tower_bearer::error::DestinationErrorKind;
    ///
    /// assert_eq!(DestinationErrorKind::InsecureScheme.as_str(), "insecure_scheme");
    /// assert_eq!(DestinationErrorKind::HostNotAllowed.to_string(), "host_not_allowed");
    /// ```
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
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::error::DestinationErrorKind;
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|_: http::Request<()>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// # });
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t"))).layer(api);
    /// let request = http::Request::get("http://api.partner.example/").body(()).unwrap();
    /// let err = client.oneshot(request).await.unwrap_err();
    /// let refused = err.destination_error().unwrap();
    /// assert_eq!(refused.kind(), DestinationErrorKind::InsecureScheme);
    /// # }
    /// ```
    pub fn kind(&self) -> DestinationErrorKind {
        self.kind
    }

    /// The host the request was for (for a cross-origin redirect, the origin it was sent to,
    /// as `scheme://host:port`).
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|_: http::Request<()>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// # });
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t"))).layer(api);
    /// let request = http::Request::get("http://api.partner.example/v1").body(()).unwrap();
    /// let err = client.oneshot(request).await.unwrap_err();
    /// assert_eq!(err.destination_error().unwrap().host(), "api.partner.example");
    /// # }
    /// ```
    pub fn host(&self) -> &str {
        &self.host
    }

    /// For a cross-origin redirect: the status of the redirect.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|_: http::Request<()>| async {
    /// #     let redirect = http::Response::builder().status(307)
    /// #         .header("location", "https://files.example/report?sig=x").body(()).unwrap();
    /// #     Ok::<_, std::convert::Infallible>(redirect)
    /// # });
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t"))).layer(api);
    /// let request = http::Request::get("https://api.partner.example/report").body(()).unwrap();
    /// let err = client.oneshot(request).await.unwrap_err();
    /// let refused = err.destination_error().unwrap();
    /// assert_eq!(refused.redirect_status(), Some(http::StatusCode::TEMPORARY_REDIRECT));
    /// # }
    /// ```
    pub fn redirect_status(&self) -> Option<StatusCode> {
        self.redirect.as_ref().map(|r| r.status)
    }

    /// For a cross-origin redirect: the origin it pointed to (`scheme://host:port`), if the
    /// `Location` named one.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|_: http::Request<()>| async {
    /// #     let redirect = http::Response::builder().status(307)
    /// #         .header("location", "https://files.example/report?sig=x").body(()).unwrap();
    /// #     Ok::<_, std::convert::Infallible>(redirect)
    /// # });
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t"))).layer(api);
    /// let request = http::Request::get("https://api.partner.example/report").body(()).unwrap();
    /// let err = client.oneshot(request).await.unwrap_err();
    /// let refused = err.destination_error().unwrap();
    /// assert_eq!(refused.redirect_origin(), Some("https://files.example:443"));
    /// # }
    /// ```
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
                 not in the layer's `allowed_hosts`, is not its `origin` or has no `route`; add \
                 it there (with its port if not the default, e.g. `api.example.com:8443`), or choose \
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
    ///
    /// ```
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// let err = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
    ///     .allowed_hosts(["api.example.com:99999"])
    ///     .unwrap_err();
    /// assert_eq!(err.reason(), "the port is not a number from 1 to 65535 or `*`");
    /// ```
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
///
/// Its message says it all (for a token error: what was asked of whom, the cause in words
/// and a hint), and its [`source`](StdError::source) chain says each thing once:
///
/// - [`Token`](Self::Token): the message is the token error's; the chain goes on with that
///   error's cause (a transport's error, say reqwest's, then hyper's, then the OS's);
///   [`token_error`](Self::token_error) gives the [`TokenError`] itself;
/// - [`Destination`](Self::Destination): the message is the whole story; no source;
///   [`destination_error`](Self::destination_error) gives the [`DestinationError`];
/// - [`Service`](Self::Service): `source()` is the inner service's error when Rust can see it
///   as one: a `BoxError` (`Box<dyn Error + Send + Sync>`, the error of tower's `Buffer`,
///   `Timeout` and most stacks), a `Box<dyn Error + Send>`, a `Box<dyn Error>`, a
///   `std::io::Error` or (feature `reqwest`) a `reqwest::Error`. Other types (the `Error` impl is bounded on `Debug + Display` so that
///   `Error<BoxError>` is an error too) are shown in the message only: map the inner error
///   into a `BoxError` (`MapErrLayer::new(BoxError::from)` under this layer) to chain it, or
///   match `Service(e)`.
///
/// The token and destination errors are parts of this error, not links of its chain: to find
/// them behind tower's layers, downcast the `BoxError` to `Error<E>` (`E`: the inner service's
/// error, or `BoxError`) and ask [`token_error`](Self::token_error) or
/// [`destination_error`](Self::destination_error).
///
/// ```
/// use std::error::Error as _;
/// use tower_bearer::Error;
///
/// type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// let inner: BoxError = std::io::Error::other("connection reset").into();
/// let err: Error<BoxError> = Error::Service(inner);
/// assert_eq!(err.to_string(), "inner service failed: connection reset");
/// assert_eq!(err.source().unwrap().to_string(), "connection reset");
/// ```
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
    ///
    /// ```
    /// use tower_bearer::Error;
    ///
    /// let err: Error<std::io::Error> = Error::Service(std::io::Error::other("connection reset"));
    /// let inner = err.into_service_error().unwrap();
    /// assert_eq!(inner.to_string(), "connection reset");
    /// ```
    pub fn into_service_error(self) -> Option<E> {
        match self {
            Self::Service(e) => Some(e),
            _ => None,
        }
    }

    /// The token error, if that is what this is.
    ///
    /// ```
    /// use tower_bearer::{Error, TokenError, TokenErrorKind};
    ///
    /// let token = TokenError::new(TokenErrorKind::Timeout, "no token within 10 s");
    /// let err: Error<std::io::Error> = Error::Token(token);
    /// assert_eq!(err.token_error().unwrap().kind(), TokenErrorKind::Timeout);
    /// assert!(err.to_string().starts_with("request not sent: token error (timeout)"));
    /// ```
    pub fn token_error(&self) -> Option<&TokenError> {
        match self {
            Self::Token(e) => Some(e),
            _ => None,
        }
    }

    /// The refused destination, if that is what this is.
    ///
    /// ```
    /// use tower::{BoxError, Layer, ServiceExt};
    /// use tower_bearer::error::DestinationErrorKind;
    /// use tower_bearer::{BearerTokenLayer, Error, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t"))).layer(
    ///     tower::service_fn(|_: http::Request<()>| async {
    ///         Ok::<_, BoxError>(http::Response::new(()))
    ///     }),
    /// );
    /// let err = client
    ///     .oneshot(http::Request::get("http://api.example/").body(()).unwrap())
    ///     .await
    ///     .unwrap_err();
    /// // Behind tower's layers (a `BoxError`), downcast to the layer's error first.
    /// let boxed: BoxError = err.into();
    /// let ours = boxed.downcast_ref::<Error<BoxError>>().unwrap();
    /// let refused = ours.destination_error().unwrap();
    /// assert_eq!(refused.kind(), DestinationErrorKind::InsecureScheme);
    /// # }
    /// ```
    pub fn destination_error(&self) -> Option<&DestinationError> {
        match self {
            Self::Destination(e) => Some(e),
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
// tower's `Buffer`, `Timeout`, ...) is an error too: `Box<dyn Error>` is not an `Error`, and
// no second impl can cover it beside one for `E: Error` (coherence). The inner error is
// reached through `Any` for the types that can be seen as errors.
impl<E: fmt::Debug + fmt::Display + 'static> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            // The message holds the token error's whole text: the chain goes on with its
            // cause, so that no link says the same again.
            Self::Token(e) => e.source(),
            Self::Destination(_) => None,
            Self::Service(e) => as_std_error(e),
        }
    }
}

/// `e` as an error, for the types that are one behind a type parameter bounded on
/// `Debug + Display` only.
fn as_std_error(e: &dyn Any) -> Option<&(dyn StdError + 'static)> {
    if let Some(e) = e.downcast_ref::<Box<dyn StdError + Send + Sync>>() {
        return Some(&**e);
    }
    if let Some(e) = e.downcast_ref::<Box<dyn StdError + Send>>() {
        return Some(&**e);
    }
    if let Some(e) = e.downcast_ref::<Box<dyn StdError>>() {
        return Some(&**e);
    }
    if let Some(e) = e.downcast_ref::<std::io::Error>() {
        return Some(e);
    }
    #[cfg(feature = "reqwest")]
    if let Some(e) = e.downcast_ref::<reqwest::Error>() {
        return Some(e);
    }
    None
}

/// What a redacted secret is replaced with (the OAuth client's redaction writes it; a cut never
/// splits it).
pub(crate) const REDACTED: &str = "[redacted]";

/// The most characters [`sanitize`] keeps: enough for a host, a code or a type name.
pub(crate) const SHORT_TEXT: usize = 64;

/// Makes text someone else wrote (a server's answer, a host name, a setting) safe to put in an
/// error message or a log line, and short: at most [`SHORT_TEXT`] characters. The rules are
/// those of [`sanitize_with`].
pub(crate) fn sanitize(s: &str) -> String {
    sanitize_with(s, SHORT_TEXT, |cut| cut)
}

/// The one set of rules for text someone else wrote, in every message of the crate:
///
/// - every character that is not visible ASCII or a space becomes `?`: control characters (a
///   newline could forge a log line, an escape sequence rewrite a terminal) and anything
///   non-ASCII (bidirectional controls and look-alikes can hide or reorder text);
/// - at most `max` characters are kept; a longer text is cut, and ends in `…`; the cut never
///   splits a [`REDACTED`] marker (half of one reads like the start of a secret);
/// - `after_cut` sees the cut text before the `…` is added (the OAuth client redacts again
///   there: a secret's start may be left where the text was cut).
pub(crate) fn sanitize_with(
    s: &str,
    max: usize,
    after_cut: impl FnOnce(String) -> String,
) -> String {
    let mut end = s.char_indices().nth(max).map_or(s.len(), |(at, _)| at);
    if let Some(marker) = (end.saturating_sub(REDACTED.len() - 1)..end)
        .find(|&at| s.get(at..).is_some_and(|rest| rest.starts_with(REDACTED)))
    {
        end = marker + REDACTED.len();
    }
    // Redacted before the characters are replaced: a secret's fragment holding a non-ASCII
    // character must still match.
    let mut out: String = after_cut(s[..end].to_owned())
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if end < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_code_status_refs_and_hint() {
        let err = TokenError::new(TokenErrorKind::NotPermitted, "the scope is not granted")
            .with_code("invalid_scope")
            .with_status(StatusCode::BAD_REQUEST)
            .with_support_ref("trace_id", "t-1")
            .with_support_ref("correlation_id", "c-1")
            .with_hint("check the scope");
        assert_eq!(
            err.to_string(),
            "token error (not_permitted: invalid_scope, HTTP 400): the scope is not granted \
             [trace_id=t-1, correlation_id=c-1]; hint: check the scope"
        );
        let err = TokenError::configuration("no client id", "set one");
        assert_eq!(
            err.to_string(),
            "token error (configuration): no client id; hint: set one"
        );
    }

    #[test]
    fn transient_kinds_are_the_ones_worth_asking_again() {
        use TokenErrorKind::*;
        for kind in [RateLimited, Unavailable, Timeout, Transport] {
            assert!(kind.is_transient(), "{kind}");
        }
        for kind in [
            CredentialsRejected,
            NotPermitted,
            MalformedAnswer,
            Configuration,
            Other,
        ] {
            assert!(!kind.is_transient(), "{kind}");
        }
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Echo {
        said: String,
        also: Option<String>,
    }

    impl ErrorDetail for Echo {
        fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
            f(&mut self.said);
            if let Some(also) = &mut self.also {
                f(also);
            }
        }
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Count(u32);

    impl ErrorDetail for Count {
        fn for_each_text_mut(&mut self, _: &mut dyn FnMut(&mut String)) {}
    }

    #[test]
    fn details_are_found_by_type_and_replaced_by_type() {
        let err = TokenError::new(TokenErrorKind::Other, "x")
            .with_detail(Count(1))
            .with_detail(Echo {
                said: "a".into(),
                also: None,
            })
            .with_detail(Count(2));
        assert_eq!(err.detail::<Count>(), Some(&Count(2)));
        assert_eq!(err.detail::<Echo>().unwrap().said, "a");
        assert_eq!(err.detail::<Echo>().unwrap().also, None);
        let without = TokenError::new(TokenErrorKind::Other, "x");
        assert_eq!(without.detail::<Count>(), None);
        assert!(format!("{err:?}").contains("Count(2)"));
    }

    #[test]
    fn scrubbing_reaches_every_text_and_every_detail() {
        let secret = "s3cr3t";
        let err = TokenError::new(TokenErrorKind::CredentialsRejected, "said s3cr3t")
            .with_hint("hint s3cr3t")
            .with_code("code-s3cr3t")
            .with_support_ref("trace_id", "s3cr3t-1")
            .with_detail(Echo {
                said: "echo s3cr3t".into(),
                also: Some("s3cr3t".into()),
            });
        let shared = err.clone();
        let err = err.scrub_text(&|s| s.contains(secret).then(|| s.replace(secret, REDACTED)));
        let shown = format!("{err} {err:?} {err:#?}");
        assert!(!shown.contains(secret), "{shown}");
        assert_eq!(err.code(), Some("code-[redacted]"));
        assert_eq!(
            err.detail::<Echo>(),
            Some(&Echo {
                said: "echo [redacted]".into(),
                also: Some(REDACTED.into()),
            })
        );
        // A clone made before is its own error.
        assert_eq!(shared.code(), Some("code-s3cr3t"));
    }

    #[test]
    fn sanitize_keeps_visible_ascii_only_and_cuts_with_a_mark() {
        assert_eq!(sanitize("api.example.com"), "api.example.com");
        assert_eq!(sanitize("a\r\nb\u{1b}[31m\u{202e}é c"), "a??b?[31m?? c");
        let long = "x".repeat(100);
        assert_eq!(sanitize(&long), format!("{}…", "x".repeat(SHORT_TEXT)));
        assert_eq!(sanitize(&"x".repeat(SHORT_TEXT)), "x".repeat(SHORT_TEXT));
        // The cut keeps a marker whole and lets the caller look at the cut text first.
        for at in 1..REDACTED.len() {
            let text = format!("{}{REDACTED}tail", "y".repeat(20 - at));
            let cut = sanitize_with(&text, 20, |s| s);
            assert!(cut.ends_with("y[redacted]…"), "{at}: {cut}");
        }
        assert_eq!(sanitize_with("abcdef", 3, |s| s.to_uppercase()), "ABC…");
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
    fn service_error_is_kept_shown_and_the_source() {
        let err: Error<std::io::Error> = Error::Service(std::io::Error::other("boom"));
        assert_eq!(err.to_string(), "inner service failed: boom");
        let source = err.source().expect("an io::Error is the source");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        assert!(err.into_service_error().is_some());
        // tower's own layers fail with `BoxError`; wrapping it still makes an error, whose
        // source is the boxed error itself.
        let boxed: Box<dyn StdError + Send + Sync> = std::io::Error::other("inner").into();
        let err: Box<dyn StdError + Send + Sync> = Error::Service(boxed).into();
        assert_eq!(err.to_string(), "inner service failed: inner");
        let source = err.source().expect("a BoxError is the source");
        assert_eq!(source.to_string(), "inner");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        // A type Rust cannot see as an error behind `Debug + Display`: shown, not chained.
        let err: Error<String> = Error::Service("plain text".to_owned());
        assert_eq!(err.to_string(), "inner service failed: plain text");
        assert!(err.source().is_none());
    }

    #[test]
    fn a_token_errors_chain_goes_on_with_its_cause_not_itself() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused here");
        let token = TokenError::new(TokenErrorKind::Transport, "the token request failed")
            .with_source(cause);
        let err: Error<std::io::Error> = Error::Token(token.clone());
        assert_eq!(err.to_string(), format!("request not sent: {token}"));
        let next = err.source().expect("the token error's cause");
        assert_eq!(next.to_string(), "refused here");
        assert!(next.source().is_none());
        // A destination error says it all.
        let err: Error<std::io::Error> = Error::Destination(DestinationError::new(
            DestinationErrorKind::InsecureScheme,
            "api.example.com",
        ));
        assert!(err.source().is_none());
    }
}
