//! A fleet of replica processes sharing their tokens through Redis: one token request per token
//! lifetime for the whole fleet instead of one per replica.
//!
//! ```text
//! cargo run --release --example fleet --features redis
//! cargo run --release --example fleet --features redis -- --replicas 16 --seconds 20
//! REDIS_URL=redis://:password@127.0.0.1:6379 cargo run --release --example fleet --features redis
//! ```
//!
//! The coordinator starts the emulator's token endpoint (answering after 200 ms, tokens that
//! live 5 s) and its protected API, a loopback `redis-server` (unless `REDIS_URL` is set), and
//! `--replicas` processes of this same binary (`--replica` mode), each with a layered hyper-util
//! client (`BearerTokenLayer` over a `TokenCache` with a `RedisStore`) calling the API with
//! `--concurrency` tasks for `--seconds`. Then it does the same without the store, and prints one
//! line for each run:
//!
//! ```text
//! fleet: 8 replicas, 52311 requests, 4 token requests, 0 failed, 8 waited
//! fleet: 8 replicas, 51890 requests, 32 token requests, 0 failed, 8 waited (without the store)
//! ```
//!
//! Token requests are counted by the emulator; requests, failures (any answer but `200`, and
//! errors) and waits (requests that found no usable token and waited for a fetch) by the
//! replicas. What else happens is written to stderr.
//!
//! # Replica mode
//!
//! `fleet --replica --id N --token-url URL --client-id ID --api-url URL [--no-store] ...`, with
//! the secrets in the environment, never on the command line: `FLEET_CLIENT_SECRET`,
//! `FLEET_REDIS_URL` (may hold a password), `FLEET_ENCRYPTION_KEY` and `FLEET_STORE_KEY` (64 hex
//! digits each). A replica builds its client, connects to Redis, prints `ready key=<store key>`,
//! and waits for a line `go` on stdin. Then it sends `--burst N` concurrent requests once, or
//! runs `--concurrency` tasks (each: a request, a pause of `--pause-ms`) until `--seconds` have
//! passed or a line `stop` (or the end of stdin) comes. Last it prints one line:
//!
//! ```text
//! done id=3 requests=6120 ok=6120 failed=0 unauthorized=0 errors=0 fetches=1 store_hits=2 store_fallbacks=0 waits=1 invalidations=0 early_refreshes=3
//! ```
//!
//! the counts of its requests and its cache's `CacheStats`. The integration tests
//! (`tests/it/fleet_processes.rs`) drive replicas this way.
//!
//! Every process started here ends with the coordinator, however it ends (done, a panic, Ctrl-C,
//! even SIGKILL): a replica exits when its stdin, a pipe the coordinator holds, closes; the
//! `redis-server` runs under a guard (`fleet --guard redis-server ...`) that kills it when the
//! guard's stdin closes; and the handles kill and reap them when dropped.
//!
//! Replicas log (at `--log`, default `warn`) to stderr: the crate's logs show tokens only as
//! fingerprints, and nothing here prints a secret.

use std::collections::BTreeMap;
use std::error::Error;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_bearer::oauth::ServiceTransport;
use tower_bearer::providers::Kpn;
use tower_bearer::store::{RedisStore, StoreKey, TokenStore};
use tower_bearer::{BearerTokenLayer, TokenCache};
use tower_bearer_emulator::{Emulator, Provider};

type BoxError = Box<dyn Error + Send + Sync>;
type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// How long a replica may take to get ready (connect to Redis) or to report.
const READY_WITHIN: Duration = Duration::from_secs(30);

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--replica") => replica(Args::parse(&args[1..])?),
        Some("--guard") => guard(&args[1..]),
        _ => coordinator(Args::parse(&args)?),
    }
}

/// `fleet --guard <program> [args]`: runs the program until this process's stdin closes, then
/// kills it. The coordinator starts `redis-server` this way, with the guard's stdin a pipe it
/// holds: however the coordinator ends (a panic, Ctrl-C, even SIGKILL), the pipe closes and the
/// server goes with it.
fn guard(command: &[String]) -> Result<(), BoxError> {
    let (program, args) = command.split_first().ok_or("--guard needs a program")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()?;
    // Returns at the end of stdin (or on an error reading it).
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

/// `--name value` pairs and `--flag`s.
struct Args(BTreeMap<String, Option<String>>);

impl Args {
    const FLAGS: [&str; 1] = ["--no-store"];

    fn parse(args: &[String]) -> Result<Self, BoxError> {
        let mut parsed = BTreeMap::new();
        let mut args = args.iter();
        while let Some(name) = args.next() {
            if !name.starts_with("--") {
                return Err(format!("unexpected argument {name:?}").into());
            }
            let value = if Self::FLAGS.contains(&name.as_str()) {
                None
            } else {
                Some(args.next().ok_or(format!("{name} needs a value"))?.clone())
            };
            parsed.insert(name.clone(), value);
        }
        Ok(Self(parsed))
    }

    fn flag(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.as_deref())
    }

    fn required(&self, name: &str) -> Result<&str, BoxError> {
        self.text(name)
            .ok_or_else(|| format!("{name} is required").into())
    }

    fn number(&self, name: &str, default: u64) -> Result<u64, BoxError> {
        match self.text(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| format!("{name} takes a whole number, not {text:?}").into()),
        }
    }

    fn millis(&self, name: &str, default: u64) -> Result<Duration, BoxError> {
        self.number(name, default).map(Duration::from_millis)
    }
}

