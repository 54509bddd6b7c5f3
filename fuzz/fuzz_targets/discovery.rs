//! Issuer metadata discovery, sans-IO: the well-known URLs of any issuer text and the reading of
//! any metadata body take any input without panicking, and metadata is only ever accepted with
//! exactly the configured issuer and a token endpoint the token URL rules allow (`https://`, or
//! `http://` to a loopback host).
#![no_main]

use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use tower_bearer::oauth::discovery::{metadata_urls, parse_metadata};

const ISSUER: &str = "https://as.example/tenant";

fuzz_target!(|data: &[u8]| {
    // The body as the metadata of a fixed issuer, over https rules.
    if let Ok(metadata) = parse_metadata(ISSUER, StatusCode::OK, data, false) {
        assert_eq!(metadata.issuer(), ISSUER);
        let endpoint: http::Uri = metadata.token_endpoint().trim().parse().unwrap();
        let host = endpoint.host().unwrap_or_default();
        assert!(
            endpoint.scheme_str() == Some("https") || loopback(host),
            "{endpoint}"
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        // The text as an issuer: its URLs, and metadata naming it.
        if let Ok(urls) = metadata_urls(text) {
            for url in &urls {
                assert!(url.parse::<http::Uri>().is_ok(), "{url}");
            }
        }
        let _ = parse_metadata(
            text,
            StatusCode::OK,
            br#"{"issuer":"https://as.example/tenant","token_endpoint":"https://as.example/t"}"#,
            true,
        );
    }
});

/// `localhost`, `127.0.0.0/8` and `::1` (also IPv4-mapped), as the token URL rules say.
fn loopback(host: &str) -> bool {
    use std::net::IpAddr;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}
