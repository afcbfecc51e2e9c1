//! `kubelet-sentinel fix` proven on real kubelets (`tests/kubelet-truth/`).
//!
//! Every scenario `fix-<base>` is the kubelet of scenario `<base>` started with the fix
//! applied: the fix's drop-in in its `--config-dir` (`90-kubelet-sentinel.conf`) and its
//! flag changes made to its command line. Over every recorded kubelet version:
//! - (a) the fix `kubelet-sentinel fix --dry-run --format json` generates on `<base>`'s
//!   host tree (its recorded command line in `/proc` and in a `kubelet.service` unit, its
//!   files, the harness's kubeconfig, the kernel settings `record.sh` gives the host) is
//!   exactly what `fix-<base>` runs with: the drop-in's text and settings, and `<base>`'s
//!   arguments with the plan's flag changes made (`UPDATE_FIX_TRUTH=1` rewrites the `fix-*`
//!   scenarios from it; then record them again);
//! - (b) the fixed kubelet started, its `/configz` holds every value the fix promised (the
//!   drop-in's settings and the flags the fix set), an anonymous `GET /pods` is refused
//!   with 401, nothing listens on the read-only port 10255, and `/configz` differs from the
//!   base kubelet's only in the promised settings;
//! - (c) the base kubelet started and shows the opposite: none of the promised values, an
//!   anonymous request answered, a listener on 10255 (so (b) can fail);
//! - the agent's verdicts agree: the controls the fix closes fail on the base scenario's
//!   host tree and pass on the fixed one.
//!
//! Nothing here runs a kubelet: `tests/kubelet-truth/record.sh` made the recordings (CI
//! re-records the newest version and fails on any difference).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use common::truth::{
    add_harness_kubeconfig, add_kernel_tunables, host_tree, placeholders, recordings,
    scenario_names, strings, substitute, truth_dir, HARNESS, PID, ROOT,
};
use kubelet_sentinel::evaluate::{evaluate, policy::Policy, Status};
use kubelet_sentinel::io::host::HostRoot;
use kubelet_sentinel::model::kubelet_config::flags::parse_go_bool;
use kubelet_sentinel::model::kubelet_config::settings::{parse_go_duration, SettingKind, SETTINGS};
use kubelet_sentinel::model::parse::yaml;
use kubelet_sentinel::observe::{observe, ObserveOptions};
use serde_json::{json, Value};

/// The fix's drop-in name (`fix --dropin-name`'s default).
const DROPIN: &str = "90-kubelet-sentinel.conf";

/// The read-only port the base scenarios open.
const READ_ONLY_PORT: i64 = 10255;

/// The controls the fix must close on every base scenario: the four insecure settings.
const CLOSED: &[&str] = &[
    "read-only-port-disabled",
    "anonymous-auth-disabled",
    "authorization-mode-webhook",
    "authentication-webhook-enabled",
];

/// `(base, fixed)` for every scenario `fix-<base>`.
fn pairs() -> Vec<(String, String)> {
    let names: BTreeSet<String> = scenario_names().into_iter().collect();
    let pairs: Vec<(String, String)> = names
        .iter()
        .filter_map(|n| n.strip_prefix("fix-").map(|b| (b.to_string(), n.clone())))
        .collect();
    for (base, fixed) in &pairs {
        assert!(
            names.contains(base),
            "{fixed}: no base scenario {base} (a fix-* scenario is the fix of another scenario)"
        );
    }
    assert!(
        pairs.len() >= 3,
        "only {} fix-* scenarios: {pairs:?}",
        pairs.len()
    );
    pairs
}

