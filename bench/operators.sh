#!/usr/bin/env bash
# The operator interfaces measured (bench/src/bin/operators.rs): status 3 and
# status-file rewrite times with up to 10,000 sessions held, the status text's
# allocations, the cost of a status file every second and a subscribed management
# client (side by side, interleaved), and PSS per idle session against the builds
# before the sessions registry (5c0daac) and of its first commit (7426bc0), each built
# once from `git archive` into target/operators-baseline/.
# Usage: bench/operators.sh [all|render|alloc|cost|memory] [operators options]
#   e.g. unshare -n sh -c 'ip link set lo up; bench/operators.sh cost --rounds 20 --rate-secs 5 --gib 1'
#   (in a private namespace the cost phase caps TIME_WAIT there and needs no settling;
#   add --same for an A/A run, --ioop to cost `log: ... ioop` instead of the operators,
#   --floor [--floor-bytes N] for two plain proxies, the second with the notifications'
#   bytes (N a session) moved beside it (the floor under the operators' cost),
#   --env-b VAR=VALUE or --bin-b PATH (another build) for the second proxy: with --same an A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ferrosocks -p ferrosocks-bench
target=${CARGO_TARGET_DIR:-target}
phase=${1:-all}
[ $# -gt 0 ] && shift
baselines=()
if [ "$phase" = all ] || [ "$phase" = memory ]; then
    for spec in "5c0daac:before the registry" "7426bc0:the registry's first commit"; do
        rev=${spec%%:*}
        dir=$target/operators-baseline/$rev
        if [ ! -x "$dir/target/release/ferrosocks" ]; then
            rm -rf "$dir/src"
            mkdir -p "$dir/src"
            git archive "$rev" | tar -x -C "$dir/src"
            CARGO_TARGET_DIR="$dir/target" cargo build --release -q \
                --manifest-path "$dir/src/Cargo.toml" -p ferrosocks
        fi
        baselines+=(--baseline "$rev (${spec#*:})=$dir/target/release/ferrosocks")
    done
fi
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); $(date -u +%F); commit $(git rev-parse --short HEAD)"
exec "$target/release/operators" "$phase" "${baselines[@]}" "$@"
