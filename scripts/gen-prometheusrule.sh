#!/usr/bin/env bash
# Generates, from the single source of the alert rules, alerts/kubelet-sentinel.rules.yaml
# (a plain Prometheus rules file):
#   manifests/prometheusrule.yaml
#       a monitoring.coreos.com/v1 PrometheusRule (kubectl/kustomize): a fixed header,
#       then every line of the source from its top-level `groups:` on, indented by two
#       spaces under `spec:`;
#   charts/kubelet-sentinel/files/kubelet-sentinel.rules.yaml
#       the rules file the Helm chart reads with .Files.Get (its template takes the
#       top-level `groups` and adds prometheusRule.extraAlertLabels): a "generated"
#       header, then the same lines as they are.
# A pure text transform, reproducible with bash and awk only; empty lines stay empty, so
# block scalars and comments come through unchanged. tests/alerts_contract.rs checks
# that the committed files are what this script generates.
#
# Usage: scripts/gen-prometheusrule.sh                   write both files
#        scripts/gen-prometheusrule.sh --check           exit 1 (with a diff) when one is stale
#        scripts/gen-prometheusrule.sh --stdout [chart]  print the PrometheusRule (or the
#                                                        chart's rules file)
set -euo pipefail
cd "$(dirname "$0")/.."

src=alerts/kubelet-sentinel.rules.yaml
manifest=manifests/prometheusrule.yaml
chart=charts/kubelet-sentinel/files/kubelet-sentinel.rules.yaml
header="# generated from $src by scripts/gen-prometheusrule.sh; do not edit"

# The source's lines from its top-level `groups:` on, each prefixed with $1 (empty
# lines stay empty).
rule_groups() {
  if ! grep -q '^groups:[[:space:]]*$' "$src"; then
    echo "$src: no top-level 'groups:' line" >&2
    return 1
  fi
  awk -v indent="$1" 'on || /^groups:[[:space:]]*$/ {
    on = 1
    if ($0 == "") print ""; else print indent $0
  }' "$src"
}

# The content of output file $1.
generate() {
  case "$1" in
    "$manifest")
      printf '%s\n' "$header" \
        "---" \
        "apiVersion: monitoring.coreos.com/v1" \
        "kind: PrometheusRule" \
        "metadata:" \
        "  name: kubelet-sentinel" \
        "  namespace: kubelet-sentinel" \
        "  labels:" \
        "    app.kubernetes.io/name: kubelet-sentinel" \
        "spec:"
      rule_groups "  "
      ;;
    "$chart")
      printf '%s\n' "$header" "---"
      rule_groups ""
      ;;
    *)
      echo "generate: unknown output $1" >&2
      return 1
      ;;
  esac
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

case "${1:-}" in
  --stdout)
    if [ "${2:-}" = chart ]; then generate "$chart"; else generate "$manifest"; fi
    ;;
  --check)
    stale=0
    for out in "$manifest" "$chart"; do
      generate "$out" >"$tmp"
      if ! cmp -s "$tmp" "$out"; then
        echo "$out is not what scripts/gen-prometheusrule.sh generates from $src:" >&2
        diff -u "$out" "$tmp" >&2 || true
        stale=1
      fi
    done
    if [ "$stale" -ne 0 ]; then
      echo "run: bash scripts/gen-prometheusrule.sh" >&2
      exit 1
    fi
    ;;
  "")
    for out in "$manifest" "$chart"; do
      generate "$out" >"$tmp"
      mkdir -p "$(dirname "$out")"
      cp "$tmp" "$out"
      chmod 644 "$out"
    done
    ;;
  *)
    echo "usage: $0 [--check | --stdout [chart]]" >&2
    exit 2
    ;;
esac
