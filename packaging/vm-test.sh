#!/usr/bin/env bash
# packaging/vm-test.sh: the Debian package under a real systemd as PID 1, in a KVM virtual
# machine whose disk is an image file of its own (docs/operations.md, "Under a real
# systemd"). systemd never runs on this machine: not here, not in a namespace, not in a
# chroot. The steps:
#
#  1. The guest image (cached in target/vm/, rebuilt when its inputs change or with
#     --rebuild): debootstrap --foreign unpacks Debian (no maintainer script runs on this
#     machine), the guest kernel comes out of the linux-image package, a small initramfs
#     (busybox and the virtio/ext4 modules) mounts the root, and the first boot, with
#     packaging/vm/stage2 as its init, runs debootstrap's second stage inside the VM.
#  2. cargo deb builds the package; it and packaging/vm/guest-test.sh go on a second,
#     read-only disk (a plain tar file).
#  3. The guest boots systemd with systemd.unit=ferrosocks-vmtest.target (no network,
#     -snapshot: the image is never changed by a test run); the test unit runs the checks,
#     each printing "VMTEST: PASS …" or "VMTEST: FAIL …" on the serial console, and powers
#     off.
#  4. This script reads the console log: it fails on any FAIL, on a missing "VMTEST: DONE",
#     or when the guest is not off within the time limit.
#
# Usage: packaging/vm-test.sh [--rebuild] [--deb FILE] [--accel kvm|tcg]
# Needs root (debootstrap), about 2 GB in target/vm/. Installs what it needs with apt-get.
# The accelerator: KVM where the host's KVM runs a stock Debian kernel (kvm_intel or
# kvm_amd loaded), else qemu's TCG emulation, said loudly (a host whose /dev/kvm is PVM,
# kvm_pvm, runs only PVM-built guest kernels: Debian's hangs right after decompression).
# TCG is slower (longer time limits) but the same virtual machine. Never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf 'vm-test: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

rebuild=false
deb=""
accel=auto
while (($#)); do
    case $1 in
        --rebuild) rebuild=true ;;
        --deb) deb=$(realpath "$2"); shift ;;
        --accel) accel=$2; shift ;;
        *) fail "unknown argument $1 (usage: $0 [--rebuild] [--deb FILE] [--accel kvm|tcg])" ;;
    esac
    shift
done

[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap and /dev/kvm need it)"
if [ "$accel" = auto ]; then
    if [ -c /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
        accel=kvm
    else
        accel=tcg
        say "NOTE: no KVM that runs a stock kernel here ($(ls -d /sys/module/kvm_* 2>/dev/null | xargs -rn1 basename | tr '\n' ' ')/dev/kvm $( [ -c /dev/kvm ] && echo present || echo absent)): using qemu's TCG emulation, slower"
    fi
fi
case $accel in
    kvm) [ -c /dev/kvm ] || fail "--accel kvm: no /dev/kvm"
         qemu_accel=(-enable-kvm -cpu host) boot_limit=300 build_limit=900 ;;
    tcg) qemu_accel=(-accel tcg -cpu max) boot_limit=900 build_limit=2400 ;;
    *) fail "--accel $accel: kvm or tcg" ;;
esac

missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v mkfs.ext4 >/dev/null 2>&1 || missing+=(e2fsprogs)
command -v cpio >/dev/null 2>&1 || missing+=(cpio)
command -v depmod >/dev/null 2>&1 || missing+=(kmod)
command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -z "$deb" ] && ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb"
    cargo install cargo-deb --locked
fi

vm=$repo/target/vm
mkdir -p "$vm"
# qemu's -snapshot file goes here, not in the machine's /tmp.
export TMPDIR=$vm

