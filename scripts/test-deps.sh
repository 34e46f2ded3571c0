#!/usr/bin/env bash
# What the tests need beyond the Rust toolchain: Debian's Chromium and ChromeDriver for the browser
# tests of the web pages (crates/tokumei-web/tests/browser.rs). Installed when missing; the README's
# test command and .ci/run both call this.
set -euo pipefail
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-noto-cjk
fi
