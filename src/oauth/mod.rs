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
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::{HeaderMap, StatusCode};
//! use tokio::time::Instant;
//! use tower_bearer::oauth::response::parse_token_response;
//! use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let request = ClientCredentialsRequest::new("https://idp.example/token").unwrap().scope("api.read");
//! let auth = ClientAuth::client_secret_basic("client-7", "s3cret");
//! let http = request.http_request(&auth.credentials(request.token_url()).await.unwrap()).unwrap();
//! assert!(http.headers()["authorization"].to_str().unwrap().starts_with("Basic "));
//! // What the server answered, read without I/O either.
//! let body = br#"{"access_token":"eyJ0eXAi","token_type":"Bearer","expires_in":3600}"#;
//! let (now, wall) = (Instant::now(), SystemTime::now());
//! let token = parse_token_response(StatusCode::OK, &HeaderMap::new(), body, now, wall, Duration::from_secs(600)).unwrap();
//! assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
//! # }
//! ```

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
