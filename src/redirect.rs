//! Redirects and the token: what the layer does when an answer points elsewhere, and the
//! extensions that tell it where an answer really came from.
//!
//! A bearer token is meant for the origin (scheme, host and port) the caller addressed, and
//! nowhere else. A redirect-following layer *outside* [`BearerTokenLayer`](crate::BearerTokenLayer)
//! sends every hop through it as a new request, and the layer cannot tell a hop from a request
//! of your own; so when the answer to a request that carried the token is a redirect that is
//! not provably to the same origin, the layer stops it ([`CrossOriginRedirects`]). To follow
//! redirects to other origins, put the follower *inside* the bearer layer: tower-http's
//! standard policy drops `Authorization` on a cross-origin hop, and `PinOrigin` (feature
//! `follow-redirect`) does it around any policy.
//!
//! # Safe orders
//!
//! Each row is tested against real loopback servers (`tests/it/redirects.rs`; the middleware's
//! rows in `tests/it/reqwest_middleware.rs`).
//!
//! | composition (outermost first) | same-origin redirect | cross-origin redirect |
//! | --- | --- | --- |
//! | `FollowRedirect` (any policy, with or without `PinOrigin`), bearer | followed, with the token | refused: [`Error::Destination`](crate::Error::Destination) of kind `CrossOriginRedirect`; nothing reaches the target |
//! | bearer, `FollowRedirect` (standard policy) | followed, with the token | followed, without the token (tower-http's `FilterCredentials`) |
//! | bearer, `FollowRedirect` with `PinOrigin` around any policy | followed, with the token | followed, without the token, whatever the wrapped policy does |
//! | bearer, `ReqwestService::new` with reqwest's own redirects | followed, with the token | followed by reqwest, which drops `Authorization` |
//! | bearer, `ReqwestService::with_default_client` | followed, with the token | not followed by reqwest; refused by the layer as above |
//! | `BearerTokenMiddleware` (feature `reqwest-middleware`) in a `reqwest_middleware` client with reqwest's own redirects | followed, with the token | followed by reqwest, which drops `Authorization`; a `401` there keeps the token (reqwest's final URL) |
//! | the same with `redirect::Policy::none()` | returned to the middleware, with the token | refused by the middleware as in the first row |
//!
//! A redirect that a follower inside stops (its limit reached) comes back to the bearer layer,
//! which judges it as in the first row. Not safe: `FollowRedirect` *inside* the bearer layer
//! with a policy of your own that keeps credentials on cross-origin hops
//! (`FilterCredentials::block_none()`, or none at all) and no `PinOrigin`.
//!
//! Around these:
//!
//! - **Retry** anywhere: a retry goes to the same origin as the attempt it repeats.
//! - **[`ReplayUnauthorizedLayer`](crate::replay::ReplayUnauthorizedLayer)** outside the bearer
//!   layer: it replays only a `401` that the bearer layer marked
//!   [`TokenRejected`](crate::replay::TokenRejected), which never happens for an answer that
//!   says it came from another origin. Inside the bearer layer it never replays.
//! - A `401` from another origin than the token was sent to never drops the token: the layer
//!   knows where an answer came from by [`FinalUri`] (set by
//!   `ReqwestService`) or by tower-http's
//!   `RequestUri` (set by `FollowRedirect`; read with feature `follow-redirect`). Known limit:
//!   with a follower inside, a chain that leaves the origin and comes back (A, B, A) reaches A
//!   the second time without the token (tower-http keeps it off after a cross-origin hop); a
//!   `401` there is taken as a refusal of the token (one extra fetch at most per
//!   invalidation cooldown, never a leak).
//! - For tonic, whose requests carry only a path, name the channel's origin with
//!   [`origin`](crate::BearerTokenLayer::origin) so the destination checks have an origin to
//!   compare. (A redirect answering a path-only request is same-origin only if its
//!   `Location` is a path.)
//!
//! A follower outside the layer never gets to follow a cross-origin redirect with the token:
//!
//! ```
//! use tower::{Layer, ServiceExt};
//! use tower_bearer::error::DestinationErrorKind;
//! use tower_bearer::{BearerTokenLayer, Error, StaticToken, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! # let api = tower::service_fn(|_req: http::Request<()>| async {
//! #     let redirect = http::Response::builder().status(302)
//! #         .header("location", "https://elsewhere.example/x").body(()).unwrap();
//! #     Ok::<_, std::convert::Infallible>(redirect)
//! # });
//! // `api` answers `302 Location: https://elsewhere.example/x`.
//! let client = BearerTokenLayer::new(StaticToken::new(Token::new("t"))).layer(api);
//! let request = http::Request::get("https://api.example/v1/report").body(()).unwrap();
//! let Err(Error::Destination(refused)) = client.oneshot(request).await else { panic!() };
//! assert_eq!(refused.kind(), DestinationErrorKind::CrossOriginRedirect);
//! # }
//! ```
//!
//! A follower outside the layer never gets to follow a cross-origin redirect with the token:
//!
//! ```
//! use tower::{Layer, ServiceExt};
//! use tower_bearer::error::DestinationErrorKind;
//! use tower_bearer::{BearerTokenLayer, Error, StaticToken, Token};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! # let api = tower::service_fn(|_req: http::Request<()>| async {
//! #     let redirect = http::Response::builder().status(302)
//! #         .header("location", "https://elsewhere.example/x").body(()).unwrap();
//! #     Ok::<_, std::convert::Infallible>(redirect)
//! # });
//! // `api` answers `302 Location: https://elsewhere.example/x`.
//! let client = BearerTokenLayer::new(StaticToken::new(Token::new("t"))).layer(api);
//! let request = http::Request::get("https://api.example/v1/report").body(()).unwrap();
//! let Err(Error::Destination(refused)) = client.oneshot(request).await else { panic!() };
//! assert_eq!(refused.kind(), DestinationErrorKind::CrossOriginRedirect);
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use http::{HeaderValue, Uri};

