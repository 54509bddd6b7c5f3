//! [`TokenStore`]: a token store shared by the replicas of a fleet, so that the whole fleet
//! makes one token request per token lifetime instead of one per replica.
//!
//! A [`TokenCache`](crate::TokenCache) with a store
//! ([`TokenCacheBuilder::store`](crate::TokenCacheBuilder::store)) consults it only when it has
//! to fetch: on a local miss and on a refresh, never on a warm request (the hot path is the same
//! instructions with or without a store). Its fetch then goes:
//!
//! ```text
//!                load ──── a usable token ─────────────────────────────► use it
//!                  │
//!              no token, or due for refresh
//!                  │
//!             try_lease ── held by another replica ── wait_changed, load ─► use it
//!                  │                                        │
//!                 won                               wait bound reached
//!                  │                                        │
//!   load again if the lease's fence moved (someone wrote) ──┤
//!                  │                                        ▼
//!           still nothing ──► call the source ──► save (fenced) ──► use it
//! ```
//!
//! - The lease is an efficiency lock, not a correctness lock: client-credentials tokens do not
//!   invalidate each other, so a lost or lapsed lease costs one extra token request. One
//!   lease per key, no consensus, and every failure opens the way to a local fetch.
//! - A replica that finds the lease held waits for a lease, a poll and a fetch timeout before
//!   it fetches itself: long enough for a dead holder's lease to expire and for the replica that
//!   takes it over to fetch, so a crashed holder costs one token request, not one per replica.
//!   The fetch waits; a request waits no longer than its
//!   [`max_wait`](crate::TokenCacheBuilder::max_wait) (10 s by default), and later requests get
//!   the token the fetch brings.
//! - A save is fenced by the generation the holder saw when it took the lease: a holder whose
//!   lease lapsed (a fetch slower than the lease, a paused process) never overwrites a newer
//!   token.
//! - A stored token's remaining lifetime is read with it (the key's time to live), so no replica
//!   depends on another host's clock.
//! - Every store call runs under the cache's own timeout, and a store that fails is skipped for
//!   a while: a failing store never fails a request that the token source could serve.
//! - A `401` removes the shared token only if the store still holds the refused generation, so
//!   many replicas reporting the same token cause one new fetch.
//!
//! [`MemoryStore`] is the in-process implementation, for tests and for several caches in one
//! process; `RedisStore` (feature `redis`) is the one for fleets, on Redis or Valkey.

#[cfg(feature = "redis")]
mod codec;
// The value codec for the fuzz target `store_value` (cargo fuzz builds with `--cfg fuzzing`);
// not part of the API.
#[cfg(all(fuzzing, feature = "redis"))]
#[doc(hidden)]
pub mod fuzzing;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::token::Token;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisStore, RedisStoreBuilder};
pub use memory::MemoryStore;

