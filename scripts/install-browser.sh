#!/usr/bin/env bash
# Installs Debian's chromium for the real-browser viewer test (test/serve/browser.test.ts).
# Does nothing when /usr/bin/chromium is already there. Needs root (or passwordless sudo) and apt-get.
#   --optional   never fail (npm's `pretest` runs it so): without root or apt the browser test skips
set -euo pipefail
optional=0
[ "${1:-}" = "--optional" ] && optional=1
give_up() {
  echo "install-browser: $1" >&2
  if [ "$optional" = 1 ]; then echo "install-browser: the real-browser test will skip" >&2; exit 0; fi
  exit 1
}

if [ -x /usr/bin/chromium ]; then
  echo "install-browser: /usr/bin/chromium is present ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || give_up "apt-get not found; install chromium by hand so that /usr/bin/chromium exists"
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    give_up "not root and no passwordless sudo; cannot install chromium"
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-browser: installing Debian's chromium for the real-browser test"
$SUDO apt-get update -qq || give_up "apt-get update failed"
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null || give_up "apt-get install chromium failed"
/usr/bin/chromium --version
