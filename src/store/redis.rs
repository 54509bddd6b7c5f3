//! [`RedisStore`]: the [`TokenStore`] of a fleet, on Redis or Valkey (feature `redis`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use ::redis::cluster::{ClusterClient, ClusterClientBuilder};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Client, RedisError, Script, ScriptInvocation, TlsCertificates};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::codec::{self, Keyring, NONCE_BYTES};
use super::{Lease, LeaseId, Saved, StoreError, StoreErrorKind, StoreKey, Stored, TokenStore};
use crate::sync::lock;
use crate::token::Token;

/// Default time redis-rs waits for an answer to one command.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);
/// Default time redis-rs waits for a connection to be made.
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// Default bound on a whole store call (connecting, retries and all).
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
/// After the subscriber connection failed, waits poll for this long before it is tried again.
const SUBSCRIBER_RETRY: Duration = Duration::from_secs(1);

/// With no `k:gen` (a new key, or Redis lost its data), the fence starts at the server's clock
/// in microseconds: above every generation saved before the loss, so a holder from before it
/// cannot overwrite a newer token and a `401` for an old token cannot remove a new one.
const TRY_LEASE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local gen = redis.call('GET', KEYS[2])
  if not gen then
    local t = redis.call('TIME')
    gen = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
  end
  return {1, gen, ''}
end
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 8) == 'backoff:' then
  return {2, tostring(redis.call('PTTL', KEYS[1])), string.sub(v, 9)}
end
return {0, '0', ''}
";

/// The fleet backs off: the holder's lease becomes a marker that lives as long as the wait.
const BACK_OFF: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'backoff:' .. ARGV[3], 'PX', ARGV[2])
  redis.call('PUBLISH', ARGV[4], 'backoff')
  return 1
end
return 0
";

const SAVE: &str = r"
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
local gen = redis.call('GET', KEYS[3]) or '0'
if greater(gen, ARGV[2]) then
  return {0, gen}
end
redis.call('SET', KEYS[3], ARGV[3])
if ARGV[4] == '-1' then
  redis.call('DEL', KEYS[1])
elseif ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[4])
end
redis.call('PUBLISH', ARGV[6], ARGV[3])
return {1, ARGV[3]}
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
";

const REMOVE: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 3) == 'tbs' and string.sub(v, 5, 12) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'removed')
  return 1
end
return 0
";

const LOAD: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
";

