//! The scan of the suite-wide TRACE capture (see `tests/common/capture.rs` and RELIABILITY.md,
//! "Secret hygiene"): every line the suite's scenarios logged at TRACE, from the crate and its
//! dependencies, is searched for every secret the tests used and for anything shaped like one.
//!
//! `scripts/test.sh` runs the suite with `TOWER_BEARER_TRACE_CAPTURE=<dir>`, then
//! `TOWER_BEARER_TRACE_SCAN=<dir> cargo test --all-features --test trace_scan -- --ignored`.
//! The scan fails on any hit (file, line, and which secret by name and fingerprint, never the
//! secret itself) and on a capture too thin to prove anything. The other tests here are its
//! self-test: planted secrets are caught, a clean capture passes, a thin one fails.
//!
//! This binary has no `mod common;`: it captures nothing itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use regex::Regex;
use sha2::{Digest, Sha256};

/// The variable naming the capture directory to scan.
const SCAN_VAR: &str = "TOWER_BEARER_TRACE_SCAN";

/// Literal secrets shorter than this are not searched: they would match everywhere (`"s"`,
/// `"t"`). The scan reports how many there were; the patterns below still apply.
const MIN_SECRET_LEN: usize = 6;

/// A secret that must not appear, as noted by a test binary or read from a fixture key.
#[derive(Clone, Debug)]
struct Secret {
    name: String,
    value: String,
}

/// A shape that is a leak wherever it appears.
struct Pattern {
    name: &'static str,
    regex: Regex,
    /// Drops matches that are not a leak (`Bearer error="invalid_token"` is an auth-param).
    keep: fn(&regex::Captures<'_>) -> bool,
}

fn always(_: &regex::Captures<'_>) -> bool {
    true
}

/// The value (capture 2) is not what the crate writes in place of a secret.
fn not_redacted(c: &regex::Captures<'_>) -> bool {
    !c[2].starts_with("[redacted]")
}

fn p(name: &'static str, re: &str, keep: fn(&regex::Captures<'_>) -> bool) -> Pattern {
    Pattern {
        name,
        regex: Regex::new(re).unwrap(),
        keep,
    }
}

fn patterns() -> Vec<Pattern> {
    vec![
        // A JWT (client assertion, Entra or Screening Eagle token): base64url JSON header.
        p(
            "JWT-shaped string",
            r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.",
            always,
        ),
        p("PEM private key", r"PRIVATE KEY-----", always),
        // A token or secret as a JSON member, plain or Debug-escaped (`\"access_token\":\"`).
        // A value the crate redacted (an echo of the request) is not a leak.
        p(
            "token or secret in JSON",
            r#"\\?"(access_token|refresh_token|id_token|client_secret|client_assertion|password)\\?"\s*:\s*\\?"([^"\\].{0,9})"#,
            not_redacted,
        ),
        // ... or as a form or query parameter.
        p(
            "token or secret as a form parameter",
            r"\b(access_token|refresh_token|id_token|client_secret|client_assertion|password)=([^&\s].{0,9})",
            not_redacted,
        ),
        // An `Authorization` value: `Bearer <token68>` (not an auth-param like `error="..."`,
        // nor the prose "only Bearer tokens are supported") or `Basic <base64>`.
        p(
            "Bearer credentials",
            r#"\b[Bb]earer\s+([A-Za-z0-9._~+/-]+=*)("|\b)?"#,
            |c| {
                let value = &c[1];
                let auth_param =
                    value.ends_with('=') && c.get(2).is_some_and(|m| m.as_str() == "\"");
                let prose = matches!(value, "token" | "tokens");
                !auth_param && !prose
            },
        ),
        p(
            "Basic credentials",
            r"\b[Bb]asic\s+[A-Za-z0-9+/]{6,}={0,2}",
            always,
        ),
        // The scripted sources' tokens: `token-0`, `grpc-token-3`, `token-a`.
        p("scripted token name", r"\btoken-([0-9]+|[ab])\b", always),
    ]
}

/// The short fingerprint a hit is reported by.
fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn unhex(hex: &str) -> Option<String> {
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// The base64 lines of every private key under `fixtures` (each a substring of the key's
/// base64, wrapped or not), so that a logged key is caught even without its PEM armour.
fn fixture_key_lines(fixtures: &Path) -> Vec<Secret> {
    let mut secrets = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if !text.contains("PRIVATE KEY-----") {
            continue;
        }
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for (i, line) in text.lines().enumerate() {
            if !line.starts_with("-----") && line.trim().len() >= 16 {
                secrets.push(Secret {
                    name: format!("fixture private key {file} line {}", i + 1),
                    value: line.trim().to_owned(),
                });
            }
        }
    }
    secrets
}

