#!/usr/bin/env bash
# Issue 15 figures: real verbs over signed Slack HTTP, side by side with
# Bolt's ack in the same run (../shared/peers, when installed):
#   status  `/incident status INC-n`: a real lookup (one signed request,
#           repeated; INC-n exists), on the command fast path;
#   ack     `/incident ack INC-n`: a durable write (group commit,
#           synchronous=FULL), each request a different open incident, from
#           a stream signed by bench-slack-sign (bench/signed_post.lua).
# wrk -t2 -c32 -d20s, RUNS (2) times each; RSS idle, peak. Loopback only:
# slack.so's Web API points at the fake Slack.
#   bash bench/slack_write.sh          BOLT=0 skips the peer
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS=${PEERS:-$ROOT/../shared/peers}
B=$ROOT/build
[ -f "$B/build.ninja" ] || meson setup build >/dev/null
ninja -C build >/dev/null
export SLACK_SIGNING_SECRET=${SLACK_SIGNING_SECRET:-bench-signing-secret}
RUNS=${RUNS:-2}
DUR=${DURATION:-20}
# Open incidents: enough for every ack of every run at 40,000 req/s.
N=$(( RUNS * DUR * 40000 ))
W=$(mktemp -d /tmp/im-bench-slackw-XXXXXX); chmod 755 "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr)"

# shellcheck source=bench/slack_lib.sh
. "$ROOT/bench/slack_lib.sh"
run_bolt
start_fake_slack

P=18880; M=18881; URL=http://127.0.0.1:$P/hooks/slack/commands
mkdir -p "$W/conf"
im_slack_config "$W/conf/00.yaml" "$P" "$M" "$W/var/im.db" "    - {id: incident, module: incident-commands}"
"$B/bench/bench-populate" "$W/var/im.db" "$N" open >/dev/null
echo "populated $N open incidents"
"$B/im" serve --config "$W/conf" 2>"$W/serve.log" & SP=$!; PIDS+=($SP)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.05; done
sleep 1; echo "== im pid=$SP; RSS idle: $(rss $SP VmRSS)"

# status INC-n: one signed request repeated (the peers' way).
"$B/bench/bench-slack-sign" --secret "$SLACK_SIGNING_SECRET" --verb status \
  --count 2 --first $(( N / 2 )) --span 1 --out "$W/status" --split 2
for i in $(seq "$RUNS"); do
  wrk -t2 -c32 -d"${DUR}s" -s "$ROOT/bench/signed_post.lua" "$URL" -- "$W/status" slack repeat | grep '^RESULT' | sed "s/^/status run $i: /"
done
echo "  RSS after status: $(rss $SP VmRSS)"

# ack INC-n: a distinct open incident per request.
PER=$(( DUR * 40000 ))
for i in $(seq "$RUNS"); do
  "$B/bench/bench-slack-sign" --secret "$SLACK_SIGNING_SECRET" --verb ack \
    --count "$PER" --first $(( 1 + (i - 1) * PER )) --span "$PER" \
    --out "$W/ack$i" --split 2
  wrk -t2 -c32 -d"${DUR}s" -s "$ROOT/bench/signed_post.lua" "$URL" -- "$W/ack$i" slack | sed "s/^/ack run $i: /"
  rm -f "$W/ack$i".*
done
echo "  acknowledged: $(sqlite3 "$W/var/im.db" "SELECT count(*) FROM incidents WHERE status='acknowledged'" 2>/dev/null || echo '?')"
echo "  events written by acks: $(sqlite3 "$W/var/im.db" "SELECT count(*) FROM events WHERE type='im.incident.acknowledge'" 2>/dev/null || echo '?')"
echo "RSS peak (VmHWM): $(rss $SP VmHWM)"
grep -c . "$W/serve.log" | sed 's/^/server log lines: /'
# What the server logged, most frequent first (timestamps cut).
sed -E 's/^[^ ]+ +//' "$W/serve.log" | cut -c1-160 | sort | uniq -c | sort -rn | head -5