/// A [`TokenStore`] on Redis or Valkey, single node or cluster, with tokens encrypted at rest.
/// Clones share the connections.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_bearer::store::{RedisStore, StoreKey};
/// use tower_bearer::{token_source_fn, Token, TokenCache, TokenSource};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let (encryption_key, store_key, client_secret) = ([1u8; 32], [2u8; 32], "s");
/// // URL, encryption key and store key come from your secret store.
/// let store = RedisStore::builder("rediss://billing:s3cret@redis.internal:6380")
///     .encryption_key("2026-01", &encryption_key)
///     .build()?;
/// let key = StoreKey::derive(
///     "billing",
///     &[
///         "https://login.partner.example/oauth2/token",
///         "client-7",
///         "api.read",
///         "",
///         "",
///         "client_secret_basic",
///         client_secret,
///     ],
///     &store_key,
/// );
/// let cache = TokenCache::builder(token_source_fn(|| async {
///     Ok(Token::new("eyJ...").with_expires_in(Duration::from_secs(3600)))
/// }))
/// .store(store, key)
/// .build();
/// cache.token().await?;
/// # Ok(()) }
/// ```
///
/// # Client
///
/// redis-rs (`redis` 1.8), rather than fred: it is the most used Rust client, its
/// `ConnectionManager` reconnects by itself and has per-command response and connection
/// timeouts, its async cluster client follows `MOVED`/`ASK` and refreshes slots, its `Script`
/// runs `EVALSHA` and falls back to `SCRIPT LOAD` on `NOSCRIPT` (on every node of a cluster),
/// and its TLS is rustls with the process's crypto provider, which this crate already installs
/// (ring) for reqwest: no second TLS stack, no aws-lc. fred has no command timeout by default
/// and brings its own connection pool and reconnect policy that we would have to tame; its
/// strengths (pipelining pools, client tracking) buy nothing for a few calls per token lifetime.
/// Whatever the client's timeouts do, every call here is also bounded by the store's own
/// [`operation_timeout`](RedisStoreBuilder::operation_timeout), and by the cache's store timeout
/// around it.
///
/// # Keys
///
/// For a [`StoreKey`] `k` (whose name is a `{hash tag}`, so all three live in one cluster
/// slot):
///
/// | key | holds | expires |
/// | --- | --- | --- |
/// | `k` | the token, encrypted (format below) | with the token: the time to live is the token's remaining lifetime |
/// | `k:lease` | the lease holder's random id | after the lease time (`SET NX PX`) |
/// | `k:gen` | the last generation saved | never |
///
/// # Scripts
///
/// Every call is one Lua script (`EVALSHA`, loaded again on `NOSCRIPT`), so each is atomic:
///
/// - `try_lease`: `SET k:lease <id> NX PX <ttl>`; if it was set, returns `k:gen` as the
///   fence, or, if `k:gen` is unset (a new key, or Redis lost its data), the server's `TIME` in
///   microseconds, which is above every generation saved before (generations grow by one per
///   token; the clock by a million a second), so after a data loss neither a late save nor a
///   `401` from before it touches a newer token; if `k:lease` holds a `backoff:<reason>` marker, returns its `PTTL` and the
///   reason (the fleet is backing off).
/// - `back_off`: if `k:lease` still holds this holder's id, replaces it with the marker
///   `backoff:<reason>` for the server's `Retry-After` (`PX`): no replica takes the lease, so
///   none asks the token endpoint, until it expires.
/// - `save`: deletes `k:lease` if it still holds this holder's id; then, if `k:gen` is greater
///   than the fence, returns it (a newer token was saved while this holder's lease had lapsed:
///   nothing is written); else sets `k:gen` to `fence + 1` and `k` to the value sealed as that
///   generation, with `PX` = the token's remaining lifetime. Setting `fence + 1` rather than
///   `INCR` is the same when the holder saw the last generation, keeps the generation inside the
///   encrypted value equal to the counter. A token with no lifetime left is not written (Redis
///   cannot keep a key for 0 ms): the save takes its generation and deletes the older value,
///   as a value expired at once would be gone.
/// - `release`: deletes `k:lease` if it still holds this holder's id.
/// - `remove`: deletes `k` if the generation in its header (bytes 5 to 12, in the clear and
///   authenticated) is the given one.
/// - `load`: `GET k` and `PTTL k` together; the token's expiry is now plus the time to live, so
///   no replica depends on another host's clock.
///
/// # Value
///
/// A versioned header (format version, generation, key id) and the token's contents encrypted
/// with AES-256-GCM under a key you supply, with a random 96-bit nonce; the header and the Redis
/// key are the associated data, so a value moved to another key or rewritten in place does not
/// decrypt. One key writes ([`encryption_key`](RedisStoreBuilder::encryption_key)), older ones
/// only decrypt ([`decryption_key`](RedisStoreBuilder::decryption_key)): to rotate, add the new
/// key as a decryption key to every replica, then make it the encryption key (the old one a
/// decryption key), then drop the old one once its tokens have expired. A value that does not
/// open (corrupt, another format, written under another key, an unknown or wrong key) is a
/// miss: never served, replaced by the next save, logged at WARN the first time (with a
/// fingerprint of the key id it names) and counted ([`unreadable`](RedisStore::unreadable) and
/// the `tower_bearer_store_unreadable_total` metric). A random-nonce key is good for 2^32
/// values, that is one token a second for a century.
///
/// # Waiting for another replica
///
/// [`wait_changed`](TokenStore::wait_changed) uses pub/sub: `save`, `release` and `remove`
/// `PUBLISH` to `k:changed` (a plain `PUBLISH`, which a cluster forwards to every node), and
/// the store keeps one subscriber connection (RESP2 `SUBSCRIBE`), to the single node or to the
/// first cluster node given. The first wait on a key subscribes in the background and is a
/// plain pause; the later ones return as soon as a message comes. Notifications only shorten a
/// wait: a missed one, a subscriber that cannot connect (tried again a second later) or a lost
/// subscriber connection (made again on the next wait) leave the cache's polling with backoff.
/// In a cluster, the subscriber's node being down means polling, not failing.
///
/// # Connections and failures
///
/// Nothing connects in [`build`](RedisStoreBuilder::build): a single node is reached through a
/// redis-rs `ConnectionManager` made on the first call, which reconnects in the background
/// after an I/O error; a cluster connection is made on the first call (and again after a call
/// that could not make it). Every failure is a [`StoreError`] (`Timeout` or `Unavailable`) and
/// never a hang: the response timeout (default 250 ms), connection timeout (500 ms) and the
/// store's own bound on a whole call (1 s) hold whatever the server does. The password of the
/// URL is never shown: `Debug` and errors show the URL with `[redacted]` in its place.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    /// A single-node client for the subscriber connection.
    subscriber_client: Client,
    keys: Keyring,
    rng: SystemRandom,
    scripts: Scripts,
    operation_timeout: Duration,
    connection_timeout: Duration,
    /// The URL(s), password redacted.
    shown: String,
    /// Scrubbed from any error message that would hold it.
    passwords: Vec<SecretString>,
    unreadable: AtomicU64,
    warned: AtomicBool,
    changes: Changes,
}

