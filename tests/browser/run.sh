#!/usr/bin/env bash
# Browser tests of the boxoffice pages: headless Chromium (Debian's package) driven by
# playwright-core, run by node's test runner. Installs what is missing, then runs the tests.
#
#   tests/browser/run.sh                       # uses target/release/boxoffice (built if missing)
#   BOXOFFICE_BIN=/path/to/boxoffice tests/browser/run.sh
#   BOXOFFICE_WEB_DIR=web tests/browser/run.sh # serve the pages from disk instead of the binary
#   tests/browser/run.sh tests/race.test.js    # one file (path relative to tests/browser)
#
# Screenshots of each step land in tests/browser/screenshots/ (not committed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# Paths given relative to where the script was started from.
if [ -n "${BOXOFFICE_WEB_DIR:-}" ]; then
  BOXOFFICE_WEB_DIR="$(cd "$BOXOFFICE_WEB_DIR" && pwd)"
  export BOXOFFICE_WEB_DIR
fi
if [ -n "${BOXOFFICE_BIN:-}" ]; then
  BOXOFFICE_BIN="$(cd "$(dirname "$BOXOFFICE_BIN")" && pwd)/$(basename "$BOXOFFICE_BIN")"
fi
cd "$here"

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "== installing chromium"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

if [ ! -f node_modules/playwright-core/package.json ]; then
  echo "== installing playwright-core"
  npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error
fi

export BOXOFFICE_BIN="${BOXOFFICE_BIN:-$root/target/release/boxoffice}"
if [ ! -x "$BOXOFFICE_BIN" ]; then
  echo "== building $BOXOFFICE_BIN"
  (cd "$root" && cargo build --release)
fi

echo "== browser tests ($BOXOFFICE_BIN, $("$chromium" --version 2>/dev/null | tail -1))"
if [ "$#" -eq 0 ]; then set -- tests/*.test.js; fi
exec node --test --test-concurrency=1 "$@"
