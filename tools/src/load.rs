//! The load harness: cold start, rollover across token lifetimes, and end to end over loopback,
//! each against a baseline, with a progress line every 2 s and a summary table at the end.
//!
//! ```text
//! cargo run --release -p tower-bearer-tools --bin load
//! cargo run --release -p tower-bearer-tools --bin load -- --only e2e --e2e-rounds 10 --e2e-seconds 5
//! cargo run --release -p tower-bearer-tools --bin load -- --plots docs/plots
//! ```
//!
//! 1. Cold start: 10,000 concurrent requests on an empty cache, the token endpoint (the
//!    emulator, over HTTP) answering after 200 ms: how many token requests, and the latency.
//! 2. Rollover: steady load for 12 s with tokens that live 3 s and a token endpoint that takes
//!    200 ms: requests delayed by a refresh, and p99/max against a static token.
//! 3. End to end: a hyper client with the layer against an axum server on loopback, against the
//!    same client with a static header: throughput ratio.
//!
//! With `--plots DIR` it also writes SVG plots of the phases it ran (see `plots.rs`). What they
//! need is recorded without touching shared state on a request's path: each task fills its own
//! pre-allocated vector and the vectors are merged when the phase ends.

mod plots;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_bearer::oauth::{ClientCredentials, ServiceTransport, Transport};
use tower_bearer::providers::Kpn;
use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache, TokenError, TokenSource};
use tower_bearer_emulator::{Emulator, Fault, Provider};
use tower_http::auth::AddAuthorizationLayer;

use crate::plots::{Fetch, Run, Sample};

type Http = Client<HttpConnector, Full<Bytes>>;

fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An in-process API: answers at once (the cost under test is the layer's, not a socket's).
fn local_api()
-> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future = impl Send>
+ Clone
+ Send {
    service_fn(|_req: Request<()>| std::future::ready(Ok::<_, Infallible>(Response::new(()))))
}

fn kpn(emulator: &Emulator) -> ClientCredentials<impl Transport + use<>> {
    Kpn::new()
        .token_url(emulator.token_url(Provider::Kpn))
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .build(ServiceTransport::new(http()))
        .expect("valid configuration")
}

/// A source that notes when each fetch was asked for and answered: the plots mark them.
struct Timed<S> {
    inner: S,
    /// Guards the fetch log: locked once per fetch, never on a request's path.
    log: Arc<Mutex<Vec<(Instant, Instant)>>>,
}

impl<S> Timed<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            log: Arc::default(),
        }
    }

    /// The log, to read after the run: shared with the source that the cache owns.
    fn log(&self) -> Arc<Mutex<Vec<(Instant, Instant)>>> {
        Arc::clone(&self.log)
    }
}

impl<S: TokenSource> TokenSource for Timed<S> {
    async fn token(&self) -> Result<Token, TokenError> {
        let asked = Instant::now();
        let token = self.inner.token().await;
        self.log.lock().unwrap().push((asked, Instant::now()));
        token
    }
}

/// The fetches in `log` that were answered after `start`, as offsets from it.
fn fetches_since(log: &Mutex<Vec<(Instant, Instant)>>, start: Instant) -> Vec<Fetch> {
    let log = log.lock().unwrap();
    log.iter()
        .filter(|(_, answered)| *answered >= start)
        .map(|(asked, answered)| Fetch {
            asked: asked.saturating_duration_since(start),
            answered: *answered - start,
        })
        .collect()
}

struct Latencies(Vec<Duration>);

impl Latencies {
    fn at(&self, q: f64) -> Duration {
        self.0[((self.0.len() - 1) as f64 * q) as usize]
    }
    fn summary(&self) -> String {
        format!(
            "p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
            self.at(0.5),
            self.at(0.99),
            self.at(1.0)
        )
    }
}

