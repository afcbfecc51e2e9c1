#!/usr/bin/env bash
# Time of one evaluation *with all live probes* against a local kubelet (the test-support
# stand-in, hardened config, on loopback). Prints the figures; asserts nothing.
#
#  - `check` runs a full evaluation every time: discovery, files, TLS handshake, the
#    protocol scan (4 hellos), the TLS 1.2 suite scan (27 hellos), anonymous GET /pods,
#    the read-only port, and `kubelet --version`.
#  - `serve` reuses the protocol/suite scans for the same kubelet process (10 min), so its
#    steady-state evaluation is read from kubelet_sentinel_evaluation_duration_seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}

cargo build --release --features standin --bin kubelet --bin kubelet-sentinel >/dev/null 2>&1
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port=$(free_port); healthz=$(free_port); listen=$(free_port)
cat > "$work/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $port
readOnlyPort: 0
healthzPort: $healthz
healthzBindAddress: 127.0.0.1
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}}
authorization: {mode: Webhook}
tlsMinVersion: VersionTLS12
tlsCipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]
YAML
"$bin/kubelet" --config="$work/config.yaml" --standin-ready-file="$work/ready.json" >"$work/kubelet.log" 2>&1 &
kpid=$!; pids+=("$kpid")
for _ in $(seq 100); do [ -s "$work/ready.json" ] && break; sleep 0.05; done

echo "== check (full evaluation incl. all probes and --version), $runs runs"
durs=()
for _ in $(seq "$runs"); do
  d=$("$bin/kubelet-sentinel" check --kubelet-pid "$kpid" --format json --fail-on never \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["duration_seconds"])')
  durs+=("$d")
done
printf '%s\n' "${durs[@]}" | python3 -c '
import sys; v=sorted(float(x)*1000 for x in sys.stdin)
print(f"  evaluation duration ms: min {v[0]:.1f}  median {v[len(v)//2]:.1f}  p90 {v[int(len(v)*0.9)-1]:.1f}  max {v[-1]:.1f}")'

echo "== serve steady state (scans cached), interval 1s"
"$bin/kubelet-sentinel" serve --state-dir "$work/state" --kubelet-pid "$kpid" --listen-address "127.0.0.1:$listen" --health-listen-address 127.0.0.1:0 --interval 1s --metrics-probe-durations >"$work/serve.log" 2>&1 &
pids+=("$!")
sleep 12
curl -s "http://127.0.0.1:$listen/metrics" | grep -E '^kubelet_sentinel_(evaluation_duration_seconds|probe_duration_seconds\{[^}]*probe="(tls_handshake|tls_versions|tls12_suites|anonymous|read_only_port|version|listeners)")' \
  | sed 's/^/  /'