/// One leak: where, and what (by name and fingerprint).
#[derive(Debug)]
struct Hit {
    file: String,
    line: usize,
    /// The secret's name or the pattern's.
    what: String,
    /// Of what was found.
    fingerprint: String,
}

/// What a capture must at least hold for its scan to mean something.
struct Plausible {
    /// Test binaries each of which must have left a capture file.
    binaries: Vec<String>,
    min_lines: usize,
    /// Lines with a token fingerprint (`sha256:`): the crate's token events were captured.
    min_fingerprint_lines: usize,
    /// Lines logged by dependencies (hyper, h2, tonic, reqwest, ...) at TRACE.
    min_dependency_trace_lines: usize,
    /// Distinct secrets noted by the test binaries.
    min_noted_secrets: usize,
}

#[derive(Default)]
struct Report {
    files: usize,
    lines: usize,
    bytes: u64,
    lines_by_binary: BTreeMap<String, usize>,
    fingerprint_lines: usize,
    dependency_trace_lines: usize,
    noted_secrets: usize,
    noted_by_kind: BTreeMap<String, usize>,
    fixture_key_lines: usize,
    searched: usize,
    /// The names of the noted secrets too short to search, one per secret.
    too_short: Vec<String>,
    patterns: usize,
    hits: Vec<Hit>,
    problems: Vec<String>,
}

fn binary_of(file_stem: &str) -> String {
    match file_stem.rsplit_once('-') {
        Some((name, pid)) if pid.chars().all(|c| c.is_ascii_digit()) => name.to_owned(),
        _ => file_stem.to_owned(),
    }
}

/// Scans every `*.log` in `dir` for every secret noted in any `*.secrets` there, every fixture
/// key line, and every pattern.
fn scan(dir: &Path, fixtures: &Path, plausible: &Plausible) -> Report {
    let mut report = Report::default();
    let mut logs = Vec::new();
    let mut secrets: BTreeMap<String, Secret> = BTreeMap::new();
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(e) => {
            report
                .problems
                .push(format!("no capture at {}: {e}", dir.display()));
            Vec::new()
        }
    };
    entries.sort();
    for path in entries {
        match path.extension().and_then(|e| e.to_str()) {
            Some("log") => logs.push(path),
            Some("secrets") => {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines() {
                    let Some((name, value)) = line
                        .split_once('\t')
                        .and_then(|(n, h)| Some((n, unhex(h)?)))
                    else {
                        report
                            .problems
                            .push(format!("{}: unreadable line {line:.40}", path.display()));
                        continue;
                    };
                    *report.noted_by_kind.entry(name.to_owned()).or_default() += 1;
                    secrets.entry(value.clone()).or_insert(Secret {
                        name: name.to_owned(),
                        value,
                    });
                }
            }
            _ => {}
        }
    }
    report.noted_secrets = secrets.len();
    let keys = fixture_key_lines(fixtures);
    report.fixture_key_lines = keys.len();
    for key in keys {
        secrets.entry(key.value.clone()).or_insert(key);
    }
    let (searched, short): (Vec<Secret>, Vec<Secret>) = secrets
        .into_values()
        .partition(|s| s.value.len() >= MIN_SECRET_LEN);
    report.too_short = short.into_iter().map(|s| s.name).collect();
    report.searched = searched.len();
    let literals = AhoCorasick::new(searched.iter().map(|s| s.value.as_str())).unwrap();
    let patterns = patterns();
    report.patterns = patterns.len();
    let prefilter = regex::RegexSet::new(patterns.iter().map(|p| p.regex.as_str())).unwrap();
    // `<time> TRACE <thread> <spans> <target>: ...` with a dependency's target.
    let dependency = Regex::new(
        r"\sTRACE\s.*\b(h2|hyper|hyper_util|tonic|tower|reqwest|rustls|tokio|axum|mio)(::\w+)*: ",
    )
    .unwrap();

    report.files = logs.len();
    for path in &logs {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let binary = binary_of(path.file_stem().unwrap().to_str().unwrap());
        report.bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut reader = BufReader::new(std::fs::File::open(path).unwrap());
        let mut raw = Vec::new();
        let mut number = 0;
        loop {
            raw.clear();
            if reader.read_until(b'\n', &mut raw).unwrap() == 0 {
                break;
            }
            number += 1;
            let line = String::from_utf8_lossy(&raw);
            if line.contains("sha256:") {
                report.fingerprint_lines += 1;
            }
            if dependency.is_match(&line) {
                report.dependency_trace_lines += 1;
            }
            for found in literals.find_iter(line.as_ref()) {
                let secret = &searched[found.pattern().as_usize()];
                report.hits.push(Hit {
                    file: file.clone(),
                    line: number,
                    what: secret.name.clone(),
                    fingerprint: fingerprint(&secret.value),
                });
            }
            for i in prefilter.matches(&line).iter() {
                let pattern = &patterns[i];
                for caps in pattern.regex.captures_iter(&line) {
                    if (pattern.keep)(&caps) {
                        report.hits.push(Hit {
                            file: file.clone(),
                            line: number,
                            what: pattern.name.to_owned(),
                            fingerprint: fingerprint(&caps[0]),
                        });
                    }
                }
            }
        }
        report.lines += number;
        *report.lines_by_binary.entry(binary).or_default() += number;
    }

    if report.files == 0 {
        report
            .problems
            .push(format!("no capture file (*.log) in {}", dir.display()));
    }
    for binary in &plausible.binaries {
        if !report.lines_by_binary.contains_key(binary) {
            report
                .problems
                .push(format!("no capture from the test binary `{binary}`"));
        }
    }
    let mut at_least = |what: &str, got: usize, min: usize| {
        if got < min {
            report.problems.push(format!(
                "implausibly thin capture: {got} {what}, expected at least {min}"
            ));
        }
    };
    at_least("lines", report.lines, plausible.min_lines);
    at_least(
        "token fingerprint (sha256:) lines",
        report.fingerprint_lines,
        plausible.min_fingerprint_lines,
    );
    at_least(
        "TRACE lines from dependencies",
        report.dependency_trace_lines,
        plausible.min_dependency_trace_lines,
    );
    at_least(
        "secrets noted by the tests",
        report.noted_secrets,
        plausible.min_noted_secrets,
    );
    report
}

