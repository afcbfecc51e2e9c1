#!/usr/bin/env bash
# /metrics under load, memory and evaluation cost: kubelet-sentinel next to Debian's
# prometheus-node-exporter, in ONE run.
#
#   bench/metrics-vs-node-exporter.sh
#
# What it does (everything on 127.0.0.1, every step bounded in time):
#  1. builds the release binary once, by default as the image does (Dockerfile: static
#     glibc, `-C target-feature=+crt-static --target x86_64-unknown-linux-gnu`: what ships
#     is what is measured); BUILD=host measures the dynamically linked host build instead;
#  2. installs `wrk` and `prometheus-node-exporter` with apt-get when they are missing;
#  3. copies tests/fixtures/kubeadm-hardened into a tempdir (symlinks kept, the test
#     harness's links.txt and modes.txt applied) and starts `kubelet-sentinel serve` on
#     it (--interval 30s; EXTRA_ARGS are added to every `serve`) and
#     `prometheus-node-exporter` (default collectors, reading this machine's /proc and /sys);
#  4. waits for readiness (/readyz for kubelet-sentinel, /metrics for node-exporter);
#  5. memory: SCRAPES (10,000) scrapes of each /metrics (one curl, 8 in parallel), then each
#     process's RSS (VmRSS; its anonymous and file-backed parts from smaps_rollup) and peak
#     RSS (VmHWM);
#  6. load: `wrk -t2 -c16 -d10s --latency` against each /metrics, one after the other:
#     requests/s, latency p50/p99/max, page size (Prometheus text 0.0.4 and OpenMetrics),
#     series, RSS/HWM before and after, the 1-minute load average before and after;
#  7. "evaluation running": a second kubelet-sentinel on the same fixture plus 1,000 fake
#     processes with a very short --interval (20ms): its CPU per evaluation while idle
#     (utime+stime from /proc/<pid>/stat over EVAL_WINDOW seconds, divided by the
#     evaluations logged), then the same wrk load while evaluations keep running, and its
#     peak RSS (VmHWM) over all of it: the footprint of an evaluation with 1,000 processes;
#  8. kills everything it started, by pid (trap on EXIT), and removes the tempdir.
#
# Environment overrides: WRK_THREADS (2), WRK_CONNECTIONS (16), WRK_DURATION (10s),
# BUSY_INTERVAL (20ms), FAKE_PROCS (1000), SCRAPES (10000), EVAL_WINDOW (5),
# BUILD (image | host), EXTRA_ARGS (added to `serve`, e.g. "--metrics-control-states all"),
# SKIP_BUILD=1 (use the existing binary), KS_BIN=<path> (measure that binary, no build:
# e.g. an older build for a before/after comparison).
set -euo pipefail

WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-16}"
WRK_DURATION="${WRK_DURATION:-10s}"
BUSY_INTERVAL="${BUSY_INTERVAL:-20ms}"
FAKE_PROCS="${FAKE_PROCS:-1000}"
SCRAPES="${SCRAPES:-10000}"
EVAL_WINDOW="${EVAL_WINDOW:-5}"
BUILD="${BUILD:-image}"
read -r -a extra_args <<< "${EXTRA_ARGS:-}"

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
# copy_fixture, free_port
. "$repo/bench/lib.sh"
fixture="$repo/tests/fixtures/kubeadm-hardened"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- cleanup: only what this script started ------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/ks-metrics-bench.XXXXXX")"
started=()
cleanup() {
  local p
  for p in "${started[@]+"${started[@]}"}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${started[@]+"${started[@]}"}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. build --------------------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$BUILD" in
  # As the Dockerfile builds the image's binary (static glibc; its own target dir, so the
  # host build's artefacts stay as they are).
  image)
    bin="$target_dir/x86_64-unknown-linux-gnu/release/kubelet-sentinel"
    build=(env RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked
      --target x86_64-unknown-linux-gnu --bin kubelet-sentinel) ;;
  host)
    bin="$target_dir/release/kubelet-sentinel"
    build=(cargo build --release --locked --bin kubelet-sentinel) ;;
  *) die "BUILD=$BUILD: image or host" ;;
esac
if [ -n "${KS_BIN:-}" ]; then
  bin="$KS_BIN"
