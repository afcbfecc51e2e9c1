//! The Grafana dashboards (`dashboards/*.json`) keep to the metrics contract: every panel
//! query of the node dashboard names metric families that exist (the golden exposition or
//! the docs/metrics.md's Metrics table), every panel query of the fleet dashboard names only
//! series recorded by the rules of `alerts/kubelet-sentinel.rules.yaml` (and every series
//! the fleet rules record is shown), with labels and values those series have, filtered by
//! the dashboard's variables; every panel reads the `${datasource}` variable; the
//! variables, uids, tags and links are the stable ones; and the Helm chart carries
//! byte-identical copies.
//!
//! Schema validity (against `@grafana/schema`) is `scripts/check-dashboards.sh`; whether
//! every query returns data from a real Prometheus is the pipeline test's.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::metrics::{known_families, NOT_ON_A_DEFAULT_INSTALL};
use common::promql::{selectors, shape_safe_reads, variables_in, Selector};
use common::rules::{recording_rules, Recorded};
use kubelet_sentinel::evaluate::catalogue;
use serde_json::Value;

const FLEET: &str = "kubelet-sentinel-fleet";
const NODE: &str = "kubelet-sentinel-node";

/// The Grafana variables and macros a panel query may use: exactly the ones a tool that
/// evaluates the queries outside Grafana substitutes (`$cluster` -> `.*`, `$node` -> a
/// node, the interval macros -> a duration). Listed in scripts/check-dashboards.sh too.
const QUERY_VARIABLES: [&str; 5] = [
    "cluster",
    "node",
    "__rate_interval",
    "__interval",
    "__range",
];

/// Series a panel may query that the agent does not export: Prometheus' own per-target
/// `up` (it has no `node` label; panels join it to `kubelet_sentinel_build_info`).
const PROMETHEUS_SERIES: [&str; 1] = ["up"];

/// Labels every agent series may carry besides its own: `node` from the agent, `cluster`
/// from external labels or relabelling, `instance`/`job` from the scrape.
const TARGET_LABELS: [&str; 4] = ["node", "cluster", "instance", "job"];

const STATUSES: [&str; 4] = ["pass", "fail", "unknown", "not_applicable"];
const DRIFT: &str = "kubelet_sentinel_control_drift";
const DRIFT_KINDS: [&str; 2] = ["changed", "regressed"];

/// Where each control is described (title, CIS reference, what passes, remediation): the
/// node dashboard links every control id to its section, instead of joining
/// `kubelet_sentinel_control_info` (off by default).
const CONTROLS_DOC: &str =
    "https://github.com/kubelet-sentinel/kubelet-sentinel/blob/main/docs/controls.md#";
