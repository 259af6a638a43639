#!/usr/bin/env bash
# Tests ci/nightly.sh's control flow without building or measuring anything: `cargo` is a stub
# whose conform, bench, report, report compare and report history exit with the codes the
# scenario gives. Checks every exit code, the baseline policy (set on the first clean run,
# advanced on a clean run, kept on a failure or a regression, pinned, set by hand), that a
# failing step keeps what was produced, and the pruning of runs and history.
#
# Usage: ci/test-nightly.sh   (needs /dev/kvm readable and writable, as nightly.sh checks it;
#                              skipped with a message otherwise; takes ~15 s, as run ids
#                              are whole seconds)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
  echo "test-nightly: SKIP: nightly.sh needs /dev/kvm, missing or not accessible here"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
cat >"$work/bin/cargo" <<'STUB'
#!/usr/bin/env bash
# A stand-in for cargo: `cargo run ... --bin NAME -- ARGS` acts out NAME.
set -euo pipefail
printf '%s\n' "$*" >>"$STUB_LOG"
case $1 in
  --version) echo "cargo 0.0.0 (stub)"; exit 0 ;;
  build) exit "${STUB_BUILD:-0}" ;;
esac
while [ "$1" != --bin ]; do shift; done
name=$2
shift 3
out() { while [ $# -gt 0 ]; do [ "$1" = --out ] && { echo "$2"; return; }; shift; done; }
case $name in
  conform) echo "ok 1 - stub"; exit "${STUB_CONFORM:-0}" ;;
  bench) echo "{\"stub\": true}" >"$(out "$@")"; exit "${STUB_BENCH:-0}" ;;
  report)
    mkdir -p "$(out "$@")"
    case $1 in
      compare) echo "# A/B comparison (stub)"; exit "${STUB_COMPARE:-0}" ;;
      history) exit "${STUB_HISTORY:-0}" ;;
      *) exit "${STUB_REPORT:-0}" ;;
    esac
    ;;
esac
echo "stub cargo: unknown binary $name" >&2
exit 99
STUB
chmod +x "$work/bin/cargo"

export PATH=$work/bin:$PATH STUB_LOG=$work/cargo.log
export PAGEFLIP_NIGHTLY_DIR=$work/nightly PAGEFLIP_NIGHTLY_KEEP=2
unset GITHUB_ACTIONS GITHUB_OUTPUT GITHUB_STEP_SUMMARY
nd=$PAGEFLIP_NIGHTLY_DIR
failures=0

fail() {
  echo "test-nightly: FAIL: $*"
  failures=$((failures + 1))
}
# Runs nightly.sh with the given VAR=value settings; checks its exit code; sets $last to the
# run id it made.
scenario() {
  local name=$1 want=$2
  shift 2
  local rc=0
  env "$@" "$here/nightly.sh" >"$work/out.txt" 2>&1 || rc=$?
  if [ "$rc" != "$want" ]; then
    fail "$name: exit $rc, expected $want"
    sed 's/^/    /' "$work/out.txt"
  else
    echo "test-nightly: ok: $name (exit $rc)"
  fi
  last=$(find "$nd/runs" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort | tail -1)
}
status() { sed -n "s/^$1=//p" "$nd/runs/$last/status"; }
expect_baseline() {
  local got
  got=$(cat "$nd/baseline.id" 2>/dev/null || echo none)
  [ "$got" = "$1" ] || fail "$2: baseline is $got, expected $1"
}

mkdir -p "$nd" && touch "$nd/history"
scenario "an unexpected failure (history/ is a file) is the pipeline's" 3
rm "$nd/history"

scenario "first clean run becomes the baseline" 0
first=$last
expect_baseline "$first" "first run"
[ "$(status compare)" = no-baseline ] || fail "first run: compare=$(status compare)"
[ -f "$nd/baseline.json" ] || fail "no baseline.json"

scenario "clean run advances the baseline" 0
second=$last
expect_baseline "$second" "second run"
grep -q "report -- compare $nd/baseline.json $nd/runs/$second/results.json --noise 0.05 --alpha 0.01" "$STUB_LOG" ||
  fail "report compare was not given the baseline and the run"
grep -q "history .*--metric floor:exit_ns" "$STUB_LOG" || fail "report history got no --metric"
grep -q '^# A/B comparison' "$nd/runs/$second/compare.md" || fail "compare output not kept"
[ "$(readlink "$nd/latest")" = "runs/$second" ] || fail "latest is not the second run"

scenario "regression" 2 STUB_COMPARE=1
regressed=$last
expect_baseline "$second" "after a regression"
[ "$(status compare)" = regressed ] || fail "regression: compare=$(status compare)"
[ "$(status exit)" = 2 ] || fail "regression: status exit=$(status exit)"

scenario "conformance failure (bench, report and compare still run)" 1 STUB_CONFORM=1 STUB_COMPARE=1
expect_baseline "$second" "after a conformance failure"
[ -s "$nd/runs/$last/results.json" ] || fail "conformance failure: no results kept"
[ "$(status conform)" = fail ] || fail "conformance failure: conform=$(status conform)"

scenario "conformance failure outranks a bench failure" 1 STUB_CONFORM=1 STUB_BENCH=1
scenario "bench failure" 3 STUB_BENCH=1
[ "$(status bench)" = failed ] || fail "bench failure: bench=$(status bench)"
scenario "conform cannot run" 3 STUB_CONFORM=2
[ "$(status bench)" = not-run ] || fail "conform error: bench=$(status bench)"
scenario "build failure" 3 STUB_BUILD=101
scenario "report failure" 3 STUB_REPORT=1
scenario "compare cannot read its input" 3 STUB_COMPARE=2
scenario "history failure" 3 STUB_HISTORY=1
expect_baseline "$second" "after the failures"

scenario "pinned baseline stays" 0 PAGEFLIP_BASELINE=pinned
expect_baseline "$second" "pinned"
pinned_run=$last
scenario "bad setting" 3 PAGEFLIP_NIGHTLY_KEEP=0

rc=0
"$here/nightly.sh" --set-baseline "$pinned_run" >/dev/null || rc=$?
[ "$rc" = 0 ] || fail "--set-baseline: exit $rc"
expect_baseline "$pinned_run" "--set-baseline"
grep -q "$pinned_run set by hand" "$nd/baseline.log" || fail "baseline.log lacks the change"
rc=0
"$here/nightly.sh" --set-baseline "$regressed" >/dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "--set-baseline of a pruned run: exit $rc, expected 3"

# KEEP=2: two run directories and two history files remain, the newest.
[ "$(find "$nd/runs" -mindepth 1 -maxdepth 1 -type d | wc -l)" = 2 ] || fail "runs/ not pruned to 2"
[ "$(find "$nd/history" -name '*.json' | wc -l)" = 2 ] || fail "history/ not pruned to 2"
[ -d "$nd/runs/$last" ] || fail "the newest run was pruned"
[ "$(wc -l <"$nd/nightly.log")" = 12 ] || fail "nightly.log does not have the 12 runs"

if [ "$failures" -gt 0 ]; then
  echo "test-nightly: $failures failure(s)"
  exit 1
fi
echo "test-nightly: all scenarios passed"
