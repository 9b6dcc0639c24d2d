#!/usr/bin/env bash
# Second command of the README: install what is missing, build twice (plain
# and AddressSanitizer+UndefinedBehaviorSanitizer) with -Werror, and run the
# whole suite in both builds. Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test || exit 1
jobs=$(nproc)
total_ok=0; total_fail=0; status=0
# Extra suite: the official Mustache spec files, when they are here
# ($IM_MUSTACHE_SPEC, or ../shared beside the clone as in CI). The suite's
# own conformance cases (tests/plugins/mustache-cases) always run.
spec=${IM_MUSTACHE_SPEC:-../shared/testdata/mustache-spec}
if [ -f "$spec/interpolation.json" ]; then
  spec=$(cd "$spec" && pwd)
  extra="mustache spec suite: ran ($spec)"
else
  extra="mustache spec suite: NOT RUN (no spec files at $spec; set IM_MUSTACHE_SPEC)"
  spec=""
fi
run_suite() { # name, build dir, meson options...
  local name=$1 dir=$2; shift 2
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || { echo "meson setup $dir failed"; return 1; }
  else
    meson setup --reconfigure "$dir" "$@" >/dev/null || return 1
  fi
  ninja -C "$dir" >/dev/null || { ninja -C "$dir" | tail -40; return 1; }
  local log="$dir/test-summary.txt"
  meson test -C "$dir" --print-errorlogs --num-processes "$jobs" >"$log" 2>&1
  local rc=$?
  grep -E '^ *[0-9]+/[0-9]+ ' "$log" | sed "s/^/[$name] /"
  [ $rc -eq 0 ] || sed -n '/stdout:\|stderr:\|FAIL/,+30p' "$log" | head -120
  # Count criterion test cases, not executables.
  local counts
  counts=$(grep -Eo 'Synthesis: Tested: [0-9]+ \| Passing: [0-9]+ \| Failing: [0-9]+ \| Crashing: [0-9]+' \
             "$dir/meson-logs/testlog.txt" |
           awk -F'[:|]' '{p+=$5; f+=$7+$9} END {print p+0, f+0}')
  total_ok=$((total_ok + ${counts% *})); total_fail=$((total_fail + ${counts#* }))
  return $rc
}
run_suite plain build -Dtests=true -Db_sanitize=none -Dmustache_spec="$spec" || status=1
# Sanitizers: leaks, overflows and UB fail the suite.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite asan build-asan -Dtests=true -Db_sanitize=address,undefined -Db_lundef=false -Dmustache_spec="$spec" || status=1
[ $status -eq 0 ] || total_fail=$((total_fail > 0 ? total_fail : 1))
echo "$extra"
echo "$total_ok passed, $total_fail failed"
exit $status
