#!/usr/bin/env python3
"""Generates alerts/tests/fleet_test.yaml: promtool unit tests of the fleet groups of
alerts/kubelet-sentinel.rules.yaml (kubelet-sentinel.fleet.rules, kubelet-sentinel.fleet)
on fleet-shaped input series.

The fleet (fleet() below) is three groups of nodes: clusters prod-eu (pools "system" and
"workers") and prod-us (pool "general" and nodes without a pool label), and a lab with no
`cluster` label at all (a Prometheus that attaches none). 57 agents, most of them
compliant; a critical control failing on 5 nodes of prod-eu (the fleet alert fires,
critical) and a medium one on 4 (it does not); a medium one on 6 nodes of prod-us (it
fires, with a sample of the first 5) and a critical one on 4 (it does not); a high one on
5 lab nodes (it fires without a `cluster` label); unknown and not_applicable controls;
control drift (changed, regressed) and configuration drift; kubelet version skew within a
pool and across clusters; a node whose agent finds no kubelet; a node whose agent has no
node_info yet; nodes kube-state-metrics lists that no agent reports (one with no pod, one
whose agent target is down) and a Windows node it lists that is not missing.

The expected value of every recorded series is computed here, from the fleet table, by a
second implementation of each rule's meaning (plain Python over the table, not PromQL), and
the same expectations are asserted twice: with the exposition of the default
`--metrics-control-states active` (one series per control, value 1) and with `all` (the
full StateSet, every status 0/1). A third case checks staleness: a node whose control
goes from fail to pass leaves the fail count at the next evaluation in both modes.

Usage: scripts/gen-fleet-test.py           write alerts/tests/fleet_test.yaml
       scripts/gen-fleet-test.py --check   exit 1 when the committed file is stale
Standard library only; the output is plain YAML with JSON-quoted strings.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "alerts", "tests", "fleet_test.yaml")
RUNBOOKS = "https://github.com/kubelet-sentinel/kubelet-sentinel/blob/main/docs/runbooks/"

STATUSES = ["pass", "fail", "unknown", "not_applicable"]
# control -> (family, severity), as in the catalogue (docs/controls.md).
CONTROLS = {
    "anonymous-auth-disabled": ("authn_authz", "critical"),
    "read-only-port-disabled": ("api_access", "critical"),
    "kubeconfig-permissions": ("files", "high"),
    "protect-kernel-defaults": ("hardening", "medium"),
    "seccomp-default-enabled": ("hardening", "medium"),
}
ROP, PKD, KCP, SEC, ANON = ("read-only-port-disabled", "protect-kernel-defaults",
                            "kubeconfig-permissions", "seccomp-default-enabled",
                            "anonymous-auth-disabled")


def node(cluster, name, pool, version, status=None, drift=None, config_drift=False,
         kubelet=True, node_info=True):
    """One node with an agent. status: control -> status (default pass); drift:
    control -> kind. pool None: no node_info series (an older agent)."""
    st = {c: "pass" for c in CONTROLS}
    if not kubelet:
        st = {c: "unknown" for c in CONTROLS}
    st.update(status or {})
    return {"cluster": cluster, "node": name, "pool": pool, "version": version,
            "status": st, "drift": drift or {}, "config_drift": config_drift,
            "kubelet": kubelet, "node_info": node_info}


def fleet():
    nodes = []
    # prod-eu: pool "system" (3, compliant, one with configuration drift), pool "workers"
    # (29 agents): read-only port open on 01-05 (5 nodes: critical fleet alert), kernel
    # defaults unprotected on 06-09 (4 nodes: no fleet alert), 10-29 compliant.
    for i in range(1, 4):
        nodes.append(node("prod-eu", f"eu-system-{i}", "system", "v1.30.4",
                          config_drift=(i == 1)))
    for i in range(1, 30):
        st, dr = {}, {}
        if i <= 5:
            st[ROP] = "fail"
        if 6 <= i <= 9:
            st[PKD] = "fail"
        if i in (1, 2):
            dr[ROP] = "regressed"
        if i == 6:
            dr[SEC] = "changed"
        if i == 9:
            st[KCP] = "fail"
        # 10-29 compliant; 20-29 already upgraded (version skew in the pool).
        nodes.append(node("prod-eu", f"eu-workers-{i:02d}", "workers",
                          "v1.30.4" if i >= 20 else "v1.29.8", st, dr))
    # prod-us: pool "general" (14): kernel defaults unprotected on 1-6 (warning fleet
    # alert, sample of 5), 7-14 compliant; nodes without a pool label (node_pool=""): batch-1/2; batch-3's
    # agent finds no kubelet (every control unknown); general-6 runs an agent without
    # node_info (falls in pool ""). Read-only port open on 4 nodes (no alert).
    for i in range(1, 15):
        st, dr = ({PKD: "fail"} if i <= 6 else {}), {}
        if i in (1, 2):
            st[ROP] = "fail"
        if i == 2:
            st[KCP] = "unknown"
        if i == 3:
            dr[KCP] = "changed"
        nodes.append(node("prod-us", f"us-general-{i}", "general", "v1.31.1", st, dr,
                          node_info=(i != 6)))
    for i in range(1, 3):
        nodes.append(node("prod-us", f"us-batch-{i}", "", "v1.28.0", {ROP: "fail"}))
    nodes.append(node("prod-us", "us-batch-3", "", None, kubelet=False))
    # No cluster label: a lab with 8 nodes, the kubeconfig world-readable on 1-5 (the
    # fleet alert, without a cluster label), one failing a critical control (anonymous
    # auth, regressed), one where seccomp does not apply.
    nodes.append(node("", "lab-1", "", "v1.31.1", {ANON: "fail", KCP: "fail"},
                      {ANON: "regressed"}))
    nodes.append(node("", "lab-2", "", "v1.31.1", {SEC: "not_applicable", KCP: "fail"}))
    for i in range(3, 9):
        nodes.append(node("", f"lab-{i}", "", "v1.31.1", {KCP: "fail"} if i <= 5 else {}))
    # kube-state-metrics' nodes (prod-eu and prod-us only: no KSM in the lab): every
    # agent node, plus eu-workers-98 (no agent pod) and eu-workers-99 (its agent's
    # target is down, so its series are stale).
    # eu-win-1 is a Windows node: the DaemonSet does not target it, it is not missing.
    ksm = [n["node"] for n in nodes if n["cluster"]] + ["eu-workers-98", "eu-workers-99",
                                                         "eu-win-1"]
    ksm_cluster = {n: ("prod-eu" if n.startswith("eu-") else "prod-us") for n in ksm}
    down = [("prod-eu", "10.1.9.11:10358")]
    return nodes, ksm_cluster, down


def windows(name):
    return name.startswith("eu-win-")


# ---------------------------------------------------------------------------------------
# Input series
# ---------------------------------------------------------------------------------------

def labels(d):
    """A PromQL label set, `cluster` left out when empty (no such label)."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in d.items() if not (k == "cluster" and v == "")) + "}"


