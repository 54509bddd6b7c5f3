//! A fleet of replica processes sharing one `redis-server`: the `fleet` example's binary in its
//! `--replica` mode (a layered hyper-util client over a `TokenCache` with a `RedisStore`), against
//! the emulator's token endpoint and protected API, which run in this process and count the token
//! requests (the authoritative figure).
//!
//! Real servers and processes: the paused clock does not apply. The tests assert counts and
//! outcomes (token requests, failed requests, each replica's `CacheStats`, the generation counter
//! in Redis), never times; lifetimes and leases are short, every replica is connected (to Redis,
//! with its subscriber) before a burst, and a burst starts when the test writes `go` to every
//! replica's stdin. The tests of this file run one at a time (8 processes each, on 2 cores).
//!
//! The example's binary is built by `cargo test` (which builds the examples) or
//! `cargo build --example fleet --features redis`; it is found next to this test binary
//! (`target/<profile>/examples/fleet`), and a missing or stale one fails with what to run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, SystemTime};

use tower_bearer_emulator::{Emulator, Fault, Provider};

use crate::common::capture;
use crate::common::redis_server::{Server, redis_installed};

const PASSWORD: &str = "fleet-procs-pw-7d41c9e0";
const CLIENT_SECRET: &str = "fleet-procs-client-secret-5b2e";
const ENCRYPTION_KEY: [u8; 32] = *b"fleet-processes-encryption-key-1";
const STORE_KEY: [u8; 32] = *b"fleet-processes-store-key-32-byt";

crate::known_secrets!(
    "fleet_processes.rs Redis password" => PASSWORD,
    "fleet_processes.rs client secret" => CLIENT_SECRET,
    "fleet_processes.rs encryption key" => std::str::from_utf8(&ENCRYPTION_KEY).unwrap(),
    "fleet_processes.rs encryption key hex" => &hex(&ENCRYPTION_KEY),
    "fleet_processes.rs encryption key base64" => &base64(&ENCRYPTION_KEY),
    "fleet_processes.rs store key" => std::str::from_utf8(&STORE_KEY).unwrap(),
    "fleet_processes.rs store key hex" => &hex(&STORE_KEY),
    "fleet_processes.rs store key base64" => &base64(&STORE_KEY),
);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// How long a replica may take to start and connect, or to report once told to stop.
const WITHIN: Duration = Duration::from_secs(60);
/// The token endpoint answers after this.
const TOKEN_DELAY: Duration = Duration::from_millis(200);

/// One test of this file at a time: each runs 8 replica processes.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------------------------
// The example's binary
// ---------------------------------------------------------------------------------------------

/// `target/<profile>/examples/fleet`, next to this test binary (`target/<profile>/deps/it-*`);
/// fails if it is missing or older than the sources it is built from.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test binary>");
    let binary = profile_dir
        .join("examples")
        .join(format!("fleet{}", std::env::consts::EXE_SUFFIX));
    let how = "build it with `cargo build --example fleet --features redis` (with the same \
               target directory and profile as the tests; a plain `cargo test --all-features` \
               builds the examples, `cargo test --test it` does not)";
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "the fleet example's binary {} is missing: {how}",
                binary.display()
            )
        });
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = (SystemTime::UNIX_EPOCH, PathBuf::new());
    for source in [
        root.join("examples/fleet.rs"),
        root.join("src"),
        root.join("emulator/src"),
    ] {
        newest_file(&source, &mut newest);
    }
    assert!(
        built >= newest.0,
        "the fleet example's binary {} is older than {}: {how}",
        binary.display(),
        newest.1.display()
    );
    binary
}

