//! The shared token store's value codec (what `RedisStore` reads back from Redis, untrusted):
//! any bytes read as a value never open and never panic; any contents sealed under the right
//! key (a later format, a writer's bug) either open into a token that round-trips or are
//! refused, never panic, and never show the token in `Debug`; one flipped byte in a sealed
//! value never opens.
//!
//! Input: one byte of mode (the time to live the value has left), then the bytes.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;
use tower_bearer::store::fuzzing::{open, seal, seal_contents};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let remaining = match mode % 3 {
        0 => None,
        1 => Some(Duration::from_millis(u64::from(mode) * 97)),
        _ => Some(Duration::ZERO),
    };

    // Bytes as they may come back from Redis: never a token (it takes the key to seal one).
    assert!(open(bytes, remaining).is_err());

    // The same bytes as the encrypted contents of a value sealed with the right key.
    let generation = u64::from(mode) << 40 | bytes.len() as u64;
    let sealed = seal_contents(bytes, generation, [mode; 12]);
    if let Ok((opened_generation, token)) = open(&sealed, remaining) {
        assert_eq!(opened_generation, generation);
        let secret = token.access_token().expose_secret().to_owned();
        // (Unless the fuzzer made it also the token type, the scope or an extra field's name,
        // which `Debug` shows.)
        let public = format!(
            "{} {:?} {:?}",
            token.token_type(),
            token.scope(),
            token.extra().keys().collect::<Vec<_>>()
        );
        if secret.len() >= 16 && !public.contains(&secret) {
            let shown = format!("{token:?}");
            assert!(!shown.contains(&secret), "{shown}");
        }
        // What opened seals and opens again to the same token.
        let again = seal(&token, generation + 1, [mode ^ 0xff; 12]);
        let (_, reopened) = open(&again, remaining).expect("a token this codec read reseals");
        assert_eq!(reopened.access_token().expose_secret(), secret);
        assert_eq!(reopened.token_type(), token.token_type());
        assert_eq!(reopened.scope(), token.scope());
        assert_eq!(reopened.lifetime(), token.lifetime());
        assert_eq!(
            reopened.refresh_token().map(|t| t.expose_secret().to_owned()),
            token.refresh_token().map(|t| t.expose_secret().to_owned())
        );
        assert_eq!(reopened.extra(), token.extra());
    }

    // One flipped byte, anywhere, and the value does not open.
    let at = (usize::from(mode) * 31 + bytes.len()) % sealed.len();
    let mut flipped = sealed;
    flipped[at] ^= 1 << (mode % 8);
    assert!(open(&flipped, remaining).is_err());
});
