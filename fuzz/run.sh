#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 10), or for RUNS executions each when given.
# CI: `bash fuzz/run.sh 10`. The long run: `bash fuzz/run.sh 0 10000000` (10 million each).
# Uses `-s none` (no sanitizer), which works on the stable toolchain. Fails on any crash.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-10}
runs=${2:-0}
mkdir -p logs
for target in token_response error_response claims config token_request store_value discovery; do
    mkdir -p "corpus/$target"
    args=(-max_len=4096)
    if [ "$runs" -gt 0 ]; then args+=(-runs="$runs"); else args+=(-max_total_time="$seconds"); fi
    log="logs/$target.log"
    echo "==> fuzz $target (${args[*]})"
    if ! cargo fuzz run -s none "$target" "corpus/$target" "seeds/$target" -- "${args[@]}" > "$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz target $target failed: see fuzz/$log and fuzz/artifacts/$target" >&2
        exit 1
    fi
    grep -E '^(Done [0-9]+ runs|#[0-9]+[[:space:]]+DONE)' "$log" | tail -n 2
done