impl Report {
    fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "trace capture: {} files, {} lines, {} bytes; {} lines with a token fingerprint, {} TRACE lines from dependencies",
            self.files, self.lines, self.bytes, self.fingerprint_lines, self.dependency_trace_lines
        );
        let _ = writeln!(
            s,
            "searched for: {} secrets ({} noted by the tests, {} fixture private key lines), {} patterns; {} noted secrets shorter than {MIN_SECRET_LEN} characters left to the patterns",
            self.searched,
            self.noted_secrets,
            self.fixture_key_lines,
            self.patterns,
            self.too_short.len()
        );
        let _ = writeln!(s, "secrets noted, by kind (with repeats across binaries):");
        for (kind, n) in &self.noted_by_kind {
            let _ = writeln!(s, "  {n:>7}  {kind}");
        }
        let _ = writeln!(s, "lines by test binary:");
        for (binary, n) in &self.lines_by_binary {
            let _ = writeln!(s, "  {n:>9}  {binary}");
        }
        let _ = writeln!(s, "hits: {}", self.hits.len());
        let mut by_what: BTreeMap<&str, usize> = BTreeMap::new();
        for hit in &self.hits {
            *by_what.entry(&hit.what).or_default() += 1;
        }
        for (what, n) in by_what {
            let _ = writeln!(s, "  {n:>7}  {what}");
        }
        for hit in self.hits.iter().take(200) {
            let _ = writeln!(
                s,
                "  {}:{}: {} ({})",
                hit.file, hit.line, hit.what, hit.fingerprint
            );
        }
        for problem in &self.problems {
            let _ = writeln!(s, "problem: {problem}");
        }
        s
    }

    fn passed(&self) -> bool {
        self.hits.is_empty() && self.problems.is_empty()
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The test binaries that capture: every `tests/*.rs` but this one, and every folder of
/// `tests/` with a `main.rs` (`tests/it/`, where most tests are modules of one binary).
fn suite_binaries() -> Vec<String> {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut names: Vec<String> = std::fs::read_dir(tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs") || p.join("main.rs").is_file())
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|name| name != "trace_scan")
        .collect();
    names.sort();
    names
}

#[test]
#[ignore = "run by scripts/test.sh after the capture run, with TOWER_BEARER_TRACE_SCAN=<dir>"]
fn scan_the_capture() {
    let dir = std::env::var_os(SCAN_VAR)
        .unwrap_or_else(|| panic!("set {SCAN_VAR} to the capture directory"));
    let plausible = Plausible {
        binaries: suite_binaries(),
        min_lines: 20_000,
        min_fingerprint_lines: 200,
        min_dependency_trace_lines: 10_000,
        min_noted_secrets: 100,
    };
    let report = scan(Path::new(&dir), &fixtures(), &plausible);
    let summary = report.summary();
    if !report.passed() {
        panic!("the TRACE capture scan failed:\n{summary}");
    }
    println!("{summary}");
}

// The self-test.

/// A fresh directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("trace-scan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hex(value: &str) -> String {
    value.bytes().map(|b| format!("{b:02x}")).collect()
}