use crate::origin::Origin;

/// Response extension: the URI the response actually came from, set by a transport that
/// follows redirects itself (`ReqwestService`, feature `reqwest`, sets
/// it from reqwest's final URL).
///
/// The layer reads it to tell a `401` from the origin it sent the token to (which drops the
/// token) from a `401` of another origin a transport was redirected to (which says nothing
/// about the token). The token transport reads it to refuse a token answer that came from
/// anywhere but the token URL.
///
/// ```
/// use tower_bearer::redirect::FinalUri;
///
/// let mut response = http::Response::new(());
/// response
///     .extensions_mut()
///     .insert(FinalUri(http::Uri::from_static("https://api.example/v1/items")));
/// assert!(response.extensions().get::<FinalUri>().is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalUri(pub Uri);

/// Response extension: the `Location` of a cross-origin redirect, moved here from the headers
/// when the layer is set to [`CrossOriginRedirects::HideLocation`], so that no
/// redirect-following layer outside follows it with the token. Read it to follow the redirect
/// yourself, deliberately, without the token.
///
/// `Debug` shows only the target's origin: a `Location` query can carry a presigned secret.
///
/// ```
/// use tower_bearer::redirect::RedirectLocation;
///
/// # fn handle(response: http::Response<()>) {
/// if let Some(location) = response.extensions().get::<RedirectLocation>() {
///     let next = location.location(); // the original `Location` value
///     # let _ = next;
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct RedirectLocation(HeaderValue);

impl RedirectLocation {
    pub(crate) fn new(location: HeaderValue) -> Self {
        Self(location)
    }

