#!/usr/bin/env bash
# Installs headless Chromium from Debian's packages, for the test that opens the projection report in
# a real browser (tests/projection/test_report_browser.py). CI (.ci/run, as root) calls it so that a
# missing browser fails that test there instead of skipping it; on your machine run it once with sudo.
# The test drives Chromium over its DevTools pipe, so no driver or Python package is needed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium: $(chromium --version 2>/dev/null || echo installed)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "error: installing chromium needs root: run sudo $0" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $(chromium --version)"
