//! [`Token`]: what a [`TokenSource`](crate::TokenSource) hands out.
//!
//! Its secrets are [`SecretString`]s, read with [`ExposeSecret`]: both are re-exported here,
//! so reading a token's value needs no direct `secrecy` dependency.
//!
//! ```
//! use tower_bearer::Token;
//! use tower_bearer::token::ExposeSecret;
//!
//! let token = Token::new("eyJhbGciOi...");
//! // Deliberately, and never into a log.
//! let value: &str = token.access_token().expose_secret();
//! assert_eq!(value, "eyJhbGciOi...");
//! ```

use std::fmt;
use std::time::Duration;

use http::HeaderValue;
/// The secret wrapper of a token's values, and the trait that reads one (from `secrecy`).
pub use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::error::{TokenError, TokenErrorKind};

/// The longest lifetime a token is given, whatever the server says.
///
/// A huge `expires_in` (or one that would overflow the clock) is clamped to this, so a token is
/// always refreshed eventually and deadline arithmetic can never overflow.
pub const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// An OAuth 2.0 access token and what came with it.
///
/// The access token, refresh token and id token are held as secrets: they are zeroized on drop
/// and never shown by `Debug`, which prints a short [`Fingerprint`] instead. The expiry is a
/// monotonic deadline ([`tokio::time::Instant`]) computed when the token was received, so it is
/// immune to wall-clock jumps and follows Tokio's paused clock in tests.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::Token;
///
/// let token = Token::new("eyJhbGciOi...")
///     .with_expires_in(Duration::from_secs(3600))
///     .with_scope("api://partner/.default");
/// assert_eq!(token.token_type(), "Bearer");
/// assert!(!format!("{token:?}").contains("eyJhbGciOi"));
/// ```
#[derive(Clone)]
pub struct Token {
    access_token: SecretString,
    token_type: String,
    received_at: Instant,
    expires_at: Option<Instant>,
    scope: Option<String>,
    refresh_token: Option<SecretString>,
    id_token: Option<SecretString>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Token {
    /// A `Bearer` token received now, with no expiry until one is set.
    ///
    /// ```
    /// use tower_bearer::Token;
    ///
    /// let token = Token::new("opaque-token");
    /// assert!(token.is_bearer());
    /// assert_eq!(token.expires_at(), None);
    /// ```
    pub fn new(access_token: impl Into<String>) -> Self {
        Self {
            access_token: secret_from(access_token.into()),
            token_type: "Bearer".to_owned(),
            received_at: Instant::now(),
            expires_at: None,
            scope: None,
            refresh_token: None,
            id_token: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Sets the expiry to `lifetime` after the moment the token was received.
    ///
    /// Lifetimes above [`MAX_LIFETIME`] are clamped to it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::Token;
    ///
    /// let token = Token::new("t").with_expires_in(Duration::from_secs(3600));
    /// assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
    /// ```
    pub fn with_expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_at = Some(self.received_at + lifetime.min(MAX_LIFETIME));
        self
    }

    /// Sets the expiry deadline directly.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tower_bearer::Token;
    ///
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// let token = Token::new("t").with_expires_at(deadline);
    /// assert_eq!(token.expires_at(), Some(deadline));
    /// ```
    pub fn with_expires_at(mut self, deadline: Instant) -> Self {
        self.expires_at = Some(deadline);
        self
    }

    /// Sets when the token was received (defaults to when [`Token::new`] ran).
    ///
    /// An expiry already set with [`with_expires_in`](Self::with_expires_in) moves with it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tower_bearer::Token;
    ///
    /// let earlier = Instant::now() - Duration::from_secs(30);
    /// let token = Token::new("t")
    ///     .with_expires_in(Duration::from_secs(60))
    ///     .with_received_at(earlier);
    /// assert_eq!(token.expires_at(), Some(earlier + Duration::from_secs(60)));
    /// ```
    pub fn with_received_at(mut self, received_at: Instant) -> Self {
        if let Some(expires_at) = self.expires_at {
            let lifetime = expires_at.saturating_duration_since(self.received_at);
            self.expires_at = Some(received_at + lifetime);
        }
        self.received_at = received_at;
        self
    }

    /// Sets the token type as the server named it (`Bearer` by default).
    ///
    /// ```
    /// use tower_bearer::Token;
    ///
    /// let token = Token::new("t").with_token_type("DPoP");
    /// assert_eq!(token.token_type(), "DPoP");
    /// assert!(token.header_value().is_err(), "only Bearer tokens are sent");
    /// ```
    pub fn with_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.token_type = token_type.into();
        self
    }

    /// Sets the granted scope (space-separated, as in RFC 6749 §3.3).
    ///
    /// ```
    /// use tower_bearer::Token;
    ///
    /// let token = Token::new("t").with_scope("read write");
    /// assert_eq!(token.scope(), Some("read write"));
    /// ```
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Keeps a refresh token that came with the access token.
    ///
    /// ```
    /// use tower_bearer::Token;
    /// use tower_bearer::token::ExposeSecret;
    ///
    /// let token = Token::new("t").with_refresh_token("r-123");
    /// assert_eq!(token.refresh_token().unwrap().expose_secret(), "r-123");
    /// ```
    pub fn with_refresh_token(mut self, refresh_token: impl Into<String>) -> Self {
        self.refresh_token = Some(secret_from(refresh_token.into()));
        self
    }

    /// Keeps an OpenID Connect id token that came with the access token.
    ///
    /// ```
    /// use tower_bearer::Token;
    /// use tower_bearer::token::ExposeSecret;
    ///
    /// let token = Token::new("t").with_id_token("eyJpZCI6...");
    /// assert_eq!(token.id_token().unwrap().expose_secret(), "eyJpZCI6...");
    /// ```
    pub fn with_id_token(mut self, id_token: impl Into<String>) -> Self {
        self.id_token = Some(secret_from(id_token.into()));
        self
    }

    /// Keeps another field of the token response.
    ///
    /// `Debug` shows the names of extra fields, never their values.
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_bearer::Token;
    ///
    /// let token = Token::new("t").with_extra("ext_expires_in", json!(7200));
    /// assert_eq!(token.extra()["ext_expires_in"], 7200);
    /// assert!(format!("{token:?}").contains("ext_expires_in"));
    /// ```
    pub fn with_extra(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// The access token. Handle with care: never log it. Read it with [`ExposeSecret`].
    ///
    /// ```
    /// use tower_bearer::Token;
    /// use tower_bearer::token::ExposeSecret;
    ///
    /// let token = Token::new("opaque-token");
    /// assert_eq!(token.access_token().expose_secret(), "opaque-token");
    /// // `Debug` hides it.
    /// assert_eq!(format!("{:?}", token.access_token()), "SecretBox<str>([REDACTED])");
    /// ```
    pub fn access_token(&self) -> &SecretString {
        &self.access_token
    }

    /// The token type, as the server named it.
    ///
    /// ```
    /// use tower_bearer::Token;
    ///
    /// assert_eq!(Token::new("t").token_type(), "Bearer");
    /// ```
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// Whether the token type is `Bearer`, compared case-insensitively (RFC 6749 §5.1).
    ///
    /// ```
    /// use tower_bearer::Token;
    ///
    /// assert!(Token::new("t").with_token_type("bearer").is_bearer());
    /// assert!(!Token::new("t").with_token_type("N_A").is_bearer());
    /// ```
    pub fn is_bearer(&self) -> bool {
        self.token_type.eq_ignore_ascii_case("bearer")
    }

    /// When the token was received.
    ///
    /// ```
    /// use tokio::time::Instant;
    /// use tower_bearer::Token;
    ///
    /// let before = Instant::now();
    /// let token = Token::new("t");
    /// assert!(token.received_at() >= before);
    /// ```
    pub fn received_at(&self) -> Instant {
        self.received_at
    }

    /// When the token expires, if it expires.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::Token;
    ///
    /// let token = Token::new("t").with_expires_in(Duration::from_secs(60));
    /// assert_eq!(token.expires_at(), Some(token.received_at() + Duration::from_secs(60)));
    /// assert_eq!(Token::new("t").expires_at(), None);
    /// ```
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// How long the token was valid for when it was received.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::Token;
    /// use tower_bearer::token::MAX_LIFETIME;
    ///
    /// let token = Token::new("t").with_expires_in(Duration::MAX);
    /// assert_eq!(token.lifetime(), Some(MAX_LIFETIME), "clamped");
    /// ```
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires_at
            .map(|at| at.saturating_duration_since(self.received_at))
    }

    /// Whether the token has expired at `now`. A token without expiry never does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::Token;
    ///
    /// let token = Token::new("t").with_expires_in(Duration::from_secs(60));
    /// let start = token.received_at();
    /// assert!(!token.is_expired_at(start + Duration::from_secs(59)));
    /// assert!(token.is_expired_at(start + Duration::from_secs(60)));
    /// ```
    pub fn is_expired_at(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The granted scope, if the server named one.
    ///
    /// ```
    /// use tower_bearer::Token;
    ///
    /// assert_eq!(Token::new("t").scope(), None);
    /// assert_eq!(Token::new("t").with_scope("read").scope(), Some("read"));
    /// ```
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The refresh token, if one came with the access token.
    ///
    /// ```
    /// use tower_bearer::Token;
    ///
    /// assert!(Token::new("t").refresh_token().is_none());
    /// assert!(Token::new("t").with_refresh_token("r").refresh_token().is_some());
    /// ```
    pub fn refresh_token(&self) -> Option<&SecretString> {
        self.refresh_token.as_ref()
    }

    /// The id token, if one came with the access token.
    ///
    /// ```
    /// use tower_bearer::Token;
    ///
    /// assert!(Token::new("t").id_token().is_none());
    /// assert!(Token::new("t").with_id_token("i").id_token().is_some());
    /// ```
    pub fn id_token(&self) -> Option<&SecretString> {
        self.id_token.as_ref()
    }

    /// Other fields of the token response.
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_bearer::Token;
    ///
    /// let token = Token::new("t").with_extra("tenant", json!("contoso"));
    /// assert_eq!(token.extra().get("tenant"), Some(&json!("contoso")));
    /// ```
    pub fn extra(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.extra
    }

    /// A short fingerprint of the access token, safe to log.
    ///
    /// ```
    /// use tower_bearer::Token;
    /// use tower_bearer::token::Fingerprint;
    ///
    /// let token = Token::new("secret");
    /// assert_eq!(token.fingerprint(), Fingerprint::of("secret"));
    /// assert_eq!(token.fingerprint().to_string(), "sha256:2bb80d53");
    /// ```
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.access_token.expose_secret())
    }