/// Prints a progress line every 2 s until `done`.
fn progress(label: &'static str, count: Arc<AtomicU64>, done: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let start = Instant::now();
        while !done.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if !done.load(Ordering::Relaxed) {
                println!(
                    "  [{label}] {:>5.1}s  {} requests",
                    start.elapsed().as_secs_f64(),
                    count.load(Ordering::Relaxed)
                );
            }
        }
    });
}

/// The cold start's results: offsets are from the moment the burst started.
struct ColdBurst {
    token_requests: u64,
    latencies: Latencies,
    /// When each request was sent, and when it was answered.
    sent: Vec<Duration>,
    released: Vec<Duration>,
    /// The token fetch: asked, answered.
    fetch: Option<Fetch>,
}

async fn cold_start(emulator: &Emulator) -> ColdBurst {
    emulator.inject(Provider::Kpn, Fault::Delay(Duration::from_millis(200)));
    let before = emulator.token_requests(Provider::Kpn);
    let source = Timed::new(kpn(emulator));
    let log = source.log();
    let service = BearerTokenLayer::new(source).layer(local_api());
    let burst = Instant::now();
    let mut tasks = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            service
                .oneshot(Request::get("https://api.example/").body(()).unwrap())
                .await
                .expect("served");
            (start, Instant::now())
        }));
    }
    let (mut latencies, mut sent, mut released) = (
        Vec::with_capacity(10_000),
        Vec::with_capacity(10_000),
        Vec::with_capacity(10_000),
    );
    for task in tasks {
        let (start, end) = task.await.expect("task");
        latencies.push(end - start);
        sent.push(start - burst);
        released.push(end - burst);
    }
    latencies.sort();
    ColdBurst {
        token_requests: emulator.token_requests(Provider::Kpn) - before,
        latencies: Latencies(latencies),
        sent,
        released,
        fetch: fetches_since(&log, burst).first().copied(),
    }
}

/// The rollover phase's results for one source.
struct Steady {
    latencies: Latencies,
    /// Each request's completion time (since the load started) and latency, for the plot.
    samples: Vec<Sample>,
    /// Requests that waited for a token, and early refreshes, after the warm-up.
    waited: u64,
    refreshes: u64,
    /// The token fetches answered during the run.
    fetches: Vec<Fetch>,
}

/// Steady load through `source` for `run_for`: 200 callers, each pausing 1 ms between requests.
async fn steady<S: TokenSource + 'static>(source: S, run_for: Duration) -> Steady {
    let source = Timed::new(source);
    let log = source.log();
    let cache = TokenCache::builder(source)
        .refresh_margin(Duration::from_secs(1))
        .refresh_jitter(Duration::from_millis(200))
        .build();
    // Warm first: the cold start is phase 1's subject.
    cache.token().await.expect("first token");
    let warm = cache.stats();
    let service = BearerTokenLayer::from_cache(cache.clone()).layer(local_api());
    let count = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    progress("rollover", Arc::clone(&count), Arc::clone(&done));
    // A caller sleeps at least 1 ms between requests: at most one per ms, plus slack, so the
    // vector does not grow during the run.
    let per_task = run_for.as_millis() as usize + 1024;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (service, count) = (service.clone(), Arc::clone(&count));
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(per_task);
            while start.elapsed() < run_for {
                let sent = Instant::now();
                service
                    .clone()
                    .oneshot(Request::get("https://api.example/").body(()).unwrap())
                    .await
                    .expect("served");
                let answered = Instant::now();
                mine.push(Sample::new(answered - start, answered - sent));
                count.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            mine
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("task"));
    }
    done.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = samples.iter().map(Sample::latency).collect();
    all.sort();
    let stats = cache.stats();
    Steady {
        latencies: Latencies(all),
        samples,
        waited: stats.waits - warm.waits,
        refreshes: stats.early_refreshes - warm.early_refreshes,
        fetches: fetches_since(&log, start),
    }
}

