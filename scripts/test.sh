#!/usr/bin/env bash
# The whole test suite: installs and starts what the tests need (scripts/test-setup.sh), checks
# formatting (cargo fmt) and lints (cargo clippy, warnings are errors), runs every test of the
# workspace (unit, end-to-end, distributed against RabbitMQ and SeaweedFS), every
# fuzz target for a bounded time (scripts/fuzz.sh), then validates the deployment files offline
# (deploy/validate.sh).
# Needs ../shared (the parity fixture) beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
# Every fuzz target for a bounded time (FARM_FUZZ_SECONDS, default 30 s each); the instrumented
# build is cached outside the checkout so a later run on the same machine starts at once.
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-${FARM_TOOLS_DIR:-$HOME/.cache/composer-farm}/fuzz-target}" \
  bash scripts/fuzz.sh "${FARM_FUZZ_SECONDS:-30}"
bash deploy/validate.sh
