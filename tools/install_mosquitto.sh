#!/usr/bin/env bash
# Installs the Debian mosquitto broker and clients for `make run` and the end-to-end tests.
# Skips when already present; never fails the build: without a broker the tests that need one skip.
set -u
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_mosquitto: no apt-get here; install a mosquitto broker by hand (MQTT tests will skip)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install_mosquitto: not root and no sudo; run: apt-get install mosquitto mosquitto-clients" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if ! $SUDO apt-get install -y -qq --no-install-recommends mosquitto mosquitto-clients >/dev/null 2>&1; then
    echo "install_mosquitto: apt-get install mosquitto failed; MQTT parts will run without a broker" >&2
fi
# The Debian package may start a system broker on port 1883; the project starts its own brokers.
exit 0