/// Where a fleet shares its tokens; see the [module docs](self) for the protocol the cache runs
/// over these calls.
///
/// Object-safe: the cache holds a `Box<dyn TokenStore>`, and calls it only on a fetch, so the
/// boxed futures cost nothing that matters. Each call may take as long as it likes: the cache
/// puts its own timeout around every call.
///
/// A store of your own implements five calls (the other two have defaults); here one that
/// counts the loads of the [`MemoryStore`] it wraps:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::time::Duration;
/// use futures_util::future::BoxFuture;
/// use tower_bearer::Token;
/// use tower_bearer::store::*;
///
/// type Call<'a, T> = BoxFuture<'a, Result<T, StoreError>>;
///
/// #[derive(Default)]
/// struct Counting { inner: MemoryStore, loads: AtomicUsize }
///
/// impl TokenStore for Counting {
///     fn load<'a>(&'a self, key: &'a StoreKey) -> Call<'a, Option<Stored>> {
///         self.loads.fetch_add(1, Ordering::Relaxed);
///         self.inner.load(key)
///     }
///     fn try_lease<'a>(&'a self, key: &'a StoreKey, ttl: Duration) -> Call<'a, Lease> {
///         self.inner.try_lease(key, ttl)
///     }
///     fn save<'a>(
///         &'a self, key: &'a StoreKey, lease: &'a LeaseId, fence: u64, token: &'a Token,
///     ) -> Call<'a, Saved> {
///         self.inner.save(key, lease, fence, token)
///     }
///     fn release<'a>(&'a self, key: &'a StoreKey, lease: &'a LeaseId) -> Call<'a, ()> {
///         self.inner.release(key, lease)
///     }
///     fn remove<'a>(&'a self, key: &'a StoreKey, generation: u64) -> Call<'a, bool> {
///         self.inner.remove(key, generation)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = Counting::default();
/// assert!(store.load(&StoreKey::new("app", "api")).await.unwrap().is_none());
/// assert_eq!(store.loads.load(Ordering::Relaxed), 1);
/// # }
/// ```
pub trait TokenStore: Send + Sync + 'static {
    /// The token stored under `key`, with its generation, and with an expiry taken from the
    /// time it has left in the store (`Token::with_expires_in`), or `None`.
    ///
    /// A value that cannot be read (corrupt, written under another key, encrypted with an
    /// unknown key) is `None`, never an error that would stop the fleet from replacing it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::Token;
    /// use tower_bearer::store::{Lease, MemoryStore, StoreKey, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
    /// assert!(store.load(&key).await.unwrap().is_none());
    /// let Lease::Won { id, fence } = store.try_lease(&key, Duration::from_secs(5)).await.unwrap()
    /// else { unreachable!() };
    /// let token = Token::new("t").with_expires_in(Duration::from_secs(60));
    /// store.save(&key, &id, fence, &token).await.unwrap();
    /// let stored = store.load(&key).await.unwrap().unwrap();
    /// assert_eq!(stored.token.fingerprint(), token.fingerprint());
    /// # }
    /// ```
    fn load<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<Option<Stored>, StoreError>>;

    /// Tries to take the lease to fetch the token for `key`, for `ttl`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::{Lease, MemoryStore, StoreKey, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
    /// let ttl = Duration::from_secs(5);
    /// assert!(matches!(store.try_lease(&key, ttl).await.unwrap(), Lease::Won { fence: 0, .. }));
    /// // Another replica asking now waits for the holder's token.
    /// assert_eq!(store.try_lease(&key, ttl).await.unwrap(), Lease::Held);
    /// # }
    /// ```
    fn try_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>>;

    /// Stores `token` under `key` unless a generation newer than `fence` is stored already, and
    /// releases `lease` if it is still this holder's. The token's remaining lifetime is the
    /// entry's time to live.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::Token;
    /// use tower_bearer::store::{Lease, MemoryStore, Saved, StoreKey, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
    /// let Lease::Won { id, fence } = store.try_lease(&key, Duration::from_secs(5)).await.unwrap()
    /// else { unreachable!() };
    /// let token = Token::new("t").with_expires_in(Duration::from_secs(60));
    /// assert_eq!(store.save(&key, &id, fence, &token).await.unwrap(), Saved::Stored(1));
    /// // A holder whose lease lapsed, still fenced at 0, cannot overwrite generation 1.
    /// assert_eq!(store.save(&key, &id, fence, &token).await.unwrap(), Saved::Newer(1));
    /// # }
    /// ```
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
        fence: u64,
        token: &'a Token,
    ) -> BoxFuture<'a, Result<Saved, StoreError>>;

    /// Releases `lease` if it is still this holder's (the fetch failed).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::{Lease, MemoryStore, StoreKey, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
    /// let ttl = Duration::from_secs(5);
    /// let Lease::Won { id, .. } = store.try_lease(&key, ttl).await.unwrap() else { unreachable!() };
    /// store.release(&key, &id).await.unwrap();
    /// // The next replica can take the lease at once.
    /// assert!(matches!(store.try_lease(&key, ttl).await.unwrap(), Lease::Won { .. }));
    /// # }
    /// ```
    fn release<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Releases `lease` if it is still this holder's and makes the whole fleet wait `delay`
    /// before fetching again: the token endpoint answered the holder with a `Retry-After`.
    /// [`try_lease`](Self::try_lease) answers [`Lease::BackingOff`] until then. `reason`
    /// (an error kind's name) tells the others why.
    ///
    /// The default only releases the lease: each replica then learns the `Retry-After` itself.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::{Lease, MemoryStore, StoreKey, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
    /// let ttl = Duration::from_secs(5);
    /// let Lease::Won { id, .. } = store.try_lease(&key, ttl).await.unwrap() else { unreachable!() };
    /// store.back_off(&key, &id, Duration::from_secs(30), "rate_limited").await.unwrap();
    /// let Lease::BackingOff { remaining, reason } = store.try_lease(&key, ttl).await.unwrap()
    /// else { unreachable!() };
    /// assert_eq!((remaining, reason.as_str()), (Duration::from_secs(30), "rate_limited"));
    /// # }
    /// ```
    fn back_off<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
        delay: Duration,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (delay, reason);
        self.release(key, lease)
    }

    /// Removes the token stored under `key` if it is still generation `generation` (it was
    /// refused with a `401`); returns whether it was removed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::Token;
    /// use tower_bearer::store::{Lease, MemoryStore, StoreKey, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
    /// # let Lease::Won { id, fence } = store.try_lease(&key, Duration::from_secs(5)).await.unwrap()
    /// # else { unreachable!() };
    /// # store.save(&key, &id, fence, &Token::new("t")).await.unwrap();
    /// // Generation 1 is stored; a replica refused with an older token removes nothing.
    /// assert!(!store.remove(&key, 0).await.unwrap());
    /// assert!(store.remove(&key, 1).await.unwrap());
    /// assert!(store.load(&key).await.unwrap().is_none());
    /// # }
    /// ```
    fn remove<'a>(
        &'a self,
        key: &'a StoreKey,
        generation: u64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Returns when the entry under `key` may have changed, or after `at_most`. The default
    /// waits `at_most`: the cache then loads again (polling with backoff); a store that can be
    /// told of changes (notifications) returns sooner.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::{MemoryStore, StoreKey, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
    /// let start = tokio::time::Instant::now();
    /// // Nothing changes: it returns after `at_most`.
    /// store.wait_changed(&key, Duration::from_secs(2)).await;
    /// assert_eq!(start.elapsed(), Duration::from_secs(2));
    /// # }
    /// ```
    fn wait_changed<'a>(&'a self, key: &'a StoreKey, at_most: Duration) -> BoxFuture<'a, ()> {
        let _ = key;
        Box::pin(tokio::time::sleep(at_most))
    }
}

