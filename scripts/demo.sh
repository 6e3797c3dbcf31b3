#!/usr/bin/env bash
# Offline demo of the main job: generates a small sample upstream git repository (two release
# tags, four packages), then runs the embedded build into ./build/sample.
#   bash scripts/demo.sh            # then serve it: the command it prints at the end
#   bash scripts/demo.sh --serve    # build, then serve it at http://127.0.0.1:8080/ until Ctrl-C
set -euo pipefail
serve=0
if [ "${1:-}" = "--serve" ]; then serve=1; shift; fi
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
serve_cmd=(./target/release/coordinator serve --repository --config examples/sample.toml --upstream-base "$work" --out "$out")
echo "repository written to $out" >&2
echo "in a project: composer config repositories.sample composer http://127.0.0.1:8080/ && composer config secure-http false && composer require sample/suite" >&2
if [ "$serve" = 1 ]; then
  echo "serving it at http://127.0.0.1:8080/ (and keeping it current); Ctrl-C stops" >&2
  exec "${serve_cmd[@]}"
fi
echo "serve it (and keep it current) at http://127.0.0.1:8080/ with: ${serve_cmd[*]}" >&2