    /// The `Authorization: Bearer <token>` header value, marked sensitive.
    ///
    /// Fails with [`TokenErrorKind::MalformedAnswer`] if the token type is not `Bearer`, or if the
    /// access token is empty or holds anything but visible ASCII (a CR/LF or other control
    /// byte would otherwise end up in a request header).
    ///
    /// ```
    /// use tower_bearer::Token;
    ///
    /// let value = Token::new("abc.def").header_value().unwrap();
    /// assert!(value.is_sensitive());
    /// assert!(Token::new("abc\r\nX-Evil: 1").header_value().is_err());
    /// ```
    pub fn header_value(&self) -> Result<HeaderValue, TokenError> {
        self.check_header_value()?;
        let secret = self.access_token.expose_secret();
        let mut value = String::with_capacity(7 + secret.len());
        value.push_str("Bearer ");
        value.push_str(secret);
        // The buffer moves into the header value, which cannot be wiped (it is marked
        // sensitive).
        let mut header = HeaderValue::try_from(value).map_err(|_| {
            TokenError::new(
                TokenErrorKind::MalformedAnswer,
                "the access token is not a valid header value",
            )
        })?;
        header.set_sensitive(true);
        Ok(header)
    }

    /// What [`header_value`](Self::header_value) checks, without making a copy of the token.
    pub(crate) fn check_header_value(&self) -> Result<(), TokenError> {
        if !self.is_bearer() {
            return Err(TokenError::new(
                TokenErrorKind::MalformedAnswer,
                format!(
                    "token type `{}` is not supported; only Bearer tokens can be sent",
                    crate::error::sanitize(&self.token_type)
                ),
            ));
        }
        let secret = self.access_token.expose_secret();
        if secret.is_empty() {
            return Err(TokenError::new(
                TokenErrorKind::MalformedAnswer,
                "the access token is empty",
            ));
        }
        if let Some(at) = secret.bytes().position(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(TokenError::new(
                TokenErrorKind::MalformedAnswer,
                format!(
                    "the access token (fingerprint {}) holds a byte that cannot be sent in a header \
                     (control character, space or non-ASCII) at offset {at}",
                    self.fingerprint()
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.fingerprint())
            .field("token_type", &self.token_type)
            .field("lifetime", &self.lifetime())
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A short, non-reversible fingerprint of a secret: the first 4 bytes of its SHA-256, in hex.
///
/// Enough to tell two tokens apart in logs and support requests; far too short to guess or
/// replay anything from.
///
/// ```
/// use tower_bearer::token::Fingerprint;
///
/// let fp = Fingerprint::of("secret");
/// assert_eq!(fp.to_string(), "sha256:2bb80d53");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 4]);

impl Fingerprint {
    /// The fingerprint of `secret`.
    ///
    /// ```
    /// use tower_bearer::token::Fingerprint;
    ///
    /// assert_eq!(Fingerprint::of("a"), Fingerprint::of("a"));
    /// assert_ne!(Fingerprint::of("a"), Fingerprint::of("b"));
    /// ```
    pub fn of(secret: &str) -> Self {
        let digest = Sha256::digest(secret.as_bytes());
        Self([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "sha256:{a:02x}{b:02x}{c:02x}{d:02x}")
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A [`SecretString`] made from `s` without leaving an unwiped copy behind: turning a `String`
/// with spare capacity into the `Box<str>` a `SecretString` holds reallocates, and the old
/// buffer would be freed as it is.
pub(crate) fn secret_from(mut s: String) -> SecretString {
    if s.len() == s.capacity() {
        SecretString::from(s)
    } else {
        let secret = SecretString::from(s.as_str());
        zeroize::Zeroize::zeroize(&mut s);
        secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_every_secret() {
        let token = Token::new("access-SECRET")
            .with_refresh_token("refresh-SECRET")
            .with_id_token("id-SECRET")
            .with_extra("custom", serde_json::json!("extra-SECRET"));
        let debug = format!("{token:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains(&token.fingerprint().to_string()));
        assert!(debug.contains("custom"));
    }

    #[test]
    fn header_value_rejects_what_cannot_be_a_header() {
        for bad in ["", "Zq9 x", "Zq9\r\nx", "Zq9\0x", "Zq9ökén", "Zq9\tx"] {
            let err = Token::new(bad).header_value().unwrap_err();
            assert_eq!(err.kind(), TokenErrorKind::MalformedAnswer, "{bad:?}");
            // The message never repeats the token.
            assert!(!err.to_string().contains("Zq9"), "{err}");
        }
        let err = Token::new("abc")
            .with_token_type("DPoP")
            .header_value()
            .unwrap_err();
        assert!(err.to_string().contains("DPoP"));
        let ok = Token::new("abc").with_token_type("bearer").header_value();
        assert_eq!(ok.unwrap(), "Bearer abc");
    }

    #[test]
    fn secrets_are_made_without_an_unwiped_reallocation() {
        // With spare capacity, `String` into `Box<str>` would reallocate; the copy is made
        // from a slice instead (and the original wiped), or the buffer is kept as it is.
        let mut spare = String::with_capacity(64);
        spare.push_str("access-SECRET");
        let secret = secret_from(spare);
        assert_eq!(secret.expose_secret(), "access-SECRET");
        let exact = String::from("refresh-SECRET");
        let at = exact.as_ptr();
        let secret = secret_from(exact);
        assert_eq!(secret.expose_secret().as_ptr(), at, "no copy");
    }

    #[test]
    fn huge_lifetimes_are_clamped() {
        let token = Token::new("t").with_expires_in(Duration::MAX);
        assert_eq!(token.lifetime(), Some(MAX_LIFETIME));
    }

    #[test]
    fn received_at_moves_the_expiry() {
        let start = Instant::now();
        let token = Token::new("t")
            .with_expires_in(Duration::from_secs(60))
            .with_received_at(start + Duration::from_secs(10));
        assert_eq!(token.expires_at(), Some(start + Duration::from_secs(70)));
        assert!(!token.is_expired_at(start + Duration::from_secs(69)));
        assert!(token.is_expired_at(start + Duration::from_secs(70)));
    }
}
