#!/usr/bin/env bash
# Regenerates support/link/serve-text.ld: the functions `serve` runs, placed together at
# the start of the binary's code so that the pages it never runs stay out of its RSS.
#
#   bench/serve-text-order.sh            # profile, then rewrite support/link/serve-text.ld
#   bench/serve-text-order.sh --check    # profile, then say how far the committed file is
#                                        # from the profile (exit 0 either way)
#
# Why (docs/performance.md, "Hot code first"): the kernel maps file pages 64 KiB at a time
# around each fault (fault-around), so a function `serve` runs makes its whole 64 KiB
# neighbourhood resident. Spread over the binary, the ~2 MB of code `serve` runs made ~95 %
# of the text resident, including `fix`, `check`'s report writers and the API client's
# rarely used paths. build.rs passes this file to the linker (`-Wl,-T,...`): an `INSERT
# BEFORE .text` script (the default layout is kept) that gathers the listed functions into
# one output section, `.text.serve`, ahead of the rest.
#
# How: the release binary, built as the image builds it (static glibc), runs under
# valgrind's callgrind, which records every function executed:
#  A. `serve` on a copy of tests/fixtures/kubeadm-hardened (as bench/metrics-vs-node-exporter.sh
#     runs it): ready, /metrics in both formats, /healthz, /readyz, a drift (the config file
#     made world-writable, then restored), SIGTERM;
#  B. `serve` on this machine's /proc with the stand-in kubelet (`--features standin`, test
#     support) listening: discovery, the live TLS, anonymous and read-only-port probes;
# then every function name seen (mangled) becomes a section pattern: `.text.<name>` with
# the legacy mangling's hash (`17h<16 hex>E`) replaced by `*`, so that the file stays
# valid across builds and releases (a generic function's pattern covers all of its
# instances). A name that no longer exists matches nothing; a function added since the
# last profile simply stays in `.text` (it costs RSS, which the benchmark shows: run this
# again then).
#
# Environment: KS_BIN (profile that binary instead of building one; it must keep its symbol
# table, as the release profile does).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
# copy_fixture, free_port
. "$repo/bench/lib.sh"
out_file="$repo/support/link/serve-text.ld"
mode="${1:-write}"
case "$mode" in write|--check) ;; *) echo "usage: $0 [--check]" >&2; exit 2 ;; esac

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v valgrind >/dev/null || die "valgrind is required (apt-get install valgrind)"

