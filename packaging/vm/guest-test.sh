#!/bin/bash
# The checks packaging/vm-test.sh runs inside the guest, under systemd as PID 1, as the
# unit ferrosocks-vmtest.service (root). Each prints "VMTEST: PASS name" or "VMTEST: FAIL
# name" (with what it saw, indented) on the console; "VMTEST: INFO" lines are for the
# record; "VMTEST: DONE" ends the run. The guest powers off after it.
set -u
here=/run/vmtest
deb=$here/ferrosocks.deb
conf=/etc/ferrosocks/ferrosocks.conf
log=/var/log/ferrosocks/ferrosocks.log
unit=ferrosocks.service
out=$here/out
export SYSTEMD_PAGER="" SYSTEMD_COLORS=0 LANG=C.UTF-8

pass() { echo "VMTEST: PASS $*"; }
phase() { echo "VMTEST: INFO phase: $*"; logger -t vmtest "phase: $*"; }
fail() { echo "VMTEST: FAIL $*"; }
info() { echo "VMTEST: INFO $*"; }
indent() { sed 's/^/    /' | head -"${1:-25}"; }
# check NAME COMMAND…: PASS when the command succeeds, else FAIL with its output.
check() {
    local name=$1
    shift
    if "$@" >"$out" 2>&1; then
        pass "$name"
    else
        fail "$name"
        indent <"$out"
    fi
}
# eventually SECONDS COMMAND…: the command succeeds within that time (polled).
eventually() {
    local limit=$(($1 * 5)) i=0
    shift
    until "$@"; do
        i=$((i + 1))
        ((i < limit)) || return 1
        sleep 0.2
    done
}
prop() { systemctl show -p "$1" --value "$unit"; }
is() { # is PROPERTY VALUE
    local got
    got=$(prop "$1")
    [ "$got" = "$2" ] || { echo "$1=$got, expected $2"; return 1; }
}
cursor() { journalctl -n 0 --show-cursor | sed -n 's/^-- cursor: //p'; }
# The unit's journal since a cursor (systemd's own lines about it included).
journal_since() { journalctl -q --no-pager -o cat -u "$unit" --after-cursor="$1"; }
journal_has() { journal_since "$1" | grep -E -q "$2"; }
# Every process of the unit, and the files they hold open.
unit_pids() { cat "/sys/fs/cgroup/system.slice/$unit/cgroup.procs" 2>/dev/null; }
open_files() { local p; for p in $(unit_pids); do ls -l "/proc/$p/fd" 2>/dev/null; done; }
holds() { open_files | grep -q -- "$1"; }
not_holds() { ! holds "$1"; }
socks_get() { curl -sS --max-time 10 --socks5 127.0.0.1:1080 "http://127.0.0.1:8080/$1"; }
# notified CURSOR FIRST THEN: PID 1 journalled a notification matching FIRST, and later
# one matching THEN.
notified() { journal_since "$1" | grep -A200 -E "notification message .*$2" | grep -q -E "notification message .*$3"; }
active_as() { # active_as PID: active, and PID is still the main process
    [ "$(systemctl is-active "$unit")" = active ] || { echo "not active"; return 1; }
    is MainPID "$1"
}
conffile() { test -s "$1" && dpkg-query -W -f='${Conffiles}\n' ferrosocks | grep -q "^ $1 "; }
user_ok() { getent passwd ferrosocks | grep -E '^ferrosocks:x:[0-9]{1,3}:[0-9]+:.*:/nonexistent:/(usr/)?s?bin/(nologin|false)$'; }
procs() { test "$(unit_pids | wc -l)" -eq "$1"; }
stopped_clean() { is ActiveState inactive && is Result success && is ExecMainStatus 0; }
not() { ! "$@"; }
no_journal() { ! journal_since "$1" | grep -E -i "$2"; }

info "guest: $(uname -r), $(systemctl --version | head -1)"
check "PID 1 is systemd" test "$(cat /proc/1/comm)" = systemd
# Debug logging: PID 1 then journals every notification a service sends ("Got
# notification message from PID … (READY=1, STATUS=…)"), which the checks below read.
systemctl log-level debug

