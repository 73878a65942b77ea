#!/usr/bin/env bash
# What `log: connect disconnect ioop` to a file costs per connection in ferrosocks' own
# code, counted rather than timed: user-space instructions under callgrind (valgrind)
# for 1000 and then 3000 CONNECT + 32-byte echo + close sessions, the difference divided
# by 2000, without and with logging. Counts do not depend on the machine's load, which
# on a shared 2-core VM moves timings by ±10–20%; kernel work is not counted (see
# docs/PERFORMANCE.md, "Logging cost", for the timed side).
# Usage: bench/log-cost.sh [--keep DIR]  (DIR keeps the callgrind files)
set -euo pipefail
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
cleanup() {
    for p in "${pids[@]}" $proxy; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

target_port=$(free_port)
"$bin/loadgen" serve "127.0.0.1:$target_port" >/dev/null 2>&1 &
pids+=($!)

# instructions CONFIG-LOG-RULE SESSIONS: user-space instructions of one proxy run.
instructions() {
    local log=$1 sessions=$2 port conf out
    port=$(free_port)
    conf="$work/ferrosocks.conf"
    out="$work/callgrind.out"
    {
        [ -n "$log" ] && echo "logoutput: $work/traffic.log"
        echo "internal: 127.0.0.1 port = $port"
        echo "socksmethod: none"
        echo "client pass { from: 127.0.0.0/8 to: 0/0 }"
        echo "socks pass { from: 127.0.0.0/8 to: 0/0 ${log:+log: $log} }"
    } >"$conf"
    rm -f "$out" "$work/traffic.log"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin/ferrosocks" -f "$conf" \
        >/dev/null 2>"$work/valgrind.err" &
    proxy=$!
    for _ in $(seq 150); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.2
    done
    "$bin/loadgen" rate "127.0.0.1:$target_port" 4 120 "$sessions" "127.0.0.1:$port" >"$work/rate.txt"
    kill -INT "$proxy"
    wait "$proxy" || true
    proxy=""
    grep -q "($sessions ok, 0 errors)" "$work/rate.txt" || {
        echo "not every session succeeded: $(cat "$work/rate.txt")" >&2
        exit 1
    }
    if [ -n "$keep" ]; then
        mkdir -p "$keep"
        local name=plain
        [ -n "$log" ] && name=logged
        cp "$out" "$keep/$name-$sessions.callgrind"
    fi
    awk '/^totals:/ {print $2}' "$out"
}

per_session() {
    local a b
    a=$(instructions "$1" 1000)
    b=$(instructions "$1" 3000)
    echo $(((b - a) / 2000))
}

plain=$(per_session "")
logged=$(per_session "connect disconnect ioop")
lines=$(grep -c . "$work/traffic.log" || true)
echo "user-space instructions per session: no logging $plain, log: connect disconnect ioop $logged (+$((logged - plain)), $((100 * (logged - plain) / plain))%); $lines lines in the last log"
