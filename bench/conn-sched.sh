#!/usr/bin/env bash
# What one connection costs each proxy in the kernel and the scheduler, counted: under
# the same `loadgen rate` load (CONNECT + 32-byte echo + close, CONC at once, a fixed
# number of sessions), per session,
#   - voluntary and involuntary context switches (summed over /proc/PID/task/*/status),
#   - minor page faults and CPU time (utime + stime, /proc/PID/stat: every thread,
#     dead ones included),
#   - perf stat's software events on the process (task-clock, context-switches,
#     cpu-migrations, page-faults) when perf is there.
# The subjects run in turn, ROUNDS times (A B, B A, …), each against a target server of its
# own, after a warm-up of 1,000 sessions. Run it in a private network namespace:
#   unshare -n sh -c 'ip link set lo up; bench/conn-sched.sh'
# Usage: bench/conn-sched.sh [ROUNDS [SESSIONS [CONC]]]   (default 3 20000 50)
#   SUBJECTS="ferrosocks sslocal"   which proxies (also merino; floor, floor-b: the bare epoll
#                                   relay bench/src/bin/floorproxy.rs, not a peer; see bench/lib.sh)
#   FERROSOCKS_BIN=path             another ferrosocks build (default target/release/ferrosocks)
#   FERROSOCKS_BIN_B=path           a second ferrosocks, subject "ferrosocks-b" (A/B; default the first)
#   FERROSOCKS_ENV_B='VAR=value …'  its environment (default FERROSOCKS_ENV)
#   FERROSOCKS_CONF_EXTRA='line'    a line added to ferrosocks' config
#   FERROSOCKS_ENV='VAR=value …'    environment for ferrosocks (e.g. an allocator tunable)
#   WARM_BULK=MIB                   before the rounds, bulk runs of MIB MiB through each proxy
#                                   (up and down, 1 and 4 streams), as bench/run.sh does
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
rounds=${1:-3}
sessions=${2:-20000}
conc=${3:-50}
read -r -a subjects <<<"${SUBJECTS:-ferrosocks sslocal}"
bin=${CARGO_TARGET_DIR:-target}/release
[ -x "$bin/loadgen" ] && [ -x "$bin/floorproxy" ] || cargo build --release -q -p ferrosocks-bench
ferrosocks=${FERROSOCKS_BIN:-$bin/ferrosocks}
sslocal=${FERROSOCKS_BENCH_SSLOCAL:-bench/peers/shadowsocks-rust/bin/sslocal}
merino=${FERROSOCKS_BENCH_MERINO:-bench/peers/merino/bin/merino}
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

declare -A port target pid
for s in "${subjects[@]}"; do
    start_subject "$s"
    "$bin/loadgen" rate "127.0.0.1:${target[$s]}" "$conc" 30 1000 "127.0.0.1:${port[$s]}" >/dev/null
    if [ -n "${WARM_BULK:-}" ]; then
        # As in bench/run.sh, where the rate phase follows the bulk phases in one process.
        for a in "up 1" "down 1" "up 4" "down 4"; do
            # shellcheck disable=SC2086
            "$bin/loadgen" bulk "127.0.0.1:${target[$s]}" $a $((WARM_BULK << 20)) "127.0.0.1:${port[$s]}" >/dev/null
        done
    fi
done