const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn load(uid: &str) -> Value {
    let rel = format!("dashboards/{uid}.json");
    serde_json::from_str(&read(&rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

fn dashboards() -> Vec<(&'static str, Value)> {
    vec![(FLEET, load(FLEET)), (NODE, load(NODE))]
}

/// Every panel, those inside rows (collapsed rows keep theirs in `panels`) included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

fn is_query_panel(p: &Value) -> bool {
    !matches!(p["type"].as_str(), Some("row" | "text"))
}

fn title(p: &Value) -> &str {
    p["title"].as_str().unwrap_or("(untitled)")
}

// ---------------------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------------------

#[test]
fn every_panel_queries_existing_metrics_filtered_by_the_variables() {
    let known = known_families();
    let recorded: BTreeMap<String, Recorded> = recording_rules()
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    let controls: BTreeSet<&str> = catalogue().iter().map(|c| c.id).collect();
    let mut problems = Vec::new();
    let mut queries = 0;
    for (uid, d) in dashboards() {
        for p in panels(&d).into_iter().filter(|p| is_query_panel(p)) {
            let t = title(p);
            let targets = p["targets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if targets.is_empty() {
                problems.push(format!("{uid} [{t}]: no targets"));
            }
            for target in targets {
                let expr = target["expr"].as_str().unwrap_or_default();
                if expr.trim().is_empty() {
                    problems.push(format!("{uid} [{t}] {}: empty expr", target["refId"]));
                    continue;
                }
                queries += 1;
                match variables_in(expr) {
                    Ok(vars) => {
                        for v in vars
                            .iter()
                            .filter(|v| !QUERY_VARIABLES.contains(&v.as_str()))
                        {
                            problems.push(format!(
                                "{uid} [{t}]: ${v} is not one of {QUERY_VARIABLES:?}: {expr}"
                            ));
                        }
                    }
                    Err(e) => problems.push(format!("{uid} [{t}]: {e}: {expr}")),
                }
                let sels = match selectors(expr) {
                    Ok(s) => s,
                    Err(e) => {
                        problems.push(format!("{uid} [{t}]: {e}"));
                        continue;
                    }
                };
                if sels.is_empty() {
                    problems.push(format!("{uid} [{t}]: no metric in {expr}"));
                }
                for s in sels {
                    if uid == FLEET {
                        problems.extend(check_recorded(t, expr, &s, &recorded, &controls));
                    } else {
                        problems.extend(check_selector(uid, t, expr, &s, &known, &controls));
                    }
                }
            }
        }
    }
    assert!(queries >= 40, "only {queries} queries");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A fleet-dashboard selector: a series recorded by a rule of the rules file (not a raw
/// agent series: at fleet scale those are aggregated once per evaluation by the rules, not
/// at every dashboard refresh), selected by labels that rule's result has, filtered by
/// `$cluster` always and by `$node` when the series is per node.
fn check_recorded(
    title: &str,
    expr: &str,
    s: &Selector,
    recorded: &BTreeMap<String, Recorded>,
    controls: &BTreeSet<&str>,
) -> Vec<String> {
    let at = format!("{FLEET} [{title}] {}", s.metric);
    let Some(rule) = recorded.get(&s.metric) else {
        return vec![format!(
            "{at}: not a series recorded by a rule of {} (the fleet dashboard reads recorded series only): {expr}",
            common::rules::SOURCE
        )];
    };
    let mut problems = Vec::new();
    let has = |label: &str, value: &str| {
        s.matchers
            .iter()
            .any(|(l, op, v)| l == label && op == "=~" && v == value)
    };
    if !has("cluster", "$cluster") {
        problems.push(format!("{at}: lacks cluster=~\"$cluster\": {expr}"));
    }
    if rule.labels.contains("node") != has("node", "$node") {
        problems.push(format!(
            "{at}: node=~\"$node\" must filter exactly the per-node series (labels {:?}): {expr}",
            rule.labels
        ));
    }
    for (label, op, value) in &s.matchers {
        if !rule.labels.contains(label) {
            problems.push(format!(
                "{at}: has no label {label} (it has {:?})",
                rule.labels
            ));
        }
        problems.extend(unknown_values(&at, &s.metric, label, op, value, controls));
    }
    problems
}

/// A matcher's values that its label cannot take: statuses, severities, control ids and
/// drift kinds are closed sets (a regex matcher is read as its `|` alternatives). `kind`
/// is checked on the drift gauge and on the recorded series that keep it (`*_kind:*`).
fn unknown_values(
    at: &str,
    metric: &str,
    label: &str,
    op: &str,
    value: &str,
    controls: &BTreeSet<&str>,
) -> Vec<String> {
    let values: Vec<&str> = if op.ends_with('~') {
        value.split('|').collect()
    } else {
        vec![value]
    };
    let allowed: Option<Vec<&str>> = match label {
        "status" => Some(STATUSES.to_vec()),
        "severity" => Some(SEVERITIES.to_vec()),
        "control" => Some(controls.iter().copied().collect()),
        "kind" if metric == DRIFT || metric.contains("_kind:") => Some(DRIFT_KINDS.to_vec()),
        _ => None,
    };
    let Some(allowed) = allowed else {
        return Vec::new();
    };
    values
        .iter()
        .filter(|v| !allowed.contains(v))
        .map(|v| format!("{at}: {label}={v:?} is not one of {allowed:?}"))
        .collect()
}

/// Every series the fleet rules record is on the fleet dashboard (a rule nobody reads is
/// evaluation cost for nothing), and the fleet dashboard's variables read only the agents'
/// info series.
#[test]
fn the_fleet_dashboard_shows_every_fleet_recording_rule() {
    let d = load(FLEET);
    let mut used = BTreeSet::new();
    for p in panels(&d).into_iter().filter(|p| is_query_panel(p)) {
        for target in p["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            for s in selectors(expr).unwrap_or_else(|e| panic!("{expr}: {e}")) {
                used.insert(s.metric);
            }
        }
    }
    let fleet: Vec<Recorded> = recording_rules()
        .into_iter()
        .filter(|r| r.group == "kubelet-sentinel.fleet.rules")
        .collect();
    assert!(fleet.len() >= 13, "only {} fleet rules", fleet.len());
    let unused: Vec<&str> = fleet
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| !used.contains(*n))
        .collect();
    assert!(
        unused.is_empty(),
        "recorded by kubelet-sentinel.fleet.rules but on no panel of {FLEET}: {unused:?}"
    );
    for v in d["templating"]["list"].as_array().expect("templating.list") {
        let Some(query) = v["query"].as_str() else {
            continue;
        };
        if v["type"] != "query" {
            continue;
        }
        let inner = query
            .strip_prefix("label_values(")
            .unwrap_or_else(|| panic!("{FLEET} variable {}: {query}", v["name"]));
        // label_values(<series selector>, <label>)
        let (inner, _label) = inner
            .rsplit_once(',')
            .unwrap_or_else(|| panic!("{FLEET} variable {}: {query}", v["name"]));
        for s in selectors(inner).unwrap_or_else(|e| panic!("{query}: {e}")) {
            assert!(
                ["kubelet_sentinel_build_info", "kubelet_sentinel_node_info"]
                    .contains(&s.metric.as_str()),
                "{FLEET} variable {}: reads {} (only the agents' info series)",
                v["name"],
                s.metric
            );
        }
    }
}

fn check_selector(
    uid: &str,
    title: &str,
    expr: &str,
    s: &Selector,
    known: &BTreeMap<String, BTreeSet<String>>,
    controls: &BTreeSet<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let at = format!("{uid} [{title}] {}", s.metric);
    let prometheus = PROMETHEUS_SERIES.contains(&s.metric.as_str());
    let none = BTreeSet::new();
    let Some(labels) = known.get(&s.metric).or(prometheus.then_some(&none)) else {
        return vec![format!(
            "{at}: no such metric (not in tests/golden/metrics.prom nor docs/metrics.md's Metrics table): {expr}"
        )];
    };
    let has = |label: &str, ops: &[&str], value: &str| {
        s.matchers
            .iter()
            .any(|(l, op, v)| l == label && ops.contains(&op.as_str()) && v == value)
    };
    if !has("cluster", &["=~"], "$cluster") {
        problems.push(format!("{at}: lacks cluster=~\"$cluster\": {expr}"));
    }
    // `up` carries no node label: it is joined to an agent series that is node-filtered.
    let node_ok = if uid == NODE {
        has("node", &["="], "$node")
    } else {
        has("node", &["=~"], "$node")
    };
    if !prometheus && !node_ok {
        let want = if uid == NODE {
            "node=\"$node\""
        } else {
            "node=~\"$node\""
        };
        problems.push(format!("{at}: lacks {want}: {expr}"));
    }
    for (label, op, value) in &s.matchers {
        if !prometheus && !labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
            problems.push(format!("{at}: has no label {label} (it has {labels:?})"));
        }
        problems.extend(unknown_values(&at, &s.metric, label, op, value, controls));
    }
    problems
}

/// Every PromQL expression of a dashboard: panel targets and query variables, each with
/// where it is (for messages).
fn queries(uid: &str, d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        for target in p["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((
                    format!("{uid} [{}] {}", title(p), target["refId"]),
                    expr.to_string(),
                ));
            }
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["query"].as_str().filter(|_| v["type"] == "query") {
            out.push((format!("{uid} variable {}", v["name"]), q.to_string()));
        }
    }
    out
}

