#!/usr/bin/env python3
"""Simulated kubelet-sentinel fleet for bench/fleet.sh: OpenMetrics with explicit timestamps.

The exposition is the default one of issue 16 (notes: docs/metrics.md): the active control
status only (one `kubelet_sentinel_control_status` series per control, value 1), sparse
`kubelet_sentinel_control_drift{kind}`, `kubelet_sentinel_node_info{node_pool}`, and the other
families of a live node (probes, certificates, config drift, evaluation timestamps), plus what
a Prometheus holding the fleet stores next to them: the scrape's `up{job="kubelet-sentinel"}`
with its target labels (job, instance, namespace, pod) on every agent series, and
kube-state-metrics' `kube_node_info`. Every series carries `cluster`.

The fleet is a pure function of (nodes, clusters, seed, t0, tend): `chunk` writes the samples
of one time window (so that the OpenMetrics of a long run never exists all at once) and
`truth` prints what the recording rules must find at a given time. Nothing changes in the
last FREEZE seconds before `tend` nor after it: a backfilled series has no staleness marker,
so a series that ended stays visible for the 5-minute lookback; the truth is asked at `tend`.

Speed: every node's lines are pre-rendered per state as "name{labels} value" prefixes, and a
time step is one `str.join` per node with " <ts>\n" as the separator; the few values that move
every sample (durations, evaluation timestamps) cycle through pre-rendered variants.
"""
import argparse
import json
import os
import random
import re
import sys
import zlib

STATUSES = ("pass", "fail", "unknown", "not_applicable")
POOLS = (("system", 0.1), ("general", 0.5), ("compute", 0.3), ("gpu", 0.1))
VERSIONS = ("v1.31.4", "v1.30.8", "v1.32.1", "v1.31.2", "v1.30.10")
AGENT_VERSIONS = (("0.16.0", "3f2a9c1"), ("0.15.2", "9b81d0e"))
PROBES_STATIC = ("process", "apiserver", "flags", "config", "kubeconfig", "client_ca", "files",
                 "unit_files")
PROBES_LIVE = ("listeners", "tls_handshake", "tls_versions", "tls12_suites", "anonymous",
               "read_only_port", "version")
PROBES_API = ("api_pods", "api_namespaces", "api_node", "api_identity_reviews")
# Controls that need the Kubernetes API (unknown on a node without API access).
API_CONTROLS = ("pod-security-enforced", "no-host-takeover-pods", "kubelet-credential-node-scoped",
                "node-authorizer-enabled", "kubelet-identity-least-privilege",
                "apiserver-audit-log-enabled")
# What a non-compliant node typically fails (hardening left at defaults, loose files).
COMMON_FAILURES = ("pod-pids-limit-set", "seccomp-default-enabled", "protect-kernel-defaults",
                   "event-qps-limited", "kube-reserved-set", "system-reserved-set",
                   "eviction-hard-set", "tls-strong-cipher-suites", "config-file-permissions",
                   "kubeconfig-permissions", "client-cert-rotation", "server-cert-rotation")
# Controls an event flips from pass to fail (a regression: somebody edited the kubelet).
REGRESSIONS = ("anonymous-auth-disabled", "authorization-mode-webhook", "read-only-port-disabled",
               "tls-min-version", "protect-kernel-defaults", "seccomp-default-enabled",
               "config-file-permissions")
FREEZE = 900
STEP = 30


def controls_from_doc(path):
    """(id, family, severity) of every control, from the generated table of docs/controls.md."""
    row = re.compile(r"^\| \[`([a-z0-9-]+)`\]\(#[a-z0-9-]+\) \| ([a-z_]+) \| ([a-z]+) \|")
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = row.match(line)
            if m:
                out.append(m.groups())
    if not out:
        sys.exit(f"no control table in {path}")
    return out


class Node:
    __slots__ = ("cluster", "name", "pool", "agent", "ip", "pod", "base", "events", "down_at",
                 "kubelet", "api", "version", "upgrade", "agent_version", "live", "phase",
                 "cache_key", "cache")


