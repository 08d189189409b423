#!/usr/bin/env bash
# The real Alertmanager the receiver tests route alerts through, on 127.0.0.1
# (Debian package: /usr/bin/prometheus-alertmanager). Installs it only when missing;
# the package's own service is stopped: the tests start their own on a free port.
set -euo pipefail
if [ -x /usr/bin/prometheus-alertmanager ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y --no-install-recommends prometheus-alertmanager
# Debian starts the packaged service on :9093; the tests never use it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus-alertmanager 2>/dev/null; then
  $SUDO systemctl stop prometheus-alertmanager || true
fi
/usr/bin/prometheus-alertmanager --version 2>&1 | head -1
