#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for the dashboard's browser tests (host_tests/test_e2e_browser.py).
# Skips when already present; never fails the build: without a browser those tests skip and say why.
set -u
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: no apt-get here; install chromium and chromium-driver by hand (browser tests will skip)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install_chromium: not root and no sudo; run: apt-get install chromium chromium-driver" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if ! $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null 2>&1; then
    echo "install_chromium: apt-get install chromium failed; browser tests will skip" >&2
fi
exit 0
