#!/usr/bin/env bash
# Issue 13 figures: a signed Teams message activity to HTTP 2xx, side by
# side with the botbuilder 4.23 peer (../shared/peers teams_app.js), same
# request, same machine, same run: wrk -t2 -c32 -d20s through the peers'
# bench_teams_ack.sh, twice each; RSS idle, mid-load, after and peak.
#
#   bash bench/teams.sh            # botbuilder (if installed) and im
#   PEER=0 bash bench/teams.sh     # im only
#
# Both check the same RS256 token against the keys of the peers'
# teams_jwks.js (OpenID metadata on 127.0.0.1:3301). The activity says
# "@peer incident status". botbuilder only counts it; im routes `status`
# (two set-ups, below) and posts the answer as a threaded reply through
# the Bot Connector: the fake Bot Framework of tests/fakes
# (fake-botframework), so nothing leaves loopback. Replies keep to Teams'
# per-conversation limit (7 at once, then 2/s): under this flood of one
# conversation nearly all are dropped and counted (`im connector teams
# status`), as Teams itself would refuse them.
# The JWT figure (verifications per second, one core, warm key cache)
# comes from build/bench/teams_jwt.
# botbuilder needs `npm install botbuilder@4.23 express@5` in
# /tmp/peers/teams (see ../shared/peers/README.md); without it that half
# is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS=${PEERS:-$ROOT/../shared/peers}
B=$ROOT/build
[ -f "$B/build.ninja" ] || meson setup build >/dev/null
ninja -C build >/dev/null
RUNS=${RUNS:-2}
W=$(mktemp -d /tmp/im-bench-teams-XXXXXX); chmod 755 "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

if [ ! -f "$PEERS/bench_teams_ack.sh" ]; then
  echo "no peers at $PEERS (bench_teams_ack.sh): set PEERS"; exit 1
fi
echo "machine: $(nproc) cores, $(uname -sr); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"

echo "== JWT verification, one thread, warm key cache"
"$B/bench/bench-teams-jwt" | tail -3

# --- botbuilder -----------------------------------------------------------
if [ "${PEER:-1}" = 1 ] && [ -d /tmp/peers/teams/node_modules/botbuilder ]; then
  echo "== botbuilder $(node -p "require('/tmp/peers/teams/node_modules/botbuilder/package.json').version") on node $(node --version)"
  bash "$PEERS/run_peer.sh" teams "$RUNS"
elif [ "${PEER:-1}" = 1 ]; then
  echo "== botbuilder: not installed in /tmp/peers/teams (npm install botbuilder@4.23 express@5); skipped"
fi

# --- im -------------------------------------------------------------------
node "$PEERS/teams_jwks.js" > "$W/jwks.log" 2>&1 & PIDS+=($!)
"$B/tests/integration/fake-botframework" --app-id peer-app-id --rate 1000000 \
  > "$W/fake.out" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do grep -q FAKE_BF_URL "$W/fake.out" && break; sleep 0.05; done
FB=$(sed -n 's/^FAKE_BF_URL=//p' "$W/fake.out")
TENANT=$(sed -n 's/^FAKE_BF_TENANT=//p' "$W/fake.out")
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/3301) 2>/dev/null && break; sleep 0.1; done
export SERVICE_URL="$FB/teams/"

rss() { awk -v k="$2:" '$1==k {print $2" kB"}' "/proc/$1/status"; }

run_im() { # name, extra instance YAML
  local name=$1 extra=$2 P=18880 M=18881
  mkdir -p "$W/$name"
  cat > "$W/$name/00.yaml" <<YAML
server: {listen: 127.0.0.1:$P, metrics_listen: 127.0.0.1:$M}
storage: {path: $W/$name/im.db}
log: {level: warn}
plugins:
  dirs: []
  instances:
$extra
    - id: teams
      module: teams
      config:
        app_id: peer-app-id
        app_password: fb-secret-1
        tenant_id: "$TENANT"
        login_url: $FB
        service_url: $FB/teams/
        openid_metadata_url: http://127.0.0.1:3301/v1/.well-known/openidconfiguration
YAML
  "$B/im" serve --config "$W/$name" 2>"$W/$name/serve.log" & local SP=$!
  PIDS+=($SP)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.05; done
  local URL=http://127.0.0.1:$P/hooks/teams/messages
  echo "== im ($name) pid=$SP url=$URL"
  sleep 1; echo "RSS idle: $(rss $SP VmRSS)"
  for i in $(seq "$RUNS"); do
    ( sleep 10; echo "  RSS mid-load run $i: $(rss $SP VmRSS)" ) & local S=$!
    echo "run $i: $(bash "$PEERS/bench_teams_ack.sh" "$URL" | tr '\n' ' ')"
    wait "$S"
    echo "  RSS after run $i: $(rss $SP VmRSS)"
  done
  echo "RSS peak (VmHWM): $(rss $SP VmHWM)"
  echo "replies posted to the fake Bot Connector so far: $(curl -s "$FB/_stats" | sed 's/.*"messages": *\([0-9]*\).*/\1/')"
  IM_URL="http://127.0.0.1:$P" "$B/im" connector teams status | grep -E "replies_dropped|keys|activities_refused" || true
  kill "$SP"; wait "$SP" 2>/dev/null || true
}

# ack: no command component, so `status` is answered at once by the
# command router (verify, parse, learn, route, answer: what botbuilder's
# handler does, plus the routing); verb: incident-commands runs `status`
# on a worker thread against the database.
run_im ack "    - {id: echo, module: echo}"
run_im verb "    - {id: incident, module: incident-commands}"

