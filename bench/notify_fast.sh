#!/usr/bin/env bash
# Issue 15, unthrottled delivery: 2,000 notifications to the fake platform
# with no rate limit and 5 ms answers (fake-platform --unlimited
# --delay-ms 5), SEV-1 (critical: one message each, no batch window).
#   a. 10 declares over REST, each fanning out to 200 channels.
#   b. 2,000 declares over REST (32 at a time), each to one of 200 channels.
#   am. Prometheus Alertmanager (the Debian package) posting 2,000 alerts,
#      one group each, to a webhook on the same fake (10 POSTs of 200).
# Figures: first commit (events.time) to the fake's last receipt; the same
# from the moment the client started (like for like with Alertmanager);
# server CPU seconds (utime+stime over the run) and peak RSS (VmHWM).
# Loopback only; every wait is bounded. RUNS=2 repeats everything;
# ONLY="a am" runs only those; BUILD=build-me uses another build folder; WORKERS sets delivery_workers;
# PERF=/tmp/x writes a perf profile of the server per scenario to /tmp/x.a.txt.
# Others benchmark on this machine: run it under flock /tmp/im-bench.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh bench-notify
BUILD=${BUILD:-build}; RUNS=${RUNS:-2}; WORKERS=${WORKERS:-32}; ONLY=${ONLY:-a b am}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" >/dev/null
B=$PWD/$BUILD
W=$(mktemp -d /tmp/im-bench-fast-XXXXXX); chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
P=18780; M=18790; AMP=18793
URL=http://127.0.0.1:$P
AM=$(command -v prometheus-alertmanager || command -v alertmanager || true)

