#!/usr/bin/env bash
# Issue 3 figures: declare over REST under wrk, and a filtered list over
# 100,000 stored incidents. Loopback only, bounded runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh bench
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
B=$PWD/build
W=$(mktemp -d /tmp/im-bench-XXXXXX); chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
P=18580; M=18590
URL=http://127.0.0.1:$P
mkdir -p "$W/conf"
cat > "$W/conf/00.yaml" <<YAML
server: {listen: 127.0.0.1:$P, metrics_listen: 127.0.0.1:$M}
storage: {path: $W/var/im.db}
log: {level: warn}
YAML
start() {
  "$B/im" serve --config "$W/conf" 2>>"$W/serve.log" & SP=$!
  for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && break; sleep 0.05; done
}
stop() { kill $SP; wait $SP 2>/dev/null || true; }
summary() { # file label
  echo "RESULT $2 req_per_s=$(awk '/Requests\/sec/{print $2}' "$1") p50=$(awk '$1=="50%"{print $2}' "$1") p99=$(awk '$1=="99%"{print $2}' "$1") non_2xx=$(awk '/Non-2xx/{print $NF}' "$1" | grep . || echo 0)"
}

# 1. Declare under wrk -t2 -c32 -d10s.
start
wrk -t2 -c32 -d10s --latency -s bench/declare.lua "$URL/api/v1/incidents" > "$W/declare.txt"
summary "$W/declare.txt" declare
echo "RESULT declare_stored=$(curl -s "$URL/api/v1/incidents?limit=1" | grep -o '"number":[0-9]*' | head -1 | cut -d: -f2)"
stop

# 2. Filtered list over 100,000 incidents.
rm -rf "$W/var"
"$B/bench/bench-populate" "$W/var/im.db" 100000 >/dev/null
start
for q in "status=open&severity=SEV-1" "service=svc-7" "status=resolved,closed&limit=100"; do
  wrk -t2 -c32 -d5s --latency "$URL/api/v1/incidents?$q" > "$W/list.txt"
  summary "$W/list.txt" "list[$q]"
done
curl -s "$URL/api/v1/incidents?status=open&severity=SEV-1" | head -c 300; echo
stop