/// A token read from a store, with the generation it was stored as.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::Token;
/// use tower_bearer::store::{Lease, MemoryStore, StoreKey, TokenStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
/// # let Lease::Won { id, fence } = store.try_lease(&key, Duration::from_secs(5)).await.unwrap()
/// # else { unreachable!() };
/// # store.save(&key, &id, fence, &Token::new("t")).await.unwrap();
/// let stored = store.load(&key).await.unwrap().unwrap();
/// assert_eq!(stored.generation, 1);
/// assert_eq!(stored.token.fingerprint(), Token::new("t").fingerprint());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Stored {
    /// The token; its expiry is the time it had left in the store.
    pub token: Token,
    /// Increases with each token saved under the key; the fence of the next save.
    pub generation: u64,
}

/// What [`TokenStore::try_lease`] got.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::store::{Lease, MemoryStore, StoreKey, TokenStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
/// match store.try_lease(&key, Duration::from_secs(5)).await.unwrap() {
///     // Fetch, then `save(&key, &id, fence, &token)` or `release(&key, &id)`.
///     Lease::Won { id: _, fence } => assert_eq!(fence, 0),
///     Lease::Held => unreachable!("nobody else holds it"),
///     _ => unreachable!("nobody backs off"),
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lease {
    /// This caller holds the lease; it fetches, then saves or releases.
    Won {
        /// The holder's id, for the save or release.
        id: LeaseId,
        /// The last generation saved under the key when the lease was taken: the save is
        /// refused if a newer one is stored by then.
        fence: u64,
    },
    /// Another replica holds it: wait for its token.
    Held,
    /// The token endpoint asked a replica to wait ([`TokenStore::back_off`]): no replica
    /// fetches for `remaining`.
    BackingOff {
        /// How much longer every replica waits.
        remaining: Duration,
        /// What the endpoint said, as the replica that was told recorded it (an error kind's
        /// name, such as `rate_limited`).
        reason: String,
    },
}