fn newest_file(path: &Path, newest: &mut (SystemTime, PathBuf)) {
    let Ok(metadata) = std::fs::metadata(path) else {
        return;
    };
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            newest_file(&entry.path(), newest);
        }
    } else if let Ok(modified) = metadata.modified()
        && modified > newest.0
    {
        *newest = (modified, path.to_owned());
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet: the emulator, one redis-server, replica processes
// ---------------------------------------------------------------------------------------------

struct Fleet {
    // Dropped in this order: the emulator, Redis, then the runtime the emulator runs on.
    emulator: Emulator,
    redis: Server,
    _runtime: tokio::runtime::Runtime,
    binary: PathBuf,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Fleet {
    /// The emulator (tokens living `lifetime`, answering after 200 ms) and a `redis-server`
    /// with a password; `None` (the test is skipped) without `redis-server`.
    fn start(lifetime: Duration) -> Option<Self> {
        if !redis_installed() {
            return None;
        }
        let one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let binary = example_binary();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let emulator = runtime
            .block_on(
                Emulator::builder()
                    .client_secret(CLIENT_SECRET)
                    .token_lifetime(lifetime)
                    .token_delay(TOKEN_DELAY)
                    .start(),
            )
            .unwrap();
        Some(Self {
            emulator,
            redis: Server::start_with_password(PASSWORD),
            _runtime: runtime,
            binary,
            _one_at_a_time: one_at_a_time,
        })
    }

    /// `n` replicas with the store, each with `args`, started and connected (`ready`).
    fn replicas(&self, n: u64, args: &[&str]) -> Vec<Replica> {
        let replicas: Vec<Replica> = (0..n).map(|id| self.spawn(id, args)).collect();
        replicas
            .into_iter()
            .map(|mut replica| {
                replica.ready();
                replica
            })
            .collect()
    }

    fn spawn(&self, id: u64, args: &[&str]) -> Replica {
        let mut command = Command::new(&self.binary);
        command
            .arg("--replica")
            .args(["--id", &id.to_string()])
            .args(["--token-url", &self.emulator.token_url(Provider::Kpn)])
            .args(["--client-id", &self.emulator.client_id()])
            .args([
                "--api-url",
                &self.emulator.api_url(Provider::Kpn, "v1/items"),
            ])
            .args(["--log", "info", "--store-retry-ms", "1000"])
            .args(args)
            .env("FLEET_CLIENT_SECRET", CLIENT_SECRET)
            .env("FLEET_REDIS_URL", self.redis.url())
            .env("FLEET_ENCRYPTION_KEY", hex(&ENCRYPTION_KEY))
            .env("FLEET_STORE_KEY", hex(&STORE_KEY))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the fleet example starts");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut output = Vec::new();
            let _ = stderr.read_to_end(&mut output);
            output
        });
        Replica {
            id,
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: Some(stderr),
            key: None,
        }
    }

    /// Token requests the emulator received.
    fn token_requests(&self) -> u64 {
        self.emulator.token_requests(Provider::Kpn)
    }

    /// The last generation saved under the fleet's key (`0` if none).
    fn generation(&self, replica: &Replica) -> u64 {
        let key = replica.key.as_deref().expect("ready");
        self.redis
            .cli(&["GET", &format!("{key}:gen")])
            .parse()
            .unwrap_or(0)
    }

    /// Milliseconds the lease on the fleet's key has left (negative: no lease).
    fn lease_left_ms(&self, replica: &Replica) -> i64 {
        let key = replica.key.as_deref().expect("ready");
        self.redis
            .cli(&["PTTL", &format!("{key}:lease")])
            .parse()
            .expect("PTTL answers a number")
    }
}

/// A replica process, killed when dropped; its stderr goes into the suite's TRACE capture (so the
/// secret scan reads what the replica logged).
struct Replica {
    id: u64,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    key: Option<String>,
}

