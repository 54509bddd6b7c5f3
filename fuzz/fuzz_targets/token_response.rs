//! The token response parser takes any bytes, with any status: a token or a typed error,
//! never a panic; a parsed token is always a valid header value with a bounded lifetime. With a
//! secret to redact, no form of it is in an error, wherever the fuzzer puts it (bytes
//! 0xF8..=0xFD, never valid UTF-8, are replaced by its forms).
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tower_bearer::oauth::Redactor;
use tower_bearer::oauth::response::parse_token_response_redacting;

/// The secret, and the forms a server echoes it in: raw, form-encoded, percent-encoded (RFC
/// 3986), base64 (standard and URL-safe).
const SECRET: &str = "Q3h8Q~Zt2 x+y&z";
const FORMS: [&str; 6] = [
    SECRET,
    "Q3h8Q%7EZt2+x%2By%26z",
    "Q3h8Q~Zt2%20x%2By%26z",
    "Q3h8Q%7EZt2%20x%2By%26z",
    "UTNoOFF+WnQyIHgreSZ6",
    "UTNoOFF-WnQyIHgreSZ6",
];

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data.split_first() {
        Some((s, rest)) => (200 + u16::from(*s) % 400, rest),
        None => (200, data),
    };
    let status = http::StatusCode::from_u16(status).unwrap();
    let mut planted = Vec::with_capacity(body.len() * 2);
    for &b in body {
        match b {
            0xF8..=0xFD => planted.extend_from_slice(FORMS[usize::from(b - 0xF8)].as_bytes()),
            _ => planted.push(b),
        }
    }
    let redactor = Redactor::new().secret(SECRET);
    let now = tokio::time::Instant::now();
    match parse_token_response_redacting(
        status,
        &http::HeaderMap::new(),
        &planted,
        now,
        SystemTime::now(),
        Duration::from_secs(600),
        &redactor,
    ) {
        Ok(token) => {
            assert!(token.header_value().is_ok());
            assert!(token.lifetime().unwrap() <= tower_bearer::token::MAX_LIFETIME);
        }
        Err(error) => {
            let shown = format!("{error} {error:?}");
            for form in FORMS {
                assert!(!shown.contains(form), "{form} in {shown}");
            }
        }
    }
});
