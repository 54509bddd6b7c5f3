#!/usr/bin/env bash
# Instructions per request on the warm path (callgrind), for the bare inner service, tower-http's
# AddAuthorization, BearerToken, BearerToken over a cache with a token store, and BearerToken with
# GrpcUnauthenticatedLayer inside it; see tools/src/callgrind_hot_path.rs. Then the routed layer
# (two origins, the request's the second), a binary of its own (tools/src/callgrind_routed.rs).
# Usage: bash scripts/callgrind-hot-path.sh [requests per variant, default 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
cargo build --quiet --release -p tower-bearer-tools --bin callgrind_hot_path --bin callgrind_routed
bin="${CARGO_TARGET_DIR:-target}/release/callgrind_hot_path"
routed_bin="${CARGO_TARGET_DIR:-target}/release/callgrind_routed"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# Instructions per request of each variant in one callgrind run; $2 = `store` for the layer's
# cache with a token store (a run of its own: the same machine code, other data).
measure() {
    valgrind --tool=callgrind --callgrind-out-file="$out" "${binary:-$bin}" "$n" "${1:-}" >/dev/null 2>&1
    callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
        awk -v n="$n" '/callgrind_[a-z_]+::request_/ {
            gsub(",", "", $1);
            name = $0; sub(/.*::request_/, "", name); sub(/[ \[].*/, "", name);
            printf "%s %.1f\n", name, $1 / n;
        }'
}
{
    measure
    measure store | awk '$1 == "bearer_token" { print "bearer_token_store", $2 }'
    binary="$routed_bin" measure
    # The layer with GrpcUnauthenticatedLayer inside it: a build of its own (feature `grpc`).
    cargo build --quiet --release -p tower-bearer-tools --bin callgrind_hot_path --features grpc
    measure | awk '$1 == "bearer_token_grpc"'
} |
    awk '
        { ir[$1] = $2 }
        END {
            printf "%-20s %10s\n", "variant", "Ir/request";
            split("bare add_authorization bearer_token bearer_token_store bearer_token_grpc routed", order, " ");
            for (i = 1; i <= 6; i++) printf "%-20s %10.1f\n", order[i], ir[order[i]];
            if (ir["add_authorization"] > 0)
                printf "bearer_token / add_authorization = %.3f\n", ir["bearer_token"] / ir["add_authorization"];
        }'
