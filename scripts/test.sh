#!/usr/bin/env bash
# The whole test suite: installs the independent OAuth 2.0 server that the interoperability
# tests run against (the npm package oauth2-mock-server, pinned in tests/interop), then runs
# every test, doctest and example build with every feature.
#
# The run is also the secret-hygiene capture: every test binary logs everything, at TRACE, from
# the crate and its dependencies, to target/trace-capture/ (tests/common/capture.rs), and the
# scan that follows (tests/trace_scan.rs) fails if any secret or token the tests used, any
# fixture private key or anything shaped like a secret is in it, or if the capture is too thin
# to prove anything. See RELIABILITY.md, "Secret hygiene".
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "Node.js 20.19 or later is needed for the interop tests" >&2; exit 1; }
# The token store's tests start their own redis-server; without one they say SKIPPED (and fail
# when CI is set). `.ci/run` installs it: apt-get install redis-server redis-tools.
command -v redis-server >/dev/null || echo "note: redis-server is not installed: the token store's tests will be skipped" >&2
npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error

target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
capture="$(cd "$target_dir" && pwd)/trace-capture"
rm -rf "$capture"
TOWER_BEARER_TRACE_CAPTURE="$capture" cargo test --workspace --all-features
TOWER_BEARER_TRACE_SCAN="$capture" cargo test --all-features --test trace_scan -- --ignored --nocapture scan_the_capture
