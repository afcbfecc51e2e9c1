#!/usr/bin/env python3
"""Both shapes of kubelet_sentinel_control_status answer alike, through a real Prometheus.

The agent exports kubelet_sentinel_control_status in two shapes: by default the current
status of each control only (one series, value 1; a status change ends it and starts
another), and with `--metrics-control-states all` the full StateSet (every status of every
control, the current one 1, the others 0). Every alert rule, recording rule and node
dashboard query must mean the same in both (they select `== 1` or sum; tests/alerts_contract.rs
and tests/dashboards_contract.rs check how they are written). This script checks what they
answer:

  1. two agents watch the same host tree (a copy of tests/fixtures/kubeadm-hardened, edited
     after both took their baseline so that controls fail, regress and drift), one in each
     shape, under two node names; Prometheus (Debian's package) scrapes both;
  2. their pages differ as the shapes say: the same controls, four series per control and
     0-valued ones only with `all`;
  3. every rule of alerts/kubelet-sentinel.rules.yaml and every node dashboard query that
     reads kubelet_sentinel_control_status or kubelet_sentinel_control_drift answers the
     same for both nodes (series labels other than node/instance, and values), and enough
     of them answer something for the comparison to mean anything.

Reuses the pipeline test's helpers (scripts/pipeline-test.py: agent binary, fixture copy,
Prometheus queries, dashboard query list and Grafana variable substitution). Every process
started here is stopped by its pid. Needs the debug binaries (`cargo build --features
standin --bins`) and the Debian package prometheus.
"""

import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no scripts/__pycache__ from loading the pipeline test
_spec = importlib.util.spec_from_file_location("pipeline", os.path.join(ROOT, "scripts", "pipeline-test.py"))
pt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pt)

ACTIVE, ALL = "states-active", "states-all"
SHAPED = ("kubelet_sentinel_control_status", "kubelet_sentinel_control_drift")
RULES = os.path.join(ROOT, "alerts", "kubelet-sentinel.rules.yaml")


def log(msg):
    print(f"control-states: {msg}", flush=True)


def rule_exprs():
    """(name, expr) of every rule: the source writes each `expr: |` as a block scalar."""
    lines = open(RULES).read().split("\n")
    names = [m.group(1) for m in (re.match(r"^\s*- (?:alert|record): (\S+)\s*$", l) for l in lines) if m]
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)expr:(.*)$", line)
        if not m:
            continue
        if m.group(2).strip() != "|":
            pt.fail(f"{RULES}:{i + 1}: an expr not written as a `|` block: {line.strip()}")
        indent, body = len(m.group(1)), []
        for nxt in lines[i + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt)
        out.append("\n".join(body).strip())
    if len(out) != len(names):
        pt.fail(f"{RULES}: {len(names)} rules but {len(out)} exprs read")
    return list(zip(names, out))


def by_node(result):
    """Query result -> {node: sorted [(labels without node/instance, value)]}."""
    out = {}
    for s in result:
        labels = {k: v for k, v in s["metric"].items() if k not in ("node", "instance")}
        out.setdefault(s["metric"].get("node"), []).append((json.dumps(labels, sort_keys=True), s["value"][1]))
    return {n: sorted(v) for n, v in out.items()}


def agent(name, work, root, states):
    port = pt.free_port()
    p = pt.start(name, [pt.AGENT, "serve", "--host-root", root, "--node-name", name,
                        "--listen-address", f"127.0.0.1:{port}", "--health-listen-address", "127.0.0.1:0",
                        "--state-dir", os.path.join(work, f"state-{name}"), "--interval", "2s",
                        "--watch-interval", "200ms", "--live-probes", "off",
                        "--metrics-control-states", states], work)
    p.port = port
    return p


def page(a):
    return pt.http(f"http://127.0.0.1:{a.port}/metrics")[1]


