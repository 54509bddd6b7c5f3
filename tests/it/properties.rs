//! Properties over generated inputs: the Basic encoding round-trips, the parsers never panic,
//! and deadline arithmetic never overflows.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, StatusCode};
use proptest::prelude::*;
use tokio::time::Instant;
use tower_bearer::Token;
use tower_bearer::oauth::claims::{ClaimsCheck, decode_claims};
use tower_bearer::oauth::response::{parse_error_response, parse_token_response};
use tower_bearer::oauth::{BasicEncoding, basic_authorization};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// RFC 6749 §2.3.1: form-urlencoded id and secret, decoded by a server, give back exactly
    /// what was sent, whatever they hold (colons, spaces, `%`, `+`, non-ASCII).
    #[test]
    fn basic_form_encoding_round_trips(id in ".{0,40}", secret in ".{0,60}") {
        let value = basic_authorization(&id, &secret, BasicEncoding::FormUrlEncoded).unwrap();
        let b64 = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
        let (enc_id, enc_secret) = decoded.split_once(':').expect("one unencoded colon");
        let back = |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().unwrap().1.into_owned();
        prop_assert_eq!(back(enc_id), id);
        prop_assert_eq!(back(enc_secret), secret);
    }

    /// Raw RFC 7617: the first colon splits id and secret, so an id with a colon is refused.
    #[test]
    fn basic_raw_round_trips_or_refuses(id in "[^:]{0,30}(:[^:]{0,5})?", secret in ".{0,40}") {
        match basic_authorization(&id, &secret, BasicEncoding::Raw) {
            Ok(value) => {
                prop_assert!(!id.contains(':'));
                let b64 = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
                let decoded = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
                prop_assert_eq!(decoded, format!("{id}:{secret}"));
            }
            Err(_) => prop_assert!(id.contains(':')),
        }
    }

    /// Any `expires_in` (any JSON number or string) gives a token with a finite lifetime of at
    /// most a year, or a typed error; never a panic.
    #[test]
    fn expiry_arithmetic_never_overflows(expires_in in prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
        ".{0,12}".prop_map(|s| serde_json::Value::String(s).to_string()),
    ], issued_at in any::<u64>()) {
        let body = format!(r#"{{"access_token":"t","expires_in":{expires_in},"issued_at":"{issued_at}"}}"#);
        let received = Instant::now();
        if let Ok(token) = parse_token_response(StatusCode::OK, &HeaderMap::new(), body.as_bytes(), received, SystemTime::now(), Duration::from_secs(600)) {
            let lifetime = token.lifetime().unwrap();
            prop_assert!(lifetime <= tower_bearer::token::MAX_LIFETIME);
            prop_assert!(token.expires_at().unwrap() >= received);
        }
    }

    /// The token and error parsers take any bytes without panicking, and errors never repeat a
    /// long run of the body verbatim beyond the sanitised snippet.
    #[test]
    fn parsers_take_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
        let status = StatusCode::from_u16(status).unwrap();
        let _ = parse_token_response(status, &HeaderMap::new(), &body, Instant::now(), SystemTime::now(), Duration::from_secs(60));
        let error = parse_error_response(status, &HeaderMap::new(), &body, SystemTime::now());
        prop_assert!(error.to_string().len() < 2_000);
    }

    /// The claims decoder takes any string without panicking.
    #[test]
    fn claims_decoder_takes_any_string(token in ".{0,200}", payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_claims(&token);
        let jwt = format!("e30.{}.sig", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&payload));
        let _ = ClaimsCheck::new().audience("a").require_role("r").check(&jwt, SystemTime::now());
    }

    /// Builders of `Token` take any lifetime without overflow.
    #[test]
    fn token_lifetimes_are_clamped(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let token = Token::new("t").with_expires_in(Duration::new(secs, nanos));
        prop_assert!(token.lifetime().unwrap() <= tower_bearer::token::MAX_LIFETIME);
    }
}