/// Identifies a lease holder: random, so a holder whose lease lapsed cannot release the next
/// holder's lease.
///
/// ```
/// use tower_bearer::store::LeaseId;
///
/// let (a, b) = (LeaseId::random(), LeaseId::random());
/// assert_ne!(a, b);
/// // `Debug` shows a prefix only.
/// assert_eq!(format!("{a:?}"), format!("LeaseId({})", &a.as_str()[..8]));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LeaseId(String);

impl LeaseId {
    /// A new random id.
    ///
    /// ```
    /// use tower_bearer::store::LeaseId;
    ///
    /// assert_ne!(LeaseId::random(), LeaseId::random());
    /// ```
    pub fn random() -> Self {
        Self(format!(
            "{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        ))
    }

    /// The id as text, as a store keeps it.
    ///
    /// ```
    /// use tower_bearer::store::LeaseId;
    ///
    /// let id = LeaseId::random();
    /// assert_eq!(id.as_str().len(), 32);
    /// assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseId({})", &self.0[..8.min(self.0.len())])
    }
}

/// What [`TokenStore::save`] did.
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::Token;
/// use tower_bearer::store::{Lease, MemoryStore, Saved, StoreKey, TokenStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (store, key) = (MemoryStore::new(), StoreKey::new("app", "api"));
/// let Lease::Won { id, fence } = store.try_lease(&key, Duration::from_secs(5)).await.unwrap()
/// else { unreachable!() };
/// match store.save(&key, &id, fence, &Token::new("t")).await.unwrap() {
///     Saved::Stored(generation) => assert_eq!(generation, 1),
///     Saved::Newer(_) => unreachable!("no other writer"),
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saved {
    /// Stored as this generation.
    Stored(u64),
    /// Not stored: the store holds a newer generation (load it).
    Newer(u64),
}

/// The name of a shared token in a store: two caches with the same key share their tokens, so
/// it must change with everything that makes two tokens different (token URL, client id,
/// scopes, resources, audience, authentication method, credential).
///
/// ```
/// use tower_bearer::store::StoreKey;
///
/// let key = StoreKey::new("billing-api", "partner-a");
/// assert_eq!(key.as_str(), "billing-api:{partner-a}");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreKey(String);

impl StoreKey {
    /// The key `name` under an application `prefix`. The name is put in braces, a Redis
    /// Cluster hash tag, so that a token and its lease live in one slot.
    ///
    /// ```
    /// use tower_bearer::store::StoreKey;
    ///
    /// let key = StoreKey::new("app", "partner-api");
    /// assert_eq!(key.to_string(), "app:{partner-api}");
    /// assert_ne!(key, StoreKey::new("app", "other-api"));
    /// ```
    pub fn new(prefix: &str, name: &str) -> Self {
        Self(format!("{prefix}:{{{name}}}"))
    }