    /// The `Location` header value, as the server sent it.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use tower_bearer::redirect::{CrossOriginRedirects, RedirectLocation};
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let api = tower::service_fn(|_req: http::Request<()>| async {
    /// #     let redirect = http::Response::builder().status(302)
    /// #         .header("location", "https://elsewhere.example/x").body(()).unwrap();
    /// #     Ok::<_, std::convert::Infallible>(redirect)
    /// # });
    /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
    ///     .cross_origin_redirects(CrossOriginRedirects::HideLocation)
    ///     .layer(api);
    /// let request = http::Request::get("https://api.example/v1/report").body(()).unwrap();
    /// let response = client.oneshot(request).await.unwrap();
    /// assert!(response.headers().get("location").is_none());
    /// let location = response.extensions().get::<RedirectLocation>().unwrap().location();
    /// assert_eq!(location, "https://elsewhere.example/x");
    /// # }
    /// ```
    pub fn location(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Debug for RedirectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self
            .0
            .to_str()
            .ok()
            .and_then(|l| Origin::parse(l).ok())
            .map(|o| o.to_string());
        f.debug_struct("RedirectLocation")
            .field("origin", &origin)
            .finish_non_exhaustive()
    }
}

/// What the layer does when the answer to a request that carried its token is a redirect
/// (`3xx` with a `Location`) that is not provably to the same origin.
///
/// Same origin means an absolute path (`/next`) or an absolute URI with the request's scheme,
/// host and port (host case and default ports normalised). Anything else (another host or
/// port, `https` to `http`, `//host`, a relative path, user information) counts as another
/// origin: fail closed.
///
/// The layer cannot tell a redirect hop from a new request (a FollowRedirect layer outside it
/// sends each hop through it as a fresh request), so without this guard a redirect-following
/// layer outside would send the token to wherever the server points.
///
/// ```
/// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
/// use tower_bearer::redirect::CrossOriginRedirects;
///
/// let layer = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
///     .cross_origin_redirects(CrossOriginRedirects::HideLocation);
/// # let _ = layer;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrossOriginRedirects {
    /// Fail with [`Error::Destination`](crate::Error::Destination) of kind
    /// [`CrossOriginRedirect`](crate::error::DestinationErrorKind::CrossOriginRedirect),
    /// naming the two origins only. The default.
    #[default]
    Refuse,
    /// Return the `3xx` with its `Location` header removed and kept in a
    /// [`RedirectLocation`] extension: nothing outside follows it by accident.
    HideLocation,
}

/// Request extension: the origin a redirect chain started at, set on every hop by
/// `PinOrigin` (feature `follow-redirect`). The layer attaches its token to a request with this mark only if the
/// request goes to that origin. Only this crate makes one.
///
/// ```
/// use tower_bearer::redirect::PinnedOrigin;
///
/// # fn hop(request: &http::Request<()>) {
/// let pinned = request.extensions().get::<PinnedOrigin>().is_some();
/// # let _ = pinned;
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedOrigin(Arc<Origin>);

impl PinnedOrigin {
    // Made only by `PinOrigin` (feature `follow-redirect`) and the unit tests.
    #[cfg_attr(not(feature = "follow-redirect"), allow(dead_code))]
    pub(crate) fn new(origin: Origin) -> Self {
        Self(Arc::new(origin))
    }

    pub(crate) fn origin(&self) -> &Origin {
        &self.0
    }
}

#[cfg(feature = "follow-redirect")]
pub use pin::PinOrigin;

#[cfg(feature = "follow-redirect")]
mod pin {
    use http::Request;
    use http::header::AUTHORIZATION;
    use tower_http::follow_redirect::policy::{Action, Attempt, Policy};

    use super::PinnedOrigin;
    use crate::origin::Origin;

