//! The error parser takes any bytes, headers included: a typed error, never a panic, a bounded
//! message and a short, printable code. With a secret to redact, no form of it is in what the error shows, wherever
//! the fuzzer puts it (bytes 0xF8..=0xFD, never valid UTF-8, are replaced by its forms).
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use tower_bearer::oauth::Redactor;
use tower_bearer::oauth::response::{parse_error_response, parse_error_response_redacting};

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

fn plant(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 2);
    for &b in data {
        match b {
            0xF8..=0xFD => out.extend_from_slice(FORMS[usize::from(b - 0xF8)].as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (retry_after, body) = data.split_at(data.len().min(16));
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(retry_after) {
        headers.insert(http::header::RETRY_AFTER, value);
    }
    let error = parse_error_response(
        http::StatusCode::BAD_REQUEST,
        &headers,
        body,
        SystemTime::now(),
    );
    assert!(error.to_string().len() < 4_000);
    // The server's code is a short name of visible ASCII (a cut one ends in an ellipsis).
    if let Some(code) = error.code() {
        assert!(code.chars().count() <= 80, "{code}");
        assert!(
            code.chars()
                .all(|c| c.is_ascii_graphic() || c == ' ' || c == '…'),
            "{code:?}"
        );
    }

    let redactor = Redactor::new().basic_credentials("client-id", SECRET);
    let error = parse_error_response_redacting(
        http::StatusCode::BAD_REQUEST,
        &headers,
        &plant(body),
        SystemTime::now(),
        &redactor,
    );
    let shown = format!("{error} {error:?}");
    for form in FORMS {
        assert!(!shown.contains(form), "{form} in {shown}");
    }
});
