#!/usr/bin/env bash
# Discord figures: a signed Discord interaction (APPLICATION_COMMAND
# "incident") to HTTP 200, side by side with the discord-interactions 4.4 +
# express 5 peer (../shared/peers discord_app.js: stock verifyKeyMiddleware),
# same machine, same run: wrk -t2 -c32 -d20s, twice each; RSS idle,
# mid-load, after and peak.
#
#   bash bench/discord.sh            # the peer (if installed), then im
#   PEER=0 bash bench/discord.sh     # im only
#   IM=0 bash bench/discord.sh       # the peer only
#
# im refuses a replayed interaction id (401), so the peers' own
# bench_discord_ack.sh (one request, id "1", sent over and over) cannot
# measure it. Here every request is distinct: build/bench/bench-discord-sign
# signs, right before each run, a fresh stream of the peers' body with a
# distinct snowflake id and token per line (Ed25519 with the peers' key,
# ../shared/peers/keys), one file per wrk thread, and bench/signed_post.lua
# sends it. The peer and im get the same kind of stream; the peer is also
# measured on its stock script (bash run_peer.sh discord RUNS), for
# reference. Ids never repeat (each stream starts at a snowflake of the
# moment it is signed), and each im set-up is a fresh process.
#
# im runs discord.so with instance "discord" (POST /hooks/discord/interactions),
# its REST API pointed at the fake Discord (build/tests/integration/
# fake-discord) when that is built, else at a closed port on loopback. Two
# set-ups, as for Slack and Teams: "ack" (echo beside discord, no command
# component: the interaction is answered at once by the command router)
# and "verb" (incident-commands runs the command on a worker thread).
#
# One wrk thread (THREADS=1) by default: it sends the stream in id order,
# as Discord assigns ids. Two threads drift apart by their share of the
# load; once the lagging one is more than 65,536 ids behind, im's replay
# set (which forgets its oldest ids only by refusing everything below
# them) answers its requests 401. The peer gets the same single thread.
# Env: RUNS (2), THREADS (1), CONNS (32), DURATION (20s); RATE_EST (60000)
# and PEER_RATE_EST (10000): the req/s assumed when sizing a run's stream
# (RATE_EST x seconds lines in all); a thread that runs out of lines stops
# early and the run is flagged "exhausted" (raise the estimate).
# PEER_PORT (3210) for the distinct-id peer, IM_PORT (18890, +1 metrics).
# Exit status: 0 if every part ran with non2xx=0 and no thread exhausted.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS=${PEERS:-$ROOT/../shared/peers}
B=$ROOT/build
[ -f "$B/build.ninja" ] || meson setup build >/dev/null
ninja -C build >/dev/null
RUNS=${RUNS:-2}
THREADS=${THREADS:-1}
export THREADS
CONNS=${CONNS:-32}
DURATION=${DURATION:-20s}
RATE_EST=${RATE_EST:-60000}
PEER_RATE_EST=${PEER_RATE_EST:-10000}
PEER_PORT=${PEER_PORT:-3210}
IM_PORT=${IM_PORT:-18890}
SIGN=$B/bench/bench-discord-sign
LUA=$ROOT/bench/signed_post.lua
KEY=$PEERS/keys/private.pem
W=$(mktemp -d /tmp/im-bench-discord-XXXXXX); chmod 755 "$W"
SUM=$W/summary.tsv; : > "$SUM"
STATUS=0
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

case $DURATION in
  *m) SECS=$(( ${DURATION%m} * 60 )) ;;
  *s) SECS=${DURATION%s} ;;
  *)  SECS=$DURATION ;;
esac
[[ $SECS =~ ^[0-9]+$ ]] && [ "$SECS" -gt 0 ] || { echo "bad DURATION $DURATION" >&2; exit 2; }

if [ ! -f "$PEERS/discord_app.js" ] || [ ! -f "$PEERS/discord_sign.js" ]; then
  echo "no peers at $PEERS (discord_app.js): set PEERS"; exit 1
fi
# discord_sign.js makes the key pair on first use; the signer needs it.
[ -f "$KEY" ] || node "$PEERS/discord_sign.js" --pubkey >/dev/null
PUBHEX=$("$SIGN" --key "$KEY" --print-pubkey)
if [ "$PUBHEX" != "$(tr -d '\n' < "$PEERS/keys/public.hex")" ]; then
  echo "bench-discord-sign derives $PUBHEX from $KEY, keys/public.hex differs" >&2; exit 1
