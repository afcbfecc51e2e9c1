#!/usr/bin/env bash
# Builds the release image reproducibly, without a Docker daemon and without pulling anything.
#
#   scripts/build-image.sh [--out DIR]        (DIR defaults to target/image/out)
#
# writes into DIR:
#   kubelet-sentinel           the static binary, built with `cargo auditable` (its dependency
#                              list, from Cargo.lock, is embedded in the `.dep-v0` section, which
#                              `cargo audit bin`, trivy, grype and syft read)
#   kubelet-sentinel.cdx.json  a CycloneDX 1.5 SBOM of the crate (cargo-cyclonedx)
#   kubelet-sentinel.oci.tar   the image as an OCI archive, tagged
#                              localhost/kubelet-sentinel:<crate version>
#                              (`ctr -n k8s.io images import`, `podman load`, `skopeo copy`)
#   kubelet-sentinel.digest    the image's manifest digest (sha256:...), also printed
#   SHA256SUMS                 of the three files above
#
# Reproducible: the same commit, toolchain (rust-toolchain of CI, rustc 1.95) and buildah
# version give the same binary and the same image digest, on any machine and in any
# directory. SOURCE_DATE_EPOCH is the last commit's time (unless already set): buildah
# --timestamp stamps the image's creation time and every file in its layer with it and
# cargo-cyclonedx writes it as the SBOM's timestamp (and drops its random serial number).
# Paths of the checkout and of CARGO_HOME are remapped out of the binary. docs/image.md
# says what is and is not proved.
#
# Tools: buildah (Debian), cargo-auditable and cargo-cyclonedx (crates.io, versions pinned
# below, `cargo install --locked`) cached under $KUBELET_SENTINEL_TOOLS
# (default /var/cache/kubelet-sentinel/tools/<name>-<version>): delete a directory there to
# rebuild that tool. Needs root for apt-get and buildah. Exits non-zero on any failure.
set -euo pipefail
start=$SECONDS

CARGO_AUDITABLE_VERSION=0.7.7
CARGO_CYCLONEDX_VERSION=0.5.9
TOOLS=${KUBELET_SENTINEL_TOOLS:-/var/cache/kubelet-sentinel/tools}
TRIPLE=x86_64-unknown-linux-gnu
TARGET_DIR=target/image
OUT=target/image/out

fail() { echo "build-image: FAIL: $*" >&2; exit 1; }
usage() { echo "usage: $0 [--out DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
    --out=*) OUT=${1#--out=}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
  esac
done
# --out is relative to the caller's directory; the rest to the repository's root.
[ "$OUT" = target/image/out ] || { mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd); }
cd "$(dirname "$0")/.."

# ---- tools ---------------------------------------------------------------------------------
if ! command -v buildah >/dev/null 2>&1; then
  echo "==> installing buildah (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends buildah >/dev/null
fi
buildah build --help 2>/dev/null | grep -q -- '--build-context' \
  || fail "$(buildah --version) has no --build-context (buildah 1.27 or later is needed)"

# cargo_tool NAME VERSION: the tool's bin directory, installed from crates.io on first use.
# The build goes into a temporary target directory (never the project's CARGO_TARGET_DIR)
# and the tool into a temporary root renamed into place, so an interrupted install leaves
# nothing that looks installed.
cargo_tool() {
  local name=$1 version=$2 dir="$TOOLS/$1-$2"
  if [ ! -x "$dir/bin/$name" ]; then
    echo "==> installing $name $version from crates.io into $dir" >&2
    mkdir -p "$TOOLS"
    local tmp
    tmp=$(mktemp -d "$TOOLS/.$name-$version.XXXXXX")
    env -u CARGO_TARGET_DIR cargo install --quiet --locked --version "$version" \
      --root "$tmp/root" --target-dir "$tmp/build" "$name" >&2 \
      || { rm -rf "$tmp"; fail "cargo install $name $version"; }
    rm -rf "$dir" && mv "$tmp/root" "$dir" && rm -rf "$tmp"
  fi
  echo "$dir/bin"
}
PATH="$(cargo_tool cargo-auditable "$CARGO_AUDITABLE_VERSION"):$(cargo_tool cargo-cyclonedx "$CARGO_CYCLONEDX_VERSION"):$PATH"
export PATH

# ---- inputs that make it reproducible ------------------------------------------------------
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "==> warning: uncommitted changes; the revision is recorded as $revision-dirty" >&2
  revision="$revision-dirty"
fi
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
export SOURCE_DATE_EPOCH
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
IMAGE=localhost/kubelet-sentinel:$version
cargo_home=${CARGO_HOME:-$HOME/.cargo}

