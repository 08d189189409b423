#!/usr/bin/env bash
# The real Prometheus the trigger tests and bench/triggers start on 127.0.0.1
# (Debian package: /usr/bin/prometheus and /usr/bin/promtool). Installs it only
# when missing; the package's own service is not needed and is not started here.
set -euo pipefail
if [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y --no-install-recommends prometheus
# Debian starts the packaged service on :9090; the tests use their own server on a free port.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl stop prometheus || true
fi
/usr/bin/prometheus --version | head -1
