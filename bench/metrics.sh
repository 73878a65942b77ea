#!/usr/bin/env bash
# Scraping under load (issue 10, docs/metrics.md): `loadgen rate` (CONNECT + 32-byte echo +
# close) through a ferrosocks with `metrics:` on, in interleaved rounds without and with a
# scraper (GET /metrics and GET /status.json every 100 ms, one curl process on one kept-alive
# connection, so that the scraper's own CPU is small beside the proxy's) and 1,000 HTTP
# connections opened on the endpoint (it keeps 64 and closes the rest). Prints each round's
# conn/s, p50 and p99 and the proxy's CPU per connection (utime+stime of the process, which
# includes the endpoint's work): the two columns should not differ beyond the rounds' own
# spread. A benchmark, not a test.
# Usage: bench/metrics.sh [ROUNDS] [SECONDS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ferrosocks -p ferrosocks-bench
target=${CARGO_TARGET_DIR:-target}
rounds=${1:-3}
secs=${2:-5}
conc=${3:-32}
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
# shellcheck source=bench/lib.sh
source bench/lib.sh
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    exit 1
}
tport=$(free_port)
sport=$(free_port)
mport=$(free_port)
"$target/release/loadgen" serve "127.0.0.1:$tport" >/dev/null &
pids+=($!)
cat >"$dir/f.conf" <<CONF
internal: 127.0.0.1 port = $sport
external: 127.0.0.1
metrics: 127.0.0.1 port = $mport
socksmethod: none
client pass { from: 127.0.0.0/8 to: 0/0 }
socks pass { from: 127.0.0.0/8 to: 0/0 }
CONF
"$target/release/ferrosocks" -f "$dir/f.conf" >/dev/null 2>"$dir/err" &
pids+=($!)
wait_port "$tport"
wait_port "$sport"
wait_port "$mport"
scrape() {
    # 20 requests a second (each of the two pages every 100 ms), bounded: 100,000 at most.
    exec curl -s --rate 20/s -o /dev/null "http://127.0.0.1:$mport/{metrics,status.json}?[1-50000]"
}
idle_http() {
    exec python3 -c '
import socket, sys, time
held = []
for _ in range(1000):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
    except OSError:
        pass
time.sleep(3600)
' "$mport"
}
proxy_pid=${pids[1]}
ticks() { awk '{print $14 + $15}' "/proc/$proxy_pid/stat"; }
hz=$(getconf CLK_TCK)
# One rate run, and the proxy's CPU per connection in it (µs).
rate() {
    local before after out conns
    before=$(ticks)
    out=$("$target/release/loadgen" rate "127.0.0.1:$tport" "$conc" "$secs" 100000000 "127.0.0.1:$sport")
    after=$(ticks)
    conns=$(grep -o '[0-9]* ok' <<<"$out" | grep -o '[0-9]*' || true)
    if [ -n "$conns" ] && [ "$conns" -gt 0 ]; then
        echo "$out, proxy CPU $(((after - before) * 1000000 / hz / conns)) µs/conn"
    else
        echo "$out, proxy CPU $(((after - before) * 1000 / hz)) ms"
    fi
}
echo "machine: $(nproc) cores, $(uname -r); $(date -u +%F); commit $(git rev-parse --short HEAD); $rounds rounds of ${secs}s, concurrency $conc"
for r in $(seq "$rounds"); do
    echo "round $r, no scraper:      $(rate)"
    scrape &
    s=$!
    idle_http &
    i=$!
    sleep 0.5
    echo "round $r, scraped + 1000 idle: $(rate)"
    kill "$s" "$i" 2>/dev/null || true
    wait "$s" "$i" 2>/dev/null || true
done
count=$(curl -s "http://127.0.0.1:$mport/metrics" | grep -c '^ferrosocks_requests_total' || true)
echo "requests series after the run: $count"
