#!/usr/bin/env bash
# The churn soak of issue 15, longer than the suite's: CLIENTS clients with no think time
# for SECONDS (at most MAX sessions), every close side (client first, target first,
# half-close, reset) and stalled handshakes mixed in. It is the suite's test
# crates/ferrosocks/tests/it/churn.rs, run with larger bounds; it fails on any error,
# corrupted byte, descriptor not given back, memory growth, or a tcp/accept [: without its
# ]: or a granted CONNECT without its tcp/connect ]:, and prints one summary line.
# Run as root it runs in a network namespace of its own (no TIME_WAIT shared with the host).
# Usage: bench/churn.sh [--dev] [CLIENTS [SECONDS [MAX]]]   (defaults 300 60 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=--release
if [ "${1:-}" = --dev ]; then profile=; shift; fi
export FERROSOCKS_CHURN_CLIENTS=${1:-300} FERROSOCKS_CHURN_SECS=${2:-60} FERROSOCKS_CHURN_MAX=${3:-200000}
cargo test $profile -q -p ferrosocks --test it --no-run
run="timeout $((FERROSOCKS_CHURN_SECS + 120)) cargo test $profile -q -p ferrosocks --test it churn::churn_soak -- --exact --nocapture"
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
    exec unshare -n sh -c "ip link set lo up && $run"
fi
exec $run