# The guest is the host's Debian release (the binary is linked against its glibc), from
# the mirror apt uses here.
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(http[^ ]*\/debian\)\/* .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
include=systemd,systemd-sysv,udev,dbus,kmod,linux-image-amd64,busybox-static,logrotate,curl,python3,adduser,procps

# qemu, bounded: $1 seconds, then the console log $2, then qemu's arguments. Ended by its
# pid when the time is up.
run_qemu() {
    local limit=$1 log=$2
    shift 2
    : >"$log"
    qemu-system-x86_64 "${qemu_accel[@]}" -smp 2 -m 1536 -nographic -monitor none \
        -serial "file:$log" -no-reboot -nic none "$@" </dev/null >"$log.qemu" 2>&1 &
    local pid=$! waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= limit)); then
            say "the guest is still running after ${limit}s: ending qemu (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            sleep 2
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            return 124
        fi
        sleep 1
        waited=$((waited + 1))
    done
    wait "$pid" || { cat "$log.qemu" >&2; return 1; }
}

# ---- 1. The image ----------------------------------------------------------------------
# The cache key: what goes into the image (bump image_version when the build steps below
# change). The test units are not in it: they are written into the image before each run.
image_version=1
key=$(cat packaging/vm/initrd-init packaging/vm/stage2 \
    <(echo "$image_version $suite $mirror $include") | sha256sum | cut -d' ' -f1)
if $rebuild || [ ! -s "$vm/image.key" ] || [ "$(cat "$vm/image.key")" != "$key" ] \
    || [ ! -s "$vm/base.raw" ] || [ ! -s "$vm/vmlinuz" ] || [ ! -s "$vm/initrd.img" ]; then
    say "building the guest image ($suite from $mirror) in $vm"
    rm -rf "$vm/root" "$vm/kernel" "$vm/initrd" "$vm/base.raw" "$vm/image.key"
    # --foreign: unpack only; every maintainer script runs in the second stage, in the VM.
    debootstrap --foreign --variant=minbase --include="$include" "$suite" "$vm/root" "$mirror" \
        >"$vm/debootstrap.log" 2>&1 || { tail -20 "$vm/debootstrap.log" >&2; fail "debootstrap"; }

    # The kernel and its modules, straight from the package.
    kdeb=$(ls "$vm"/root/var/cache/apt/archives/linux-image-[0-9]*-amd64_*.deb | head -1)
    [ -n "$kdeb" ] || fail "no linux-image package in the guest's archive"
    dpkg-deb -x "$kdeb" "$vm/kernel"
    kver=$(ls "$vm/kernel/lib/modules" | head -1)
    cp "$vm/kernel/boot/vmlinuz-$kver" "$vm/vmlinuz"
    depmod -b "$vm/kernel" "$kver"

    # The initramfs: busybox, the modules that reach an ext4 root on virtio, our /init.
    ird=$vm/initrd
    mkdir -p "$ird/bin" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/newroot" "$ird/modules"
    bdeb=$(ls "$vm"/root/var/cache/apt/archives/busybox-static_*.deb | head -1)
    dpkg-deb -x "$bdeb" "$vm/busybox"
    cp "$vm/busybox/bin/busybox" "$ird/bin/busybox"
    cp packaging/vm/initrd-init "$ird/init"
    chmod 755 "$ird/init"
    mods=$vm/kernel/lib/modules/$kver
    declare -A seen=()
    order=()
    add_module() { # $1: a path relative to $mods; its dependencies first
        [ -z "${seen[$1]:-}" ] || return 0
        seen[$1]=1
        local dep
        for dep in $(awk -v m="$1:" '$1 == m { $1 = ""; print }' "$mods/modules.dep"); do
            add_module "$dep"
        done
        order+=("$1")
    }
    for name in virtio_pci virtio_blk crc32c_generic ext4; do
        path=$(awk -F: -v n="/$name.ko" 'index($1, n) == length($1) - length(n) + 1 { print $1; exit }' "$mods/modules.dep")
        if [ -n "$path" ]; then
            add_module "$path"
        elif ! grep -q "/$name.ko\$" "$mods/modules.builtin"; then
            fail "kernel $kver has no module $name"
        fi
    done
    : >"$ird/modules.order"
    for path in "${order[@]}"; do
        case $path in
            *.ko) cp "$mods/$path" "$ird/modules/" ;;
            *.ko.xz) xz -dc "$mods/$path" >"$ird/modules/$(basename "${path%.xz}")" ;;
            *) fail "module $path: unknown format" ;;
        esac
        basename "${path%.xz}" >>"$ird/modules.order"
    done
    (cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$vm/initrd.img"

    # The files the second stage installs.
    mkdir -p "$vm/root/vmtest"
    cp packaging/vm/stage2 packaging/vm/ferrosocks-vmtest.service packaging/vm/ferrosocks-vmtest.target \
        "$vm/root/vmtest/"
    chmod 755 "$vm/root/vmtest/stage2"

    # The disk: an ext4 image made from the directory (no mount on this machine).
    truncate -s 4G "$vm/base.raw"
    mkfs.ext4 -q -F -L vmroot -d "$vm/root" "$vm/base.raw"
    rm -rf "$vm/root" "$vm/busybox"

    say "first boot ($accel): debootstrap's second stage, inside the VM (up to ${build_limit}s)"
    run_qemu "$build_limit" "$vm/stage2.log" -kernel "$vm/vmlinuz" -initrd "$vm/initrd.img" \
        -append "console=ttyS0 root=/dev/vda vminit=/vmtest/stage2 panic=-1" \
        -drive "file=$vm/base.raw,format=raw,if=virtio" \
        || { tail -40 "$vm/stage2.log" >&2; fail "the image's first boot"; }
    grep -q '^STAGE2: OK' "$vm/stage2.log" || { tail -40 "$vm/stage2.log" >&2; fail "the second stage"; }
    echo "$key" >"$vm/image.key"
    say "image ready"
else
    say "using the cached image $vm/base.raw (--rebuild to make it again)"
fi

# The current test units, written into the image's /etc/systemd/system with debugfs (no
# mount): a change to them needs no new image.
{
    echo "cd /etc/systemd/system"
    for f in ferrosocks-vmtest.service ferrosocks-vmtest.target; do
        echo "rm $f"
        echo "write $repo/packaging/vm/$f $f"
    done
} >"$vm/units.debugfs"
debugfs -w -f "$vm/units.debugfs" "$vm/base.raw" >"$vm/units.debugfs.log" 2>&1 \
    || { cat "$vm/units.debugfs.log" >&2; fail "writing the test units into the image"; }
for f in ferrosocks-vmtest.service ferrosocks-vmtest.target; do
    debugfs -R "cat /etc/systemd/system/$f" "$vm/base.raw" 2>/dev/null | cmp -s - "packaging/vm/$f" \
        || fail "the image's $f is not packaging/vm/$f"
done

# ---- 2. The package and the payload disk -------------------------------------------------
if [ -z "$deb" ]; then
    say "cargo deb -p ferrosocks"
    rm -f "$vm/ferrosocks.deb"
    cargo deb -p ferrosocks --locked --strip --output "$vm/ferrosocks.deb" >"$vm/deb.log" 2>&1 \
        || { tail -30 "$vm/deb.log" >&2; fail "cargo deb"; }
    deb=$vm/ferrosocks.deb
fi
rm -rf "$vm/payload"
mkdir -p "$vm/payload"
cp "$deb" "$vm/payload/ferrosocks.deb"
cp packaging/vm/guest-test.sh "$vm/payload/guest-test.sh"
chmod 755 "$vm/payload/guest-test.sh"
tar -C "$vm/payload" -cf "$vm/payload.tar" ferrosocks.deb guest-test.sh

# ---- 3. The run under systemd ------------------------------------------------------------
say "booting the guest ($accel): systemd as PID 1, the checks, power-off (up to ${boot_limit}s)"
rc=0
run_qemu "$boot_limit" "$vm/console.log" -snapshot -kernel "$vm/vmlinuz" -initrd "$vm/initrd.img" \
    -append "console=ttyS0 root=/dev/vda systemd.unit=ferrosocks-vmtest.target panic=-1 quiet loglevel=3 systemd.show_status=0" \
    -drive "file=$vm/base.raw,format=raw,if=virtio" \
    -drive "file=$vm/payload.tar,format=raw,if=virtio,readonly=on" || rc=$?

# ---- 4. The verdict ----------------------------------------------------------------------
tr -d '\r' <"$vm/console.log" | grep -a 'VMTEST: ' | sed 's/^.*VMTEST: /VMTEST: /' >"$vm/results.txt" || true
cat "$vm/results.txt"
passed=$(grep -c '^VMTEST: PASS' "$vm/results.txt" || true)
failed=$(grep -c '^VMTEST: FAIL' "$vm/results.txt" || true)
say "console log: $vm/console.log; $passed passed, $failed failed"
[ "$rc" -ne 124 ] || fail "timeout: the guest did not power off within ${boot_limit}s"
[ "$rc" -eq 0 ] || fail "qemu exited with status $rc"
grep -q '^VMTEST: DONE' "$vm/results.txt" || fail "the guest's checks did not finish (no VMTEST: DONE)"
[ "$failed" -eq 0 ] || fail "$failed check(s) failed in the guest"
[ "$passed" -gt 0 ] || fail "no check passed"
echo "vm-test ($accel): $passed passed, 0 failed"