/// A scenario's `args` file as the recorder reads it: one word a line, blank and `#`
/// lines ignored.
fn scenario_args(name: &str) -> Vec<String> {
    let text = fs::read_to_string(truth_dir().join("scenarios").join(name).join("args"))
        .unwrap_or_else(|e| panic!("{name}/args: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The `--config-dir` of a scenario's args, relative to the scenario dir.
fn config_dir(name: &str) -> Option<String> {
    scenario_args(name).iter().find_map(|a| {
        a.strip_prefix("--config-dir=")
            .map(|d| d.trim_start_matches("@ROOT@/").to_string())
    })
}

/// The fix's drop-in of a scenario, parsed (`None`: the scenario has none).
fn dropin(name: &str) -> Option<Value> {
    let dir = config_dir(name)?;
    let path = truth_dir()
        .join("scenarios")
        .join(name)
        .join(dir)
        .join(DROPIN);
    let text = fs::read_to_string(&path).ok()?;
    let doc: Value = yaml(&text).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    assert_eq!(
        (doc["apiVersion"].as_str(), doc["kind"].as_str()),
        (
            Some("kubelet.config.k8s.io/v1beta1"),
            Some("KubeletConfiguration")
        ),
        "{name}: {DROPIN} is not a KubeletConfiguration"
    );
    Some(doc)
}

/// A field's path in a KubeletConfiguration or `/configz` object: a list of keys, since a
/// key may hold a dot (`evictionHard`'s `memory.available`).
type FieldPath = Vec<String>;

/// `a.b.c` for messages.
fn dotted(p: &FieldPath) -> String {
    p.join(".")
}

/// The leaves of a JSON object by path; lists are leaves.
fn leaves(v: &Value) -> BTreeMap<FieldPath, Value> {
    fn walk(v: &Value, prefix: &mut FieldPath, out: &mut BTreeMap<FieldPath, Value>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    prefix.push(k.clone());
                    walk(v, prefix, out);
                    prefix.pop();
                }
            }
            other => {
                out.insert(prefix.clone(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The settings of a KubeletConfiguration document (without `apiVersion`, `kind`).
fn settings_of(doc: &Value) -> BTreeMap<FieldPath, Value> {
    let mut all = leaves(doc);
    all.remove(&vec!["apiVersion".to_string()]);
    all.remove(&vec!["kind".to_string()]);
    all
}

/// A flag's text as the JSON value of its setting.
fn flag_json(kind: SettingKind, text: &str, flag: &str) -> Value {
    match kind {
        SettingKind::Bool => {
            json!(parse_go_bool(text).unwrap_or_else(|| panic!("--{flag}={text}: not a bool")))
        }
        SettingKind::Int => json!(text
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("--{flag}={text}: not an int"))),
        SettingKind::String | SettingKind::Duration => json!(text),
        SettingKind::StringList => json!(text.split(',').collect::<Vec<_>>()),
        other => panic!("--{flag}: a {other:?} flag is not compared here"),
    }
}

/// What the fix promised for `fixed`: (configz path, value). The drop-in's settings, and
/// each config-backed flag `fixed` has that `base` has not. Also checks that every flag
/// the fix removed has its setting in the drop-in (with a `--config-dir`, a removed
/// flag's value comes from the drop-in).
fn promised(base: &str, fixed: &str) -> BTreeMap<FieldPath, Value> {
    let mut out = BTreeMap::new();
    if let Some(doc) = dropin(fixed) {
        let all = settings_of(&doc);
        assert!(!all.is_empty(), "{fixed}: {DROPIN} sets nothing");
        out.extend(all);
    }
    let base_args: BTreeSet<String> = scenario_args(base).into_iter().collect();
    let fixed_args: BTreeSet<String> = scenario_args(fixed).into_iter().collect();
    for added in fixed_args.difference(&base_args) {
        let (flag, text) = added
            .strip_prefix("--")
            .and_then(|a| a.split_once('='))
            .unwrap_or_else(|| panic!("{fixed}: added argument {added:?} is not --flag=value"));
        let def = SETTINGS
            .iter()
            .find(|s| s.flag == Some(flag))
            .unwrap_or_else(|| panic!("{fixed}: added flag --{flag} sets no modelled setting"));
        out.insert(field_path(def.path), flag_json(def.kind, text, flag));
    }
    for removed in base_args.difference(&fixed_args) {
        let Some(flag) = removed
            .strip_prefix("--")
            .map(|a| a.split_once('=').map_or(a, |(f, _)| f))
        else {
            continue;
        };
        if let Some(def) = SETTINGS.iter().find(|s| s.flag == Some(flag)) {
            if fixed_args
                .iter()
                .any(|a| a.starts_with(&format!("--{flag}=")))
            {
                continue; // replaced: the new value is promised above
            }
            assert!(
                config_dir(fixed).is_some() && out.contains_key(&field_path(def.path)),
                "{fixed}: --{flag} removed, but no drop-in of the fix sets {}",
                def.path.join(".")
            );
        }
    }
    assert!(!out.is_empty(), "{fixed}: the fix promises nothing");
    out
}

/// A setting's path as [`FieldPath`].
fn field_path(p: &[&str]) -> FieldPath {
    p.iter().map(|s| (*s).to_string()).collect()
}

/// The value at a path of a `/configz` object.
fn at<'a>(configz: &'a Value, path: &FieldPath) -> &'a Value {
    path.iter().fold(configz, |cur, p| &cur[p.as_str()])
}

/// `/configz` omits Go's zero values.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Whether `/configz`'s `running` means the promised `want` (an omitted field is its
/// zero value; durations by their length: `5m` = `5m0s`).
fn same(running: &Value, want: &Value) -> bool {
    if running == want || (running.is_null() && is_zero(want)) {
        return true;
    }
    match (running.as_str(), want.as_str()) {
        (Some(r), Some(w)) => parse_go_duration(r).is_some_and(|r| parse_go_duration(w) == Some(r)),
        _ => false,
    }
}

/// The TLS ports' statuses of an anonymous `GET /pods`.
fn anonymous(rec: &Value) -> BTreeMap<String, Value> {
    rec["anonymous"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn listens_on(rec: &Value, port: i64) -> bool {
    rec["listening"]
        .as_array()
        .is_some_and(|a| a.iter().any(|l| l["port"].as_i64() == Some(port)))
}

/// Recordings by (version, scenario).
fn recorded() -> BTreeMap<(String, String), Value> {
    recordings()
        .into_iter()
        .map(|(v, s, r)| ((v, s), r))
        .collect()
}

fn versions(recs: &BTreeMap<(String, String), Value>) -> BTreeSet<String> {
    recs.keys().map(|(v, _)| v.clone()).collect()
}

#[test]
fn every_fix_pair_is_recorded_for_every_version() {
    let recs = recorded();
    let versions = versions(&recs);
    assert!(versions.len() >= 4, "recorded versions: {versions:?}");
    let mut missing = Vec::new();
    for (base, fixed) in pairs() {
        for v in &versions {
            for s in [&base, &fixed] {
                if !recs.contains_key(&(v.clone(), s.clone())) {
                    missing.push(format!("{v}/{s}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not recorded (run tests/kubelet-truth/record.sh --version V NAME...): {missing:?}"
    );
}

/// (b): the fixed kubelets start and serve what the fix promised.
#[test]
fn the_fixed_kubelets_serve_what_the_fix_promised() {
    let recs = recorded();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (base, fixed) in pairs() {
        let promise = promised(&base, &fixed);
        for v in versions(&recs) {
            let (Some(rec), Some(base_rec)) = (
                recs.get(&(v.clone(), fixed.clone())),
                recs.get(&(v.clone(), base.clone())),
            ) else {
                continue; // every_fix_pair_is_recorded_for_every_version says so
            };
            checked += 1;
            let at_ = format!("{v} {fixed}");
            if rec["started"] != json!(true) {
                failures.push(format!(
                    "{at_}: the kubelet did not start: {}",
                    rec["exit_error"]
                ));
                continue;
            }
            let Some(configz) = rec["configz"].as_object().map(|o| Value::Object(o.clone())) else {
                failures.push(format!("{at_}: no /configz: {}", rec["configz_error"]));
                continue;
            };
            for (path, want) in &promise {
                let running = at(&configz, path);
                if !same(running, want) {
                    failures.push(format!(
                        "{at_}: /configz {} = {running}, the fix promised {want}",
                        dotted(path)
                    ));
                }
            }
            let anon = anonymous(rec);
            if anon.is_empty() {
                failures.push(format!("{at_}: no TLS port answered the anonymous probe"));
            }
            for (port, status) in &anon {
                if status != &json!(401) {
                    failures.push(format!(
                        "{at_}: anonymous GET /pods on {port}: {status}, want 401"
                    ));
                }
            }
            if listens_on(rec, READ_ONLY_PORT) || !rec["http"][READ_ONLY_PORT.to_string()].is_null()
            {
                failures.push(format!("{at_}: something listens on {READ_ONLY_PORT}"));
            }
            // The fix changed nothing it did not promise.
            if let Some(base_configz) = base_rec["configz"].as_object() {
                let a = leaves(&Value::Object(base_configz.clone()));
                let b = leaves(&configz);
                let keys: BTreeSet<&FieldPath> = a.keys().chain(b.keys()).collect();
                for k in keys {
                    let (x, y) = (
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                    );
                    if !same(x, y) && !promise.keys().any(|p| k.starts_with(p)) {
                        failures.push(format!(
                            "{at_}: /configz {} changed from {x} to {y}, which the fix did not promise",
                            dotted(k)
                        ));
                    }
                }
            }
        }
    }
    assert!(checked >= 12, "only {checked} fixed recordings checked");
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// (c): the base kubelets show the opposite, so (b) has something to prove.
#[test]
fn the_base_kubelets_show_the_insecurity() {
    let recs = recorded();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (base, fixed) in pairs() {
        let promise = promised(&base, &fixed);
        for v in versions(&recs) {
            let Some(rec) = recs.get(&(v.clone(), base.clone())) else {
                continue;
            };
            checked += 1;
            let at_ = format!("{v} {base}");
            if rec["started"] != json!(true) {
                failures.push(format!(
                    "{at_}: the base kubelet did not start: {}",
                    rec["exit_error"]
                ));
                continue;
            }
            match rec["configz"].as_object() {
                Some(c) => {
                    let configz = Value::Object(c.clone());
                    for (path, want) in &promise {
                        if same(at(&configz, path), want) {
                            failures.push(format!(
                                "{at_}: /configz {} already has the promised {want}: the fix of this setting proves nothing",
                                dotted(path)
                            ));
                        }
                    }
                }
                None => failures.push(format!("{at_}: no /configz: {}", rec["configz_error"])),
            }
            let anon = anonymous(rec);
            if !anon.values().any(|s| s == &json!(200)) {
                failures.push(format!(
                    "{at_}: no port answers an anonymous GET /pods with 200: {anon:?}"
                ));
            }
            if !listens_on(rec, READ_ONLY_PORT)
                || rec["http"][READ_ONLY_PORT.to_string()] != json!(200)
            {
                failures.push(format!(
                    "{at_}: the read-only port {READ_ONLY_PORT} does not answer: {}",
                    rec["http"]
                ));
            }
        }
    }
    assert!(checked >= 12, "only {checked} base recordings checked");
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The agent's verdicts agree with the real kubelets: on each scenario's host tree (its
/// recorded command line and files), the controls the fix closes fail for the base and
/// pass for the fixed kubelet, at every recorded version.
#[test]
fn the_agent_judges_the_base_failing_and_the_fix_passing() {
    let recs = recorded();
    let policy = Policy::default();
    let mut failures = Vec::new();
    for (base, fixed) in pairs() {
        for v in versions(&recs) {
            for (scenario, want) in [(&base, Status::Fail), (&fixed, Status::Pass)] {
                let Some(rec) = recs.get(&(v.clone(), scenario.clone())) else {
                    continue;
                };
                let dir = host_tree(scenario, rec);
                let host = HostRoot::new(dir.path()).expect("host root");
                let mut snap = observe(
                    &host,
                    &ObserveOptions {
                        kubelet_pid: Some(PID),
                        ..ObserveOptions::default()
                    },
                );
                let Some(k) = snap.kubelet.as_mut() else {
                    failures.push(format!("{v} {scenario}: no kubelet observed"));
                    continue;
                };
                k.version = Some(v.clone());
                snap.settle_kubelet_version();
                let results = evaluate(&snap, &policy);
                for id in CLOSED {
                    match results.iter().find(|r| r.id == *id) {
                        Some(r) if r.status == want => {}
                        Some(r) => failures.push(format!(
                            "{v} {scenario}: {id} is {:?} ({}), want {want:?}",
                            r.status, r.reason
                        )),
                        None => failures.push(format!("{v} {scenario}: no result for {id}")),
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The scenarios lay out under `@ROOT@` as the recorder does: the drop-in of the fix sits
/// in the fixed kubelet's `--config-dir` under the host path the fix writes it to.
#[test]
fn the_fix_dropin_sits_in_the_config_dir() {
    for (base, fixed) in pairs() {
        match (config_dir(&base), config_dir(&fixed)) {
            (Some(b), Some(f)) => {
                assert_eq!(b, f, "{fixed}: another --config-dir than {base}");
                assert!(
                    dropin(&fixed).is_some(),
                    "{fixed}: no {DROPIN} in {ROOT}/{f}"
                );
                assert!(
                    dropin(&base).is_none(),
                    "{base}: already has the fix's {DROPIN}"
                );
            }
            (None, None) => assert!(
                scenario_args(&fixed) != scenario_args(&base),
                "{fixed}: no --config-dir and the same flags as {base}: nothing fixed"
            ),
            (b, f) => panic!("{fixed}: --config-dir {f:?}, {base}: {b:?}"),
        }
    }
    // The recordings name the same arguments as the scenarios.
    let recs = recorded();
    for ((v, s), rec) in &recs {
        if s.starts_with("fix-") {
            assert_eq!(
                strings(&rec["args"]),
                scenario_args(s),
                "{v} {s}: stale recording"
            );
        }
    }
}

/// `UPDATE_FIX_TRUTH=1`: rewrite every `fix-<base>` scenario from the fix generated for
/// `<base>` (then re-record them: `tests/kubelet-truth/record.sh --version V fix-...`).
fn bless() -> bool {
    std::env::var_os("UPDATE_FIX_TRUTH").is_some_and(|v| v == "1")
}

/// What `fix` generated for a host tree.
struct FixRun {
    /// Its exit status.
    code: i32,
    /// The plan (`--format json`, also `<out>/fix.json`).
    plan: Value,
    /// The complete new text of every file created or changed (`<out>/files/`), by host path.
    files: BTreeMap<String, String>,
}

/// `kubelet-sentinel fix --out DIR --format json` on the host tree of `scenario` as the
/// `version` kubelet recorded it (with the harness's kubeconfig, whose credential the
/// webhook changes need, and a unit for its flags).
fn run_fix(scenario: &str, version: &str, rec: &Value) -> FixRun {
    let dir = host_tree(scenario, rec);
    add_harness_kubeconfig(dir.path());
    add_kernel_tunables(dir.path());
    kubelet_unit(dir.path());
    let out_dir = tempfile::tempdir().expect("out dir");
    let out_path = out_dir.path().join("fix");
    let out = common::agent::agent_command()
        .arg("fix")
        .arg("--node-name")
        .arg("truth-node")
        .arg("--host-root")
        .arg(dir.path())
        .arg("--kubelet-pid")
        .arg(PID.to_string())
        .arg("--kubelet-version")
        .arg(version)
        .arg("--out")
        .arg(&out_path)
        .arg("--format")
        .arg("json")
        .env("NO_COLOR", "1")
        .output()
        .expect("run kubelet-sentinel fix");
    let code = out.status.code().unwrap_or(-1);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{version} {scenario}: fix --format json printed no JSON ({e}), exit {code}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let written: Value = serde_json::from_str(
        &fs::read_to_string(out_path.join("fix.json")).expect("<out>/fix.json"),
    )
    .expect("fix.json is JSON");
    assert_eq!(
        written, plan,
        "{version} {scenario}: fix.json is not what --format json printed"
    );
    let mut files = BTreeMap::new();
    let root = out_path.join("files");
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else {
                let host = format!(
                    "/{}",
                    e.path().strip_prefix(&root).expect("under files").display()
                );
                files.insert(host, fs::read_to_string(e.path()).expect("a text file"));
            }
        }
    }
    FixRun { code, plan, files }
}

/// The argv of the last `ExecStart=` of a unit file's text (continuation lines joined;
/// the words of these units need no quoting), `None` when it has none.
fn exec_start(unit: &str) -> Option<Vec<String>> {
    let joined = unit.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ExecStart="))
        .rfind(|v| !v.trim().is_empty())
        .map(|v| v.split_whitespace().map(str::to_string).collect())
}

/// The kubelet's systemd unit in the host tree (`kubelet.service`, the unit its cgroup
/// names): an `ExecStart=` with the recorded command line, as a node's package would have
/// it, so that the fix can place a flag change where the flag comes from.
fn kubelet_unit(root: &std::path::Path) {
    let cmdline = fs::read(root.join(format!("proc/{PID}/cmdline"))).expect("cmdline");
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let unit = root.join("etc/systemd/system/kubelet.service");
    fs::create_dir_all(unit.parent().expect("parent")).expect("unit dir");
    fs::write(
        unit,
        format!(
            "[Unit]\nDescription=kubelet\n\n[Service]\nExecStart={}\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n",
            argv.join(" \\\n  ")
        ),
    )
    .expect("unit");
}

/// `args` with the plan's flag changes made: `remove` drops every occurrence of the flag,
/// `set` replaces its value where it is (else appends it).
fn apply_flag_changes(args: &[String], plan: &Value) -> Vec<String> {
    let mut out: Vec<String> = args.to_vec();
    for fc in plan["flag_changes"].as_array().into_iter().flatten() {
        let change = &fc["change"];
        let flag = change["flag"].as_str().expect("flag change names a flag");
        let is_flag =
            |a: &String| a == &format!("--{flag}") || a.starts_with(&format!("--{flag}="));
        match change["op"].as_str() {
            Some("remove") => out.retain(|a| !is_flag(a)),
            Some("set") => {
                let value = change["value"].as_str().expect("set has a value");
                let word = format!("--{flag}={value}");
                match out.iter().position(is_flag) {
                    Some(i) => {
                        out[i] = word;
                        let mut j = i + 1;
                        while j < out.len() {
                            if is_flag(&out[j]) {
                                out.remove(j);
                            } else {
                                j += 1;
                            }
                        }
                    }
                    None => out.push(word),
                }
            }
            other => panic!("unknown flag change op {other:?}: {fc}"),
        }
    }
    out
}

/// The fix as a scenario holds it: the drop-in (path with `@ROOT@`, text), the arguments.
type Generated = (Option<(String, String)>, Vec<String>);

/// Back to the scenario's placeholders.
fn unsubstitute(s: &str) -> String {
    s.replace(ROOT, "@ROOT@").replace(HARNESS, "@HARNESS@")
}

/// Whether the fix of `base` changes the kubelet's flags (`fix-<base>` has other `args`).
fn changes_flags(base: &str, fixed: &str) -> bool {
    scenario_args(base) != scenario_args(fixed)
}

/// (a) for the pairs fixed by a drop-in alone: the fix generated for each base scenario is
/// what its `fix-*` scenario runs with.
#[test]
fn the_dropin_fixes_are_what_the_fix_scenarios_run() {
    let pairs: Vec<(String, String)> = pairs()
        .into_iter()
        .filter(|(b, f)| !changes_flags(b, f))
        .collect();
    assert!(pairs.len() >= 2, "drop-in pairs: {pairs:?}");
    generated_fix_is_committed(&pairs);
}

/// (a) for the pairs whose fix changes the kubelet's flags (removed beside a drop-in, or set
/// without a `--config-dir`): the fix must place each flag change where the flag comes from
/// (here the kubelet's systemd unit, `kubelet_unit`), which needs the flag origins
/// (`model::flag_origin::edit_flags`, branch i17-flagsrc). A build without them cannot
/// place any flag change: then the fix must say so for each of the four controls and write
/// no drop-in (alone it would not make them pass), and this test says that (a) waits for
/// them; with them, the fix must be exactly what the `fix-*` scenarios run.
#[test]
fn the_flag_fixes_are_what_the_fix_scenarios_run() {
    let pairs: Vec<(String, String)> = pairs()
        .into_iter()
        .filter(|(b, f)| changes_flags(b, f))
        .collect();
    assert!(pairs.len() >= 2, "flag pairs: {pairs:?}");
    let recs = recorded();
    let newest = versions(&recs)
        .into_iter()
        .next_back()
        .expect("a recorded version");
    let (base, _) = &pairs[0];
    let rec = recs
        .get(&(newest.clone(), base.clone()))
        .expect("recorded (every_fix_pair_is_recorded_for_every_version)");
    let run = run_fix(base, &newest, rec);
    if run.plan["flag_changes"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        let cannot = &run.plan["cannot"];
        for id in CLOSED {
            let why = cannot
                .as_array()
                .and_then(|a| a.iter().find(|c| c["id"] == json!(id)))
                .and_then(|c| c["why"].as_str())
                .unwrap_or("");
            assert!(
                why.contains("not read by this build"),
                "{newest} {base}: no flag change placed, and {id} is not reported as waiting for the flag origins: {cannot}"
            );
        }
        assert!(
            run.plan["dropin"].is_null(),
            "{newest} {base}: a drop-in without the flag changes would not make its controls pass: {}",
            run.plan["dropin"]
        );
        eprintln!(
            "notice: this build cannot place flag changes (no flag origins): (a) of {pairs:?} waits for them; the fix refuses as it must"
        );
        return;
    }
    generated_fix_is_committed(&pairs);
}

/// (a): the fix generated for each base scenario is what its `fix-*` scenario runs with:
/// the drop-in (its settings as JSON values, and its text), and the base's arguments with
/// the flag changes made. At every recorded version (one scenario serves them all), and the
/// plan says the four controls go from fail to pass.
fn generated_fix_is_committed(pairs: &[(String, String)]) {
    let recs = recorded();
    let mut failures = Vec::new();
    for (base, fixed) in pairs {
        let mut generated: Option<Generated> = None;
        for v in versions(&recs) {
            let Some(rec) = recs.get(&(v.clone(), base.clone())) else {
                continue;
            };
            let at_ = format!("{v} {base}");
            let FixRun { code, plan, files } = run_fix(base, &v, rec);
            if code != 0 && code != 1 {
                failures.push(format!("{at_}: fix exited {code}: {plan}"));
                continue;
            }
            for id in CLOSED {
                let c = plan["controls"]
                    .as_array()
                    .and_then(|a| a.iter().find(|c| c["id"] == json!(id)));
                match c {
                    Some(c) if c["before"] == json!("fail") && c["after"] == json!("pass") => {}
                    other => failures.push(format!(
                        "{at_}: the plan does not take {id} from fail to pass: {other:?} (cannot: {})",
                        plan["cannot"]
                    )),
                }
            }
            let generated_dropin = match &plan["dropin"] {
                Value::Null => None,
                d => {
                    let path = d["path"].as_str().expect("dropin.path");
                    let text = d["text"].as_str().expect("dropin.text");
                    let want_path = config_dir(base).map(|c| format!("{ROOT}/{c}/{DROPIN}"));
                    if Some(path.to_string()) != want_path {
                        failures.push(format!(
                            "{at_}: the drop-in goes to {path}, not {want_path:?}"
                        ));
                    }
                    // settings and text agree
                    let parsed: Value = yaml(text).expect("the drop-in's text is YAML");
                    let from_text = settings_of(&parsed);
                    let from_settings = leaves(&d["settings"]);
                    if from_text != from_settings {
                        failures.push(format!(
                            "{at_}: the drop-in's text sets {from_text:?}, its settings say {from_settings:?}"
                        ));
                    }
                    Some((unsubstitute(path), unsubstitute(text)))
                }
            };
            let base_args = scenario_args(base);
            let substituted: Vec<String> = base_args.iter().map(|a| substitute(a)).collect();
            let changed = apply_flag_changes(&substituted, &plan);
            // The files the fix wrote start the kubelet with exactly these arguments: the
            // unit (or its drop-in) the fix changed restates the harness's arguments and the
            // changed ones (the argv a real kubelet of fix-<base> was started with).
            if !plan["flag_changes"].as_array().is_none_or(Vec::is_empty) {
                let units: Vec<(&String, Vec<String>)> = files
                    .iter()
                    .filter(|(p, _)| p.contains("/systemd/"))
                    .filter_map(|(p, t)| exec_start(t).map(|argv| (p, argv)))
                    .collect();
                let mut want = vec!["/usr/bin/kubelet".to_string()];
                want.extend(strings(&rec["harness_args"]).iter().map(|a| substitute(a)));
                want.extend(changed.iter().cloned());
                match units.as_slice() {
                    [(_, argv)] if *argv == want => {}
                    other => failures.push(format!(
                        "{at_}: the fix's flag changes are not one unit file whose ExecStart= is {want:?}: {other:?} (files: {:?})",
                        files.keys().collect::<Vec<_>>()
                    )),
                }
            }
            let args: Vec<String> = changed.iter().map(|a| unsubstitute(a)).collect();
            let this = (generated_dropin, args);
            match &generated {
                None => generated = Some(this),
                Some(first) if *first != this => failures.push(format!(
                    "{at_}: the fix differs from another version's: {this:?} vs {first:?}"
                )),
                Some(_) => {}
            }
        }
        let Some((dropin, args)) = generated else {
            failures.push(format!("{base}: no recording to run the fix on"));
            continue;
        };
        if bless() {
            rewrite_fixed(base, fixed, dropin.as_ref(), &args);
            continue;
        }
        if args != scenario_args(fixed) {
            failures.push(format!(
                "{fixed}/args is not {base}'s with the fix's flag changes: {:?} (generated) vs {:?}",
                args,
                scenario_args(fixed)
            ));
        }
        match (&dropin, dropin_file(fixed)) {
            (None, None) => {}
            (Some((path, text)), Some((have_path, have))) => {
                if *path != have_path || *text != have {
                    failures.push(format!(
                        "{fixed}: {have_path} is not the generated {path}:\n--- committed\n{have}\n--- generated\n{text}"
                    ));
                }
                // The committed settings as JSON values (what (b) holds the recordings to).
                let committed = self::dropin(fixed).expect("parsed above");
                let generated: Value = yaml(&substitute(text)).expect("yaml");
                if placeholders(&committed) != generated {
                    failures.push(format!("{fixed}: drop-in settings differ"));
                }
            }
            (g, c) => failures.push(format!("{fixed}: drop-in generated {g:?}, committed {c:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s) (UPDATE_FIX_TRUTH=1 rewrites the fix-* scenarios; then re-record them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The `fix-*` scenario's drop-in: its path as the fix names it (with `@ROOT@`) and text.
fn dropin_file(name: &str) -> Option<(String, String)> {
    let dir = config_dir(name)?;
    let text = fs::read_to_string(
        truth_dir()
            .join("scenarios")
            .join(name)
            .join(&dir)
            .join(DROPIN),
    )
    .ok()?;
    Some((format!("@ROOT@/{dir}/{DROPIN}"), text))
}

/// `UPDATE_FIX_TRUTH=1`: `fixed` becomes `base`'s files (its own `about` kept), the
/// generated drop-in and `args`.
fn rewrite_fixed(base: &str, fixed: &str, dropin: Option<&(String, String)>, args: &[String]) {
    let scenarios = truth_dir().join("scenarios");
    let (from, to) = (scenarios.join(base), scenarios.join(fixed));
    let about = fs::read_to_string(to.join("about")).unwrap_or_default();
    fs::remove_dir_all(&to).expect("remove the old fix scenario");
    copy_raw(&from, &to);
    fs::write(to.join("about"), about).expect("about");
    fs::write(to.join("args"), args.join("\n") + "\n").expect("args");
    if let Some((path, text)) = dropin {
        let rel = path
            .strip_prefix("@ROOT@/")
            .expect("the drop-in is under @ROOT@");
        fs::write(to.join(rel), text).expect("drop-in");
    }
    eprintln!(
        "rewrote {fixed}: re-record it (tests/kubelet-truth/record.sh --version V {fixed}) for every recorded version"
    );
}

/// Copy a scenario dir as it is (placeholders kept).
fn copy_raw(from: &std::path::Path, to: &std::path::Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read scenario") {
        let e = e.expect("entry");
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let meta = fs::symlink_metadata(&src).expect("lstat");
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).expect("readlink"), &dst)
                .expect("symlink");
        } else if meta.is_dir() {
            copy_raw(&src, &dst);
        } else {
            fs::copy(&src, &dst).expect("copy");
        }
    }
}
