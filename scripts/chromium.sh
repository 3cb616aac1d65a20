#!/usr/bin/env bash
# Installs Chromium from the Debian packages when /usr/bin/chromium is
# missing: the dashboard's browser tests (e2e/dashboard_test.go) drive it
# headless through chromedp. Prints the browser's version either way.
#
#   scripts/chromium.sh        # idempotent; test.sh calls it
set -euo pipefail

CHROMIUM=/usr/bin/chromium

log() { echo "chromium.sh: $*" >&2; }

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" != 0 ]; then
    log "$CHROMIUM is missing and we are not root; install the Debian package 'chromium'"
    exit 1
  fi
  log "installing chromium (apt-get install chromium, ~300 MB)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  [ -x "$CHROMIUM" ] || { log "apt-get installed no $CHROMIUM"; exit 1; }
fi
# --version starts no browser; a D-Bus warning on stderr is harmless.
"$CHROMIUM" --version 2>/dev/null || log "$CHROMIUM is installed but --version failed"
