#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 60), one after the
# other, growing fuzz/corpus/TARGET/; stops at the first crash (its input is in
# fuzz/artifacts/TARGET/). Needs nightly and cargo-fuzz (docs/fuzzing.md).
# Usage: scripts/fuzz-all.sh [SECONDS] [TARGET…]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
for t in "${targets[@]}"; do
    echo "== $t: ${secs}s" >&2
    cargo +nightly fuzz run -O "$t" -- -max_total_time="$secs" -max_len=4096 -print_final_stats=1
done
