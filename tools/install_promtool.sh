#!/usr/bin/env bash
# Installs Debian's prometheus package for its promtool (`promtool check metrics` on the firmware's
# /metrics: host_tests/test_e2e_accounting.py). Skips when present; never fails the build: without
# promtool that check skips and says why.
set -u
if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_promtool: no apt-get here; install promtool by hand (its check will skip)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install_promtool: not root and no sudo; run: apt-get install prometheus" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if ! $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; then
    echo "install_promtool: apt-get install prometheus failed; the promtool check will skip" >&2
fi
# The package may start a Prometheus server on port 9090; the tests do not use it.
exit 0
