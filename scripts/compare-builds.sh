#!/usr/bin/env bash
# Byte-for-byte comparison of two coordinator binaries on the benchmark's generated upstream
# (tests/benches/build.rs with BENCH_GENERATE_ONLY): both build it embedded into a folder, and
# every archive and metadata file must be the same. The farm's own state under .farm/ is left out:
# the report and the health record hold times and ids, and the manifest is stored as a snapshot
# with change segments under a generation id, so its files differ from run to run while the
# metadata rendered from it is compared. So is the change feed (metadata/changes.json), whose
# actions carry the time of each publish. For refactors that must not change a byte:
#   bash scripts/compare-builds.sh /path/to/old/coordinator [target/release/coordinator]
# BENCH_MODULES, BENCH_FILES and BENCH_TAGS shape the upstream as in the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
old="${1:?usage: compare-builds.sh OLD_COORDINATOR [NEW_COORDINATOR]}"
new="${2:-target/release/coordinator}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
BENCH_GENERATE_ONLY="$work" cargo bench --locked -p tests --bench build >/dev/null
for side in old new; do
  bin="$old"; [ "$side" = new ] && bin="$new"
  RUST_LOG=warn "$bin" build --config "$work/bench.toml" --upstream-base "$work/upstream" \
    --cache-dir "$work/cache" --out "$work/out-$side"
done
archives="$(find "$work/out-new/packages" -name '*.zip' | wc -l)"
metadata="$(find "$work/out-new" -name '*.json' -not -path '*/.farm/*' -not -name changes.json | wc -l)"
if diff -r --exclude=.farm --exclude=changes.json "$work/out-old" "$work/out-new" >/dev/null; then
  echo "compare-builds: identical: $archives archives and $metadata metadata files"
else
  diff -r --brief --exclude=.farm --exclude=changes.json "$work/out-old" "$work/out-new" | head -20
  echo "compare-builds: the outputs differ" >&2
  exit 1
fi
