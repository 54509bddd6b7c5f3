//! [`BearerTokenLayer`]: adds `Authorization: Bearer <token>` to every request of a service.

use std::fmt;

use tower_layer::Layer;

use crate::cache::TokenCache;
use crate::destination::{DestinationPolicy, OtherHosts, normalize_pattern};
use crate::service::BearerToken;
use crate::source::TokenSource;

/// What to do with a request that already carries an `Authorization` header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExistingAuthorization {
    /// Replace it with the token. The default: a header copied from elsewhere (an inbound
    /// request being proxied, say) is never passed on to the partner API by mistake.
    #[default]
    Overwrite,
    /// Leave the request as it is and send it without our token.
    Keep,
}

/// A [`Layer`] that authenticates every request with a bearer token from a [`TokenSource`],
/// cached by a [`TokenCache`].
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_bearer::{token_source_fn, BearerTokenLayer, Token};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let source = token_source_fn(|| async {
///     Ok(Token::new("eyJhbGciOi...").with_expires_in(Duration::from_secs(3600)))
/// });
/// let client = ServiceBuilder::new()
///     .layer(BearerTokenLayer::new(source))
///     .service(service_fn(|req: Request<String>| async move {
///         let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
///         Ok::<_, Infallible>(Response::new(auth))
///     }));
///
/// let request = Request::get("https://api.partner.example/v1/items").body(String::new()).unwrap();
/// let response = client.oneshot(request).await.unwrap();
/// assert_eq!(response.body(), "Bearer eyJhbGciOi...");
/// # }
/// ```
pub struct BearerTokenLayer<T> {
    pub(crate) cache: TokenCache<T>,
    pub(crate) existing: ExistingAuthorization,
    pub(crate) destination: DestinationPolicy,
}

impl<T: TokenSource + 'static> BearerTokenLayer<T> {
    /// A layer whose tokens come from `source`, through a [`TokenCache`] with default settings.
    pub fn new(source: T) -> Self {
        Self::from_cache(TokenCache::new(source))
    }
}

impl<T> BearerTokenLayer<T> {
    /// A layer that uses `cache`; layers and other users of the same cache share its token.
    pub fn from_cache(cache: TokenCache<T>) -> Self {
        Self {
            cache,
            existing: ExistingAuthorization::default(),
            destination: DestinationPolicy::default(),
        }
    }

    /// What to do with a request that already has an `Authorization` header.
    /// Default: [`ExistingAuthorization::Overwrite`].
    pub fn existing_authorization(mut self, existing: ExistingAuthorization) -> Self {
        self.existing = existing;
        self
    }

    /// Allows sending the token over plain `http://` to hosts that are not loopback.
    ///
    /// Off by default: a bearer token sent in clear text can be replayed by anyone on the path.
    /// Loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) are always allowed.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.destination.allow_insecure_http = allow;
        self
    }

    /// Sends the token only to these hosts (compared case-insensitively, ports ignored;
    /// `*.example.com` matches every subdomain of `example.com`). Requests to other hosts are
    /// handled as [`other_hosts`](Self::other_hosts) says.
    ///
    /// Requests whose URI has no host (such as those tonic hands to its `Channel`, which adds
    /// its own origin) go to a destination fixed by the inner service and are not checked.
    pub fn allowed_hosts<I>(mut self, hosts: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let hosts: Vec<String> = hosts
            .into_iter()
            .map(|h| normalize_pattern(h.as_ref()))
            .collect();
        self.destination.allowed_hosts = Some(hosts.into());
        self
    }

    /// What to do with requests to hosts outside [`allowed_hosts`](Self::allowed_hosts).
    /// Default: [`OtherHosts::Reject`].
    pub fn other_hosts(mut self, other: OtherHosts) -> Self {
        self.destination.other_hosts = other;
        self
    }

    /// The cache behind the layer.
    pub fn cache(&self) -> &TokenCache<T> {
        &self.cache
    }
}

impl<S, T> Layer<S> for BearerTokenLayer<T> {
    type Service = BearerToken<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerToken {
            inner,
            view: self.cache.view(),
            cache_id: self.cache.inner.core.id,
            hits: crate::metrics::Hits::new(&self.cache.inner.core.name),
            cache: self.cache.clone(),
            existing: self.existing,
            destination: self.destination.clone(),
        }
    }
}

impl<T> Clone for BearerTokenLayer<T> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            existing: self.existing,
            destination: self.destination.clone(),
        }
    }
}

impl<T> fmt::Debug for BearerTokenLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokenLayer")
            .field("cache", &self.cache)
            .field("existing", &self.existing)
            .field("destination", &self.destination)
            .finish()
    }
}