def series_name(name, d):
    return name + labels(d)


def inputs(nodes, ksm, down, mode, steps):
    out = []
    vals = f"1x{steps}"
    zeros = f"0x{steps}"
    for k, n in enumerate(nodes):
        base = {"cluster": n["cluster"], "job": "kubelet-sentinel",
                "instance": f"10.0.{k // 250}.{k % 250 + 1}:10358", "node": n["node"]}
        out.append((series_name("up", {k2: v for k2, v in base.items() if k2 != "node"}), vals))
        out.append((series_name("kubelet_sentinel_build_info",
                                {**base, "version": "0.16.0", "revision": "abc1234"}), vals))
        if n["node_info"]:
            out.append((series_name("kubelet_sentinel_node_info",
                                    {**base, "node_pool": n["pool"]}), vals))
        out.append((series_name("kubelet_sentinel_kubelet_up", base),
                    vals if n["kubelet"] else zeros))
        if n["kubelet"]:
            out.append((series_name("kubelet_sentinel_kubelet_info",
                                    {**base, "version": n["version"], "version_source": "binary",
                                     "config_file": "/var/lib/kubelet/config.yaml",
                                     "config_dir": ""}), vals))
        out.append((series_name("kubelet_sentinel_config_drift", base),
                    vals if n["config_drift"] else zeros))
        for c, (fam, sev) in CONTROLS.items():
            for s in STATUSES:
                if mode == "active" and s != n["status"][c]:
                    continue
                v = vals if s == n["status"][c] else zeros
                out.append((series_name("kubelet_sentinel_control_status",
                                        {**base, "control": c, "family": fam,
                                         "severity": sev, "status": s}), v))
        for c, kind in n["drift"].items():
            out.append((series_name("kubelet_sentinel_control_drift",
                                    {**base, "control": c, "kind": kind}), vals))
    for name, cluster in ksm.items():
        out.append((series_name("kube_node_info", {
            "cluster": cluster, "job": "kube-state-metrics", "instance": "10.9.0.1:8080",
            "node": name, "kubelet_version": "v1.30.4",
            "os_image": "Windows Server 2022 Datacenter" if windows(name) else "Ubuntu 22.04.4 LTS"}),
            vals))
    for cluster, instance in down:
        out.append((series_name("up", {"cluster": cluster, "job": "kubelet-sentinel",
                                       "instance": instance}), zeros))
    return out