elif [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "${build[*]}"
  timeout 3600 "${build[@]}" >&2
fi
[ -x "$bin" ] || die "$bin not found (build failed?)"

# --- 2. tools ----------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v prometheus-node-exporter >/dev/null || missing+=(prometheus-node-exporter)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  # The Debian package enables a node-exporter service on :9100; we never start it.
  timeout 600 "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    { timeout 600 "${sudo[@]}" apt-get update >&2 &&
      timeout 600 "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
fi
for t in wrk prometheus-node-exporter curl; do
  command -v "$t" >/dev/null || die "$t is required"
done

# --- 3. host trees -----------------------------------------------------------------------
[ -d "$fixture" ] || die "$fixture not found"
# FAKE_PROCS fake processes in DEST/proc: shims, pause, nginx, kernel threads, ...
add_fake_procs() { # DEST COUNT
  local root="$1" n="$2" pid=5000 i=0 d id
  while [ "$i" -lt "$n" ]; do
    pid=$((pid + 1 + RANDOM % 29))
    d="$root/proc/$pid"
    [ -e "$d" ] && continue
    mkdir -p "$d"
    case $((i % 10)) in
      0|1|2)
        id="$(printf '%08x' $RANDOM$RANDOM $RANDOM$RANDOM $RANDOM$RANDOM $RANDOM$RANDOM \
          $RANDOM$RANDOM $RANDOM$RANDOM $RANDOM$RANDOM $RANDOM$RANDOM | cut -c1-64)"
        printf '%s\0' /usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id "$id" \
          -address /run/containerd/containerd.sock > "$d/cmdline"
        ln -s /usr/bin/containerd-shim-runc-v2 "$d/exe" ;;
      3|4) printf '%s\0' /pause > "$d/cmdline"; ln -s /pause "$d/exe" ;;
      5|6) printf '%s\0' 'nginx: worker process' > "$d/cmdline"; ln -s /usr/sbin/nginx "$d/exe" ;;
      7) : > "$d/cmdline" ;; # kernel thread: empty cmdline, no exe
      8) printf '%s\0' /coredns -conf /etc/coredns/Corefile > "$d/cmdline"; ln -s /coredns "$d/exe" ;;
      9) printf '%s\0' java -Xmx2g -XX:+UseG1GC -jar /app/service.jar > "$d/cmdline"
         ln -s /usr/lib/jvm/java-17-openjdk-amd64/bin/java "$d/exe" ;;
    esac
    printf '%s (x) S 1 %s %s 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %s 0 0\n' \
      "$pid" "$pid" "$pid" "$((20000 + pid))" > "$d/stat"
    i=$((i + 1))
  done
}
log "preparing host trees in $work"
copy_fixture "$fixture" "$work/host"
copy_fixture "$fixture" "$work/host-busy"
add_fake_procs "$work/host-busy" "$FAKE_PROCS"

