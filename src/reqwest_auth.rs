//! [`BearerTokenMiddleware`]: bearer tokens for reqwest users who keep reqwest, as a
//! [`reqwest_middleware::Middleware`] (feature `reqwest-middleware`).
//!
//! Requests stay `client.get(url).json(&x).send()`; the middleware adds
//! `Authorization: Bearer <token>` from a [`TokenCache`], with what
//! [`BearerTokenLayer`](crate::BearerTokenLayer) guarantees: the same cache (single-flight,
//! refresh ahead, backoff), the same destination policy (no token over plain `http://` except
//! to loopback, an optional allow-list or named origin, a `Host` header that must agree), the
//! same `401` handling (the refused token is dropped, once per cooldown), and an optional
//! single replay of a `401`.
//!
//! ```no_run
//! use reqwest_middleware::ClientBuilder;
//! use tower_bearer::reqwest_auth::BearerTokenMiddleware;
//! use tower_bearer::{StaticToken, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), reqwest_middleware::Error> {
//! let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("eyJhbGciOi...")))
//!     .replay_unauthorized(true);
//! let client = ClientBuilder::new(reqwest::Client::new()).with(auth).build();
//!
//! let response = client
//!     .post("https://api.partner.example/v1/orders")
//!     .json(&serde_json::json!({ "item": 42 }))
//!     .send()
//!     .await?;
//! # let _ = response;
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! When the token cannot be had, or may not go where the request is addressed, the request is
//! not sent and `send` fails with [`reqwest_middleware::Error::Middleware`], whose
//! `anyhow::Error` is a [`TokenError`](crate::TokenError) or a
//! [`DestinationError`](crate::DestinationError): read it with `downcast_ref`.
//!
//! ```
//! use tower_bearer::{DestinationError, TokenError};
//!
//! fn explain(error: &reqwest_middleware::Error) -> String {
//!     match error {
//!         reqwest_middleware::Error::Middleware(e) => {
//!             if let Some(token) = e.downcast_ref::<TokenError>() {
//!                 format!("no token ({:?}): {token}", token.kind())
//!             } else if let Some(refused) = e.downcast_ref::<DestinationError>() {
//!                 format!("not sent there ({:?}): {refused}", refused.kind())
//!             } else {
//!                 format!("another middleware: {e}")
//!             }
//!         }
//!         reqwest_middleware::Error::Reqwest(e) => format!("reqwest: {e}"),
//!     }
//! }
//! # let _ = explain;
//! ```
//!
//! Neither error, nor the middleware's `Debug`, shows a token or a secret: a fingerprint at
//! most.
//!
//! # Redirects
//!
//! reqwest follows redirects by default and drops `Authorization` on a hop to another scheme,
//! host or port, so a redirect never carries the token to another origin. A `401` that comes
//! from such another origin (reqwest's `Response::url()` after the redirects) says nothing
//! about our token and does not drop it. A redirect that comes back to the middleware (a
//! client built with `redirect::Policy::none()`, or a limit reached) is judged as the layer
//! judges it: one to another origin fails with a `DestinationError` of kind
//! `CrossOriginRedirect` unless [`cross_origin_redirects`](BearerTokenMiddleware::cross_origin_redirects)
//! says to hide its `Location`, so that no middleware before this one follows it with the
//! token.
//!
//! # Replay of a `401`
//!
//! Off by default; [`replay_unauthorized(true)`](BearerTokenMiddleware::replay_unauthorized)
//! turns it on, with the rules of [`ReplayUnauthorizedLayer`](crate::replay::ReplayUnauthorizedLayer):
//! only a `401` that made the cache drop the token the request carried (so not one inside the
//! invalidation cooldown, nor one from another origin), only once the cache has a token with
//! another value, at most once per request, and with
//! [`replay_idempotent_only`](BearerTokenMiddleware::replay_idempotent_only) only for `GET`,
//! `HEAD`, `OPTIONS`, `TRACE`, `PUT` and `DELETE`. The copy is `reqwest::Request::try_clone`,
//! made before the token goes in: an ordinary body (`.json()`, `.form()`, `.body(String)`,
//! bytes) is replayed, a streaming body (`Body::wrap_stream`) cannot be copied, so its `401` is
//! returned as it came.
//!
//! # Order
//!
//! Put the middleware after (inside) a retry middleware such as `reqwest-retry`'s
//! `RetryTransientMiddleware` (`.with(retry).with(auth)`): each attempt then gets the current
//! token and its own checks. The retry takes our errors as fatal (they are not transient) and
//! returns them wrapped in its `RetryError`, whose `Error` and `WithRetries { err, .. }` hold
//! the `reqwest_middleware::Error` to read as above. The other order works too: the attempts
//! then reuse the request with the token put in once, and our errors come unwrapped.

