#!/usr/bin/env bash
# Installs what the test suite needs, from Debian's packages, when it is missing:
# git (restores the parity bundle in tests), PHP and the real Composer client (install test).
# Safe to run again; does nothing when everything is there.
set -euo pipefail

need=()
command -v git >/dev/null || need+=(git)
command -v php >/dev/null || need+=(php-cli)
command -v composer >/dev/null || need+=(composer)
command -v unzip >/dev/null || need+=(unzip)
if command -v php >/dev/null; then
  php -m | grep -qi '^zip$' || need+=(php-zip)
  php -m | grep -qi '^curl$' || need+=(php-curl)
else
  need+=(php-zip php-curl)
fi

if ((${#need[@]})); then
  echo "test-setup: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "test-setup: cargo (Rust toolchain) is required" >&2; exit 1; }
echo "test-setup: ready ($(php -r 'echo PHP_VERSION;'), $(composer --version 2>/dev/null | head -n1))" >&2
