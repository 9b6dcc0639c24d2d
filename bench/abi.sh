#!/usr/bin/env bash
# Issue 12 figures: idle RSS and /health req/s of this build against an
# older one, alternating runs on the same machine; lines of plugins/slack
# and include cycles between core folders.
# Usage: [ROUNDS=5] bash bench/abi.sh OLD_COMMIT   (builds it in a temporary
# worktree; prints each round and the medians)
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/abi.sh OLD_COMMIT}
bash scripts/deps.sh bench
W=$(mktemp -d /tmp/im-bench-abi-XXXXXX); chmod 755 "$W"
cleanup() {
  set +e # errexit would stop the clean-up at the first failing step
  kill $(jobs -p) 2>/dev/null
  git worktree remove --force "$W/old" 2>/dev/null
  rm -rf "$W"
  git worktree prune
}
trap cleanup EXIT
git worktree add -q --detach "$W/old" "$old"
for d in "$PWD" "$W/old"; do
  [ -f "$d/build-bench/build.ninja" ] ||
    meson setup "$d/build-bench" "$d" -Dbuildtype=debugoptimized -Dtests=false >/dev/null
  ninja -C "$d/build-bench" >/dev/null
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
P=18580; M=18590
run() { # $1 = label, $2 = source tree
  local src=$2 var; var=$(mktemp -d "$W/var-XXXX")
  (cd "$src" && IM_LISTEN=127.0.0.1:$P IM_METRICS_LISTEN=127.0.0.1:$M \
     IM_DATA_DIR=$var IM_NET_MODULE=$src/build-bench/imnet.so \
     exec "$src/build-bench/im" serve --config conf.d 2>"$var/log") & local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.05; done
  sleep 1
  local rss; rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
  local rps; rps=$(wrk -t2 -c32 -d6s "http://127.0.0.1:$P/health" | awk '/Requests\/sec/{print $2}')
  kill $pid; wait $pid 2>/dev/null || true
  echo "RESULT $1 idle_rss_kb=$rss health_req_per_s=$rps"
}
rounds=${ROUNDS:-5}
for round in $(seq "$rounds"); do
  run "old($old)" "$W/old"
  run "new($(git rev-parse --short HEAD))" "$PWD"
done | tee "$W/runs"
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for who in old new; do
  rss=$(grep "RESULT $who(" "$W/runs" | sed 's/.*idle_rss_kb=\([0-9]*\).*/\1/' | med)
  rps=$(grep "RESULT $who(" "$W/runs" | sed 's/.*health_req_per_s=\([0-9.]*\).*/\1/' | med)
  echo "RESULT median_of_$rounds $who idle_rss_kb=$rss health_req_per_s=$rps"
done
oldl=$(git ls-tree -r --name-only "$old" -- plugins/slack | grep '\.[ch]$' |
  while read -r f; do git show "$old:$f"; done | wc -l)
newl=$(git ls-files plugins/slack | grep '\.[ch]$' | xargs cat | wc -l)
echo "RESULT plugins_slack_c_h_lines old=$oldl new=$newl removed=$((oldl - newl))"
sh tests/layering.sh "$PWD" 2>&1 | sed 's/^/RESULT layering: /'
