#!/usr/bin/env bash
# The nightly pipeline (ci/README.md): build, the conformance suite, the nightly benchmark
# profile, its report, an A/B comparison with the last baseline, and the history of the last
# runs with its charts. Runs from a clean checkout on a host with /dev/kvm.
#
# Usage: ci/nightly.sh                      one nightly run
#        ci/nightly.sh --set-baseline RUN   make a kept run's results the baseline (by hand)
#        ci/nightly.sh --help
# Environment:
#   PAGEFLIP_NIGHTLY_DIR      where runs, the baseline and the history live
#                             (default $HOME/pageflip-nightly; outside the checkout, which
#                             actions/checkout cleans)
#   PAGEFLIP_NIGHTLY_KEEP     runs kept in runs/ and history/ (default 30)
#   PAGEFLIP_NIGHTLY_PROFILE  bench profile (default nightly)
#   PAGEFLIP_BASELINE         advance: a clean run becomes the baseline (default);
#                             pinned: the baseline changes only with --set-baseline
#   PAGEFLIP_NOISE            report compare's noise threshold (default 0.05)
#   PAGEFLIP_ALPHA            report compare's significance level (default 0.01)
#   PAGEFLIP_HISTORY_METRICS  CASE_ID:METRIC ... charted over the kept runs
#                             (default: the floor's exit and remap, ping-pong latency)
# Exit code (the first that applies):
#   1  the conformance suite failed (conform exit 1)
#   3  the pipeline could not run: usage, no /dev/kvm, build, conform could not run, bench,
#      report, compare or history failed, another nightly holds the lock, or any other
#      unexpected failure
#   2  a significant regression against the baseline (report compare exit 1)
#   0  otherwise; the run then becomes the baseline (PAGEFLIP_BASELINE=advance)
# Every step's output is kept in $PAGEFLIP_NIGHTLY_DIR/runs/<run id>/, also when one fails.
set -euo pipefail

readonly EXIT_CONFORM=1 EXIT_REGRESSION=2 EXIT_INFRA=3
# Any failure not handled below (a full disk, a missing tool) is the pipeline's, never a
# conformance failure: exit 3, also from functions (-E).
set -E
trap 'rc=$?; printf "nightly: error: unexpected failure (exit %s) at line %s\n" "$rc" "$LINENO" >&2; exit "$EXIT_INFRA"' ERR

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

dir=${PAGEFLIP_NIGHTLY_DIR:-$HOME/pageflip-nightly}
keep=${PAGEFLIP_NIGHTLY_KEEP:-30}
profile=${PAGEFLIP_NIGHTLY_PROFILE:-nightly}
policy=${PAGEFLIP_BASELINE:-advance}
noise=${PAGEFLIP_NOISE:-0.05}
alpha=${PAGEFLIP_ALPHA:-0.01}
history_metrics=${PAGEFLIP_HISTORY_METRICS:-floor:exit_ns floor:remap_ns pingpong/remap/immediate/4096B/b1/2vm:latency_p50_ns pingpong/copy/immediate/4096B/b1/2vm:latency_p50_ns}

SECONDS=0
say() { printf 'nightly: %s\n' "$*"; }
step() { printf '\n=== nightly: %s (at %d s)\n' "$*" "$SECONDS"; }
die() {
  printf 'nightly: error: %s\n' "$*" >&2
  exit "$EXIT_INFRA"
}
usage() { sed -n '6,28s/^# \{0,1\}//p' "$0"; }
# A GitHub Actions annotation when running there, a plain line otherwise.
annotate() {
  if [ -n "${GITHUB_ACTIONS:-}" ]; then
    printf '::%s::%s\n' "$1" "$2"
  else
    printf 'nightly: %s: %s\n' "$1" "$2"
  fi
}

[[ $keep =~ ^[1-9][0-9]*$ ]] || die "PAGEFLIP_NIGHTLY_KEEP=$keep: give a number of runs >= 1"
[[ $profile =~ ^[a-z0-9_-]+$ ]] || die "PAGEFLIP_NIGHTLY_PROFILE=$profile: give a profile name"
[[ $policy =~ ^(advance|pinned)$ ]] || die "PAGEFLIP_BASELINE=$policy: give advance or pinned"
[[ $noise =~ ^[0-9]*\.?[0-9]+$ ]] || die "PAGEFLIP_NOISE=$noise: give a fraction (0.05 = 5%)"
[[ $alpha =~ ^[0-9]*\.?[0-9]+$ ]] || die "PAGEFLIP_ALPHA=$alpha: give a fraction (0.01)"