enum Target {
    Single {
        client: Client,
        config: ConnectionManagerConfig,
        manager: Mutex<Option<ConnectionManager>>,
    },
    Cluster {
        client: ClusterClient,
        connection: tokio::sync::Mutex<Option<ClusterConnection>>,
    },
}

struct Scripts {
    try_lease: Script,
    back_off: Script,
    save: Script,
    release: Script,
    remove: Script,
    load: Script,
}

/// The subscriber side of `wait_changed`.
#[derive(Default)]
struct Changes {
    /// One wake-up per channel waited on (one per key: a handful).
    channels: Mutex<HashMap<String, Arc<Notify>>>,
    /// The channels the current subscriber connection is subscribed to.
    subscribed: Mutex<HashSet<String>>,
    /// The channels being subscribed to.
    pending: Mutex<HashSet<String>>,
    /// The subscriber connection's sink; locked while it is made.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    /// Until when waits poll without trying the subscriber again.
    retry_at: Mutex<Option<Instant>>,
}

/// Builds a [`RedisStore`]: [`RedisStore::builder`] for a single node,
/// [`RedisStore::cluster_builder`] for Redis Cluster.
///
/// Building checks the URL and the keys and connects to nothing, so a configuration error shows
/// at startup:
///
/// ```
/// use std::time::Duration;
/// use tower_bearer::store::RedisStore;
///
/// # let encryption_key = [7u8; 32];
/// let store = RedisStore::builder("redis://app:s3cret@127.0.0.1:6379/0")
///     .encryption_key("2026-01", &encryption_key)
///     .operation_timeout(Duration::from_millis(500))
///     .build()
///     .unwrap();
/// assert!(!format!("{store:?}").contains("s3cret"));
/// assert!(RedisStore::builder("redis://127.0.0.1").build().is_err(), "no encryption key");
/// ```
pub struct RedisStoreBuilder {
    urls: Vec<SecretString>,
    cluster: bool,
    encryption: Option<(String, Zeroizing<Vec<u8>>)>,
    decryption: Vec<(String, Zeroizing<Vec<u8>>)>,
    response_timeout: Duration,
    connection_timeout: Duration,
    operation_timeout: Duration,
    root_certificates: Option<Vec<u8>>,
}

impl RedisStore {
    /// A store on the single node (or Valkey server, or a proxy in front of several) at `url`:
    /// `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS. The password is
    /// kept as a secret and never shown.
    ///
    /// ```
    /// use tower_bearer::store::RedisStore;
    ///
    /// let builder = RedisStore::builder("rediss://app:s3cret@redis.internal:6380");
    /// assert!(format!("{builder:?}").contains("rediss://app:[redacted]@redis.internal:6380"));
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(vec![url.into()], false)
    }

    /// A store on the Redis Cluster that any of `urls` belongs to (the others are tried if the
    /// first is down); each URL as in [`builder`](Self::builder), all with the same user,
    /// password and scheme.
    ///
    /// ```
    /// use tower_bearer::store::RedisStore;
    ///
    /// # let encryption_key = [7u8; 32];
    /// let store = RedisStore::cluster_builder(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
    ///     .encryption_key("2026-01", &encryption_key)
    ///     .build()
    ///     .unwrap();
    /// assert!(format!("{store:?}").contains("cluster: true"));
    /// ```
    pub fn cluster_builder<I, U>(urls: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = U>,
        U: Into<String>,
    {
        RedisStoreBuilder::new(urls.into_iter().map(Into::into).collect(), true)
    }

    /// How many values did not open (corrupt, another format or key, moved from another Redis
    /// key) since the store was built: each was a miss, and is replaced by the next save.
    ///
    /// ```
    /// use tower_bearer::store::RedisStore;
    ///
    /// # let encryption_key = [7u8; 32];
    /// let store = RedisStore::builder("redis://127.0.0.1:6379")
    ///     .encryption_key("2026-01", &encryption_key)
    ///     .build()
    ///     .unwrap();
    /// // Export it as a gauge: a rising count means replicas disagree on the keys.
    /// assert_eq!(store.unreadable(), 0);
    /// ```
    pub fn unreadable(&self) -> u64 {
        self.inner.unreadable.load(Ordering::Relaxed)
    }
}

impl RedisStoreBuilder {
    fn new(urls: Vec<String>, cluster: bool) -> Self {
        Self {
            urls: urls.into_iter().map(SecretString::from).collect(),
            cluster,
            encryption: None,
            decryption: Vec::new(),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            root_certificates: None,
        }
    }

