//! [`ClientCredentials`]: the OAuth 2.0 client-credentials flow as a [`TokenSource`], read top
//! to bottom: make the credentials, build the request, send it, parse the answer, retry what
//! is worth retrying.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::error::{TokenError, TokenErrorKind};
use crate::oauth::claims::ClaimsCheck;
use crate::oauth::client_auth::{ClientAuth, Credentials};
use crate::oauth::request::ClientCredentialsRequest;
use crate::oauth::response::parse_token_response_redacting;
use crate::oauth::transport::Transport;
use crate::source::TokenSource;
use crate::token::Token;

/// Default lifetime of a token whose answer has no `expires_in` (never "forever").
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Default time one attempt may take, connection to last byte.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);
/// Default number of attempts for transient failures (network errors, 5xx, 429).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// A `Retry-After` longer than this is not waited out within one fetch: the error goes to the
/// cache, which backs off for as long as the server asked.
pub const MAX_RETRY_AFTER_WITHIN_FETCH: Duration = Duration::from_secs(5);

/// The client-credentials flow (RFC 6749 §4.4) against any token endpoint.
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use tower_bearer::TokenSource;
/// use tower_bearer::oauth::{ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let http_client = tower::service_fn(|_req: Request<Full<Bytes>>| async {
/// #     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
/// #         br#"{"access_token":"eyJ...","token_type":"Bearer","expires_in":3599}"#))))
/// # });
/// let source = ClientCredentials::new(
///     ClientCredentialsRequest::new("https://login.example/tenant/oauth2/v2.0/token")
///         .unwrap()
///         .scope("api://partner/.default"),
///     ClientAuth::client_secret_post("client-id", "client-secret"),
///     ServiceTransport::new(http_client),
/// );
/// let token = source.token().await.unwrap();
/// assert_eq!(token.lifetime(), Some(std::time::Duration::from_secs(3599)));
/// # }
/// ```
pub struct ClientCredentials<T> {
    request: ClientCredentialsRequest,
    auth: ClientAuth,
    transport: T,
    default_lifetime: Duration,
    attempt_timeout: Duration,
    max_attempts: u32,
    claims: Option<ClaimsCheck>,
    label: Cow<'static, str>,
}

impl<T: Transport> ClientCredentials<T> {
    /// The flow: what to ask for, how to authenticate, how to send.
    pub fn new(request: ClientCredentialsRequest, auth: ClientAuth, transport: T) -> Self {
        Self {
            request,
            auth,
            transport,
            default_lifetime: DEFAULT_TOKEN_LIFETIME,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            claims: None,
            label: Cow::Borrowed("oauth2"),
        }
    }

    /// A name for this source in traces (the providers set theirs). Default: `oauth2`.
    pub fn label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = label.into();
        self
    }

    /// Checks each new token's claims before it is used; a token that fails is not used and
    /// the fetch fails with an error naming the claim. See [`ClaimsCheck`] (no signature check).
    pub fn check_claims(mut self, check: ClaimsCheck) -> Self {
        self.claims = Some(check);
        self
    }

    /// Lifetime of a token whose answer has no `expires_in`. Default:
    /// [`DEFAULT_TOKEN_LIFETIME`] (10 minutes).
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// Time one attempt may take. Default: [`DEFAULT_ATTEMPT_TIMEOUT`] (8 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Attempts for transient failures, at least 1. Default: [`DEFAULT_MAX_ATTEMPTS`] (3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The token request.
    pub fn request(&self) -> &ClientCredentialsRequest {
        &self.request
    }

    /// The client authentication.
    pub fn auth(&self) -> &ClientAuth {
        &self.auth
    }

    /// One attempt: make the credentials, build, send, parse.
    async fn attempt(&self) -> Result<Token, TokenError> {
        // Errors of this step are redacted by it.
        let credentials = self.auth.credentials(self.request.token_url()).await?;
        // The redactor finds the client secret, or this request's assertion, in what the
        // server echoes.
        self.send(&credentials)
            .await
            .map_err(|e| e.redact(credentials.redactor()))
    }

    async fn send(&self, credentials: &Credentials<'_>) -> Result<Token, TokenError> {
        let request = self.request.http_request(credentials)?;
        let response = tokio::time::timeout(self.attempt_timeout, self.transport.send(request))
            .await
            .map_err(|_| {
                TokenError::new(
                    TokenErrorKind::Timeout,
                    format!(
                        "the token endpoint did not answer within {:?}",
                        self.attempt_timeout
                    ),
                )
                .with_hint(
                    "check that the token endpoint is reachable, or raise the attempt timeout",
                )
            })??;
        let token = parse_token_response_redacting(
            response.status(),
            response.headers(),
            response.body(),
            Instant::now(),
            SystemTime::now(),
            self.default_lifetime,
            credentials.redactor(),
        );
        // The answer holds the token: wipe it, if no one else holds the buffer (the transport
        // or the HTTP client may still).
        if let Ok(mut body) = response.into_body().try_into_mut() {
            zeroize::Zeroize::zeroize(&mut body[..]);
        }
        let token = token?;
        if let Some(check) = &self.claims {
            check.check(token.access_token().expose_secret(), SystemTime::now())?;
        }
        Ok(token)
    }
}

