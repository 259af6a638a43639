#!/usr/bin/env bash
# The hardware-KVM lane: the full conform suite on kvm_amd (SVM + nested paging), on a machine
# that has no hardware virtualization. QEMU emulates an AMD EPYC with SVM and NPT in software
# (TCG), boots Debian 13's kernel (6.12: the current linux-image-amd64 of trixie, fetched with a
# private apt configuration, unpacked, not installed), loads kvm_amd from it, records the kernel
# and KVM_CAP_PRE_FAULT_MEMORY (236) and runs `conform --format tap` in an initramfs
# (ci/hw-kvm/init), then `bench run --matrix ci/smoke-matrix.json` with perf's tracepoints on
# (kvm:kvm_exit fires on kvm_amd, by hardware exit reason, where kvm_pvm never fires it). The
# TAP report, the benchmark's results and both exit codes come back on a second serial port.
#
# Usage: ci/hw-kvm/run.sh [CONFORM]
#   CONFORM   a prebuilt release `conform` binary (a `bench` beside it is taken too; without
#             one the benchmark step is skipped, saying so); default: `cargo build --release
#             --bin conform --bin bench`
# Environment:
#   HWKVM_TIMEOUT  seconds the VM may run before the lane fails (default 900)
#   HWKVM_MEM      the VM's memory in MiB (default 2048)
#   HWKVM_SUITE    the Debian suite whose kernel boots (default trixie: 6.12; bookworm: the 6.1
#                  kernel the lane booted before)
#   HWKVM_MIRROR   the Debian archive to fetch it from (default: the machine's, else
#                  http://deb.debian.org/debian)
#   HWKVM_SECURITY_MIRROR  the archive of the suite's security updates, where the newest
#                  kernel is (default: the machine's, else http://deb.debian.org/debian-security;
#                  none: the suite's point release only)
#   HWKVM_CACHE    where the suite's package lists and unpacked kernel are kept and reused
#                  (default <target>/hw-kvm/cache)
#   HWKVM_CASE_TIMEOUT  conform's per-case --timeout in seconds (default 600: the emulator runs
#                  the guests several times slower than the test hosts; 60 s is conform's default)
#   HWKVM_FILTER   by hand only: space-separated conform --filter patterns (default: the full suite)
# Writes <target>/hw-kvm/: conform.tap (the report, also printed), results/ (each case's config,
# result.json and VMM output, as `conform --keep` leaves them), bench.json (the benchmark's
# results, checked by ci/hw-kvm/check-bench.py), console.log (the VM's console).
# <target> is $CARGO_TARGET_DIR, else ./target.
#
# Exit code: 0 every case passed on kvm_amd (and the benchmark's checks held); conform's exit
# code if it failed inside the VM (1: a case failed); 1 if the benchmark failed or its checks
# did not hold; 2 if the lane could not run the suite (install, download, boot, kernel panic,
# timeout, missing marker): never 0 then. Needs root for apt-get when a package is missing.
set -euo pipefail

invoked_from=$PWD
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

SECONDS=0
timeout_s=${HWKVM_TIMEOUT:-900}
mem_mib=${HWKVM_MEM:-2048}
case_timeout_s=${HWKVM_CASE_TIMEOUT:-600}
filters=${HWKVM_FILTER:-}
suite=${HWKVM_SUITE:-trixie}
mirror=${HWKVM_MIRROR:-}
security=${HWKVM_SECURITY_MIRROR:-}
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
out=$target/hw-kvm
cache=${HWKVM_CACHE:-$out/cache}
modules=(irqbypass ccp kvm kvm-amd)

say() { echo "hw-kvm: $*"; }
die() {
  echo "hw-kvm: error: $*" >&2
  exit 2
}