const NOTED: &str = "opaque-KPN-token-7Hq2ZpX9";
const CLEAN: &[&str] = &[
    "2026-01-01T00:00:00.000001Z  INFO main tower_bearer::cache::core: token stored cache=1 token=sha256:0123456789ab lifetime_s=3600",
    "2026-01-01T00:00:00.000002Z TRACE main h2::codec::framed_read: received frame=Headers { stream_id: StreamId(1), flags: (0x4: END_HEADERS) }",
    "2026-01-01T00:00:00.000003Z DEBUG main token_request{provider=KPN client_id=app auth=\"client_secret_post\"}: tower_bearer::oauth::client: token issued token=sha256:ba9876543210",
    "2026-01-01T00:00:00.000004Z  WARN main tower_bearer::cache::core: token fetch failed; backing off error=the provider refused: Bearer error=\"invalid_token\", error_description=\"expired\" hint: check the client id and secret",
    "2026-01-01T00:00:00.000005Z DEBUG main tower_bearer::oauth::client: token request failed error=token type `mac` is not supported; only Bearer tokens can be sent",
];

fn capture(dir: &Path, binary: &str, lines: &[String], secrets: &[(&str, &str)]) {
    let mut log = CLEAN.iter().map(|l| format!("{l}\n")).collect::<String>();
    for line in lines {
        log.push_str(line);
        log.push('\n');
    }
    std::fs::write(dir.join(format!("{binary}-42.log")), log).unwrap();
    let noted: String = secrets
        .iter()
        .map(|(name, value)| format!("{name}\t{}\n", hex(value)))
        .collect();
    std::fs::write(dir.join(format!("{binary}-42.secrets")), noted).unwrap();
}

fn lenient(binaries: &[&str]) -> Plausible {
    Plausible {
        binaries: binaries.iter().map(|b| b.to_string()).collect(),
        min_lines: 4,
        min_fingerprint_lines: 2,
        min_dependency_trace_lines: 1,
        min_noted_secrets: 1,
    }
}

#[test]
fn a_clean_capture_passes() {
    let dir = scratch("clean");
    capture(
        &dir,
        "cache",
        &[],
        &[("scripted token", NOTED), ("short", "s")],
    );
    let report = scan(&dir, &fixtures(), &lenient(&["cache"]));
    assert!(report.passed(), "{}", report.summary());
    assert_eq!(report.lines, CLEAN.len());
    assert_eq!(report.noted_secrets, 2);
    assert_eq!(report.too_short.len(), 1);
    assert!(report.fixture_key_lines > 20, "{}", report.summary());
}

#[test]
fn a_redacted_echo_is_not_a_hit_but_an_unredacted_one_is() {
    let dir = scratch("redacted");
    let lines = [
        // 6, 7: what the crate makes of a request a server echoed
        "DEBUG tower_bearer::oauth::client: token request failed error=received grant_type=client_credentials&client_id=c&client_secret=[redacted]&scope=x".to_owned(),
        r#"TRACE app: error=TokenError { body_snippet: Some("{\"client_assertion\":\"[redacted]\"}") }"#.to_owned(),
        // 8, 9: the same, not redacted
        "DEBUG tower_bearer::oauth::client: token request failed error=received client_secret=Q3h8Q%7EZt2".to_owned(),
        r#"TRACE app: error=TokenError { body_snippet: Some("{\"client_secret\":\"[re\"}") }"#.to_owned(),
    ];
    capture(&dir, "client_credentials", &lines, &[("x", NOTED)]);
    let report = scan(&dir, &fixtures(), &lenient(&["client_credentials"]));
    let hit: BTreeSet<usize> = report.hits.iter().map(|h| h.line).collect();
    assert_eq!(hit, BTreeSet::from([8, 9]), "{}", report.summary());
}

