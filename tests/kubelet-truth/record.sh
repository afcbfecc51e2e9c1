#!/usr/bin/env bash
# Records how a real kubelet (built from upstream source by build-kubelet.sh) behaves for each
# scenario under tests/kubelet-truth/scenarios/. See README.md beside this file.
#
#   record.sh --version v1.37.2 [--out DIR] [-j N] [SCENARIO...]   record (default out:
#                                                    tests/kubelet-truth/recorded/<version>/)
#   record.sh --check --version v1.37.2 [-j N] [SCENARIO...]        re-record into a temporary
#                                                    dir and fail with a diff on any change
# Options: --timeout SECONDS (per scenario start-up wait, default 40), --logs DIR (kubelet
# logs, default /tmp/kubelet-truth-logs/<version>), --kubelet PATH (use this binary instead
# of building one).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

version="" out="" check=0 all=0 jobs=3 timeout=40 logs="" kubelet="" scenarios=()
while (($#)); do
  case $1 in
    --version) version=$2; shift 2 ;;
    --version=*) version=${1#*=}; shift ;;
    --out) out=$2; shift 2 ;;
    --check) check=1; shift ;;
    -j) jobs=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    --kubelet) kubelet=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) scenarios+=("${1%/}"); shift ;;
  esac
done
[[ -n $version ]] || { echo "usage: record.sh [--check] --version vX.Y.Z [--out DIR] [-j N] [SCENARIO...]" >&2; exit 2; }
((EUID == 0)) || { echo "record.sh must run as root (network namespaces, containerd)" >&2; exit 2; }
committed="$here/recorded/$version"
logs=${logs:-/tmp/kubelet-truth-logs/$version}

# ---------------------------------------------------------------- tools
need=()
for pair in containerd:containerd runc:runc openssl:openssl ip:iproute2 unshare:util-linux \
            sysctl:procps pkill:procps mount:mount python3:python3; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  echo "installing: ${need[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

