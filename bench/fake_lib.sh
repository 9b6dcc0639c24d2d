# Sourced by the notification benches (notify.sh, notify_fast.sh): the fake
# chat platform (tests/fakes/fake_platform.c) and `im serve` on loopback.
# The caller sets B (build folder), W (work folder), URL (im's base URL).
# Every wait here is bounded.

# fake_start ARGS...: starts fake-platform with ARGS; sets FP and FAKE.
fake_start() {
  "$B/bench/fake-platform" "$@" > "$W/fake.port" &
  FP=$!
  for _ in $(seq 50); do [ -s "$W/fake.port" ] && break; sleep 0.1; done
  FAKE=http://127.0.0.1:$(head -1 "$W/fake.port")
}
# start: `im serve` with $W/conf; sets SP once /health answers.
start() {
  "$B/im" serve --config "$W/conf" 2>>"$W/serve.log" & SP=$!
  for _ in $(seq 200); do curl -sf "$URL/health" >/dev/null && break; sleep 0.05; done
}
stop() { kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null || true; }
stat() { curl -s "$FAKE/_stats" | jq -r ".$1"; }
reset() { curl -s -X POST "$FAKE/_reset" >/dev/null; }
# wait_for N SECONDS: until the fake accepted N messages
wait_for() {
  for _ in $(seq $(($2 * 10))); do
    [ "$(stat accepted)" -ge "$1" ] && return 0; sleep 0.1
  done
  return 1
}
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# config_head: a fresh $W/conf and $W/var; the config's first lines, to
# $W/conf/00.yaml (server on $P/$M, store in $W/var, instance tc: the test
# connector pointed at the fake). The caller appends chatops and
# subscriptions.
config_head() {
  rm -rf "$W/conf" "$W/var"; mkdir -p "$W/conf"
  {
    echo "server: {listen: 127.0.0.1:$P, metrics_listen: 127.0.0.1:$M}"
    echo "storage: {path: $W/var/im.db}"
    echo "log: {level: warn}"
    echo "plugins:"
    echo "  dirs: [\"$B/tests/loader\"]"
    echo "  instances:"
    echo "    - {id: tc, module: testconn, config: {base_url: \"$FAKE\"}}"
  } > "$W/conf/00.yaml"
}