class Fleet:
    def __init__(self, nodes, clusters, seed, t0, tend, controls):
        self.t0, self.tend = t0, tend
        self.controls = controls
        self.cids = [c[0] for c in controls]
        rnd = random.Random(seed)
        clusters = max(1, min(clusters, nodes))
        names = [f"cluster-{i:02d}" for i in range(clusters)]
        self.clusters = names
        last = tend - FREEZE  # no change after this

        def when(lo=0.0, hi=1.0):
            return int(t0 + (last - t0) * rnd.uniform(lo, hi)) // STEP * STEP

        self.nodes = []
        for ci, cname in enumerate(names):
            count = nodes // clusters + (1 if ci < nodes % clusters else 0)
            api = ci not in (2, 7)  # two clusters run the agent without API access
            version = VERSIONS[ci % len(VERSIONS)]
            for j in range(count):
                n = Node()
                n.cluster = cname
                r = rnd.random()
                acc = 0.0
                for pool, w in POOLS:
                    acc += w
                    if r < acc:
                        break
                n.pool = pool if api else ""
                n.name = f"{cname}-{pool}-{j:05d}"
                n.ip = f"10.{ci}.{j // 250}.{j % 250 + 1}:8443"
                n.pod = f"kubelet-sentinel-{rnd.getrandbits(25):07x}"
                n.api = api
                n.agent = True
                n.down_at = None
                n.kubelet = True
                n.live = rnd.random() < 0.9
                n.phase = rnd.randrange(64)
                n.agent_version = AGENT_VERSIONS[0] if rnd.random() < 0.93 else AGENT_VERSIONS[1]
                # Version skew: a few nodes one patch behind; cluster-00 upgrades mid-run.
                n.version = version if rnd.random() < 0.97 else "v1.28.15"
                n.upgrade = None
                if ci == 0 and n.version == version and rnd.random() < 0.6:
                    n.upgrade = (when(0.3, 0.8), "v1.32.1")
                base = {c: "pass" for c in self.cids}
                base["streaming-idle-timeout-set"] = "not_applicable"
                base["running-config-matches-disk"] = "not_applicable"
                if pool == "gpu":
                    base["client-cert-valid"] = "not_applicable"
                if not api:
                    for c in API_CONTROLS:
                        base[c] = "unknown"
                if not n.live:
                    base["kubelet-api-rejects-anonymous"] = "unknown"
                if n.version == "v1.28.15":
                    base["kubelet-version-no-known-cves"] = "fail"
                    base["kubelet-version-supported"] = "fail"
                # A fleet problem: one pool of cluster-01 left the read-only port open.
                if ci == 1 and pool == "compute":
                    base["read-only-port-disabled"] = "fail"
                if rnd.random() < 0.06:
                    for c in rnd.sample(COMMON_FAILURES, rnd.randint(1, 3)):
                        base[c] = "fail"
                n.base = base
                n.events = []  # (time, control, status) sorted
                r = rnd.random()
                if r < 0.03:  # regression, half of them fixed later
                    c = rnd.choice([c for c in REGRESSIONS if base[c] == "pass"] or ["iptables-util-chains"])
                    te = when(0.0, 0.9)
                    n.events.append((te, c, "fail"))
                    if rnd.random() < 0.5:
                        n.events.append((min(last, te + rnd.randint(20, 240) * STEP), c, "pass"))
                elif r < 0.05:  # a failing control fixed: drift "changed"
                    fails = [c for c in self.cids if base[c] == "fail"]
                    c = rnd.choice(fails) if fails else "iptables-util-chains"
                    n.events.append((when(), c, "pass" if base[c] == "fail" else "not_applicable"))
                n.cache_key = None
                n.cache = None
                self.nodes.append(n)
            # A few nodes without an agent (kube_node_info only), agents down, kubelets missing.
            members = [n for n in self.nodes if n.cluster == cname]
            k = max(1, count // 500)
            picks = rnd.sample(members, min(count, 3 * k))
            for n in picks[:k]:
                n.agent = False
            for n in picks[k:2 * k]:
                if ci % 2 == 0:
                    n.down_at = when(0.2, 0.9)
            for n in picks[2 * k:]:
                n.kubelet = False

    # -- state at time t --------------------------------------------------------------
    def state(self, n, t):
        """(statuses dict, changes count, last change time, version) at time t."""
        st = dict(n.base)
        changes = 0
        last = None
        for te, c, s in n.events:
            if te <= t:
                st[c] = s
                changes += 1
                last = te
        version = n.version
        if n.upgrade and n.upgrade[0] <= t:
            version = n.upgrade[1]
            changes += 1
            last = max(last or 0, n.upgrade[0])
        if not n.kubelet:
            st = {c: "unknown" for c in st}
        return st, changes, last, version

    def drift(self, n, st):
        """{control: kind} per docs/metrics.md: regressed (pass -> fail) or changed; absent if unknown."""
        out = {}
        for c, s in st.items():
            b = n.base[c]
            if s == b or s == "unknown":
                continue
            out[c] = "regressed" if (b == "pass" and s == "fail") else "changed"
        return out

    @staticmethod
    def config_drift(n, st):
        """kubelet_sentinel_config_drift: the effective configuration differs from the baseline."""
        return n.kubelet and any(st[c] != n.base[c] for c in st)

    def up(self, n, t):
        return n.agent and (n.down_at is None or t < n.down_at)

    # -- rendering --------------------------------------------------------------------
    def lines(self, n, t, scrape=False):
        """Pre-rendered "name{labels} value" prefixes of the node's agent at time t: as stored
        (the scrape's target labels and `up` included), or as the agent serves them."""
        key = (sum(1 for e in n.events if e[0] <= t), bool(n.upgrade and n.upgrade[0] <= t))
        if n.cache_key == key and not scrape:
            return n.cache
        st, changes, last, version = self.state(n, t)
        target = (f'cluster="{n.cluster}",job="kubelet-sentinel",instance="{n.ip}",'
                  f'namespace="kubelet-sentinel",pod="{n.pod}"')
        common = f'node="{n.name}"' if scrape else f'{target},node="{n.name}"'
        out = []
        a = out.append
        for cid, fam, sev in self.controls:
            a(f'kubelet_sentinel_control_status{{{common},control="{cid}",family="{fam}",'
              f'severity="{sev}",status="{st[cid]}"}} 1')
        for c, kind in self.drift(n, st).items():
            a(f'kubelet_sentinel_control_drift{{{common},control="{c}",kind="{kind}"}} 1')
        a(f'kubelet_sentinel_node_info{{{common},node_pool="{n.pool}"}} 1')
        a(f'kubelet_sentinel_build_info{{{common},version="{n.agent_version[0]}",'
          f'revision="{n.agent_version[1]}"}} 1')
        a(f'kubelet_sentinel_kubelet_up{{{common}}} {1 if n.kubelet else 0}')
        probes = list(PROBES_STATIC) + (list(PROBES_LIVE) if n.live else []) + \
            (list(PROBES_API) if n.api else [])
        if n.kubelet:
            a(f'kubelet_sentinel_kubelet_info{{{common},version="{version}",'
              f'version_source="binary",config_file="/var/lib/kubelet/config.yaml",'
              f'config_dir=""}} 1')
            exp = 1798761600 + (zlib.crc32(n.name.encode()) % 86400) * 30
            for cert in ("serving", "client", "client_ca"):
                a(f'kubelet_sentinel_certificate_expiry_timestamp_seconds{{{common},'
                  f'certificate="{cert}",source="file"}} {exp + len(cert) * 86400}')
            if n.live:
                for addr, port in (("0.0.0.0", "10250"), ("127.0.0.1", "10248")):
                    a(f'kubelet_sentinel_kubelet_listener{{{common},address="{addr}",'
                      f'port="{port}"}} 1')
                ro = st["read-only-port-disabled"] == "fail"
                if ro:
                    a(f'kubelet_sentinel_kubelet_listener{{{common},address="0.0.0.0",'
                      f'port="10255"}} 1')
                for v in ("VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"):
                    ok = v in ("VersionTLS12", "VersionTLS13") or st["tls-min-version"] == "fail"
                    a(f'kubelet_sentinel_kubelet_tls_version_accepted{{{common},'
                      f'version="{v}"}} {1 if ok else 0}')
                code = 200 if st["anonymous-auth-disabled"] == "fail" else 401
                a(f'kubelet_sentinel_kubelet_anonymous_response_code{{{common}}} {code}')
        for p in probes:
            ok = 1 if (n.kubelet or p in ("apiserver",) or p.startswith("api_")) else 0
            a(f'kubelet_sentinel_probe_success{{{common},probe="{p}"}} {ok}')
        a(f'kubelet_sentinel_config_drift{{{common}}} {1 if self.config_drift(n, st) else 0}')
        a(f'kubelet_sentinel_config_pending_restart{{{common}}} 0')
        kinds = {"config": changes, "command_line": 0, "restart": 1 if version != n.version else 0,
                 "file": changes}
        for k, v in kinds.items():
            a(f'kubelet_sentinel_config_changes_total{{{common},kind="{k}"}} {v}')
        a(f'kubelet_sentinel_baseline_timestamp_seconds{{{common}}} {self.t0 - 86400}')
        a(f'kubelet_sentinel_baseline_info{{{common},origin="first_observation"}} 1')
        if last is not None:
            a(f'kubelet_sentinel_last_change_timestamp_seconds{{{common}}} {last}')
        a(f'kubelet_sentinel_state_write_errors_total{{{common}}} 0')
        a(f'kubelet_sentinel_baseline_corrupt_total{{{common}}} 0')
        if not scrape:
            a(f'up{{{target}}} 1')
        # Moving values: 8 pre-rendered variants of the probe durations and evaluation time.
        moving = []
        rnd = random.Random(n.name)
        for _ in range(8):
            v = [f'kubelet_sentinel_probe_duration_seconds{{{common},probe="{p}"}} '
                 f'{rnd.uniform(0.00002, 0.004):.6f}' for p in probes]
            v.append(f'kubelet_sentinel_evaluation_duration_seconds{{{common}}} '
                     f'{rnd.uniform(0.002, 0.03):.6f}')
            moving.append(v)
        evalts = f'kubelet_sentinel_last_evaluation_timestamp_seconds{{{common}}} '
        if scrape:
            return out, moving, evalts
        n.cache_key = key
        n.cache = (out, moving, evalts)
        return n.cache

    def ksm_line(self, n, cluster_label=True):
        labels = (f'cluster="{n.cluster}",job="kube-state-metrics",'
                  f'instance="10.{self.clusters.index(n.cluster)}.255.1:8080",' if cluster_label
                  else "")
        return (f'kube_node_info{{{labels}node="{n.name}",kubelet_version="{n.version}",'
                f'container_runtime_version="containerd://1.7.22",'
                f'os_image="Ubuntu 22.04.5 LTS",internal_ip="{n.ip.split(":")[0]}"}} 1')

    def serve(self, sd_dir):
        """Serve every agent's page as of `tend` (the state the truth describes) for a live
        Prometheus: /n/<node>, 503 for agents down; /ksm/<cluster> for kube_node_info. Writes
        the file_sd target lists and prints the port."""
        import http.server
        import time
        pages = {}
        for n in self.nodes:
            if not self.up(n, self.tend):
                continue
            out, moving, evalts = self.lines(n, self.tend, scrape=True)
            pages["/n/" + n.name] = (("\n".join(out + moving[0]) + "\n" + evalts).encode(), True)
        for c in self.clusters:
            body = "\n".join(self.ksm_line(n, False) for n in self.nodes if n.cluster == c)
            pages["/ksm/" + c] = ((body + "\n").encode(), False)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                page = pages.get(self.path)
                if page is None:
                    body, code = b"agent down\n", 503
                else:
                    body, code = page[0], 200
                    if page[1]:
                        body += b"%d\n" % int(time.time())
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.daemon_threads = True
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = srv.server_address[1]
        addr = f"127.0.0.1:{port}"
        agents = [{"targets": [addr], "labels": {
            "__metrics_path__": "/n/" + n.name, "instance": n.ip, "cluster": n.cluster,
            "namespace": "kubelet-sentinel", "pod": n.pod}} for n in self.nodes if n.agent]
        ksm = [{"targets": [addr], "labels": {
            "__metrics_path__": "/ksm/" + c, "instance": f"10.{i}.255.1:8080", "cluster": c}}
            for i, c in enumerate(self.clusters)]
        for name, groups in (("agents.json", agents), ("ksm.json", ksm)):
            with open(os.path.join(sd_dir, name + ".tmp"), "w", encoding="utf-8") as f:
                json.dump(groups, f)
            os.replace(os.path.join(sd_dir, name + ".tmp"), os.path.join(sd_dir, name))
        print(port, flush=True)
        srv.serve_forever()

    def write_chunk(self, f, start, end):
        """Samples with start <= ts < end, every STEP seconds, time-major."""
        ksm = {}
        for n in self.nodes:
            ksm[n.name] = self.ksm_line(n)
            if n.agent:
                ksm[n.name + "/down"] = (f'up{{cluster="{n.cluster}",'
                                         f'job="kubelet-sentinel",instance="{n.ip}",'
                                         f'namespace="kubelet-sentinel",pod="{n.pod}"}} 0')
        t = (start + STEP - 1) // STEP * STEP
        samples = 0
        while t < end:
            sep = f" {t}\n"
            buf = []
            b = buf.append
            for n in self.nodes:
                b(ksm[n.name])
                b(sep)
                samples += 1
                if not n.agent:
                    continue
                if not self.up(n, t):
                    b(ksm[n.name + "/down"])
                    b(sep)
                    samples += 1
                    continue
                out, moving, evalts = self.lines(n, min(t, self.tend))
                mv = moving[(t // STEP + n.phase) % 8]
                b(sep.join(out))
                b(sep)
                b(sep.join(mv))
                b(sep)
                b(f"{evalts}{t - 3 - n.phase % 20}{sep}")
                samples += len(out) + len(mv) + 1
            f.write("".join(buf))
            t += STEP
        f.write("# EOF\n")
        return samples

    # -- truth ------------------------------------------------------------------------
    def truth(self, t):
        """What each recorded series of docs/fleet.md's table must hold at time t (t >= tend - FREEZE)."""
        ctl = {}
        node_status = {}
        sev = {}
        pool = {}
        clus = {}
        node_ratio = {}
        drift = {}
        drifted = {}
        versions = {}
        reporting = {}
        no_kubelet = {}
        no_agent = {}
        down = {}
        meta = {c[0]: c for c in self.controls}
        for c in self.clusters:
            for d in (reporting, no_kubelet, no_agent, down):
                d[c] = 0
        for n in self.nodes:
            c = n.cluster
            if not self.up(n, t):
                no_agent[c] += 1
                if n.agent:
                    down[c] += 1
                continue
            reporting[c] += 1
            if not n.kubelet:
                no_kubelet[c] += 1
            st, _, _, version = self.state(n, t)
            counts = {}
            for cid, s in st.items():
                _, fam, sv = meta[cid]
                k = f"{c}|{cid}|{fam}|{sv}|{s}"
                ctl[k] = ctl.get(k, 0) + 1
                k = f"{c}|{sv}|{s}"
                sev[k] = sev.get(k, 0) + 1
                counts[s] = counts.get(s, 0) + 1
            for s, v in counts.items():
                node_status[f"{c}|{n.name}|{s}"] = v
            p, f_ = counts.get("pass", 0), counts.get("fail", 0)
            if p + f_:
                node_ratio[f"{c}|{n.name}"] = p / (p + f_)
            for key, dct in ((f"{c}|{n.pool}", pool), (c, clus)):
                a = dct.setdefault(key, [0, 0])
                a[0] += p
                a[1] += p + f_
            dr = self.drift(n, st)
            for cid, kind in dr.items():
                k = f"{c}|{cid}|{kind}"
                drift[k] = drift.get(k, 0) + 1
            if dr or self.config_drift(n, st):
                drifted[c] = drifted.get(c, 0) + 1
            if n.kubelet:
                k = f"{c}|{version}"
                versions[k] = versions.get(k, 0) + 1
        return {
            "cluster_control_status:kubelet_sentinel_nodes:count":
                {"labels": ["cluster", "control", "family", "severity", "status"], "values": ctl},
            "cluster_node_status:kubelet_sentinel_controls:count":
                {"labels": ["cluster", "node", "status"], "values": node_status},
            "cluster_severity_status:kubelet_sentinel_controls:count":
                {"labels": ["cluster", "severity", "status"], "values": sev},
            "cluster_node:kubelet_sentinel_compliance:ratio":
                {"labels": ["cluster", "node"], "values": node_ratio},
            "cluster_node_pool:kubelet_sentinel_compliance:ratio":
                {"labels": ["cluster", "node_pool"],
                 "values": {k: a[0] / a[1] for k, a in pool.items() if a[1]}},
            "cluster:kubelet_sentinel_compliance:ratio":
                {"labels": ["cluster"], "values": {k: a[0] / a[1] for k, a in clus.items() if a[1]}},
            "cluster_control_kind:kubelet_sentinel_nodes_drifted:count":
                {"labels": ["cluster", "control", "kind"], "values": drift},
            "cluster:kubelet_sentinel_nodes_drifted:count":
                {"labels": ["cluster"], "values": drifted},
            "cluster_version:kubelet_sentinel_nodes:count":
                {"labels": ["cluster", "version"], "values": versions},
            "cluster:kubelet_sentinel_nodes_reporting:count":
                {"labels": ["cluster"], "values": {k: v for k, v in reporting.items() if v}},
            "cluster:kubelet_sentinel_nodes_without_kubelet:count":
                {"labels": ["cluster"], "values": {k: v for k, v in no_kubelet.items() if v}},
            "cluster:kubelet_sentinel_nodes_without_agent:count":
                {"labels": ["cluster"], "values": {k: v for k, v in no_agent.items() if v}},
            "cluster:kubelet_sentinel_agents_down:count":
                {"labels": ["cluster"], "values": {k: v for k, v in down.items() if v}},
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("chunk", "truth", "summary", "serve"))
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--t0", type=int, required=True)
    ap.add_argument("--tend", type=int, required=True)
    ap.add_argument("--start", type=int, help="chunk: first timestamp (default t0)")
    ap.add_argument("--end", type=int, help="chunk: timestamps before this (default tend)")
    ap.add_argument("--at", type=int, help="truth: the time (default tend)")
    ap.add_argument("--out", help="chunk: the OpenMetrics file to write")
    ap.add_argument("--sd-dir", help="serve: where to write the file_sd target lists")
    ap.add_argument("--controls", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "docs", "controls.md"))
    a = ap.parse_args()
    fleet = Fleet(a.nodes, a.clusters, a.seed, a.t0, a.tend, controls_from_doc(a.controls))
    if a.what == "chunk":
        with open(a.out, "w", encoding="utf-8", buffering=1 << 22) as f:
            n = fleet.write_chunk(f, a.start if a.start is not None else a.t0,
                                  a.end if a.end is not None else a.tend)
        print(n)
    elif a.what == "serve":
        fleet.serve(a.sd_dir)
    elif a.what == "truth":
        json.dump(fleet.truth(a.at if a.at is not None else a.tend), sys.stdout, indent=0,
                  sort_keys=True)
    else:
        t = a.at if a.at is not None else a.tend
        ups = sum(1 for n in fleet.nodes if fleet.up(n, t))
        failing = sum(1 for n in fleet.nodes if fleet.up(n, t) and
                      "fail" in fleet.state(n, t)[0].values())
        events = sum(len(n.events) for n in fleet.nodes)
        print(json.dumps({"nodes": len(fleet.nodes), "clusters": len(fleet.clusters),
                          "agents_up": ups, "nodes_failing_a_control": failing,
                          "status_events": events,
                          "upgrades": sum(1 for n in fleet.nodes if n.upgrade),
                          "no_agent": sum(1 for n in fleet.nodes if not n.agent),
                          "agents_down": sum(1 for n in fleet.nodes if n.down_at is not None),
                          "no_kubelet": sum(1 for n in fleet.nodes if not n.kubelet)}))


if __name__ == "__main__":
    main()