fi

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "machine: $(nproc) cores ($cpu), $(uname -sr); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "load: wrk -t$THREADS -c$CONNS -d${SECS}s, $RUNS runs per set-up"

rss() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# sign_stream OUT LINES: a fresh stream of LINES distinct interactions,
# split into OUT.1 .. OUT.THREADS.
sign_stream() {
  timeout 600 "$SIGN" --key "$KEY" --count "$2" --out "$1" --split "$THREADS" 2>&1 \
    | sed 's/^/  /'
}

# check URL LABEL: one distinct signed request with curl, must be 200 (as
# the peers' scripts do), then the same request again: a server that
# refuses replays answers 401. Prints one line; returns 1 unless 200.
check() {
  local url=$1 ts sig body code code2
  timeout 60 "$SIGN" --key "$KEY" --count 1 --out "$W/check.line" 2>/dev/null
  IFS=$'\t' read -r ts sig body < "$W/check.line"
  local req=(-sS -m 5 -o "$W/check.out" -w '%{http_code}' -X POST "$url"
             -H 'Content-Type: application/json' -H "X-Signature-Timestamp: $ts"
             -H "X-Signature-Ed25519: $sig" --data-binary "$body")
  code=$(curl "${req[@]}" 2>/dev/null) || code=${code:-000}
  local answer; answer=$(head -c 160 "$W/check.out" 2>/dev/null | tr '\n' ' ')
  code2=$(curl "${req[@]}" 2>/dev/null) || code2=${code2:-000}
  echo "CHECK http=$code body=$answer; the same request again: http=$code2"
  [ "$code" = 200 ]
}

# measure LABEL PID URL EST: RSS idle; RUNS x (sign a stream, wrk with RSS
# sampled halfway and after); peak. Figures go to $SUM.
measure() {
  local label=$1 pid=$2 url=$3 est=$4 i res stream
  sleep 1; local idle; idle=$(rss "$pid" VmRSS)
  echo "RSS idle: $idle kB"
  printf '%s\tidle\t%s\n' "$label" "$idle" >> "$SUM"
  for i in $(seq "$RUNS"); do
    echo "run $i: signing $(( est * SECS )) lines"
    sign_stream "$W/lines" $(( est * SECS ))
    ( sleep $(( SECS / 2 )); m=$(rss "$pid" VmRSS); echo "  RSS mid-load run $i: $m kB"
      printf '%s\tmid\t%s\n' "$label" "$m" >> "$SUM" ) & local S=$!
    timeout $(( SECS + 60 )) wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" -s "$LUA" "$url" \
      -- "$W/lines" > "$W/wrk-$label-$i.log" 2>&1 || true
    wait "$S" || true
    res=$(grep '^RESULT' "$W/wrk-$label-$i.log" || echo "RESULT missing (see wrk output)")
    stream=$(grep '^STREAM' "$W/wrk-$label-$i.log" || echo "STREAM missing")
    echo "run $i: $res $stream"
    printf '%s\trun\t%s %s\n' "$label" "$res" "$stream" >> "$SUM"
    if ! grep -q 'non2xx=0 ' <<<"$res" || ! grep -q 'sock_err=0$' <<<"$res"; then
      echo "  WARNING: errors in run $i (full wrk output below)"; sed 's/^/    /' "$W/wrk-$label-$i.log"
      STATUS=1
    fi
    if ! grep -q 'exhausted=0$' <<<"$stream"; then
      echo "  WARNING: a wrk thread ran out of lines: the rate is too low; raise RATE_EST/PEER_RATE_EST"
      STATUS=1
    fi
    rm -f "$W"/lines.*
    echo "  RSS after run $i: $(rss "$pid" VmRSS) kB"
  done
  local peak; peak=$(rss "$pid" VmHWM)
  echo "RSS peak (VmHWM): $peak kB"
  printf '%s\tpeak\t%s\n' "$label" "$peak" >> "$SUM"
}