# Takes $dir/.lock for this process, or fails: one nightly (or baseline change) at a time.
lock() {
  command -v flock >/dev/null || die "flock (util-linux) is missing"
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock -n 9 || die "another nightly holds $dir/.lock"
}

# Makes `results` (a results file) the baseline, remembering which run it came from and why.
set_baseline() {
  local results=$1 id=$2 why=$3
  cp "$results" "$dir/baseline.json.tmp"
  mv "$dir/baseline.json.tmp" "$dir/baseline.json"
  printf '%s\n' "$id" >"$dir/baseline.id"
  printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$id" "$why" >>"$dir/baseline.log"
  say "baseline is now run $id ($why)"
}

case $# in
  0) ;;
  1)
    case $1 in
      -h | --help)
        usage
        exit 0
        ;;
      *)
        usage >&2
        die "unknown argument $1"
        ;;
    esac
    ;;
  2)
    [ "$1" = --set-baseline ] || {
      usage >&2
      die "unknown arguments $*"
    }
    lock
    [ -f "$dir/runs/$2/results.json" ] || die "no results of run $2 in $dir/runs/$2/"
    set_baseline "$dir/runs/$2/results.json" "$2" "set by hand"
    exit 0
    ;;
  *)
    usage >&2
    die "too many arguments"
    ;;
esac

# --- the run's directory, and the lock ----------------------------------------------------------

lock
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (ci/README.md)"
mkdir -p "$dir/runs" "$dir/history"

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# Run ids begin with the UTC start time to the second, so name order is time order; a run
# started within the second of the previous one waits for the next second.
run_id=$(date -u +%Y%m%dT%H%M%SZ)-${revision:0:12}
while [ -e "$dir/runs/$run_id" ] || [ -e "$dir/history/$run_id.json" ]; do
  sleep 1
  run_id=$(date -u +%Y%m%dT%H%M%SZ)-${revision:0:12}
done
run=$dir/runs/$run_id
mkdir -p "$run"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  printf 'run_dir=%s\nrun_id=%s\n' "$run" "$run_id" >>"$GITHUB_OUTPUT"
fi
say "run $run_id in $run"

# The outcome of every step, written on every exit (also an early one) to $run/status.
conform_state=not-run bench_state=not-run report_state=not-run compare_state=not-run
history_state=not-run baseline_state=unchanged
# shellcheck disable=SC2317 # runs from the EXIT trap
write_status() {
  local code=$?
  {
    printf 'run=%s\nrevision=%s\nprofile=%s\n' "$run_id" "$revision" "$profile"
    printf 'conform=%s\nbench=%s\nreport=%s\n' "$conform_state" "$bench_state" "$report_state"
    printf 'compare=%s\nhistory=%s\nbaseline=%s\n' "$compare_state" "$history_state" "$baseline_state"
    printf 'exit=%s\nseconds=%s\n' "$code" "$SECONDS"
  } >"$run/status"
  printf '%s %s exit=%s conform=%s compare=%s baseline=%s\n' "$run_id" "$revision" "$code" \
    "$conform_state" "$compare_state" "$baseline_state" >>"$dir/nightly.log"
}
trap write_status EXIT

# Runs a step's command with its output shown and kept in $run/<log>; returns its exit code.
logged() {
  local log=$1
  shift
  set +e
  "$@" 2>&1 | tee "$run/$log"
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}
# A workspace binary, through cargo (built by the build step).
# shellcheck disable=SC2317 # runs through `logged`
run_bin() {
  local name=$1
  shift
  cargo run --release --locked --quiet --bin "$name" -- "$@"
}

# --- the host ------------------------------------------------------------------------------------

step "host"
{
  printf 'revision: %s\n' "$revision"
  printf 'kernel: %s\n' "$(uname -r)"
  for m in kvm_intel kvm_amd kvm_pvm; do
    if [ -d /sys/module/$m ]; then printf 'kvm flavour: %s\n' $m; fi
  done
  printf 'perf_event_paranoid: %s\n' "$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo unknown)"
  printf 'cpus: %s\n' "$(nproc)"
  cargo --version
} | tee "$run/host.txt"
[ -e /dev/kvm ] || die "/dev/kvm is missing: the nightly needs KVM (ci/README.md)"
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
  die "/dev/kvm is not readable and writable by $(id -un): add the user to the kvm group"
fi

# The runner counts exits and TLB flushes with perf tracepoints, which need tracefs.
if [ ! -d /sys/kernel/tracing/events ]; then
  if [ "$(id -u)" = 0 ]; then
    if mount -t tracefs nodev /sys/kernel/tracing; then
      say "mounted tracefs at /sys/kernel/tracing"
    else
      annotate warning "could not mount tracefs: tracepoint metrics will be unavailable"
    fi
  else
    annotate warning "tracefs is not mounted and this is not root: tracepoint metrics will be unavailable (ci/README.md)"
  fi