use std::fmt;
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{Extensions, HeaderMap, StatusCode, Uri};
use reqwest::{Request, Response};
use reqwest_middleware::{Error, Middleware, Next};

use crate::bearer::{Answer, ExistingAuthorization, Sent, check_answer, is_checked, withheld};
use crate::cache::{Ticket, TokenCache};
use crate::destination::{DestinationPolicy, OtherHosts, Verdict};
use crate::error::DestinationConfigError;
use crate::origin::Origin;
use crate::redirect::CrossOriginRedirects;
use crate::replay::{TokenRejected, idempotent};
use crate::source::TokenSource;

/// A [`reqwest_middleware::Middleware`] that adds `Authorization: Bearer <token>` to each
/// request; see the [module docs](self) for the policy, the errors, redirects and the replay.
///
/// ```
/// use std::time::Duration;
/// use reqwest_middleware::ClientBuilder;
/// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
/// use tower_bearer::{StaticToken, Token};
///
/// # tokio_rustls::rustls::crypto::ring::default_provider().install_default().ok();
/// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")))
///     .allowed_hosts(["api.partner.example"])?
///     .max_wait(Duration::from_secs(5))
///     .replay_unauthorized(true);
/// let client = ClientBuilder::new(reqwest::Client::new()).with(auth).build();
/// # let _ = client;
/// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
/// ```
#[derive(Clone)]
pub struct BearerTokenMiddleware {
    cache: TokenCache,
    existing: ExistingAuthorization,
    destination: DestinationPolicy,
    redirects: CrossOriginRedirects,
    max_wait: Option<Duration>,
    replay: Replay,
}

/// Which `401`s are replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replay {
    Off,
    All,
    IdempotentOnly,
}

impl BearerTokenMiddleware {
    /// A middleware whose tokens come from `source`, through a [`TokenCache`] with default
    /// settings.
    ///
    /// ```
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{StaticToken, Token};
    ///
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")));
    /// # let _ = auth;
    /// ```
    pub fn new(source: impl TokenSource + 'static) -> Self {
        Self::from_cache(TokenCache::new(source))
    }

