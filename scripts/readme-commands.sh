#!/usr/bin/env bash
# The README's commands, run as a newcomer types them:
#  1. `cargo run --release` on a fresh checkout, then the README's curl line through it
#     (with the README's `python3 -m http.server` as the page to fetch). This runs in a
#     network namespace of its own, so port 1080 there is free even while the README's
#     server runs on this machine.
#  2. `cargo install --locked --path crates/ferrosocks` into a scratch root (reusing
#     target/, so nothing is built twice) and the installed binary's `--version`.
# Called by ./test.sh; fails loudly, ends every process it started by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != --in-netns ]; then
    # The install command (outside the namespace: cargo may look at the registry).
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    cargo install -q --locked --path crates/ferrosocks --root "$root" --target-dir target
    "$root/bin/ferrosocks" --version | grep -q "^ferrosocks v" ||
        { echo "readme-commands: the installed binary does not run" >&2; exit 1; }
    echo "readme-commands: 'cargo install --locked --path crates/ferrosocks' installs a working binary"
    rm -rf "$root"
    trap - EXIT
    if [ "$(id -u)" -eq 0 ]; then
        exec unshare --net -- "$0" --in-netns
    fi
    exec unshare --map-root-user --net -- "$0" --in-netns
fi
ip link set lo up

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "readme-commands: $*" >&2
    for f in "$work"/*.out "$work"/*.err; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
    done
    exit 1
}

# A page to fetch, as the README says.
mkdir "$work/www"
echo "hello through ferrosocks" >"$work/www/index.html"
(cd "$work/www" && exec python3 -m http.server --bind 127.0.0.1 8000 >"$work/http.out" 2>"$work/http.err") &
pids+=($!)

# The first command, exactly as written. cargo execs the server: $! is its PID.
cargo run --release >"$work/server.out" 2>"$work/server.err" &
pids+=($!)
for _ in $(seq 1 1800); do
    grep -q "^ferrosocks ready: listening on 127.0.0.1:1080$" "$work/server.out" 2>/dev/null && break
    kill -0 "${pids[-1]}" 2>/dev/null || fail "'cargo run --release' exited before it was ready"
    sleep 0.2
done
grep -q "^ferrosocks ready" "$work/server.out" || fail "'cargo run --release' printed no ready line in 6 minutes"
for _ in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && break
    sleep 0.1
done

# The README's curl line.
page=$(curl -sS --max-time 20 --socks5-hostname 127.0.0.1:1080 http://localhost:8000/) ||
    fail "the README's curl command failed"
[ "$page" = "hello through ferrosocks" ] || fail "curl fetched '$page'"
# Log lines reach stderr a few milliseconds after the session.
for _ in $(seq 1 100); do
    grep -q "pass(1): tcp/connect \]: " "$work/server.err" && break
    sleep 0.05
done
grep -q "pass(1): tcp/connect \]: " "$work/server.err" || fail "the server logged no session"
echo "readme-commands: 'cargo run --release' served the README's curl request"

