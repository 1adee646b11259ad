#!/usr/bin/env bash
# Debian's Chromium for the end-to-end browser test. Playwright drives it via
# executable_path; we never let a test tool download a browser of its own.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null; then
    SUDO="sudo"
else
    echo "install-browser: /usr/bin/chromium is missing and we are not root; install Debian's 'chromium' package" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
