//! The error parser takes any bytes, headers included: a typed error, never a panic, and a
//! bounded message.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use tower_bearer::oauth::response::parse_error_response;

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
});
