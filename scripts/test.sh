#!/usr/bin/env bash
# The whole test suite: installs missing test tools, then runs every test of the workspace.
# Needs ../shared (the parity fixture) beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-setup.sh
cargo test --workspace --locked "$@"
