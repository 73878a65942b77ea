#!/usr/bin/env bash
# The one test command: formatting, lints, and every test (unit, golden, integration).
# Installs the real programs the integration tests drive (curl, ncat, socat, htpasswd,
# proxychains4, PySocks for Debian's python3, Dante for chaining, oidentd for ident, rsyslog for syslog,
# systemd-socket-activate, gzip and zstd for compressed logs, script for a terminal,
# promtool and headless chromium for the metrics endpoint and its dashboard, daemontools,
# ucspi-tcp and socklog for log directories, shipping and the collector, rsyslog-openssl and
# openssl for syslog over TLS) with
# apt-get when they are missing, and openvpn-monitor 2.0.4 (PyPI) into a virtualenv under target/
# when it is missing there. CI (.ci/run) calls exactly this. Every test binary
# runs even when one fails (--no-fail-fast), and the README's own commands are run as
# written last (scripts/readme-commands.sh).
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v ncat >/dev/null 2>&1 || missing+=(ncat)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v systemd-socket-activate >/dev/null 2>&1 || missing+=(systemd)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v proxychains4 >/dev/null 2>&1 || missing+=(proxychains4)
/usr/bin/python3 -c 'import socks' >/dev/null 2>&1 || missing+=(python3-socks)
[ -x /usr/sbin/danted ] || missing+=(dante-server)
[ -x /usr/sbin/oidentd ] || missing+=(oidentd)
[ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
command -v multilog >/dev/null 2>&1 || missing+=(daemontools)
command -v tcpserver >/dev/null 2>&1 || missing+=(ucspi-tcp)
command -v socklog >/dev/null 2>&1 || [ -x /usr/sbin/socklog ] || missing+=(socklog)
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so ] || missing+=(rsyslog-openssl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v gzip >/dev/null 2>&1 || missing+=(gzip)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ((${#missing[@]})); then
    echo "test.sh: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# syslog-ng, a second real receiver for syslog.remote (tests/it/syslog_remote.rs): Debian's
# syslog-ng-core conflicts with rsyslog as a package, so its .debs are fetched with apt-get
# download and unpacked under target/ (run from there with LD_LIBRARY_PATH and
# --module-path), once.
sng=target/syslog-ng
if [ ! -x "$sng/usr/sbin/syslog-ng" ]; then
    echo "test.sh: unpacking syslog-ng-core into $sng" >&2
    mkdir -p "$sng/debs"
    (cd "$sng/debs" && apt-get download syslog-ng-core libivykis0 libnet1 libpcre3 2>/dev/null)
    for deb in "$sng"/debs/*.deb; do dpkg -x "$deb" "$sng"; done
fi

# openvpn-monitor, the real OpenVPN tool the management interface test drives unchanged
# (tests/it/openvpn_monitor.rs), with the dependencies it pins, in a virtualenv of its own:
# installed once, so reruns need no network.
ovmon=target/py-openvpn-monitor
if ! "$ovmon/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("openvpn-monitor") != "2.0.4")' >/dev/null 2>&1; then
    echo "test.sh: installing openvpn-monitor 2.0.4 into $ovmon" >&2
    python3 -m venv --clear "$ovmon"
    "$ovmon/bin/pip" install -q openvpn-monitor==2.0.4
fi
export FERROSOCKS_OPENVPN_MONITOR_PYTHON="$PWD/$ovmon/bin/python"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The tests bind loopback ports and make thousands of connections. As root they run in a
# network namespace of their own: no other program's sockets (a running proxy, a benchmark's
# TIME_WAIT) can take the ports they need, and they leave none behind.
cargo test --workspace --locked --no-run -q
if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
    unshare --net -- sh -c 'ip link set lo up && exec cargo test --workspace --locked --offline --no-fail-fast'
else
    cargo test --workspace --locked --no-fail-fast
fi
scripts/readme-commands.sh
# Man pages, completions, the unit and the Debian package (installs what it needs).
packaging/test.sh