# ---------------------------------------------------------------------------------------
# Expected recorded series: the rules' meaning, over the table
# ---------------------------------------------------------------------------------------

def count(pairs):
    """{label tuple: count} of an iterable of label tuples."""
    out = {}
    for p in pairs:
        out[p] = out.get(p, 0) + 1
    return out


def ratio(passed, failed):
    return passed / (passed + failed)


def expected(nodes, ksm, down):
    exp = {}
    clusters = sorted({n["cluster"] for n in nodes})

    def rec(name, keys, rows):
        exp[name] = [(dict(zip(keys, k)), v) for k, v in sorted(rows.items())]

    rec("cluster:kubelet_sentinel_nodes_reporting:count", ["cluster"],
        count((n["cluster"],) for n in nodes))
    rec("cluster_node_status:kubelet_sentinel_controls:count", ["cluster", "node", "status"],
        count((n["cluster"], n["node"], s) for n in nodes for s in n["status"].values()))
    rec("cluster_control_status:kubelet_sentinel_nodes:count",
        ["cluster", "control", "family", "severity", "status"],
        count((n["cluster"], c, *CONTROLS[c], s) for n in nodes for c, s in n["status"].items()))
    rec("cluster_severity_status:kubelet_sentinel_controls:count", ["cluster", "severity", "status"],
        count((n["cluster"], CONTROLS[c][1], s) for n in nodes for c, s in n["status"].items()))
    node_sev = {(n["cluster"], n["node"], CONTROLS[c][1], s)
                for n in nodes for c, s in n["status"].items()}
    rec("cluster_severity_status:kubelet_sentinel_nodes:count", ["cluster", "severity", "status"],
        count((cl, sev, s) for (cl, _, sev, s) in node_sev))

    def pf(ns):
        p = sum(1 for n in ns for s in n["status"].values() if s == "pass")
        f = sum(1 for n in ns for s in n["status"].values() if s == "fail")
        return p, f

    rows = {}
    for n in nodes:
        p, f = pf([n])
        if p + f:
            rows[(n["cluster"], n["node"])] = ratio(p, f)
    rec("cluster_node:kubelet_sentinel_compliance:ratio", ["cluster", "node"], rows)

    # Pool of each node: node_info's, else "" (no node_info); nodes with no pass/fail
    # (no kubelet) are in no ratio but are in the pool counts.
    pool = {(n["cluster"], n["node"]): (n["pool"] if n["node_info"] else "") for n in nodes}
    info = {}
    for n in nodes:
        key = (n["cluster"], n["node"], n["pool"]) if n["node_info"] else (n["cluster"], n["node"])
        info[key] = 1
    exp["cluster_node:kubelet_sentinel_node_pool:info"] = [
        (dict(zip(["cluster", "node", "node_pool"], k)), v) for k, v in sorted(info.items())]
    rows = {}
    for key in sorted({(n["cluster"], pool[(n["cluster"], n["node"])]) for n in nodes}):
        ns = [n for n in nodes if (n["cluster"], pool[(n["cluster"], n["node"])]) == key]
        p, f = pf(ns)
        if p + f:
            rows[key] = ratio(p, f)
    rec("cluster_node_pool:kubelet_sentinel_compliance:ratio", ["cluster", "node_pool"], rows)
    rec("cluster_node_pool:kubelet_sentinel_nodes:count", ["cluster", "node_pool"],
        count((n["cluster"], pool[(n["cluster"], n["node"])]) for n in nodes))
    rec("cluster:kubelet_sentinel_compliance:ratio", ["cluster"],
        {(c,): ratio(*pf([n for n in nodes if n["cluster"] == c])) for c in clusters})

    rec("cluster_control_kind:kubelet_sentinel_nodes_drifted:count", ["cluster", "control", "kind"],
        count((n["cluster"], c, k) for n in nodes for c, k in n["drift"].items()))
    rec("cluster_node_kind:kubelet_sentinel_controls_drifted:count", ["cluster", "node", "kind"],
        count((n["cluster"], n["node"], k) for n in nodes for k in n["drift"].values()))
    rec("cluster:kubelet_sentinel_nodes_config_drifted:count", ["cluster"],
        {(c,): sum(1 for n in nodes if n["cluster"] == c and n["config_drift"]) for c in clusters})
    rec("cluster:kubelet_sentinel_nodes_drifted:count", ["cluster"],
        {(c,): sum(1 for n in nodes if n["cluster"] == c and (n["config_drift"] or n["drift"]))
         for c in clusters})
    rec("cluster_version:kubelet_sentinel_nodes:count", ["cluster", "version"],
        count((n["cluster"], n["version"]) for n in nodes if n["kubelet"]))
    rec("cluster:kubelet_sentinel_nodes_without_kubelet:count", ["cluster"],
        {(c,): sum(1 for n in nodes if n["cluster"] == c and not n["kubelet"]) for c in clusters})
    agents = {(n["cluster"], n["node"]) for n in nodes}
    ksm_clusters = sorted(set(ksm.values()))
    rec("cluster:kubelet_sentinel_nodes_without_agent:count", ["cluster"],
        {(c,): sum(1 for nd, cl in ksm.items()
                   if cl == c and (cl, nd) not in agents and not windows(nd))
         for c in ksm_clusters})
    down_by = count((c,) for c, _ in down)
    rec("cluster:kubelet_sentinel_agents_down:count", ["cluster"],
        {(c,): down_by.get((c,), 0) for c in sorted(set(clusters) | {c for c, _ in down})})
    return exp


