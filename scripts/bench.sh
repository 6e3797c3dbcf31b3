#!/usr/bin/env bash
# Benchmarks, two suites, each printing its tables and the targets the farm aims for:
# - build (tests/benches/build.rs): one generated Magento-sized upstream built embedded into a
#   folder and into S3, and distributed with 1, 2 and 4 worker processes through RabbitMQ into
#   S3, also with S3 30 ms away. Needs RabbitMQ and SeaweedFS: scripts/test-setup.sh installs
#   them (and starts RabbitMQ); the bench starts its own SeaweedFS cluster. BENCH_DISTRIBUTED=0
#   skips the S3/queue rows.
# - limits (tests/benches/limits.rs): embedded builds into a folder at the limits (a Mage-OS
#   mirror sized upstream warm and cold and its floor, large binary files, 1x/4x/16x magento2
#   scale up to 20,080 archives and about 11 GB, a no-change and a one-module branch build).
#   Needs no services, but about 15 GB of free disk for the 16x rows.
# BENCH_SUITES=build,limits chooses the suites (default: both, in that order); see each bench's
# doc comment for the other BENCH_* settings. Extra arguments go to every `cargo bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
suites="${BENCH_SUITES:-build,limits}"
chosen() { [[ ",${suites// /}," == *",$1,"* ]]; }
if chosen build; then
    bash scripts/test-setup.sh
fi
# The benches run these binaries as child processes, found next to them under target/release.
cargo build --release --locked -p worker -p coordinator
if chosen build; then
    cargo bench --locked -p tests --bench build "$@"
fi
if chosen limits; then
    cargo bench --locked -p tests --bench limits "$@"
fi
