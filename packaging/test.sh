#!/usr/bin/env bash
# packaging/test.sh: every packaging check, each of which fails loudly (nothing is skipped):
# the committed man pages and completions are current; the man pages read without groff
# warnings; the completions load (bash, zsh, fish); the Debian package builds (cargo deb),
# holds what it should, and lintian finds no error in it; unpacked in a scratch root, its
# binary checks its own conffile with -V (as if installed: its user and log directory
# exist, in a private mount namespace); its unit passes systemd-analyze verify; its
# sysusers file creates the user; its logrotate snippet parses and signals rather than
# truncates; its maintainer scripts parse. Installs what it needs with apt-get and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'packaging/test.sh: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
command -v man >/dev/null 2>&1 || missing+=(man-db)
command -v nroff >/dev/null 2>&1 || missing+=(groff-base)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v logrotate >/dev/null 2>&1 || missing+=(logrotate)
command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb"
    cargo install cargo-deb --locked
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. Man pages and completions are what the command line and the keyword table make.
cargo test -p ferrosocks --bin ferrosocks --locked packaging

# 2. The man pages read without warnings.
for page in packaging/man/*.[0-9]; do
    MANWIDTH=80 man --warnings -l "$page" >"$tmp/man.out" 2>"$tmp/man.err" || fail "man $page"
    [ ! -s "$tmp/man.err" ] || { cat "$tmp/man.err" >&2; fail "man --warnings on $page"; }
    grep -q 'ferrosocks' "$tmp/man.out" || fail "$page renders empty"
done

# 3. The completions load.
bash -c 'source packaging/completions/ferrosocks.bash && complete -p ferrosocks' >/dev/null \
    || fail "bash completion"
zsh -n packaging/completions/_ferrosocks || fail "zsh completion does not parse"
fish --no-execute packaging/completions/ferrosocks.fish || fail "fish completion does not parse"

# 4. The package.
cargo deb -p ferrosocks --locked --strip --output "$tmp/ferrosocks.deb" >"$tmp/deb.log" 2>&1 \
    || { cat "$tmp/deb.log" >&2; fail "cargo deb"; }
deb="$tmp/ferrosocks.deb"
dpkg-deb -c "$deb" >"$tmp/contents"
for path in \
    ./usr/bin/ferrosocks \
    ./usr/lib/systemd/system/ferrosocks.service \
    ./usr/lib/systemd/system/ferrosocks-collect.service \
    ./etc/default/ferrosocks-collect \
    ./usr/lib/sysusers.d/ferrosocks.conf \
    ./etc/ferrosocks/ferrosocks.conf \
    ./etc/logrotate.d/ferrosocks \
    ./usr/share/man/man8/ferrosocks.8.gz \
    ./usr/share/man/man8/ferrosocks-migrate.8.gz \
    ./usr/share/man/man8/ferrosocks-log.8.gz \
    ./usr/share/man/man8/ferrosocks-collect.8.gz \
    ./usr/share/man/man5/ferrosocks.conf.5.gz \
    ./usr/share/bash-completion/completions/ferrosocks \
    ./usr/share/zsh/vendor-completions/_ferrosocks \
    ./usr/share/fish/vendor_completions.d/ferrosocks.fish \
    ./usr/share/doc/ferrosocks/copyright \
    ./usr/share/doc/ferrosocks/changelog.Debian.gz \
    ./usr/share/doc/ferrosocks/operations.md; do
    grep -q " $path\$" "$tmp/contents" || { cat "$tmp/contents" >&2; fail "$path not in the package"; }
done
dpkg-deb -e "$deb" "$tmp/control"
for f in /etc/ferrosocks/ferrosocks.conf /etc/logrotate.d/ferrosocks /etc/default/ferrosocks-collect; do
    grep -qx "$f" "$tmp/control/conffiles" || fail "$f is not a conffile"
done
# The collector is installed disabled: the postinst enables it only where the admin had
# (an upgrade keeps that choice), restarts it only if it runs, and never starts it.
awk '/was-enabled ferrosocks-collect/ { guarded = 1; next }
     /deb-systemd-helper enable ferrosocks-collect/ && !guarded { bad = 1 }
     /deb-systemd-invoke (start|restart) ferrosocks-collect/ { bad = 1 }
     END { exit bad }' "$tmp/control/postinst" \
    || { cat "$tmp/control/postinst" >&2; fail "the postinst enables or starts ferrosocks-collect"; }
for script in postinst postrm prerm; do
    [ -f "$tmp/control/$script" ] || fail "no $script"
    sh -n "$tmp/control/$script" || fail "$script does not parse"
done
grep -q 'systemd-sysusers' "$tmp/control/postinst" || fail "postinst creates no user"
# Each file the postinst hands to systemd-sysusers is one the package installs (cargo-deb
# names it after the asset's source file).
for f in $(sed -n 's/^ *systemd-sysusers .* \([^ ]*\.conf\)$/\1/p' "$tmp/control/postinst"); do
    grep -q " ./usr/lib/sysusers.d/$f\$" "$tmp/contents" \
        || { grep -n systemd-sysusers "$tmp/control/postinst" >&2; fail "postinst runs systemd-sysusers $f, not in the package"; }
done
grep -q 'deb-systemd-helper' "$tmp/control/postinst" || fail "postinst does not enable the unit"
# The log directory exists before the unit starts (ReadWritePaths=/var/log/ferrosocks):
# else the start fails with 226/NAMESPACE.
awk '/install -d .*\/var\/log\/ferrosocks/ { made = 1 } /deb-systemd-invoke/ && !made { bad = 1 } END { exit bad || !made }' \
    "$tmp/control/postinst" || { cat "$tmp/control/postinst" >&2; fail "the postinst starts the unit before making /var/log/ferrosocks"; }

# 5. lintian: no error; the warnings are shown.
lintian --tag-display-limit 0 "$deb" >"$tmp/lintian" 2>&1 || true
cat "$tmp/lintian" >&2
! grep -q '^E:' "$tmp/lintian" || fail "lintian reports errors"

# 6. Unpacked in a scratch root, the binary checks its own conffile, with its user
#    (created by its sysusers file, the way the postinst does) and its log directory
#    present in a private mount namespace: nothing on this machine changes.
root="$tmp/root"
dpkg -x "$deb" "$root"
"$root/usr/bin/ferrosocks" -v | grep -q '^ferrosocks' || fail "the packaged binary does not run"
mkdir -p "$tmp/sysroot/etc"
systemd-sysusers --root="$tmp/sysroot" "$root/usr/lib/sysusers.d/ferrosocks.conf"
grep -q '^ferrosocks:' "$tmp/sysroot/etc/passwd" || fail "sysusers created no user ferrosocks"
cp /etc/passwd "$tmp/passwd"
cp /etc/group "$tmp/group"
getent passwd ferrosocks >/dev/null || grep '^ferrosocks:' "$tmp/sysroot/etc/passwd" >>"$tmp/passwd"
getent group ferrosocks >/dev/null || grep '^ferrosocks:' "$tmp/sysroot/etc/group" >>"$tmp/group"
ns=(unshare --mount)
[ "$(id -u)" -eq 0 ] || ns=(unshare --user --map-root-user --mount)
"${ns[@]}" bash -euc '
    mount --make-rprivate /
    mount --bind "$1/passwd" /etc/passwd
    mount --bind "$1/group" /etc/group
    mount -t tmpfs tmpfs /var/log
    mkdir -m 2750 /var/log/ferrosocks
    "$2/usr/bin/ferrosocks" -V -f "$2/etc/ferrosocks/ferrosocks.conf"
' _ "$tmp" "$root" >"$tmp/v.out" 2>"$tmp/v.err" \
    || { cat "$tmp/v.out" "$tmp/v.err" >&2; fail "-V on the packaged configuration"; }
grep -q 'configuration OK' "$tmp/v.out" || fail "-V did not say OK"
[ ! -s "$tmp/v.err" ] || { cat "$tmp/v.err" >&2; fail "-V warns on the packaged configuration"; }

# 7. The unit: systemd-analyze verify checks that each Exec program exists and that the
#    Documentation= man pages are installed, so it runs on a copy that points at the
#    scratch root's binary, with MANPATH at its man pages (no other difference).
unit="$root/usr/lib/systemd/system/ferrosocks.service"
cmp -s "$unit" packaging/ferrosocks.service || fail "the packaged unit differs from packaging/ferrosocks.service"
sed "s|/usr/bin/ferrosocks|$root/usr/bin/ferrosocks|g" "$unit" >"$tmp/ferrosocks.service"
MANPATH="$root/usr/share/man" systemd-analyze verify "$tmp/ferrosocks.service" \
    || fail "systemd-analyze verify"
for line in Type=notify NotifyAccess=main WatchdogSec=30 NoNewPrivileges=yes ProtectSystem=strict \
    ReadWritePaths=/var/log/ferrosocks RuntimeDirectory=ferrosocks StateDirectory=ferrosocks \
    PrivateTmp=yes ProtectHome=yes LimitNOFILE=262144 ProtectKernelTunables=yes \
    SystemCallFilter=@system-service 'ExecReload=+/bin/kill -HUP $MAINPID' \
    'ExecStartPre=/usr/bin/ferrosocks -V -f /etc/ferrosocks/ferrosocks.conf' \
    'ExecStart=/usr/bin/ferrosocks -f /etc/ferrosocks/ferrosocks.conf'; do
    grep -qxF "$line" "$unit" || fail "the unit lacks $line"
done
systemd-analyze security --offline=yes "$tmp/ferrosocks.service" | tail -1 >&2
#    The collector's unit: verified the same way, shipped disabled, its options from
#    /etc/default/ferrosocks-collect (loopback only as shipped), no capabilities.
cunit="$root/usr/lib/systemd/system/ferrosocks-collect.service"
cmp -s "$cunit" packaging/ferrosocks-collect.service || fail "the packaged collector unit differs from packaging/ferrosocks-collect.service"
sed "s|/usr/bin/ferrosocks|$root/usr/bin/ferrosocks|g" "$cunit" >"$tmp/ferrosocks-collect.service"
MANPATH="$root/usr/share/man" systemd-analyze verify "$tmp/ferrosocks-collect.service" \
    || fail "systemd-analyze verify (collector)"
for line in 'ExecStart=/usr/bin/ferrosocks collect $FERROSOCKS_COLLECT_OPTS' \
    EnvironmentFile=-/etc/default/ferrosocks-collect User=ferrosocks NoNewPrivileges=yes \
    ProtectSystem=strict LogsDirectory=ferrosocks-collect CapabilityBoundingSet= \
    SystemCallFilter=@system-service; do
    grep -qxF "$line" "$cunit" || fail "the collector unit lacks $line"
done
grep -q '^FERROSOCKS_COLLECT_OPTS="--listen 127.0.0.1:' "$root/etc/default/ferrosocks-collect" \
    || fail "the collector does not listen on loopback as shipped"
# The options as shipped are ones the collector takes: it starts with them (on a port the
# kernel picks and a scratch directory) and ends cleanly on SIGTERM.
opts=$(sed -n 's/^FERROSOCKS_COLLECT_OPTS="\(.*\)"$/\1/p' "$root/etc/default/ferrosocks-collect")
opts=${opts/127.0.0.1:10116/127.0.0.1:0}
opts=${opts/\/var\/log\/ferrosocks-collect/$tmp\/collect}
# shellcheck disable=SC2086
"$root/usr/bin/ferrosocks" collect $opts >"$tmp/collect.out" 2>&1 &
collector=$!
sleep 1
kill -TERM "$collector"
wait "$collector" || { cat "$tmp/collect.out" >&2; fail "ferrosocks collect with the shipped options"; }
[ -d "$tmp/collect/all" ] || { cat "$tmp/collect.out" >&2; fail "the collector made no all/ directory"; }

# 8. logrotate: the snippet parses, signals SIGHUP and never truncates.
logrotate --debug --state "$tmp/logrotate.state" "$root/etc/logrotate.d/ferrosocks" \
    >"$tmp/logrotate.out" 2>&1 || { cat "$tmp/logrotate.out" >&2; fail "logrotate"; }
! grep -qi 'error' "$tmp/logrotate.out" || { cat "$tmp/logrotate.out" >&2; fail "logrotate errors"; }
grep -q -- '--signal=HUP' "$root/etc/logrotate.d/ferrosocks" || fail "logrotate sends no SIGHUP"
! grep -q copytruncate "$root/etc/logrotate.d/ferrosocks" || fail "logrotate truncates"

say "all packaging checks passed"
