#!/usr/bin/env bash
# End-to-end drift latency: from a config file replaced by rename (as editors and
# configuration tools do) to /metrics showing the drift. Prints the figures; asserts nothing.
#
# `serve` runs on a copy of examples/node with --interval 1h (so only the change watch can
# trigger the re-evaluation) and the default --watch-interval 1s. Each trial waits a random
# 0-1 s (so the rename lands anywhere in the watch period), renames a new config.yaml over
# the old one (podPidsLimit toggled between its value and 8192; the example node's
# readOnlyPort is decided by a drop-in, so editing it in the file would rightly change
# nothing), and polls /metrics every 5 ms until
# kubelet_sentinel_control_drift{control="pod-pids-limit-set"} appears (the control differs
# from its baseline) or disappears (it matches again): the series is present only while the
# control differs. Readiness: /readyz and kubelet_sentinel_baseline_info on the page.
#
# Environment: RUNS (default 20), WATCH (default 1s, the agent's default).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
watch=${WATCH:-1s}

cargo build --release --bin kubelet-sentinel >/dev/null 2>&1
bin=$PWD/target/release/kubelet-sentinel
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cp -a examples/node "$work/host"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$bin" serve --host-root "$work/host" --state-dir "$work/state" --node-name bench \
  --listen-address "127.0.0.1:$port" --health-listen-address 127.0.0.1:0 --interval 1h --watch-interval "$watch" \
  >"$work/serve.log" 2>&1 &
pid=$!

python3 - "$work/host/var/lib/kubelet/config.yaml" "$port" "$runs" "$watch" <<'PY'
import os, random, re, statistics, sys, time, urllib.request

config, port, runs, watch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
url = f"http://127.0.0.1:{port}"
series = re.compile(r'^kubelet_sentinel_control_drift\{[^}]*control="pod-pids-limit-set"[^}]*\} (\S+)$', re.M)

def get(path):
    with urllib.request.urlopen(url + path, timeout=2) as r:
        return r.status, r.read().decode()

def drift():
    """1.0 while the control's drift series is on the page, else 0.0 (absent)."""
    m = series.search(get("/metrics")[1])
    return 0.0 if m is None else float(m.group(1))

def baseline():
    return "\nkubelet_sentinel_baseline_info{" in get("/metrics")[1]

deadline = time.time() + 30
while True:
    try:
        if get("/readyz")[0] == 200 and baseline() and drift() == 0.0:
            break
    except Exception:
        pass
    if time.time() > deadline:
        sys.exit("the agent did not become ready with a baseline")
    time.sleep(0.05)

original = open(config).read()
opened = re.sub(r"(?m)^podPidsLimit:.*$", "podPidsLimit: 8192", original)
if opened == original:
    sys.exit("no podPidsLimit line in the example node's config.yaml")

latencies = []
for i in range(runs):
    time.sleep(random.random())
    body, want = (opened, 1.0) if i % 2 == 0 else (original, 0.0)
    tmp = config + ".new"
    with open(tmp, "w") as f:
        f.write(body)
    t0 = time.monotonic()
    os.rename(tmp, config)
    while drift() != want:
        if time.monotonic() - t0 > 10:
            sys.exit(f"trial {i}: no drift change within 10 s")
        time.sleep(0.005)
    latencies.append(time.monotonic() - t0)

latencies.sort()
ms = [x * 1000 for x in latencies]
p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
print(f"drift latency, rename -> /metrics, --watch-interval {watch}, {runs} trials:")
print(f"  min {ms[0]:.0f} ms, median {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms, max {ms[-1]:.0f} ms")
PY
echo "agent log (last lines):"
tail -n 3 "$work/serve.log"