# counters PID: "vol invol minflt ticks threads"
counters() {
    local v=0 i=0 n=0 f
    for f in /proc/"$1"/task/*/status; do
        v=$((v + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$f" 2>/dev/null || echo 0)))
        i=$((i + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$f" 2>/dev/null || echo 0)))
        n=$((n + 1))
    done
    # /proc/PID/stat: the command may hold spaces; fields after ") ".
    local rest
    rest=$(sed 's/^.*) //' /proc/"$1"/stat)
    read -r -a f <<<"$rest"
    # minflt is field 10 (index 7 here), utime 14 (11), stime 15 (12)
    echo "$v $i ${f[7]} $((f[11] + f[12])) $n"
}

hz=$(getconf CLK_TCK)
have_perf=0
events=task-clock,context-switches,cpu-migrations
command -v perf >/dev/null 2>&1 && perf stat -e task-clock true >/dev/null 2>&1 && have_perf=1
# System calls by tracepoint (cheaper than strace: the timing stays close to a plain run).
sys_events=raw_syscalls:sys_enter,syscalls:sys_enter_futex,syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait
if ((have_perf)) && perf stat -e "$sys_events" true >/dev/null 2>&1; then
    events=$events,$sys_events
else
    sys_events=""
fi
printf '%-13s %5s %8s %7s %7s %7s %7s %8s %7s %7s %7s %7s %7s %7s %s\n' subject round "conn/s" vcsw ivcsw minflt "cpu-us" "p-clock" "p-cs" "p-migr" sys futex write epwait threads
for r in $(seq "$rounds"); do
    # The order rotates by one place per round: each run leaves its sessions in
    # TIME_WAIT, and the next one's connects search past them for a source port.
    order=()
    for ((k = 0; k < ${#subjects[@]}; k++)); do
        order+=("${subjects[$(((k + r - 1) % ${#subjects[@]}))]}")
    done
    for s in "${order[@]}"; do
        p=${pid[$s]}
        read -r v0 i0 m0 t0 _ < <(counters "$p")
        if ((have_perf)); then
            perf stat -x, -e "$events" -p "$p" \
                -o "$work/perf-$s-$r" &
            perfpid=$!
            sleep 0.2
        fi
        out=$("$bin/loadgen" rate "127.0.0.1:${target[$s]}" "$conc" 60 "$sessions" "127.0.0.1:${port[$s]}")
        if ((have_perf)); then
            kill -INT "$perfpid"
            wait "$perfpid" || true
        fi
        read -r v1 i1 m1 t1 n < <(counters "$p")
        ok=$(sed -n 's/.*(\([0-9]*\) ok.*/\1/p' <<<"$out")
        rate=${out%% conn/s*}
        pc="-" pcs="-" pm="-" sy="-" fu="-" wr="-" ew="-"
        # perf stat -x,: "value,unit,event,…"; counts per session.
        per() { awk -F, -v n="$ok" -v e="$1" -v f="$2" '$3 == e {printf f, $1 / n}' "$work/perf-$s-$r"; }
        if ((have_perf)); then
            pc=$(per task-clock "%.9f" | awk "{printf \"%.1f\", \$1 * 1000}")
            pcs=$(per context-switches "%.2f")
            pm=$(per cpu-migrations "%.3f")
        fi
        if [ -n "$sys_events" ]; then
            sy=$(per raw_syscalls:sys_enter "%.2f")
            fu=$(per syscalls:sys_enter_futex "%.2f")
            wr=$(per syscalls:sys_enter_write "%.2f")
            ew=$(per syscalls:sys_enter_epoll_wait "%.2f")
        fi
        awk -v s="$s" -v r="$r" -v rate="$rate" -v n="$ok" -v hz="$hz" -v th="$n" \
            -v dv=$((v1 - v0)) -v di=$((i1 - i0)) -v dm=$((m1 - m0)) -v dt=$((t1 - t0)) \
            -v pc="$pc" -v pcs="$pcs" -v pm="$pm" -v sy="$sy" -v fu="$fu" -v wr="$wr" -v ew="$ew" 'BEGIN {
            printf "%-13s %5d %8d %7.2f %7.3f %7.3f %7.1f %8s %7s %7s %7s %7s %7s %7s %d\n", s, r, rate,
                dv / n, di / n, dm / n, dt * 1e6 / hz / n, pc, pcs, pm, sy, fu, wr, ew, th }'
        grep -q " 0 errors)" <<<"$out" || echo "$s: errors: $out" >&2
    done
done
echo "(per session; cpu-us from /proc ticks of $((1000 / hz)) ms; p-clock = perf task-clock µs, p-cs / p-migr = perf context-switches / cpu-migrations; sys, futex, write, epwait: system calls, all and by name, perf tracepoints)"
