#!/usr/bin/env bash
# Does io_uring pay? floor_uring (bench/src/bin/floor_uring.rs, a bare SOCKS5 relay on a
# ring) beside the epoll floor (floorproxy, when its binary is there), ferrosocks and
# sslocal, counted, not timed at length:
#   check            floor_uring's correctness (bytes both ways, greeting and request
#                    together or apart, both half-close orders, the refusals 05 ff / 07 /
#                    08 / 05) and loadgen rate, bulk (1 and 4 streams) and hold (2,000
#                    echoing, 5,000 idle) without errors, in its splice (default), copy,
#                    big, two-thread and ring shutdown forms
#   conn [ROUNDS [SESSIONS [CONC]]]   (default 3 20000 50)
#                    per `loadgen rate` session (CONNECT + 32-byte echo + close): proxy
#                    CPU µs (utime + stime from /proc/PID/stat, every thread, io-wq
#                    workers included), voluntary and involuntary context switches
#                    (/proc/PID/task/*/status), and by perf tracepoint on the process:
#                    system calls (all, io_uring_enter), io-wq hand-offs
#                    (io_uring_queue_async_work) and poll arms (io_uring_poll_arm)
#   bulk [ROUNDS [MIB]]               (default 2 512)
#                    per GiB of `loadgen bulk` (1 stream, up and down): the proxy's CPU
#                    seconds (perf task-clock), context switches and system calls, and MB/s
# The subjects run in turn, the order rotating by one place per round, each against a
# target server of its own, after a warm-up of 1,000 sessions. Run it in a private
# network namespace:
#   unshare -n sh -c 'ip link set lo up; bench/uring-cost.sh conn'
#   SUBJECTS="floor_uring floorproxy ferrosocks sslocal"   (the default; floorproxy only
#       when FLOORPROXY, default target/release/floorproxy or the floor helper's build, is
#       executable). floor_uring's variants: floor_uring-copy / floor_uring-big (--bulk
#       copy / big; the default is splice), floor_uring-plain / floor_uring-coop (--setup
#       plain / coop; the default is defer), floor_uring-ringshut (--shutdown ring), floor_uring-2t / floorproxy-2t (--threads 2)
# Timings on the shared 2-core machine move by ±10–20% and more: read the counts, and the
# rates only side by side.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
mode=${1:-conn}
bin=${CARGO_TARGET_DIR:-target}/release
cargo build --release -q -p ferrosocks -p ferrosocks-bench
ferrosocks=${FERROSOCKS_BIN:-$bin/ferrosocks}
sslocal=${FERROSOCKS_BENCH_SSLOCAL:-bench/peers/shadowsocks-rust/bin/sslocal}
merino=${FERROSOCKS_BENCH_MERINO:-bench/peers/merino/bin/merino}
floorproxy=${FLOORPROXY:-$bin/floorproxy}
default="floor_uring floorproxy ferrosocks sslocal"
read -r -a subjects <<<"${SUBJECTS:-$default}"
work=$(mktemp -d -p "${CARGO_TARGET_DIR:-target}")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
source bench/lib.sh

# The command that runs subject $1 on port $2: the floors here, the rest from lib.sh.
subject_command() {
    case $1 in
    floor_uring) echo "$bin/floor_uring 127.0.0.1:$2" ;;
    floor_uring-copy) echo "$bin/floor_uring 127.0.0.1:$2 --bulk copy" ;;
    floor_uring-big) echo "$bin/floor_uring 127.0.0.1:$2 --bulk big" ;;
    floor_uring-plain) echo "$bin/floor_uring 127.0.0.1:$2 --setup plain" ;;
    floor_uring-coop) echo "$bin/floor_uring 127.0.0.1:$2 --setup coop" ;;
    floor_uring-ringshut) echo "$bin/floor_uring 127.0.0.1:$2 --shutdown ring" ;;
    floor_uring-2t) echo "$bin/floor_uring 127.0.0.1:$2 --threads 2" ;;
    floorproxy) echo "$floorproxy 127.0.0.1:$2" ;;
    floorproxy-2t) echo "$floorproxy 127.0.0.1:$2 --threads 2" ;;
    *) command_of "$1" "$2" ;;
    esac
}

# start SUBJECT: its target and the proxy (bench/lib.sh), with the floors' command lines.
declare -A port target pid
start() {
    start_subject "$1" subject_command
}