impl Replica {
    fn line(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(WITHIN) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(_) => {
                    let _ = self.child.kill();
                    let stderr = self.take_stderr();
                    panic!(
                        "replica {} wrote no `{prefix}` line; its stderr:\n{}",
                        self.id,
                        String::from_utf8_lossy(&stderr)
                    );
                }
            }
        }
    }

    fn ready(&mut self) {
        let line = self.line("ready");
        self.key = line.strip_prefix("ready key=").map(str::to_owned);
    }

    fn send(&mut self, order: &str) {
        if let Some(stdin) = &mut self.stdin {
            // A replica that has finished (a burst) no longer reads: ignore a closed pipe.
            let _ = writeln!(stdin, "{order}").and_then(|()| stdin.flush());
        }
    }

    fn go(&mut self) {
        self.send("go");
    }

    /// Reads the replica's report (once its burst or its `--seconds` are over, or once it was
    /// told to stop).
    fn report(mut self) -> Report {
        let line = self.line("done");
        let _ = self.child.wait();
        self.take_stderr();
        Report::parse(&line)
    }

    /// SIGKILL.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn take_stderr(&mut self) -> Vec<u8> {
        let Some(stderr) = self.stderr.take() else {
            return Vec::new();
        };
        // Ends when the process has gone (its end of the pipe closed).
        let output = stderr.join().unwrap_or_default();
        capture::record_output(&format!("fleet replica {}", self.id), &output);
        output
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.take_stderr();
    }
}

/// A replica's `done` line: its requests and its cache's `CacheStats`.
#[derive(Debug)]
struct Report(BTreeMap<String, u64>);

