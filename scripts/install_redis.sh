#!/usr/bin/env bash
# Installs redis-server from Debian's packages when it is not on the machine yet.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
# The package starts a system service on some machines; tests start their own on a free port.
$SUDO systemctl stop redis-server >/dev/null 2>&1 || true
command -v redis-server >/dev/null