# counters PID: "vol invol ticks"
counters() {
    local v=0 i=0 f rest
    for f in /proc/"$1"/task/*/status; do
        v=$((v + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$f" 2>/dev/null || echo 0)))
        i=$((i + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$f" 2>/dev/null || echo 0)))
    done
    rest=$(sed 's/^.*) //' /proc/"$1"/stat)
    read -r -a f <<<"$rest"
    # utime is field 14 (index 11 here), stime 15 (12): the whole thread group.
    echo "$v $i $((f[11] + f[12]))"
}

events=task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,io_uring:io_uring_queue_async_work,io_uring:io_uring_poll_arm
have_perf=0
perf stat -e "$events" true >/dev/null 2>&1 && have_perf=1
# perf_start PID FILE / perf_stop: perf stat on the process while a run lasts.
perf_start() {
    ((have_perf)) || return 0
    perf stat -x, -e "$events" -p "$1" -o "$2" &
    perfpid=$!
    sleep 0.2
}
perf_stop() {
    ((have_perf)) || return 0
    kill -INT "$perfpid"
    wait "$perfpid" || true
}
# per FILE EVENT DIVISOR FORMAT: a perf count divided, or "-".
per() {
    ((have_perf)) || {
        echo -
        return
    }
    awk -F, -v e="$2" -v n="$3" -v f="$4" '$3 == e {printf f, $1 / n; found = 1} END {if (!found) print "-"}' "$1"
}
order_of() {
    order=()
    for ((k = 0; k < ${#subjects[@]}; k++)); do
        order+=("${subjects[$(((k + $1 - 1) % ${#subjects[@]}))]}")
    done
}

check() {
    cat >"$work/check.py" <<'EOF'
import hashlib, os, socket, struct, sys, threading

proxy = ("127.0.0.1", int(sys.argv[1]))
fails = []


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        k = s.recv(n - len(b))
        if not k:
            raise EOFError(f"eof after {len(b)} of {n}")
        b += k
    return b


def recv_all(s):
    out = bytearray()
    while True:
        k = s.recv(1 << 16)
        if not k:
            return bytes(out)
        out += k


def socks(target, together=False, extra=b""):
    s = socket.create_connection(proxy, timeout=20)
    req = b"\x05\x01\x00\x01" + socket.inet_aton(target[0]) + struct.pack(">H", target[1])
    if together:
        s.sendall(b"\x05\x01\x00" + req + extra)
        assert recv_exact(s, 2) == b"\x05\x00"
    else:
        s.sendall(b"\x05\x01\x00")
        assert recv_exact(s, 2) == b"\x05\x00"
        s.sendall(req + extra)
    rep = recv_exact(s, 10)
    assert rep[:2] == b"\x05\x00", rep
    return s


def target(handler):
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(8)

    def run():
        c, _ = l.accept()
        try:
            handler(c)
        except Exception as e:
            fails.append(f"target: {e!r}")
        finally:
            c.close()
            l.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return l.getsockname(), t


def client_closes_first(size, together):
    data = os.urandom(size)

    def h(c):
        got = recv_all(c)  # until the client's half-close, passed on
        c.sendall(hashlib.sha256(got).digest() + got[::-1])

    addr, t = target(h)
    s = socks(addr, together, extra=data[:100] if together else b"")
    s.sendall(data[100:] if together else data)
    s.shutdown(socket.SHUT_WR)
    back = recv_all(s)  # until the target's close, passed on
    s.close()
    t.join(20)
    assert back[:32] == hashlib.sha256(data).digest(), "upload corrupted"
    assert back[32:] == data[::-1], f"download corrupted ({len(back) - 32} of {size})"


def target_closes_first(size):
    down, up = os.urandom(size), os.urandom(size // 2)

    def h(c):
        c.sendall(down)
        c.shutdown(socket.SHUT_WR)
        got = recv_all(c)  # the client's half-close, carried by the proxy's close
        if got != up:
            fails.append(f"upload corrupted ({len(got)} of {len(up)})")

    addr, t = target(h)
    s = socks(addr)
    got = recv_all(s)
    assert got == down, f"download corrupted ({len(got)} of {size})"
    s.sendall(up)
    s.shutdown(socket.SHUT_WR)
    t.join(20)
    assert s.recv(1) == b"", "relay not closed after both ends of file"
    s.close()


def refused(greeting, request, want):
    s = socket.create_connection(proxy, timeout=10)
    s.sendall(greeting)
    m = recv_exact(s, 2)
    if want == b"\x05\xff":
        assert m == want, m
    else:
        s.sendall(request)
        rep = recv_exact(s, 10)
        assert rep[:2] == want, rep
    assert s.recv(1) == b"", "no close after the refusal"
    s.close()


def free_port():
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    p = l.getsockname()[1]
    l.close()
    return p


cases = [
    ("32 bytes both ways, greeting and request apart", lambda: client_closes_first(32, False)),
    ("greeting, request and data in one write", lambda: client_closes_first(5000, True)),
    ("3 MiB up then down (bulk path), client half-closes", lambda: client_closes_first(3 << 20, False)),
    ("target half-closes first, 2 MiB down then 1 MiB up", lambda: target_closes_first(2 << 20)),
    ("method refused -> 05 ff", lambda: refused(b"\x05\x01\x02", b"", b"\x05\xff")),
    ("BIND -> 07", lambda: refused(b"\x05\x01\x00", b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x07")),
    ("domain name -> 08", lambda: refused(b"\x05\x01\x00", b"\x05\x01\x00\x03\x09localhost\x00\x50", b"\x05\x08")),
    ("IPv6 -> 08", lambda: refused(b"\x05\x01\x00", b"\x05\x01\x00\x04" + b"\x00" * 15 + b"\x01\x00\x50", b"\x05\x08")),
    ("refused connect -> 05", lambda: refused(b"\x05\x01\x00", b"\x05\x01\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", free_port()), b"\x05\x05")),
]
failed = 0
for name, fn in cases:
    fails.clear()
    try:
        fn()
        assert not fails, fails
        print(f"ok   {name}")
    except Exception as e:
        failed += 1
        print(f"FAIL {name}: {e!r}")
print(f"{len(cases) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
EOF
    local s bad=0 fds
    for s in floor_uring floor_uring-copy floor_uring-big floor_uring-2t floor_uring-ringshut; do
        start "$s"
        echo "== $s"
        timeout 120 python3 "$work/check.py" "${port[$s]}" || bad=1
        # No descriptor left behind: every session's sockets are closed (pooled pipes stay).
        timeout 60 "$bin/loadgen" rate "127.0.0.1:${target[$s]}" 50 30 2000 "127.0.0.1:${port[$s]}" | grep -q " 0 errors)" || {
            echo "$s: loadgen rate had errors" >&2
            bad=1
        }
        # The load generator's other modes: bulk (1 and 4 streams each way) and hold.
        for a in "up 1" "down 1" "up 4" "down 4"; do
            # shellcheck disable=SC2086
            timeout 60 "$bin/loadgen" bulk "127.0.0.1:${target[$s]}" $a $((64 << 20)) "127.0.0.1:${port[$s]}" >/dev/null || {
                echo "$s: loadgen bulk $a failed" >&2
                bad=1
            }
        done
        timeout 60 "$bin/loadgen" hold "127.0.0.1:${target[$s]}" 2000 2 "127.0.0.1:${port[$s]}" --echo-every 100 | grep -q "(0 errors)" || {
            echo "$s: loadgen hold --echo-every had errors" >&2
            bad=1
        }
        timeout 60 "$bin/loadgen" hold "127.0.0.1:${target[$s]}" 5000 1 "127.0.0.1:${port[$s]}" | grep -q "held 5000" || {
            echo "$s: loadgen hold 5000 failed" >&2
            bad=1
        }
        sleep 0.5
        fds=$(find /proc/"${pid[$s]}"/fd -type l -lname 'socket:*' | wc -l)
        echo "$s: loadgen rate, bulk and hold done; $fds sockets open after them (the listeners)"
    done
    ((bad)) && echo "check: FAILED" >&2
    return $bad
}

conn() {
    local rounds=${1:-3} sessions=${2:-20000} conc=${3:-50} s r
    hz=$(getconf CLK_TCK)
    for s in "${subjects[@]}"; do
        start "$s"
        "$bin/loadgen" rate "127.0.0.1:${target[$s]}" "$conc" 30 1000 "127.0.0.1:${port[$s]}" >/dev/null
    done
    printf '%-20s %5s %8s %8s %7s %7s %7s %7s %7s %7s %7s\n' subject round "conn/s" "cpu-us" "p-clock" vcsw ivcsw sys enter io-wq polls
    for r in $(seq "$rounds"); do
        order_of "$r"
        for s in "${order[@]}"; do
            read -r v0 i0 t0 < <(counters "${pid[$s]}")
            perf_start "${pid[$s]}" "$work/perf"
            out=$("$bin/loadgen" rate "127.0.0.1:${target[$s]}" "$conc" 60 "$sessions" "127.0.0.1:${port[$s]}")
            perf_stop
            read -r v1 i1 t1 < <(counters "${pid[$s]}")
            ok=$(sed -n 's/.*(\([0-9]*\) ok.*/\1/p' <<<"$out")
            printf '%-20s %5d %8d %8.1f %7s %7.2f %7.3f %7s %7s %7s %7s\n' "$s" "$r" "${out%% conn/s*}" \
                "$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$ok" 'BEGIN {print t * 1e6 / hz / n}')" \
                "$(per "$work/perf" task-clock "$ok" "%.6f" | awk '{print ($1 == "-") ? "-" : $1 * 1000}')" \
                "$(awk -v d=$((v1 - v0)) -v n="$ok" 'BEGIN {print d / n}')" \
                "$(awk -v d=$((i1 - i0)) -v n="$ok" 'BEGIN {print d / n}')" \
                "$(per "$work/perf" raw_syscalls:sys_enter "$ok" "%.2f")" \
                "$(per "$work/perf" syscalls:sys_enter_io_uring_enter "$ok" "%.2f")" \
                "$(per "$work/perf" io_uring:io_uring_queue_async_work "$ok" "%.2f")" \
                "$(per "$work/perf" io_uring:io_uring_poll_arm "$ok" "%.2f")"
            grep -q " 0 errors)" <<<"$out" || echo "$s: errors: $out" >&2
        done
    done
    echo "(per session; cpu-us from /proc ticks of $((1000 / hz)) ms, p-clock = perf task-clock µs; vcsw / ivcsw from /proc; sys = all system calls, enter = io_uring_enter, io-wq = requests handed to io-wq workers, polls = poll arms: perf tracepoints)"
}

