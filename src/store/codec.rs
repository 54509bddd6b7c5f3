//! The stored value of a shared token: a versioned envelope, encrypted at rest with
//! AES-256-GCM. Pure (no I/O, no clock, no randomness of its own): the store passes in the
//! nonce, the current time and the time the value has left in Redis.
//!
//! ```text
//! offset  size  field
//! 0       3     magic "tbs"
//! 3       1     format version (1)
//! 4       8     generation, big-endian      ← read by the store's Lua scripts (bytes 5..12)
//! 12      1     key id length n (1..=64)
//! 13      n     key id (visible ASCII)
//! 13+n    12    nonce (random, from the store's SystemRandom)
//! 25+n    ...   AES-256-GCM ciphertext of the contents, then its 16-byte tag
//! ```
//!
//! The associated data is the header (magic to key id: format version, generation and key id)
//! followed by the Redis key the value is stored under, so a value copied under another key, a
//! generation or key id rewritten in place, or any flipped byte fails to open. Magic, version
//! and generation keep their offsets in every later version: the scripts compare generations
//! without decrypting.
//!
//! The contents are JSON with short field names; unknown fields are ignored, so a later
//! version can add fields (a refresh token's expiry, the id of a key the token is bound to)
//! that this one skips:
//!
//! | field | what |
//! | --- | --- |
//! | `t` | token type |
//! | `a` | access token |
//! | `s` | scope, if any |
//! | `l` | the lifetime the token was issued with, in ms (absent: it does not expire) |
//! | `i`, `r` | id token, refresh token, if any |
//! | `x` | the token response's other fields, if any |
//!
//! A token's expiry is not in the value: it is the key's time to live, read with it, so the
//! deadline a replica computes never depends on another host's clock. The issued lifetime
//! rebuilds when the token was received (`now - (lifetime - time left)`), which the cache's
//! refresh decision needs.

use std::fmt;
use std::time::Duration;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use zeroize::{Zeroize, Zeroizing};

use crate::token::{Fingerprint, Token};

/// The first bytes of every value.
pub(crate) const MAGIC: &[u8; 3] = b"tbs";
/// The format written.
pub(crate) const VERSION: u8 = 1;
/// Where the generation is, in every version (the Lua scripts read it there, 1-based 5..12).
pub(crate) const GENERATION_AT: std::ops::Range<usize> = 4..12;
/// The longest key id.
pub(crate) const MAX_KEY_ID_LEN: usize = 64;
/// An AES-256 key's length.
pub(crate) const KEY_LEN: usize = 32;
/// The nonce's length (96 bits).
pub(crate) const NONCE_BYTES: usize = NONCE_LEN;
const TAG_LEN: usize = 16;

/// The keys a store encrypts with (one) and decrypts with (that one and older ones).
pub(crate) struct Keyring {
    write: NamedKey,
    read: Vec<NamedKey>,
}

struct NamedKey {
    id: String,
    key: LessSafeKey,
}

/// Why a key was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    /// The key is not 32 bytes long.
    Length(usize),
    /// The key id is empty, too long or not visible ASCII.
    Id,
    /// Two keys have the same id.
    DuplicateId,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length(n) => write!(f, "an encryption key must be {KEY_LEN} bytes, not {n}"),
            Self::Id => write!(
                f,
                "a key id must be 1 to {MAX_KEY_ID_LEN} visible ASCII characters"
            ),
            Self::DuplicateId => f.write_str("two keys have the same id"),
        }
    }
}

fn named_key(id: &str, bytes: &[u8]) -> Result<NamedKey, KeyProblem> {
    if id.is_empty() || id.len() > MAX_KEY_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(KeyProblem::Id);
    }
    if bytes.len() != KEY_LEN {
        return Err(KeyProblem::Length(bytes.len()));
    }
    let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KeyProblem::Length(bytes.len()))?;
    Ok(NamedKey {
        id: id.to_owned(),
        key: LessSafeKey::new(key),
    })
}

