#!/usr/bin/env bash
# Runs every fuzz target under fuzz/ (cargo fuzz, libFuzzer) for a bounded time each:
# scripts/fuzz.sh [seconds per target, default 60]. (The oracles' own unit tests run in the
# normal `cargo test`, through shared/tests/tree_to_archive.rs.)
# - Installs cargo-fuzz from crates.io when it is missing (`cargo install --locked`).
# - cargo fuzz passes -Z flags to rustc, so on a stable toolchain it runs with RUSTC_BOOTSTRAP=1.
# - No sanitizer: the code under test has no unsafe code (forbidden workspace-wide), so
#   AddressSanitizer would only slow it down; debug assertions are on (the zip writer checks
#   its planned layout against what it wrote).
# - The committed seeds (fuzz/corpus/<target>/) are read, never written: new inputs go to a
#   temporary folder. A failing input is saved under fuzz/artifacts/<target>/ and the script
#   fails; replay it with `cargo fuzz run <target> <file>` (in fuzz/, with RUSTC_BOOTSTRAP=1).
# Build output goes to fuzz/target unless FUZZ_TARGET_DIR is set.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
  echo "fuzz: $target for ${seconds}s" >&2
  mkdir -p "$scratch/$target"
  cargo fuzz run --sanitizer none --debug-assertions "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
done