fn secret_from_env(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(name: &str, text: &str) -> Result<Vec<u8>, BoxError> {
    let bad = || format!("{name} must be 64 hex digits");
    if text.len() != 64 {
        return Err(bad().into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| bad().into()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Replica
// ---------------------------------------------------------------------------------------------

/// What a replica counts of its own requests.
#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    ok: AtomicU64,
    unauthorized: AtomicU64,
    other_status: AtomicU64,
    errors: AtomicU64,
}

/// An order on the replica's stdin.
#[derive(Debug, PartialEq, Eq)]
enum Order {
    Go,
    Stop,
}

fn replica(args: Args) -> Result<(), BoxError> {
    let id = args.number("--id", 0)?;
    let level = args.text("--log").unwrap_or("warn");
    if level != "off" {
        let level: tracing::Level = level
            .parse()
            .map_err(|_| "--log takes off, error, warn, info, debug or trace")?;
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .init();
    }
    // Commands from stdin, read on a thread of their own; its end is a `stop`.
    let (commands, mut next_command) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let command = match line.as_deref().map(str::trim) {
                Ok("go") => Order::Go,
                Ok("stop") => Order::Stop,
                Ok(_) => continue,
                Err(_) => break,
            };
            if commands.send(command).is_err() {
                return;
            }
        }
        let _ = commands.send(Order::Stop);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (client, cache, key) = build_client(&args).await?;
        println!(
            "ready key={}",
            key.as_ref().map_or("none", StoreKey::as_str)
        );
        // The burst starts at once on every replica: each waits for its `go`.
        match next_command.recv().await {
            Some(Order::Go) => {}
            _ => return Ok(()),
        }
        let counts = Arc::new(Counts::default());
        let api_url: Arc<str> = args.required("--api-url")?.into();
        if let Some(burst) = args.text("--burst") {
            let burst: usize = burst.parse().map_err(|_| "--burst takes a number")?;
            let mut requests = Vec::with_capacity(burst);
            for _ in 0..burst {
                let (client, counts, url) = (client.clone(), Arc::clone(&counts), api_url.clone());
                requests.push(tokio::spawn(
                    async move { call(client, &url, &counts).await },
                ));
            }
            for request in requests {
                request.await?;
            }
        } else {
            let run_for = args
                .text("--seconds")
                .map(|_| args.number("--seconds", 0))
                .transpose()?;
            let pause = args.millis("--pause-ms", 20)?;
            let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut tasks = Vec::new();
            for _ in 0..args.number("--concurrency", 16)? {
                let (client, counts, url) = (client.clone(), Arc::clone(&counts), api_url.clone());
                let stopped = Arc::clone(&stopped);
                tasks.push(tokio::spawn(async move {
                    while !stopped.load(Ordering::Relaxed) {
                        call(client.clone(), &url, &counts).await;
                        tokio::time::sleep(pause).await;
                    }
                }));
            }
            let deadline = async {
                match run_for {
                    Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = deadline => {}
                _ = async { while next_command.recv().await == Some(Order::Go) {} } => {}
            }
            stopped.store(true, Ordering::Relaxed);
            for task in tasks {
                task.await?;
            }
        }
        let stats = cache.stats();
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let ok = get(&counts.ok);
        println!(
            "done id={id} requests={} ok={ok} failed={} unauthorized={} errors={} fetches={} \
             store_hits={} store_fallbacks={} waits={} invalidations={} early_refreshes={}",
            get(&counts.requests),
            get(&counts.requests) - ok,
            get(&counts.unauthorized),
            get(&counts.errors),
            stats.fetches,
            stats.store_hits,
            stats.store_fallbacks,
            stats.waits,
            stats.invalidations,
            stats.early_refreshes,
        );
        Ok::<_, BoxError>(())
    })
}

type Layered = tower_bearer::BearerToken<Limited>;

/// The replica's client: the layer over a cache (with the store unless `--no-store`) over a
/// hyper-util client.
async fn build_client(args: &Args) -> Result<(Layered, TokenCache, Option<StoreKey>), BoxError> {
    let token_url = args.required("--token-url")?;
    let client_id = args.required("--client-id")?;
    let client_secret = secret_from_env("FLEET_CLIENT_SECRET")?;
    let http: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let source = Kpn::new()
        .token_url(token_url)
        .client_id(client_id)
        .client_secret(client_secret.as_str())
        .build(ServiceTransport::new(http.clone()))?;
    let fetch_timeout = args.millis("--fetch-timeout-ms", 2000)?;
    let mut cache = TokenCache::builder(source)
        .name(format!("replica-{}", args.number("--id", 0)?))
        .fetch_timeout(fetch_timeout);
    let mut shared = None;
    if !args.flag("--no-store") {
        let encryption_key = unhex(
            "FLEET_ENCRYPTION_KEY",
            &secret_from_env("FLEET_ENCRYPTION_KEY")?,
        )?;
        let store_key = unhex("FLEET_STORE_KEY", &secret_from_env("FLEET_STORE_KEY")?)?;
        let store = RedisStore::builder(secret_from_env("FLEET_REDIS_URL")?)
            .encryption_key("fleet-1", &encryption_key)
            .build()?;
        // Everything that makes two tokens different, in a fixed order; see StoreKey::derive.
        let key = StoreKey::derive(
            "fleet-example",
            &[
                token_url,
                client_id,
                "",
                "",
                "",
                "client_secret_post",
                &client_secret,
            ],
            &store_key,
        );
        // Connect before the burst: a read (the data connection) and a short wait (the
        // subscriber that wakes waiting replicas). Neither counts in the cache's stats.
        store.load(&key).await?;
        store.wait_changed(&key, Duration::from_millis(100)).await;
        cache = cache.store(store, key.clone()).store_timeouts(
            args.millis("--store-timeout-ms", 250)?,
            args.millis("--store-budget-ms", 1000)?,
            args.millis("--store-retry-ms", 5000)?,
        );
        shared = Some(key);
    }
    let cache = cache.build();
    let connections = args.number("--connections", 32)? as usize;
    let client = ServiceBuilder::new()
        .layer(BearerTokenLayer::from_cache(cache.clone()))
        .service(Limited {
            http,
            permits: Arc::new(tokio::sync::Semaphore::new(connections)),
        });
    Ok((client, cache, shared))
}

/// One request; counts its outcome.
async fn call(client: Layered, url: &str, counts: &Counts) {
    counts.requests.fetch_add(1, Ordering::Relaxed);
    let request = Request::get(url)
        .body(Full::default())
        .expect("a valid request");
    match client.oneshot(request).await {
        Ok(response) if response.status() == StatusCode::OK => {
            counts.ok.fetch_add(1, Ordering::Relaxed);
        }
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
            counts.unauthorized.fetch_add(1, Ordering::Relaxed);
        }
        Ok(_) => {
            counts.other_status.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => {
            counts.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, "request failed");
        }
    }
}