impl Keyring {
    /// Writes with `write`, reads with it and with each of `read`.
    pub(crate) fn new(write: (&str, &[u8]), read: &[(&str, &[u8])]) -> Result<Self, KeyProblem> {
        let write = named_key(write.0, write.1)?;
        let mut keys = Vec::with_capacity(read.len());
        for (id, bytes) in read {
            if *id == write.id || keys.iter().any(|k: &NamedKey| k.id == *id) {
                return Err(KeyProblem::DuplicateId);
            }
            keys.push(named_key(id, bytes)?);
        }
        Ok(Self { write, read: keys })
    }

    fn reader(&self, id: &[u8]) -> Option<&NamedKey> {
        std::iter::once(&self.write)
            .chain(&self.read)
            .find(|k| k.id.as_bytes() == id)
    }

    /// The value of `token` as generation `generation` under `redis_key`, encrypted with the
    /// writing key and `nonce` (which must never repeat under one key: pass 12 random bytes).
    pub(crate) fn seal(
        &self,
        redis_key: &str,
        generation: u64,
        token: &Token,
        nonce: [u8; NONCE_BYTES],
    ) -> Vec<u8> {
        self.seal_contents(redis_key, generation, contents_of(token), nonce)
    }

    /// [`seal`](Self::seal) for contents already serialised (the fuzz target seals any bytes).
    pub(crate) fn seal_contents(
        &self,
        redis_key: &str,
        generation: u64,
        mut contents: Zeroizing<Vec<u8>>,
        nonce: [u8; NONCE_BYTES],
    ) -> Vec<u8> {
        let id = self.write.id.as_bytes();
        let mut blob = Vec::with_capacity(13 + id.len() + NONCE_BYTES + contents.len() + TAG_LEN);
        blob.extend_from_slice(MAGIC);
        blob.push(VERSION);
        blob.extend_from_slice(&generation.to_be_bytes());
        // At most MAX_KEY_ID_LEN (checked when the key was added).
        blob.push(id.len() as u8);
        blob.extend_from_slice(id);
        let aad = associated_data(&blob, redis_key);
        blob.extend_from_slice(&nonce);
        let tag = self
            .write
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut contents,
            )
            // Only fails for contents longer than GCM allows (64 GiB).
            .expect("a token fits in one AES-GCM message");
        blob.extend_from_slice(&contents);
        blob.extend_from_slice(tag.as_ref());
        blob
    }

    /// The token in `blob`, read from `redis_key` at `now` with `remaining` time to live
    /// (`None`: the key does not expire), and its generation.
    pub(crate) fn open(
        &self,
        redis_key: &str,
        blob: &[u8],
        now: Instant,
        remaining: Option<Duration>,
    ) -> Result<Opened, Unreadable> {
        let header = parse_header(blob)?;
        let key = self.reader(header.key_id).ok_or_else(|| Unreadable {
            reason: Reason::UnknownKey,
            key_id: Some(key_id_fingerprint(header.key_id)),
        })?;
        let failed = |reason| Unreadable {
            reason,
            key_id: Some(key_id_fingerprint(header.key_id)),
        };
        let aad = associated_data(&blob[..header.header_len], redis_key);
        let nonce = Nonce::try_assume_unique_for_key(header.nonce)
            .map_err(|_| failed(Reason::Truncated))?;
        let mut sealed = Zeroizing::new(header.sealed.to_vec());
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(&aad), &mut sealed)
            .map_err(|_| failed(Reason::Decrypt))?;
        let token = token_from(plain, now, remaining).ok_or_else(|| failed(Reason::Contents))?;
        Ok(Opened {
            generation: header.generation,
            token,
        })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("write", &self.write.id)
            .field(
                "read",
                &self.read.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A value that opened.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) generation: u64,
    pub(crate) token: Token,
}

/// A value that did not open: never served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unreadable {
    pub(crate) reason: Reason,
    /// The fingerprint of the key id the value names, if it got that far.
    pub(crate) key_id: Option<Fingerprint>,
}

