//! The load harness's `--plots` flag, run for its quickest phase: the cold burst (10,000
//! requests waiting 200 ms for one token) writes `cold-burst-release.svg` with both curves.

use std::process::Command;

#[test]
fn the_cold_burst_writes_its_plot() {
    let dir = std::env::temp_dir().join(format!("tower-bearer-load-plots-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_load"))
        .args(["--only", "cold", "--plots"])
        .arg(&dir)
        .output()
        .expect("the load harness starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("| cold start: token requests for 10,000 requests | 1 |"),
        "{stdout}"
    );
    let path = dir.join("cold-burst-release.svg");
    assert!(
        stdout.contains(&format!("wrote {}", path.display())),
        "{stdout}"
    );
    let svg = std::fs::read_to_string(&path).expect("the plot is written");
    for label in [
        "Cold burst: 10,000 concurrent requests",
        "requests sent, waiting for the token",
        "requests released (answered)",
        "token arrives (",
    ] {
        assert!(svg.contains(label), "missing {label}");
    }
    // The sent curve (blue) and the released curves (orange, the whole burst and the zoom):
    // plotters' polylines of many points (axis ticks and legend marks have two).
    let curves = |stroke: &str| {
        svg.split("<polyline")
            .filter(|line| line.contains(stroke))
            .filter(|line| line.matches(',').count() > 100)
            .count()
    };
    assert_eq!(curves("stroke=\"#1F62B4\""), 1);
    assert_eq!(curves("stroke=\"#D66000\""), 2);
    // Only the phase that ran is plotted.
    assert!(!dir.join("rollover-latency.svg").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unusable_plots_directory_is_refused_before_the_run() {
    let output = Command::new(env!("CARGO_BIN_EXE_load"))
        .args(["--only", "cold", "--plots", "/proc/no-plots-here"])
        .output()
        .expect("the load harness starts");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--plots /proc/no-plots-here: cannot create it"),
        "{stderr}"
    );
    // Refused before the burst: no phase was run.
    assert!(!String::from_utf8_lossy(&output.stdout).contains("1. cold start"));
}
