#!/usr/bin/env bash
# The whole test suite: installs the independent OAuth 2.0 server that the interoperability
# tests run against (the npm package oauth2-mock-server, pinned in tests/interop), then runs
# every test, doctest and example build with every feature.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "Node.js 20.19 or later is needed for the interop tests" >&2; exit 1; }
npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
cargo test --all-features