bulk() {
    local rounds=${1:-2} mib=${2:-512} s r dir
    local bytes=$((mib << 20))
    for s in "${subjects[@]}"; do start "$s"; done
    printf '%-20s %5s %-4s %8s %8s %8s %9s %9s %8s\n' subject round dir "MB/s" "cpu-s" "cs" "sys" "enter" "io-wq"
    for r in $(seq "$rounds"); do
        order_of "$r"
        for dir in up down; do
            for s in "${order[@]}"; do
                perf_start "${pid[$s]}" "$work/perf"
                out=$("$bin/loadgen" bulk "127.0.0.1:${target[$s]}" "$dir" 1 "$bytes" "127.0.0.1:${port[$s]}")
                perf_stop
                g=$(awk -v b="$bytes" 'BEGIN {print b / 2^30}')
                printf '%-20s %5d %-4s %8s %8s %8s %9s %9s %8s\n' "$s" "$r" "$dir" "${out%% MB/s*}" \
                    "$(per "$work/perf" task-clock "$g" "%.1f" | awk '{print ($1 == "-") ? "-" : $1 / 1000}')" \
                    "$(per "$work/perf" context-switches "$g" "%.0f")" \
                    "$(per "$work/perf" raw_syscalls:sys_enter "$g" "%.0f")" \
                    "$(per "$work/perf" syscalls:sys_enter_io_uring_enter "$g" "%.0f")" \
                    "$(per "$work/perf" io_uring:io_uring_queue_async_work "$g" "%.0f")"
            done
        done
    done
    echo "(1 stream, $mib MiB a run; per GiB: cpu-s = the proxy's perf task-clock seconds, cs = context switches, sys = system calls, enter = io_uring_enter, io-wq = requests handed to io-wq workers)"
}

case $mode in
check) check ;;
conn) conn "${@:2}" ;;
bulk) bulk "${@:2}" ;;
*)
    echo "usage: bench/uring-cost.sh check | conn [ROUNDS [SESSIONS [CONC]]] | bulk [ROUNDS [MIB]]" >&2
    exit 2
    ;;
esac