. bench/fake_lib.sh
fake_start --unlimited --delay-ms 5
TCK=$(getconf CLK_TCK)
cpu_s() { awk -v t="$TCK" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
hwm_mb() { awk '/VmHWM/{printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
now() { date +%s.%N; }
# context switches of all the process's threads so far
ctxsw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/{n += $2} END {print n}'; }

# 200 channels: service "fan" goes to all of them, svcN to chN alone.
config() {
  config_head
  {
    # The fake has no limit here, so neither has im (per_channel 0).
    echo "chatops: {delivery_workers: $WORKERS, rate_limits: {tc: {per_channel: 0}}}"
    echo "subscriptions:"
    for i in $(seq 0 199); do
      echo "  - {connector: tc, channel: ch$i, services: [fan, svc$i], mode: post}"
    done
  } >> "$W/conf/00.yaml"
}

# declares N SERVICE_OF_I: a curl config of N declares (service from the
# shell function SERVICE_OF_I applied to i).
declares() {
  for i in $(seq 1 "$1"); do
    printf 'url = "%s/api/v1/incidents"\nheader = "Content-Type: application/json"\n' "$URL"
    printf 'data = "{\\"title\\":\\"fast %d\\",\\"severity\\":\\"SEV-1\\",\\"service\\":\\"%s\\"}"\n' "$i" "$("$2" "$i")"
    printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nnext\n'
  done
}
svc_fan() { echo fan; }
svc_one() { echo "svc$(($1 % 200))"; }

# scenario NAME N SERVICE_FN: N declares, 2,000 notifications expected.
scenario() {
  config; reset; start
  declares "$2" "$3" | sed '$d' > "$W/req.curl" # no "next" after the last
  [ -z "${PERF:-}" ] || { perf record -q -F 1000 --call-graph ${PERF_CG:-fp} -p "$SP" -o "$W/perf.data" 2>/dev/null & PR=$!; sleep 0.5; }
  c0=$(cpu_s "$SP"); x0=$(ctxsw "$SP"); t0=$(now)
  codes=$(curl -s --no-progress-meter --parallel --parallel-max 32 -K "$W/req.curl" | sort | uniq -c | tr -s ' \n' ' ')
  ok=ok; wait_for 2000 30 || ok="NOT ALL DELIVERED"
  [ -z "${PERF:-}" ] || { kill -INT "$PR"; wait "$PR" || true
    perf report -i "$W/perf.data" ${PERF_REPORT:---no-children -g none --sort dso,sym} --percent-limit 0.5 --stdio 2>/dev/null > "$PERF.$1.txt"; }
  c1=$(cpu_s "$SP"); rss=$(hwm_mb "$SP"); x1=$(ctxsw "$SP")
  sleep 0.5
  S=$(curl -s "$FAKE/_stats")
  first=$(sqlite3 "$W/var/im.db" "SELECT min(time) FROM events")
  span=$(sqlite3 "$W/var/im.db" "SELECT (max(time) - min(time)) / 1000.0 FROM events")
  stop
  echo "$S" | jq -r --arg n "$1" --arg first "$first" --arg t0 "$t0" \
    --arg cpu "$(echo "$c1 - $c0" | bc)" --arg rss "$rss" --arg ok "$ok" --arg codes "$codes" --arg cs "$((x1 - x0))" --arg span "$span" \
    '"RESULT \($n) delivered=\(.accepted)/2000 duplicates=\(.duplicates) errors=\(.errors) first_commit_to_last_s=\(.last_t - ($first|tonumber)/1000|.*1000|round/1000) client_start_to_last_s=\(.last_t - ($t0|tonumber)|.*1000|round/1000) first_to_last_commit_s=\($span) server_cpu_s=\($cpu) peak_rss_mb=\($rss) context_switches=\($cs) http=[\($codes)] \($ok)"'
}

am_run() {
  if [ -z "$AM" ]; then echo "RESULT am skipped: no alertmanager (apt-get install prometheus-alertmanager)"; return; fi
  rm -rf "$W/am"; mkdir -p "$W/am"
  cat > "$W/am/am.yml" <<YAML
route:
  receiver: fake
  group_by: [n]
  group_wait: 0s
  group_interval: 1h
  repeat_interval: 24h
receivers:
  - name: fake
    webhook_configs:
      - url: $FAKE/channels/am/messages
        send_resolved: false
YAML
  "$AM" --config.file="$W/am/am.yml" --storage.path="$W/am/data" \
    --web.listen-address=127.0.0.1:$AMP --cluster.listen-address= \
    --log.level=warn 2>>"$W/am.log" & AP=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$AMP/-/ready" >/dev/null && break; sleep 0.1; done
  reset
  : > "$W/am.curl"
  for k in $(seq 0 9); do
    seq $((k * 200)) $((k * 200 + 199)) | jq -cs 'map({labels: {alertname: "bench", n: tostring}, annotations: {summary: "fast \(.)"}})' > "$W/am/alerts$k.json"
    printf 'url = "http://127.0.0.1:%s/api/v2/alerts"\nheader = "Content-Type: application/json"\ndata = "@%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nnext\n' "$AMP" "$W/am/alerts$k.json" >> "$W/am.curl"
  done
  sed -i '$d' "$W/am.curl"
  c0=$(cpu_s "$AP"); t0=$(now)
  codes=$(curl -s --no-progress-meter --parallel -K "$W/am.curl" | sort | uniq -c | tr -s ' \n' ' ')
  ok=ok; wait_for 2000 30 || ok="NOT ALL DELIVERED"
  c1=$(cpu_s "$AP"); rss=$(hwm_mb "$AP")
  sleep 0.5
  S=$(curl -s "$FAKE/_stats")
  kill "$AP"; wait "$AP" 2>/dev/null || true
  echo "$S" | jq -r --arg t0 "$t0" --arg cpu "$(echo "$c1 - $c0" | bc)" --arg rss "$rss" --arg ok "$ok" --arg codes "$codes" \
    '"RESULT am delivered=\(.accepted)/2000 client_start_to_last_s=\(.last_t - ($t0|tonumber)|.*1000|round/1000) server_cpu_s=\($cpu) peak_rss_mb=\($rss) http=[\($codes)] \($ok)"'
}

for r in $(seq 1 "$RUNS"); do
  echo "run $r"
  [[ $ONLY != *a* ]] || scenario a 10 svc_fan
  [[ $ONLY != *b* ]] || scenario b 2000 svc_one
  [[ $ONLY != *am* ]] || am_run
done
kill "$FP"
