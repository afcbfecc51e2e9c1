#!/usr/bin/env bash
# A simulated fleet on one real Prometheus: the fleet recording rules evaluated live and
# backfilled, and every fleet-dashboard query timed with and without the recorded series.
# Results and method: docs/performance.md, "Fleet scale".
#
#   bench/fleet.sh [--nodes 5000] [--clusters 10] [--hours 2] [--runs 5] [--live-seconds 150]
#                  [--rules alerts/kubelet-sentinel.rules.yaml] [--out DIR] [--keep] [--ci]
#
# 1. Live: bench/fleet/gen.py serves every agent's page (the default exposition, docs/metrics.md as of the
#    end of the simulated window) and kube-state-metrics' kube_node_info; a Prometheus scrapes
#    them every 30 s with the group kubelet-sentinel.fleet.rules of the rules file loaded.
#    Measured: rule evaluation times (/api/v1/rules), head series, RSS and heap per series.
# 2. Backfill: gen.py writes the fleet's history as OpenMetrics with explicit timestamps,
#    30 s apart, one time chunk at a time (sized so that a chunk stays under
#    FLEET_CHUNK_BYTES, 2.5 GB by default; the next chunk is generated while promtool
#    ingests the previous one, and each is deleted once ingested), into a TSDB with
#    `promtool tsdb create-blocks-from openmetrics`. The window ends on a 2 h boundary so that
#    Prometheus compacts the chunks' blocks into ordinary 2 h blocks (ranges 40m,2h).
# 3. Rules: `promtool tsdb create-blocks-from rules` against a Prometheus on that TSDB, one
#    dependency level at a time (a rule that reads a recorded series needs it in the TSDB).
# 4. Truth: the recorded series at the end of the window must equal what the generator knows
#    (bench/fleet/gen.py truth), live and backfilled; every query must return data.
# 5. Queries: bench/fleet/queries.json (each fleet panel as raw and as recorded series) and
#    every query of dashboards/kubelet-sentinel-fleet.json, over /api/v1/query and
#    /api/v1/query_range (the dashboard's default range, step 30 s), --runs times each.
#
# --ci: 200 nodes, 1 h, short live phase, one run, no waiting for compactions; any failed
# check fails the script (scripts/test.sh runs it). Everything lives in a temporary
# directory ($TMPDIR, or FLEET_WORKDIR) removed at exit unless --keep; --out copies the
# results (JSON, report.md) out first. Needs prometheus, promtool (2.42 tested) and python3-yaml.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

nodes=5000 clusters=10 hours=2 runs=5 live=150 keep=0 ci=0 out="" status=0
rules=alerts/kubelet-sentinel.rules.yaml
while [[ $# -gt 0 ]]; do
  case $1 in
    --nodes) nodes=$2; shift ;;
    --clusters) clusters=$2; shift ;;
    --hours) hours=$2; shift ;;
    --runs) runs=$2; shift ;;
    --live-seconds) live=$2; shift ;;
    --rules) rules=$2; shift ;;
    --out) out=$2; shift ;;
    --keep) keep=1 ;;
    --ci) ci=1 nodes=200 hours=1 runs=1 live=65 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for tool in prometheus promtool python3; do
  command -v "$tool" >/dev/null || { echo "fleet.sh needs $tool" >&2; exit 1; }
done
python3 -c 'import yaml' || { echo "fleet.sh needs PyYAML (apt-get install python3-yaml)" >&2; exit 1; }

if [[ -n ${FLEET_WORKDIR:-} ]]; then
  work=$FLEET_WORKDIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/fleetbench.XXXXXX")
