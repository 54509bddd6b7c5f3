//! The value codec under a fixed keyring, for the fuzz target `store_value` only (compiled
//! with `--cfg fuzzing`, which cargo fuzz sets; never part of the API).

use std::time::Duration;

use tokio::time::Instant;
use zeroize::Zeroizing;

use super::codec::Keyring;
use crate::token::Token;

/// The Redis key the values are sealed under.
pub const REDIS_KEY: &str = "fuzz:{flow}";

fn keyring() -> Keyring {
    Keyring::new(("current", &[7; 32]), &[("old", &[9; 32])]).expect("valid keys")
}

/// Opens `blob` read from [`REDIS_KEY`] with `remaining` time to live: its generation and
/// token, or why it does not open.
pub fn open(blob: &[u8], remaining: Option<Duration>) -> Result<(u64, Token), String> {
    keyring()
        .open(REDIS_KEY, blob, Instant::now(), remaining)
        .map(|opened| (opened.generation, opened.token))
        .map_err(|unreadable| format!("{} {unreadable:?}", unreadable.reason))
}

/// A value of generation `generation` whose encrypted contents are `contents`, whatever they
/// are: what a writer with the key (a later version, a bug) could store.
pub fn seal_contents(contents: &[u8], generation: u64, nonce: [u8; 12]) -> Vec<u8> {
    keyring().seal_contents(
        REDIS_KEY,
        generation,
        Zeroizing::new(contents.to_vec()),
        nonce,
    )
}

/// `token` sealed as generation `generation`.
pub fn seal(token: &Token, generation: u64, nonce: [u8; 12]) -> Vec<u8> {
    keyring().seal(REDIS_KEY, generation, token, nonce)
}
