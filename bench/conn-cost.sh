#!/usr/bin/env bash
# What one connection costs each proxy, counted rather than timed (timings on the
# shared 2-core VM move by ±10–20%; counts do not): for CONNECT + 32-byte echo + close
# sessions (`loadgen rate`, 4 at once), per session,
#   - user-space instructions of the whole proxy under callgrind (valgrind), the
#     difference between a run of 1000 and one of 3000 sessions, divided by 2000;
#   - system calls of the whole proxy under `strace -f -c`, the same difference, by call.
# Subjects: ferrosocks (minimal config, no logging) and the peers whose binaries are
# set (bench/run.sh --peers-only installs them): sslocal (shadowsocks-rust, SOCKS mode)
# and merino; and `floor` (bench/src/bin/floorproxy.rs, the bare epoll relay, not a peer;
# FLOOR_THREADS=N, default 1). Kernel work is not counted by callgrind; the system calls
# stand for it.
# Usage: bench/conn-cost.sh [SUBJECT…]   (default: ferrosocks sslocal)
#   FERROSOCKS_BIN=path  another ferrosocks build (default target/release/ferrosocks)
#   FERROSOCKS_CONF_EXTRA='line'  a line added to ferrosocks' config (a lever under test)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
subjects=("$@")
((${#subjects[@]})) || subjects=(ferrosocks sslocal)
for tool in valgrind strace; do
    command -v $tool >/dev/null 2>&1 && continue
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $tool >/dev/null
done
cargo build --release -q -p ferrosocks -p ferrosocks-bench
bin=${CARGO_TARGET_DIR:-target}/release
ferrosocks=${FERROSOCKS_BIN:-$bin/ferrosocks}
sslocal=${FERROSOCKS_BENCH_SSLOCAL:-bench/peers/shadowsocks-rust/bin/sslocal}
merino=${FERROSOCKS_BENCH_MERINO:-bench/peers/merino/bin/merino}
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

# command SUBJECT PORT: the proxy's command line.
command_of() {
    case $1 in
    ferrosocks)
        {
            echo "internal: 127.0.0.1 port = $2"
            echo "socksmethod: none"
            [ -n "${FERROSOCKS_CONF_EXTRA:-}" ] && echo "$FERROSOCKS_CONF_EXTRA"
            echo "client pass { from: 127.0.0.0/8 to: 0/0 }"
            echo "socks pass { from: 127.0.0.0/8 to: 0/0 }"
        } >"$work/ferrosocks.conf"
        echo "$ferrosocks -f $work/ferrosocks.conf"
        ;;
    sslocal) echo "$sslocal -b 127.0.0.1:$2 --protocol socks" ;;
    merino) echo "$merino --no-auth -i 127.0.0.1 -p $2" ;;
    floor) echo "$bin/floorproxy 127.0.0.1:$2 --threads ${FLOOR_THREADS:-1}" ;;
    *)
        echo "unknown subject $1" >&2
        exit 2
        ;;
    esac
}

# run TOOL SUBJECT SESSIONS: one proxy run under TOOL (callgrind or strace), output in
# $work/TOOL-SUBJECT-SESSIONS.
run() {
    local tool=$1 subject=$2 sessions=$3 port out cmd
    port=$(free_port)
    out="$work/$tool-$subject-$sessions"
    cmd=$(command_of "$subject" "$port")
    case $tool in
    callgrind) valgrind --tool=callgrind --callgrind-out-file="$out" $cmd >/dev/null 2>"$out.err" & ;;
    strace) strace -f -c -o "$out" $cmd >/dev/null 2>"$out.err" & ;;
    esac
    proxy=$!
    for _ in $(seq 150); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.2
    done
    "$bin/loadgen" rate "127.0.0.1:$target_port" 4 300 "$sessions" "127.0.0.1:$port" >"$work/rate.txt"
    # The proxy itself (under strace, strace's child: a background job ignores SIGINT,
    # and strace passes it on to no one) ends; ferrosocks on SIGINT, the peers on SIGTERM.
    local pid=$proxy sig=INT
    [ "$tool" = strace ] && pid=$(pgrep -P "$proxy")
    [ "$subject" = ferrosocks ] || sig=TERM
    kill -$sig "$pid"
    wait "$proxy" || true
    proxy=""
    sleep 0.5
    grep -q "($sessions ok, 0 errors)" "$work/rate.txt" || {
        echo "$subject: not every session succeeded: $(cat "$work/rate.txt")" >&2
        exit 1
    }
}

# The port probe of the start is one more connection in both runs: it cancels out.
for s in "${subjects[@]}"; do
    for n in 1000 3000; do
        run callgrind "$s" $n
        run strace "$s" $n
    done
    a=$(awk '/^totals:/ {print $2}' "$work/callgrind-$s-1000")
    b=$(awk '/^totals:/ {print $2}' "$work/callgrind-$s-3000")
    echo "$s: $(((b - a) / 2000)) user-space instructions per session"
    # strace -c: "% time seconds usecs/call calls [errors] syscall"; per call name.
    awk -v s="$s" '
        function row(file, line,   f, n) {
            n = split(line, f)
            if (n < 5 || f[n] == "total" || f[n] == "syscall" || f[1] ~ /^-/) return
            calls[file, f[n]] = f[4]; names[f[n]] = 1
        }
        FNR == 1 { file++ }
        { row(file, $0) }
        END {
            total = 0; list = ""
            for (c in names) {
                d = (calls[2, c] - calls[1, c]) / 2000
                if (d >= 0.05) { list = list sprintf(" %s %.2f", c, d); total += d }
            }
            printf "%s: %.2f system calls per session:%s\n", s, total, list
        }' "$work/strace-$s-1000" "$work/strace-$s-3000"
done
