//! The main demonstration: many concurrent requests through `BearerTokenLayer` across several
//! token lifetimes, against a local token source and an in-process API that checks tokens.
//!
//! Run it with `cargo run --example quickstart`. It takes about ten seconds and needs no
//! credentials. (Once the OAuth client-credentials flows land, it will talk to the crate's
//! loopback provider emulator instead of a local source.)

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_bearer::token::Fingerprint;
use tower_bearer::{BearerTokenLayer, Token, TokenCache, token_source_fn};

const TOKEN_LIFETIME: Duration = Duration::from_secs(3);
const TOKEN_ENDPOINT_LATENCY: Duration = Duration::from_millis(150);
const RUN_FOR: Duration = Duration::from_secs(10);
const CLIENTS: usize = 200;

#[tokio::main]
async fn main() {
    // The "token endpoint": issues a new random token after a delay, and remembers which tokens
    // are valid so the API below can check them.
    let issued: Arc<Mutex<HashSet<String>>> = Arc::default();
    let source = {
        let issued = Arc::clone(&issued);
        token_source_fn(move || {
            let issued = Arc::clone(&issued);
            async move {
                tokio::time::sleep(TOKEN_ENDPOINT_LATENCY).await;
                let token = format!("tok-{:032x}", fastrand::u128(..));
                issued.lock().unwrap().insert(token.clone());
                Ok(Token::new(token).with_expires_in(TOKEN_LIFETIME))
            }
        })
    };
    let cache = TokenCache::builder(source)
        .refresh_margin(Duration::from_secs(1))
        .refresh_jitter(Duration::from_millis(200))
        .build();

    // The API: 200 for a token that was issued, 401 otherwise.
    let api = service_fn(move |req: Request<()>| {
        let issued = Arc::clone(&issued);
        async move {
            let token = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default()
                .to_owned();
            let status = if issued.lock().unwrap().contains(&token) {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            let mut response = Response::new(Fingerprint::of(&token).to_string());
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        }
    });

    let client = ServiceBuilder::new()
        .layer(BearerTokenLayer::from_cache(cache.clone()))
        .service(api);

    println!(
        "{CLIENTS} clients send requests for {RUN_FOR:?}; tokens live {TOKEN_LIFETIME:?}, the \
         token endpoint takes {TOKEN_ENDPOINT_LATENCY:?}"
    );
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let slowest_us = Arc::new(AtomicU64::new(0));
    let tokens_seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = client.clone();
        let (ok, failed, slowest_us, tokens_seen) = (
            Arc::clone(&ok),
            Arc::clone(&failed),
            Arc::clone(&slowest_us),
            Arc::clone(&tokens_seen),
        );
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < RUN_FOR {
                let sent = Instant::now();
                let request = Request::get("https://api.partner.example/v1/items")
                    .body(())
                    .unwrap();
                match client.clone().oneshot(request).await {
                    Ok(response) if response.status() == StatusCode::OK => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        let mut seen = tokens_seen.lock().unwrap();
                        if seen.last() != Some(response.body()) {
                            seen.push(response.into_body());
                        }
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let micros = sent.elapsed().as_micros() as u64;
                slowest_us.fetch_max(micros, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let mut last_report = Instant::now();
    while !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            println!(
                "  {:>4.1}s  {} requests so far, {} token requests",
                start.elapsed().as_secs_f64(),
                ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed),
                cache.stats().fetches
            );
        }
    }
    for task in tasks {
        task.await.unwrap();
    }

    let stats = cache.stats();
    let mut distinct = tokens_seen.lock().unwrap().clone();
    distinct.dedup();
    let distinct: HashSet<_> = distinct.into_iter().collect();
    println!();
    println!("requests answered 200      {}", ok.load(Ordering::Relaxed));
    println!(
        "requests failed            {}",
        failed.load(Ordering::Relaxed)
    );
    println!("token requests             {}", stats.fetches);
    println!("  of which early refreshes {}", stats.early_refreshes);
    println!("requests that waited       {}", stats.waits);
    println!("401 invalidations          {}", stats.invalidations);
    println!(
        "slowest request            {:.1} ms (the first requests wait for the first token)",
        slowest_us.load(Ordering::Relaxed) as f64 / 1000.0
    );
    println!(
        "distinct tokens used       {} (shown as fingerprints: {})",
        distinct.len(),
        distinct.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    if let Ok(token) = tower_bearer::TokenSource::token(&cache).await {
        println!("current token              {token:?}");
    }
}