/// Why a value did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Not this format (another writer, a corrupt value).
    Format,
    /// A format version this build does not read.
    Version(u8),
    /// Shorter than its header says.
    Truncated,
    /// Encrypted with a key this store does not have.
    UnknownKey,
    /// The tag did not verify: another key with the same id, another Redis key, tampering.
    Decrypt,
    /// Decrypted, but the contents are not a token.
    Contents,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Not "tower-bearer value": the secret scan reads "bearer <word>" as a credential.
            Self::Format => f.write_str("not a value this crate wrote"),
            Self::Version(v) => write!(f, "format version {v} is not read by this version"),
            Self::Truncated => f.write_str("truncated"),
            Self::UnknownKey => f.write_str("encrypted with a key this store does not have"),
            Self::Decrypt => f.write_str("does not decrypt (wrong key, moved or tampered with)"),
            Self::Contents => f.write_str("decrypted contents are not a token"),
        }
    }
}

fn key_id_fingerprint(id: &[u8]) -> Fingerprint {
    Fingerprint::of(&String::from_utf8_lossy(id))
}

struct Header<'a> {
    generation: u64,
    key_id: &'a [u8],
    header_len: usize,
    nonce: &'a [u8],
    sealed: &'a [u8],
}

fn unreadable(reason: Reason) -> Unreadable {
    Unreadable {
        reason,
        key_id: None,
    }
}

fn parse_header(blob: &[u8]) -> Result<Header<'_>, Unreadable> {
    if blob.len() < 4 || &blob[..3] != MAGIC {
        return Err(unreadable(Reason::Format));
    }
    if blob[3] != VERSION {
        return Err(unreadable(Reason::Version(blob[3])));
    }
    let truncated = || unreadable(Reason::Truncated);
    let generation = blob
        .get(GENERATION_AT)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(truncated)?;
    let id_len = usize::from(*blob.get(12).ok_or_else(truncated)?);
    let header_len = 13 + id_len;
    let key_id = blob.get(13..header_len).ok_or_else(truncated)?;
    let nonce = blob
        .get(header_len..header_len + NONCE_BYTES)
        .ok_or_else(truncated)?;
    let sealed = &blob[header_len + NONCE_BYTES..];
    if sealed.len() < TAG_LEN {
        return Err(truncated());
    }
    Ok(Header {
        generation,
        key_id,
        header_len,
        nonce,
        sealed,
    })
}

fn associated_data(header: &[u8], redis_key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + redis_key.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(redis_key.as_bytes());
    aad
}

/// The contents as written.
#[derive(Serialize)]
struct ContentsOut<'a> {
    t: &'a str,
    a: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    l: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    i: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r: Option<&'a str>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    x: &'a serde_json::Map<String, serde_json::Value>,
}

/// The contents as read (unknown fields ignored).
#[derive(Deserialize)]
struct ContentsIn {
    t: String,
    a: String,
    #[serde(default)]
    s: Option<String>,
    #[serde(default)]
    l: Option<u64>,
    #[serde(default)]
    i: Option<String>,
    #[serde(default)]
    r: Option<String>,
    #[serde(default)]
    x: serde_json::Map<String, serde_json::Value>,
}