# --- helpers -------------------------------------------------------------------------------
wait_ready() { # URL PID NAME
  local i
  for i in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || die "$3 exited; see its log in $work"
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$3 not ready after 30s ($1)"
}
rss() { # PID -> "VmRSS/VmHWM" in MiB
  awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {printf "%.1f/%.1f", r/1024, h/1024}' "/proc/$1/status"
}
# PID -> "RSS MiB (anon MiB + file MiB), peak MiB": what the kernel counts against the
# process (anonymous: heap, stacks; file-backed: the mapped pages of the binary and its
# shared libraries, clean and reclaimable).
memory() {
  local pid="$1" anon file
  anon="$(awk '/^Anonymous:/ {print $2}' "/proc/$pid/smaps_rollup")"
  file="$(awk '/^Rss:/ {r=$2} /^Anonymous:/ {a=$2} END {print r - a}' "/proc/$pid/smaps_rollup")"
  awk -v a="$anon" -v f="$file" '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2}
    END {printf "%.1f (%.1f + %.1f) | %.1f", r/1024, a/1024, f/1024, h/1024}' "/proc/$pid/status"
}
OPENMETRICS='Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'
body_size() { # URL [extra curl args] -> bytes
  local url="$1"; shift
  curl -fsS --max-time 10 -o /dev/null -w '%{size_download}' "$@" "$url"
}
series() { # URL [extra curl args] -> number of samples
  local url="$1"; shift
  curl -fsS --max-time 10 "$@" "$url" | grep -vc '^#'
}
cpu_ticks() { # PID -> utime + stime, in clock ticks (fields 14 and 15 after the comm)
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
# scrape NAME URL PID: SCRAPES scrapes (8 at a time, one curl), then one memory row.
mem_rows=()
scrape() {
  local name="$1" url="$2" pid="$3" ok before start end
  before="$(memory "$pid")"
  log "$SCRAPES scrapes of $url ($name)"
  start="$(date +%s.%N)"
  ok="$(timeout 600 curl -sS -Z --parallel-max 8 -o /dev/null -w '%{http_code}\n' \
    "$url?scrape=[1-$SCRAPES]" | grep -c '^200$' || true)"
  end="$(date +%s.%N)"
  [ "$ok" = "$SCRAPES" ] || die "$name: $ok of $SCRAPES scrapes answered 200"
  mem_rows+=("$(printf '| %-28s | %s | %s | %6.1f |' "$name" "$before" "$(memory "$pid")" \
    "$(awk -v s="$start" -v e="$end" 'BEGIN {print e - s}')")")
}
# run_wrk NAME URL PID: prints one table row
rows=()
declare -A rps_of=()
run_wrk() {
  local name="$1" url="$2" pid="$3" out before after rps p50 p99 max errs size om n n_om load_before load_after
  size="$(body_size "$url")"
  om="$(body_size "$url" -H "$OPENMETRICS")"
  n="$(series "$url")"
  n_om="$(series "$url" -H "$OPENMETRICS")"
  before="$(rss "$pid")"
  load_before="$(cut -d' ' -f1 /proc/loadavg)"
  out="$work/wrk-${name//[^A-Za-z0-9]/_}.txt"
  log "wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION --latency $url ($name)"
  timeout 120 wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --latency "$url" > "$out"
  after="$(rss "$pid")"
  load_after="$(cut -d' ' -f1 /proc/loadavg)"
  cat "$out" >&2
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
  rps_of[$name]="$rps"
  p50="$(awk '/^ +50%/ {print $2}' "$out")"
  p99="$(awk '/^ +99%/ {print $2}' "$out")"
  max="$(awk '$1 == "Latency" && NF >= 4 {print $4; exit}' "$out")"
  errs="$(awk '/Non-2xx|Socket errors/ {sub(/^ +/, ""); printf "%s; ", $0}' "$out")"
  rows+=("$(printf '| %-28s | %10s | %8s | %8s | %8s | %9s | %9s | %6s | %-13s | %-13s | %-11s | %s |' \
    "$name" "$rps" "$p50" "$p99" "$max" "$size" "$om" "$n/$n_om" "$before" "$after" \
    "$load_before→$load_after" "${errs:-none}")")
}

# --- 4. start ------------------------------------------------------------------------------
ks_port="$(free_port)"
ne_port="$(free_port)"
log "kubelet-sentinel serve on 127.0.0.1:$ks_port"
"$bin" --log-format json serve --state-dir "$work/state" --host-root "$work/host" --listen-address "127.0.0.1:$ks_port" --health-listen-address 127.0.0.1:0 --interval 30s \
  "${extra_args[@]+"${extra_args[@]}"}" > "$work/sentinel.log" 2>&1 &
ks_pid=$!
started+=("$ks_pid")
log "prometheus-node-exporter on 127.0.0.1:$ne_port"
prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" > "$work/node-exporter.log" 2>&1 &
ne_pid=$!
started+=("$ne_pid")
wait_ready "http://127.0.0.1:$ks_port/readyz" "$ks_pid" kubelet-sentinel
wait_ready "http://127.0.0.1:$ne_port/metrics" "$ne_pid" prometheus-node-exporter
sleep 1

# --- 5. memory after SCRAPES scrapes -----------------------------------------------------------
scrape "kubelet-sentinel" "http://127.0.0.1:$ks_port/metrics" "$ks_pid"
scrape "prometheus-node-exporter" "http://127.0.0.1:$ne_port/metrics" "$ne_pid"

# --- 6. load ---------------------------------------------------------------------------------
run_wrk "kubelet-sentinel" "http://127.0.0.1:$ks_port/metrics" "$ks_pid"
run_wrk "prometheus-node-exporter" "http://127.0.0.1:$ne_port/metrics" "$ne_pid"

# --- 7. evaluations running during the load ---------------------------------------------------
busy_port="$(free_port)"
log "kubelet-sentinel serve on 127.0.0.1:$busy_port, $FAKE_PROCS extra processes, --interval $BUSY_INTERVAL"
"$bin" --log-format json serve --state-dir "$work/state-busy" --host-root "$work/host-busy" --listen-address "127.0.0.1:$busy_port" --health-listen-address 127.0.0.1:0 \
  --interval "$BUSY_INTERVAL" "${extra_args[@]+"${extra_args[@]}"}" > "$work/sentinel-busy.log" 2>&1 &
busy_pid=$!
started+=("$busy_pid")
wait_ready "http://127.0.0.1:$busy_port/readyz" "$busy_pid" "kubelet-sentinel (busy)"
sleep 1
# CPU per evaluation, no scrapes: ticks over the window / evaluations logged in it.
evals_0="$(grep -c 'evaluation complete' "$work/sentinel-busy.log" || true)"
ticks_0="$(cpu_ticks "$busy_pid")"
sleep "$EVAL_WINDOW"
ticks_1="$(cpu_ticks "$busy_pid")"
evals_1="$(grep -c 'evaluation complete' "$work/sentinel-busy.log" || true)"
cpu_per_eval="$(awk -v t="$((ticks_1 - ticks_0))" -v n="$((evals_1 - evals_0))" -v hz="$(getconf CLK_TCK)" \
  'BEGIN {if (n > 0) printf "%.2f ms of CPU per evaluation (%d evaluations in the window)", 1000 * t / hz / n, n; else print "no evaluation logged"}')"
evals_before="$(grep -c 'evaluation complete' "$work/sentinel-busy.log" || true)"
run_wrk "kubelet-sentinel, eval/$BUSY_INTERVAL" "http://127.0.0.1:$busy_port/metrics" "$busy_pid"
evals_after="$(grep -c 'evaluation complete' "$work/sentinel-busy.log" || true)"
# duration_ms of every evaluation (JSON log lines); the first one did the full /proc scan.
durations() {
  grep 'evaluation complete' "$work/sentinel-busy.log" | grep -o '"duration_ms":[0-9]*' | cut -d: -f2
}
first_ms="$(durations | head -1)"
busy_memory="$(memory "$busy_pid")"
idle_ms="$(grep 'evaluation complete' "$work/sentinel.log" | grep -o '"duration_ms":[0-9]*' | cut -d: -f2 | tail -1)"
window_stats="$(durations | sed -n "$((evals_before + 1)),${evals_after}p" |
  awk '{s+=$1; if ($1>m) m=$1; n++} END {if (n) printf "mean %.2f ms, max %d ms over %d evaluations", s/n, m, n}')"