    /// The key for the configuration described by `parts`, under an application `prefix`: the
    /// name is the HMAC-SHA256 of the parts under `store_key`, so every replica given the same
    /// parts and store key computes the same name, and the name reveals nothing about the parts
    /// to whoever reads the store.
    ///
    /// For the OAuth client there is nothing to assemble: `ClientCredentials::store_key`
    /// (feature `oauth`) derives the key from the flow itself. Use `derive` for a source of
    /// your own.
    ///
    /// The parts must hold everything that makes two tokens different, each as one part, in a
    /// fixed order: the token URL, the client id, the scopes (sorted), the resources and the
    /// audience, the client authentication method, and the credential (the client secret, or a
    /// fingerprint of the signing key: hashed under `store_key`, it is not recoverable from the
    /// name). Leaving one out lets two configurations share a token. Parts are length-prefixed,
    /// so `["ab", "c"]` and `["a", "bc"]` give different names.
    ///
    /// `store_key` is a secret of the fleet (at least 32 random bytes), apart from the
    /// encryption keys of [`RedisStore`].
    ///
    /// ```
    /// use tower_bearer::store::StoreKey;
    ///
    /// let store_key = [0x5a; 32]; // from your secret store
    /// let parts = [
    ///     "https://login.partner.example/oauth2/token",
    ///     "client-7",
    ///     "api.read api.write",
    ///     "",
    ///     "https://api.partner.example",
    ///     "client_secret_basic",
    ///     "the client secret",
    /// ];
    /// let key = StoreKey::derive("billing", &parts, &store_key);
    /// assert!(key.as_str().starts_with("billing:{"));
    /// assert!(!key.as_str().contains("client-7"));
    /// assert_eq!(key, StoreKey::derive("billing", &parts, &store_key));
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn derive(prefix: &str, parts: &[&str], store_key: &[u8]) -> Self {
        use std::fmt::Write as _;

        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, store_key);
        let mut context = ring::hmac::Context::with_key(&key);
        context.update(b"tower-bearer store key v1\0");
        context.update(&(parts.len() as u64).to_be_bytes());
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part.as_bytes());
        }
        let tag = context.sign();
        // 160 bits: no collision between configurations, a short key.
        let mut name = String::with_capacity(40);
        for byte in &tag.as_ref()[..20] {
            let _ = write!(name, "{byte:02x}");
        }
        Self::new(prefix, &name)
    }

    /// The key as text.
    ///
    /// ```
    /// use tower_bearer::store::StoreKey;
    ///
    /// assert_eq!(StoreKey::new("app", "api").as_str(), "app:{api}");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({})", self.0)
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A store call failed: the cache falls back to fetching locally, and skips the store for a
/// while.
///
/// ```
/// use tower_bearer::store::{StoreError, StoreErrorKind};
///
/// let err = StoreError::new(StoreErrorKind::Unavailable, "connection refused");
/// assert_eq!(err.kind(), StoreErrorKind::Unavailable);
/// assert_eq!(err.to_string(), "token store: connection refused");
/// ```
#[derive(Clone, Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

/// Why a store call failed.
///
/// ```
/// use tower_bearer::store::{MemoryStore, StoreErrorKind, StoreKey, TokenStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::new();
/// store.set_available(false);
/// let err = store.load(&StoreKey::new("app", "api")).await.unwrap_err();
/// assert_eq!(err.kind(), StoreErrorKind::Unavailable);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The call did not finish within the cache's store timeout.
    Timeout,
    /// The store cannot be reached or refused the call.
    Unavailable,
    /// Anything else.
    Other,
}

impl StoreError {
    /// An error of `kind`; the message must hold no secret (no password, no token).
    ///
    /// ```
    /// use tower_bearer::store::{StoreError, StoreErrorKind};
    ///
    /// let err = StoreError::new(StoreErrorKind::Timeout, "no answer in 200 ms");
    /// assert!(err.to_string().contains("no answer in 200 ms"));
    /// ```
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Why it failed.
    ///
    /// ```
    /// use tower_bearer::store::{StoreError, StoreErrorKind};
    ///
    /// let err = StoreError::new(StoreErrorKind::Other, "unexpected reply");
    /// assert_eq!(err.kind(), StoreErrorKind::Other);
    /// ```
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token store: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::StoreKey;

    #[test]
    fn derived_names_depend_on_every_part_its_boundaries_and_the_store_key() {
        let key = [1u8; 32];
        let base = StoreKey::derive("app", &["https://idp/token", "client", "s1"], &key);
        assert_eq!(
            base,
            StoreKey::derive("app", &["https://idp/token", "client", "s1"], &key)
        );
        let others = [
            StoreKey::derive("app", &["https://idp/token", "client", "s2"], &key),
            StoreKey::derive("app", &["https://idp/token", "clients1"], &key),
            StoreKey::derive("app", &["https://idp/token", "client", "s1", ""], &key),
            StoreKey::derive("app", &["https://idp/token", "client", "s1"], &[2u8; 32]),
            StoreKey::derive("other", &["https://idp/token", "client", "s1"], &key),
        ];
        for other in &others {
            assert_ne!(&base, other);
        }
        // prefix, ":{", 40 hex digits, "}"
        let name = base.as_str();
        assert_eq!(name.len(), "app:{}".len() + 40);
        assert!(name[5..45].bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!name.contains("client"));
    }
}
