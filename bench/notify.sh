#!/usr/bin/env bash
# Issue 6 figures: the notification pipeline against the fake platform of
# tests/fakes (1 message/s per channel, burst 3, answers in 20 ms, 429 with
# Retry-After beyond that). Loopback only; every wait is bounded.
#   A. 2,000 notifications to 200 channels: delivered, duplicates, total
#      time against the minimum the limit allows, share of 429 answers.
#   B. critical-notification latency while 10,000 others are queued.
#   C. peak RSS while 100,000 queued rows drain.
#   D. kill -9 at a random moment, restart: delivered, duplicates against
#      the rows in flight at the kill.
# PHASES=AD runs only those; BUILD=build-me uses another build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}; PHASES=${PHASES:-ABCD}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" >/dev/null
B=$PWD/$BUILD
W=$(mktemp -d /tmp/im-bench-notify-XXXXXX); chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
P=18680; M=18690
URL=http://127.0.0.1:$P

. bench/fake_lib.sh
fake_start --rate 1 --burst 3 --latency-ms 20

# config DIR EXTRA_CHATOPS: 200 backlog channels (service svcN -> chN) and
# 20 critical channels (service critN -> critN).
config() {
  config_head
  {
    echo "chatops: {$1}"
    echo "subscriptions:"
    for i in $(seq 0 199); do
      echo "  - {connector: tc, channel: ch$i, services: [svc$i], mode: post}"
    done
    for i in $(seq 0 19); do
      echo "  - {connector: tc, channel: crit$i, services: [crit$i], mode: post}"
    done
  } >> "$W/conf/00.yaml"
}
fill() { "$B/bench/bench-notify-fill" "$W/conf" "$1" "$2" svc 200; }

# --- A. 2,000 to 200 channels (critical: each its own message) ------------
# The platform alone allows 3 at once then 1/s per channel: the 10th
# message of every channel at 7.0 s. With 20 ms answers, W delivery threads
# move at most W/0.02 messages/s, so the last 200 need 200*0.02/W s more.
phase_a() {
  config "batch_window: 5s, delivery_workers: $1"
  fill 2000 SEV-1 >/dev/null
  reset
  start
  wait_for 2000 60 || echo "A: not all delivered"
  sleep 1
  S=$(curl -s "$FAKE/_stats")
  stop
  echo "$S" | jq -r --arg w "$1" '"RESULT A workers=\($w) delivered=\(.accepted)/2000 duplicates=\(.duplicates) requests=\(.requests) answered_429=\(.rate_limited) (\(100*.rate_limited/.requests|.*100|round/100)%) first_to_last_s=\(.last_t-.first_t|.*1000|round/1000) minimum_s=7.0 over_minimum=\((.last_t-.first_t)/7*100-100|.*10|round/10)%"'
}
if [[ $PHASES == *A* ]]; then
phase_a 8
phase_a 32
fi

# --- B. critical latency with 10,000 others queued ---------------------------
if [[ $PHASES == *B* ]]; then
# digest_max 1: every backlog row is its own message, so the 10,000 drain
# at 200 channels x 1/s for ~50 s and really are queued while we measure.
config "digest_max: 1"
fill 10000 SEV-3 >/dev/null
reset
start
sleep 2
"$B/bench/bench-notify-crit" "$URL" "$FAKE" 200 100 20 | sed 's/^/RESULT B /'
echo "RESULT B backlog_sent_meanwhile=$(($(stat accepted) - 200)) still_queued=$(curl -s "http://127.0.0.1:$M/metrics" | awk '/^im_notify_queue_depth/{print $2}')"
stop
fi

# --- C. RSS with 100,000 queued rows ------------------------------------------
if [[ $PHASES == *C* ]]; then
config "batch_window: 5s"
fill 100000 SEV-3 | sed 's/^/RESULT C fill /'
reset
start
peak=0; idle=$(rss_kb "$SP")
for _ in $(seq 300); do
  r=$(rss_kb "$SP"); [ "$r" -gt "$peak" ] && peak=$r
  [ "$(stat accepted)" -ge 2000 ] && [ "$(curl -s "$URL/api/v1/admin/outbox?limit=1" | jq '.counts.pending|add // 0')" -eq 0 ] && break
  sleep 0.2
done
echo "RESULT C rss_at_start_mb=$((idle / 1024)) peak_rss_mb=$((peak / 1024)) pending_left=$(curl -s "$URL/api/v1/admin/outbox?limit=1" | jq '.counts.pending|add // 0') messages=$(stat accepted) rate_limited=$(stat rate_limited)"
stop
fi

# --- D. kill -9 at a random moment ---------------------------------------------
if [[ $PHASES == *D* ]]; then
config "batch_window: 5s"
fill 2000 SEV-1 >/dev/null
reset
start
delay=$(awk -v r=$RANDOM 'BEGIN{printf "%.2f", 0.5 + 5 * r / 32768}')
sleep "$delay"
kill -9 "$SP"; wait "$SP" 2>/dev/null || true
before=$(stat accepted)
# Rows still in the outbox whose message the platform already took: the
# ones in flight at the kill (sent, not yet recorded).
curl -s "$FAKE/_messages" | jq -r '.[].dedup' | sed 's/^im-//' | sort -u > "$W/sent.ids"
sqlite3 "$W/var/im.db" "SELECT id FROM outbox WHERE state = 0" | sort -u > "$W/left.ids"
inflight=$(comm -12 "$W/sent.ids" "$W/left.ids" | wc -l)
start
wait_for $((2000 + inflight)) 60 || true
sleep 1
uniq=$(curl -s "$FAKE/_messages" | jq -r '.[].dedup' | sort -u | wc -l)
echo "RESULT D killed_after_s=$delay sent_before_kill=$before in_flight_at_kill=$inflight delivered_unique=$uniq/2000 duplicates=$(stat duplicates)"
stop
fi
kill "$FP"
