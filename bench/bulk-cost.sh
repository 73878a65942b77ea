#!/usr/bin/env bash
# What one bulk stream costs the proxy, counted, and its rate beside the direct path:
# `loadgen bulk` (1 stream, up and down, MIB MiB), the subjects in turn, ROUNDS times
# (the order rotates by one place per round), each against a target server of its own.
# Per GiB for each proxy (perf stat on the process): CPU seconds (task-clock), context
# switches, and system calls (all, splice, epoll_wait, recvfrom + sendto) by tracepoint;
# MB/s for every subject, `direct` included. Run it in a private network namespace:
#   unshare -n sh -c 'ip link set lo up; bench/bulk-cost.sh'
# Usage: bench/bulk-cost.sh [ROUNDS [MIB]]   (default 3 1024)
#   SUBJECTS="direct ferrosocks"     which subjects (also ferrosocks-b, sslocal, merino; floor,
#                                    floor-b: the bare epoll relay, not a peer; see bench/lib.sh)
#   FERROSOCKS_BIN, FERROSOCKS_BIN_B, FERROSOCKS_ENV, FERROSOCKS_ENV_B: as bench/conn-sched.sh
# Timings on the shared 2-core machine move by ±10–20%: read the MB/s only side by side.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
rounds=${1:-3}
mib=${2:-1024}
read -r -a subjects <<<"${SUBJECTS:-direct ferrosocks}"
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
for s in "${subjects[@]}"; do start_subject "$s"; done

events=task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_splice,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto
have_perf=0
perf stat -e "$events" true >/dev/null 2>&1 && have_perf=1
printf '%-13s %5s %-4s %8s %8s %8s %9s %8s %8s %8s\n' subject round dir "MB/s" "cpu-s" "cs" "sys" splice epwait "rcv+snd"
bytes=$((mib << 20))
for r in $(seq "$rounds"); do
    order=()
    for ((k = 0; k < ${#subjects[@]}; k++)); do
        order+=("${subjects[$(((k + r - 1) % ${#subjects[@]}))]}")
    done
    for dir in up down; do
        for s in "${order[@]}"; do
            proxy=()
            [ "$s" = direct ] || proxy=("127.0.0.1:${port[$s]}")
            if ((have_perf)) && [ "$s" != direct ]; then
                perf stat -x, -e "$events" -p "${pid[$s]}" -o "$work/perf" &
                perfpid=$!
                sleep 0.2
            fi
            out=$("$bin/loadgen" bulk "127.0.0.1:${target[$s]}" "$dir" 1 "$bytes" "${proxy[@]}")
            c="-" cs="-" sy="-" sp="-" ew="-" rs="-"
            if ((have_perf)) && [ "$s" != direct ]; then
                kill -INT "$perfpid"
                wait "$perfpid" || true
                # perf stat -x,: "value,unit,event,…"; per GiB moved.
                per() { awk -F, -v g="$((bytes))" -v e="$1" '$3 == e {printf "%.0f", $1 / (g / 2^30)}' "$work/perf"; }
                c=$(awk -F, -v g="$((bytes))" '$3 == "task-clock" {printf "%.3f", $1 / 1000 / (g / 2^30)}' "$work/perf")
                cs=$(per context-switches)
                sy=$(per raw_syscalls:sys_enter)
                sp=$(per syscalls:sys_enter_splice)
                ew=$(per syscalls:sys_enter_epoll_wait)
                rs=$(($(per syscalls:sys_enter_recvfrom) + $(per syscalls:sys_enter_sendto)))
            fi
            printf '%-13s %5d %-4s %8s %8s %8s %9s %8s %8s %8s\n' "$s" "$r" "$dir" "${out%% MB/s*}" "$c" "$cs" "$sy" "$sp" "$ew" "$rs"
        done
    done
done
echo "(1 stream, $mib MiB a run; per GiB: cpu-s = the proxy's task-clock seconds, cs = context switches, sys = system calls, splice / epwait / rcv+snd = those calls; perf tracepoints)"
