//! [`TokenSource`]: where tokens come from, and the small sources every user needs.
//!
//! Modelled on Go's `x/oauth2`: one method, and wrappers that compose. A provider flow (issue:
//! client credentials) is a `TokenSource`; [`TokenCache`](crate::TokenCache) wraps any source
//! and is one too.
//!
//! ```
//! use tower_bearer::{token_source_fn, Token, TokenCache, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let source = token_source_fn(|| async { Ok(Token::new("from-my-vault")) });
//! // The cache is a source too: the same call, now cached.
//! let cache = TokenCache::new(source);
//! let token = cache.token().await.unwrap();
//! assert_eq!(token.fingerprint(), Token::new("from-my-vault").fingerprint());
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::error::TokenError;
use crate::token::Token;

/// Gives a token, or a typed error that says why not.
///
/// Each call should fetch a new token: caching is the job of [`TokenCache`](crate::TokenCache),
/// which calls the source only when it needs a token. Implement it with an `async fn`:
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::{Token, TokenSource};
/// use tower_bearer::error::TokenError;
///
/// struct FromVault;
///
/// impl TokenSource for FromVault {
///     async fn token(&self) -> Result<Token, TokenError> {
///         // ask the vault, the token endpoint, ...
///         Ok(Token::new("eyJ...").with_expires_in(Duration::from_secs(3600)))
///     }
/// }
/// ```
///
/// Sources are used with static dispatch (no boxing); [`BoxTokenSource`] erases the type when
/// the source is chosen at run time.
pub trait TokenSource: Send + Sync {
    /// Fetches a token.
    ///
    /// ```
    /// use tower_bearer::{StaticToken, Token, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let source = StaticToken::new(Token::new("t").with_scope("read"));
    /// let token = source.token().await.unwrap();
    /// assert_eq!(token.scope(), Some("read"));
    /// # }
    /// ```
    fn token(&self) -> impl Future<Output = Result<Token, TokenError>> + Send;

    /// Where the tokens come from, in a few words for messages: a host
    /// (`login.example.com`), a vault path. A [`TokenCache`](crate::TokenCache) names it when
    /// a request gives up waiting for a token. Never a secret, a query or credentials.
    /// Default: `None`.
    ///
    /// ```
    /// use tower_bearer::{Token, TokenSource};
    /// use tower_bearer::error::TokenError;
    ///
    /// struct FromVault;
    ///
    /// impl TokenSource for FromVault {
    ///     async fn token(&self) -> Result<Token, TokenError> {
    ///         Ok(Token::new("eyJ..."))
    ///     }
    ///
    ///     fn describe(&self) -> Option<String> {
    ///         Some("vault.internal".to_owned())
    ///     }
    /// }
    /// assert_eq!(FromVault.describe().as_deref(), Some("vault.internal"));
    /// ```
    fn describe(&self) -> Option<String> {
        None
    }

    /// Erases the source's type.
    ///
    /// ```
    /// use tower_bearer::{token_source_fn, BoxTokenSource, StaticToken, Token, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // Two source types, one variable type: chosen at run time.
    /// let from_config = false;
    /// let source: BoxTokenSource = if from_config {
    ///     StaticToken::new(Token::new("static")).boxed()
    /// } else {
    ///     token_source_fn(|| async { Ok(Token::new("fetched")) }).boxed()
    /// };
    /// assert_eq!(source.token().await.unwrap().fingerprint(), Token::new("fetched").fingerprint());
    /// # }
    /// ```
    fn boxed(self) -> BoxTokenSource
    where
        Self: Sized + 'static,
    {
        BoxTokenSource::new(self)
    }
}

impl<S: TokenSource> TokenSource for Arc<S> {
    fn token(&self) -> impl Future<Output = Result<Token, TokenError>> + Send {
        (**self).token()
    }

    fn describe(&self) -> Option<String> {
        (**self).describe()
    }
}

/// A source that always gives the same token (Go's `StaticTokenSource`).
///
/// ```
/// use tower_bearer::{StaticToken, Token, TokenSource};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let source = StaticToken::new(Token::new("api-key-like-token"));
/// assert_eq!(source.token().await.unwrap().fingerprint(), Token::new("api-key-like-token").fingerprint());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct StaticToken {
    token: Token,
}

