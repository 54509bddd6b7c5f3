//! The main demonstration: the loopback provider emulator (`tower-bearer-emulator`), one layered hyper client per
//! provider (Kontrolle+, Screening Eagle ID, KPN API Store), and many concurrent requests across
//! several token lifetimes. It prints what happened, with tokens shown only as fingerprints.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! No credentials needed: the emulator plays the three token endpoints and a protected API on
//! 127.0.0.1. Tokens live 4 seconds here, so a 12-second run spans three lifetimes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_bearer::oauth::{ClientCredentials, ServiceTransport, Transport};
use tower_bearer::providers::{KontrollePlus, Kpn, ScreeningEagle};
use tower_bearer::{BearerTokenLayer, TokenCache, TokenSource};
use tower_bearer_emulator::{Emulator, Provider};

const TOKEN_LIFETIME: Duration = Duration::from_secs(4);
const RUN_FOR: Duration = Duration::from_secs(12);
const CLIENTS_PER_PROVIDER: usize = 50;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder()
        .token_lifetime(TOKEN_LIFETIME)
        .start()
        .await?;
    println!(
        "emulator on {}; tokens live {TOKEN_LIFETIME:?}; {CLIENTS_PER_PROVIDER} concurrent \
         clients per provider for {RUN_FOR:?}\n",
        emulator.addr()
    );
    let http: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let transport = || ServiceTransport::new(http.clone());

    let kontrolle = KontrollePlus::new()
        .authority(emulator.authority())
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .app_id_uri(emulator.app_id_uri())
        .build(transport())?;
    let screening_eagle = ScreeningEagle::new()
        .base_url(emulator.screening_eagle_base_url())
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .scopes(["openid", "email", "profile", "inspect"])
        .build(transport())?;
    let kpn = Kpn::new()
        .token_url(emulator.token_url(Provider::Kpn))
        .client_id(emulator.client_id())
        .client_secret(emulator.client_secret())
        .build(transport())?;

    let (k, s, p) = tokio::join!(
        drive(&emulator, Provider::KontrollePlus, kontrolle, &http),
        drive(&emulator, Provider::ScreeningEagle, screening_eagle, &http),
        drive(&emulator, Provider::Kpn, kpn, &http),
    );
    println!(
        "{:<20} {:>9} {:>7} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9}  current token",
        "provider", "requests", "failed", "tokens", "refresh", "waited", "p50", "p99", "max"
    );
    for report in [k, s, p] {
        println!("{report}");
    }
    println!(
        "\n`tokens` counts token requests the emulator received; `refresh` those made in the \
         background ahead of expiry; `waited` requests that had to wait for a token (only the \
         first burst)."
    );
    Ok(())
}

/// Runs the clients of one provider and reports.
async fn drive<T: Transport + 'static>(
    emulator: &Emulator,
    provider: Provider,
    source: ClientCredentials<T>,
    http: &HttpClient,
) -> String {
    let cache = TokenCache::builder(source)
        .refresh_margin(Duration::from_secs(1))
        .refresh_jitter(Duration::from_millis(300))
        .build();
    let client = ServiceBuilder::new()
        .layer(BearerTokenLayer::from_cache(cache.clone()))
        .service(http.clone());
    let url = emulator.api_url(provider, "v1/items");
    let failed = Arc::new(AtomicU64::new(0));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS_PER_PROVIDER {
        let (client, url, failed, latencies) = (
            client.clone(),
            url.clone(),
            Arc::clone(&failed),
            Arc::clone(&latencies),
        );
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < RUN_FOR {
                let sent = Instant::now();
                let request = Request::get(&url)
                    .body(Full::default())
                    .expect("valid request");
                match client.clone().oneshot(request).await {
                    Ok(response) if response.status() == StatusCode::OK => {}
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies.lock().expect("not poisoned").push(sent.elapsed());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    let mut latencies = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let ms = |d: Duration| format!("{:.2}ms", d.as_secs_f64() * 1000.0);
    let stats = cache.stats();
    let current = match cache.token().await {
        Ok(token) => token.fingerprint().to_string(),
        Err(e) => format!("none ({})", e.kind()),
    };
    format!(
        "{:<20} {:>9} {:>7} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9}  {current}",
        provider.to_string(),
        latencies.len(),
        failed.load(Ordering::Relaxed),
        emulator.token_requests(provider),
        stats.early_refreshes,
        stats.waits,
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
    )
}
