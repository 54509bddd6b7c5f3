//! Errors that carry their cause once: a failed token request's message names the token URL's
//! host (never its path or query), the cause in words and a hint; walking the `source()` chain
//! from the layer's error, each link says something new; the inner service's error is the
//! source of `Error::Service`, also through tower's `Buffer` and `Timeout`.

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{BoxError, Layer, ServiceBuilder, ServiceExt, service_fn};
use tower_bearer::oauth::{
    ClientAuth, ClientCredentials, ClientCredentialsRequest, ServiceTransport, Transport,
};
use tower_bearer::{BearerTokenLayer, Error, StaticToken, Token, TokenErrorKind};

use crate::common::*;

const CLIENT_SECRET: &str = "error-chain-client-S3cret-0d7";
const API_TOKEN: &str = "error-chain-api-token-6e3";
crate::known_secrets!(
    "error_chain.rs client secret" => CLIENT_SECRET,
    "error_chain.rs api token" => API_TOKEN,
);

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn source<T: Transport>(token_url: &str, transport: T) -> ClientCredentials<T> {
    ClientCredentials::new(
        ClientCredentialsRequest::new(token_url)
            .unwrap()
            .scope("api://partner/.default"),
        ClientAuth::client_secret_post("client-1", CLIENT_SECRET),
        transport,
    )
    .max_attempts(1)
}

/// The `Display` of each link of `err`'s chain, `err` first.
fn chain(err: &(dyn StdError + 'static)) -> Vec<String> {
    let mut links = vec![err.to_string()];
    let mut next = err.source();
    while let Some(link) = next {
        links.push(link.to_string());
        next = link.source();
    }
    links
}

/// Each link says something new: no two are equal, and none is a part of the one before
/// (a wrapper that repeats its source's text).
fn assert_each_link_new(links: &[String]) {
    eprintln!("CHAIN {links:#?}");
    for (i, link) in links.iter().enumerate() {
        for other in &links[i + 1..] {
            assert_ne!(link, other, "a link repeats: {links:#?}");
        }
    }
}

/// Sends a request through the layer over a token source whose token request fails; the
/// layer's error.
async fn through_the_layer<T: Transport + 'static>(
    source: ClientCredentials<T>,
) -> Error<std::convert::Infallible> {
    BearerTokenLayer::new(source)
        .layer(ok_api(Seen::default()))
        .oneshot(get("https://api.partner.example/v1/items"))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_refused_connection_is_named_with_its_host_and_cause_and_chained_once() {
    let port = closed_port();
    let token_url = format!("http://127.0.0.1:{port}/tenant-5a2/oauth2/token?p=policy-q9");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let err = through_the_layer(source(&token_url, ServiceTransport::new(client))).await;
    let token_error = err.token_error().expect("a token error");
    assert_eq!(token_error.kind(), TokenErrorKind::Transport);

    let links = chain(&err);
    let top = &links[0];
    assert!(
        top.contains(&format!(
            "the request to 127.0.0.1:{port} failed: connection refused"
        )),
        "{top}"
    );
    assert!(
        top.contains("hint: nothing accepts connections there"),
        "{top}"
    );
    for private in ["tenant-5a2", "policy-q9"] {
        assert!(
            links.iter().all(|link| !link.contains(private)),
            "{private} in {links:#?}"
        );
    }
    // The chain goes on with hyper's errors down to the OS's, each once.
    assert!(links.len() >= 3, "{links:#?}");
    assert!(
        links
            .last()
            .unwrap()
            .to_lowercase()
            .contains("connection refused"),
        "{links:#?}"
    );
    assert_each_link_new(&links);
}

#[tokio::test]
async fn an_inner_services_error_is_the_source_through_buffer_and_timeout() {
    // `Error<BoxError>` composes with tower's `Timeout` (outside) and `Buffer` (inside).
    let inner = service_fn(|_: Request<()>| async {
        Err::<Response<String>, _>(std::io::Error::other("backend down"))
    });
    let service = ServiceBuilder::new()
        .timeout(Duration::from_secs(5))
        .layer(BearerTokenLayer::new(StaticToken::new(Token::new(
            API_TOKEN,
        ))))
        .buffer(4)
        .service(inner);
    let err: BoxError = service
        .oneshot(get("https://api.partner.example/v1/items"))
        .await
        .unwrap_err();
    let ours = err
        .downcast_ref::<Error<BoxError>>()
        .expect("the layer's error, boxed by Timeout");
    assert!(matches!(ours, Error::Service(_)), "{ours:?}");
    assert_eq!(ours.to_string(), "inner service failed: backend down");
    let links = chain(ours);
    assert!(links.len() >= 2, "{links:#?}");
    assert!(
        ours.source()
            .and_then(|inner| inner.downcast_ref::<std::io::Error>())
            .is_some(),
        "the inner service's error is the source: {links:#?}"
    );
    assert_each_link_new(&links);
}

#[cfg(feature = "reqwest")]
mod reqwest_transport {
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tower_bearer::TokenErrorKind;
    use tower_bearer::oauth::ReqwestTransport;

    use super::*;

    #[tokio::test]
    async fn a_refused_connection_over_reqwest_names_host_and_cause() {
        let port = closed_port();
        let token_url = format!("http://127.0.0.1:{port}/oauth2/token?p=policy-q9");
        let err = through_the_layer(source(&token_url, ReqwestTransport::new().unwrap())).await;
        assert_eq!(
            err.token_error().unwrap().kind(),
            TokenErrorKind::Transport,
            "{err}"
        );
        let links = chain(&err);
        assert!(
            links[0].contains(&format!(
                "the request to 127.0.0.1:{port} failed: connection refused"
            )),
            "{links:#?}"
        );
        // reqwest's own error is in the chain, without the URL.
        assert!(
            links.iter().all(|link| !link.contains("policy-q9")),
            "{links:#?}"
        );
        assert!(links.len() >= 3, "{links:#?}");
        assert_each_link_new(&links);
    }

    /// A TLS token endpoint whose certificate comes from the fixture CA, which the client does
    /// not trust; its token URL.
    async fn untrusted_tls_endpoint() -> String {
        let certs = CertificateDer::pem_slice_iter(include_bytes!("../fixtures/server-cert.pem"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key =
            PrivateKeyDer::from_pem_slice(include_bytes!("../fixtures/server-key.pem")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                // The client refuses the certificate: the handshake fails, nothing is served.
                tokio::spawn(async move { acceptor.accept(stream).await.map(|_| ()) });
            }
        });
        format!("https://localhost:{port}/oauth2/token")
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_named_in_the_message_with_a_hint() {
        let token_url = untrusted_tls_endpoint().await;
        let port = token_url
            .trim_start_matches("https://localhost:")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let err = through_the_layer(source(&token_url, ReqwestTransport::new().unwrap())).await;
        let links = chain(&err);
        let top = &links[0];
        assert!(
            top.contains(&format!(
                "the request to localhost:{port} failed: invalid peer certificate: \
                 UnknownIssuer"
            )),
            "{links:#?}"
        );
        assert!(top.contains("hint: the TLS connection failed"), "{top}");
        assert_each_link_new(&links);
    }
}