    /// The AES-256 key (32 bytes) that encrypts the tokens this store writes, and decrypts
    /// them; `id` (1 to 64 visible ASCII characters, not secret) is written with each value, so
    /// that a replica knows which key to decrypt it with. Required.
    ///
    /// ```
    /// use tower_bearer::store::RedisStore;
    ///
    /// let builder = RedisStore::builder("redis://127.0.0.1").encryption_key("2026-01", &[7u8; 32]);
    /// assert!(builder.build().is_ok());
    /// let short = RedisStore::builder("redis://127.0.0.1").encryption_key("2026-01", &[7u8; 16]);
    /// assert!(short.build().is_err(), "AES-256 takes 32 bytes");
    /// ```
    pub fn encryption_key(mut self, id: impl Into<String>, key: &[u8]) -> Self {
        self.encryption = Some((id.into(), Zeroizing::new(key.to_vec())));
        self
    }

    /// An older AES-256 key that only decrypts (the values written before a rotation); may be
    /// given several times.
    ///
    /// ```
    /// use tower_bearer::store::RedisStore;
    ///
    /// # let (new_key, old_key) = ([7u8; 32], [6u8; 32]);
    /// // After a rotation: write with the new key, still read what the old one wrote.
    /// let builder = RedisStore::builder("redis://127.0.0.1")
    ///     .encryption_key("2026-02", &new_key)
    ///     .decryption_key("2026-01", &old_key);
    /// assert!(format!("{builder:?}").contains(r#"decryption_keys: ["2026-01"]"#));
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn decryption_key(mut self, id: impl Into<String>, key: &[u8]) -> Self {
        self.decryption
            .push((id.into(), Zeroizing::new(key.to_vec())));
        self
    }