/// Requests per second through `client` against `url` with 64 concurrent callers for `run_for`.
async fn throughput<S>(client: S, url: String, run_for: Duration) -> f64
where
    S: Service<Request<Full<Bytes>>, Response = Response<hyper::body::Incoming>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
{
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (client, url, count) = (client.clone(), url.clone(), Arc::clone(&count));
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < run_for {
                let response = client
                    .clone()
                    .oneshot(Request::get(&url).body(Full::default()).unwrap())
                    .await
                    .expect("answered");
                assert!(response.status().is_success());
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Command-line options: `--only cold|rollover|e2e`, `--rollover-seconds S` (default 12),
/// `--e2e-rounds N` (default 2), `--e2e-seconds S` (default 3), `--plots DIR` (no plots unless
/// given).
struct Options {
    only: Option<String>,
    rollover_seconds: u64,
    e2e_rounds: usize,
    e2e_seconds: u64,
    plots: Option<PathBuf>,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut options = Self {
            only: None,
            rollover_seconds: 12,
            e2e_rounds: 2,
            e2e_seconds: 3,
            plots: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag}: not a number: {value}"))
            };
            match flag.as_str() {
                "--only" if ["cold", "rollover", "e2e"].contains(&value.as_str()) => {
                    options.only = Some(value)
                }
                "--rollover-seconds" => options.rollover_seconds = number()?.max(1),
                "--e2e-rounds" => options.e2e_rounds = number()?.max(1) as usize,
                "--e2e-seconds" => options.e2e_seconds = number()?.max(1),
                "--plots" => options.plots = Some(PathBuf::from(value)),
                _ => {
                    return Err(format!(
                        "unknown option {flag} {value}; use --only cold|rollover|e2e, \
                         --rollover-seconds S, --e2e-rounds N, --e2e-seconds S, --plots DIR"
                    ));
                }
            }
        }
        Ok(options)
    }

    fn runs(&self, phase: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == phase)
    }
}