fi

# --- build, conformance, benchmark, report --------------------------------------------------------

step "build (release)"
logged build.log cargo build --release --locked --workspace --bins || die "the build failed (runs/$run_id/build.log)"

step "conformance suite"
conform_rc=0
logged conform.tap run_bin conform --format tap || conform_rc=$?
case $conform_rc in
  0) conform_state=pass ;;
  1)
    conform_state=fail
    annotate error "the conformance suite failed (runs/$run_id/conform.tap)"
    ;;
  *)
    conform_state=error
    die "conform could not run the suite (exit $conform_rc)"
    ;;
esac

step "benchmark (profile $profile)"
results=$run/results.json
if logged bench.log run_bin bench run --profile "$profile" --out "$results" && [ -s "$results" ]; then
  bench_state=ok
else
  bench_state=failed
  [ "$conform_state" = fail ] && exit "$EXIT_CONFORM"
  die "bench run failed (runs/$run_id/bench.log)"
fi

step "report"
if logged report.log run_bin report "$results" --out "$run/report"; then
  report_state=ok
else
  report_state=failed
  [ "$conform_state" = fail ] && exit "$EXIT_CONFORM"
  die "report failed (runs/$run_id/report.log)"
fi

# --- compare with the baseline ----------------------------------------------------------------

step "compare with the baseline"
regressed=false
if [ -f "$dir/baseline.json" ]; then
  say "baseline: run $(cat "$dir/baseline.id" 2>/dev/null || echo '?')"
  compare_rc=0
  logged compare.md run_bin report compare "$dir/baseline.json" "$results" \
    --noise "$noise" --alpha "$alpha" --out "$run/compare" || compare_rc=$?
  case $compare_rc in
    0) compare_state=no-regression ;;
    1)
      compare_state=regressed
      regressed=true
      annotate error "a significant regression against the baseline (runs/$run_id/compare.md)"
      ;;
    *)
      compare_state=error
      [ "$conform_state" = fail ] && exit "$EXIT_CONFORM"
      die "report compare failed (exit $compare_rc): if the baseline is of an older results schema, reset it: ci/nightly.sh --set-baseline $run_id"
      ;;
  esac
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$run/compare.md" >>"$GITHUB_STEP_SUMMARY"; fi
else
  compare_state=no-baseline
  say "no baseline yet in $dir: this run becomes it if it is clean"
fi

# --- history ------------------------------------------------------------------------------------

step "history (the last $keep runs)"
cp "$results" "$dir/history/$run_id.json"
mapfile -t kept < <(find "$dir/history" -maxdepth 1 -name '*.json' -printf '%f\n' | sort)
for old in "${kept[@]:0:$((${#kept[@]} > keep ? ${#kept[@]} - keep : 0))}"; do
  rm -f "$dir/history/$old"
done
mapfile -t runs < <(find "$dir/runs" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
for old in "${runs[@]:0:$((${#runs[@]} > keep ? ${#runs[@]} - keep : 0))}"; do
  rm -rf "${dir:?}/runs/$old"
done
mapfile -t files < <(find "$dir/history" -maxdepth 1 -name '*.json' | sort)
metric_args=()
for m in $history_metrics; do metric_args+=(--metric "$m"); done
if logged history.log run_bin report history "${files[@]}" --out "$run/history" --last "$keep" "${metric_args[@]}"; then
  history_state=ok
  rm -rf "$dir/history-charts"
  cp -r "$run/history" "$dir/history-charts"
else
  history_state=failed
  [ "$conform_state" = fail ] && exit "$EXIT_CONFORM"
  die "report history failed (runs/$run_id/history.log)"
fi

# --- the baseline, and the verdict --------------------------------------------------------------

step "verdict"
ln -sfn "runs/$run_id" "$dir/latest"
if [ "$conform_state" = fail ]; then
  say "conformance failure: the baseline stays"
  exit "$EXIT_CONFORM"
fi
if [ "$regressed" = true ]; then
  say "regression: the baseline stays (accept it with: ci/nightly.sh --set-baseline $run_id)"
  exit "$EXIT_REGRESSION"
fi
if [ ! -f "$dir/baseline.json" ]; then
  set_baseline "$results" "$run_id" "first clean run"
  baseline_state=first
elif [ "$policy" = advance ]; then
  set_baseline "$results" "$run_id" "clean run (conform passed, no regression)"
  baseline_state=advanced
else
  say "PAGEFLIP_BASELINE=pinned: the baseline stays"
fi
say "ok: conform passed, no regression ($SECONDS s)"
exit 0
