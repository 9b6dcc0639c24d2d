#!/usr/bin/env bash
# Fuzzes the parsers: every target of tests/fuzz/ (or the ones named) under
# libFuzzer with ASan+UBSan, MINUTES minutes each, one after the other,
# then prints a table. Local only: nothing goes to the network (the two
# HTTP-facing targets talk to their own server on 127.0.0.1, ws_client to
# its own hostile one).
#
# Usage: bash bench/fuzz.sh [MINUTES=1] [TARGET...]
#   targets: form_query rest_json slack_payloads mustache yaml_config
#            ws_frames ws_client
#
# build-fuzz/ is a clang build of the tree with -fsanitize=fuzzer-no-link
# (tests/fuzz/meson.build then links fuzz_<target> with libFuzzer);
# build-fuzz/corpus/<target>/ is the working corpus, a fresh copy of
# tests/fuzz/corpus/<target>/ each run (FUZZ_KEEP_CORPUS=1 keeps what an
# earlier run found); crash, timeout, leak and OOM inputs go to
# build-fuzz/artifacts/<target>/, and each run's log to
# build-fuzz/logs/<target>.log. A target that crashes is started again on
# its working corpus for the rest of its time (at most 10 starts), so one
# bug does not end its run; "distinct" counts crashes by where they are.
# Replay an artifact with build-fuzz/tests/fuzz/fuzz_<target> FILE, shrink
# it with -minimize_crash=1 -runs=10000.
set -uo pipefail
cd "$(dirname "$0")/.."

all=(form_query rest_json slack_payloads mustache yaml_config ws_frames
     ws_client)
declare -A max_len=([form_query]=4096 [rest_json]=4096 [slack_payloads]=8192
                    [mustache]=4096 [yaml_config]=4096 [ws_frames]=8192
                    [ws_client]=8192)
# rest_json keeps every event it publishes in the bus ring, so nearly every
# input allocates more than it frees and libFuzzer's per-input leak check
# (a LeakSanitizer scan) would run each time: 10x slower. Its leaks are
# still found when the run ends (LeakSanitizer at exit). ws_client likewise:
# its link is freed on the network thread just after on_close returns,
# often after the input is done, so most inputs look unbalanced (1.7x).
declare -A leaks=([form_query]=1 [rest_json]=0 [slack_payloads]=1
                  [mustache]=1 [yaml_config]=1 [ws_frames]=1 [ws_client]=0)