#[test]
fn no_dashboard_reads_a_series_a_default_install_does_not_export() {
    let mut problems = Vec::new();
    let mut n = 0;
    for (uid, d) in dashboards() {
        for (at, expr) in queries(uid, &d) {
            n += 1;
            for s in selectors(&expr).unwrap_or_else(|e| panic!("{at}: {e}")) {
                if NOT_ON_A_DEFAULT_INSTALL.contains(&s.metric.as_str()) {
                    problems.push(format!("{at}: reads {}: {expr}", s.metric));
                }
            }
        }
    }
    assert!(n >= 40, "only {n} queries");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `kubelet_sentinel_control_status` has two shapes (the current status only, value 1, by
/// default; every status 0 or 1 with `--metrics-control-states all`): every dashboard
/// reads it as `== 1` or as a `sum`, which mean the same in both.
#[test]
fn every_dashboard_reads_control_status_the_same_in_both_shapes() {
    let mut problems = Vec::new();
    let mut node_reads = 0;
    for (uid, d) in dashboards() {
        for (at, expr) in queries(uid, &d) {
            let found = shape_safe_reads(&expr, "kubelet_sentinel_control_status")
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            for (s, ok) in found {
                node_reads += usize::from(uid == NODE);
                if !ok {
                    problems.push(format!(
                        "{at}: kubelet_sentinel_control_status{:?} is neither compared with \
                         `== 1` nor summed: {expr}",
                        s.matchers
                    ));
                }
            }
        }
    }
    assert!(
        node_reads >= 10,
        "the node dashboard reads control_status {node_reads} times"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_node_dashboard_links_every_control_to_docs_controls_md() {
    let d = load(NODE);
    let ps = panels(&d);
    let panel = |t: &str| {
        *ps.iter()
            .find(|p| title(p) == t && is_query_panel(p))
            .unwrap_or_else(|| panic!("{NODE}: no panel {t:?}"))
    };
    // The table: a data link on its `control` column.
    let table = panel("Controls");
    let link = table["fieldConfig"]["overrides"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["matcher"]["id"] == "byName" && o["matcher"]["options"] == "control")
        .flat_map(|o| o["properties"].as_array().into_iter().flatten())
        .filter(|p| p["id"] == "links")
        .flat_map(|p| p["value"].as_array().into_iter().flatten())
        .find_map(|l| l["url"].as_str())
        .unwrap_or_else(|| panic!("{NODE} [Controls]: no data link on the control column"));
    assert_eq!(link, format!("{CONTROLS_DOC}${{__value.raw}}"));
    // Its rows are keyed by control (every query aggregates `by (control, ...)`).
    for t in table["targets"].as_array().expect("targets") {
        let expr = t["expr"].as_str().unwrap_or_default();
        assert!(
            expr.starts_with("max by (control"),
            "{NODE} [Controls]: {expr}"
        );
    }
    // The status timeline: a link per series (one per control).
    let timeline = panel("Control status over time");
    let links = timeline["fieldConfig"]["defaults"]["links"].as_array();
    assert!(
        links
            .into_iter()
            .flatten()
            .any(|l| l["url"].as_str()
                == Some(&format!("{CONTROLS_DOC}${{__field.labels.control}}"))),
        "{NODE} [Control status over time]: no data link to docs/controls.md: {links:?}"
    );
    // And each control's anchor exists: a `## <id>` heading (GitHub's anchor of a heading
    // made of lowercase letters, digits and hyphens is the heading itself).
    let doc = read("docs/controls.md");
    let headings: BTreeSet<&str> = doc.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    for c in catalogue() {
        assert!(
            c.id.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'),
            "{}: an id GitHub would rewrite in its anchor",
            c.id
        );
        assert!(
            headings.contains(c.id),
            "docs/controls.md: no `## {}` heading, the dashboard's link has no target",
            c.id
        );
    }
}

#[test]
fn every_panel_reads_the_datasource_variable() {
    let want = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let mut problems = Vec::new();
    for (uid, d) in dashboards() {
        for p in panels(&d) {
            let t = title(p);
            let ds = &p["datasource"];
            if (is_query_panel(p) || !ds.is_null()) && *ds != want {
                problems.push(format!("{uid} [{t}]: datasource {ds}"));
            }
            for target in p["targets"].as_array().into_iter().flatten() {
                let ds = &target["datasource"];
                if !ds.is_null() && *ds != want {
                    problems.push(format!("{uid} [{t}] {}: datasource {ds}", target["refId"]));
                }
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let ds = &v["datasource"];
            if !ds.is_null() && *ds != want {
                problems.push(format!("{uid} variable {}: datasource {ds}", v["name"]));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn variables_uids_tags_and_links_are_the_stable_ones() {
    for (uid, d) in dashboards() {
        assert_eq!(d["uid"], uid, "dashboards/{uid}.json has uid {}", d["uid"]);
        assert!(
            d["id"].is_null(),
            "{uid}: a provisioned dashboard has no numeric id"
        );
        assert!(
            d["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "kubelet-sentinel")),
            "{uid}: tags {}",
            d["tags"]
        );
        let vars: BTreeMap<&str, &Value> = d["templating"]["list"]
            .as_array()
            .expect("templating.list")
            .iter()
            .map(|v| (v["name"].as_str().unwrap_or_default(), v))
            .collect();

        let ds = vars
            .get("datasource")
            .unwrap_or_else(|| panic!("{uid}: no datasource variable"));
        assert_eq!(ds["type"], "datasource", "{uid}");
        assert_eq!(ds["query"], "prometheus", "{uid}");

        let cluster = vars
            .get("cluster")
            .unwrap_or_else(|| panic!("{uid}: no cluster variable"));
        assert_eq!(cluster["type"], "query", "{uid}");
        assert_eq!(
            cluster["query"], "label_values(kubelet_sentinel_build_info, cluster)",
            "{uid}"
        );
        assert_eq!(cluster["includeAll"], true, "{uid}");
        assert_eq!(
            cluster["allValue"], ".*",
            "{uid}: All must match series without the label"
        );

        let node = vars
            .get("node")
            .unwrap_or_else(|| panic!("{uid}: no node variable"));
        assert_eq!(node["type"], "query", "{uid}");
        assert_eq!(
            node["query"], "label_values(kubelet_sentinel_build_info{cluster=~\"$cluster\"}, node)",
            "{uid}"
        );
        if uid == FLEET {
            assert_eq!(
                (&node["multi"], &node["includeAll"]),
                (&Value::Bool(true), &Value::Bool(true)),
                "{uid}"
            );
            assert_eq!(node["allValue"], ".*", "{uid}");
        } else {
            assert_ne!(node["multi"], true, "{uid}: one node at a time");
            assert_ne!(node["includeAll"], true, "{uid}: one node at a time");
        }
        // Variables come in dependency order.
        let order: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert_eq!(&order[..3], ["datasource", "cluster", "node"], "{uid}");

        // A link to the other dashboard, carrying the variables and the time range.
        let other = if uid == FLEET { NODE } else { FLEET };
        let links = d["links"].as_array().expect("links");
        assert!(
            links.iter().any(|l| l["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(&format!("/d/{other}")))
                && l["includeVars"] == true
                && l["keepTime"] == true),
            "{uid}: no link to {other}: {links:?}"
        );
    }
}

#[test]
fn panels_have_unique_ids_and_titles_and_do_not_overlap() {
    for (uid, d) in dashboards() {
        let ps = panels(&d);
        let mut ids = BTreeSet::new();
        let mut titles = BTreeSet::new();
        let mut rects = Vec::new();
        for p in &ps {
            let t = title(p);
            assert!(
                ids.insert(p["id"].as_u64().expect("numeric id")),
                "{uid}: duplicate id {}",
                p["id"]
            );
            // Panel titles name the panels in reports (rows are only section headings).
            assert!(
                p["type"] == "row" || titles.insert(t),
                "{uid}: duplicate panel title {t:?}"
            );
            assert!(
                p["description"].as_str().is_some_and(|s| !s.is_empty()) || !is_query_panel(p),
                "{uid} [{t}]: no description"
            );
            let g = &p["gridPos"];
            let n = |k: &str| {
                g[k].as_u64()
                    .unwrap_or_else(|| panic!("{uid} [{t}]: gridPos.{k}"))
            };
            let (x, y, w, h) = (n("x"), n("y"), n("w"), n("h"));
            assert!(w > 0 && h > 0 && x + w <= 24, "{uid} [{t}]: gridPos {g}");
            rects.push((t, x, y, w, h));
        }
        for (i, a) in rects.iter().enumerate() {
            for b in &rects[i + 1..] {
                let apart =
                    a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1 || a.2 + a.4 <= b.2 || b.2 + b.4 <= a.2;
                assert!(apart, "{uid}: panels {:?} and {:?} overlap", a.0, b.0);
            }
        }
    }
}

#[test]
fn the_node_dashboard_says_where_observed_values_and_sources_are() {
    let d = load(NODE);
    let texts: Vec<&str> = panels(&d)
        .into_iter()
        .filter(|p| p["type"] == "text")
        .filter_map(|p| p["options"]["content"].as_str())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("kubelet-sentinel check --format json")
                && t.contains("observed")
                && t.contains("source")),
        "no text panel pointing at `kubelet-sentinel check --format json`: {texts:?}"
    );
}

#[test]
fn the_chart_carries_identical_copies() {
    let list = |dir: &str| -> BTreeSet<PathBuf> {
        std::fs::read_dir(root().join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| PathBuf::from(p.file_name().expect("name")))
            .collect()
    };
    let ours = list("dashboards");
    let chart = list("charts/kubelet-sentinel/dashboards");
    assert_eq!(
        ours, chart,
        "charts/kubelet-sentinel/dashboards/ must hold exactly dashboards/*.json: run scripts/check-dashboards.sh --sync"
    );
    assert_eq!(
        ours,
        BTreeSet::from([
            PathBuf::from(format!("{FLEET}.json")),
            PathBuf::from(format!("{NODE}.json"))
        ])
    );
    for f in &ours {
        let a = std::fs::read(root().join("dashboards").join(f)).expect("read");
        let b =
            std::fs::read(root().join("charts/kubelet-sentinel/dashboards").join(f)).expect("read");
        assert!(
            a == b,
            "charts/kubelet-sentinel/dashboards/{} differs from dashboards/: run scripts/check-dashboards.sh --sync",
            f.display()
        );
    }
}
