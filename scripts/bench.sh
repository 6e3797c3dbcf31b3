#!/usr/bin/env bash
# Benchmarks (tests/benches/build.rs): one generated Magento-sized upstream built embedded into a
# folder and into S3, and distributed with 1, 2 and 4 worker processes through RabbitMQ into S3,
# also with S3 30 ms away; prints the tables and the ratios the farm aims for.
# Needs RabbitMQ and SeaweedFS: scripts/test-setup.sh installs them (and starts RabbitMQ); the
# bench starts its own SeaweedFS cluster. BENCH_DISTRIBUTED=0 skips the S3/queue rows; see the
# bench's doc comment for the other BENCH_* settings. Extra arguments go to `cargo bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-setup.sh
# The bench runs these binaries as child processes, found next to it under target/release.
cargo build --release --locked -p worker -p coordinator
cargo bench --locked -p tests --bench build "$@"