minutes=${1:-1}
[ $# -gt 0 ] && shift
if ! [[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || [ "$(awk "BEGIN{print ($minutes > 0)}")" != 1 ]; then
  echo "usage: bash bench/fuzz.sh [MINUTES=1] [TARGET...]" >&2; exit 2
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [ -n "${max_len[$t]:-}" ] || { echo "unknown target $t; use: ${all[*]}" >&2; exit 2; }
done
secs=$(awk "BEGIN{s=int($minutes*60+0.5); print (s < 1 ? 1 : s)}")

# clang and its libFuzzer runtime, besides the build's own packages.
bash scripts/deps.sh fuzz || exit 1

B=build-fuzz
if [ ! -f $B/build.ninja ]; then
  CC=clang-14 meson setup $B -Dtests=true -Dwerror=false \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fsanitize=fuzzer-no-link >$B.setup.log 2>&1 ||
    { cat $B.setup.log; rm -f $B.setup.log; exit 1; }
  rm -f $B.setup.log
fi
ninja -C $B $(printf "tests/fuzz/fuzz_%s " "${targets[@]}") >/dev/null ||
  { ninja -C $B $(printf "tests/fuzz/fuzz_%s " "${targets[@]}") | tail -30; exit 1; }
mkdir -p $B/logs

# UBSan findings end the run like ASan's, so libFuzzer saves the input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# Where a run ended: a broken contract, a sanitizer report, a timeout.
signature() {
  local log=$1 s
  s=$(grep -m1 -o 'fuzz contract broken at [^ ]*' "$log" | sed 's/.*at //; s/:$//; s#.*/tests/#tests/#')
  [ -n "$s" ] && { echo "contract $s"; return; }
  s=$(grep -m1 -E 'runtime error:' "$log" | sed -E 's#^.*/(core|plugins|tests)/#\1/#; s/: runtime error:.*//')
  [ -n "$s" ] && { echo "ubsan $s"; return; }
  if grep -q 'ERROR: LeakSanitizer' "$log"; then
    s=$(sed -n '/ERROR: LeakSanitizer/,$p' "$log" | grep -m1 -oE ' in [^ ]+ [^ ]*/(core|plugins|tests)/[^ ]+' |
        sed -E 's#^ in ##; s# [^ ]*/(core|plugins|tests)/# \1/#')
    echo "leak ${s:-(no frame in the tree; see $log)}"; return
  fi
  s=$(grep -m1 -E '^SUMMARY: AddressSanitizer:' "$log" | sed -E 's/^SUMMARY: AddressSanitizer: //; s#/[^ ]*/(core|plugins|tests)/#\1/#')
  [ -n "$s" ] && { echo "asan $s"; return; }
  s=$(grep -m1 -oE 'ERROR: libFuzzer: [a-z-]+' "$log" | sed 's/ERROR: libFuzzer: //')
  [ -n "$s" ] && { echo "$s"; return; }
  echo "unknown (see $log)"
}

rows=(); results=(); found=()
for t in "${targets[@]}"; do
  work=$B/corpus/$t art=$B/artifacts/$t log=$B/logs/$t.log
  if [ "${FUZZ_KEEP_CORPUS:-0}" != 1 ] || [ ! -d "$work" ]; then
    rm -rf "$work"; mkdir -p "$work"; cp tests/fuzz/corpus/$t/* "$work"/
  fi
  mkdir -p "$art"; : >"$log"
  before=$(ls "$art" | grep -cE '^(crash|timeout|oom|leak)-')
  echo "fuzzing $t for $secs s (max_len ${max_len[$t]})" >&2
  start=$(date +%s.%N); execs=0; starts=0; sigs=()
  while :; do
    left=$(awk -v s="$start" -v n="$(date +%s.%N)" -v t="$secs" 'BEGIN{print int(t-(n-s))}')
    [ "$left" -ge 1 ] && [ $starts -lt 10 ] || break
    starts=$((starts + 1))
    run=$B/logs/$t.run.log
    # -timeout kills a hanging input; the outer timeout bounds the rest.
    timeout -k 10 $((left + 60)) $B/tests/fuzz/fuzz_$t "$work" \
      -max_total_time="$left" -max_len="${max_len[$t]}" -timeout=10 \
      -rss_limit_mb=2048 -detect_leaks="${leaks[$t]}" \
      -artifact_prefix="$art/" -print_final_stats=1 \
      >"$run" 2>&1
    rc=$?
    cat "$run" >>"$log"
    n=$(grep -m1 -oE 'stat::number_of_executed_units: [0-9]+' "$run" | grep -oE '[0-9]+$')
    execs=$((execs + ${n:-0}))
    [ $rc -eq 0 ] && break
    sig=$(signature "$run")
    sigs+=("$sig")
    echo "  $t: $sig" >&2
  done
  rm -f "$B/logs/$t.run.log"
  elapsed=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN{printf "%.0f", n-s}')
  new=$(( $(ls "$art" | grep -cE '^(crash|timeout|oom|leak)-') - before ))
  distinct=0
  [ ${#sigs[@]} -gt 0 ] && distinct=$(printf '%s\n' "${sigs[@]}" | sort -u | wc -l)
  for s in "${sigs[@]}"; do found+=("$t: $s"); done
  files=$(ls "$work" | wc -l); bytes=$(du -sb "$work" | cut -f1)
  rate=$(awk -v e="$execs" -v s="$elapsed" 'BEGIN{printf "%d", (s > 0 ? e / s : e)}')
  rows+=("| $t | $execs | $rate | $new | $distinct | $files files, $bytes B | $elapsed s |")
  results+=("RESULT fuzz target=$t executions=$execs exec_per_s=$rate crashes=$new distinct=$distinct corpus_files=$files corpus_bytes=$bytes seconds=$elapsed")
done

echo
echo "| target | executions | exec/s | crashes (artifacts) | distinct | corpus after | time |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
if [ ${#found[@]} -gt 0 ]; then
  echo
  echo "Crashes (inputs in $B/artifacts/<target>/, logs in $B/logs/):"
  printf '%s\n' "${found[@]}" | sort | uniq -c | sed 's/^ */  /'
fi
printf '%s\n' "${results[@]}"
