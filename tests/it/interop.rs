//! Interoperability with an independent OAuth 2.0 server: the npm package `oauth2-mock-server`,
//! started on loopback. Install it first (the README's test command does):
//! `npm ci --prefix tests/interop`.
#![cfg(feature = "reqwest")]

crate::known_secrets!(
    "interop.rs Basic secret" => "s3cret:with colon",
    "interop.rs post secret" => "s3cret",
    "interop.rs secret" => "interop-s3cret",
);

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use tower::{Layer, ServiceExt};
use tower_bearer::oauth::{
    ClaimsCheck, ClientAuth, ClientCredentials, ClientCredentialsRequest, GrantTypeIn,
    ReqwestTransport,
};
use tower_bearer::{BearerTokenLayer, TokenErrorKind, TokenSource};

/// The mock server, stopped when dropped.
struct MockServer {
    child: Child,
    base: String,
}

impl MockServer {
    fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
        let bin = dir.join("node_modules/oauth2-mock-server/dist/oauth2-mock-server.mjs");
        assert!(
            bin.exists(),
            "{} is missing: run `npm ci --prefix tests/interop` (the README's test command does)",
            bin.display()
        );
        let mut child = Command::new("node")
            .arg(&bin)
            .args(["-a", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (Node.js 20.19 or later is needed)");
        let stdout = child.stdout.take().unwrap();
        let mut base = None;
        for line in BufReader::new(stdout).lines().take(20) {
            let line = line.unwrap();
            if let Some(at) = line.find("listening on ") {
                base = Some(line[at + "listening on ".len()..].trim().to_owned());
                break;
            }
        }
        let base = base.expect("oauth2-mock-server said where it listens");
        Self { child, base }
    }

    fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn source(server: &MockServer, auth: ClientAuth) -> ClientCredentials<ReqwestTransport> {
    ClientCredentials::new(
        ClientCredentialsRequest::new(&server.token_url())
            .unwrap()
            .scopes(["read", "write"])
            .resource("https://api.example/"),
        auth,
        ReqwestTransport::new().unwrap(),
    )
}

#[tokio::test]
async fn client_secret_basic_and_post_get_tokens() {
    let server = MockServer::start();
    for auth in [
        ClientAuth::client_secret_basic("interop client", "s3cret:with colon"),
        ClientAuth::client_secret_post("interop-client", "s3cret"),
    ] {
        let token = source(&server, auth).token().await.unwrap();
        assert!(token.is_bearer());
        assert_eq!(token.scope(), Some("read write"));
        assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
        // Its `iss` names the server by `localhost` and our port.
        let port = server.base.rsplit(':').next().unwrap();
        ClaimsCheck::new()
            .issuer(format!("http://localhost:{port}"))
            .check(
                secrecy::ExposeSecret::expose_secret(token.access_token()),
                SystemTime::now(),
            )
            .unwrap();
    }
}

#[tokio::test]
async fn the_servers_own_error_is_parsed() {
    let server = MockServer::start();
    let source = ClientCredentials::new(
        ClientCredentialsRequest::new(&server.token_url())
            .unwrap()
            .grant_type_in(GrantTypeIn::Query),
        ClientAuth::client_secret_post("c", "interop-s3cret"),
        ReqwestTransport::new().unwrap(),
    );
    let err = source.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Configuration);
    assert!(err.to_string().contains("grant_type"), "{err}");
}

#[tokio::test]
async fn the_layer_sends_the_servers_token() {
    let server = MockServer::start();
    let layer = BearerTokenLayer::new(source(
        &server,
        ClientAuth::client_secret_basic("c", "interop-s3cret"),
    ));
    let api = layer.layer(tower::service_fn(|req: http::Request<()>| async move {
        Ok::<_, std::convert::Infallible>(http::Response::new(
            req.headers()["authorization"].clone(),
        ))
    }));
    let mut calls = Vec::new();
    for _ in 0..50 {
        let api = api.clone();
        calls.push(tokio::spawn(api.oneshot(
            http::Request::get("https://api.example/").body(()).unwrap(),
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for call in calls {
        let header = call.await.unwrap().unwrap().into_body();
        assert!(header.to_str().unwrap().starts_with("Bearer eyJ"));
        seen.insert(header);
    }
    assert_eq!(seen.len(), 1, "one token for all 50 requests");
    assert_eq!(layer.cache().stats().fetches, 1);
}

/// The token's RS256 signature verifies with the key the server publishes at `/jwks`: the
/// token really is the independent server's.
#[cfg(feature = "private-key-jwt")]
#[tokio::test]
async fn the_token_verifies_with_the_servers_published_key() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let server = MockServer::start();
    let token = source(
        &server,
        ClientAuth::client_secret_basic("c", "interop-s3cret"),
    )
    .token()
    .await
    .unwrap();
    let jwt = secrecy::ExposeSecret::expose_secret(token.access_token()).to_owned();
    let jwks: serde_json::Value = reqwest::get(format!("{}/jwks", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    let b64 = |v: &serde_json::Value| URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap();
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    ring::signature::RsaPublicKeyComponents {
        n: b64(&key["n"]),
        e: b64(&key["e"]),
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        input.as_bytes(),
        &URL_SAFE_NO_PAD.decode(signature).unwrap(),
    )
    .expect("the token verifies with the server's JWKS");
}
