#!/usr/bin/env bash
# Issue 3 figures: SSE fan-out. Starts `im serve` on a temp config with free
# loopback ports, opens 1,000 SSE clients (bench/sse.c), declares
# incidents and reports per-client latency from the POST to the event
# (p50/p99/max) and the server's RSS. Targets: p99 < 100 ms, RSS < 40 MB.
# Bounded: 1,000 clients x 5 rounds, 30 s per phase at most.
# Usage: bash bench/streams.sh [CLIENTS] [ROUNDS]   (prints RESULT lines)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-1000}
ROUNDS=${2:-5}
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
B=$PWD/build
W=$(mktemp -d /tmp/im-bench-streams-XXXXXX); chmod 755 "$W"
SP=
cleanup() { [ -n "$SP" ] && kill "$SP" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(free_port); M=$(free_port)
mkdir -p "$W/conf"
cat > "$W/conf/00.yaml" <<YAML
server: {listen: 127.0.0.1:$P, metrics_listen: 127.0.0.1:$M}
storage: {path: $W/var/im.db}
log: {level: warn}
plugins: {dirs: []}
YAML

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
# The clients need a descriptor each; the server raises its own limit.
ulimit -n "$(( CLIENTS + 256 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$B/im" serve --config "$W/conf" 2>"$W/serve.log" & SP=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.05; done
echo "RESULT idle rss_kb=$(awk '/VmRSS/{print $2}' /proc/$SP/status)"
"$B/bench/bench-sse" "$P" "$SP" "$CLIENTS" "$ROUNDS"
curl -s "http://127.0.0.1:$P/api/v1/events/status"; echo
