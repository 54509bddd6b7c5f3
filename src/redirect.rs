//! Redirects and the token: what the layer does when an answer points elsewhere, and the
//! extensions that tell it where an answer really came from.
//!
//! A bearer token is meant for the origin (scheme, host and port) the caller addressed, and
//! nowhere else.

use http::Uri;

/// Response extension: the URI the response actually came from, set by a transport that
/// follows redirects itself ([`ReqwestService`](crate::reqwest_client::ReqwestService) sets
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
