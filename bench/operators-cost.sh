#!/usr/bin/env bash
# What the operators cost per connection in ferrosocks' own code, counted rather than
# timed (as bench/log-cost.sh counts logging): user-space instructions of the whole
# proxy under callgrind for 1000 and then 3000 CONNECT + 32-byte echo + close sessions,
# the difference divided by 2000, for
#   plain      `log: connect disconnect` to a file;
#   operators  the same, plus `status.file` (version 2) every second,
#              `management: 127.0.0.1 port = N`, `log.traffic.operators: on`, and one
#              management client (`operators client`) on `bytecount 1` and `log on`.
# The status file and bytecount are timed, not per session: under callgrind the 2000
# more sessions take longer, so their rewrites are in the difference too (the script
# prints the run times and the rewrites seen). Kernel work is not counted.
# Usage: bench/operators-cost.sh [--keep DIR]  (DIR keeps the callgrind files)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
keep=""
[ "${1:-}" = "--keep" ] && keep=${2:?--keep DIR}
if ! command -v valgrind >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
cargo build --release -q -p ferrosocks -p ferrosocks-bench
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
pids=()
proxy=""
client=""
cleanup() {
    for p in "${pids[@]}" $proxy $client; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    for _ in $(seq 150); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.2
    done
    echo "nothing listens on $1" >&2
    exit 1
}

target_port=$(free_port)
"$bin/loadgen" serve "127.0.0.1:$target_port" >/dev/null 2>&1 &
pids+=($!)

# instructions KIND SESSIONS: user-space instructions of one proxy run; also leaves
# $work/KIND-SESSIONS.{callgrind,client,secs}.
instructions() {
    local kind=$1 sessions=$2 port mport conf out t0 t1
    port=$(free_port)
    conf="$work/ferrosocks.conf"
    out="$work/$kind-$sessions.callgrind"
    {
        echo "logoutput: $work/traffic.log"
        echo "internal: 127.0.0.1 port = $port"
        echo "socksmethod: none"
        if [ "$kind" = operators ]; then
            mport=$(free_port)
            echo "management: 127.0.0.1 port = $mport"
            echo "status.file: $work/status"
            echo "status.interval: 1"
            echo "status.version: 2"
            echo "log.traffic.operators: on"
        fi
        echo "client pass { from: 127.0.0.0/8 to: 0/0 }"
        echo "socks pass { from: 127.0.0.0/8 to: 0/0 log: connect disconnect }"
    } >"$conf"
    rm -f "$work/traffic.log"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin/ferrosocks" -f "$conf" \
        >/dev/null 2>"$work/valgrind.err" &
    proxy=$!
    wait_port "$port"
    if [ "$kind" = operators ]; then
        wait_port "$mport"
        "$bin/operators" client "127.0.0.1:$mport" 900 >"$work/$kind-$sessions.client" &
        client=$!
        for _ in $(seq 150); do
            grep -q subscribed "$work/$kind-$sessions.client" && break
            sleep 0.2
        done
        grep -q subscribed "$work/$kind-$sessions.client" || {
            echo "the management client did not subscribe" >&2
            exit 1
        }
    fi
    t0=$(date +%s.%N)
    "$bin/loadgen" rate "127.0.0.1:$target_port" 4 300 "$sessions" "127.0.0.1:$port" >"$work/rate.txt"
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}' >"$work/$kind-$sessions.secs"
    kill -INT "$proxy"
    wait "$proxy" || true
    proxy=""
    if [ -n "$client" ]; then
        wait "$client" || true
        client=""
    fi
    grep -q "($sessions ok, 0 errors)" "$work/rate.txt" || {
        echo "not every session succeeded: $(cat "$work/rate.txt")" >&2
        exit 1
    }
    awk '/^totals:/ {print $2}' "$out"
}

per_session() {
    local a b
    a=$(instructions "$1" 1000)
    b=$(instructions "$1" 3000)
    echo $(((b - a) / 2000))
}

plain=$(per_session plain)
ops=$(per_session operators)
echo "user-space instructions per session: plain $plain, operators $ops (+$((ops - plain)), $((100 * (ops - plain) / plain))%)"
for k in plain operators; do
    echo "  $k: rate runs of 1000 and 3000 sessions took $(cat "$work/$k-1000.secs") s and $(cat "$work/$k-3000.secs") s under callgrind"
done
echo "  management client, 1000 sessions: $(cat "$work/operators-1000.client" | tail -1)"
echo "  management client, 3000 sessions: $(cat "$work/operators-3000.client" | tail -1)"
if [ -n "$keep" ]; then
    mkdir -p "$keep"
    cp "$work"/*.callgrind "$keep"/
    echo "callgrind files in $keep (callgrind_annotate --inclusive=yes FILE)"
fi