    /// How long redis-rs waits for an answer to one command (default 250 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::RedisStore;
    ///
    /// let builder = RedisStore::builder("redis://127.0.0.1").response_timeout(Duration::from_millis(100));
    /// assert!(format!("{builder:?}").contains("response_timeout: 100ms"));
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long redis-rs waits for a connection (default 500 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::RedisStore;
    ///
    /// let builder = RedisStore::builder("redis://127.0.0.1").connection_timeout(Duration::from_secs(2));
    /// assert!(format!("{builder:?}").contains("connection_timeout: 2s"));
    /// ```
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// The store's own bound on one call, connecting and retries included (default 1 s): past
    /// it the call fails with [`StoreErrorKind::Timeout`], whatever the client does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_bearer::store::RedisStore;
    ///
    /// let builder = RedisStore::builder("redis://127.0.0.1").operation_timeout(Duration::from_secs(3));
    /// assert!(format!("{builder:?}").contains("operation_timeout: 3s"));
    /// ```
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Trusts the PEM certificates in `pem` (instead of the system's roots) for `rediss://`.
    ///
    /// ```no_run
    /// use tower_bearer::store::RedisStore;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let encryption_key = [7u8; 32];
    /// // Not run: it reads your CA's certificate from a file.
    /// let store = RedisStore::builder("rediss://redis.internal:6380")
    ///     .tls_root_certificates(std::fs::read("/etc/redis/ca.pem")?)
    ///     .encryption_key("2026-01", &encryption_key)
    ///     .build()?;
    /// assert_eq!(store.unreadable(), 0);
    /// # Ok(()) }
    /// ```
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates = Some(pem.into());
        self
    }

    /// The store. Checks the URLs and keys; does not connect (the first call does), so it
    /// never waits for Redis.
    ///
    /// ```
    /// use tower_bearer::store::{RedisStore, StoreErrorKind};
    ///
    /// let err = RedisStore::builder("redis://127.0.0.1").build().unwrap_err();
    /// assert_eq!(err.kind(), StoreErrorKind::Other);
    /// assert!(err.to_string().contains("encryption_key"), "{err}");
    /// let err = RedisStore::builder("not a url").encryption_key("k", &[7u8; 32]).build().unwrap_err();
    /// assert!(err.to_string().contains("Redis URL"), "{err}");
    /// ```
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let config_error = |message: String| StoreError::new(StoreErrorKind::Other, message);
        let Some((write_id, write_key)) = &self.encryption else {
            return Err(config_error(
                "the Redis store needs an encryption key (RedisStoreBuilder::encryption_key)"
                    .into(),
            ));
        };
        let read: Vec<(&str, &[u8])> = self
            .decryption
            .iter()
            .map(|(id, key)| (id.as_str(), key.as_slice()))
            .collect();
        let keys = Keyring::new((write_id, write_key), &read)
            .map_err(|problem| config_error(format!("Redis store key: {problem}")))?;
        let shown = self
            .urls
            .iter()
            .map(|url| redact_url(url.expose_secret()))
            .collect::<Vec<_>>()
            .join(", ");
        if self.urls.is_empty() {
            return Err(config_error("the Redis store needs a URL".into()));
        }
        let mut passwords = Vec::new();
        let mut infos = Vec::new();
        for url in &self.urls {
            let info = ::redis::IntoConnectionInfo::into_connection_info(url.expose_secret())
                .map_err(|e| config_error(format!("Redis URL {shown}: {:?}", e.kind())))?;
            if let Some(password) = info.redis_settings().password() {
                passwords.push(SecretString::from(password.to_owned()));
            }
            infos.push(info);
        }
        let client_error = |e: RedisError| {
            config_error(scrub(&format!("Redis client for {shown}: {e}"), &passwords))
        };
        let certificates = || TlsCertificates {
            client_tls: None,
            root_cert: self.root_certificates.clone(),
        };
        let single = |info: ::redis::ConnectionInfo| {
            if info_is_tls(&info) {
                crate::tls::install_crypto_provider();
            }
            match &self.root_certificates {
                Some(_) => Client::build_with_tls(info, certificates()),
                None => Client::open(info),
            }
        };
        let subscriber_client = single(infos[0].clone()).map_err(client_error)?;
        let target = if self.cluster {
            if infos.iter().any(info_is_tls) {
                crate::tls::install_crypto_provider();
            }
            let mut builder = ClusterClientBuilder::new(infos)
                .connection_timeout(self.connection_timeout)
                .response_timeout(self.response_timeout)
                .retries(2);
            if self.root_certificates.is_some() {
                builder = builder.certs(certificates());
            }
            Target::Cluster {
                client: builder.build().map_err(client_error)?,
                connection: tokio::sync::Mutex::new(None),
            }
        } else {
            if infos.len() != 1 {
                return Err(config_error(
                    "a single-node Redis store takes one URL (cluster_builder takes several)"
                        .into(),
                ));
            }
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(self.response_timeout))
                .set_connection_timeout(Some(self.connection_timeout))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_secs(1));
            Target::Single {
                client: subscriber_client.clone(),
                config,
                manager: Mutex::new(None),
            }
        };
        Ok(RedisStore {
            inner: Arc::new(Inner {
                target,
                subscriber_client,
                keys,
                rng: SystemRandom::new(),
                scripts: Scripts {
                    try_lease: Script::new(TRY_LEASE),
                    back_off: Script::new(BACK_OFF),
                    save: Script::new(SAVE),
                    release: Script::new(RELEASE),
                    remove: Script::new(REMOVE),
                    load: Script::new(LOAD),
                },
                operation_timeout: self.operation_timeout,
                connection_timeout: self.connection_timeout,
                shown,
                passwords,
                unreadable: AtomicU64::new(0),
                warned: AtomicBool::new(false),
                changes: Changes::default(),
            }),
        })
    }
}

fn info_is_tls(info: &::redis::ConnectionInfo) -> bool {
    matches!(info.addr(), ::redis::ConnectionAddr::TcpTls { .. })
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self
            .urls
            .iter()
            .map(|u| redact_url(u.expose_secret()))
            .collect();
        f.debug_struct("RedisStoreBuilder")
            .field("urls", &urls)
            .field("cluster", &self.cluster)
            .field(
                "encryption_key",
                &self.encryption.as_ref().map(|(id, _)| id),
            )
            .field(
                "decryption_keys",
                &self.decryption.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("RedisStore")
            .field("url", &inner.shown)
            .field("cluster", &matches!(inner.target, Target::Cluster { .. }))
            .field("keys", &inner.keys)
            .field("unreadable", &self.unreadable())
            .finish()
    }
}

/// `url` with the password of its user info replaced by `[redacted]`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL: nothing of it is shown.
        return "[redacted]".to_owned();
    };
    let rest_at = scheme_end + 3;
    let rest = &url[rest_at..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let shown_userinfo = if userinfo.contains(':') {
                format!("{user}:[redacted]")
            } else {
                user.to_owned()
            };
            format!(
                "{}{shown_userinfo}{}",
                &url[..rest_at],
                &url[rest_at + at..]
            )
        }
        None => url.to_owned(),
    }
}

/// `message` with every password replaced by `[redacted]` (a client error that echoed one).
fn scrub(message: &str, passwords: &[SecretString]) -> String {
    let mut message = message.to_owned();
    for password in passwords {
        let password = password.expose_secret();
        if !password.is_empty() && message.contains(password) {
            message = message.replace(password, "[redacted]");
        }
    }
    message
}

