#!/usr/bin/env python3
"""bench/fleet.sh's side of Prometheus: the rules to load, readiness, the truth check, the
query timings and the report. Python stdlib + PyYAML (python3-yaml).

  rules    extract a rule group (recording rules only) from the repository's rules file,
           as one file for Prometheus and one file per dependency level for
           `promtool tsdb create-blocks-from rules` (a rule reading another recorded series
           must be backfilled after it: promtool queries Prometheus, which only sees what is
           already in its TSDB)
  wait     wait for Prometheus to answer, and (--settle) for its compactions to stop
  live     with Prometheus scraping the fleet: rule evaluation times, head series, memory,
           and the truth check at "now"
  check    the truth check on the backfilled recorded series at a given time
  queries  time every fleet-dashboard query (the dashboard's own, and bench/fleet/queries.json's
           raw and recorded pairs) over the HTTP API, and check that each returns data
  report   markdown tables from the JSON results
"""
import argparse
import json
import math
import os
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request

import yaml

RECORD_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def api(url, path, params=None, timeout=300):
    q = urllib.parse.urlencode(params or {}, doseq=True)
    if path.startswith("/api/v1/query"):  # POST: long expressions
        req = urllib.request.Request(f"{url}{path}", data=q.encode())
    else:
        req = urllib.request.Request(f"{url}{path}?{q}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{path} {params}: {body}")
    return body["data"]


def self_metrics(url):
    """Prometheus' own /metrics, as {name{labels}: value} for the unlabelled ones we need."""
    out = {}
    with urllib.request.urlopen(f"{url}/metrics", timeout=60) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("#") or not line:
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


# -- rules ------------------------------------------------------------------------------
def cmd_rules(a):
    with open(a.src, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    groups = [g for g in doc.get("groups", []) if g.get("name") == a.group]
    if not groups:
        sys.exit(f"{a.src}: no rule group {a.group!r} (the fleet recording rules)")
    rules = [r for r in groups[0]["rules"] if "record" in r]
    if not rules:
        sys.exit(f"{a.src}: group {a.group!r} has no recording rule")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "rules.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": a.group, "interval": a.interval, "rules": rules}]}, f,
                       sort_keys=False)
    names = {r["record"] for r in rules}
    level = {}
    while len(level) < len(rules):
        progress = False
        for r in rules:
            if r["record"] in level:
                continue
            deps = {t for t in RECORD_NAME.findall(r["expr"]) if t in names and t != r["record"]}
            if all(d in level for d in deps):
                level[r["record"]] = 1 + max((level[d] for d in deps), default=-1)
                progress = True
        if not progress:
            sys.exit("recording rules depend on each other in a cycle")
    for k in range(max(level.values()) + 1):
        with open(os.path.join(a.out, f"level-{k}.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": [{"name": f"{a.group}.level{k}", "interval": a.interval,
                                        "rules": [r for r in rules if level[r["record"]] == k]}]},
                           f, sort_keys=False)
    print(max(level.values()) + 1)


