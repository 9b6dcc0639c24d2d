#!/usr/bin/env bash
# First command of the README: install what is missing, build, run
# `im serve` on the default conf.d (SQLite in ./var, in-process bus).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
[ -f build/build.ninja ] || meson setup build -Dtests=false >/dev/null
ninja -C build >/dev/null
exec ./im serve "$@"
