#!/usr/bin/env bash
# Issue 3 and 15 figures: event-stream fan-out. Starts `im serve` on a temp
# config with free loopback ports, opens SSE and/or WebSocket clients
# (bench/streams.c), declares incidents and reports per-client latency
# from the POST to the event (p50/p99/max, by kind) and the server's RSS.
# Targets: 10,000 SSE: p99 < 250 ms, RSS < 120 MB; 2,000 WebSocket: p99 <
# 100 ms. Bounded: at most 20,000 clients and 100 rounds, 30 s per phase.
# Usage: bash bench/streams.sh [SSE] [ROUNDS]          (default 1000 5)
#        bash bench/streams.sh --ws WS [ROUNDS]
#        bash bench/streams.sh --mixed SSE WS [ROUNDS]  (prints RESULT lines)
# Run it under `flock /tmp/im-bench.lock` where others benchmark too.
set -euo pipefail
cd "$(dirname "$0")/.."
SSE=1000 WS=0
case "${1:-}" in
--ws) SSE=0 WS=${2:?--ws needs a client count}; shift 2 ;;
--mixed) SSE=${2:?--mixed needs SSE and WS counts}
	 WS=${3:?--mixed needs SSE and WS counts}; shift 3 ;;
'') ;;
*) SSE=$1; shift ;;
esac
ROUNDS=${1:-5}
# BUILD: another build folder (e.g. build-me, debugoptimized).
BD=${BUILD:-build}
[ -f "$BD/build.ninja" ] || meson setup "$BD" >/dev/null
ninja -C "$BD" >/dev/null
B=$(cd "$BD" && pwd)
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
# A descriptor per client on each side: the server raises its own soft
# limit to the hard one; the clients' is raised here.
ulimit -n "$(ulimit -Hn)"
echo "RLIMIT_NOFILE: $(ulimit -n)"
"$B/im" serve --config "$W/conf" 2>"$W/serve.log" & SP=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.05; done
echo "RESULT idle rss_kb=$(awk '/VmRSS/{print $2}' /proc/$SP/status)"
rc=0
"$B/bench/bench-streams" "$P" "$SP" "$SSE" "$ROUNDS" "$WS" || rc=$?
curl -s "http://127.0.0.1:$P/api/v1/events/status"; echo
grep -E 'WARN|ERROR' "$W/serve.log" | head -5 || true
exit $rc
