#!/usr/bin/env bash
# Installs the Debian packages im needs, only when some are missing.
# Usage: scripts/deps.sh [build|test|bench|bench-notify|fuzz]
set -euo pipefail
need=(meson ninja-build pkg-config gcc make libc6-dev libcurl4-openssl-dev
      libjansson-dev libyaml-dev libmicrohttpd-dev libsqlite3-dev libssl-dev
      libsodium-dev libwslay-dev nettle-dev libcjose-dev libjemalloc-dev)
case "${1:-build}" in
  test)  need+=(libcriterion-dev curl) ;;
  bench) need+=(libcriterion-dev curl wrk procps) ;;
  # bench/notify_fast.sh: its peer is Debian's Alertmanager.
  bench-notify) need+=(libcriterion-dev curl procps jq sqlite3 bc
                       prometheus-alertmanager) ;;
  fuzz)  need+=(libcriterion-dev curl clang-14 libclang-rt-14-dev) ;;
esac
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
