//! `RedisStore` against real servers: a `redis-server` per test on a free loopback port, and one
//! 3-master cluster shared by the cluster tests (started on first use, stopped at exit). Without
//! `redis-server`/`redis-cli` the tests say they are skipped; with `CI` set they fail instead
//! (`.ci/run` installs them).
//!
//! These run against real processes: the paused clock does not apply. They assert outcomes
//! (generations, which token was served, error kinds, calls that come back at all), with short
//! leases and lifetimes; time bounds only catch hangs.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::time::Instant;
use tower_bearer::store::{
    Lease, LeaseId, RedisStore, Saved, StoreError, StoreErrorKind, StoreKey, Stored, TokenStore,
};
use tower_bearer::{Token, TokenCache, TokenSource};

use crate::common::Scripted;
use crate::common::redis_server::{Server, cli, free_port, redis_installed};

const PASSWORD: &str = "fleet-pw-6c1d93a0e4";
const KEY_1: [u8; 32] = *b"redis-store-test-key-one-32bytes";
const KEY_2: [u8; 32] = *b"redis-store-test-key-two-32bytes";
const KEY_3: [u8; 32] = *b"redis-store-wrong-key-32bytes-xx";
const STORE_KEY: [u8; 32] = *b"redis-store-test-store-key-32byt";

crate::known_secrets!(
    "redis_store.rs password" => PASSWORD,
    "redis_store.rs KEY_1 hex" => &hex(&KEY_1),
    "redis_store.rs KEY_2 hex" => &hex(&KEY_2),
    "redis_store.rs KEY_3 hex" => &hex(&KEY_3),
    "redis_store.rs KEY_1 base64" => &base64(&KEY_1),
    "redis_store.rs KEY_2 base64" => &base64(&KEY_2),
    "redis_store.rs KEY_3 base64" => &base64(&KEY_3),
    "redis_store.rs KEY_1" => std::str::from_utf8(&KEY_1).unwrap(),
    "redis_store.rs KEY_2" => std::str::from_utf8(&KEY_2).unwrap(),
    "redis_store.rs KEY_3" => std::str::from_utf8(&KEY_3).unwrap(),
    "redis_store.rs STORE_KEY" => std::str::from_utf8(&STORE_KEY).unwrap(),
    "redis_store.rs token A" => "redis-token-a-5f0e2b",
    "redis_store.rs token B" => "redis-token-b-93c4d1",
    "redis_store.rs token C" => "redis-token-c-27aa80",
    "redis_store.rs refresh token" => "redis-refresh-0b9e77",
);

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const SECOND: Duration = Duration::from_secs(1);
/// Longer than any call may take: a call that is not back by then hangs.
const HANG: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// The 3-master cluster the cluster tests share: started on first use, stopped at exit.
struct Cluster {
    servers: Vec<Server>,
}

static CLUSTER: OnceLock<Mutex<Option<Cluster>>> = OnceLock::new();

#[dtor::dtor(unsafe)]
fn stop_cluster() {
    if let Some(cluster) = CLUSTER.get() {
        let cluster = cluster.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(cluster);
    }
}

