//! The load harness: cold start, rollover across token lifetimes, and end to end over loopback,
//! each against a baseline, with a progress line every 2 s and a summary table at the end.
//!
//! ```text
//! cargo run --release -p tower-bearer-tools --bin load
//! cargo run --release -p tower-bearer-tools --bin load -- --only e2e --e2e-rounds 10 --e2e-seconds 5
//! ```
//!
//! 1. Cold start: 10,000 concurrent requests on an empty cache, the token endpoint (the
//!    emulator, over HTTP) answering after 200 ms: how many token requests, and the latency.
//! 2. Rollover: steady load for 12 s with tokens that live 3 s and a token endpoint that takes
//!    200 ms: requests delayed by a refresh, and p99/max against a static token.
//! 3. End to end: a hyper client with the layer against an axum server on loopback, against the
//!    same client with a static header: throughput ratio.

use std::convert::Infallible;
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
use tower_bearer::{BearerTokenLayer, StaticToken, Token, TokenCache, TokenSource};
use tower_bearer_emulator::{Emulator, Fault, Provider};
use tower_http::auth::AddAuthorizationLayer;

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

async fn cold_start(emulator: &Emulator) -> (u64, Latencies) {
    emulator.inject(Provider::Kpn, Fault::Delay(Duration::from_millis(200)));
    let before = emulator.token_requests(Provider::Kpn);
    let service = BearerTokenLayer::new(kpn(emulator)).layer(local_api());
    let mut tasks = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            service
                .oneshot(Request::get("https://api.example/").body(()).unwrap())
                .await
                .expect("served");
            start.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(10_000);
    for task in tasks {
        latencies.push(task.await.expect("task"));
    }
    latencies.sort();
    (
        emulator.token_requests(Provider::Kpn) - before,
        Latencies(latencies),
    )
}

/// Steady load through `source` for `run_for`; returns latencies and requests that waited.
async fn steady<S: TokenSource + 'static>(source: S, run_for: Duration) -> (Latencies, u64, u64) {
    let cache = TokenCache::builder(source)
        .refresh_margin(Duration::from_secs(1))
        .refresh_jitter(Duration::from_millis(200))
        .build();
    // Warm first: the cold start is phase 1's subject.
    cache.token().await.expect("first token");
    let warm = cache.stats();
    let service = BearerTokenLayer::from_cache(cache.clone()).layer(local_api());
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    progress("rollover", Arc::clone(&count), Arc::clone(&done));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (service, latencies, count) =
            (service.clone(), Arc::clone(&latencies), Arc::clone(&count));
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while start.elapsed() < run_for {
                let sent = Instant::now();
                service
                    .clone()
                    .oneshot(Request::get("https://api.example/").body(()).unwrap())
                    .await
                    .expect("served");
                mine.push(sent.elapsed());
                count.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    done.store(true, Ordering::Relaxed);
    let mut all = std::mem::take(&mut *latencies.lock().unwrap());
    all.sort();
    let stats = cache.stats();
    (
        Latencies(all),
        stats.waits - warm.waits,
        stats.early_refreshes - warm.early_refreshes,
    )
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

/// Command-line options: `--only cold|rollover|e2e`, `--e2e-rounds N` (default 2),
/// `--e2e-seconds S` (default 3).
struct Options {
    only: Option<String>,
    e2e_rounds: usize,
    e2e_seconds: u64,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut options = Self {
            only: None,
            e2e_rounds: 2,
            e2e_seconds: 3,
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
                "--e2e-rounds" => options.e2e_rounds = number()?.max(1) as usize,
                "--e2e-seconds" => options.e2e_seconds = number()?.max(1),
                _ => {
                    return Err(format!(
                        "unknown option {flag} {value}; use --only cold|rollover|e2e, \
                         --e2e-rounds N, --e2e-seconds S"
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
/// Returns the requests/s of each, summed over rounds, and each round's ratio.
async fn end_to_end(rounds: usize, seconds: u64) -> Result<(f64, f64, Vec<f64>), std::io::Error> {
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
    let (mut with_layer, mut with_header, mut ratios) = (0.0, 0.0, Vec::new());
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
        with_header += header;
        with_layer += layer;
        ratios.push(layer / header);
    }
    Ok((with_header, with_layer, ratios))
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

    if options.runs("cold") {
        println!("1. cold start: 10,000 concurrent requests, token endpoint answers after 200 ms");
        let (token_requests, cold) = cold_start(&emulator).await;
        table.push((
            "cold start: token requests for 10,000 requests".to_owned(),
            token_requests.to_string(),
        ));
        table.push(("cold start: latency".to_owned(), cold.summary()));
    }

    if options.runs("rollover") {
        println!("2. rollover: 200 callers for 12 s, tokens live 3 s, each fetch takes 200 ms");
        for _ in 0..16 {
            emulator.inject(Provider::Kpn, Fault::Delay(Duration::from_millis(200)));
        }
        let (rolling, waited, refreshes) = steady(kpn(&emulator), Duration::from_secs(12)).await;
        let (fixed, _, _) = steady(
            StaticToken::new(Token::new("static-token")),
            Duration::from_secs(12),
        )
        .await;
        table.push(("rollover: requests".to_owned(), rolling.0.len().to_string()));
        table.push((
            "rollover: requests that waited for a token".to_owned(),
            format!("{waited} (early refreshes: {refreshes})"),
        ));
        table.push((
            "rollover: latency, refreshing tokens".to_owned(),
            rolling.summary(),
        ));
        table.push((
            "rollover: latency, static token".to_owned(),
            fixed.summary(),
        ));
        table.push((
            "rollover: added p99 / max".to_owned(),
            format!(
                "{:?} / {:?}",
                rolling.at(0.99).saturating_sub(fixed.at(0.99)),
                rolling.at(1.0).saturating_sub(fixed.at(1.0))
            ),
        ));
    }

    if options.runs("e2e") {
        let (rounds, seconds) = (options.e2e_rounds, options.e2e_seconds);
        println!(
            "3. end to end: hyper client -> axum on loopback, 64 callers, {rounds} rounds of \
             {seconds} s each way, alternating order"
        );
        let (with_header, with_layer, ratios) = end_to_end(rounds, seconds).await?;
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
    }

    println!();
    println!("| measure | result |");
    println!("| --- | --- |");
    for (measure, result) in table {
        println!("| {measure} | {result} |");
    }
    Ok(())
}
