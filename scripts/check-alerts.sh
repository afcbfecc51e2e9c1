#!/usr/bin/env bash
# Checks the alert rules with the real tool, promtool (Debian's `prometheus` package,
# installed when missing, as scripts/test.sh does):
#   1. promtool check rules on the source, alerts/kubelet-sentinel.rules.yaml;
#   2. promtool check rules on the rules of the generated PrometheusRule and of the
#      chart's copy (and that both are what scripts/gen-prometheusrule.sh generates);
#   3. promtool test rules alerts/tests/*.yaml (every alert firing and not firing).
# One line per step on success; the tool's output and a non-zero exit on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "==> installing prometheus (Debian package, for promtool)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs "$@" quietly; prints its output and fails when it fails.
quiet() {
  if ! "$@" >"$tmp/out" 2>&1; then
    cat "$tmp/out" >&2
    echo "FAILED: $*" >&2
    exit 1
  fi
}

src=alerts/kubelet-sentinel.rules.yaml
quiet promtool check rules "$src"
echo "ok   promtool check rules $src ($(grep -c '^ *- alert:' "$src") alerting rules)"

quiet bash scripts/gen-prometheusrule.sh --check
# The PrometheusRule's spec, back as a rules file: drop everything before `spec:` and
# the two spaces of indentation the generator added.
awk 'on { sub(/^  /, ""); print } /^spec:[[:space:]]*$/ { on = 1 }' \
  manifests/prometheusrule.yaml >"$tmp/prometheusrule.rules.yaml"
quiet promtool check rules "$tmp/prometheusrule.rules.yaml"
quiet promtool check rules charts/kubelet-sentinel/files/kubelet-sentinel.rules.yaml
echo "ok   manifests/prometheusrule.yaml and the chart's copy are generated from $src and pass promtool check rules"

quiet promtool test rules alerts/tests/*.yaml
echo "ok   promtool test rules alerts/tests/*.yaml ($(grep -c '^  - name:' alerts/tests/*.yaml | awk -F: '{ n += $2 } END { print n }') test cases)"
