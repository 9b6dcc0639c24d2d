# Shared by bench/slack.sh and bench/slack_write.sh (sourced, not run):
# Bolt beside im, the fake Slack, and im's config for it. Expects B (the
# build), W (a temp folder), PEERS, RUNS, SLACK_SIGNING_SECRET and a PIDS
# array the caller's cleanup kills.

# Bolt's ack of the peers' /incident status, RUNS times, when installed.
run_bolt() {
  if [ "${BOLT:-1}" = 1 ] && [ -d /tmp/peers/bolt/node_modules/@slack/bolt ] && [ -d "$PEERS" ]; then
    echo "== Bolt $(node -p "require('/tmp/peers/bolt/node_modules/@slack/bolt/package.json').version") on node $(node --version)"
    bash "$PEERS/run_peer.sh" slack "$RUNS"
  else
    echo "== Bolt: not run (BOLT=0, or no /tmp/peers/bolt with @slack/bolt@5, or no $PEERS)"
  fi
}

# Starts the fake Slack Web API; sets API to its base URL.
start_fake_slack() {
  "$B/tests/integration/fake-slack" > "$W/fake.out" 2>&1 & PIDS+=($!)
  for _ in $(seq 50); do grep -q FAKE_SLACK_API "$W/fake.out" && break; sleep 0.05; done
  API=$(sed -n 's/^FAKE_SLACK_API=//p' "$W/fake.out")
}

# im_slack_config FILE PORT METRICS_PORT DB EXTRA_INSTANCE_YAML: slack.so in
# HTTP mode against the fake, plus the extra instances.
im_slack_config() {
  cat > "$1" <<YAML
server: {listen: 127.0.0.1:$2, metrics_listen: 127.0.0.1:$3}
storage: {path: $4}
log: {level: warn}
plugins:
  dirs: []
  instances:
    # conf.d/templates renders Slack's messages, as in the default config.
    - {id: mustache, module: mustache}
    - id: slack
      module: slack
      config:
        bot_token: xoxb-test
        signing_secret: $SLACK_SIGNING_SECRET
        api_base_url: $API
        default_channel: C0GENERAL
        # The peer's script resends one signed request; im would answer
        # every repeat as a replay without running it (Bolt runs it), so
        # the comparison turns replay protection off.
        dedupe_requests: false
$5
YAML
}

rss() { awk -v k="$2:" '$1==k {print $2" kB"}' "/proc/$1/status"; }
