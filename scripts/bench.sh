#!/usr/bin/env bash
# Benchmarks: embedded vs distributed builds of a generated Magento-sized upstream.
# Needs RabbitMQ and moto (scripts/test-setup.sh installs and starts them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-setup.sh
cargo build --release --locked -p worker -p coordinator
cargo bench --locked -p tests --bench build "$@"