# ---------------------------------------------------------------- scenarios
if ((${#scenarios[@]} == 0)); then
  all=1
  for d in "$here"/scenarios/*/; do [[ -f $d/args ]] && scenarios+=("$(basename "$d")"); done
fi
for s in "${scenarios[@]}"; do
  [[ -f $here/scenarios/$s/args ]] || { echo "no such scenario (no args file): $s" >&2; exit 2; }
done
((${#scenarios[@]})) || { echo "no scenarios" >&2; exit 2; }

if [[ -z $kubelet ]]; then
  kubelet=$("$here/build-kubelet.sh" "$version" | tail -n1)
fi
[[ -x $kubelet ]] || { echo "no kubelet binary: $kubelet" >&2; exit 1; }

# ---------------------------------------------------------------- temp dir, cleanup
base=$(mktemp -d /tmp/kubelet-truth.XXXXXX)
harness=$base/harness
mkdir -p "$harness/containerd" "$base/runs" "$base/out" "$base/pids" "$logs"
containerd_pid="" saved_sysctls=() runners=()
sysctls=(vm.overcommit_memory=1 vm.panic_on_oom=0 kernel.panic=10 kernel.panic_on_oops=1
         kernel.keys.root_maxkeys=1000000 kernel.keys.root_maxbytes=25000000)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e +o pipefail
  # runners first (each kills its own kubelet and fake API server), then anything they left
  for p in "${runners[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
  for f in "$base"/pids/*; do
    [[ -f $f ]] || continue
    p=$(cat "$f"); [[ $p =~ ^[0-9]+$ ]] && kill -KILL -- "-$p" 2>/dev/null || true
  done
  if [[ -n $containerd_pid ]]; then
    kill -TERM "$containerd_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$containerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$containerd_pid" 2>/dev/null || true
  fi
  for kv in "${saved_sysctls[@]}"; do sysctl -q -w "$kv" >/dev/null 2>&1 || true; done
  # the kubelets ran in their own mount namespaces; this only catches what leaked anyway
  grep -F " $base/" /proc/self/mountinfo | awk '{print $5}' | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$base"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- certificates
# One CA; the fake API server's serving cert (SAN 127.0.0.1); the kubelet's client cert for its
# kubeconfig; the recorder's reader cert (CN=truth-reader, O=system:masters).
(
  cd "$harness"
  exec 2>openssl.log
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=kubelet-truth-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" >/dev/null
  sign() { # name subject extensions [newkey]
    openssl req -newkey "${4:-rsa:2048}" -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" >/dev/null
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile "$1.ext" -out "$1.crt" >/dev/null
  }
  sign apiserver "/CN=kubelet-truth-apiserver" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
  sign kubelet-client "/O=system:nodes/CN=system:node:truth-node" "extendedKeyUsage=clientAuth"
  sign reader "/O=system:masters/CN=truth-reader" "extendedKeyUsage=clientAuth"
  # kubelet serving certificates that scenarios may use (tlsCertFile: @HARNESS@/serving.crt)
  sign serving "/CN=truth-node" "subjectAltName=DNS:truth-node,DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
  openssl ecparam -name prime256v1 -out ec.param
  sign serving-ecdsa "/CN=truth-node" "subjectAltName=DNS:truth-node,DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth" ec:ec.param
  rm -f ./*.csr ./*.ext ec.param ca.srl
  chmod 600 ./*.key
  cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters:
- name: truth
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: $harness/ca.crt
users:
- name: kubelet
  user:
    client-certificate: $harness/kubelet-client.crt
    client-key: $harness/kubelet-client.key
contexts:
- name: truth
  context: {cluster: truth, user: kubelet}
current-context: truth
KC
)

# ---------------------------------------------------------------- containerd
cd_dir=$base/containerd-root
mkdir -p "$cd_dir"/{root,state,opt} "$base/cni/bin" "$base/cni/net.d"
cat > "$harness/containerd/config.toml" <<TOML
version = 2
root = "$cd_dir/root"
state = "$cd_dir/state"
[grpc]
  address = "$harness/containerd/containerd.sock"
[ttrpc]
  address = "$harness/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$cd_dir/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    restrict_oom_score_adj = true
    sandbox_image = "registry.k8s.io/pause:3.10"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$base/cni/bin"
      conf_dir = "$base/cni/net.d"
TOML
containerd --config "$harness/containerd/config.toml" >"$base/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 600); do  # up to 60 s: slow under heavy disk I/O
  [[ -S $harness/containerd/containerd.sock ]] && break
  kill -0 "$containerd_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ ! -S $harness/containerd/containerd.sock ]]; then
  echo "containerd did not start:" >&2; tail -20 "$base/containerd.log" >&2; exit 1
fi

# ---------------------------------------------------------------- host sysctls
# The kubelet sets these global sysctls (protectKernelDefaults=false) or refuses to start when
# they differ (protectKernelDefaults=true). Every run starts from the prepared state a hardened
# node has, so results do not depend on which scenario ran first; the old values come back at exit.
for kv in "${sysctls[@]}"; do
  k=${kv%%=*}
  saved_sysctls+=("$k=$(sysctl -n "$k")")
  sysctl -q -w "$kv" >/dev/null
done

# ---------------------------------------------------------------- harness arguments by version
extra=()
# enforceNodeAllocatable must not ask for cgroups we do not let the kubelet have. 1.31+ accept
# "none" with cgroupsPerQOS=false; 1.30 and older reject any non-empty list then, so they get
# the empty value (which a drop-in merge, --config-dir, turns back into the default [pods]).
minor=$(sed -n 's/^v1\.\([0-9]*\)\..*/\1/p' <<<"$version")
if [[ -n $minor ]] && ((minor <= 30)); then
  extra+=(--extra-harness-arg=--enforce-node-allocatable=)
else
  extra+=(--extra-harness-arg=--enforce-node-allocatable=none)
fi
help=$("$kubelet" --help 2>&1 || true)  # (grep -q on a pipe would SIGPIPE it under pipefail)
if grep -q -- '--fail-cgroupv1' <<<"$help"; then
  extra+=(--extra-harness-arg=--fail-cgroupv1=false)
fi

# ---------------------------------------------------------------- record
dest=$base/out
[[ $check == 1 ]] || dest=${out:-$committed}
mkdir -p "$dest"
echo "recording ${#scenarios[@]} scenario(s) with $kubelet ($version) into $dest, $jobs at a time" >&2

outer_ns="$(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/net)"
run_one() {
  local s=$1 work=$base/runs/$1 t0=$SECONDS rc=0
  unshare --net --mount --propagation private --fork --kill-child -- python3 "$here/harness/run_scenario.py" \
    --kubelet "$kubelet" --version "$version" --scenario "$here/scenarios/$s" \
    --harness "$harness" --work "$work" --out "$dest/$s.json" --log "$logs/$s.log" \
    --pidfile-dir "$base/pids" --outer-ns "$outer_ns" --timeout "$timeout" "${extra[@]}" \
    >"$base/runs/$s.runner.log" 2>&1 || rc=$?
  if ((rc)); then
    echo "FAILED $s (runner exit $rc):" >&2; tail -20 "$base/runs/$s.runner.log" >&2
    touch "$base/runs/$s.failed"
  else
    printf '%-50s %3ss  %s\n' "$s" "$((SECONDS - t0))" \
      "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("started" if r["started"] else "exit: " + str(r["exit_error"])[:100])' "$dest/$s.json")" >&2
  fi
}
t_all=$SECONDS
runners=()
running() { local n=0 p; for p in "${runners[@]}"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done; echo "$n"; }
for s in "${scenarios[@]}"; do
  while (($(running) >= jobs)); do sleep 0.2; done
  run_one "$s" &
  runners+=($!)
done
for p in "${runners[@]}"; do wait "$p" || true; done
runners=()
echo "recorded ${#scenarios[@]} scenario(s) in $((SECONDS - t_all))s; kubelet logs in $logs" >&2
failed=$(find "$base/runs" -maxdepth 1 -name '*.failed' | wc -l)
((failed == 0)) || { echo "$failed scenario(s) could not be recorded" >&2; exit 1; }

if ((all && !check)) && [[ $dest == "$committed" ]]; then
  for f in "$committed"/*.json; do
    [[ -f $f ]] || continue
    s=$(basename "$f" .json)
    [[ -d $here/scenarios/$s ]] || { echo "removing the recording of a removed scenario: $f" >&2; rm -f "$f"; }
  done
fi

if ((check)); then
  status=0
  for s in "${scenarios[@]}"; do
    if [[ ! -f $committed/$s.json ]]; then
      echo "no committed recording: $committed/$s.json" >&2; status=1; continue
    fi
    diff -u --label "committed/$version/$s.json" --label "recorded/$version/$s.json" \
      "$committed/$s.json" "$dest/$s.json" || status=1
  done
  if ((all)) && [[ -d $committed ]]; then
    for f in "$committed"/*.json; do
      [[ -f $f ]] || continue
      s=$(basename "$f" .json)
      [[ -d $here/scenarios/$s ]] || { echo "recording without a scenario: $f" >&2; status=1; }
    done
  fi
  if ((status)); then echo "kubelet-truth check FAILED for $version" >&2; exit 1; fi
  echo "kubelet-truth check passed for $version (${#scenarios[@]} scenarios)" >&2
fi