# --- the peer -------------------------------------------------------------
PEER_VER=""
if [ "${PEER:-1}" = 1 ] && [ -d /tmp/peers/discord/node_modules/discord-interactions ]; then
  M=/tmp/peers/discord/node_modules
  PEER_VER="discord-interactions $(node -p "require('$M/discord-interactions/package.json').version") + express $(node -p "require('$M/express/package.json').version")"
  echo "== peer: $PEER_VER on node $(node --version)"

  echo "== peer, stock script (run_peer.sh discord $RUNS: one request, id \"1\", resent)"
  if port_free 3200; then
    timeout $(( RUNS * (SECS + 40) + 60 )) bash "$PEERS/run_peer.sh" discord "$RUNS" \
      2>&1 | tee "$W/peer-stock.log" || STATUS=1
    while IFS= read -r l; do
      case $l in
        "RSS idle:"*) printf 'peer-stock\tidle\t%s\n' "$(awk '{print $3}' <<<"$l")" >> "$SUM" ;;
        "RSS peak"*)  printf 'peer-stock\tpeak\t%s\n' "$(awk '{print $4}' <<<"$l")" >> "$SUM" ;;
        *"RSS mid-load"*) printf 'peer-stock\tmid\t%s\n' "$(awk '{print $5}' <<<"$l")" >> "$SUM" ;;
        "run "*RESULT*) printf 'peer-stock\trun\t%s\n' "RESULT${l#*RESULT}" >> "$SUM" ;;
      esac
    done < "$W/peer-stock.log"
  else
    echo "port 3200 is taken (another peer running?): stock run skipped"; STATUS=1
  fi

  echo "== peer, distinct-id stream (same requests as im gets)"
  if port_free "$PEER_PORT"; then
    NODE_PATH=$M PORT=$PEER_PORT node "$PEERS/discord_app.js" > "$W/peer.log" 2>&1 &
    PP=$!; PIDS+=("$PP")
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PEER_PORT") 2>/dev/null && break; sleep 0.1; done
    URL=http://127.0.0.1:$PEER_PORT/interactions
    echo "peer pid=$PP url=$URL"
    if kill -0 "$PP" 2>/dev/null && check "$URL"; then
      measure peer "$PP" "$URL" "$PEER_RATE_EST"
    else
      echo "peer did not answer 200; not benchmarking"; sed 's/^/  /' "$W/peer.log"; STATUS=1
    fi
    kill "$PP" 2>/dev/null || true; wait "$PP" 2>/dev/null || true
  else
    echo "port $PEER_PORT is taken: set PEER_PORT; distinct-id peer run skipped"; STATUS=1
  fi
elif [ "${PEER:-1}" = 1 ]; then
  if command -v npm >/dev/null; then
    echo "== peer: not installed in /tmp/peers/discord; install it with"
    echo "   mkdir -p /tmp/peers/discord && cd /tmp/peers/discord && npm init -y && npm install discord-interactions@4.4 express@5"
  else
    echo "== peer: npm is not available; peer skipped"
  fi
fi

# --- im -------------------------------------------------------------------
IM_FAILED=""
BOT_TOKEN=bench-token
run_im() { # name, extra instance YAML
  local name=$1 extra=$2 P=$IM_PORT M=$(( IM_PORT + 1 ))
  if ! port_free "$P" || ! port_free "$M"; then
    echo "== im ($name): port $P or $M is taken; set IM_PORT"; IM_FAILED=ports; return 1
  fi
  mkdir -p "$W/$name"
  cat > "$W/$name/00.yaml" <<YAML
server: {listen: 127.0.0.1:$P, metrics_listen: 127.0.0.1:$M}
storage: {path: $W/$name/im.db}
log: {level: warn}
plugins:
  dirs: []
  instances:
$extra
    - id: discord
      module: discord
      config:
        application_id: "1"
        public_key: $PUBHEX
        bot_token: "$BOT_TOKEN"
        api_base_url: $API
        gateway: false
YAML
  "$B/im" serve --config "$W/$name" 2>"$W/$name/serve.log" & local SP=$!
  PIDS+=("$SP")
  for _ in $(seq 200); do
    curl -sf -m 1 "http://127.0.0.1:$P/health" >/dev/null 2>&1 && break
    kill -0 "$SP" 2>/dev/null || break
    sleep 0.05
  done
  local URL=http://127.0.0.1:$P/hooks/discord/interactions
  echo "== im ($name) pid=$SP url=$URL"
  if ! kill -0 "$SP" 2>/dev/null; then
    echo "im serve exited at start:"; sed 's/^/  /' "$W/$name/serve.log" | tail -20
    IM_FAILED="im serve did not start"
    if grep -qE "instances\[discord\]|module 'discord'" "$W/$name/serve.log"; then
      IM_FAILED="im refused the discord instance: the discord module of this tree is not the connector (not landed yet?)"
    fi
    return 1
  fi
  if ! check "$URL"; then
    echo "im does not answer a signed interaction with 200; im's log:"
    sed 's/^/  /' "$W/$name/serve.log" | tail -20
    IM_FAILED="no 200 from POST /hooks/discord/interactions"
    kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true
    return 1
  fi
  measure "im-$name" "$SP" "$URL" "$RATE_EST"
  timeout 10 env IM_URL="http://127.0.0.1:$P" "$B/im" connector discord status 2>&1 \
    | head -15 | sed 's/^/  /' || true
  kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true
}