impl Report {
    fn parse(line: &str) -> Self {
        Self(
            line.split_whitespace()
                .skip(1)
                .map(|pair| {
                    let (name, value) = pair.split_once('=').expect("name=value");
                    (name.to_owned(), value.parse().expect("a number"))
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> u64 {
        *self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("{name} in {self:?}"))
    }
}

fn sum(reports: &[Report], name: &str) -> u64 {
    reports.iter().map(|r| r.get(name)).sum()
}

fn go(replicas: &mut [Replica]) {
    for replica in replicas {
        replica.go();
    }
}

fn stop(replicas: &mut [Replica]) {
    for replica in replicas {
        replica.send("stop");
    }
}

fn reports(replicas: Vec<Replica>) -> Vec<Report> {
    replicas.into_iter().map(Replica::report).collect()
}

fn sleep(duration: Duration) {
    std::thread::sleep(duration);
}

const SECOND: Duration = Duration::from_secs(1);
const MILLI: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn eight_cold_replica_processes_with_1000_concurrent_requests_each_make_one_token_request() {
    let Some(fleet) = Fleet::start(60 * SECOND) else {
        return;
    };
    let mut replicas = fleet.replicas(8, &["--burst", "1000"]);
    go(&mut replicas);
    let key_holder = replicas[0].key.clone();
    let reports = reports(replicas);
    assert_eq!(fleet.token_requests(), 1, "{reports:?}");
    assert_eq!(sum(&reports, "requests"), 8000);
    assert_eq!(sum(&reports, "ok"), 8000, "{reports:?}");
    assert_eq!(sum(&reports, "failed"), 0);
    // One replica fetched; the seven others took its token from Redis.
    assert_eq!(sum(&reports, "fetches"), 1, "{reports:?}");
    assert_eq!(sum(&reports, "store_hits"), 7, "{reports:?}");
    assert_eq!(sum(&reports, "store_fallbacks"), 0, "{reports:?}");
    let key = key_holder.expect("a store key");
    // The generation counter of a new key starts at Redis' clock, in microseconds.
    let generation: u64 = fleet
        .redis
        .cli(&["GET", &format!("{key}:gen")])
        .parse()
        .unwrap();
    assert!(generation > 1_700_000_000_000_000, "{generation}");
}

#[test]
fn eight_replica_processes_under_load_refresh_about_once_per_token_lifetime_between_them() {
    // Tokens live 2 s: each is replaced between 1 and 1.5 s after it was issued (half its
    // lifetime, plus jitter), by whichever replica comes first; the others take it from Redis.
    let lifetime = 2 * SECOND;
    let seconds = 16;
    let Some(fleet) = Fleet::start(lifetime) else {
        return;
    };
    let seconds_arg = seconds.to_string();
    let mut replicas = fleet.replicas(
        8,
        &[
            "--concurrency",
            "4",
            "--pause-ms",
            "20",
            "--seconds",
            &seconds_arg,
        ],
    );
    go(&mut replicas);
    let reports = reports(replicas);
    let token_requests = fleet.token_requests();
    eprintln!(
        "refresh: {token_requests} token requests in {seconds} s, {} requests, store hits {}",
        sum(&reports, "requests"),
        sum(&reports, "store_hits")
    );
    assert_eq!(sum(&reports, "failed"), 0, "{reports:?}");
    assert!(sum(&reports, "requests") > 8 * 4 * 100, "{reports:?}");
    // The run needed 8 consecutive tokens at least (16 s of 2-second tokens), and the fleet
    // replaced none before half its lifetime: 8 to 17, plus one for a replica that raced a save.
    // Each replica on its own would make 11 to 17; eight of them 88 or more.
    let lifetimes = seconds / lifetime.as_secs();
    let at_most = 2 * lifetimes + 2;
    assert!(
        (lifetimes..=at_most).contains(&token_requests),
        "{token_requests} token requests in {lifetimes} token lifetimes: {reports:?}"
    );
    // Every token request was a replica's fetch, none a fallback; the rest were store hits.
    assert_eq!(sum(&reports, "fetches"), token_requests, "{reports:?}");
    assert_eq!(sum(&reports, "store_fallbacks"), 0, "{reports:?}");
    assert!(sum(&reports, "store_hits") >= 7 * lifetimes, "{reports:?}");
}

#[test]
fn a_lease_holder_killed_mid_fetch_is_taken_over_by_one_replica_when_its_lease_expires() {
    let Some(fleet) = Fleet::start(60 * SECOND) else {
        return;
    };
    // The first token request hangs (longer than the holder lives); the fetch timeout of 2 s
    // makes a lease of 4 s.
    fleet
        .emulator
        .inject(Provider::Kpn, Fault::Delay(60 * SECOND));
    let mut replicas = fleet.replicas(8, &["--burst", "50", "--fetch-timeout-ms", "2000"]);
    replicas[0].go();
    let waited_since = std::time::Instant::now();
    while fleet.token_requests() == 0 {
        assert!(
            waited_since.elapsed() < WITHIN,
            "replica 0 never asked for a token"
        );
        sleep(Duration::from_millis(5));
    }
    // Replica 0 holds the lease and is fetching: kill it.
    assert!(
        fleet.lease_left_ms(&replicas[0]) > 0,
        "replica 0 holds the lease"
    );
    replicas[0].kill();
    assert!(
        fleet.lease_left_ms(&replicas[0]) > 0,
        "the dead holder's lease is still there (nobody released it)"
    );
    let mut survivors = replicas.split_off(1);
    drop(replicas);
    go(&mut survivors);
    let reports = reports(survivors);
    // One survivor took the lease once it expired and fetched; the six others waited for it
    // and took its token. No survivor's request failed.
    assert_eq!(fleet.token_requests(), 2, "{reports:?}");
    assert_eq!(sum(&reports, "failed"), 0, "{reports:?}");
    assert_eq!(sum(&reports, "ok"), 7 * 50);
    assert_eq!(sum(&reports, "fetches"), 1, "{reports:?}");
    assert_eq!(sum(&reports, "store_hits"), 6, "{reports:?}");
    assert_eq!(sum(&reports, "store_fallbacks"), 0, "{reports:?}");
}

/// Runs 8 replicas under load with 2-second tokens: 1 s sharing, then `down` for 2.5 s (every
/// replica refreshes at least once meanwhile: each token is replaced 1 to 1.5 s after it was
/// issued), then `up`, 2 s to settle (the store is retried a second after a failure), then 4 s
/// counted. Returns the token requests made while the store
/// was down, those of the counted window, and the reports.
fn outage(
    fleet: &mut Fleet,
    down: fn(&mut Server),
    up: fn(&mut Server),
) -> (u64, u64, Vec<Report>) {
    let mut replicas = fleet.replicas(8, &["--concurrency", "4", "--pause-ms", "20"]);
    go(&mut replicas);
    sleep(SECOND);
    let before = fleet.token_requests();
    down(&mut fleet.redis);
    sleep(2500 * MILLI);
    up(&mut fleet.redis);
    let during = fleet.token_requests() - before;
    sleep(2 * SECOND);
    let window_start = fleet.token_requests();
    sleep(4 * SECOND);
    let window = fleet.token_requests() - window_start;
    stop(&mut replicas);
    (during, window, reports(replicas))
}

/// What both outages must show: no failed request, every replica fell back while the store was
/// down, and afterwards the fleet shares again.
fn check_outage(during: u64, window: u64, reports: &[Report]) {
    eprintln!(
        "outage: {during} token requests while the store was down, {window} in the 4 s after; \
         fallbacks {}, store hits {}",
        sum(reports, "store_fallbacks"),
        sum(reports, "store_hits")
    );
    assert_eq!(sum(reports, "failed"), 0, "{reports:?}");
    for report in reports {
        assert!(
            report.get("store_fallbacks") >= 1,
            "every replica fetched locally while the store was down: {reports:?}"
        );
    }
    assert!(
        during >= 8,
        "each replica fetched for itself while the store was down: {during}"
    );
    // 4 s of 2-second tokens shared: 2 to 5 token requests (one per 1 to 1.5 s), one more for a
    // replica that raced a save; each replica on its own: 24 or more.
    assert!(
        (2..=6).contains(&window),
        "{window} token requests in 2 token lifetimes after the store came back: {reports:?}"
    );
}

#[test]
fn redis_killed_mid_run_and_restarted_fails_no_request_and_the_fleet_shares_again() {
    let Some(mut fleet) = Fleet::start(2 * SECOND) else {
        return;
    };
    let (during, window, reports) = outage(&mut fleet, Server::kill, Server::restart);
    check_outage(during, window, &reports);
}

#[test]
fn redis_paused_then_resumed_fails_no_request_and_the_fleet_shares_again() {
    let Some(mut fleet) = Fleet::start(2 * SECOND) else {
        return;
    };
    let (during, window, reports) = outage(
        &mut fleet,
        |redis| redis.signal("-STOP"),
        |redis| redis.signal("-CONT"),
    );
    check_outage(during, window, &reports);
}

#[test]
fn a_refused_token_is_dropped_from_the_store_once_for_the_whole_fleet() {
    let Some(fleet) = Fleet::start(60 * SECOND) else {
        return;
    };
    let mut replicas = fleet.replicas(8, &["--concurrency", "4", "--pause-ms", "20"]);
    go(&mut replicas);
    while fleet.token_requests() == 0 {
        sleep(Duration::from_millis(10));
    }
    sleep(SECOND);
    assert_eq!(fleet.token_requests(), 1);
    let first = fleet.generation(&replicas[0]);
    // The provider revokes the fleet's token: every replica's next requests get a 401.
    assert!(fleet.emulator.revoke_all() >= 1);
    sleep(2 * SECOND);
    let generation = fleet.generation(&replicas[0]);
    stop(&mut replicas);
    let reports = reports(replicas);
    // The first replica to see a 401 removed the token from Redis and fetched; the 401s of
    // the others (and their own further 401s) for the same token made no second request.
    assert_eq!(fleet.token_requests(), 2, "{reports:?}");
    assert_eq!(generation, first + 1, "two tokens were ever saved");
    assert_eq!(sum(&reports, "fetches"), 2, "{reports:?}");
    for report in &reports {
        assert!(report.get("unauthorized") >= 1, "{reports:?}");
        assert_eq!(report.get("invalidations"), 1, "{reports:?}");
        assert_eq!(report.get("errors"), 0, "{reports:?}");
        // Nothing failed but the requests that carried the revoked token.
        assert_eq!(
            report.get("failed"),
            report.get("unauthorized"),
            "{reports:?}"
        );
    }
    // Each replica took the token twice: fetched it or found it in Redis.
    assert_eq!(sum(&reports, "store_hits"), 14, "{reports:?}");
}
