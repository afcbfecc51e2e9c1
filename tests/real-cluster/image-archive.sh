#!/usr/bin/env bash
# Dev/CI stand-in for `scripts/build-image.sh --out DIR` while that script is not there:
# builds the shipped image exactly as scripts/check-image.sh does (the static release binary
# in target/image, then buildah on the Dockerfile's final stage with the build stage replaced
# by --build-context, --pull=never) and writes DIR/kubelet-sentinel.oci.tar, an OCI archive
# tagged localhost/kubelet-sentinel:<crate version>. Prints the archive's path.
#
#   tests/real-cluster/image-archive.sh DIR
#
# When scripts/build-image.sh exists, it is used instead (same output path).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: image-archive.sh DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [[ -x scripts/build-image.sh || -f scripts/build-image.sh ]]; then
  bash scripts/build-image.sh --out "$out" >&2
  echo "$out/kubelet-sentinel.oci.tar"
  exit 0
fi
TRIPLE=x86_64-unknown-linux-gnu
BIN=target/image/$TRIPLE/release/kubelet-sentinel
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked --target "$TRIPLE" --target-dir target/image --bin kubelet-sentinel >&2
work=$(mktemp -d "${TMPDIR:-/tmp}/image-archive.XXXXXX")
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
cleanup() { set +e; buildah "${store[@]}" rmi --all --force >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/build/out"
cp "$BIN" "$work/build/out/kubelet-sentinel"
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
image=localhost/kubelet-sentinel:$version
buildah "${store[@]}" build --pull=never --build-context build="$work/build" \
  --build-arg REVISION="$revision" --target image -f Dockerfile -t "$image" . >&2
rm -f "$out/kubelet-sentinel.oci.tar"
buildah "${store[@]}" push "$image" "oci-archive:$out/kubelet-sentinel.oci.tar:$image" >&2
echo "$out/kubelet-sentinel.oci.tar"