# ---- install ------------------------------------------------------------------------------
phase "install"
start=$(cursor)
check "dpkg -i ferrosocks.deb" timeout 300 dpkg -i "$deb" </dev/null
check "user ferrosocks exists (system user, no login)" user_ok
check "group ferrosocks exists" getent group ferrosocks
check "conffile $conf in place" conffile "$conf"
check "/var/log/ferrosocks is root:adm 2750" test "$(stat -c %U:%G:%a /var/log/ferrosocks)" = root:adm:2750
check "the unit is enabled by the postinst" systemctl is-enabled "$unit"
check "the postinst started it (active before any systemctl start)" is ActiveState active
check "no failed start during the install (journal)" no_journal "$start" 'Failed to start|Failed with result'
check "systemctl start ferrosocks" timeout 60 systemctl start "$unit"
check "systemctl is-active = active" test "$(systemctl is-active "$unit")" = active
check "Type=notify" is Type notify
check "READY=1 reached (journal)" journal_has "$start" 'Got notification message from PID [0-9]+ \(READY=1'
status=$(prop StatusText)
check "StatusText is set" test -n "$status"
info "StatusText=$status"
pid=$(prop MainPID)
check "the server runs as ferrosocks after binding" test "$(stat -c %U "/proc/$pid")" = ferrosocks
check "the privileged helper is its only other process" procs 2
systemctl status --no-pager "$unit" 2>&1 | indent 15

# ---- a SOCKS5 round trip --------------------------------------------------------------------
phase "a SOCKS5 round trip"
mkdir -p "$here/www"
echo "through ferrosocks $$" >"$here/www/hello.txt"
(cd "$here/www" && exec python3 -m http.server --bind 127.0.0.1 8080 >"$here/http.log" 2>&1) &
http=$!
eventually 10 curl -s -o /dev/null --max-time 1 http://127.0.0.1:8080/hello.txt
check "SOCKS5 round trip with curl to a local HTTP server" test "$(socks_get hello.txt)" = "through ferrosocks $$"
check "the traffic log line in $log" \
    eventually 5 grep -q 'pass([0-9]*): tcp/connect .* -> .*127\.0\.0\.1\.8080' "$log"
grep 'tcp/connect' "$log" | tail -2 | indent

# ---- reload -------------------------------------------------------------------------------
phase "reload"
c=$(cursor)
check "systemctl reload ferrosocks" timeout 30 systemctl reload "$unit"
check "RELOADING=1 with MONOTONIC_USEC, then READY=1 (journal)" \
    eventually 5 notified "$c" 'RELOADING=1, MONOTONIC_USEC=[0-9]+' '\(READY=1'
check "the journal shows the reload" journal_has "$c" '^Reloaded ferrosocks'
check "the server logged it" eventually 5 grep -q 'Configuration reloaded' "$log"
check "still active, same main PID after reload" active_as "$pid"

# ---- logrotate ----------------------------------------------------------------------------
phase "logrotate"
c=$(cursor)
check "logrotate -f /etc/logrotate.d/ferrosocks" logrotate -f /etc/logrotate.d/ferrosocks
check "the old log moved to ferrosocks.log.1" test -s "$log.1"
check "a new ferrosocks.log, root:adm 0640" test "$(stat -c %U:%G:%a "$log")" = root:adm:640
check "SIGHUP from the postrotate: RELOADING=1 then READY=1" \
    eventually 5 notified "$c" 'RELOADING=1' '\(READY=1'
socks_get hello.txt >/dev/null
check "new traffic lines go to the new file" eventually 5 grep -q 'tcp/connect' "$log"
check "no process holds the old file open" eventually 5 not_holds 'ferrosocks\.log\.1$'
check "the server holds the new file open" holds "$log\$"

