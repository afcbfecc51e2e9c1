#!/usr/bin/env bash
# The whole test suite, with everything it needs installed first.
# Used by the README ("run the tests") and by .ci/run. Run as root on Debian (apt-get); the
# PyPI and npm tools are pinned and installed under target/tools and tools/npm/*/node_modules.
#
#   1. Debian packages: prometheus (promtool), prometheus-alertmanager, buildah, patch (fix.diff is applied), nodejs and
#      npm (Node >= 18, the engines of tools/npm/*/package.json), golang-go; a Go older than
#      1.21 (Debian 12 has 1.19) cannot pick a kubelet release's toolchain, so a newer one is
#      fetched as the Go module golang.org/toolchain, as Go itself does (cached by version).
#   2. Deploy artefacts: manifests, Helm chart (renders target/deploy/, which the Rust
#      deploy_contract test reads), dashboards (Grafana schema), alert rules (promtool).
#   3. No aws-lc-sys in the dependency tree (kube on rustls+ring); cargo test: every Rust
#      test (one debug build, shared with the steps below), all of them even when some fail.
#   4. The real pipeline: agents -> Prometheus -> Alertmanager, dashboard queries.
#   5. The image: scripts/build-image.sh (a static `cargo auditable` release binary, its
#      CycloneDX SBOM, the Dockerfile's final stage built with buildah into an OCI archive),
#      run twice for the same digest; the binary's dependency list, the SBOM and the image
#      checked, the image run (docs/image.md).
#   6. Real kubelets: the newest recorded kubelet version is built from upstream source
#      (cached by version under /var/cache/kubelet-sentinel/kubelets), every scenario of
#      tests/kubelet-truth/ is recorded again with it, and any difference from the committed
#      recordings fails (cargo test already compared the agent with every recording).
#   7. A real cluster (tests/real-cluster, docs/real-cluster.md): etcd, kube-apiserver,
#      controller-manager, scheduler, containerd and a kubelet of that release in a network
#      namespace; the image deployed with kustomize and helm, scraped by Prometheus through
#      TokenReview/SubjectAccessReview, its API-backed controls checked.
#
# A step that fails does not stop the others: each `step "name: what"` block runs to its
# end, every failed command marks its step failed, and the last line names the failed steps
# (by the text before the first ':') and the script exits 1. Add a step as a block:
#   step "name: what it proves"
#   bash scripts/check-name.sh
# (no `exit` in a block: a failing command is enough; `false` marks a step failed by hand).
set -Euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
failed=()
current="setup"
step() {
  current=${1%%:*}
  echo "==> $1 ($(( $(date +%s) - start ))s)"
}
# ERR fires for every failing command outside a condition (errtrace: in functions too).
mark_failed() {
  [[ ${#failed[@]} -gt 0 && ${failed[-1]} == "$current" ]] || failed+=("$current")
  echo "==> $current: failed (exit $1), continuing" >&2
}
trap 'mark_failed $?' ERR

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
command -v patch >/dev/null 2>&1 || need_apt+=(patch)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "install: Debian packages ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends keeps it to the binaries; no service is started here.
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

step "install: Node >= 18 and Go >= 1.21"
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if (( node_major < 18 )); then
  echo "Node $(node --version 2>/dev/null || echo none) is older than the >= 18 tools/npm/*/package.json require" >&2
  false
fi
# Go >= 1.21 downloads the toolchain a go.mod asks for; Debian 12's 1.19 cannot, so fetch
# one (the Go module golang.org/toolchain, through the module proxy, with `go mod
# download`: what GOTOOLCHAIN does) into /var/cache/kubelet-sentinel/go/<version>.
bootstrap_go=go1.25.9
go_minor=$(go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if (( ${go_minor:-0} < 21 )); then
  gobin=/var/cache/kubelet-sentinel/go/$bootstrap_go/bin
  if [[ ! -x $gobin/go ]]; then
    arch=$(dpkg --print-architecture)
    gotmp=$(mktemp -d)
    dir=$(cd "$gotmp" && GOPATH="$gotmp/gopath" GOFLAGS=-mod=mod \
      go mod download -json "golang.org/toolchain@v0.0.1-$bootstrap_go.linux-$arch" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    if [[ -n $dir && -d $dir ]]; then
      rm -rf "${gobin%/bin}" && mkdir -p "${gobin%/bin}"
      cp -r "$dir/." "${gobin%/bin}/"
      chmod -R u+w "${gobin%/bin}"
      # Module zips carry no modes: make the toolchain's programs executable again.
      chmod +x "$gobin"/* "${gobin%/bin}"/pkg/tool/*/*
    fi
    chmod -R u+w "$gotmp" 2>/dev/null; rm -rf "$gotmp"
  fi
  export PATH="$gobin:$PATH"
  go version
fi

# The real kubelet of step 6 is built (or found in its cache) in the background from here,
# so that the light steps below overlap with it.
newest=$(ls tests/kubelet-truth/recorded | sort -V | tail -n1)
kubelet_log=$(mktemp)
bash tests/kubelet-truth/build-kubelet.sh "$newest" >"$kubelet_log" 2>&1 &
kubelet_build=$!
# The real cluster's control plane (the last step), same release, same way, same cache.
control_plane_log=$(mktemp)
bash tests/kubelet-truth/build-kubelet.sh "$newest" kube-apiserver kube-controller-manager \
  kube-scheduler kubectl >"$control_plane_log" 2>&1 &
control_plane_build=$!

step "deploy: manifests, Helm chart"
bash scripts/check-deploy.sh
step "dashboards"
bash scripts/check-dashboards.sh
step "alert rules"
bash scripts/check-alerts.sh

# The fleet groups' promtool tests are generated (scripts/gen-fleet-test.py); the shipped
# Alertmanager example is checked with amtool and a real Alertmanager proves its
# inhibition (the fleet alert mutes the per-node alerts of its cluster and control).
# prometheus-alertmanager (with amtool) is installed by the Debian packages step above.
step "fleet alerts: generated promtool tests current, Alertmanager example and its inhibition"
python3 scripts/gen-fleet-test.py --check
timeout 120 python3 scripts/alertmanager-inhibition-test.py

# bench/fleet.sh reduced (docs/performance.md, "Fleet scale"): ~2.5 min, ~0.6 GB of temporary
# OpenMetrics under $TMPDIR, removed at exit.
step "fleet: 200 simulated nodes scraped and backfilled into Prometheus; every fleet recording rule equals the generator's truth, every fleet dashboard query answers"
# PyYAML for bench/fleet/measure.py (it reads the rules file): from the python3 on PATH's
# own pip when that is not Debian's (pyenv), else Debian's package.
if ! python3 -c 'import yaml' 2>/dev/null; then
  if [ "$(command -v python3)" = /usr/bin/python3 ]; then
    apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
  else
    python3 -m pip install --quiet pyyaml
  fi
fi
bash bench/fleet.sh --ci

# `standin` builds the test-support stand-in kubelet (support/standin-kubelet) used by the
# live-probe, drift and pipeline tests; it is never part of the shipped binary.
# The Kubernetes API client (kube) must use rustls with the ring provider, like the rest
# of the agent: no aws-lc (a C/cmake build and a second crypto library in the binary).
# `cargo tree -i` fails ("did not match any packages") when nothing depends on it.
step "aws-lc: none in the dependency tree"
if tree=$(cargo tree --locked --all-features --target all -i aws-lc-sys 2>&1); then
  echo "aws-lc-sys is in the dependency tree; keep kube on rustls+ring:" >&2
  echo "$tree" >&2
  false
elif ! grep -q "did not match any packages" <<<"$tree"; then
  echo "cargo tree -i aws-lc-sys failed for another reason:" >&2
  echo "$tree" >&2
  false
fi

step "cargo test: every Rust test, all of them even when some fail"
cargo test --locked --no-fail-fast --all-targets --features standin

step "pipeline: Prometheus + Alertmanager + agents"
python3 scripts/pipeline-test.py

step "control states: rules and node dashboard answer alike for --metrics-control-states active and all"
python3 scripts/control-states-test.py

step "image: build-image.sh (auditable binary, SBOM, OCI archive) and its checks"
bash scripts/check-image.sh

step "real kubelet: $newest built, every scenario re-recorded and diffed with the recordings"
if wait "$kubelet_build"; then
  bash tests/kubelet-truth/record.sh --check --version "$newest" --kubelet "$(tail -n1 "$kubelet_log")"
else
  echo "building kubelet $newest failed:" >&2
  cat "$kubelet_log" >&2
  false
fi

step "real cluster: Kubernetes $newest on loopback, the image deployed (kustomize, helm), scraped, its API controls"
if wait "$control_plane_build"; then
  # The shipped image as an OCI archive: scripts/build-image.sh reuses the release binary
  # the image step built (cargo has nothing to do), then the SBOM and buildah (seconds).
  archive=target/image/out/kubelet-sentinel.oci.tar
  bash scripts/build-image.sh >/dev/null
  python3 tests/real-cluster/cluster.py --image-archive "$archive" --version "$newest"
else
  echo "building the control plane $newest failed:" >&2
  cat "$control_plane_log" >&2
  false
fi

trap - ERR
elapsed=$(( $(date +%s) - start ))
if [ ${#failed[@]} -gt 0 ]; then
  summary=$(printf '%s, ' "${failed[@]}")
  echo "==> FAILED (${elapsed}s): ${summary%, }"
  exit 1
fi
echo "==> all tests passed (${elapsed}s)"