#[test]
fn every_planted_secret_is_caught_and_never_printed() {
    let dir = scratch("planted");
    let key = std::fs::read_to_string(fixtures().join("rsa-pkcs8.pem")).unwrap();
    let key_line = key.lines().nth(5).unwrap().to_owned();
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcHAifQ.c2lnbmF0dXJl";
    let planted = [
        // 6: a noted secret inside an error message
        format!("ERROR tower_bearer: token request failed error=bad token {NOTED} refused"),
        // 7: a JWT nobody noted (a client assertion made at run time)
        format!("DEBUG reqwest::connect: body=client_assertion_type=x&assertion {jwt}"),
        // 8: a PEM block
        "TRACE app: key=-----BEGIN PRIVATE KEY-----".to_owned(),
        // 9: a line of a fixture key, unarmoured
        format!("TRACE app: der={key_line}"),
        // 10: a token in a Debug-escaped JSON body snippet
        r#"WARN tower_bearer: error=malformed body_snippet="{\"access_token\":\"abc\",\"expires_in\":\"36""#.to_owned(),
        // 11: a form body
        "TRACE hyper: body=grant_type=client_credentials&client_id=c&client_secret=x".to_owned(),
        // 12: an Authorization header
        "TRACE h2: headers={\"authorization\": \"Bearer Zm9vYmFy.opaque\"}".to_owned(),
        // 13: Basic credentials
        "TRACE reqwest: authorization: Basic YXBwOnMzY3JldA==".to_owned(),
        // 14: a scripted token name
        "DEBUG tower_bearer: kept token-3 for later".to_owned(),
    ];
    capture(
        &dir,
        "emulator",
        &planted,
        &[("emulator access_token", NOTED)],
    );
    let report = scan(&dir, &fixtures(), &lenient(&["emulator"]));
    assert!(!report.passed());
    let lines: BTreeSet<usize> = report.hits.iter().map(|h| h.line).collect();
    assert_eq!(
        lines,
        (6..=14).collect::<BTreeSet<_>>(),
        "{}",
        report.summary()
    );
    assert!(report.hits.iter().all(|h| h.file == "emulator-42.log"));
    let summary = report.summary();
    assert!(
        summary.contains(&format!(
            "emulator-42.log:6: emulator access_token ({})",
            fingerprint(NOTED)
        )),
        "{summary}"
    );
    assert!(
        summary.contains("emulator-42.log:9: fixture private key rsa-pkcs8.pem line 6"),
        "{summary}"
    );
    for secret in [
        NOTED,
        jwt,
        key_line.as_str(),
        "Zm9vYmFy.opaque",
        "YXBwOnMzY3JldA==",
    ] {
        assert!(
            !summary.contains(secret),
            "the report shows a secret:\n{summary}"
        );
    }
}

#[test]
fn a_thin_or_missing_capture_fails() {
    // Nothing there.
    let report = scan(
        &scratch("missing").join("nope"),
        &fixtures(),
        &lenient(&["cache"]),
    );
    assert!(!report.passed());
    assert!(
        report.summary().contains("no capture file"),
        "{}",
        report.summary()
    );

    // Files, but no fingerprint, no dependency line, no noted secret, a binary missing.
    let dir = scratch("thin");
    std::fs::write(
        dir.join("cache-1.log"),
        "INFO something happened\n".repeat(10),
    )
    .unwrap();
    std::fs::write(dir.join("cache-1.secrets"), "").unwrap();
    let report = scan(&dir, &fixtures(), &lenient(&["cache", "layer"]));
    let summary = report.summary();
    assert!(report.hits.is_empty(), "{summary}");
    for problem in [
        "no capture from the test binary `layer`",
        "0 token fingerprint (sha256:) lines",
        "0 TRACE lines from dependencies",
        "0 secrets noted by the tests",
    ] {
        assert!(summary.contains(problem), "missing {problem:?}:\n{summary}");
    }
}
