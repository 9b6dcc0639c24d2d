#!/usr/bin/env bash
# Issue 4 figures: in-process time to first answer; 1,000 slow commands
# (handler sleeps 10 s) all acknowledged within 3 s and all results
# delivered through the follow-up path. Loopback only, bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh bench
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
B=$PWD/build
W=$(mktemp -d /tmp/im-bench-XXXXXX); chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
IM_BENCH_BUILDDIR=$B "$B/bench/bench-commands" inproc 20000
P=18780; M=18790
mkdir -p "$W/conf"
cat > "$W/conf/00.yaml" <<YAML
server: {listen: 127.0.0.1:$P, metrics_listen: 127.0.0.1:$M}
storage: {path: $W/var/im.db}
log: {level: warn}
plugins:
  dirs: ["$B/tests/loader"]
  instances:
    - {id: tc, module: testconn}
YAML
ulimit -n 65536 2>/dev/null || true
"$B/im" serve --config "$W/conf" 2>"$W/serve.log" & SP=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.05; done
"$B/bench/bench-commands" http "http://127.0.0.1:$P" 1000 10000
echo "RESULT server_rss_kb=$(awk '/VmRSS/{print $2}' /proc/$SP/status) threads=$(awk '/Threads/{print $2}' /proc/$SP/status)"
kill $SP; wait $SP 2>/dev/null || true