usage() { sed -n '11,33s/^# \{0,1\}//p' "$0"; }
conform=
case $# in
  0) ;;
  1)
    case $1 in
      -h | --help)
        usage
        exit 0
        ;;
      /*) conform=$1 ;;
      *) conform=$invoked_from/$1 ;;
    esac
    ;;
  *)
    usage >&2
    die "at most one argument (a conform binary), seen $#"
    ;;
esac
if [ -n "$conform" ] && { [ ! -f "$conform" ] || [ ! -x "$conform" ]; }; then
  die "$conform is not an executable file: give the path of a release conform binary"
fi
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "HWKVM_TIMEOUT=$timeout_s: give a whole number of seconds"
[[ $mem_mib =~ ^[1-9][0-9]*$ ]] || die "HWKVM_MEM=$mem_mib: give the VM's memory in MiB"
[[ $case_timeout_s =~ ^[1-9][0-9]*$ ]] || die "HWKVM_CASE_TIMEOUT=$case_timeout_s: give a whole number of seconds"
[[ $filters =~ ^[a-z0-9\ -]*$ ]] || die "HWKVM_FILTER=$filters: give case-name patterns ([a-z0-9-]) separated by spaces"
[[ $suite =~ ^[a-z]+$ ]] || die "HWKVM_SUITE=$suite: give a Debian suite's code name (trixie, bookworm)"
[[ $mirror =~ ^(https?://[^\ ]+)?$ ]] || die "HWKVM_MIRROR=$mirror: give the URL of a Debian archive (http://deb.debian.org/debian)"
mirror=${mirror%/}
[[ $security =~ ^(https?://[^\ ]+|none)?$ ]] || die "HWKVM_SECURITY_MIRROR=$security: give the URL of Debian's security archive (http://deb.debian.org/debian-security), or none"
security=${security%/}

# --- tools, from Debian's packages ---------------------------------------------------------------

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  die "apt-get and dpkg are missing: this lane takes QEMU and the kernel from Debian's packages; run it on Debian or Ubuntu"
fi

apt_updated=false
apt_update() {
  $apt_updated && return 0
  say "apt-get update"
  apt-get update -qq || die "apt-get update failed: check the network and /etc/apt/sources.list"
  apt_updated=true
}

install() {
  [ "$(id -u)" = 0 ] || die "missing $*: install them (apt-get install $*) or run this script as root"
  apt_update
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
    die "apt-get install $* failed (see above)"
}

static_busybox() { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
static_busybox || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v gzip >/dev/null || need+=(gzip)
command -v base64 >/dev/null || need+=(coreutils)
command -v awk >/dev/null || need+=(mawk)
command -v python3 >/dev/null || need+=(python3)
# kvm-caps (ci/hw-kvm/kvm-caps.c) is linked static: a C compiler and libc.a.
if ! command -v cc >/dev/null; then
  need+=(gcc libc6-dev)
elif [[ $(cc -print-file-name=libc.a) != /* ]]; then
  need+=(libc6-dev)
fi
[ ${#need[@]} -eq 0 ] || install "${need[@]}"
static_busybox || die "/bin/busybox is not a static binary: install busybox-static (apt-get install busybox-static)"

# --- the kernel: linux-image-amd64 of Debian $suite, unpacked into the cache ---------------------
#
# The kernel comes from the suite's own package lists, kept under the cache with a private apt
# configuration (never the machine's /etc/apt): the lane boots the same kernel on a Debian 12,
# a Debian 13 or an Ubuntu machine, and the machine's package state is left alone.

scache=$cache/$suite
aptdir=$scache/apt
apt_opts=(-o "Dir::Etc::sourcelist=$aptdir/sources.list" -o Dir::Etc::sourceparts=-
  -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
  -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false)
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || install debian-archive-keyring
[ -f "$keyring" ] || die "$keyring is missing after installing debian-archive-keyring"
# The Debian archives this machine already uses (a local mirror or proxy stays in use), else
# Debian's CDN: the suite itself and its security updates, where Debian's current kernel is
# between point releases.
machine_archive() {
  { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } |
    sed -n "s/^URIs: *\([^ ]*\/$1\)\/\{0,1\}\$/\1/p; s/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\/$1\)\/\{0,1\} .*/\2/p" |
    head -n1
}
[ -n "$mirror" ] || mirror=$(machine_archive debian)
mirror=${mirror:-http://deb.debian.org/debian}
[ -n "$security" ] || security=$(machine_archive debian-security)
security=${security:-http://deb.debian.org/debian-security}
mkdir -p "$aptdir"/lists/partial "$aptdir"/cache/archives/partial
{
  echo "deb [arch=amd64 signed-by=$keyring] $mirror $suite main"
  [ "$security" = none ] || echo "deb [arch=amd64 signed-by=$keyring] $security $suite-security main"
} >"$aptdir/sources.list.new"
if ! cmp -s "$aptdir/sources.list.new" "$aptdir/sources.list"; then
  # Another mirror or suite: the lists of the old one are of no use.
  mv "$aptdir/sources.list.new" "$aptdir/sources.list"
  rm -f "$aptdir"/lists/*_* "$aptdir"/cache/*.bin "$aptdir/updated"
else
  rm -f "$aptdir/sources.list.new"
fi

suite_updated=false
suite_update() {
  $suite_updated && return 0
  local from="$suite from $mirror"
  [ "$security" = none ] || from+=" and $suite-security from $security"
  say "apt-get update of $from (private lists in $aptdir)"
  apt-get "${apt_opts[@]}" update -qq || return 1
  touch "$aptdir/updated"
  suite_updated=true
}
have_lists() { [ -f "$aptdir/updated" ] && [ -n "$(find "$aptdir/lists" -maxdepth 1 -name '*_Packages*' -print -quit)" ]; }
if ! have_lists; then
  suite_update || die "apt-get update of Debian $suite from $mirror failed (above): check the network (HWKVM_MIRROR picks another mirror)"
elif [ -n "$(find "$aptdir/updated" -mmin +1440)" ]; then
  # A point release replaces the suite's kernel: look once a day; offline, the lists at hand do.
  suite_update || say "note: apt-get update of $suite failed; going on with the package lists of $(date -r "$aptdir/updated" +%F)"
fi

kernel_package() {
  # The metapackage depends on the current kernel package, e.g. linux-image-6.12.118+deb13-amd64.
  apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}
kpkg_version() { apt-cache "${apt_opts[@]}" show --no-all-versions "$kpkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n1; }
resolve_kernel() {
  kpkg=$(kernel_package)
  kvers=
  [ -z "$kpkg" ] || kvers=$(kpkg_version)
  kdir=$scache/${kpkg}_$kvers
}
resolve_kernel
if [ -z "$kvers" ] && suite_update; then
  resolve_kernel
fi
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 of Debian $suite to a kernel package (HWKVM_SUITE=$suite; the lists in $aptdir name none)"
[ -n "$kvers" ] || die "apt-cache knows no version of $kpkg in Debian $suite"

if [ ! -f "$kdir/.unpacked" ]; then
  tmp=$(mktemp -d "$scache/.download.XXXXXX")
  say "downloading $kpkg $kvers from Debian $suite (apt-get download)"
  if ! (cd "$tmp" && apt-get "${apt_opts[@]}" download -qq "$kpkg=$kvers") 2>"$tmp/apt.err"; then
    # Stale package lists name a version the mirror no longer has: update and resolve again.
    if ! $suite_updated && suite_update; then
      resolve_kernel
    fi
    if [ ! -f "$kdir/.unpacked" ] && ! (cd "$tmp" && apt-get "${apt_opts[@]}" download -qq "$kpkg=$kvers") 2>"$tmp/apt.err"; then
      cat "$tmp/apt.err" >&2
      rm -rf "$tmp"
      die "apt-get download $kpkg=$kvers from Debian $suite failed (above): check the network (HWKVM_MIRROR picks another mirror)"
    fi
  fi
  if [ ! -f "$kdir/.unpacked" ]; then
    say "unpacking $(basename "$tmp"/*.deb) into $kdir (dpkg -x)"
    dpkg -x "$tmp"/*.deb "$tmp/root" || die "dpkg -x of $kpkg failed"
    touch "$tmp/root/.unpacked"
    rm -rf "$kdir"
    mv "$tmp/root" "$kdir"
  fi
  rm -rf "$tmp"
  # Older kernels of the suite are of no more use (~120 MB unpacked for trixie, ~400 MB for
  # bookworm), nor those the lane kept directly in the cache before it took a suite.
  for old in "$scache"/linux-image-* "$cache"/linux-image-*; do
    [ ! -e "$old" ] || [ "$old" = "$kdir" ] || rm -rf "$old"
  done
else
  say "kernel: $kpkg $kvers of Debian $suite (cached in $kdir)"
fi
# Debian 13's packages put the modules under usr/lib (merged /usr), Debian 12's under lib.
kmods=$kdir/usr/lib/modules
[ -d "$kmods" ] || kmods=$kdir/lib/modules
[ -d "$kmods" ] || die "$kpkg has no lib/modules or usr/lib/modules: remove $kdir and run again"
kver=$(ls "$kmods")
[ "$(echo "$kver" | wc -l)" = 1 ] || die "$kmods holds more than one kernel: remove $kdir and run again"
vmlinuz=$kdir/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "$kpkg has no boot/vmlinuz-$kver: remove $kdir and run again"

# --- conform ---------------------------------------------------------------------------------

if [ -z "$conform" ]; then
  say "cargo build --release --bin conform --bin bench"
  cargo build --release --bin conform --bin bench ||
    die "cargo build --release --bin conform --bin bench failed (above)"
  conform=$target/release/conform
fi
if [ ! -f "$conform" ] || [ ! -x "$conform" ]; then
  die "$conform is not an executable file: give the path of a release conform binary"
fi
bench=$(dirname "$conform")/bench
if [ ! -x "$bench" ]; then
  say "note: no bench binary beside $conform: the benchmark step is skipped"
  bench=
fi

# --- the initramfs -----------------------------------------------------------------------------

mkdir -p "$out"
rm -rf "$out/initrd" "$out/results" "$out"/{conform.tap,console.log,data.log,data.txt,qemu.stderr}
ird=$out/initrd
mkdir -p "$ird"/{bin,mod,proc,sys,dev,tmp}
cp /bin/busybox "$ird/bin/"
cp "$here/init" "$ird/init"
chmod 755 "$ird/init"
{
  echo "--timeout $case_timeout_s"
  for f in $filters; do echo "--filter $f"; done
} >"$ird/conform.args"
# The debug info is most of conform's size and of no use in the VM.
# shellcheck disable=SC2086 # $bench is empty without a bench binary: nothing to copy then
for bin in "$conform" $bench; do
  name=$(basename "$bin")
  if command -v strip >/dev/null; then
    strip -o "$ird/$name" "$bin" || die "strip $bin failed"
  else
    cp "$bin" "$ird/$name"
  fi
  if ldd "$bin" >/dev/null 2>&1; then
    for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
      mkdir -p "$ird$(dirname "$lib")"
      cp -L "$lib" "$ird$lib" || die "cannot copy $bin's shared library $lib into the initramfs"
    done
  fi
done
[ -z "$bench" ] || cp "$root/ci/smoke-matrix.json" "$ird/smoke-matrix.json"
cc -O2 -static -o "$ird/kvm-caps" "$here/kvm-caps.c" || die "cannot build $here/kvm-caps.c (cc -O2 -static)"
moddir=$kmods/$kver/kernel
for m in "${modules[@]}"; do
  ko=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -n1)
  [ -n "$ko" ] || die "kernel $kver has no module $m (.ko, .ko.xz or .ko.zst under $moddir)"
  # busybox insmod may not decompress: modules go in uncompressed.
  case $ko in
    *.xz)
      command -v xz >/dev/null || install xz-utils
      xz -dc "$ko" >"$ird/mod/$m.ko" || die "cannot decompress $ko"
      ;;
    *.zst)
      command -v zstd >/dev/null || install zstd
      zstd -qdc "$ko" >"$ird/mod/$m.ko" || die "cannot decompress $ko"
      ;;
    *) cp "$ko" "$ird/mod/$m.ko" ;;
  esac
done
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1 >"$out/initrd.gz") ||
  die "cannot pack the initramfs ($ird)"

# --- boot -----------------------------------------------------------------------------------

boot_start=$SECONDS
say "booting $kpkg under qemu-system-x86_64 -accel tcg -cpu EPYC,+svm,+npt (at most ${timeout_s} s)"
set +e
timeout -k 10 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu EPYC,+svm,+npt -m "$mem_mib" -smp 1 \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$vmlinuz" -initrd "$out/initrd.gz" -append "console=ttyS0 quiet panic=-1" \
  -serial stdio -serial "file:$out/data.log" </dev/null 2>"$out/qemu.stderr" |
  tr -d '\r' | sed -u -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | tee "$out/console.log"
qemu_rc=${PIPESTATUS[0]}
set -e
vm_s=$((SECONDS - boot_start))

console_tail() {
  echo "--- last 40 lines of the VM's console ($out/console.log):" >&2
  if [ -s "$out/console.log" ]; then
    tail -n 40 "$out/console.log" >&2
  else
    echo "(empty: nothing reached the console)" >&2
  fi
  # QEMU's emulator lacks a few of EPYC's CPUID features and says so; that is not news.
  if grep -v "TCG doesn't support requested feature" "$out/qemu.stderr" >"$out/qemu.stderr.news"; then
    echo "--- qemu's stderr:" >&2
    cat "$out/qemu.stderr.news" >&2
  fi
  echo "---" >&2
}
fail_vm() {
  console_tail
  local panic
  panic=$(grep -m1 -o 'Kernel panic - .*' "$out/console.log" || true)
  [ -z "$panic" ] || echo "hw-kvm: the VM's kernel panicked: $panic" >&2
  die "$*"
}

[ -f "$out/data.log" ] || fail_vm "qemu-system-x86_64 did not start (exit $qemu_rc; its stderr is above)"
data=$out/data.txt
tr -d '\r' <"$out/data.log" >"$data"
error=$(sed -n 's/^PAGEFLIP-HWKVM-ERROR=//p' "$data" | head -n1)
[ -z "$error" ] || fail_vm "inside the VM: $error"
rc=$(sed -n 's/^PAGEFLIP-HWKVM-EXIT=\([0-9][0-9]*\)$/\1/p' "$data" | tail -n1)
if [ -z "$rc" ]; then
  if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
    fail_vm "the VM did not finish within ${timeout_s} s (HWKVM_TIMEOUT): stopped, no result"
  fi
  fail_vm "the VM ended without conform's exit marker (qemu exit $qemu_rc): it did not boot, the kernel panicked or conform did not finish"
fi

# The kernel the VM ran and what its kvm_amd offers on /dev/kvm (kvm-caps, in the VM's init).
guest_kernel=$(sed -n 's/^PAGEFLIP-HWKVM-KERNEL=//p' "$data" | head -n1)
caps=$(sed -n 's/^PAGEFLIP-HWKVM-CAPS=//p' "$data" | head -n1)
cap() { echo " $caps " | sed -n "s/.* $1=\(-\{0,1\}[0-9][0-9]*\) .*/\1/p"; }
pre_fault=$(cap 236)
guest_memfd=$(cap 234)
[ "$guest_kernel" = "$kver" ] || fail_vm "the VM ran kernel '${guest_kernel:-unknown}', not $kver of $kpkg"
[ -n "$pre_fault" ] && [ -n "$guest_memfd" ] || fail_vm "the VM reported no KVM capabilities (kvm-caps: '${caps:-nothing}')"
say "the VM ran Linux $guest_kernel ($kpkg $kvers, Debian $suite); kvm_amd on /dev/kvm: KVM_CAP_PRE_FAULT_MEMORY (236) = $pre_fault, KVM_CAP_GUEST_MEMFD (234) = $guest_memfd"

# The report.
awk '/^PAGEFLIP-HWKVM-TAP-END /{exit} f{print} /^PAGEFLIP-HWKVM-TAP-BEGIN$/{f=1}' "$data" >"$out/conform.tap"
want_lines=$(sed -n 's/^PAGEFLIP-HWKVM-TAP-END lines=\([0-9]*\)$/\1/p' "$data")
[ -n "$want_lines" ] || fail_vm "conform exited with code $rc but wrote no TAP report"
[ "$(wc -l <"$out/conform.tap")" = "$want_lines" ] ||
  fail_vm "the TAP report came out damaged: $(wc -l <"$out/conform.tap") lines instead of $want_lines"

# Each case's config and result, and the flavour they were taken on (host.kvm_flavour).
mkdir -p "$out/results"
awk '/^PAGEFLIP-HWKVM-KEEP-END$/{exit} f{print} /^PAGEFLIP-HWKVM-KEEP-BEGIN$/{f=1}' "$data" |
  base64 -d | tar -xz -C "$out/results" || fail_vm "conform's kept results came out damaged"
flavours=$(cat /dev/null "$out"/results/*/result.json 2>/dev/null |
  sed -n 's/.*"kvm_flavour": *"\([^"]*\)".*/\1/p' | sort | uniq -c | sed 's/^ *//')

echo
say "conform's TAP report ($out/conform.tap):"
cat "$out/conform.tap"
echo
say "host.kvm_flavour of the results: ${flavours:-none}"
lane_s=$SECONDS
if [ "$rc" != 0 ]; then
  echo "hw-kvm: FAILED: conform exited with code $rc on kvm_amd (report above; results in $out/results)" >&2
  exit "$rc"
fi
if [ -z "$flavours" ] || echo "$flavours" | grep -qv ' kvm_amd$'; then
  die "conform passed, but not on kvm_amd: the results' host.kvm_flavour is ${flavours:-absent}"
fi
plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$out/conform.tap" | head -n1)
oks=$(grep -c '^ok ' "$out/conform.tap" || true)
if [ -z "$plan" ] || [ "$oks" != "$plan" ] || grep -q '^not ok ' "$out/conform.tap"; then
  die "conform exited 0 but its report does not show every case passing (plan ${plan:-none}, $oks ok)"
fi
[ -z "$filters" ] || say "note: HWKVM_FILTER=\"$filters\" ran only the matching cases, not the full suite"

# --- the benchmark's results -----------------------------------------------------------------

bench_note="benchmark skipped (no bench binary)"
if [ -n "$bench" ]; then
  bench_rc=$(sed -n 's/^PAGEFLIP-HWKVM-BENCH-EXIT=\([0-9][0-9]*\)$/\1/p' "$data" | tail -n1)
  [ -n "$bench_rc" ] || fail_vm "conform passed, but the benchmark step left no exit marker"
  awk '/^PAGEFLIP-HWKVM-BENCH-END$/{exit} f{print} /^PAGEFLIP-HWKVM-BENCH-BEGIN$/{f=1}' "$data" |
    base64 -d | gzip -dc >"$out/bench.json" 2>/dev/null || rm -f "$out/bench.json"
  if [ "$bench_rc" != 0 ]; then
    console_tail
    echo "hw-kvm: FAILED: bench run exited with code $bench_rc on kvm_amd (its output is on the console above)" >&2
    exit 1
  fi
  [ -s "$out/bench.json" ] || fail_vm "bench run exited 0 but its results came out missing or damaged"
  say "the benchmark's results on kvm_amd ($out/bench.json):"
  python3 "$here/check-bench.py" "$out/bench.json" ||
    { echo "hw-kvm: FAILED: the benchmark's results on kvm_amd do not hold (above)" >&2; exit 1; }
  bench_note="bench run of the smoke matrix checked"
fi
# Debian 13's 6.12 offers KVM_PRE_FAULT_MEMORY (Linux 6.10): a kernel without it is not the one
# this lane is for (only HWKVM_SUITE=bookworm, 6.1, goes without).
if [ "$suite" != bookworm ] && [ "$pre_fault" != 1 ]; then
  die "conform passed, but Linux $guest_kernel of Debian $suite reports KVM_CAP_PRE_FAULT_MEMORY (236) = $pre_fault on kvm_amd, not 1"
fi
say "PASS: $oks of $plan conform cases on kvm_amd (SVM + NPT under QEMU TCG), $bench_note, Linux $guest_kernel ($kpkg, Debian $suite), KVM_CAP_PRE_FAULT_MEMORY (236) = $pre_fault; ${boot_start} s to prepare, ${vm_s} s in the VM, ${lane_s} s in all"
