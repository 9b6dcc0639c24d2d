#!/usr/bin/env bash
# Issue 14 figure: 2,000 notifications to 200 Discord channels through
# discord.so, against the fake Discord of tests/fakes (fake-discord) with
# Discord's limits: 5 messages per 5 s per channel route and 50 requests a
# second per bot. Delivered, duplicates, requests answered 429 (target 0),
# and the time from the first to the last message against the minimum the
# limits allow (2,000 / 50 per second = 40 s; the per-channel buckets
# alone would allow 5 s). Loopback only; every wait is bounded.
#   bash bench/discord_notify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
B=$PWD/build
W=$(mktemp -d /tmp/im-bench-dnotify-XXXXXX); chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
P=18780; M=18790
URL=http://127.0.0.1:$P
N=${N:-2000}; CHANNELS=${CHANNELS:-200}

"$B/tests/integration/fake-discord" --port 0 --channels "$CHANNELS" \
  --route-limit 5 --route-window-ms 5000 --global-per-s 50 > "$W/fake.out" 2>&1 &
for _ in $(seq 100); do grep -q FAKE_DISCORD "$W/fake.out" && break; sleep 0.05; done
API=$(sed -n 's/.*url=\([^ ]*\).*/\1/p' "$W/fake.out")
PK=$(sed -n 's/.*public_key=\([^ ]*\).*/\1/p' "$W/fake.out")
TOKEN=$(sed -n 's/.*token=\([^ ]*\).*/\1/p' "$W/fake.out")
FAKE=${API%/api/v10}
[ -n "$API" ] || { echo "fake-discord did not start"; cat "$W/fake.out"; exit 1; }

mkdir -p "$W/conf"
{
  echo "server: {listen: 127.0.0.1:$P, metrics_listen: 127.0.0.1:$M}"
  echo "storage: {path: $W/var/im.db}"
  echo "log: {level: warn}"
  echo "chatops: {batch_window: 5s}"
  echo "plugins:"
  echo "  dirs: []"
  echo "  instances:"
  echo "    - {id: mustache, module: mustache}"
  echo "    - id: discord"
  echo "      module: discord"
  echo "      config: {application_id: \"1100000000000000001\", public_key: $PK,"
  echo "               bot_token: \"$TOKEN\", api_base_url: \"$API\", gateway: false}"
  echo "subscriptions:"
  for i in $(seq 0 $((CHANNELS - 1))); do
    echo "  - {connector: discord, channel: \"$((1300000000000001000 + i))\", services: [svc$i], mode: post}"
  done
} > "$W/conf/00.yaml"

# The outbox filled exactly as `im serve` would (SEV-1: each its own
# message), then the server started to drain it.
"$B/bench/bench-notify-fill" "$W/conf" "$N" SEV-1 svc "$CHANNELS" >/dev/null
"$B/im" serve --config "$W/conf" 2>>"$W/serve.log" & SP=$!
for _ in $(seq 200); do curl -sf "$URL/health" >/dev/null && break; sleep 0.05; done
for _ in $(seq 1200); do
  [ "$(curl -s "$FAKE/_stats" | jq .posted)" -ge "$N" ] && break
  sleep 0.1
done
sleep 1
S=$(curl -s "$FAKE/_stats")
curl -s "$FAKE/_requests" | jq -c '[.[] | select(.status == 429) | {t, path, code}] | .[:5]' | sed 's/^/429 answers (first 5): /'
kill "$SP"; wait "$SP" 2>/dev/null || true
echo "machine: $(nproc) cores, $(uname -sr)"
echo "$S" | jq -r --arg n "$N" '"RESULT discord_notify delivered=\(.posted)/\($n) duplicates=\(.duplicates) requests=\(.requests) answered_429=\(.rate_limited) (global \(.rate_limited_global)) invalid=\(.invalid) first_to_last_s=\(.last_t-.first_t|.*1000|round/1000) minimum_s=\(($n|tonumber)/50) over_minimum=\((.last_t-.first_t)/(($n|tonumber)/50)*100-100|.*10|round/10)%"'
grep -c "dead letter" "$W/serve.log" | sed 's/^/dead letters logged: /' || true