# ---- the watchdog -------------------------------------------------------------------------
phase "the watchdog"
mkdir -p /etc/systemd/system/$unit.d
printf '[Service]\nWatchdogSec=4\n' >/etc/systemd/system/$unit.d/vmtest-watchdog.conf
systemctl daemon-reload
c=$(cursor)
check "restart with WatchdogSec=4 (drop-in)" timeout 60 systemctl restart "$unit"
check "WatchdogUSec=4s" is WatchdogUSec 4s
pid=$(prop MainPID)
w1=$(prop WatchdogTimestampMonotonic)
sleep 9
w2=$(prop WatchdogTimestampMonotonic)
info "WatchdogTimestampMonotonic: $w1 then, 9 s later, $w2"
check "WatchdogTimestamp advances" test "${w1:-0}" -gt 0 -a "${w2:-0}" -gt "${w1:-0}"
pings=$(journal_since "$c" | grep -c 'notification message .*WATCHDOG=1')
info "$pings WATCHDOG=1 pings in about 9 s"
check "WATCHDOG=1 pinged at least 3 times in 9 s" test "$pings" -ge 3
check "no watchdog kill (same PID)" active_as "$pid"
check "no watchdog timeout in the journal" no_journal "$c" 'watchdog timeout'
rm /etc/systemd/system/$unit.d/vmtest-watchdog.conf
rmdir /etc/systemd/system/$unit.d
systemctl daemon-reload
timeout 60 systemctl restart "$unit"

# ---- systemd-analyze security ---------------------------------------------------------------
phase "systemd-analyze security"
systemd-analyze security --no-pager "$unit" >"$here/security" 2>&1
check "systemd-analyze security ferrosocks" grep -q 'Overall exposure level for ferrosocks.service' "$here/security"
info "$(grep 'Overall exposure level' "$here/security")"

# ---- stop ---------------------------------------------------------------------------------
phase "stop"
# STOPPING=1: a SIGTERM sent to the server alone, with a session open, puts the unit in
# "deactivating" at once (systemd heard STOPPING=1) for the grace period, then it ends
# cleanly.
(sleep 20 | curl -s --max-time 25 --socks5 127.0.0.1:1080 telnet://127.0.0.1:8080 >/dev/null 2>&1) &
sleep 1
c=$(cursor)
systemctl kill --kill-whom=main --signal=TERM "$unit"
check "SIGTERM with a session open: deactivating during the grace period" \
    eventually 3 is ActiveState deactivating
check "STOPPING=1 (journal)" eventually 3 journal_has "$c" 'notification message .*STOPPING=1'
check "it ends after the grace period, Result=success, exit 0" eventually 20 stopped_clean
check "systemctl start again" timeout 60 systemctl start "$unit"
socks_get hello.txt >/dev/null
c=$(cursor)
check "systemctl stop ferrosocks" timeout 40 systemctl stop "$unit"
check "stop: STOPPING=1 (journal)" journal_has "$c" 'notification message .*STOPPING=1'
check "stop: inactive, Result=success, exit 0" stopped_clean
check "stop: no process needed SIGKILL" no_journal "$c" SIGKILL

# ---- upgrade: an admin's edit survives ------------------------------------------------------
phase "upgrade"
timeout 60 systemctl start "$unit"
echo "# vmtest: an admin's edit" >>"$conf"
check "dpkg -i the same package again (upgrade)" timeout 300 dpkg -i "$deb" </dev/null
check "the edited conffile is kept" grep -q "^# vmtest: an admin's edit" "$conf"
check "active after the upgrade" test "$(systemctl is-active "$unit")" = active
check "the edited file still checks (-V)" /usr/bin/ferrosocks -V -f "$conf"

# ---- purge --------------------------------------------------------------------------------
phase "purge"
check "dpkg --purge ferrosocks" timeout 300 dpkg --purge ferrosocks </dev/null
check "purge: the binary is gone" test ! -e /usr/bin/ferrosocks
check "purge: /etc/ferrosocks is gone" test ! -e "$conf"
check "purge: /var/log/ferrosocks is gone" test ! -e /var/log/ferrosocks
check "purge: the unit is gone" is LoadState not-found
check "purge: no ferrosocks process is left" not pgrep -x ferrosocks

kill "$http" 2>/dev/null
systemctl log-level info
warnings=$(journalctl -q --no-pager -o short-monotonic -u "$unit" -p warning --after-cursor="$start")
if [ -n "$warnings" ]; then
    info "the unit's warnings and errors in the journal:"
    echo "$warnings" | indent 30
fi
echo "VMTEST: DONE"