fi
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [[ -n $out ]]; then
    mkdir -p "$out"
    cp "$work"/*.json "$work"/*.md "$work"/*.log "$out"/ 2>/dev/null || true
  fi
  [[ $keep == 1 ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "==> fleet: $* ($SECONDS s)" | tee -a "$work/run.log"; }
now() { date +%s.%N; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

step=30
tend=$(( $(date +%s) / 7200 * 7200 ))
t0=$(( tend - hours * 3600 ))
at=$(( tend - step ))   # the last sample of the window
gen=(python3 bench/fleet/gen.py --nodes "$nodes" --clusters "$clusters" --t0 "$t0" --tend "$tend")
log "$nodes nodes in $clusters clusters, $hours h of 30 s samples ending $(date -u -d @"$tend" +%FT%TZ), work dir $work"
"${gen[@]}" summary | tee "$work/fleet.json"
"${gen[@]}" truth >"$work/truth.json"
levels=$(python3 bench/fleet/measure.py rules --src "$rules" --out "$work/rules")
log "rules: $rules, group kubelet-sentinel.fleet.rules, $levels dependency levels"

prom_pid=""
url=""
start_prometheus() {  # <tsdb dir> <config> [flags...]
  local dir=$1 config=$2 port
  shift 2
  port=$(free_port)
  url=http://127.0.0.1:$port
  prometheus --config.file="$config" --storage.tsdb.path="$dir" \
    --web.listen-address="127.0.0.1:$port" --storage.tsdb.retention.time=30d \
    --query.max-samples=1000000000 --query.timeout=10m "$@" >>"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  pids+=("$prom_pid")
  python3 bench/fleet/measure.py wait --url "$url"
}
stop_prometheus() {
  kill "$prom_pid"
  wait "$prom_pid" 2>/dev/null || true
}

# -- 1. live ---------------------------------------------------------------------------
if (( live > 0 )); then
  mkdir -p "$work/sd" "$work/live"
  "${gen[@]}" serve --sd-dir "$work/sd" >"$work/serve.port" 2>>"$work/run.log" &
  serve_pid=$!
  pids+=("$serve_pid")
  for _ in $(seq 300); do [[ -s $work/serve.port ]] && break; sleep 0.2; done
  cat >"$work/live.yaml" <<EOF
global: {scrape_interval: 30s, scrape_timeout: 10s, evaluation_interval: 30s}
rule_files: [$work/rules/rules.yaml]
scrape_configs:
  - job_name: kubelet-sentinel
    file_sd_configs: [{files: [$work/sd/agents.json]}]
  - job_name: kube-state-metrics
    honor_labels: true
    file_sd_configs: [{files: [$work/sd/ksm.json]}]
EOF
  start_prometheus "$work/live" "$work/live.yaml"
  log "live: Prometheus $url scraping $nodes agents' pages"
  python3 bench/fleet/measure.py live --url "$url" --truth "$work/truth.json" \
    --seconds "$live" --out "$work/live.json" || status=1
  stop_prometheus
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
  rm -rf "$work/live" "$work/sd"
fi

# -- 2. backfill -------------------------------------------------------------------------
mkdir -p "$work/tsdb"
# One chunk: at most FLEET_CHUNK_BYTES of OpenMetrics (~28 KB per node and step), a divisor of
# the 2 h block so that each chunk is one block.
max_bytes=${FLEET_CHUNK_BYTES:-2500000000}
chunk_steps=1
for d in 240 120 80 60 48 40 30 24 20 16 15 12 10 8 6 5 4 3 2 1; do
  if (( d * nodes * 28000 <= max_bytes )); then chunk_steps=$d; break; fi
done
chunk=$(( chunk_steps * step ))
log "backfill: $(( (tend - t0 + chunk - 1) / chunk )) chunks of at most $(( chunk / 60 )) min"
gen_s=0 ingest_s=0 samples=0 bytes=0
gen_chunk() {  # <start> <file>
  local s
  s=$(now)
  local e=$(( $1 + chunk ))
  (( e <= tend )) || e=$tend
  "${gen[@]}" chunk --start "$1" --end "$e" --out "$2" >"$2.samples"
  awk -v a="$(now)" -v b="$s" 'BEGIN { printf "%.2f", a - b }' >"$2.seconds"
}
ingest() {  # <file>
  local s
  gen_s=$(awk -v a="$gen_s" -v b="$(cat "$1.seconds")" 'BEGIN { printf "%.2f", a + b }')
  samples=$(( samples + $(cat "$1.samples") ))
  bytes=$(( bytes + $(stat -c %s "$1") ))
  s=$(now)
  promtool tsdb create-blocks-from openmetrics -q "$1" "$work/tsdb" >/dev/null
  ingest_s=$(awk -v a="$ingest_s" -v b="$(now)" -v c="$s" 'BEGIN { printf "%.2f", a + b - c }')
  rm -f "$1" "$1.samples" "$1.seconds"
}
backfill_start=$SECONDS
prev=""
for (( s = t0; s < tend; s += chunk )); do
  f=$work/chunk-$s.om
  gen_chunk "$s" "$f" &
  g=$!
  [[ -z $prev ]] || ingest "$prev"
  wait "$g"
  prev=$f
done
ingest "$prev"
# Two one-sample blocks so that Prometheus compacts the chunks' blocks into 2 h blocks
# (tsdb/compact.go, LeveledCompactor.plan and selectDirs: the newest block is never planned,
# and the blocks of a 2 h window are picked when they span it exactly, max time included):
# one ending the last window 1 ms before its end, one after it to be "the newest".
for end in "$(( tend - 1 )).999" "$tend"; do
  printf 'fleet_bench_window_end 1 %s\n# EOF\n' "$end" >"$work/end.om"
  promtool tsdb create-blocks-from openmetrics -q "$work/end.om" "$work/tsdb" >/dev/null
done
backfill_s=$(( SECONDS - backfill_start ))
log "backfill: $samples samples, $bytes bytes of OpenMetrics, generation ${gen_s} s, promtool ${ingest_s} s, wall ${backfill_s} s"

printf 'global: {evaluation_interval: 30s}\n' >"$work/backfill.yaml"
# Backfilled series have no staleness markers: where a series ends (a status change, an
# agent going down), Prometheus would keep answering its last sample for the 5 min lookback,
# and every recording-rule level built on it 5 min more (a node's pool from
# kubelet_sentinel_node_info and from its status counts both alive: "duplicate series" in a
# group_left). Samples are 30 s apart, so a lookback just under 30 s sees at most one sample
# of a series, as a staleness marker would end it at the next one, while every rule level
# still sees the level below (promtool evaluates each group at its own offset in the 30 s,
# as the rule manager does: Group.EvalTimestamp). The queries (step 5) run with the default
# 5 min: the last 15 min of the window have no change.
blocks=(--storage.tsdb.min-block-duration=40m --storage.tsdb.max-block-duration=2h)
rules_lookback=(--query.lookback-delta=29999ms)
settle=(--settle)
(( ci == 0 )) || settle=()
start_prometheus "$work/tsdb" "$work/backfill.yaml" "${blocks[@]}" "${rules_lookback[@]}"
python3 bench/fleet/measure.py wait --url "$url" --dir "$work/tsdb" --timeout 1800 "${settle[@]}"
raw_bytes=$(du -sb --exclude=wal --exclude=chunks_head "$work/tsdb" | cut -f1)

# -- 3. recording rules ----------------------------------------------------------------
rules_start=$SECONDS
for (( k = 0; k < levels; k++ )); do
  promtool tsdb create-blocks-from rules -q --url "$url" --start "$t0" --end "$tend" \
    --eval-interval 30s --output-dir "$work/rules-$k" "$work/rules/level-$k.yaml" >/dev/null
  mv "$work/rules-$k"/*/ "$work/tsdb/"
  stop_prometheus
  if (( k + 1 < levels )); then
    start_prometheus "$work/tsdb" "$work/backfill.yaml" "${blocks[@]}" "${rules_lookback[@]}"
  else
    start_prometheus "$work/tsdb" "$work/backfill.yaml" "${blocks[@]}"
  fi
