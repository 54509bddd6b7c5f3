//! The JWT claims decoder and check take any string without panicking.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use tower_bearer::oauth::claims::{ClaimsCheck, decode_claims};

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = decode_claims(token);
        let _ = ClaimsCheck::new()
            .audience("api://x")
            .require_role("ProviderApi.Access")
            .issuer("https://issuer/")
            .check(token, SystemTime::now());
    }
});
