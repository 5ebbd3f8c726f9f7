#!/usr/bin/env bash
# Install Debian's chromium (and its driver) when it is missing: the browser test drives it
# through Playwright with executable_path=/usr/bin/chromium, since Playwright's own browser
# download cannot work without internet. Safe to run repeatedly; a no-op when present.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-browser: chromium is missing and we are not root (no sudo)." >&2
        echo "install-browser: run: apt-get update && apt-get install -y chromium chromium-driver" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
