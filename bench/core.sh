#!/usr/bin/env bash
# Issue 2 figures: start-up, idle RSS, reload time, /health throughput, and
# failed requests while reloading under load. Loopback only; every loop is
# bounded. Usage: bash bench/core.sh   (prints RESULT lines)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh bench
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
B=$PWD/build
W=$(mktemp -d /tmp/im-bench-XXXXXX); chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
P=18480; M=18490
export IM_URL=http://127.0.0.1:$P

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"

# 1. Start-up and idle RSS on the default conf.d.
IM_LISTEN=127.0.0.1:$P IM_METRICS_LISTEN=127.0.0.1:$M IM_DATA_DIR=$W/var \
  "$B/bench/bench-startup" "$B/im" conf.d $P 20

# 2. Reload with 4 plugin instances of 4 modules.
mkdir -p "$W/conf"
cat > "$W/conf/00.yaml" <<YAML
server: {listen: 127.0.0.1:$P, metrics_listen: 127.0.0.1:$M}
storage: {path: $W/var/im.db}
log: {level: warn}
plugins:
  dirs: ["$B/tests/loader"]
  instances:
    - {id: echo, module: echo, config: {prefix: "v0 "}}
    - {id: good, module: good, config: {greeting: hi}}
    - {id: plain, module: plain}
    - {id: unconf, module: unconf}
YAML
"$B/im" serve --config "$W/conf" 2>"$W/serve.log" & SP=$!
for _ in $(seq 100); do curl -sf "$IM_URL/health" >/dev/null && break; sleep 0.05; done
srv=(); wall=()
for i in $(seq 20); do
  # Change one instance so every reload really builds and swaps.
  sed -i "s/prefix: \"v[0-9]* \"/prefix: \"v$i \"/" "$W/conf/00.yaml"
  t0=$(date +%s%N)
  out=$("$B/im" plugins reload --json --config "$W/conf")
  t1=$(date +%s%N)
  srv+=("$(echo "$out" | grep -o '"elapsed_ms": [0-9.]*' | grep -o '[0-9.]*$' | xargs printf "%.3f")")
  wall+=("$(( (t1 - t0) / 1000 ))")
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
mx() { printf '%s\n' "$@" | sort -n | tail -1; }
echo "RESULT reload_4_plugins server_ms_median=$(med "${srv[@]}") server_ms_max=$(mx "${srv[@]}") cli_wall_us_median=$(med "${wall[@]}") cli_wall_us_max=$(mx "${wall[@]}")"

# 3. /health under wrk -t2 -c32 -d10s.
wrk -t2 -c32 -d10s --latency "$IM_URL/health" > "$W/wrk-health.txt"
rps=$(awk '/Requests\/sec/{print $2}' "$W/wrk-health.txt")
p50=$(awk '$1=="50%"{print $2}' "$W/wrk-health.txt")
p99=$(awk '$1=="99%"{print $2}' "$W/wrk-health.txt")
echo "RESULT health req_per_s=$rps p50=$p50 p99=$p99 rss_kb_after=$(awk '/VmRSS/{print $2}' /proc/$SP/status)"

# 4. Failed requests while reloading 20 times under load (plugin route, the
#    instance serving it is replaced by every reload).
wrk -t2 -c32 -d10s --latency -s bench/post.lua "$IM_URL/hooks/echo/echo" > "$W/wrk-reload.txt" & WP=$!
sleep 0.5
fails=0
for i in $(seq 21 40); do
  sed -i "s/prefix: \"v[0-9]* \"/prefix: \"v$i \"/" "$W/conf/00.yaml"
  "$B/im" plugins reload --config "$W/conf" >/dev/null || fails=$((fails + 1))
  sleep 0.4
done
wait $WP
non2xx=$(awk '/Non-2xx/{print $NF}' "$W/wrk-reload.txt"); non2xx=${non2xx:-0}
sockerr=$(awk '/Socket errors/{print}' "$W/wrk-reload.txt"); sockerr=${sockerr:-none}
echo "RESULT reload_under_load reloads=20 failed_reloads=$fails req_per_s=$(awk '/Requests\/sec/{print $2}' "$W/wrk-reload.txt") non_2xx=$non2xx socket_errors=\"$sockerr\" p99=$(awk '$1=="99%"{print $2}' "$W/wrk-reload.txt")"
grep -q "v40 " <(curl -s -XPOST -d x "$IM_URL/hooks/echo/echo") && echo "RESULT last_reload_live=yes" || echo "RESULT last_reload_live=no"
kill $SP; wait $SP 2>/dev/null || true
