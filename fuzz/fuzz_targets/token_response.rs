//! The token response parser takes any bytes, with any status: a token or a typed error,
//! never a panic; a parsed token is always a valid header value with a bounded lifetime.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tower_bearer::oauth::response::parse_token_response;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data.split_first() {
        Some((s, rest)) => (200 + u16::from(*s) % 400, rest),
        None => (200, data),
    };
    let status = http::StatusCode::from_u16(status).unwrap();
    let now = tokio::time::Instant::now();
    if let Ok(token) = parse_token_response(
        status,
        &http::HeaderMap::new(),
        body,
        now,
        SystemTime::now(),
        Duration::from_secs(600),
    ) {
        assert!(token.header_value().is_ok());
        assert!(token.lifetime().unwrap() <= tower_bearer::token::MAX_LIFETIME);
    }
});