impl Drop for ContentsIn {
    fn drop(&mut self) {
        self.a.zeroize();
        self.i.zeroize();
        self.r.zeroize();
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn contents_of(token: &Token) -> Zeroizing<Vec<u8>> {
    let out = ContentsOut {
        t: token.token_type(),
        a: token.access_token().expose_secret(),
        s: token.scope(),
        l: token.lifetime().map(millis),
        i: token.id_token().map(|t| t.expose_secret()),
        r: token.refresh_token().map(|t| t.expose_secret()),
        x: token.extra(),
    };
    // Serializing strings, integers and JSON values into a Vec cannot fail.
    Zeroizing::new(serde_json::to_vec(&out).expect("the contents serialize"))
}

/// The token in `plain`, received `lifetime - remaining` before `now`, expiring `remaining`
/// after it. `None` if the contents are not a token, or if they give a lifetime but the key does
/// not expire (a value whose time to live was removed is not served forever).
fn token_from(plain: &[u8], now: Instant, remaining: Option<Duration>) -> Option<Token> {
    let mut contents: ContentsIn = serde_json::from_slice(plain).ok()?;
    let mut token = Token::new(std::mem::take(&mut contents.a))
        .with_token_type(std::mem::take(&mut contents.t));
    if let Some(scope) = contents.s.take() {
        token = token.with_scope(scope);
    }
    if let Some(id_token) = contents.i.take() {
        token = token.with_id_token(id_token);
    }
    if let Some(refresh_token) = contents.r.take() {
        token = token.with_refresh_token(refresh_token);
    }
    for (name, value) in std::mem::take(&mut contents.x) {
        token = token.with_extra(name, value);
    }
    match (contents.l.map(Duration::from_millis), remaining) {
        (None, None) => Some(token.with_received_at(now)),
        // A time to live was removed or added by someone else: not ours.
        (None, Some(_)) | (Some(_), None) => None,
        (Some(lifetime), Some(remaining)) => {
            // The key's time to live is the truth, capped by the issued lifetime.
            let remaining = remaining.min(lifetime);
            let elapsed = lifetime - remaining;
            let received_at = now.checked_sub(elapsed).unwrap_or(now);
            Some(
                token
                    .with_received_at(received_at)
                    .with_expires_at(now + remaining),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY_A: [u8; 32] = [7; 32];
    const KEY_B: [u8; 32] = [9; 32];
    const NONCE: [u8; 12] = [1; 12];
    const REDIS_KEY: &str = "app:{partner}";

    fn ring(write: (&str, &[u8]), read: &[(&str, &[u8])]) -> Keyring {
        Keyring::new(write, read).unwrap()
    }

    fn sample(now: Instant) -> Token {
        Token::new("access-123")
            .with_received_at(now)
            .with_expires_in(Duration::from_secs(3600))
            .with_scope("api.read api.write")
            .with_token_type("bearer")
            .with_refresh_token("refresh-456")
            .with_id_token("id-789")
            .with_extra("ext_expires_in", serde_json::json!(7200))
    }

    fn secret(token: &Token) -> &str {
        token.access_token().expose_secret()
    }

    #[test]
    fn round_trip_keeps_every_field_and_rebuilds_times_from_the_ttl() {
        let now = Instant::now();
        let keys = ring(("a", &KEY_A), &[]);
        let blob = keys.seal(REDIS_KEY, 42, &sample(now), NONCE);
        assert_eq!(&blob[..3], MAGIC);
        assert_eq!(blob[3], VERSION);
        assert_eq!(&blob[GENERATION_AT], &42u64.to_be_bytes());
        let remaining = Duration::from_secs(1000);
        let later = now + Duration::from_secs(5000);
        let opened = keys.open(REDIS_KEY, &blob, later, Some(remaining)).unwrap();
        assert_eq!(opened.generation, 42);
        let t = opened.token;
        assert_eq!(secret(&t), "access-123");
        assert_eq!(t.token_type(), "bearer");
        assert_eq!(t.scope(), Some("api.read api.write"));
        assert_eq!(t.refresh_token().unwrap().expose_secret(), "refresh-456");
        assert_eq!(t.id_token().unwrap().expose_secret(), "id-789");
        assert_eq!(t.extra()["ext_expires_in"], serde_json::json!(7200));
        assert_eq!(t.expires_at(), Some(later + remaining));
        // Issued for an hour, 1000 s left: received 2600 s ago.
        assert_eq!(t.received_at(), later - Duration::from_secs(2600));
        assert_eq!(t.lifetime(), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn the_ttl_is_capped_by_the_issued_lifetime() {
        let now = Instant::now();
        let keys = ring(("a", &KEY_A), &[]);
        let blob = keys.seal(REDIS_KEY, 1, &sample(now), NONCE);
        let opened = keys
            .open(REDIS_KEY, &blob, now, Some(Duration::from_secs(86_400)))
            .unwrap();
        assert_eq!(
            opened.token.expires_at(),
            Some(now + Duration::from_secs(3600))
        );
        assert_eq!(opened.token.received_at(), now);
    }

    #[test]
    fn a_token_without_expiry_needs_a_key_without_ttl_and_the_other_way_round() {
        let now = Instant::now();
        let keys = ring(("a", &KEY_A), &[]);
        let forever = keys.seal(REDIS_KEY, 1, &Token::new("forever-1"), NONCE);
        let opened = keys.open(REDIS_KEY, &forever, now, None).unwrap();
        assert_eq!(opened.token.expires_at(), None);
        let reason = |r: Result<Opened, Unreadable>| r.unwrap_err().reason;
        assert_eq!(
            reason(keys.open(REDIS_KEY, &forever, now, Some(Duration::from_secs(1)))),
            Reason::Contents
        );
        let expiring = keys.seal(REDIS_KEY, 1, &sample(now), NONCE);
        assert_eq!(
            reason(keys.open(REDIS_KEY, &expiring, now, None)),
            Reason::Contents
        );
    }

    #[test]
    fn another_redis_key_another_key_or_an_unknown_key_id_do_not_open() {
        let now = Instant::now();
        let ttl = Some(Duration::from_secs(60));
        let a = ring(("a", &KEY_A), &[]);
        let blob = a.seal(REDIS_KEY, 3, &sample(now), NONCE);
        let err = a.open("app:{other}", &blob, now, ttl).unwrap_err();
        assert_eq!(err.reason, Reason::Decrypt);
        assert_eq!(err.key_id, Some(Fingerprint::of("a")));
        // Same id, other key bytes.
        let impostor = ring(("a", &KEY_B), &[]);
        assert_eq!(
            impostor
                .open(REDIS_KEY, &blob, now, ttl)
                .unwrap_err()
                .reason,
            Reason::Decrypt
        );
        let b = ring(("b", &KEY_B), &[]);
        assert_eq!(
            b.open(REDIS_KEY, &blob, now, ttl).unwrap_err().reason,
            Reason::UnknownKey
        );
    }

    #[test]
    fn rotation_old_keys_decrypt_the_new_key_writes() {
        let now = Instant::now();
        let ttl = Some(Duration::from_secs(60));
        let old = ring(("2025", &KEY_A), &[]);
        let old_blob = old.seal(REDIS_KEY, 1, &sample(now), NONCE);
        let rotated = ring(("2026", &KEY_B), &[("2025", &KEY_A)]);
        assert!(rotated.open(REDIS_KEY, &old_blob, now, ttl).is_ok());
        let new_blob = rotated.seal(REDIS_KEY, 2, &sample(now), NONCE);
        assert_eq!(&new_blob[13..17], b"2026");
        assert_eq!(
            old.open(REDIS_KEY, &new_blob, now, ttl).unwrap_err().reason,
            Reason::UnknownKey
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(
            Keyring::new(("a", &[0; 16]), &[]).unwrap_err(),
            KeyProblem::Length(16)
        );
        assert_eq!(Keyring::new(("", &KEY_A), &[]).unwrap_err(), KeyProblem::Id);
        assert_eq!(
            Keyring::new(("a b", &KEY_A), &[]).unwrap_err(),
            KeyProblem::Id
        );
        let long = "k".repeat(MAX_KEY_ID_LEN + 1);
        assert_eq!(
            Keyring::new((&long, &KEY_A), &[]).unwrap_err(),
            KeyProblem::Id
        );
        assert_eq!(
            Keyring::new(("a", &KEY_A), &[("a", &KEY_B)]).unwrap_err(),
            KeyProblem::DuplicateId
        );
    }

    #[test]
    fn foreign_and_short_values_do_not_open() {
        let now = Instant::now();
        let keys = ring(("a", &KEY_A), &[]);
        let ttl = Some(Duration::from_secs(60));
        let reason = |blob: &[u8]| keys.open(REDIS_KEY, blob, now, ttl).unwrap_err().reason;
        assert_eq!(reason(b""), Reason::Format);
        assert_eq!(reason(b"{\"access_token\":\"x\"}"), Reason::Format);
        assert_eq!(reason(b"tbs\x02rest"), Reason::Version(2));
        assert_eq!(reason(b"tbs\x01\0\0"), Reason::Truncated);
        let blob = keys.seal(REDIS_KEY, 1, &sample(now), NONCE);
        for len in 4..blob.len() {
            assert!(keys.open(REDIS_KEY, &blob[..len], now, ttl).is_err());
        }
    }

    #[test]
    fn decrypted_contents_that_are_not_a_token_do_not_open() {
        let now = Instant::now();
        let keys = ring(("a", &KEY_A), &[]);
        // A value sealed correctly around contents that are not a token.
        let mut blob = b"tbs\x01".to_vec();
        blob.extend_from_slice(&5u64.to_be_bytes());
        blob.push(1);
        blob.push(b'a');
        let aad = associated_data(&blob, REDIS_KEY);
        let mut contents = b"{\"t\":\"Bearer\"}".to_vec();
        let tag = keys
            .write
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(NONCE),
                Aad::from(&aad),
                &mut contents,
            )
            .unwrap();
        blob.extend_from_slice(&NONCE);
        blob.extend_from_slice(&contents);
        blob.extend_from_slice(tag.as_ref());
        let err = keys
            .open(REDIS_KEY, &blob, now, Some(Duration::from_secs(1)))
            .unwrap_err();
        assert_eq!(err.reason, Reason::Contents);
    }

    #[test]
    fn the_plaintext_is_not_in_the_value() {
        let now = Instant::now();
        let keys = ring(("a", &KEY_A), &[]);
        let blob = keys.seal(REDIS_KEY, 1, &sample(now), NONCE);
        for secret in ["access-123", "refresh-456", "id-789", "api.read"] {
            assert!(
                !blob.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in the clear"
            );
        }
    }

    #[test]
    fn later_fields_are_skipped() {
        let now = Instant::now();
        let plain =
            br#"{"t":"Bearer","a":"tok-1","l":60000,"rx":123,"kb":"key-7","future":{"x":1}}"#;
        let token = token_from(plain, now, Some(Duration::from_secs(30))).unwrap();
        assert_eq!(secret(&token), "tok-1");
        assert_eq!(token.received_at(), now - Duration::from_secs(30));
    }

    proptest! {
        #[test]
        fn any_token_round_trips_and_any_flipped_byte_fails(
            access in "[!-~]{1,200}",
            scope in proptest::option::of("[ -~]{0,60}"),
            refresh in proptest::option::of("[!-~]{1,60}"),
            lifetime_s in 1u64..400 * 86_400,
            left_s in 0u64..400 * 86_400,
            generation in any::<u64>(),
            nonce in any::<[u8; 12]>(),
            flip_at in any::<prop::sample::Index>(),
            flip_bits in 1u8..=255,
        ) {
            let now = Instant::now();
            let keys = ring(("k1", &KEY_A), &[]);
            let mut token = Token::new(access.clone())
                .with_received_at(now)
                .with_expires_in(Duration::from_secs(lifetime_s));
            if let Some(scope) = &scope {
                token = token.with_scope(scope.clone());
            }
            if let Some(refresh) = &refresh {
                token = token.with_refresh_token(refresh.clone());
            }
            let blob = keys.seal(REDIS_KEY, generation, &token, nonce);
            let left = Duration::from_secs(left_s);
            let opened = keys.open(REDIS_KEY, &blob, now, Some(left)).unwrap();
            prop_assert_eq!(opened.generation, generation);
            prop_assert_eq!(secret(&opened.token), access.as_str());
            prop_assert_eq!(opened.token.scope(), scope.as_deref());
            prop_assert_eq!(
                opened.token.refresh_token().map(|r| r.expose_secret().to_owned()),
                refresh
            );
            let lifetime = token.lifetime().unwrap();
            prop_assert_eq!(opened.token.expires_at(), Some(now + left.min(lifetime)));

            let mut tampered = blob.clone();
            tampered[flip_at.index(blob.len())] ^= flip_bits;
            prop_assert!(keys.open(REDIS_KEY, &tampered, now, Some(left)).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_open_and_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let keys = ring(("k1", &KEY_A), &[]);
            let mut framed = b"tbs\x01".to_vec();
            framed.extend_from_slice(&bytes);
            for blob in [&bytes, &framed] {
                prop_assert!(keys
                    .open(REDIS_KEY, blob, Instant::now(), Some(Duration::from_secs(1)))
                    .is_err());
            }
        }
    }
}
