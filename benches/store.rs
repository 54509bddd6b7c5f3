//! What a local miss costs with a fleet's token store: a cold cache's first token, fetched from
//! the token endpoint (the emulator's KPN endpoint over loopback HTTP, no artificial delay),
//! against the same miss served from a `MemoryStore` and from a `RedisStore` on a loopback
//! `redis-server` (started by the bench when one is installed; skipped otherwise).
//!
//! Each iteration builds a new cache and awaits its first token, so it is one local miss.
//! Compared in one run. (That a warm request never touches the store is measured in
//! instructions by `bash scripts/callgrind-hot-path.sh`: the same count with a store.)
//!
//! ```text
//! cargo bench --all-features --bench store -- --warm-up-time 2 --measurement-time 5
//! ```

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_bearer::oauth::ServiceTransport;
use tower_bearer::providers::Kpn;
use tower_bearer::store::{MemoryStore, StoreKey, TokenStore};
use tower_bearer::{Token, TokenCache, TokenSource};
use tower_bearer_emulator::{Emulator, Provider};

fn key() -> StoreKey {
    StoreKey::new("bench", "store-miss")
}

/// A token the stores hold for the whole run.
fn stored_token() -> Token {
    Token::new("bench-stored-token-0b5c9e").with_expires_in(Duration::from_secs(3600))
}

/// Puts a token into `store` under `key()`, as a replica that fetched it would.
async fn fill(store: &impl TokenStore) {
    use tower_bearer::store::Lease;
    match store.try_lease(&key(), Duration::from_secs(10)).await {
        Ok(Lease::Won { id, fence }) => {
            store
                .save(&key(), &id, fence, &stored_token())
                .await
                .unwrap();
        }
        other => panic!("could not fill the store: {other:?}"),
    }
}

/// A loopback `redis-server` for the bench, stopped on drop.
#[cfg(feature = "redis")]
struct Redis {
    child: std::process::Child,
    port: u16,
}

#[cfg(feature = "redis")]
impl Redis {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let redis = Self { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(redis);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

#[cfg(feature = "redis")]
impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emulator = runtime.block_on(Emulator::start()).unwrap();
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let source = Kpn::new()
        .token_url(emulator.token_url(Provider::Kpn))
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .build(ServiceTransport::new(http))
        .unwrap();
    let source = std::sync::Arc::new(source);

    let mut group = c.benchmark_group("local_miss");
    group.bench_function("token_endpoint", |b| {
        b.to_async(&runtime).iter(|| async {
            let cache = TokenCache::new(std::sync::Arc::clone(&source));
            cache.token().await.unwrap()
        })
    });

    let memory = MemoryStore::new();
    runtime.block_on(fill(&memory));
    group.bench_function("memory_store", |b| {
        b.to_async(&runtime).iter(|| async {
            let cache = TokenCache::builder(std::sync::Arc::clone(&source))
                .store(memory.clone(), key())
                .build();
            cache.token().await.unwrap()
        })
    });

    #[cfg(feature = "redis")]
    {
        use tower_bearer::store::RedisStore;
        match Redis::start() {
            Some(redis) => {
                let url = format!("redis://127.0.0.1:{}", redis.port);
                let store = RedisStore::builder(url)
                    .encryption_key("bench", &[0x42; 32])
                    .build()
                    .unwrap();
                runtime.block_on(fill(&store));
                group.bench_function("redis_store", |b| {
                    b.to_async(&runtime).iter(|| async {
                        let cache = TokenCache::builder(std::sync::Arc::clone(&source))
                            .store(store.clone(), key())
                            .build();
                        cache.token().await.unwrap()
                    })
                });
                drop(redis);
            }
            None => eprintln!("redis-server is not installed: local_miss/redis_store skipped"),
        }
    }
    group.finish();
    let requests = emulator.token_requests(Provider::Kpn);
    assert!(requests > 0, "the token endpoint was asked");
}

criterion_group!(benches, bench);
criterion_main!(benches);