impl StaticToken {
    /// A source of `token`.
    ///
    /// ```
    /// use tower_bearer::{StaticToken, Token, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let source = StaticToken::new(Token::new("fixed"));
    /// // Every call gives the same token.
    /// let (a, b) = (source.token().await.unwrap(), source.token().await.unwrap());
    /// assert_eq!(a.fingerprint(), b.fingerprint());
    /// # }
    /// ```
    pub fn new(token: Token) -> Self {
        Self { token }
    }
}

impl TokenSource for StaticToken {
    async fn token(&self) -> Result<Token, TokenError> {
        Ok(self.token.clone())
    }
}

/// A source from an async closure; see [`token_source_fn`].
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use tower_bearer::{token_source_fn, Token, TokenSource};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// static CALLS: AtomicU32 = AtomicU32::new(0);
/// let source = token_source_fn(|| async {
///     CALLS.fetch_add(1, Ordering::Relaxed);
///     Ok(Token::new("t"))
/// });
/// source.token().await.unwrap();
/// source.token().await.unwrap();
/// // No caching of its own: each call runs the closure (wrap it in a `TokenCache`).
/// assert_eq!(CALLS.load(Ordering::Relaxed), 2);
/// # }
/// ```
#[derive(Clone)]
pub struct TokenSourceFn<F> {
    f: F,
}

/// Makes a [`TokenSource`] from an async closure.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::{token_source_fn, Token, TokenSource};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let source = token_source_fn(|| async {
///     Ok(Token::new("eyJ...").with_expires_in(Duration::from_secs(300)))
/// });
/// let token = source.token().await.unwrap();
/// assert_eq!(token.lifetime(), Some(Duration::from_secs(300)));
/// # }
/// ```
pub fn token_source_fn<F, Fut>(f: F) -> TokenSourceFn<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<Token, TokenError>> + Send,
{
    TokenSourceFn { f }
}

impl<F, Fut> TokenSource for TokenSourceFn<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<Token, TokenError>> + Send,
{
    fn token(&self) -> impl Future<Output = Result<Token, TokenError>> + Send {
        (self.f)()
    }
}

impl<F> fmt::Debug for TokenSourceFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSourceFn").finish_non_exhaustive()
    }
}

/// A type-erased [`TokenSource`], for a source chosen at run time.
///
/// ```
/// use tower_bearer::{BoxTokenSource, StaticToken, Token, TokenSource};
///
/// let sources: Vec<BoxTokenSource> = vec![
///     StaticToken::new(Token::new("a")).boxed(),
///     tower_bearer::token_source_fn(|| async { Ok(Token::new("b")) }).boxed(),
/// ];
/// assert_eq!(sources.len(), 2);
/// ```
#[derive(Clone)]
pub struct BoxTokenSource {
    inner: Arc<dyn DynTokenSource>,
}

impl BoxTokenSource {
    /// Erases the type of `source`.
    ///
    /// ```
    /// use tower_bearer::{BoxTokenSource, StaticToken, Token, TokenSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let source = BoxTokenSource::new(StaticToken::new(Token::new("t")));
    /// // Clones share the source.
    /// let clone = source.clone();
    /// assert_eq!(clone.token().await.unwrap().fingerprint(), Token::new("t").fingerprint());
    /// # }
    /// ```
    pub fn new<S: TokenSource + 'static>(source: S) -> Self {
        Self {
            inner: Arc::new(source),
        }
    }
}

impl TokenSource for BoxTokenSource {
    fn token(&self) -> impl Future<Output = Result<Token, TokenError>> + Send {
        self.inner.token_boxed()
    }

    fn describe(&self) -> Option<String> {
        self.inner.describe_dyn()
    }

    fn boxed(self) -> BoxTokenSource {
        self
    }
}

impl fmt::Debug for BoxTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxTokenSource").finish_non_exhaustive()
    }
}

/// The object-safe twin of [`TokenSource`], behind [`BoxTokenSource`].
trait DynTokenSource: Send + Sync {
    fn token_boxed(&self) -> BoxFuture<'_, Result<Token, TokenError>>;
    fn describe_dyn(&self) -> Option<String>;
}

impl<S: TokenSource> DynTokenSource for S {
    fn token_boxed(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(self.token())
    }

    fn describe_dyn(&self) -> Option<String> {
        self.describe()
    }
}