def run(work):
    root = pt.fixture_copy("kubeadm-hardened", work)
    agents = {ACTIVE: agent(ACTIVE, work, root, "active"), ALL: agent(ALL, work, root, "all")}
    for n, a in agents.items():
        pt.wait_for(f"{n}'s baseline", lambda a=a: ("kubelet_sentinel_baseline_info" in page(a), None), 30)
    # The edit of the pipeline test: a critical control fails (and regresses), a medium one
    # regresses, another drifts and still passes.
    cfg = os.path.join(root, "var", "lib", "kubelet", "config.yaml")
    text = open(cfg).read()
    for key, value in [("readOnlyPort", "10255"), ("protectKernelDefaults", "false"), ("podPidsLimit", "2048")]:
        text, n = re.subn(rf"(?m)^{key}:.*$", f"{key}: {value}", text)
        if n != 1:
            pt.fail(f"the fixture's config.yaml has no {key} line")
    with open(cfg + ".new", "w") as f:
        f.write(text)
    os.rename(cfg + ".new", cfg)
    drifted = re.compile(r'^kubelet_sentinel_control_drift\{[^}]*control="protect-kernel-defaults"[^}]*kind="regressed"', re.M)
    for n, a in agents.items():
        pt.wait_for(f"{n} to see the edit", lambda a=a: (bool(drifted.search(page(a))), None), 30)

    # 2. The two pages.
    status = re.compile(r'^kubelet_sentinel_control_status\{([^}]*)\} (\S+)$', re.M)
    shapes = {}
    for n, a in agents.items():
        series = status.findall(page(a))
        controls = {re.search(r'control="([^"]+)"', labels).group(1) for labels, _ in series}
        zeros = sum(1 for _, v in series if float(v) == 0)
        shapes[n] = (len(series), len(controls), zeros)
    (na, ca, za), (nl, cl, zl) = shapes[ACTIVE], shapes[ALL]
    if not (ca == cl and na == ca and za == 0 and nl == 4 * cl and zl == 3 * cl):
        pt.fail(f"pages: (series, controls, 0-valued) active {shapes[ACTIVE]}, all {shapes[ALL]}")
    log(f"pages: {ca} controls; active {na} control_status series, all {nl} ({zl} of them 0)")

    # Prometheus, scraping both.
    port = pt.free_port()
    conf = os.path.join(work, "prometheus.yml")
    targets = ", ".join(f'"127.0.0.1:{a.port}"' for a in agents.values())
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n"
                "scrape_configs:\n  - job_name: kubelet-sentinel\n"
                f"    static_configs:\n      - targets: [{targets}]\n")
    pt.start("prometheus", [pt.PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={work}/prom",
                            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], work)
    prom = f"http://127.0.0.1:{port}"
    # Five scrapes of each target (the edit was seen before the first).
    pt.wait_for("five scrapes of each agent", lambda: (
        len(pt.prom_query(prom, 'count_over_time(up{job="kubelet-sentinel"}[1m]) >= 5')["result"]) == 2, None))

    # 3. Rules and node dashboard queries: the same answer for both nodes.
    checks = [(f"rule {name}", expr, None) for name, expr in rule_exprs()]
    checks += [(f"{f} [{title}]", expr, True) for f, title, expr in pt.dashboard_queries() if "node" in f]
    checks = [(what, expr, per_node) for what, expr, per_node in checks if any(m in expr for m in SHAPED)]
    compared = answered = 0
    problems = []
    for what, expr, per_node in checks:
        if per_node:
            got = {}
            for n in agents:
                r = by_node(pt.prom_query(prom, pt.substitute(expr, n))["result"])
                got[n] = [x for v in r.values() for x in v]
        else:
            r = by_node(pt.prom_query(prom, expr)["result"])
            if None in r:
                continue  # aggregated over nodes: nothing to compare per node
            got = {n: r.get(n, []) for n in agents}
        compared += 1
        answered += bool(got[ACTIVE] or got[ALL])
        if got[ACTIVE] != got[ALL]:
            problems.append(f"  {what}: {expr}\n    active: {got[ACTIVE]}\n    all:    {got[ALL]}")
    if problems:
        pt.fail("answers differ between the two shapes:\n" + "\n".join(problems))
    if compared < 15 or answered < 8:
        pt.fail(f"only {compared} expressions compared, {answered} with an answer: the check proves little")
    log(f"{compared} rule and node dashboard expressions read control status or drift: "
        f"the same answer in both shapes ({answered} of them non-empty)")


def main():
    if not os.path.exists(pt.PROMETHEUS):
        pt.fail(f"{pt.PROMETHEUS} is missing (Debian package prometheus)")
    pt.ensure_binaries()
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="ks-control-states-")
    try:
        run(work)
    finally:
        for _, p in reversed(pt.procs):
            pt.stop(p)
        shutil.rmtree(work, ignore_errors=True)
    log(f"passed in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    sys.exit(main())
