#!/usr/bin/env bash
# The benchmark runner: builds the release binaries, installs Dante and microsocks when
# missing, and measures ferrosocks side by side with them and the direct path.
# Usage: bench/run.sh [--reps N] [--gib N] [--soak SECONDS] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
[ -x /usr/sbin/danted ] || missing+=(dante-server)
command -v microsocks >/dev/null 2>&1 || missing+=(microsocks)
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo build --release -q -p ferrosocks -p ferrosocks-bench
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); $(date -u +%F)"
exec target/release/bench "$@"
