#!/usr/bin/env bash
# Does MSG_ZEROCOPY pay for a relay's bulk direction? bench/src/bin/zerocopy.rs pushes one
# stream through a bare relay thread whose outgoing side is written by splice, by copy or by
# send(MSG_ZEROCOPY), beside the direct path, and counts the sends the kernel copied anyway.
#   bench/zerocopy.sh lo   [ARGS...]   on loopback, in a private network namespace
#   bench/zerocopy.sh veth [ARGS...]   the sink in a second namespace behind a veth pair
#                                      (two namespaces of this script's, 10.99.0.1/2, removed
#                                      at the end)
# ARGS go to zerocopy (--mib N --rounds R, modes); the default is 2048 MiB, 5 rounds, all
# four modes. Timings on the shared 2-core machine move by ±10–20%: read them side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
where=${1:-lo}
shift || true
cargo build --release -q -p ferrosocks-bench --bin zerocopy
bin=${CARGO_TARGET_DIR:-target}/release/zerocopy
case $where in
lo) exec unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' "$bin" "$@" ;;
veth)
    a=zc-a-$$
    b=zc-b-$$
    cleanup() {
        ip netns del "$a" 2>/dev/null || true
        ip netns del "$b" 2>/dev/null || true
    }
    trap cleanup EXIT
    ip netns add "$a"
    ip netns add "$b"
    ip link add "zca$$" netns "$a" type veth peer name "zcb$$" netns "$b"
    ip -n "$a" addr add 10.99.0.1/24 dev "zca$$"
    ip -n "$b" addr add 10.99.0.2/24 dev "zcb$$"
    for n in "$a" "$b"; do
        ip -n "$n" link set lo up
    done
    ip -n "$a" link set "zca$$" up
    ip -n "$b" link set "zcb$$" up
    ip netns exec "$a" "$bin" --sink-netns "/run/netns/$b" --sink-ip 10.99.0.2 "$@"
    ;;
*)
    echo "usage: bench/zerocopy.sh lo|veth [zerocopy's arguments]" >&2
    exit 2
    ;;
esac
