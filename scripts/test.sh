#!/usr/bin/env bash
# The whole test suite: installs and starts what the tests need (scripts/test-setup.sh), runs
# every test of the workspace (unit, end-to-end, distributed against RabbitMQ and moto), then
# validates the deployment files offline (deploy/validate.sh).
# Needs ../shared (the parity fixture) beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-setup.sh
cargo test --workspace --locked "$@"
bash deploy/validate.sh