# ---- binary --------------------------------------------------------------------------------
# Static glibc (crt-static, no PT_INTERP: no loader, libc or NSS at run time), exactly as
# the Dockerfile's build stage builds it. RUSTFLAGS reach only the target's crates (there is
# a --target), not build scripts or proc macros. --remap-path-prefix keeps the checkout's
# and the registry's paths (panic locations, debug info) out of the binary; the Dockerfile
# maps its /src and /usr/local/cargo to the same /src and /cargo.
# SOURCE_DATE_EPOCH is kept from cargo: cc-rs lists it as a rerun trigger (GCC reads it for
# __DATE__/__TIME__, which no C source in the tree uses), so a new commit's time would rebuild
# ring, psm and everything above them for nothing.
echo "==> cargo auditable build (static glibc, $TARGET_DIR, revision $revision)"
env -u SOURCE_DATE_EPOCH KUBELET_SENTINEL_REVISION="$revision" \
  RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$PWD=/src --remap-path-prefix=$cargo_home=/cargo" \
  cargo auditable build --release --locked --target "$TRIPLE" --target-dir "$TARGET_DIR" \
  --bin kubelet-sentinel
BIN="$TARGET_DIR/$TRIPLE/release/kubelet-sentinel"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/kubelet-sentinel" "$OUT/kubelet-sentinel.cdx.json" "$OUT/kubelet-sentinel.oci.tar" \
  "$OUT/kubelet-sentinel.digest" "$OUT/SHA256SUMS"
cp "$BIN" "$OUT/kubelet-sentinel"

# ---- SBOM ----------------------------------------------------------------------------------
# The crate with its whole dependency graph for the image's platform and features (no
# default features, not `standin`; dev-dependencies are never listed; build-dependencies are,
# as in the auditable data). cargo-cyclonedx writes next to Cargo.toml; it is moved out.
echo "==> cargo cyclonedx (CycloneDX 1.5 JSON)"
cargo cyclonedx --quiet --format json --spec-version 1.5 --all --target "$TRIPLE" \
  --override-filename kubelet-sentinel.cdx
# Its bom-refs name the crate by cargo's package id, which holds the checkout's absolute path
# (path+file:///work/...#kubelet-sentinel@0.1.0): that path is mapped to /src, as in the binary.
python3 - "$PWD" kubelet-sentinel.cdx.json "$OUT/kubelet-sentinel.cdx.json" <<'EOF'
import sys
src, generated, out = sys.argv[1:]
text = open(generated, encoding="utf-8").read().replace(f"path+file://{src}#", "path+file:///src#")
open(out, "w", encoding="utf-8").write(text)
EOF
rm kubelet-sentinel.cdx.json

# ---- image ---------------------------------------------------------------------------------
# A private, throw-away buildah store (vfs driver): nothing from an earlier build can leak
# in, and nothing is left behind.
work=$(mktemp -d "${TMPDIR:-/tmp}/build-image.XXXXXX")
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
bah() { buildah "${store[@]}" "$@"; }
cleanup() {
  set +e
  bah rmi --all --force >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# The build context standing in for the Dockerfile's build stage (see the Dockerfile): the
# binary at the path the final stage copies from. --identity-label=false leaves out
# io.buildah.version; --timestamp fixes every time in the image (config, history, files).
mkdir -p "$work/build/out"
cp "$BIN" "$work/build/out/kubelet-sentinel"
echo "==> buildah build ($IMAGE, SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH)"
bah build --quiet --pull=never --build-context build="$work/build" --build-arg REVISION="$revision" \
  --timestamp "$SOURCE_DATE_EPOCH" --identity-label=false \
  --target image -f Dockerfile -t "$IMAGE" . >"$work/build.log" 2>&1 \
  || { sed 's/^/    /' "$work/build.log" >&2; fail "buildah build"; }
grep -q 'STEP .*FROM docker.io/library/rust' "$work/build.log" \
  && fail "buildah ran the build stage; the build context did not replace it"

# gzip-compressed layers (what a registry push makes too): the manifest written here is the
# one `ctr images import` records and a push to a registry would keep.
bah push --quiet --format oci --compression-format gzip --digestfile "$work/digest" \
  "$IMAGE" "oci-archive:$OUT/kubelet-sentinel.oci.tar:$IMAGE"
digest=$(cat "$work/digest")
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "buildah push wrote no digest ($digest)"
echo "$digest" >"$OUT/kubelet-sentinel.digest"
(cd "$OUT" && sha256sum kubelet-sentinel kubelet-sentinel.cdx.json kubelet-sentinel.oci.tar >SHA256SUMS)

bin_sha=$(sha256sum "$OUT/kubelet-sentinel" | cut -d' ' -f1)
echo "==> $OUT"
echo "    image   $IMAGE@$digest ($(stat -c %s "$OUT/kubelet-sentinel.oci.tar") bytes as OCI archive)"
echo "    binary  sha256:$bin_sha ($(stat -c %s "$OUT/kubelet-sentinel") bytes), revision $revision"
echo "    sbom    kubelet-sentinel.cdx.json ($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["components"]))' "$OUT/kubelet-sentinel.cdx.json") components)"
echo "    built with $(rustc --version), cargo-auditable $CARGO_AUDITABLE_VERSION, cargo-cyclonedx $CARGO_CYCLONEDX_VERSION, $(buildah --version)"
echo "==> build-image.sh took $((SECONDS - start)) s"
