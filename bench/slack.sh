#!/usr/bin/env bash
# Issue 7 figures: a signed Slack slash command to HTTP 200, side by side
# with the Slack Bolt for JavaScript peer (../shared/peers), same request,
# same machine, same run: wrk -t2 -c32 -d20s through the peers'
# bench_slack_ack.sh, twice each; RSS idle, mid-load, after and peak.
#
#   bash bench/slack.sh            # Bolt (if installed) and im
#   BOLT=0 bash bench/slack.sh     # im only
#
# im runs slack.so (HTTP mode) with its Web API pointed at the fake Slack
# (build/tests/integration/fake-slack), so nothing leaves loopback. Two im
# set-ups: "ack" with only echo loaded, where the peers' `/incident status`
# is answered at once by the command router (the same work Bolt's ack()
# does: verify, parse, answer); and "verb" with incident-commands loaded,
# where `status` runs as a real command on a worker thread.
# Bolt needs `npm install @slack/bolt@5` in /tmp/peers/bolt (see
# ../shared/peers/README.md); without it the Bolt half is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS=${PEERS:-$ROOT/../shared/peers}
B=$ROOT/build
[ -f "$B/build.ninja" ] || meson setup build >/dev/null
ninja -C build >/dev/null
export SLACK_SIGNING_SECRET=${SLACK_SIGNING_SECRET:-bench-signing-secret}
RUNS=${RUNS:-2}
W=$(mktemp -d /tmp/im-bench-slack-XXXXXX); chmod 755 "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

echo "machine: $(nproc) cores, $(uname -sr); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"

# shellcheck source=bench/slack_lib.sh
. "$ROOT/bench/slack_lib.sh"
run_bolt
start_fake_slack

run_im() { # name, extra instance YAML
  local name=$1 extra=$2 P=18870 M=18871
  mkdir -p "$W/$name"
  im_slack_config "$W/$name/00.yaml" "$P" "$M" "$W/$name/im.db" "$extra"
  "$B/im" serve --config "$W/$name" 2>"$W/$name/serve.log" & local SP=$!
  PIDS+=($SP)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.05; done
  echo "== im ($name) pid=$SP url=http://127.0.0.1:$P/hooks/slack/commands"
  sleep 1; echo "RSS idle: $(rss $SP VmRSS)"
  for i in $(seq "$RUNS"); do
    ( sleep 10; echo "  RSS mid-load run $i: $(rss $SP VmRSS)" ) & local S=$!
    echo "run $i: $(bash "$PEERS/bench_slack_ack.sh" "http://127.0.0.1:$P/hooks/slack/commands" | tr '\n' ' ')"
    wait "$S"
    echo "  RSS after run $i: $(rss $SP VmRSS)"
  done
  echo "RSS peak (VmHWM): $(rss $SP VmHWM)"
  kill "$SP"; wait "$SP" 2>/dev/null || true
}

run_im ack "    - {id: echo, module: echo}"
run_im verb "    - {id: incident, module: incident-commands}"