if [ "${IM:-1}" = 1 ]; then
  if [ ! -f "$B/plugins/discord.so" ]; then
    echo "== im: discord module not found ($B/plugins/discord.so is not built): the Discord connector is not in this tree yet"
    IM_FAILED="discord module not found"
  else
    if [ -x "$B/tests/integration/fake-discord" ]; then
      "$B/tests/integration/fake-discord" --port 0 > "$W/fake.out" 2>&1 & PIDS+=($!)
      for _ in $(seq 100); do grep -q '^FAKE_DISCORD ' "$W/fake.out" && break; sleep 0.05; done
      API=$(sed -n 's/^FAKE_DISCORD .*url=\([^ ]*\).*/\1/p' "$W/fake.out")
      BOT_TOKEN=$(sed -n 's/^FAKE_DISCORD .*token=\([^ ]*\).*/\1/p' "$W/fake.out")
      [ -n "$API" ] || { echo "fake-discord printed no FAKE_DISCORD line:"; cat "$W/fake.out"; exit 1; }
      echo "== fake Discord REST API: $API"
    else
      API=http://127.0.0.1:9/api/v10
      echo "== no build/tests/integration/fake-discord: api_base_url $API (closed port; nothing is sent)"
    fi
    # ack: no command component, so the interaction is answered at once by
    # the command router; verb: incident-commands runs it on a worker thread.
    run_im ack "    - {id: echo, module: echo}" &&
      run_im verb "    - {id: incident, module: incident-commands}" || true
  fi
fi

# --- summary --------------------------------------------------------------
echo
echo "== summary (req/s, p50 and p99 ms per run; RSS in MB)"
awk -F'\t' -v peerv="$PEER_VER" '
  function f(s, k,   m) { m = s; if (!match(m, k "=[0-9.]+")) return ""; return substr(m, RSTART + length(k) + 1, RLENGTH - length(k) - 1) }
  { lab = $1; if (!(lab in seen)) { seen[lab] = 1; order[++n] = lab } }
  $2 == "idle" { idle[lab] = $3 / 1024 }
  $2 == "peak" { peak[lab] = $3 / 1024 }
  $2 == "mid"  { if ($3 / 1024 > mid[lab]) mid[lab] = $3 / 1024 }
  $2 == "run"  { r = ++runs[lab]; rps[lab, r] = f($3, "rps"); p50[lab, r] = f($3, "p50_ms")
                 p99[lab, r] = f($3, "p99_ms"); bad[lab] += f($3, "non2xx") + f($3, "sock_err") + f($3, "exhausted")
                 sum[lab] += rps[lab, r] }
  function join(a, lab, fmt,   s, i) { s = ""; for (i = 1; i <= runs[lab]; i++) s = s (i > 1 ? " / " : "") sprintf(fmt, a[lab, i]); return s }
  END {
    names["peer-stock"] = "peer, stock script (id \"1\" resent)"; names["peer"] = "peer, distinct ids"
    names["im-ack"] = "im ack, distinct ids"; names["im-verb"] = "im verb, distinct ids"
    printf "%-36s | %-17s | %-13s | %-15s | %-6s | %-8s | %-6s | %s\n", "set-up", "req/s", "p50 ms", "p99 ms", "idle", "mid-load", "peak", "im/peer"
    for (k = 1; k <= n; k++) {
      lab = order[k]; ratio = "-"
      if (lab ~ /^im-/ && runs["peer"] && sum["peer"] > 0 && runs[lab]) ratio = sprintf("%.1fx", (sum[lab] / runs[lab]) / (sum["peer"] / runs["peer"]))
      printf "%-36s | %-17s | %-13s | %-15s | %6.1f | %8.1f | %6.1f | %s%s\n", (lab in names ? names[lab] : lab),
        join(rps, lab, "%.0f"), join(p50, lab, "%.2f"), join(p99, lab, "%.2f"), idle[lab], mid[lab], peak[lab], ratio,
        (bad[lab] > 0 ? "  (errors or exhausted: see above)" : "")
    }
    if (peerv != "") print "peer: " peerv " on node '"$(node --version 2>/dev/null)"'; im/peer: mean req/s of im over the peer on distinct ids"
  }' "$SUM"
if [ "${IM:-1}" = 1 ] && [ -n "$IM_FAILED" ]; then
  echo "im: not measured: $IM_FAILED"
  exit 1
fi
exit "$STATUS"