def failing_many(nodes, threshold=5):
    """(cluster, control, family, severity, sorted failing nodes) with >= threshold."""
    out = []
    for c in sorted({n["cluster"] for n in nodes}):
        for ctl, (fam, sev) in sorted(CONTROLS.items()):
            failing = sorted(n["node"] for n in nodes
                             if n["cluster"] == c and n["status"][ctl] == "fail")
            if len(failing) >= threshold:
                out.append((c, ctl, fam, sev, failing))
    return out


def alert(cluster, control, family, sev, failing):
    lbl = {"control": control, "family": family,
           "severity": "critical" if sev == "critical" else "warning", "control_severity": sev}
    if cluster:
        lbl["cluster"] = cluster
    of = f" of cluster {cluster}" if cluster else ""
    summary = f"Kubelet control {control} is failing on {len(failing)} nodes{of}"
    description = (
        f"Control {control} ({family}, severity {sev}) has been failing on 5 or more nodes"
        f"{of} for 15 minutes; now on {len(failing)}, among them: {', '.join(failing[:5])}."
        " One cause on many nodes: a node image, a config-management template, a policy"
        " gap. The per-node alerts of this control and cluster are inhibited while this"
        " one fires (alerts/alertmanager.example.yaml). Remediation:"
        f" {RUNBOOKS}controls.md#{control}")
    return {"exp_labels": lbl, "exp_annotations": {
        "summary": summary, "description": description,
        "runbook_url": f"{RUNBOOKS}KubeletSentinelControlFailingOnManyNodes.md"}}