impl Inner {
    fn error(&self, op: &str, error: &RedisError) -> StoreError {
        let kind = if error.is_timeout() {
            StoreErrorKind::Timeout
        } else if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_cluster_error()
            || matches!(
                error.kind(),
                ::redis::ErrorKind::AuthenticationFailed
                    | ::redis::ErrorKind::ClusterConnectionNotFound
            )
        {
            StoreErrorKind::Unavailable
        } else {
            StoreErrorKind::Other
        };
        let message = format!("Redis {op} on {}: {error}", self.shown);
        StoreError::new(kind, scrub(&message, &self.passwords))
    }

    /// The single node's connection manager, made on first use (it connects lazily and
    /// reconnects by itself).
    fn manager(&self) -> Result<Option<ConnectionManager>, StoreError> {
        let Target::Single {
            client,
            config,
            manager,
        } = &self.target
        else {
            return Ok(None);
        };
        let mut slot = lock(manager);
        if let Some(manager) = &*slot {
            return Ok(Some(manager.clone()));
        }
        let made = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|e| self.error("connect", &e))?;
        *slot = Some(made.clone());
        Ok(Some(made))
    }

    /// The cluster connection, made on first use and again after a failed attempt.
    async fn cluster(&self) -> Result<Option<ClusterConnection>, StoreError> {
        let Target::Cluster { client, connection } = &self.target else {
            return Ok(None);
        };
        let mut slot = connection.lock().await;
        if let Some(connection) = &*slot {
            return Ok(Some(connection.clone()));
        }
        let made = client
            .get_async_connection()
            .await
            .map_err(|e| self.error("connect", &e))?;
        *slot = Some(made.clone());
        Ok(Some(made))
    }

    /// Runs `invocation` on the single node or the cluster, within the operation timeout.
    async fn invoke<T: ::redis::FromRedisValue>(
        &self,
        op: &'static str,
        invocation: ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let call = async {
            let result = if let Some(mut manager) = self.manager()? {
                invocation.invoke_async(&mut manager).await
            } else if let Some(mut cluster) = self.cluster().await? {
                invocation.invoke_async(&mut cluster).await
            } else {
                unreachable!("a store is a single node or a cluster")
            };
            result.map_err(|e| self.error(op, &e))
        };
        within(self.operation_timeout, op, &self.shown, call).await
    }

    fn nonce(&self) -> Result<[u8; NONCE_BYTES], StoreError> {
        let mut nonce = [0; NONCE_BYTES];
        self.rng.fill(&mut nonce).map_err(|_| {
            StoreError::new(
                StoreErrorKind::Other,
                "the system random number generator failed",
            )
        })?;
        Ok(nonce)
    }

    /// A value that did not open: counted, logged at WARN the first time, then at DEBUG.
    fn unreadable(&self, key: &StoreKey, problem: &codec::Unreadable) {
        self.unreadable.fetch_add(1, Ordering::Relaxed);
        crate::metrics::store_unreadable();
        let key_id = problem.key_id.map(|f| f.to_string());
        let key_id = key_id.as_deref().unwrap_or("none");
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(key = %key, reason = %problem.reason, key_id, "a stored token could not be read: ignored, and replaced by the next save (logged once; see RedisStore::unreadable)");
        } else {
            tracing::debug!(key = %key, reason = %problem.reason, key_id, "a stored token could not be read: ignored");
        }
    }
}

async fn within<T>(
    limit: Duration,
    op: &str,
    shown: &str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(StoreError::new(
            StoreErrorKind::Timeout,
            format!("Redis {op} on {shown}: no answer within {limit:?}"),
        ))
    })
}

/// The names a store key's entry uses; fails for a key without a hash tag, whose lease and
/// counter a cluster would put in other slots.
struct Names {
    value: String,
    lease: String,
    generation: String,
    channel: String,
}

fn names(key: &StoreKey) -> Result<Names, StoreError> {
    let key = key.as_str();
    let tagged = key
        .find('{')
        .and_then(|open| key[open + 1..].find('}').map(|close| close > 0))
        .unwrap_or(false);
    if !tagged {
        return Err(StoreError::new(
            StoreErrorKind::Other,
            format!(
                "store key {key} has no non-empty {{hash tag}}: make it with StoreKey::new or StoreKey::derive"
            ),
        ));
    }
    Ok(Names {
        value: key.to_owned(),
        lease: format!("{key}:lease"),
        generation: format!("{key}:gen"),
        channel: format!("{key}:changed"),
    })
}