/// The shared cluster's node URLs.
fn cluster_urls() -> Vec<String> {
    let cluster = CLUSTER.get_or_init(|| {
        let servers = start_cluster(3, 0, "2000", |_| Vec::new());
        Mutex::new(Some(Cluster { servers }))
    });
    let cluster = cluster.lock().unwrap();
    cluster
        .as_ref()
        .expect("not stopped before exit")
        .servers
        .iter()
        .map(Server::url)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn store(url: &str) -> RedisStore {
    RedisStore::builder(url)
        .encryption_key("k1", &KEY_1)
        .build()
        .unwrap()
}

fn cluster_store(urls: &[String]) -> RedisStore {
    RedisStore::cluster_builder(urls.iter().cloned())
        .encryption_key("k1", &KEY_1)
        .build()
        .unwrap()
}

/// A key no other test uses.
fn unique_key(test: &str) -> StoreKey {
    StoreKey::derive("it", &[test, &fastrand::u64(..).to_string()], &STORE_KEY)
}

fn token(secret: &str, lifetime: Duration) -> Token {
    Token::new(secret)
        .with_expires_in(lifetime)
        .with_scope("api.read")
}

fn access(token: &Token) -> &str {
    token.access_token().expose_secret()
}

/// A raw connection, to look at and tamper with what the store wrote.
enum Raw {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Raw {
    async fn single(url: &str) -> Self {
        let client = redis::Client::open(url).unwrap();
        Self::Single(client.get_multiplexed_async_connection().await.unwrap())
    }

    async fn cluster(urls: &[String]) -> Self {
        let client = redis::cluster::ClusterClient::new(urls.to_vec()).unwrap();
        Self::Cluster(client.get_async_connection().await.unwrap())
    }

    async fn run<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> T {
        match self {
            Self::Single(c) => cmd.query_async(c).await.unwrap(),
            Self::Cluster(c) => cmd.query_async(c).await.unwrap(),
        }
    }

    async fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.run(redis::cmd("GET").arg(key)).await
    }

    async fn pttl(&mut self, key: &str) -> i64 {
        self.run(redis::cmd("PTTL").arg(key)).await
    }
}

async fn won(store: &RedisStore, key: &StoreKey, ttl: Duration) -> (LeaseId, u64) {
    match store.try_lease(key, ttl).await.unwrap() {
        Lease::Won { id, fence } => (id, fence),
        other => panic!("the lease was not won: {other:?}"),
    }
}

async fn loaded(store: &RedisStore, key: &StoreKey) -> Option<Stored> {
    tokio::time::timeout(HANG, store.load(key))
        .await
        .expect("load came back")
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The contract, on a single node and on the cluster
// ---------------------------------------------------------------------------------------------

/// The store's contract: MemoryStore's semantics, and the TTL read from Redis.
async fn contract(a: &RedisStore, b: &RedisStore, raw: &mut Raw, key: &StoreKey) {
    // Empty: no token, and the first lease's fence is the server's clock in microseconds
    // (above any generation saved before a data loss).
    assert!(loaded(a, key).await.is_none());
    let (lease_a, fence) = won(a, key, 10 * SECOND).await;
    let g = fence;
    assert!(
        g > 1_700_000_000_000_000,
        "fence {g} is not Redis' TIME in µs"
    );
    assert_eq!(b.try_lease(key, 10 * SECOND).await.unwrap(), Lease::Held);
    // Releasing with another holder's id does nothing.
    b.release(key, &LeaseId::random()).await.unwrap();
    assert_eq!(b.try_lease(key, 10 * SECOND).await.unwrap(), Lease::Held);

    // The save stores generation g + 1 with the token's remaining lifetime as the TTL, and
    // releases the lease.
    let saved = a
        .save(
            key,
            &lease_a,
            fence,
            &token("redis-token-a-5f0e2b", 60 * SECOND),
        )
        .await
        .unwrap();
    assert_eq!(saved, Saved::Stored(g + 1));
    let pttl = raw.pttl(key.as_str()).await;
    assert!((50_000..=60_000).contains(&pttl), "PTTL {pttl}");
    let stored = loaded(b, key).await.expect("stored");
    assert_eq!(stored.generation, g + 1);
    assert_eq!(access(&stored.token), "redis-token-a-5f0e2b");
    assert_eq!(stored.token.scope(), Some("api.read"));
    assert_eq!(stored.token.lifetime(), Some(60 * SECOND));
    let left = stored.token.expires_at().unwrap() - Instant::now();
    assert!(left > 50 * SECOND && left <= 60 * SECOND, "{left:?}");

    // The expiry is the key's TTL, not anything in the value: shorten the TTL, the token
    // expires sooner, and counts as received longer ago (its lifetime is kept).
    let _: i64 = raw
        .run(redis::cmd("PEXPIRE").arg(key.as_str()).arg(5_000))
        .await;
    let stored = loaded(b, key).await.expect("stored");
    let left = stored.token.expires_at().unwrap() - Instant::now();
    assert!(left <= 5 * SECOND && left > 3 * SECOND, "{left:?}");
    assert_eq!(stored.token.lifetime(), Some(60 * SECOND));
    let age = Instant::now() - stored.token.received_at();
    assert!(age >= 55 * SECOND - SECOND && age <= 57 * SECOND, "{age:?}");

    // Fencing: A's lease lapses, B takes over and saves; A's late save is refused and B's
    // token stays.
    let (lease_a, fence_a) = won(a, key, Duration::from_millis(100)).await;
    assert_eq!(fence_a, g + 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (lease_b, fence_b) = won(b, key, 10 * SECOND).await;
    assert_eq!(fence_b, g + 1);
    let saved = b
        .save(
            key,
            &lease_b,
            fence_b,
            &token("redis-token-b-93c4d1", 60 * SECOND),
        )
        .await
        .unwrap();
    assert_eq!(saved, Saved::Stored(g + 2));
    // A third holder takes the lease; A's stale save neither writes nor frees it.
    let (lease_c, fence_c) = won(b, key, 10 * SECOND).await;
    assert_eq!(fence_c, g + 2);
    let late = a
        .save(
            key,
            &lease_a,
            fence_a,
            &token("redis-token-c-27aa80", 60 * SECOND),
        )
        .await
        .unwrap();
    assert_eq!(late, Saved::Newer(g + 2));
    let stored = loaded(a, key).await.expect("stored");
    assert_eq!(
        (stored.generation, access(&stored.token)),
        (g + 2, "redis-token-b-93c4d1")
    );
    assert_eq!(a.try_lease(key, 10 * SECOND).await.unwrap(), Lease::Held);
    b.release(key, &lease_c).await.unwrap();

    // Remove by generation: an old generation removes nothing, the current one removes it.
    assert!(!a.remove(key, g + 1).await.unwrap());
    assert!(loaded(a, key).await.is_some());
    assert!(a.remove(key, g + 2).await.unwrap());
    assert!(loaded(a, key).await.is_none());
    assert!(!a.remove(key, g + 2).await.unwrap());

    // Generations keep going up after a removal.
    let (lease, fence) = won(a, key, 10 * SECOND).await;
    assert_eq!(fence, g + 2);
    let saved = a
        .save(
            key,
            &lease,
            fence,
            &token("redis-token-a-5f0e2b", Duration::from_millis(300)),
        )
        .await
        .unwrap();
    assert_eq!(saved, Saved::Stored(g + 3));
    // ... and the entry expires with its token.
    assert!(loaded(b, key).await.is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(loaded(b, key).await.is_none());

    // A token without expiry is stored without TTL, and read back without expiry.
    let (lease, fence) = won(a, key, 10 * SECOND).await;
    let saved = a
        .save(key, &lease, fence, &Token::new("redis-token-c-27aa80"))
        .await
        .unwrap();
    assert_eq!(saved, Saved::Stored(g + 4));
    assert_eq!(raw.pttl(key.as_str()).await, -1);
    let stored = loaded(b, key).await.expect("stored");
    assert_eq!(stored.token.expires_at(), None);

    // A token with no lifetime left is not written: the save takes a generation and the older
    // value is gone.
    let (lease, fence) = won(a, key, 10 * SECOND).await;
    let dead = Token::new("redis-token-a-5f0e2b").with_expires_at(Instant::now());
    assert_eq!(
        a.save(key, &lease, fence, &dead).await.unwrap(),
        Saved::Stored(g + 5)
    );
    assert!(raw.get(key.as_str()).await.is_none());
    assert!(loaded(b, key).await.is_none());
    // ... and the lease was released.
    let (lease, fence) = won(b, key, 10 * SECOND).await;
    assert_eq!(fence, g + 5);
    b.release(key, &lease).await.unwrap();

    // Nothing in Redis is in the clear.
    let (lease, fence) = won(a, key, 10 * SECOND).await;
    let with_refresh =
        token("redis-token-a-5f0e2b", 60 * SECOND).with_refresh_token("redis-refresh-0b9e77");
    a.save(key, &lease, fence, &with_refresh).await.unwrap();
    let value = raw.get(key.as_str()).await.unwrap();
    for secret in ["redis-token-a-5f0e2b", "redis-refresh-0b9e77", "api.read"] {
        assert!(
            !value.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} stored in the clear"
        );
    }
    assert_eq!(a.unreadable() + b.unreadable(), 0);
}

/// `wait_changed` returns on a save (pub/sub), well before its bound.
/// A `Retry-After` told to the lease holder holds for every replica: the lease becomes a
/// marker no one can take until it expires, and `try_lease` says how long is left and why.
async fn backs_off(a: &RedisStore, b: &RedisStore, key: &StoreKey) {
    let (lease, _) = won(a, key, 10 * SECOND).await;
    // Another holder's id cannot turn the lease into a backoff.
    b.back_off(key, &LeaseId::random(), 30 * SECOND, "rate_limited")
        .await
        .unwrap();
    assert_eq!(b.try_lease(key, 10 * SECOND).await.unwrap(), Lease::Held);
    a.back_off(key, &lease, 2 * SECOND, "rate_limited")
        .await
        .unwrap();
    match b.try_lease(key, 10 * SECOND).await.unwrap() {
        Lease::BackingOff { remaining, reason } => {
            assert!(
                remaining <= 2 * SECOND && remaining > SECOND,
                "{remaining:?}"
            );
            assert_eq!(reason, "rate_limited");
        }
        other => panic!("expected the fleet to back off, got {other:?}"),
    }
    // Once the wait is over, the lease can be taken again.
    tokio::time::sleep(2 * SECOND + Duration::from_millis(100)).await;
    won(b, key, 10 * SECOND).await;
}

async fn wakes_on_save(a: &RedisStore, b: &RedisStore, key: &StoreKey) {
    // The first wait subscribes.
    b.wait_changed(key, Duration::from_millis(200)).await;
    let waiter = {
        let b = b.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            b.wait_changed(&key, 30 * SECOND).await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (lease, fence) = won(a, key, 10 * SECOND).await;
    a.save(
        key,
        &lease,
        fence,
        &token("redis-token-b-93c4d1", 60 * SECOND),
    )
    .await
    .unwrap();
    let waited = tokio::time::timeout(HANG, waiter)
        .await
        .expect("the save woke the waiter")
        .unwrap();
    assert!(waited < 30 * SECOND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_a_single_node() {
    if !redis_installed() {
        return;
    }
    let server = Server::start(&[]);
    let (a, b) = (store(&server.url()), store(&server.url()));
    let mut raw = Raw::single(&server.url()).await;
    contract(&a, &b, &mut raw, &unique_key("single")).await;
    backs_off(&a, &b, &unique_key("single-backoff")).await;
    wakes_on_save(&a, &b, &unique_key("single-wake")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_a_cluster() {
    if !redis_installed() {
        return;
    }
    let urls = cluster_urls();
    let (a, b) = (cluster_store(&urls), cluster_store(&urls[1..]));
    let mut raw = Raw::cluster(&urls).await;
    // Keys in different slots, so more than one node serves the scripts.
    for n in 0..3 {
        let key = unique_key(&format!("cluster-{n}"));
        contract(&a, &b, &mut raw, &key).await;
    }
    backs_off(&a, &b, &unique_key("cluster-backoff")).await;
    wakes_on_save(&a, &b, &unique_key("cluster-wake")).await;
}

// ---------------------------------------------------------------------------------------------
// Values that do not open
// ---------------------------------------------------------------------------------------------

/// A stored token under `key` (generation returned).
async fn put(store: &RedisStore, key: &StoreKey, secret: &str) -> u64 {
    let (lease, fence) = won(store, key, 10 * SECOND).await;
    match store
        .save(key, &lease, fence, &token(secret, 60 * SECOND))
        .await
        .unwrap()
    {
        Saved::Stored(generation) => generation,
        Saved::Newer(newer) => panic!("a newer generation {newer} was stored"),
    }
}

/// An unreadable value is a miss, counted, and the next save replaces it.
async fn ignored_then_replaced(store: &RedisStore, key: &StoreKey, before: u64) {
    assert!(loaded(store, key).await.is_none());
    assert_eq!(store.unreadable(), before + 1);
    let generation = put(store, key, "redis-token-c-27aa80").await;
    let stored = loaded(store, key).await.expect("replaced");
    assert_eq!(stored.generation, generation);
    assert_eq!(access(&stored.token), "redis-token-c-27aa80");
}

#[tokio::test]
async fn corrupt_moved_foreign_and_wrongly_keyed_values_are_ignored_and_replaced() {
    if !redis_installed() {
        return;
    }
    let server = Server::start(&[]);
    let url = server.url();
    let store = store(&url);
    let mut raw = Raw::single(&url).await;

    // One flipped byte in the ciphertext.
    let key = unique_key("corrupt");
    put(&store, &key, "redis-token-a-5f0e2b").await;
    let mut value = raw.get(key.as_str()).await.unwrap();
    let last = value.len() - 20;
    value[last] ^= 0x40;
    let _: () = raw
        .run(
            redis::cmd("SET")
                .arg(key.as_str())
                .arg(value)
                .arg("KEEPTTL"),
        )
        .await;
    ignored_then_replaced(&store, &key, 0).await;

    // A valid value copied under another key.
    let moved = unique_key("moved");
    let value = raw.get(key.as_str()).await.unwrap();
    let _: () = raw
        .run(
            redis::cmd("SET")
                .arg(moved.as_str())
                .arg(value)
                .arg("PX")
                .arg(60_000),
        )
        .await;
    ignored_then_replaced(&store, &moved, 1).await;

    // Something else's value.
    let foreign = unique_key("foreign");
    let _: () = raw
        .run(
            redis::cmd("SET")
                .arg(foreign.as_str())
                .arg("{\"access_token\":\"x\"}")
                .arg("PX")
                .arg(60_000),
        )
        .await;
    ignored_then_replaced(&store, &foreign, 2).await;

    // Written with another key of the same id, and with a key this store does not know.
    for (n, (id, other_key)) in [("k1", KEY_3), ("k9", KEY_2)].into_iter().enumerate() {
        let key = unique_key(&format!("wrong-key-{n}"));
        let other = RedisStore::builder(url.as_str())
            .encryption_key(id, &other_key)
            .build()
            .unwrap();
        put(&other, &key, "redis-token-a-5f0e2b").await;
        ignored_then_replaced(&store, &key, 3 + n as u64).await;
        // ... and the other store cannot read the replacement either.
        assert!(loaded(&other, &key).await.is_none());
    }
}

#[tokio::test]
async fn keys_rotate_old_keys_decrypt_the_new_key_writes() {
    if !redis_installed() {
        return;
    }
    let server = Server::start(&[]);
    let url = server.url();
    let key = unique_key("rotation");
    let old = store(&url);
    let rotated = RedisStore::builder(url.as_str())
        .encryption_key("k2", &KEY_2)
        .decryption_key("k1", &KEY_1)
        .build()
        .unwrap();
    let mut raw = Raw::single(&url).await;

    put(&old, &key, "redis-token-a-5f0e2b").await;
    let stored = loaded(&rotated, &key).await.expect("the old key decrypts");
    assert_eq!(access(&stored.token), "redis-token-a-5f0e2b");

    let generation = put(&rotated, &key, "redis-token-b-93c4d1").await;
    let value = raw.get(key.as_str()).await.unwrap();
    assert_eq!(&value[12..15], b"\x02k2", "written with the new key");
    let stored = loaded(&rotated, &key).await.unwrap();
    assert_eq!(
        (stored.generation, access(&stored.token)),
        (generation, "redis-token-b-93c4d1")
    );
    // A replica not yet given the new key misses (and would fetch), never serves garbage.
    assert!(loaded(&old, &key).await.is_none());
    assert_eq!(old.unreadable(), 1);
}

// ---------------------------------------------------------------------------------------------
// AUTH / ACL
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_acl_user_with_a_password() {
    if !redis_installed() {
        return;
    }
    let server = Server::start(&[]);
    let port = server.port;
    let acl = format!(">{PASSWORD}");
    assert_eq!(
        cli(
            port,
            &["ACL", "SETUSER", "fleet", "on", &acl, "~*", "&*", "+@all"]
        ),
        "OK"
    );
    assert_eq!(cli(port, &["ACL", "SETUSER", "default", "off"]), "OK");

    let url = format!("redis://fleet:{PASSWORD}@127.0.0.1:{port}");
    let good = store(&url);
    let shown = format!("{good:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("fleet:[redacted]@"), "{shown}");
    let key = unique_key("acl");
    put(&good, &key, "redis-token-a-5f0e2b").await;
    assert!(loaded(&good, &key).await.is_some());

    let wrong = store(&format!("redis://fleet:not-{PASSWORD}@127.0.0.1:{port}"));
    let anonymous = store(&format!("redis://127.0.0.1:{port}"));
    for store in [&wrong, &anonymous] {
        let error = tokio::time::timeout(HANG, store.load(&key))
            .await
            .expect("came back")
            .unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(!text.contains(PASSWORD), "{text}");
        assert_ne!(error.kind(), StoreErrorKind::Timeout, "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn tls_with_the_servers_ca_and_refused_without_it() {
    if !redis_installed() {
        return;
    }
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tls_port = free_port();
    let fixture = |name: &str| fixtures.join(name).to_string_lossy().into_owned();
    let server = Server::start(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &fixture("server-cert.pem"),
        "--tls-key-file",
        &fixture("server-key.pem"),
        "--tls-auth-clients",
        "no",
    ]);
    let ca = std::fs::read(fixtures.join("ca-cert.pem")).unwrap();
    let tls = |url: String, ca: Option<&[u8]>| {
        let builder = RedisStore::builder(url).encryption_key("k1", &KEY_1);
        match ca {
            Some(ca) => builder.tls_root_certificates(ca.to_vec()),
            None => builder,
        }
        .build()
        .unwrap()
    };
    // The certificate names localhost, signed by the test CA.
    let trusted = tls(format!("rediss://localhost:{tls_port}"), Some(&ca));
    let key = unique_key("tls");
    put(&trusted, &key, "redis-token-a-5f0e2b").await;
    let stored = loaded(&trusted, &key).await.expect("stored over TLS");
    assert_eq!(access(&stored.token), "redis-token-a-5f0e2b");
    // What went over TLS is in the server, seen over the plain port.
    let mut raw = Raw::single(&server.url()).await;
    assert!(raw.get(key.as_str()).await.is_some());

    // The system's roots do not know the test CA; an IP is not the certificate's name.
    let unknown_ca = tls(format!("rediss://localhost:{tls_port}"), None);
    let wrong_name = tls(format!("rediss://127.0.0.1:{tls_port}"), Some(&ca));
    for store in [&unknown_ca, &wrong_name] {
        let kind = fails(store.load(&key)).await;
        assert_ne!(kind, StoreErrorKind::Timeout);
    }
}

// ---------------------------------------------------------------------------------------------
// Redis down, slow, back
// ---------------------------------------------------------------------------------------------

/// The error of a store call that must fail, and must come back.
async fn fails<T: std::fmt::Debug>(
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> StoreErrorKind {
    tokio::time::timeout(HANG, call)
        .await
        .expect("a store call hung")
        .unwrap_err()
        .kind()
}

/// Every call of `store` fails with a `StoreError`, and comes back.
async fn every_call_fails(store: &RedisStore, key: &StoreKey) -> Vec<StoreErrorKind> {
    let lease = LeaseId::random();
    let t = token("redis-token-a-5f0e2b", 60 * SECOND);
    let kinds = vec![
        fails(store.load(key)).await,
        fails(store.try_lease(key, SECOND)).await,
        fails(store.save(key, &lease, 0, &t)).await,
        fails(store.release(key, &lease)).await,
        fails(store.remove(key, 1)).await,
    ];
    // A wait without a subscriber connection is a plain pause.
    tokio::time::timeout(HANG, store.wait_changed(key, Duration::from_millis(50)))
        .await
        .expect("wait_changed came back");
    kinds
}

#[tokio::test]
async fn redis_down_at_construction_fails_each_call_without_hanging() {
    if !redis_installed() {
        return;
    }
    let key = unique_key("down");
    // Nothing listens.
    let closed = free_port();
    let started = std::time::Instant::now();
    let single = store(&format!("redis://127.0.0.1:{closed}"));
    let cluster = cluster_store(&[format!("redis://127.0.0.1:{closed}")]);
    assert!(started.elapsed() < SECOND, "build connects");
    for kinds in [
        every_call_fails(&single, &key).await,
        every_call_fails(&cluster, &key).await,
    ] {
        assert!(
            kinds.iter().all(|k| *k != StoreErrorKind::Other),
            "{kinds:?}"
        );
    }

    // A listener that accepts and never answers: calls time out.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::clone(&held);
    std::thread::spawn(move || {
        for stream in silent.incoming().flatten() {
            accepted.lock().unwrap().push(stream);
        }
    });
    let mute = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
        .encryption_key("k1", &KEY_1)
        .operation_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let kinds = every_call_fails(&mute, &key).await;
    assert!(kinds.contains(&StoreErrorKind::Timeout), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_mid_run_then_back() {
    if !redis_installed() {
        return;
    }
    let mut server = Server::start(&[]);
    let store = store(&server.url());
    let key = unique_key("mid-run");
    let before = put(&store, &key, "redis-token-a-5f0e2b").await;
    // A holder that took the lease before the data loss and saves after it.
    let (late_lease, late_fence) = won(&store, &key, 60 * SECOND).await;

    // Paused (SIGSTOP): calls time out.
    server.signal("-STOP");
    let kinds = every_call_fails(&store, &key).await;
    assert!(kinds.contains(&StoreErrorKind::Timeout), "{kinds:?}");
    server.signal("-CONT");
    assert!(eventually_loads(&store, &key).await.is_some());

    // Killed: calls fail at once; restarted (empty, no persistence): the store reconnects.
    server.kill();
    let kinds = every_call_fails(&store, &key).await;
    assert!(
        kinds.iter().all(|k| *k != StoreErrorKind::Other),
        "{kinds:?}"
    );
    server.restart();
    assert!(eventually_loads(&store, &key).await.is_none());
    // The counter went with the data; the next generation still lies above every one saved
    // before, so a 401 for the old token cannot remove the new one.
    let generation = put(&store, &key, "redis-token-b-93c4d1").await;
    assert!(generation > before, "{generation} after {before}");
    assert!(!store.remove(&key, before).await.unwrap());
    // ... and the late holder's save is refused: it would overwrite a newer token.
    let late = store
        .save(
            &key,
            &late_lease,
            late_fence,
            &token("redis-token-c-27aa80", 60 * SECOND),
        )
        .await
        .unwrap();
    assert_eq!(late, Saved::Newer(generation));
    assert_eq!(
        access(&loaded(&store, &key).await.unwrap().token),
        "redis-token-b-93c4d1"
    );
    // The subscriber connection comes back too (once the pause after its failure is over).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let other = self::store(&server.url());
    wakes_on_save(&other, &store, &unique_key("mid-run-wake")).await;
}

/// Loads until a call succeeds (the store reconnects by itself), within a few seconds.
async fn eventually_loads(store: &RedisStore, key: &StoreKey) -> Option<Stored> {
    let deadline = Instant::now() + 10 * SECOND;
    loop {
        match tokio::time::timeout(HANG, store.load(key)).await {
            Ok(Ok(found)) => return found,
            _ if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("the store did not come back: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Through the cache
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_their_own_connections_make_one_token_request() {
    if !redis_installed() {
        return;
    }
    let server = Server::start(&[]);
    let key = unique_key("replicas");
    let source = Scripted::numbered(Duration::from_millis(200), 60 * SECOND);
    let mut replicas = Vec::new();
    for _ in 0..4 {
        let store = store(&server.url());
        // Connect every replica before the burst.
        assert!(loaded(&store, &key).await.is_none());
        replicas.push(
            TokenCache::builder(source.clone())
                .store(store, key.clone())
                .build(),
        );
    }
    let mut requests = Vec::new();
    for replica in &replicas {
        for _ in 0..25 {
            let replica = replica.clone();
            requests.push(tokio::spawn(async move { replica.token().await }));
        }
    }
    for request in requests {
        let token = request.await.unwrap().unwrap();
        assert_eq!(access(&token), "token-0");
    }
    assert_eq!(source.calls(), 1);
    let hits: u64 = replicas.iter().map(|r| r.stats().store_hits).sum();
    assert_eq!(hits, 3);
}

/// Starts `masters * (1 + replicas)` cluster nodes (`extra(i)`: more arguments for node `i`,
/// whose TLS port, if any, comes first as `--tls-port <port>`), creates the cluster (over TLS
/// when the nodes have TLS ports, the bus then being TLS too) and waits for `cluster_state:ok`.
fn start_cluster(
    masters: usize,
    replicas: usize,
    node_timeout_ms: &str,
    extra: impl Fn(usize) -> Vec<String>,
) -> Vec<Server> {
    let mut tls_ports = Vec::new();
    let servers: Vec<Server> = (0..masters * (1 + replicas))
        .map(|i| {
            let extra = extra(i);
            if extra.first().map(String::as_str) == Some("--tls-port") {
                tls_ports.push(extra[1].clone());
            }
            let mut args = vec![
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                node_timeout_ms,
            ];
            args.extend(extra.iter().map(String::as_str));
            Server::start(&args)
        })
        .collect();
    // With TLS ports, created over them (the bus port follows the TLS port with --tls-cluster).
    let ports: Vec<String> = if tls_ports.is_empty() {
        servers.iter().map(|s| s.port.to_string()).collect()
    } else {
        tls_ports
    };
    let mut create = std::process::Command::new("redis-cli");
    if ports[0] != servers[0].port.to_string() {
        create.args(["--tls", "--insecure"]);
    }
    create.args(["-p", &ports[0], "--cluster", "create"]);
    create.args(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    create.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
    let created = String::from_utf8_lossy(&create.output().unwrap().stdout).into_owned();
    assert!(created.contains("[OK]"), "cluster create: {created}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !servers
        .iter()
        .all(|s| cli(s.port, &["cluster", "info"]).contains("cluster_state:ok"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster did not reach cluster_state:ok"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    servers
}

/// Whether `server` is a master, and holds a key in `key`'s slot.
fn holds(server: &Server, key: &StoreKey) -> (bool, bool) {
    let slot = server.cli(&["cluster", "keyslot", key.as_str()]);
    let keys: u64 = server
        .cli(&["cluster", "countkeysinslot", &slot])
        .parse()
        .unwrap_or(0);
    (server.cli(&["role"]).starts_with("master"), keys > 0)
}

/// The master that holds `key` dies; its replica takes over (cluster failover), and the store
/// finds the token there, without a new connection or a restart: no call hangs meanwhile, each
/// fails with a typed error or succeeds, and afterwards leases and saves work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_fails_over_to_its_replica_mid_run() {
    if !redis_installed() {
        return;
    }
    // 3 masters with a replica each (its own cluster: it kills a node).
    let mut servers = start_cluster(3, 1, "1000", |_| Vec::new());
    let urls: Vec<String> = servers.iter().map(Server::url).collect();
    let store = cluster_store(&urls);
    let key = unique_key("failover");
    let generation = put(&store, &key, "redis-token-a-5f0e2b").await;

    // The master that holds it, once its replica has it too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let master = loop {
        let held: Vec<(bool, bool)> = servers.iter().map(|s| holds(s, &key)).collect();
        if held.iter().filter(|(_, has)| *has).count() == 2 {
            break held
                .iter()
                .position(|&(master, has)| master && has)
                .unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not replicated: {held:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    servers[master].kill();

    // Calls come back, typed, until the replica is promoted and serves the token.
    let deadline = Instant::now() + 30 * SECOND;
    let mut failed = Vec::new();
    let stored = loop {
        match tokio::time::timeout(HANG, store.load(&key)).await {
            Err(_) => panic!("a load hung during the failover"),
            Ok(Ok(Some(stored))) => break stored,
            Ok(Ok(None)) => panic!("the promoted replica lost the token"),
            Ok(Err(err)) => failed.push(err.kind()),
        }
        assert!(Instant::now() < deadline, "no failover: {failed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (stored.generation, access(&stored.token)),
        (generation, "redis-token-a-5f0e2b")
    );
    // The new master takes leases and saves (a call or two may still time out while the
    // client settles on it).
    let lease = loop {
        match tokio::time::timeout(HANG, store.try_lease(&key, 10 * SECOND)).await {
            Err(_) => panic!("a lease hung after the failover"),
            Ok(Ok(Lease::Won { id, fence })) => break (id, fence),
            Ok(Ok(other)) => panic!("no one else holds the lease: {other:?}"),
            Ok(Err(err)) => failed.push(err.kind()),
        }
        assert!(
            Instant::now() < deadline,
            "no lease after the failover: {failed:?}"
        );
    };
    assert_eq!(lease.1, generation);
    let saved = store
        .save(
            &key,
            &lease.0,
            lease.1,
            &token("redis-token-b-93c4d1", 60 * SECOND),
        )
        .await
        .unwrap();
    assert_eq!(saved, Saved::Stored(generation + 1));
    assert!(
        failed.iter().all(|k| *k != StoreErrorKind::Other),
        "{failed:?}"
    );
    assert_eq!(
        access(&loaded(&store, &key).await.unwrap().token),
        "redis-token-b-93c4d1"
    );
}

/// A cluster over TLS: the nodes announce `localhost` (the certificate's name) and their TLS
/// ports, and the store follows the slot map to them with the test CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_a_cluster() {
    if !redis_installed() {
        return;
    }
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let fixture = |name: &str| fixtures.join(name).to_string_lossy().into_owned();
    let tls_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    // Kept until the end of the test: dropping a server stops it.
    let _servers = start_cluster(3, 0, "2000", |i| {
        [
            "--tls-port",
            &tls_ports[i].to_string(),
            "--tls-cert-file",
            &fixture("server-cert.pem"),
            "--tls-key-file",
            &fixture("server-key.pem"),
            // The cluster bus is mutual TLS: each node connects to the others with a client
            // certificate (self-signed, trusted beside the CA).
            "--tls-client-cert-file",
            &fixture("cluster-bus-cert.pem"),
            "--tls-client-key-file",
            &fixture("cluster-bus-key.pem"),
            "--tls-ca-cert-file",
            &fixture("cluster-bus-trust.pem"),
            "--tls-auth-clients",
            "optional",
            "--tls-cluster",
            "yes",
            "--cluster-announce-hostname",
            "localhost",
            "--cluster-preferred-endpoint-type",
            "hostname",
        ]
        .map(str::to_owned)
        .to_vec()
    });

    let ca = std::fs::read(fixtures.join("ca-cert.pem")).unwrap();
    let urls: Vec<String> = tls_ports
        .iter()
        .map(|p| format!("rediss://localhost:{p}"))
        .collect();
    let store = RedisStore::cluster_builder(urls.iter().cloned())
        .encryption_key("k1", &KEY_1)
        .tls_root_certificates(ca)
        .build()
        .unwrap();
    // Keys in every node's slots.
    for n in 0..12 {
        let key = unique_key(&format!("cluster-tls-{n}"));
        put(&store, &key, "redis-token-a-5f0e2b").await;
        let stored = loaded(&store, &key).await.expect("stored over TLS");
        assert_eq!(access(&stored.token), "redis-token-a-5f0e2b");
    }
    // Without the CA, the same cluster is refused (not hung).
    let untrusted = RedisStore::cluster_builder(urls)
        .encryption_key("k1", &KEY_1)
        .build()
        .unwrap();
    let kind = fails(untrusted.load(&unique_key("cluster-tls-refused"))).await;
    assert_ne!(kind, StoreErrorKind::Timeout);
}