def without_agent(nodes, ksm):
    """(cluster, sorted nodes kube-state-metrics lists with no agent), non-empty only."""
    agents = {(n["cluster"], n["node"]) for n in nodes}
    out = []
    for c in sorted(set(ksm.values())):
        missing = sorted(nd for nd, cl in ksm.items()
                         if cl == c and (cl, nd) not in agents and not windows(nd))
        if missing:
            out.append((c, missing))
    return out


def agent_missing(cluster, missing):
    lbl = {"severity": "warning"}
    if cluster:
        lbl["cluster"] = cluster
    summary = (f"kubelet-sentinel is missing on {len(missing)} node(s)"
               + (f" of cluster {cluster}" if cluster else ""))
    description = (
        f"For 30 minutes {len(missing)} Linux node(s) that kube-state-metrics lists"
        + (f" in cluster {cluster}" if cluster else "")
        + f" have had no kubelet-sentinel series, among them: {', '.join(missing[:5])}."
        " Their kubelet hardening is not monitored: no agent pod runs there (DaemonSet not"
        " scheduled, pod pending or crash-looping) or Prometheus cannot scrape it.")
    return {"exp_labels": lbl, "exp_annotations": {
        "summary": summary, "description": description,
        "runbook_url": f"{RUNBOOKS}KubeletSentinelAgentMissingOnNodes.md"}}


# ---------------------------------------------------------------------------------------
# YAML out
# ---------------------------------------------------------------------------------------

def q(s):
    return json.dumps(s)


def fmt_value(v):
    return repr(float(v)) if isinstance(v, float) else str(v)


def emit_case(lines, name, ins, exp, alerts, eval_min):
    lines.append(f"  - name: {q(name)}")
    lines.append("    interval: 1m")
    lines.append("    input_series:")
    for s, v in ins:
        lines.append(f"      - series: {q(s)}")
        lines.append(f"        values: {q(v)}")
    lines.append("    promql_expr_test:")
    for metric in sorted(exp):
        lines.append(f"      - expr: {q(metric)}")
        lines.append(f"        eval_time: {eval_min}m")
        lines.append("        exp_samples:")
        for lbl, v in exp[metric]:
            lines.append(f"          - labels: {q(series_name(metric, lbl))}")
            lines.append(f"            value: {fmt_value(v)}")
    lines.append("    alert_rule_test:")
    for alertname, t, exp_alerts in alerts:
        lines.append(f"      - eval_time: {t}m")
        lines.append(f"        alertname: {alertname}")
        if not exp_alerts:
            lines.append("        exp_alerts: []")
            continue
        lines.append("        exp_alerts:")
        for a in exp_alerts:
            lines.append("          - exp_labels:")
            for k, v in sorted(a["exp_labels"].items()):
                lines.append(f"              {k}: {q(v)}")
            lines.append("            exp_annotations:")
            for k, v in sorted(a["exp_annotations"].items()):
                lines.append(f"              {k}: {q(v)}")


