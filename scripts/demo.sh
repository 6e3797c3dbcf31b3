#!/usr/bin/env bash
# Offline demo of the main job: generates a small sample upstream git repository (two release
# tags, four packages), then runs the embedded build into ./build/sample.
#   bash scripts/demo.sh            # then: php -S 127.0.0.1:8080 -t build/sample
set -euo pipefail
cd "$(dirname "$0")/.."
work="${DEMO_DIR:-$PWD/build/demo-upstream}"
out="${DEMO_OUT:-$PWD/build/sample}"

if [ ! -d "$work/sample-shop.git" ]; then
  src="$(mktemp -d)"
  trap 'rm -rf "$src"' EXIT
  git -C "$src" init -q -b main
  git -C "$src" config user.name demo; git -C "$src" config user.email demo@example.org
  mkdir -p "$src/app/code/Sample/Catalog/Model" "$src/app/code/Sample/Checkout" "$src/app/code/Sample/_metapackage" "$src/bin"
  cat > "$src/composer.json" <<'JSON'
{"name": "sample/shop-base", "description": "Sample shop base package", "version": "1.0.0", "type": "library", "require": {"sample/module-catalog": "1.0.*"}}
JSON
  printf '#!/bin/sh\necho sample shop\n' > "$src/bin/shop"; chmod +x "$src/bin/shop"
  printf 'Sample shop.\n' > "$src/README.md"
  cat > "$src/app/code/Sample/Catalog/composer.json" <<'JSON'
{"name": "sample/module-catalog", "description": "Sample catalog", "type": "library", "version": "1.0.0", "autoload": {"psr-4": {"Sample\\Catalog\\": ""}}}
JSON
  printf '<?php\nnamespace Sample\\Catalog\\Model;\nclass Product {}\n' > "$src/app/code/Sample/Catalog/Model/Product.php"
  cat > "$src/app/code/Sample/Checkout/composer.json" <<'JSON'
{"name": "sample/module-checkout", "description": "Sample checkout", "type": "library", "version": "1.0.0", "require": {"sample/module-catalog": "1.0.*"}, "suggest": {"sample/module-checkout-sample-data": "1.0.0"}}
JSON
  printf '<?php\n// checkout\n' > "$src/app/code/Sample/Checkout/Cart.php"
  cat > "$src/app/code/Sample/_metapackage/composer.json" <<'JSON'
{"name": "sample/suite", "description": "Everything", "type": "metapackage", "require": {"sample/module-catalog": "1.0.*", "sample/module-checkout": "1.0.*"}}
JSON
  git -C "$src" add -A; git -C "$src" commit -qm "1.0.0"; git -C "$src" tag 1.0.0
  sed -i 's/"version": "1.0.0"/"version": "1.1.0"/' "$src/app/code/Sample/Catalog/composer.json" "$src/composer.json"
  printf '<?php\nnamespace Sample\\Catalog\\Model;\nclass Product { public string $sku = ""; }\n' > "$src/app/code/Sample/Catalog/Model/Product.php"
  sed -i 's/"sample\/module-catalog": "1.0.\*"/"sample\/module-catalog": "1.1.*"/' "$src/composer.json"
  git -C "$src" commit -qam "1.1.0"; git -C "$src" tag 1.1.0
  mkdir -p "$work"
  git clone -q --mirror "$src" "$work/sample-shop.git"
fi

cargo build --release -q -p coordinator
./target/release/coordinator build --config examples/sample.toml --upstream-base "$work" --out "$out" "$@"
echo "repository written to $out; serve it with: php -S 127.0.0.1:8080 -t $out" >&2
