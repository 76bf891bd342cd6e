#!/usr/bin/env bash
# Install redis-server (and redis-benchmark / redis-cli) from Debian when missing.
# The online-store tests start their own throwaway server from this binary.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
    echo "redis-server already installed: $(redis-server --version)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends redis-server redis-tools
# The package may start a system service on port 6379; the tests do not use it.
redis-server --version
