#!/usr/bin/env bash
# The whole test suite, with everything it needs installed first.
# Used by the README ("run the tests") and by .ci/run. Run as root on Debian (apt-get); the
# PyPI and npm tools are pinned and installed under target/tools and tools/npm/*/node_modules.
#
#   1. Debian packages: prometheus (promtool), prometheus-alertmanager, buildah.
#   2. Deploy artefacts: manifests, Helm chart (renders target/deploy/, which the Rust
#      deploy_contract test reads), dashboards (Grafana schema), alert rules (promtool).
#   3. No aws-lc-sys in the dependency tree (kube on rustls+ring); cargo test: every Rust
#      test (one debug build, shared with the steps below).
#   4. The real pipeline: agents -> Prometheus -> Alertmanager, dashboard queries.
#   5. The image: scripts/build-image.sh (a static `cargo auditable` release binary, its
#      CycloneDX SBOM, the Dockerfile's final stage built with buildah into an OCI archive),
#      run twice for the same digest; the binary's dependency list, the SBOM and the image
#      checked, the image run (docs/image.md).
#   6. Real kubelets: the newest recorded kubelet version is built from upstream source
#      (cached by version under /var/cache/kubelet-sentinel/kubelets), every scenario of
#      tests/kubelet-truth/ is recorded again with it, and any difference from the committed
#      recordings fails (cargo test already compared the agent with every recording).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo "==> $1 ($(( $(date +%s) - start ))s)"; }

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing ${need_apt[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends keeps it to the binaries; no service is started here.
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The real kubelet of step 6 is built (or found in its cache) in the background from here,
# so that the light steps below overlap with it.
newest=$(ls tests/kubelet-truth/recorded | sort -V | tail -n1)
kubelet_log=$(mktemp)
bash tests/kubelet-truth/build-kubelet.sh "$newest" >"$kubelet_log" 2>&1 &
kubelet_build=$!

step "deploy artefacts: manifests, Helm chart"
bash scripts/check-deploy.sh
step "dashboards"
bash scripts/check-dashboards.sh
step "alert rules"
bash scripts/check-alerts.sh

# `standin` builds the test-support stand-in kubelet (support/standin-kubelet) used by the
# live-probe, drift and pipeline tests; it is never part of the shipped binary.
# The Kubernetes API client (kube) must use rustls with the ring provider, like the rest
# of the agent: no aws-lc (a C/cmake build and a second crypto library in the binary).
# `cargo tree -i` fails ("did not match any packages") when nothing depends on it.
step "no aws-lc in the dependency tree"
if tree=$(cargo tree --locked --all-features --target all -i aws-lc-sys 2>&1); then
  echo "aws-lc-sys is in the dependency tree; keep kube on rustls+ring:" >&2
  echo "$tree" >&2
  exit 1
elif ! grep -q "did not match any packages" <<<"$tree"; then
  echo "cargo tree -i aws-lc-sys failed for another reason:" >&2
  echo "$tree" >&2
  exit 1
fi

step "cargo test"
cargo test --locked --all-targets --features standin

step "pipeline: Prometheus + Alertmanager + agents"
python3 scripts/pipeline-test.py

step "image: build-image.sh (auditable binary, SBOM, OCI archive) and its checks"
bash scripts/check-image.sh

step "real kubelet $newest: wait for its build, re-record every scenario, diff with the recordings"
if ! wait "$kubelet_build"; then
  echo "building kubelet $newest failed:" >&2
  cat "$kubelet_log" >&2
  exit 1
fi
bash tests/kubelet-truth/record.sh --check --version "$newest" --kubelet "$(tail -n1 "$kubelet_log")"

step "all tests passed"
