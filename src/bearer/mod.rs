//! The middleware, in the tower-http manner: the [`BearerTokenLayer`] (its options and how it
//! builds the service), the [`BearerToken`] service (the destination check and the warm path),
//! and its [`ResponseFuture`] (waiting for a token, and the `401` and redirect checks on the
//! answer). `routes` is the same for several origins, each with its own cache
//! ([`RoutedBearerTokenLayer`], [`RoutedBearerToken`], the same `ResponseFuture`). The module
//! is private; the types are re-exported at the crate root, their one public path.
//!
//! Imports run one way: the layer builds the service, the service makes the future, and the
//! future checks the answer (`answer`). The reqwest middleware uses the same destination
//! policy, the same account of a withheld token (`withheld`) and the same answer check.

mod answer;
mod future;
mod layer;
mod routes;
mod service;

#[cfg(feature = "reqwest-middleware")]
pub(crate) use answer::{Answer, Sent, check as check_answer, is_checked};
pub use future::ResponseFuture;
pub use layer::BearerTokenLayer;
pub use routes::{RoutedBearerToken, RoutedBearerTokenLayer};
#[cfg(feature = "reqwest-middleware")]
pub(crate) use service::withheld;
pub use service::{BearerToken, ExistingAuthorization};
