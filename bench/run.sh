#!/usr/bin/env bash
# The benchmark runner: builds the release binaries, installs the peers when missing
# (Dante and microsocks with apt; shadowsocks-rust's sslocal 1.25.0 and merino 0.1.3 with
# `cargo install` into bench/peers/, built once in target/peers-build), and measures
# ferrosocks side by side with them, the direct path and the floor (bench's floorproxy, a
# bare epoll relay: not a peer, never a row's best; FLOOR_THREADS=N sets its threads).
# Usage: bench/run.sh [--netns] [--reps N] [--gib N] [--soak SECONDS] [--quick]
#   --netns  run everything in a private network namespace (`unshare --net`, loopback
#            only), so the host's other traffic and TIME_WAIT sockets do not touch it;
#            there the runner caps TIME_WAIT at 1024 entries, so no phase waits for it.
#   --peers-only  install the peers and stop.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
args=()
netns=0
peers_only=0
for a in "$@"; do
    case $a in
    --netns) netns=1 ;;
    --peers-only) peers_only=1 ;;
    *) args+=("$a") ;;
    esac
done
missing=()
[ -x /usr/sbin/danted ] || missing+=(dante-server)
command -v microsocks >/dev/null 2>&1 || missing+=(microsocks)
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
peers=$root/bench/peers
peers_build=$root/target/peers-build
sslocal=$peers/shadowsocks-rust/bin/sslocal
merino=$peers/merino/bin/merino
if [ ! -x "$sslocal" ]; then
    echo "installing shadowsocks-rust 1.25.0 into $peers/shadowsocks-rust (once)" >&2
    CARGO_TARGET_DIR=$peers_build cargo install --locked -q shadowsocks-rust --version 1.25.0 \
        --no-default-features --features "local,multi-threaded,logging,aead-cipher" \
        --root "$peers/shadowsocks-rust"
fi
if [ ! -x "$merino" ]; then
    echo "installing merino 0.1.3 into $peers/merino (once)" >&2
    CARGO_TARGET_DIR=$peers_build cargo install --locked -q merino --version 0.1.3 \
        --root "$peers/merino"
fi
export FERROSOCKS_BENCH_SSLOCAL=$sslocal FERROSOCKS_BENCH_MERINO=$merino
((peers_only)) && exit 0
cargo build --release -q -p ferrosocks -p ferrosocks-bench
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); $(date -u +%F)"
if ((netns)); then
    echo "in a private network namespace (loopback only)"
    exec unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' target/release/bench "${args[@]}"
fi
exec target/release/bench "${args[@]}"