/// The end-to-end comparison: `rounds` rounds, each measuring the static header and the layer
/// for `seconds` each, in alternating order (ABBA) so that drift affects both alike.
/// Returns each round's requests/s: (static header, layer).
async fn end_to_end(rounds: usize, seconds: u64) -> Result<Vec<(f64, f64)>, std::io::Error> {
    let app = Router::new().route("/v1/items", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/items", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let ours = BearerTokenLayer::new(StaticToken::new(
        Token::new("loopback-token").with_expires_in(Duration::from_secs(3600)),
    ))
    .layer(http());
    let baseline = AddAuthorizationLayer::bearer("loopback-token")
        .as_sensitive(true)
        .layer(http());
    let run_for = Duration::from_secs(seconds);
    // A short warm-up of each, so that both start with open connections.
    throughput(baseline.clone(), url.clone(), Duration::from_millis(300)).await;
    throughput(ours.clone(), url.clone(), Duration::from_millis(300)).await;
    let mut results = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let (header, layer) = if round.is_multiple_of(2) {
            let header = throughput(baseline.clone(), url.clone(), run_for).await;
            (header, throughput(ours.clone(), url.clone(), run_for).await)
        } else {
            let layer = throughput(ours.clone(), url.clone(), run_for).await;
            (
                throughput(baseline.clone(), url.clone(), run_for).await,
                layer,
            )
        };
        println!(
            "   round {}/{rounds}: static header {header:.0}/s, layer {layer:.0}/s, ratio {:.3}",
            round + 1,
            layer / header
        );
        results.push((header, layer));
    }
    Ok(results)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse()?;
    let emulator = Emulator::builder()
        .token_lifetime(Duration::from_secs(3))
        .start()
        .await?;
    let mut table = Vec::new();
    let mut written = Vec::new();
    if let Some(dir) = &options.plots {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--plots {}: cannot create it: {e}", dir.display()))?;
    }
    let plot = |name: &str| options.plots.as_ref().map(|dir| dir.join(name));

    if options.runs("cold") {
        println!("1. cold start: 10,000 concurrent requests, token endpoint answers after 200 ms");
        let cold = cold_start(&emulator).await;
        table.push((
            "cold start: token requests for 10,000 requests".to_owned(),
            cold.token_requests.to_string(),
        ));
        table.push(("cold start: latency".to_owned(), cold.latencies.summary()));
        if let Some(path) = plot("cold-burst-release.svg") {
            let fetch = cold
                .fetch
                .ok_or("cold start: the token fetch was not seen")?;
            plots::cold_burst_release(
                &path,
                &cold.sent,
                &cold.released,
                fetch.asked,
                fetch.answered,
            )?;
            written.push(path);
        }
    }

    if options.runs("rollover") {
        let run_for = Duration::from_secs(options.rollover_seconds);
        println!(
            "2. rollover: 200 callers for {} s, tokens live 3 s, each fetch takes 200 ms",
            run_for.as_secs()
        );
        for _ in 0..16 {
            emulator.inject(Provider::Kpn, Fault::Delay(Duration::from_millis(200)));
        }
        let rolling = steady(kpn(&emulator), run_for).await;
        let fixed = steady(StaticToken::new(Token::new("static-token")), run_for).await;
        let (rolling_at, fixed_at) = (|q| rolling.latencies.at(q), |q| fixed.latencies.at(q));
        table.push((
            "rollover: requests".to_owned(),
            rolling.samples.len().to_string(),
        ));
        table.push((
            "rollover: requests that waited for a token".to_owned(),
            format!(
                "{} (early refreshes: {})",
                rolling.waited, rolling.refreshes
            ),
        ));
        table.push((
            "rollover: latency, refreshing tokens".to_owned(),
            rolling.latencies.summary(),
        ));
        table.push((
            "rollover: latency, static token".to_owned(),
            fixed.latencies.summary(),
        ));
        table.push((
            "rollover: added p99 / max".to_owned(),
            format!(
                "{:?} / {:?}",
                rolling_at(0.99).saturating_sub(fixed_at(0.99)),
                rolling_at(1.0).saturating_sub(fixed_at(1.0))
            ),
        ));
        if let Some(path) = plot("rollover-latency.svg") {
            plots::rollover_latency(
                &path,
                Run {
                    label: "refreshing tokens",
                    samples: &rolling.samples,
                },
                Run {
                    label: "static token",
                    samples: &fixed.samples,
                },
                &rolling.fetches,
                run_for,
            )?;
            written.push(path);
        }
    }

    if options.runs("e2e") {
        let (rounds, seconds) = (options.e2e_rounds, options.e2e_seconds);
        println!(
            "3. end to end: hyper client -> axum on loopback, 64 callers, {rounds} rounds of \
             {seconds} s each way, alternating order"
        );
        let results = end_to_end(rounds, seconds).await?;
        let with_header: f64 = results.iter().map(|r| r.0).sum();
        let with_layer: f64 = results.iter().map(|r| r.1).sum();
        let ratios: Vec<f64> = results.iter().map(|r| r.1 / r.0).collect();
        let n = rounds as f64;
        table.push((
            "end to end: requests/s, static header".to_owned(),
            format!("{:.0}", with_header / n),
        ));
        table.push((
            "end to end: requests/s, layer".to_owned(),
            format!("{:.0}", with_layer / n),
        ));
        table.push((
            "end to end: ratio layer / static header, all rounds".to_owned(),
            format!("{:.3}", with_layer / with_header),
        ));
        let (low, high) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
        table.push((
            "end to end: ratio per round, median (min to max)".to_owned(),
            format!("{:.3} ({low:.3} to {high:.3})", median(&ratios)),
        ));
        if let Some(path) = plot("e2e-throughput.svg") {
            plots::e2e_throughput(&path, &results, seconds)?;
            written.push(path);
        }
    }

    println!();
    println!("| measure | result |");
    println!("| --- | --- |");
    for (measure, result) in table {
        println!("| {measure} | {result} |");
    }
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