    /// A middleware that uses `cache`; layers, middlewares and other users of the same cache
    /// share its token.
    ///
    /// ```
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache};
    ///
    /// let cache = TokenCache::new(StaticToken::new(Token::new("t")));
    /// let auth = BearerTokenMiddleware::from_cache(cache.clone());
    /// let layer = BearerTokenLayer::from_cache(cache); // the same token for a Tower client
    /// # let _ = (auth, layer);
    /// ```
    pub fn from_cache(cache: TokenCache) -> Self {
        Self {
            cache,
            existing: ExistingAuthorization::default(),
            destination: DestinationPolicy::default(),
            redirects: CrossOriginRedirects::default(),
            max_wait: None,
            replay: Replay::Off,
        }
    }

    /// How long a request waits for a token at most, when none is cached and a fetch is
    /// running; as [`BearerTokenLayer::max_wait`](crate::BearerTokenLayer::max_wait). It also
    /// bounds a replay's wait for the next token.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{StaticToken, Token};
    ///
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")))
    ///     .max_wait(Duration::from_secs(2));
    /// # let _ = auth;
    /// ```
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// What to do with a request that already has an `Authorization` header.
    /// Default: [`ExistingAuthorization::Overwrite`].
    ///
    /// ```
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{ExistingAuthorization, StaticToken, Token};
    ///
    /// // `.bearer_auth(other)` on a request sends it with that token, untouched.
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")))
    ///     .existing_authorization(ExistingAuthorization::Keep);
    /// # let _ = auth;
    /// ```
    pub fn existing_authorization(mut self, existing: ExistingAuthorization) -> Self {
        self.existing = existing;
        self
    }

    /// Allows sending the token over plain `http://` to hosts that are not loopback; as
    /// [`BearerTokenLayer::allow_insecure_http`](crate::BearerTokenLayer::allow_insecure_http).
    /// Off by default: such a request fails with a `DestinationError` of kind
    /// `InsecureScheme` and is not sent.
    ///
    /// ```
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{StaticToken, Token};
    ///
    /// // Inside a private network that terminates TLS elsewhere, deliberately.
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")))
    ///     .allow_insecure_http(true);
    /// # let _ = auth;
    /// ```
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.destination.allow_insecure_http = allow;
        self
    }

    /// Sends the token only to these hosts; requests to other hosts are handled as
    /// [`other_hosts`](Self::other_hosts) says. The entries are those of
    /// [`BearerTokenLayer::allowed_hosts`](crate::BearerTokenLayer::allowed_hosts) (a host,
    /// `*.suffix`, an optional port or `:*`, an optional scheme).
    ///
    /// ```
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{StaticToken, Token};
    ///
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")))
    ///     .allowed_hosts(["api.partner.example", "*.kpn.example", "files.example:8443"])?;
    /// # let _ = auth;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn allowed_hosts<I>(mut self, hosts: I) -> Result<Self, DestinationConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.destination.set_allowed_hosts(hosts)?;
        Ok(self)
    }

    /// The one origin (`https://host[:port]`) the token is for: requests to any other origin
    /// are handled as [`other_hosts`](Self::other_hosts) says.
    ///
    /// ```
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{StaticToken, Token};
    ///
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")))
    ///     .origin("https://api.partner.example")?;
    /// # let _ = auth;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn origin(mut self, origin: &str) -> Result<Self, DestinationConfigError> {
        self.destination.set_origin(origin)?;
        Ok(self)
    }

    /// What to do with requests to hosts outside [`allowed_hosts`](Self::allowed_hosts) or
    /// the named [`origin`](Self::origin). Default: [`OtherHosts::Reject`].
    ///
    /// ```
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{OtherHosts, StaticToken, Token};
    ///
    /// // One client for the partner API (with the token) and the rest of the web (without).
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")))
    ///     .allowed_hosts(["api.partner.example"])?
    ///     .other_hosts(OtherHosts::SendWithoutToken);
    /// # let _ = auth;
    /// # Ok::<(), tower_bearer::error::DestinationConfigError>(())
    /// ```
    pub fn other_hosts(mut self, other: OtherHosts) -> Self {
        self.destination.other_hosts = other;
        self
    }

    /// What to do when an answer that comes back to the middleware redirects to another
    /// origin (see [Redirects](self#redirects)). Default: [`CrossOriginRedirects::Refuse`].
    ///
    /// ```
    /// use tower_bearer::redirect::CrossOriginRedirects;
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{StaticToken, Token};
    ///
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")))
    ///     .cross_origin_redirects(CrossOriginRedirects::HideLocation);
    /// # let _ = auth;
    /// ```
    pub fn cross_origin_redirects(mut self, redirects: CrossOriginRedirects) -> Self {
        self.redirects = redirects;
        self
    }

    /// Sends a request once more, with the next token, when its `401` made the cache drop the
    /// token it carried (see [Replay of a `401`](self#replay-of-a-401)). Default: off.
    ///
    /// ```
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{StaticToken, Token};
    ///
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")))
    ///     .replay_unauthorized(true);
    /// # let _ = auth;
    /// ```
    pub fn replay_unauthorized(mut self, replay: bool) -> Self {
        self.replay = match (replay, self.replay) {
            (false, _) => Replay::Off,
            (true, Replay::IdempotentOnly) => Replay::IdempotentOnly,
            (true, _) => Replay::All,
        };
        self
    }

    /// With `true`, replays only idempotent methods (`GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`,
    /// `DELETE`), for servers that may act on a request and still answer `401`. Turns the
    /// replay on; `false` replays every method again (if the replay is on).
    ///
    /// ```
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{StaticToken, Token};
    ///
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")))
    ///     .replay_idempotent_only(true);
    /// # let _ = auth;
    /// ```
    pub fn replay_idempotent_only(mut self, idempotent_only: bool) -> Self {
        self.replay = match (idempotent_only, self.replay) {
            (true, _) => Replay::IdempotentOnly,
            (false, Replay::Off) => Replay::Off,
            (false, _) => Replay::All,
        };
        self
    }

    /// The cache behind the middleware.
    ///
    /// ```
    /// use tower_bearer::reqwest_auth::BearerTokenMiddleware;
    /// use tower_bearer::{StaticToken, Token};
    ///
    /// let auth = BearerTokenMiddleware::new(StaticToken::new(Token::new("t")));
    /// assert_eq!(auth.cache().stats().fetches, 0);
    /// ```
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// Sends `request` with the token (and once more after a `401`, if the replay is on).
    async fn send(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if self.existing == ExistingAuthorization::Keep
            && request.headers().contains_key(AUTHORIZATION)
        {
            return next.run(request, extensions).await;
        }
        let Ok(uri) = request.url().as_str().parse::<Uri>() else {
            // reqwest refuses a URL that is not a valid URI before sending anything (the same
            // parse): let it say so, without our token.
            return next.run(request, extensions).await;
        };
        // A reqwest request has no `http` extensions of ours (no pinned redirect chain).
        match self
            .destination
            .check_parts(&uri, request.headers(), &Extensions::new())
        {
            Ok(Verdict::Attach) => {}
            Ok(Verdict::Skip(reason)) => {
                withheld(&self.cache, reason, &uri);
                return next.run(request, extensions).await;
            }
            Err(error) => {
                withheld(&self.cache, error.kind(), &uri);
                return Err(Error::middleware(error));
            }
        }
        // Copied before the token goes in, so that a replay gets the next token whatever the
        // `ExistingAuthorization` setting. `None` for a streaming body.
        let copy = match self.replay {
            Replay::All => request.try_clone(),
            Replay::IdempotentOnly if idempotent(request.method()) => request.try_clone(),
            _ => None,
        };
        let to = Origin::of(&uri);
        let ticket = self.authorize(request.headers_mut()).await?;
        let mut response = next.clone().run(request, extensions).await?;
        self.check(&mut response, ticket, to.clone())?;

        let (Some(mut copy), Some(rejected)) =
            (copy, response.extensions().get::<TokenRejected>().cloned())
        else {
            return Ok(response);
        };
        if !rejected.replaced().await {
            tracing::debug!("401: no token with another value to replay with");
            return Ok(response);
        }
        let Ok(ticket) = self.authorize(copy.headers_mut()).await else {
            return Ok(response);
        };
        drop(response);
        tracing::debug!("401: replaying the request once with a fresh token");
        let mut response = next.run(copy, extensions).await?;
        self.check(&mut response, ticket, to)?;
        Ok(response)
    }

    /// Puts a token into `headers`.
    async fn authorize(&self, headers: &mut HeaderMap) -> reqwest_middleware::Result<Ticket> {
        self.cache
            .authorize(headers, self.max_wait)
            .await
            .map_err(Error::middleware)
    }

    /// The layer's check of a `401` or a redirect answering a request that carried the token.
    fn check(
        &self,
        response: &mut Response,
        ticket: Ticket,
        to: Option<Origin>,
    ) -> reqwest_middleware::Result<()> {
        if !is_checked(response.status().as_u16()) {
            return Ok(());
        }
        let sent = Sent {
            ticket,
            to,
            redirects: self.redirects,
            max_wait: self.max_wait,
        };
        check_answer(response, sent).map_err(Error::middleware)
    }
}

#[async_trait::async_trait]
impl Middleware for BearerTokenMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.send(request, extensions, next).await
    }
}

impl Answer for Response {
    fn status(&self) -> StatusCode {
        self.status()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers_mut()
    }

    fn extensions_mut(&mut self) -> &mut Extensions {
        self.extensions_mut()
    }

    /// reqwest's final URL, after the redirects it followed.
    fn came_from(&self) -> Option<Uri> {
        self.url().as_str().parse().ok()
    }
}

impl fmt::Debug for BearerTokenMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokenMiddleware")
            .field("cache", &self.cache)
            .field("existing", &self.existing)
            .field("destination", &self.destination)
            .field("redirects", &self.redirects)
            .field("max_wait", &self.max_wait)
            .field("replay", &self.replay)
            .finish()
    }
}
