#!/usr/bin/env bash
# Installs the Debian packages the tests use (Makefile: mosquitto, chromium, promtool), skipping when
# the program they provide is present; never fails the build: the tests that need it skip and say why.
# Usage: tools/apt_install.sh <program> <what needs it> <package>...
set -u
program="$1"
needs="$2"
shift 2
if command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ] || [ -x "/usr/bin/$program" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt_install: no apt-get here; install $* by hand ($needs will skip)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "apt_install: not root and no sudo; run: apt-get install $*" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if ! $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    echo "apt_install: apt-get install $* failed; $needs will skip" >&2
fi
# (a package may start a system service, e.g. a broker on 1883 or Prometheus on 9090: the tests start
# and use their own)
exit 0