fn parse_generation(op: &str, text: &str) -> Result<u64, StoreError> {
    text.parse().map_err(|_| {
        StoreError::new(
            StoreErrorKind::Other,
            format!("Redis {op}: the generation counter holds a non-number"),
        )
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl TokenStore for RedisStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<Option<Stored>, StoreError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let names = names(key)?;
            let mut invocation = inner.scripts.load.prepare_invoke();
            invocation.key(&names.value);
            let found: Option<(Vec<u8>, i64)> = inner.invoke("load", invocation).await?;
            let Some((blob, pttl)) = found else {
                return Ok(None);
            };
            let blob = Zeroizing::new(blob);
            let now = Instant::now();
            let remaining = match pttl {
                // No time to live.
                -1 => None,
                ms if ms >= 0 => Some(Duration::from_millis(ms as u64)),
                // Expired between GET and PTTL: impossible in one script.
                _ => return Ok(None),
            };
            match inner.keys.open(&names.value, &blob, now, remaining) {
                Ok(opened) => Ok(Some(Stored {
                    token: opened.token,
                    generation: opened.generation,
                })),
                Err(problem) => {
                    inner.unreadable(key, &problem);
                    Ok(None)
                }
            }
        })
    }

    fn try_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let names = names(key)?;
            let id = LeaseId::random();
            let mut invocation = inner.scripts.try_lease.prepare_invoke();
            invocation
                .key(&names.lease)
                .key(&names.generation)
                .arg(id.as_str())
                .arg(millis(ttl).max(1));
            let (won, value, reason): (i64, String, String) =
                inner.invoke("try_lease", invocation).await?;
            match won {
                1 => {
                    let fence = parse_generation("try_lease", &value)?;
                    Ok(Lease::Won { id, fence })
                }
                2 => Ok(Lease::BackingOff {
                    // PTTL: the milliseconds left (negative if it just expired).
                    remaining: Duration::from_millis(value.parse::<u64>().unwrap_or(0)),
                    reason,
                }),
                _ => Ok(Lease::Held),
            }
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
        fence: u64,
        token: &'a Token,
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let names = names(key)?;
            let generation = fence.checked_add(1).ok_or_else(|| {
                StoreError::new(StoreErrorKind::Other, "the generation counter is exhausted")
            })?;
            // "0": no expiry; "-1": no lifetime left (not written); else the milliseconds left.
            let ttl = match token.expires_at() {
                None => "0".to_owned(),
                Some(at) => match millis(at.saturating_duration_since(Instant::now())) {
                    0 => "-1".to_owned(),
                    ms => ms.to_string(),
                },
            };
            let blob = inner
                .keys
                .seal(&names.value, generation, token, inner.nonce()?);
            let mut invocation = inner.scripts.save.prepare_invoke();
            invocation
                .key(&names.value)
                .key(&names.lease)
                .key(&names.generation)
                .arg(lease.as_str())
                .arg(fence.to_string())
                .arg(generation.to_string())
                .arg(ttl)
                .arg(blob)
                .arg(&names.channel);
            let (stored, generation): (i64, String) = inner.invoke("save", invocation).await?;
            let generation = parse_generation("save", &generation)?;
            Ok(if stored == 1 {
                Saved::Stored(generation)
            } else {
                Saved::Newer(generation)
            })
        })
    }

    fn release<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let names = names(key)?;
            let mut invocation = inner.scripts.release.prepare_invoke();
            invocation
                .key(&names.lease)
                .arg(lease.as_str())
                .arg(&names.channel);
            let _: i64 = inner.invoke("release", invocation).await?;
            Ok(())
        })
    }

    fn back_off<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: &'a LeaseId,
        delay: Duration,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let names = names(key)?;
            let mut invocation = inner.scripts.back_off.prepare_invoke();
            invocation
                .key(&names.lease)
                .arg(lease.as_str())
                .arg(millis(delay).max(1))
                .arg(reason)
                .arg(&names.channel);
            let _: i64 = inner.invoke("back_off", invocation).await?;
            Ok(())
        })
    }

    fn remove<'a>(
        &'a self,
        key: &'a StoreKey,
        generation: u64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let names = names(key)?;
            let mut invocation = inner.scripts.remove.prepare_invoke();
            invocation
                .key(&names.value)
                .arg(&generation.to_be_bytes()[..])
                .arg(&names.channel);
            let removed: i64 = inner.invoke("remove", invocation).await?;
            Ok(removed == 1)
        })
    }

    fn wait_changed<'a>(&'a self, key: &'a StoreKey, at_most: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let deadline = Instant::now() + at_most;
            let Ok(names) = names(key) else {
                return tokio::time::sleep_until(deadline).await;
            };
            let inner = &self.inner;
            let notify = Arc::clone(
                lock(&inner.changes.channels)
                    .entry(names.channel.clone())
                    .or_default(),
            );
            // Registered now: a message from here on wakes it, even before it is polled.
            let woken = notify.notified();
            if !lock(&inner.changes.subscribed).contains(&names.channel) {
                // Subscribes in the background (not cut short by this wait's bound); this wait
                // is a plain pause, the next ones are woken.
                inner.subscribe_in_background(names.channel);
            }
            let _ = tokio::time::timeout_at(deadline, woken).await;
        })
    }
}