# -- wait ---------------------------------------------------------------------------------
def cmd_wait(a):
    deadline = time.time() + a.timeout
    while True:
        try:
            with urllib.request.urlopen(f"{a.url}/-/ready", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit(f"Prometheus at {a.url} not ready after {a.timeout}s")
        time.sleep(0.5)
    if not a.settle:
        return
    # Compactions run from the DB's loop once a minute (tsdb/db.go, DB.run): wait for the
    # second trigger, then until no block is being written and the block count holds still.
    last = None
    quiet = 0
    while time.time() < deadline:
        m = self_metrics(a.url)
        now = (m.get("prometheus_tsdb_compactions_total"), m.get("prometheus_tsdb_blocks_loaded"))
        busy = bool(m.get("prometheus_tsdb_compaction_populating_block", 0)) or bool(
            a.dir and any(".tmp-" in d for d in os.listdir(a.dir)))
        quiet = quiet + 1 if (now == last and not busy) else 0
        last = now
        if m.get("prometheus_tsdb_compactions_triggered_total", 0) >= 2 and quiet >= 3:
            print(f"settled: compactions={now[0]:.0f} blocks={now[1]:.0f}")
            return
        time.sleep(5)
    sys.exit("compactions did not settle")


# -- truth ---------------------------------------------------------------------------------
def check_truth(url, at, truth, names=None):
    """Every recorded series of the truth, at time `at`: same non-zero values, same label sets."""
    errors = []
    for name, spec in sorted(truth.items()):
        if names is not None and name not in names:
            continue
        res = api(url, "/api/v1/query", {"query": name, "time": at})["result"]
        if not res:
            errors.append(f"{name}: no series")
            continue
        got = {}
        for s in res:
            key = "|".join(s["metric"].get(lbl, "") for lbl in spec["labels"])
            v = float(s["value"][1])
            if v != 0:
                got[key] = got.get(key, 0) + v
        want = {k: v for k, v in spec["values"].items() if v != 0}
        bad = [k for k in set(got) | set(want)
               if not math.isclose(got.get(k, 0), want.get(k, 0), rel_tol=1e-9, abs_tol=1e-12)]
        if bad:
            sample = "; ".join(f"{k}: got {got.get(k)} want {want.get(k)}" for k in sorted(bad)[:5])
            errors.append(f"{name}: {len(bad)} of {len(want)} series differ ({sample})")
        else:
            print(f"  ok {name}: {len(want)} series (+{len(got) - len(want)} zero)")
    return errors


def cmd_check(a):
    with open(a.truth, encoding="utf-8") as f:
        truth = json.load(f)
    errors = check_truth(a.url, a.at, truth)
    for e in errors:
        print("FAIL", e, file=sys.stderr)
    sys.exit(1 if errors else 0)


# -- live -----------------------------------------------------------------------------------
def cmd_live(a):
    with open(a.truth, encoding="utf-8") as f:
        truth = json.load(f)
    started = time.time()
    # Wait for every target's first scrape, then for `evaluations` rule evaluations after it.
    while True:
        t = api(a.url, "/api/v1/targets", {"state": "active"})["activeTargets"]
        if t and all(x.get("lastScrape", "").startswith("2") and
                     not x["lastScrape"].startswith("0001") for x in t):
            break
        if time.time() - started > 300:
            sys.exit("targets not all scraped after 300 s")
        time.sleep(2)
    scraped = time.time()
    samples = []
    while time.time() - scraped < a.seconds:
        time.sleep(a.interval)
        groups = api(a.url, "/api/v1/rules", {"type": "record"})["groups"]
        m = self_metrics(a.url)
        for g in groups:
            samples.append({"group": g["name"], "evaluationTime": g["evaluationTime"],
                            "lastEvaluation": g["lastEvaluation"],
                            "rules": {r["name"]: r["evaluationTime"] for r in g["rules"]},
                            "health": sorted({r["health"] for r in g["rules"]})})
        samples[-1]["metrics"] = {k: v for k, v in m.items() if k in (
            "prometheus_tsdb_head_series", "process_resident_memory_bytes",
            "go_memstats_heap_inuse_bytes", "go_memstats_alloc_bytes",
            "prometheus_tsdb_head_chunks")}
    # One evaluation per lastEvaluation.
    evals = {}
    for s in samples:
        evals[s["lastEvaluation"]] = s
    evals = list(evals.values())
    m = samples[-1]["metrics"]
    per_rule = {}
    for e in evals:
        for r, v in e["rules"].items():
            per_rule.setdefault(r, []).append(v)
    out = {
        "evaluations": len(evals),
        "group_seconds": [e["evaluationTime"] for e in evals],
        "rule_seconds_median": {r: statistics.median(v) for r, v in per_rule.items()},
        "health": sorted({h for e in evals for h in e["health"]}),
        "metrics": m,
        "targets": len(t),
    }
    at = time.time()
    errors = check_truth(a.url, at, truth)
    out["truth_errors"] = errors
    series = api(a.url, "/api/v1/query", {
        "query": 'sort_desc(count by (__name__) ({__name__=~".+"}))', "time": at})["result"]
    out["series_by_metric"] = {s["metric"]["__name__"]: int(float(s["value"][1])) for s in series}
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    print(f"live: {len(evals)} evaluations, group {out['group_seconds']} s, head series "
          f"{m.get('prometheus_tsdb_head_series')}, RSS {m.get('process_resident_memory_bytes')}")
    for e in errors:
        print("FAIL live", e, file=sys.stderr)
    if errors or out["health"] != ["ok"] or len(evals) < 2:
        sys.exit(1)


# -- queries --------------------------------------------------------------------------------
VAR = re.compile(r"\$\{?(\w+)(?::\w+)?\}?|\[\[(\w+)\]\]")


def substitute(expr, range_s):
    def rep(m):
        name = m.group(1) or m.group(2)
        return {"__rate_interval": "2m", "__interval": "30s", "__range": f"{range_s}s",
                "__range_s": str(range_s), "__interval_ms": "30000"}.get(name, ".*")
    return VAR.sub(rep, expr)


def parse_range(s):
    m = re.fullmatch(r"now-(\d+)([smhd])", s or "")
    if not m:
        return 6 * 3600
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def dashboard_queries(path):
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append({"panel": f'{p.get("title", "")} ({t.get("refId", "")})',
                                "type": "instant" if t.get("instant") and not t.get("range")
                                else "range", "expr": t["expr"]})
    walk(d.get("panels", []))
    variables = []
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and isinstance(q, str):
            variables.append({"panel": f"variable {v['name']}", "type": "variable", "expr": q})
    return out + variables, parse_range(d.get("time", {}).get("from"))


def run_one(url, kind, expr, at, range_s):
    if kind == "variable":
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", expr)
        if not m:
            return None
        data = api(url, f"/api/v1/label/{m.group(2)}/values",
                   {"match[]": m.group(1), "start": at - range_s, "end": at})
        return len(data), None
    if kind == "instant":
        data = api(url, "/api/v1/query", {"query": expr, "time": at, "stats": "all"})
    else:
        data = api(url, "/api/v1/query_range", {"query": expr, "start": at - range_s, "end": at,
                                                "step": 30, "stats": "all"})
    st = data.get("stats", {}).get("samples", {})
    return len(data["result"]), st.get("peakSamples")


def time_query(url, kind, expr, at, range_s, runs):
    times = []
    result = None
    for _ in range(runs):
        t = time.perf_counter()
        try:
            result = run_one(url, kind, expr, at, range_s)
        except Exception as e:  # a failing query is a result (too many samples, timeout)
            return {"error": str(e)[:300]}
        times.append(time.perf_counter() - t)
    if result is None:
        return {"error": "not timed (variable query other than label_values)"}
    return {"median": statistics.median(times), "max": max(times), "series": result[0],
            "peak_samples": result[1], "runs": runs}


def cmd_queries(a):
    with open(a.pairs, encoding="utf-8") as f:
        pairs = json.load(f)["panels"]
    dash, dash_range = dashboard_queries(a.dashboard)
    range_s = a.range or dash_range
    out = {"range_seconds": range_s, "at": a.at, "pairs": [], "dashboard": []}
    for p in pairs:
        row = {"panel": p["panel"], "type": p["type"]}
        for side in ("recorded", "raw"):
            runs = a.runs if side == "recorded" or p["type"] == "instant" else a.raw_range_runs
            row[side] = time_query(a.url, p["type"], substitute(p[side], range_s), a.at, range_s,
                                   runs)
        out["pairs"].append(row)
        print(f'{p["panel"][:50]:50} rec {row["recorded"].get("median", -1):8.4f}s '
              f'raw {row["raw"].get("median", -1):8.4f}s', flush=True)
    for q in dash:
        expr = substitute(q["expr"], range_s)
        r = time_query(a.url, q["type"], expr, a.at, range_s, a.runs)
        names = set(RECORD_NAME.findall(re.sub(r'"[^"]*"', '""', expr)))
        raw = {n for n in names if n.startswith("kubelet_sentinel_") or n in ("up", "kube_node_info")}
        r.update(panel=q["panel"], type=q["type"], expr=expr,
                 recorded_only=not raw and any(":" in n for n in names))
        out["dashboard"].append(r)
        print(f'dashboard {q["panel"][:45]:45} {r.get("median", -1):8.4f}s', flush=True)
    rules_file = a.rules or os.path.join(os.path.dirname(a.out), "rules", "rules.yaml")
    out["rules"] = []
    if os.path.exists(rules_file):
        with open(rules_file, encoding="utf-8") as f:
            for g in yaml.safe_load(f)["groups"]:
                for r in g["rules"]:
                    t = time_query(a.url, "instant", r["expr"], a.at, range_s, a.runs)
                    t["record"] = r["record"]
                    out["rules"].append(t)
                    print(f'rule {r["record"][:55]:55} {t.get("median", -1):8.4f}s', flush=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    errors = []
    for row in out["pairs"]:
        for side in ("recorded", "raw"):
            if row[side].get("error") or not row[side].get("series"):
                errors.append(f'{side} {row["panel"]}: {row[side].get("error", "no data")}')
    for r in out["dashboard"]:
        if r.get("error") or not r.get("series"):
            errors.append(f'dashboard {r["panel"]}: {r.get("error", "no data")}: {r["expr"]}')
    for e in errors:
        print("FAIL", e, file=sys.stderr)
    if errors and a.strict:
        sys.exit(1)


# -- report -----------------------------------------------------------------------------------
def ms(r):
    if "error" in r:
        return "error: " + r["error"][:60]
    return f'{r["median"] * 1000:.1f} / {r["max"] * 1000:.1f}'


def cmd_report(a):
    with open(a.queries, encoding="utf-8") as f:
        q = json.load(f)
    print(f'Queries at the end of the data, range {q["range_seconds"] // 3600} h, step 30 s; '
          "median / max of the runs, in ms; peak samples from the API's stats.\n")
    print("| panel | type | recorded series: ms | peak samples | raw series: ms | peak samples |")
    print("|---|---|---|---|---|---|")
    for row in q["pairs"]:
        rec, raw = row["recorded"], row["raw"]
        print(f'| {row["panel"]} | {row["type"]} | {ms(rec)} | {rec.get("peak_samples", "")} | '
              f'{ms(raw)} | {raw.get("peak_samples", "")} |')
    tot = {s: sum(r[s].get("median", 0) for r in q["pairs"]) for s in ("recorded", "raw")}
    print(f'| **all panels, one after the other** | | **{tot["recorded"] * 1000:.0f}** | | '
          f'**{tot["raw"] * 1000:.0f}** | |')
    if q["dashboard"]:
        print("\ndashboards/kubelet-sentinel-fleet.json, every target and variable query:\n")
        print("| panel | type | reads only recorded series | ms | series | peak samples |")
        print("|---|---|---|---|---|---|")
        for r in q["dashboard"]:
            print(f'| {r["panel"]} | {r["type"]} | {"yes" if r["recorded_only"] else "no"} | '
                  f'{ms(r)} | {r.get("series", "")} | {r.get("peak_samples", "")} |')
    if q.get("rules"):
        print("\nEach recording rule's expression as an instant query on the backfilled TSDB "
              "(what one evaluation costs without scrapes competing):\n")
        print("| rule | ms | series out | peak samples |\n|---|---|---|---|")
        for r in q["rules"]:
            print(f'| `{r["record"]}` | {ms(r)} | {r.get("series", "")} | '
                  f'{r.get("peak_samples", "")} |')
        tot = sum(r.get("median", 0) for r in q["rules"])
        print(f"| **the group, one rule after the other** | **{tot * 1000:.0f}** | | |")
    if a.live and os.path.exists(a.live):
        with open(a.live, encoding="utf-8") as f:
            lv = json.load(f)
        m = lv["metrics"]
        head = m.get("prometheus_tsdb_head_series", 0)
        print(f'\nLive: {lv["targets"]} targets, {lv["evaluations"]} evaluations of the group: '
              f'{", ".join(f"{s * 1000:.0f} ms" for s in lv["group_seconds"])}; head series '
              f'{head:.0f}; RSS {m.get("process_resident_memory_bytes", 0) / 2**20:.0f} MiB '
              f'({m.get("process_resident_memory_bytes", 0) / max(head, 1):.0f} B/series), heap in '
              f'use {m.get("go_memstats_heap_inuse_bytes", 0) / 2**20:.0f} MiB '
              f'({m.get("go_memstats_heap_inuse_bytes", 0) / max(head, 1):.0f} B/series).')
        print("\n| rule | median evaluation, ms |\n|---|---|")
        for r, v in sorted(lv["rule_seconds_median"].items(), key=lambda x: -x[1]):
            print(f"| `{r}` | {v * 1000:.1f} |")
        print("\n| metric | series |\n|---|---|")
        for k, v in lv["series_by_metric"].items():
            print(f"| `{k}` | {v} |")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("rules")
    p.add_argument("--src", required=True)
    p.add_argument("--group", default="kubelet-sentinel.fleet.rules")
    p.add_argument("--interval", default="30s")
    p.add_argument("--out", required=True)
    p = sub.add_parser("wait")
    p.add_argument("--url", required=True)
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--settle", action="store_true")
    p.add_argument("--dir", help="the TSDB directory (for the compactor's temporary blocks)")
    p = sub.add_parser("check")
    p.add_argument("--url", required=True)
    p.add_argument("--at", type=int, required=True)
    p.add_argument("--truth", required=True)
    p = sub.add_parser("live")
    p.add_argument("--url", required=True)
    p.add_argument("--truth", required=True)
    p.add_argument("--seconds", type=int, default=120)
    p.add_argument("--interval", type=int, default=10)
    p.add_argument("--out", required=True)
    p = sub.add_parser("queries")
    p.add_argument("--url", required=True)
    p.add_argument("--at", type=int, required=True)
    p.add_argument("--range", type=int)
    p.add_argument("--dashboard", required=True)
    p.add_argument("--pairs", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--raw-range-runs", type=int, default=3)
    p.add_argument("--strict", action="store_true")
    p.add_argument("--rules", help="also time each rule's expression as an instant query "
                   "(default: rules/rules.yaml next to --out)")
    p.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("--queries", required=True)
    p.add_argument("--live")
    a = ap.parse_args()
    globals()["cmd_" + a.cmd](a)


if __name__ == "__main__":
    main()