impl<T: Transport> TokenSource for ClientCredentials<T> {
    async fn token(&self) -> Result<Token, TokenError> {
        let span = tracing::info_span!(
            "token_request",
            provider = %self.label,
            token_url = %self.request.token_url(),
            client_id = %self.auth.client_id(),
            auth = self.auth.method(),
            scope = %self.request.requested_scopes().join(" "),
        );
        tracing::Instrument::instrument(self.token_with_retries(), span).await
    }
}

impl<T: Transport> ClientCredentials<T> {
    async fn token_with_retries(&self) -> Result<Token, TokenError> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let error = match self.attempt().await {
                Ok(token) => {
                    tracing::debug!(
                        token = %token.fingerprint(),
                        expires_in_s = token.lifetime().map(|l| l.as_secs()),
                        attempts = attempt,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "token issued"
                    );
                    return Ok(token);
                }
                Err(error) => error,
            };
            let wait = retry_wait(attempt, &error, fastrand::f64());
            match wait {
                Some(wait) if attempt < self.max_attempts => {
                    tracing::info!(
                        attempt,
                        kind = %error.kind(),
                        status = error.status().map(|s| s.as_u16()),
                        retry_in_ms = wait.as_millis() as u64,
                        "token request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => {
                    tracing::debug!(
                        attempts = attempt,
                        duration_ms = started.elapsed().as_millis() as u64,
                        %error,
                        "token request failed"
                    );
                    return Err(error);
                }
            }
        }
    }
}

/// How long to wait before attempt `attempt + 1`, or `None` if the error is not worth another
/// attempt now: client errors are final, and a long `Retry-After` is left to the cache.
fn retry_wait(attempt: u32, error: &TokenError, unit: f64) -> Option<Duration> {
    if !error.kind().is_transient() {
        return None;
    }
    // 250 ms doubling, at most 8 times.
    let first = Duration::from_millis(250);
    let jittered = crate::backoff::jittered_exponential(attempt, first, first * 256, unit);
    match error.retry_after() {
        Some(asked) if asked > MAX_RETRY_AFTER_WITHIN_FETCH => None,
        Some(asked) => Some(asked.max(jittered)),
        None => Some(jittered),
    }
}

impl<T> fmt::Debug for ClientCredentials<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("request", &self.request)
            .field("auth", &self.auth)
            .field("default_lifetime", &self.default_lifetime)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("claims", &self.claims)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_errors_are_retried() {
        let server = TokenError::new(TokenErrorKind::Unavailable, "x");
        assert!(retry_wait(1, &server, 1.0).is_some());
        let client = TokenError::new(TokenErrorKind::CredentialsRejected, "x");
        assert_eq!(retry_wait(1, &client, 1.0), None);
    }

    #[test]
    fn retry_waits_grow_and_honour_short_retry_after() {
        let e = TokenError::new(TokenErrorKind::Transport, "x");
        assert_eq!(retry_wait(1, &e, 1.0), Some(Duration::from_millis(250)));
        assert_eq!(retry_wait(2, &e, 1.0), Some(Duration::from_millis(500)));
        assert_eq!(retry_wait(2, &e, 0.0), Some(Duration::from_millis(250)));
        let short = TokenError::new(TokenErrorKind::RateLimited, "x")
            .with_retry_after(Duration::from_secs(2));
        assert_eq!(retry_wait(1, &short, 1.0), Some(Duration::from_secs(2)));
        let long = TokenError::new(TokenErrorKind::RateLimited, "x")
            .with_retry_after(Duration::from_secs(60));
        assert_eq!(retry_wait(1, &long, 1.0), None);
    }
}