    /// A [tower-http redirect policy](tower_http::follow_redirect::policy::Policy) wrapper
    /// that keeps the token on the origin a redirect chain started at (feature
    /// `follow-redirect`).
    ///
    /// It runs the wrapped policy, then on every hop removes an `Authorization` header from a
    /// hop to another origin than the first request's, and marks the request with that origin
    /// ([`PinnedOrigin`]). Made for `FollowRedirect` *inside* [`BearerTokenLayer`](crate::BearerTokenLayer)
    /// (the first request already carries the token): cross-origin hops go without it,
    /// whatever the wrapped policy keeps. Outside the bearer layer it changes nothing about
    /// the redirect guard (a cross-origin redirect is still refused: whoever follows it might
    /// not carry the mark), but a marked hop to another origin that reaches the layer anyway
    /// never gets the token.
    ///
    /// ```
    /// use tower::ServiceBuilder;
    /// use tower_http::follow_redirect::{FollowRedirectLayer, policy};
    /// use tower_bearer::redirect::PinOrigin;
    /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
    ///
    /// # let http_client = tower::service_fn(|_req: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// # });
    /// let client = ServiceBuilder::new()
    ///     .layer(BearerTokenLayer::new(StaticToken::new(Token::new("t"))))
    ///     .layer(FollowRedirectLayer::with_policy(PinOrigin::new(policy::Limited::default())))
    ///     .service(http_client);
    /// # let _ = client;
    /// ```
    #[derive(Clone, Debug)]
    pub struct PinOrigin<P> {
        inner: P,
        /// Fixed by the first request of the chain.
        pinned: Option<PinnedOrigin>,
        started: bool,
    }

    impl<P> PinOrigin<P> {
        /// Wraps `policy`.
        ///
        /// ```
        /// use tower::{Layer, ServiceExt};
        /// use tower_http::follow_redirect::{FollowRedirectLayer, policy::FilterCredentials};
        /// use tower_bearer::redirect::PinOrigin;
        /// use tower_bearer::{BearerTokenLayer, StaticToken, Token};
        ///
        /// # #[tokio::main(flavor = "current_thread")] async fn main() {
        /// # let http_client = tower::service_fn(|req: http::Request<String>| async move {
        /// #     let response = if req.uri().host() == Some("api.example") {
        /// #         http::Response::builder().status(302).header("location", "https://cdn.example/f")
        /// #     } else {
        /// #         let had_token = req.headers().contains_key("authorization").to_string();
        /// #         http::Response::builder().header("x-had-token", had_token)
        /// #     };
        /// #     Ok::<_, std::convert::Infallible>(response.body(()).unwrap())
        /// # });
        /// // A policy that keeps credentials everywhere, pinned: the hop to cdn.example goes bare.
        /// let policy = PinOrigin::new(FilterCredentials::new().block_cross_origin(false));
        /// let client = BearerTokenLayer::new(StaticToken::new(Token::new("t")))
        ///     .layer(FollowRedirectLayer::with_policy(policy).layer(http_client));
        /// let request = http::Request::get("https://api.example/export").body(String::new()).unwrap();
        /// let response = client.oneshot(request).await.unwrap();
        /// assert_eq!(response.headers()["x-had-token"], "false");
        /// # }
        /// ```
        pub fn new(policy: P) -> Self {
            Self {
                inner: policy,
                pinned: None,
                started: false,
            }
        }
    }

    impl<P: Default> Default for PinOrigin<P> {
        fn default() -> Self {
            Self::new(P::default())
        }
    }

    impl<P, B, E> Policy<B, E> for PinOrigin<P>
    where
        P: Policy<B, E>,
    {
        fn redirect(&mut self, attempt: &Attempt<'_>) -> Result<Action, E> {
            self.inner.redirect(attempt)
        }

        fn on_request(&mut self, request: &mut Request<B>) {
            // The wrapped policy first: tower-http's `FilterCredentials` clears extensions on
            // a cross-origin hop, and the mark must survive it.
            self.inner.on_request(request);
            if !self.started {
                self.started = true;
                // A mark from an outer chain wins: it is the origin the caller addressed.
                self.pinned = request
                    .extensions()
                    .get::<PinnedOrigin>()
                    .cloned()
                    .or_else(|| Origin::of(request.uri()).map(PinnedOrigin::new));
            }
            if let Some(pinned) = &self.pinned {
                if !pinned.origin().matches(request.uri()) {
                    request.headers_mut().remove(AUTHORIZATION);
                }
                request.extensions_mut().insert(pinned.clone());
            }
        }

        fn clone_body(&self, body: &B) -> Option<B> {
            self.inner.clone_body(body)
        }
    }
}
