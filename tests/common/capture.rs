//! The suite-wide TRACE capture (see RELIABILITY.md, "Secret hygiene").
//!
//! With `TOWER_BEARER_TRACE_CAPTURE=<dir>` set, every test binary that has `mod common;`
//! installs at process start a global `tracing` subscriber at TRACE level for every target (the
//! crate and its dependencies: hyper, h2, tonic, reqwest; `log` records too), with span fields,
//! span creation and close, writing to `<dir>/<binary>-<pid>.log`. The secrets the tests use are
//! noted as they appear in `<dir>/<binary>-<pid>.secrets` (`name<TAB>hex(value)` lines): the
//! tokens the scripted sources hand out, every `Authorization` value the test APIs receive, what
//! the emulator is given, receives and issues ([`tower_bearer_emulator::observe_secrets`]),
//! and the constants a test file declares with [`known_secrets!`]. `tests/trace_scan.rs` then
//! searches every capture for every secret and for secret-shaped text.
//!
//! Without the variable nothing is installed and nothing is written. A test that sets its own
//! subscriber (`tracing::subscriber::set_default`) keeps it for its thread.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The variable that turns the capture on: the directory to write to.
pub const CAPTURE_VAR: &str = "TOWER_BEARER_TRACE_CAPTURE";

struct Capture {
    log: Mutex<BufWriter<File>>,
    secrets: Mutex<Secrets>,
}

struct Secrets {
    file: BufWriter<File>,
    seen: HashSet<String>,
}

/// Opened on first use (the constructors of a binary run in no set order).
static CAPTURE: OnceLock<Option<Capture>> = OnceLock::new();

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// `cache` for `target/debug/deps/cache-0123abcd`.
fn binary_name() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem,
    }
}

fn capture() -> Option<&'static Capture> {
    CAPTURE
        .get_or_init(|| {
            let dir = PathBuf::from(std::env::var_os(CAPTURE_VAR).filter(|d| !d.is_empty())?);
            let base = format!("{}-{}", binary_name(), std::process::id());
            let open = |ext: &str| {
                std::fs::create_dir_all(&dir)
                    .and_then(|()| File::create(dir.join(format!("{base}.{ext}"))))
                    .unwrap_or_else(|e| panic!("{CAPTURE_VAR}={}: {e}", dir.display()))
            };
            Some(Capture {
                log: Mutex::new(BufWriter::with_capacity(1 << 20, open("log"))),
                secrets: Mutex::new(Secrets {
                    file: BufWriter::new(open("secrets")),
                    seen: HashSet::new(),
                }),
            })
        })
        .as_ref()
}

#[ctor::ctor(unsafe)]
fn install() {
    if capture().is_none() {
        return;
    }
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_target(true)
        .with_thread_names(true)
        .with_span_events(
            tracing_subscriber::fmt::format::FmtSpan::NEW
                | tracing_subscriber::fmt::format::FmtSpan::CLOSE,
        )
        .with_writer(|| LogWriter)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    // `log` records (reqwest, rustls-platform-verifier) as `tracing` events.
    tracing_log::LogTracer::init().expect("no other logger");
    tower_bearer_emulator::observe_secrets(|kind, secret| {
        register(&format!("emulator {kind}"), secret)
    });
}

/// Writes what is still buffered when the process exits (the test harness exits through
/// `exit`, which runs this).
#[dtor::dtor(unsafe)]
fn flush() {
    if let Some(capture) = capture() {
        let _ = lock(&capture.log).flush();
        let _ = lock(&capture.secrets).file.flush();
    }
}

/// The subscriber's writer: each event is formatted first, then written here in one piece.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match capture() {
            Some(capture) => lock(&capture.log).write(buf),
            None => Ok(buf.len()),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match capture() {
            Some(capture) => lock(&capture.log).write_all(buf),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether the capture is on in this process.
pub fn capturing() -> bool {
    capture().is_some()
}

/// Notes `value` as a secret that must never appear in the capture; `name` says what it is
/// (the scanner reports hits by name and fingerprint, never by value).
pub fn register(name: &str, value: &str) {
    let Some(capture) = capture() else { return };
    if value.is_empty() {
        return;
    }
    let mut secrets = lock(&capture.secrets);
    if secrets.seen.insert(value.to_owned()) {
        let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
        let name = name.replace(['\t', '\n', '\r'], " ");
        let _ = writeln!(secrets.file, "{name}\t{hex}");
    }
}

/// Adds output that did not go through the global subscriber to the capture, each line
/// prefixed with `[label]`: what a child process wrote to its stderr (what an operator would
/// see), what a test's own subscriber collected.
pub fn record_output(label: &str, output: &[u8]) {
    let Some(capture) = capture() else { return };
    let mut log = lock(&capture.log);
    for line in String::from_utf8_lossy(output).lines() {
        let _ = writeln!(log, "[{label}] {line}");
    }
}

/// Registers a test file's constant secrets at process start:
/// `known_secrets!("client secret" => SECRET, "token" => TOKEN);`
#[macro_export]
macro_rules! known_secrets {
    ($($name:literal => $value:expr),* $(,)?) => {
        #[ctor::ctor(unsafe)]
        fn register_known_secrets() {
            $( $crate::common::capture::register($name, $value); )*
        }
    };
}
