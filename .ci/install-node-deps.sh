#!/bin/sh
# Install the Worker's test dependencies (Miniflare) exactly as locked.
# Called by .ci/run and `make test`; needs Node.js >= 20 and npm.
set -eu
cd "$(dirname "$0")/../wrangler"
npm ci --no-audit --no-fund
