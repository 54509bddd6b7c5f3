//! The examples the README points to, run as a user would (`cargo test --all-features` builds
//! them): each against its own loopback emulator, no credentials. What they print is what they
//! promise.

use std::process::Output;

use crate::common::{capture, example_binary};

async fn run(name: &str) -> String {
    let output: Output = tokio::process::Command::new(example_binary(name))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .await
        .unwrap();
    capture::record_output(&format!("{name} example stdout"), &output.stdout);
    capture::record_output(&format!("{name} example stderr"), &output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The README's demonstration: three providers under load through token rollovers.
#[tokio::test]
async fn quickstart() {
    let out = run("quickstart").await;
    for provider in ["Kontrolle+", "Screening Eagle ID", "KPN API Store"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(provider))
            .unwrap_or_else(|| panic!("no line for {provider}: {out}"));
        // requests, failed, tokens, ...
        let columns: Vec<u64> = line[provider.len()..]
            .split_whitespace()
            .take(3)
            .map(|c| c.parse().unwrap())
            .collect();
        assert!(columns[0] > 0, "{line}");
        assert_eq!(columns[1], 0, "no request failed: {line}");
        assert!(columns[2] >= 1, "{line}");
    }
}

/// An axum app calling the partner API from its handlers through one layered client.
#[tokio::test]
async fn axum() {
    let out = run("axum").await;
    assert!(out.contains("100/100 handler calls answered 200"), "{out}");
    assert!(
        out.contains("the token endpoint saw 1 token request(s)"),
        "{out}"
    );
}

/// A tonic client over a layered channel, with the gRPC layer inside: the server revokes the
/// token it saw once; one call fails with `UNAUTHENTICATED`, the next succeeds with the second
/// token request, and every call after carries that token.
#[cfg(feature = "grpc")]
#[tokio::test]
async fn tonic() {
    let out = run("tonic").await;
    assert_eq!(out.matches("client: health status").count(), 3, "{out}");
    assert_eq!(out.matches("client: UNAUTHENTICATED").count(), 1, "{out}");
    assert!(out.contains("client: 2 token requests"), "{out}");
    let tokens: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("server: call with token "))
        .collect();
    assert_eq!(tokens.len(), 3, "{out}");
    assert_ne!(tokens[0], tokens[1], "{out}");
    assert_eq!(tokens[1], tokens[2], "{out}");
}

/// reqwest through the Tower service adapter.
#[cfg(feature = "reqwest")]
#[tokio::test]
async fn reqwest() {
    let out = run("reqwest").await;
    assert!(out.contains("GET items/0: 200 OK"), "{out}");
}

/// Two APIs with different audiences through one routed layer: both tokens prefetched before
/// ready, one token request per API, an origin without a route refused, shut down at the end.
#[tokio::test]
async fn two_apis() {
    let out = run("two_apis").await;
    for line in [
        "ready before prefetch: false",
        "ready after prefetch: true",
        "GET billing items/2: 200 OK",
        "GET files items/2: 200 OK",
        "GET an origin without a route: refused",
        "billing: token requests: 1;",
        "files: token requests: 1;",
        "ready after shutdown: false",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }
}