impl Inner {
    /// Starts subscribing to `channel` unless that is under way or the subscriber failed a
    /// moment ago.
    fn subscribe_in_background(self: &Arc<Self>, channel: String) {
        let changes = &self.changes;
        if lock(&changes.retry_at).is_some_and(|at| Instant::now() < at)
            || !lock(&changes.pending).insert(channel.clone())
        {
            return;
        }
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let limit = inner.connection_timeout + inner.operation_timeout;
            let result = tokio::time::timeout(limit, inner.subscribe(&channel)).await;
            lock(&inner.changes.pending).remove(&channel);
            let error = match result {
                Ok(Ok(())) => return,
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {limit:?}"),
            };
            tracing::debug!(store = %inner.shown, error = %scrub(&error, &inner.passwords), "token store subscriber failed: waits poll until it is tried again");
            *lock(&inner.changes.retry_at) = Some(Instant::now() + SUBSCRIBER_RETRY);
            *inner.changes.sink.lock().await = None;
            lock(&inner.changes.subscribed).clear();
        });
    }

    /// Subscribes to `channel` on the subscriber connection, made first if there is none.
    async fn subscribe(self: &Arc<Self>, channel: &str) -> Result<(), RedisError> {
        let mut sink = {
            let mut slot = self.changes.sink.lock().await;
            match &*slot {
                Some(sink) => sink.clone(),
                None => {
                    let pubsub = self.subscriber_client.get_async_pubsub().await?;
                    let (sink, stream) = pubsub.split();
                    tokio::spawn(read_messages(Arc::downgrade(self), stream));
                    *slot = Some(sink.clone());
                    sink
                }
            }
        };
        sink.subscribe(channel).await?;
        lock(&self.changes.subscribed).insert(channel.to_owned());
        Ok(())
    }
}

/// Wakes the waits of each channel that gets a message, until the connection ends; then the
/// next wait subscribes again on a new one.
async fn read_messages(inner: std::sync::Weak<Inner>, mut stream: PubSubStream) {
    while let Some(message) = stream.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let notify = lock(&inner.changes.channels)
            .get(message.get_channel_name())
            .cloned();
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }
    if let Some(inner) = inner.upgrade() {
        *inner.changes.sink.lock().await = None;
        lock(&inner.changes.subscribed).clear();
    }
}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changes").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact_url("redis://app:s3cret@host:6379/0"),
            "redis://app:[redacted]@host:6379/0"
        );
        assert_eq!(
            redact_url("rediss://:s3cret@host"),
            "rediss://:[redacted]@host"
        );
        assert_eq!(
            redact_url("redis://a:b:c@d@host/x?y=@"),
            "redis://a:[redacted]@host/x?y=@"
        );
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("redis://user@host"), "redis://user@host");
        assert_eq!(redact_url("host:6379"), "[redacted]");
    }

    #[test]
    fn errors_are_scrubbed_of_passwords() {
        let passwords = [SecretString::from("pw-123".to_owned())];
        assert_eq!(
            scrub("auth pw-123 failed for pw-123", &passwords),
            "auth [redacted] failed for [redacted]"
        );
    }

    #[test]
    fn keys_without_a_hash_tag_are_refused() {
        assert!(names(&StoreKey::new("app", "")).is_err());
        let names = names(&StoreKey::new("app", "x")).unwrap();
        assert_eq!(names.lease, "app:{x}:lease");
        assert_eq!(names.generation, "app:{x}:gen");
    }

    #[test]
    fn the_builder_checks_keys_and_urls_without_connecting() {
        let key = [3u8; 32];
        let built = RedisStore::builder("redis://u:pw-9@127.0.0.1:1")
            .encryption_key("k1", &key)
            .build()
            .unwrap();
        let shown = format!("{built:?}");
        assert!(
            shown.contains("[redacted]") && !shown.contains("pw-9"),
            "{shown}"
        );
        let err = RedisStore::builder("redis://127.0.0.1:1")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("encryption key"));
        let err = RedisStore::builder("redis://127.0.0.1:1")
            .encryption_key("k1", &key[..16])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("32 bytes"));
        let err = RedisStore::builder("nonsense://u:pw-9@x")
            .encryption_key("k1", &key)
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains("pw-9"), "{err}");
    }
}