# --- report ------------------------------------------------------------------------------------
cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
echo
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); $(nproc) CPUs ($cpu); kernel $(uname -r)"
echo "kubelet-sentinel $("$bin" --version 2>/dev/null | awk '{print $2}') ($(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown); ${KS_BIN:+$KS_BIN, }BUILD=$BUILD; $(stat -c %s "$bin") bytes${EXTRA_ARGS:+; serve $EXTRA_ARGS}); $(prometheus-node-exporter --version 2>&1 | head -1); $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
echo
echo "memory after $SCRAPES scrapes (curl, 8 in parallel); RSS = anonymous + file-backed (smaps_rollup), MiB:"
echo
echo "| target                       | RSS before (anon + file) | peak before | RSS after $SCRAPES scrapes (anon + file) | peak after | seconds |"
echo "|------------------------------|------------------|------:|------------------|------:|-------:|"
printf '%s\n' "${mem_rows[@]}"
echo "| kubelet-sentinel, eval/$BUSY_INTERVAL, $FAKE_PROCS procs | | | $busy_memory | (after the window and the wrk load) |"
echo
echo "load: wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION --latency (no Accept header: Prometheus text 0.0.4, uncompressed); page sizes and series in both formats:"
echo
echo "| target                       |      req/s |      p50 |      p99 |      max | text (B)  | OpenMetrics (B) | series text/OM | RSS/HWM before (MiB) | RSS/HWM after (MiB) | load1       | errors |"
echo "|------------------------------|-----------:|---------:|---------:|---------:|----------:|----------:|-------:|---------------|---------------|-------------|--------|"
printf '%s\n' "${rows[@]}"
echo
awk -v k="${rps_of[kubelet-sentinel]:-0}" -v n="${rps_of[prometheus-node-exporter]:-0}" \
  'BEGIN {if (n > 0) printf "throughput: kubelet-sentinel serves %.0f times node_exporter'"'"'s requests/s\n", k / n}'
echo
echo "evaluation cost per node: fixture (14 processes) ${idle_ms:-?} ms;" \
  "fixture + $FAKE_PROCS processes: first evaluation (full /proc scan) ${first_ms:-?} ms," \
  "then $cpu_per_eval; during the load window: ${window_stats:-no evaluation logged} (log resolution 1 ms)"
