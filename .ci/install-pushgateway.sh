#!/usr/bin/env bash
# The real Pushgateway the Worker's metrics go through in the sensor test, on 127.0.0.1
# (Debian package: /usr/bin/prometheus-pushgateway). Installs it only when missing;
# the package's own service is stopped: the test starts its own on a free port.
set -euo pipefail
if [ -x /usr/bin/prometheus-pushgateway ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y --no-install-recommends prometheus-pushgateway
# Debian starts the packaged service on :9091; the tests never use it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus-pushgateway 2>/dev/null; then
  $SUDO systemctl stop prometheus-pushgateway || true
fi
/usr/bin/prometheus-pushgateway --version 2>&1 | head -1