done
rules_s=$(( SECONDS - rules_start ))
python3 bench/fleet/measure.py wait --url "$url" --dir "$work/tsdb" --timeout 1800 "${settle[@]}"
all_bytes=$(du -sb --exclude=wal --exclude=chunks_head "$work/tsdb" | cut -f1)
log "rules backfilled in ${rules_s} s; TSDB $raw_bytes bytes raw, $all_bytes with the recorded series"

# -- 4. truth, 5. queries ------------------------------------------------------------------

python3 bench/fleet/measure.py check --url "$url" --at "$at" --truth "$work/truth.json" || status=1
strict=()
(( ci == 0 )) || strict=(--strict)
python3 bench/fleet/measure.py queries --url "$url" --at "$at" \
  --dashboard dashboards/kubelet-sentinel-fleet.json --pairs bench/fleet/queries.json \
  --runs "$runs" --raw-range-runs "$(( runs < 3 ? runs : 3 ))" "${strict[@]}" \
  --rules "$work/rules/rules.yaml" \
  --out "$work/queries.json" || status=1
curl -s "$url/api/v1/query" --data-urlencode 'query=count({__name__=~".+"})' \
  --data-urlencode "time=$at" >"$work/series.json"
curl -s "$url/metrics" | grep -E '^(process_resident_memory_bytes|go_memstats_heap_inuse_bytes|prometheus_tsdb_blocks_loaded) ' >"$work/backfill-prometheus.txt" || true
cat >"$work/backfill.json" <<EOF
{"nodes": $nodes, "clusters": $clusters, "hours": $hours, "t0": $t0, "tend": $tend,
 "samples": $samples, "openmetrics_bytes": $bytes, "chunk_minutes": $(( chunk / 60 )),
 "generation_seconds": $gen_s, "promtool_seconds": $ingest_s, "backfill_wall_seconds": $backfill_s,
 "rules_backfill_seconds": $rules_s, "rule_levels": $levels,
 "tsdb_bytes_raw": $raw_bytes, "tsdb_bytes_with_rules": $all_bytes,
 "series_at_end": $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["result"][0]["value"][1])' "$work/series.json")}
EOF
{
  echo "Fleet: $(cat "$work/fleet.json")"
  echo "Backfill: $(cat "$work/backfill.json")"
  echo "Backfill Prometheus after the queries: $(tr '\n' ' ' <"$work/backfill-prometheus.txt")"
  echo "Machine: $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $(prometheus --version 2>&1 | head -n1)"
  echo
  live_arg=()
  [[ ! -f $work/live.json ]] || live_arg=(--live "$work/live.json")
  python3 bench/fleet/measure.py report --queries "$work/queries.json" "${live_arg[@]}"
} >"$work/report.md"
cat "$work/report.md"
stop_prometheus
log "done (status $status)"
exit "$status"