def staleness_case(lines, mode):
    """A control going from fail to pass on one node of five: the fail count drops at the
    first evaluation after the change (the old series stale, or 0 in `all` mode), and the
    fleet alert, pending, never fires."""
    ins = []
    for i in range(1, 6):
        base = {"cluster": "c1", "job": "kubelet-sentinel", "instance": f"10.0.0.{i}:10358",
                "node": f"n{i}"}
        c = PKD
        fam, sev = CONTROLS[c]
        lbl = lambda s: series_name("kubelet_sentinel_control_status",  # noqa: E731
                                    {**base, "control": c, "family": fam, "severity": sev,
                                     "status": s})
        if i < 5:
            ins.append((lbl("fail"), "1x30"))
            if mode == "all":
                ins.append((lbl("pass"), "0x30"))
        elif mode == "active":
            ins.append((lbl("fail"), "1x9 stale"))
            ins.append((lbl("pass"), "_x10 1x20"))
        else:
            ins.append((lbl("fail"), "1x9 0x21"))
            ins.append((lbl("pass"), "0x9 1x21"))
        for s in ("unknown", "not_applicable"):
            if mode == "all":
                ins.append((lbl(s), "0x30"))
    name = "cluster_control_status:kubelet_sentinel_nodes:count"
    key = f'{{cluster="c1", control="{PKD}", family="hardening", severity="medium", status='
    lines.append(f"  - name: {q(f'a control that stops failing leaves the counts at once ({mode})')}")
    lines.append("    interval: 1m")
    lines.append("    input_series:")
    for s, v in ins:
        lines.append(f"      - series: {q(s)}")
        lines.append(f"        values: {q(v)}")
    lines.append("    promql_expr_test:")
    for t, fail, passed in ((9, 5, None), (10, 4, 1), (30, 4, 1)):
        lines.append(f"      - expr: {q(name)}")
        lines.append(f"        eval_time: {t}m")
        lines.append("        exp_samples:")
        lines.append(f"          - labels: {q(name + key + chr(34) + 'fail' + chr(34) + '}')}")
        lines.append(f"            value: {fail}")
        if passed:
            lines.append(f"          - labels: {q(name + key + chr(34) + 'pass' + chr(34) + '}')}")
            lines.append(f"            value: {passed}")
    lines.append("    alert_rule_test:")
    for t in (9, 30):
        lines.append(f"      - eval_time: {t}m")
        lines.append("        alertname: KubeletSentinelControlFailingOnManyNodes")
        lines.append("        exp_alerts: []")


def generate():
    nodes, ksm, down = fleet()
    exp = expected(nodes, ksm, down)
    many = "KubeletSentinelControlFailingOnManyNodes"
    missing = "KubeletSentinelAgentMissingOnNodes"
    alerts = [
        # `for: 15m`: pending at 14m, firing at 16m (15m or 16m: see below).
        (many, 14, []),
        (many, 16, [alert(*f) for f in failing_many(nodes)]),
        # `for: 30m`. The alert's group reads the recording group's series: at an
        # evaluation time it may run before or after it (promtool, like Prometheus, runs
        # groups independently), so the alert is pending from 0m or 1m: firing at 31m.
        (missing, 29, []),
        (missing, 31, [agent_missing(c, ms) for c, ms in without_agent(nodes, ksm)]),
    ]
    lines = [
        "# generated by scripts/gen-fleet-test.py; do not edit (run it after changing the",
        "# fleet rules or the fleet it describes; scripts/test.sh checks it is current).",
        "#",
        "# promtool unit tests of the kubelet-sentinel.fleet.rules and kubelet-sentinel.fleet",
        "# groups on a simulated fleet of "
        f"{len(nodes)} agents in {len({n['cluster'] for n in nodes})} clusters (one without a"
        " cluster label),",
        f"# {len(ksm)} nodes listed by kube-state-metrics, {len(down)} agent target down; every",
        "# recorded series asserted exactly, in both --metrics-control-states modes.",
        "---",
        "rule_files:",
        "  - ../kubelet-sentinel.rules.yaml",
        "evaluation_interval: 1m",
        "tests:",
    ]
    for mode in ("active", "all"):
        emit_case(lines, f"the fleet's recorded series and fleet alerts "
                         f"(--metrics-control-states {mode})",
                  inputs(nodes, ksm, down, mode, 35), exp, alerts, 16)
    for mode in ("active", "all"):
        staleness_case(lines, mode)
    return "\n".join(lines) + "\n"


def main():
    text = generate()
    if sys.argv[1:] == ["--check"]:
        with open(OUT) as f:
            if f.read() != text:
                print(f"{OUT} is stale: run scripts/gen-fleet-test.py", file=sys.stderr)
                sys.exit(1)
        return
    if sys.argv[1:]:
        print("usage: gen-fleet-test.py [--check]", file=sys.stderr)
        sys.exit(2)
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