/// The hyper-util client with at most `permits` requests in flight: the requests of a burst
/// all wait for their token in the layer at once, then share a few connections (not one
/// connection each).
#[derive(Clone)]
struct Limited {
    http: HttpClient,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Service<Request<Full<Bytes>>> for Limited {
    type Response = Response<Bytes>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // hyper-util's client is always ready; the limit is taken in the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let (http, permits) = (self.http.clone(), Arc::clone(&self.permits));
        Box::pin(async move {
            let _permit = permits.acquire_owned().await?;
            let (parts, body) = http.request(request).await?.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(Response::from_parts(parts, body))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Coordinator
// ---------------------------------------------------------------------------------------------

/// A child process, killed and reaped when dropped.
struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Process {
    /// Starts `command` with stdout read line by line on a thread of its own.
    fn spawn(mut command: Command) -> Result<Self, BoxError> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            stdin: child.stdin.take(),
            child,
            lines,
        })
    }

    /// The next line that starts with `prefix`, within `within`.
    fn line(&self, prefix: &str, within: Duration) -> Result<String, BoxError> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => continue,
                Err(_) => {
                    return Err(
                        format!("no `{prefix}` line from process {}", self.child.id()).into(),
                    );
                }
            }
        }
    }

    fn send(&mut self, line: &str) -> Result<(), BoxError> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` on a free loopback port, without persistence (it writes no file), under a
/// guard (`--guard`); stopped when dropped, or when this process ends however it ends.
struct RedisServer {
    guard: Process,
    url: String,
}

impl RedisServer {
    fn start() -> Result<Self, BoxError> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err("redis-server is not installed: install it \
                        (apt-get install redis-server) or set REDIS_URL"
                .into());
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["--guard", "redis-server", "--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir());
        let server = Self {
            guard: Process::spawn(command)?,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pong(port) {
            if Instant::now() > deadline {
                return Err(format!("redis-server on port {port} did not answer PING").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Closing the guard's stdin stops the server; then the guard is reaped.
        drop(self.guard.stdin.take());
        let _ = self.guard.child.wait();
    }
}

/// Whether a Redis server answers `PING` on `port`.
fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = [0; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// One run's totals.
#[derive(Default)]
struct Totals {
    requests: u64,
    failed: u64,
    waited: u64,
    fetches: u64,
    store_hits: u64,
    store_fallbacks: u64,
}

fn coordinator(args: Args) -> Result<(), BoxError> {
    let replicas = args.number("--replicas", 8)?;
    let seconds = args.number("--seconds", 15)?;
    let concurrency = args.number("--concurrency", 16)?;
    let lifetime = Duration::from_secs(args.number("--lifetime", 5)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let _redis_server;
    let redis_url = match std::env::var("REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            let server = RedisServer::start()?;
            let url = server.url.clone();
            _redis_server = server;
            url
        }
    };
    // Fresh keys for each run: the example's tokens are never readable by another run.
    let rng = ring::rand::SystemRandom::new();
    let mut encryption_key = [0u8; 32];
    let mut store_key = [0u8; 32];
    ring::rand::SecureRandom::fill(&rng, &mut encryption_key).map_err(|_| "no randomness")?;
    ring::rand::SecureRandom::fill(&rng, &mut store_key).map_err(|_| "no randomness")?;
    let secrets = [
        ("FLEET_REDIS_URL", redis_url),
        ("FLEET_ENCRYPTION_KEY", hex(&encryption_key)),
        ("FLEET_STORE_KEY", hex(&store_key)),
    ];
    eprintln!(
        "{replicas} replica processes x {concurrency} concurrent tasks for {seconds} s; tokens \
         live {lifetime:?}, the token endpoint answers after 200 ms"
    );
    let mut lines = Vec::new();
    for with_store in [true, false] {
        // A fresh emulator per run: its count of token requests is this run's.
        let emulator = runtime.block_on(
            Emulator::builder()
                .token_lifetime(lifetime)
                .token_delay(Duration::from_millis(200))
                .start(),
        )?;
        let mut processes = Vec::new();
        for id in 0..replicas {
            let mut command = Command::new(std::env::current_exe()?);
            command
                .arg("--replica")
                .args(["--id", &id.to_string()])
                .args(["--token-url", &emulator.token_url(Provider::Kpn)])
                .args(["--client-id", &emulator.client_id()])
                .args(["--api-url", &emulator.api_url(Provider::Kpn, "v1/items")])
                .args(["--concurrency", &concurrency.to_string()])
                .args(["--seconds", &seconds.to_string()])
                .env("FLEET_CLIENT_SECRET", emulator.client_secret());
            if with_store {
                command.envs(secrets.iter().map(|(name, value)| (name, value)));
            } else {
                command.arg("--no-store");
            }
            processes.push(Process::spawn(command)?);
        }
        for process in &processes {
            process.line("ready", READY_WITHIN)?;
        }
        for process in &mut processes {
            process.send("go")?;
        }
        let mut totals = Totals::default();
        for process in &processes {
            let done = process.line("done", Duration::from_secs(seconds) + READY_WITHIN)?;
            let field = |name: &str| -> u64 {
                done.split_whitespace()
                    .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            totals.requests += field("requests");
            totals.failed += field("failed");
            totals.waited += field("waits");
            totals.fetches += field("fetches");
            totals.store_hits += field("store_hits");
            totals.store_fallbacks += field("store_fallbacks");
        }
        drop(processes);
        let token_requests = emulator.token_requests(Provider::Kpn);
        eprintln!(
            "{}: replicas' own count of token requests {}, store hits {}, fallbacks {}",
            if with_store {
                "with the store"
            } else {
                "without"
            },
            totals.fetches,
            totals.store_hits,
            totals.store_fallbacks,
        );
        lines.push(format!(
            "fleet: {replicas} replicas, {} requests, {token_requests} token requests, {} failed, \
             {} waited{}",
            totals.requests,
            totals.failed,
            totals.waited,
            if with_store {
                ""
            } else {
                " (without the store)"
            },
        ));
    }
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