work="$(mktemp -d "${TMPDIR:-/tmp}/ks-text-order.XXXXXX")"
started=()
cleanup() {
  local p
  for p in "${started[@]+"${started[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${started[@]+"${started[@]}"}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -----------------------------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
bin="${KS_BIN:-$target_dir/x86_64-unknown-linux-gnu/release/kubelet-sentinel}"
if [ -z "${KS_BIN:-}" ]; then
  log "cargo build --release (static glibc, as the image)"
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
    --target x86_64-unknown-linux-gnu --bin kubelet-sentinel >&2
fi
log "cargo build --features standin --bin kubelet (the stand-in kubelet, debug)"
cargo build --locked --features standin --bin kubelet >&2
standin="$target_dir/debug/kubelet"
[ -x "$bin" ] && [ -x "$standin" ] || die "build failed"

wait_ready() { # URL PID NAME
  local i
  for i in $(seq 1 600); do
    kill -0 "$2" 2>/dev/null || die "$3 exited; see $work"
    curl -fsS -o /dev/null --max-time 5 "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  die "$3 not ready after 120 s ($1)"
}
OPENMETRICS='Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'
# drive NAME PORT HEALTH_PORT PID: the traffic a node's agent sees (scrapes in both
# formats, the probes, a path that does not exist), once it is ready.
drive() {
  local name="$1" port="$2" hport="$3" pid="$4" i
  wait_ready "http://127.0.0.1:$hport/readyz" "$pid" "$name"
  for i in 1 2 3 4 5; do
    curl -fsS -o /dev/null --max-time 10 "http://127.0.0.1:$port/metrics"
    curl -fsS -o /dev/null --max-time 10 -H "$OPENMETRICS" "http://127.0.0.1:$port/metrics"
    curl -fsS -o /dev/null --max-time 10 "http://127.0.0.1:$hport/healthz"
    curl -fsS -o /dev/null --max-time 10 "http://127.0.0.1:$hport/readyz"
    curl -sS -o /dev/null --max-time 10 "http://127.0.0.1:$port/nope" || true
  done
}

# --- A. the fixture ------------------------------------------------------------------------------
fixture="$repo/tests/fixtures/kubeadm-hardened"
host="$work/host"
copy_fixture "$fixture" "$host"
config="$(find "$host/var/lib/kubelet" -maxdepth 1 -name config.yaml | head -1)"
[ -n "$config" ] || die "no var/lib/kubelet/config.yaml in $fixture"

callgrind=(valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no
  --dump-instr=no --dump-line=no)
# serve_profiled NAME ARGS...: `serve` under callgrind on two fresh loopback ports ($port for
# /metrics, $hport for the probes), ARGS added; its profile $work/NAME.callgrind, its log
# $work/NAME.log, its pid $pid. stop_profiled: SIGTERM, so that callgrind writes the profile.
serve_profiled() {
  local name="$1"
  shift
  port="$(free_port)"
  hport="$(free_port)"
  "${callgrind[@]}" --callgrind-out-file="$work/$name.callgrind" \
    "$bin" --log-format json serve --state-dir "$work/state-$name" \
    --listen-address "127.0.0.1:$port" --health-listen-address "127.0.0.1:$hport" "$@" \
    > "$work/$name.log" 2>&1 &
  pid=$!
  started+=("$pid")
}
stop_profiled() {
  kill -TERM "$pid"
  wait "$pid" || true
}
log "A. serve on $fixture under callgrind"
serve_profiled a --host-root "$host" --interval 1s
drive A "$port" "$hport" "$pid"
mode_was="$(stat -c %a "$config")"
chmod 666 "$config"
sleep 4
drive A "$port" "$hport" "$pid"
chmod "$mode_was" "$config"
sleep 4
drive A "$port" "$hport" "$pid"
stop_profiled

# --- B. live probes on the stand-in kubelet ------------------------------------------------------
kport="$(free_port)"
hzport="$(free_port)"
mkdir -p "$work/standin"
cat > "$work/standin/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $kport
healthzBindAddress: 127.0.0.1
healthzPort: $hzport
readOnlyPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
authorization:
  mode: Webhook
EOF
env -i "$standin" --config "$work/standin/config.yaml" \
  --standin-ready-file "$work/standin/ready.json" 2> "$work/standin/stderr.log" &
kpid=$!
started+=("$kpid")
for _ in $(seq 1 100); do [ -s "$work/standin/ready.json" ] && break; sleep 0.1; done
[ -s "$work/standin/ready.json" ] || die "the stand-in kubelet did not start: $(cat "$work/standin/stderr.log")"
log "B. serve on this machine's /proc, the stand-in kubelet (pid $kpid) on 127.0.0.1:$kport"
serve_profiled b --kubelet-pid "$kpid" --interval 2s
drive B "$port" "$hport" "$pid"
sleep 5
drive B "$port" "$hport" "$pid"
stop_profiled

# --- the patterns ------------------------------------------------------------------------------
# Every `fn=` / `cfn=` name callgrind recorded (mangled; with --compress-strings=no on every
# line), then, per name:
#  - Rust, legacy mangling (`_ZN...17h<hash>E`, maybe `.llvm.<n>`): the hash and suffix
#    become `*`, so the pattern survives rebuilds (a generic function's covers its instances);
#  - Rust, v0 mangling (`_R...`, the standard library's; stable per toolchain): as it is,
#    an LLVM `.<n>` suffix becoming `*`;
#  - both as `.text.<name>` and `.text.unlikely.<name>`: LLVM puts a `#[cold]` function
#    (hashbrown's reserve_rehash, RawVec's growth, Once::call) in the latter;
#  - C (glibc, libm, libgcc, ring's C and assembly): those objects are not built one section per
#    function, so the pattern is the archive member that defines the name, all of its code
#    (`*libc.a:malloc.o(.text .text.*)`); ring's members lose their build-hash prefix.
ring_archive=$(find "$target_dir" -path '*/build/ring-*/out/*' -name 'libring_core*.a' 2>/dev/null | head -n1)
cat "$work"/*.callgrind | sed -n 's/^c\{0,1\}fn=\(.*\)$/\1/p' | LC_ALL=C sort -u > "$work/names"
# shellcheck disable=SC2086 # the glob and the optional archive are meant to split
python3 "$repo/bench/serve-text-patterns.py" "$work/names" "$work/patterns" "$work/members" \
  /usr/lib/x86_64-linux-gnu/libc.a /usr/lib/x86_64-linux-gnu/libm-2.*.a \
  "$(gcc -print-libgcc-file-name)" $ring_archive
n="$(($(wc -l < "$work/patterns") / 2))"
m="$(wc -l < "$work/members")"
[ "$n" -gt 500 ] || die "only $n functions recorded: was the binary stripped? ($work)"
log "$n Rust (one section per function) names, $m C archive members"

{
  cat <<EOF
/* The functions \`kubelet-sentinel serve\` runs, first in the binary's code, in an output
 * section of their own (.text.serve), so that the code serve never runs (fix, check's
 * report writers, rarely used paths of the libraries) stays off the pages it faults in.
 * GENERATED by bench/serve-text-order.sh from a profile of serve ($n function names, $m C
 * archive members); build.rs passes it to the linker. An INSERT script: the linker's
 * default layout is kept. A Rust pattern is a function's section (.text.<mangled name>,
 * or .text.unlikely.<name> for a cold one) with the name's hash replaced by '*'; a C
 * function is placed with its whole archive member. docs/performance.md, "Hot code first". */
SECTIONS
{
  .text.serve :
  {
    *(
EOF
  sed 's/^/      /' "$work/patterns"
  echo '    )'
  sed 's/$/(.text .text.*)/; s/^/    /' "$work/members"
  cat <<'EOF'
  }
}
INSERT BEFORE .text;
EOF
} > "$work/serve-text.ld"

if [ "$mode" = --check ]; then
  if [ -f "$out_file" ]; then
    added="$(comm -13 <(sed 's/^ *//' "$out_file" | LC_ALL=C sort -u) \
      <(cat "$work/patterns" <(sed 's/$/(.text .text.*)/' "$work/members") | LC_ALL=C sort -u) | wc -l)"
    echo "profile: $n names, $m members; patterns in the profile but not in $out_file: $added"
  else
    echo "no $out_file: the profile has $n names, $m members"
  fi
else
  mkdir -p "$(dirname "$out_file")"
  cp "$work/serve-text.ld" "$out_file"
  log "wrote $out_file"
fi
