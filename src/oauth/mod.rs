//! OAuth 2.0 protocol code, free of I/O: building token requests and reading token endpoint
//! answers are pure functions, tested without a network.
//!
//! A token request is made in two steps: [`ClientAuth::credentials`] makes the credentials of
//! one request (async: a secret needs nothing, `private_key_jwt` signs a fresh assertion, an
//! assertion hook is awaited), then [`ClientCredentialsRequest::http_request`] builds the
//! request from them, synchronously and without I/O.
//!
//! - `assertion`: `private_key_jwt` client assertions (feature `private-key-jwt`);
//! - [`claims`]: an opt-in check of a JWT access token's claims ([`ClaimsCheck`]);
//! - [`request`]: a client-credentials token request ([`ClientCredentialsRequest`]);
//! - [`discovery`]: finding the token endpoint from the issuer's metadata (RFC 8414, OpenID
//!   Connect Discovery);
//! - [`client_auth`]: how the client authenticates ([`ClientAuth`]), and the credentials it
//!   makes for one request ([`Credentials`]);
//! - [`redact`]: removing secrets a server echoed back from errors ([`Redactor`]);
//! - [`response`]: reading the answer into a [`Token`](crate::Token) or a typed error, with
//!   what the server said as a [`ProviderError`] detail;
//! - [`transport`]: how the request is sent ([`Transport`], [`ServiceTransport`]; and
//!   `ReqwestTransport` with feature `reqwest`);
//! - [`client`]: the flow as a [`TokenSource`](crate::TokenSource) ([`ClientCredentials`]).

#[cfg(feature = "private-key-jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
pub mod assertion;
pub mod claims;
pub mod client;
pub mod client_auth;
pub mod discovery;
pub mod redact;
pub mod request;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest_transport;
pub mod response;
pub mod transport;

pub use claims::ClaimsCheck;
pub use client::ClientCredentials;
pub use client_auth::{
    AssertionContext, BasicEncoding, ClientAuth, Credentials, basic_authorization,
};
pub use redact::Redactor;
pub use request::{ClientCredentialsRequest, GrantTypeIn};
#[cfg(feature = "reqwest")]
pub use reqwest_transport::ReqwestTransport;
pub use response::ProviderError;
pub use transport::{ServiceTransport, Transport};
