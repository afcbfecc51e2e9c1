//! Running versus on-disk configuration: the kubelet's `/configz` (what the process runs
//! with, `--read-running-config`) against the agent's own effective configuration (its
//! files, drop-ins and flags with the kubelet's precedence). A kubelet whose config file
//! was edited but that was not restarted, or a flag the agent could not see, makes every
//! file-based verdict describe a kubelet that is not running: this control says so.
//!
//! The settings compared are [`crate::model::kubelet_config::settings::SETTINGS`], the one list of the
//! settings the controls read (a test below checks that every lookup in the evaluation
//! code names one of them, so a control cannot read a setting that is not compared).
//!
//! Not enabled is `not_applicable` (not `unknown`): reading `/configz` needs extra RBAC
//! and is off by default, so an `unknown` on every default installation would be noise
//! that hides real unknowns; the reason names the flag. `cluster_checks: false` in the
//! policy is `not_applicable` too, as for the other controls that need API credentials.

use serde_json::Value;

use super::setting::render;
use super::{Control, Ctx, Family, Needs, Outcome, Severity, PRACTICE_HARDENING};
use crate::model::kubelet_config::configz::FLAG;
use crate::model::kubelet_config::settings::{
    parse_go_duration, SettingDef, SettingKind, SETTINGS,
};
use crate::model::kubelet_config::Lookup;

/// The running-configuration control (hardening family): `/configz` against the files
/// and flags.
pub static CONTROLS: &[Control] = &[Control {
    id: "running-config-matches-disk",
    title: "The kubelet runs with the configuration its files and flags say (/configz)",
    family: Family::Hardening,
    severity: Severity::High,
    cis: None,
    practice: PRACTICE_HARDENING,
    expected: "every setting the controls check has the same value in the kubelet's /configz as in its config file, drop-ins and flags",
    remediation: "Restart the kubelet so it runs with its files (`systemctl restart kubelet`), or, when the files are what is wrong, restore them to what the kubelet runs with; then find who changed them (the drift metrics show when). A setting that differs without a file change comes from somewhere the agent does not read (a flag from another unit or wrapper): make the kubelet's files the single source.",
    needs: Needs::Nothing,
    evaluate: evaluate_matches,
}];

/// The settings compared: every setting the controls read.
pub fn compared() -> impl Iterator<Item = &'static SettingDef> {
    SETTINGS.iter()
}

fn get_path<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.as_object()?.get(*p)?;
    }
    Some(cur)
}

/// Go's zero value of a kind: what a field the kubelet's JSON omits (`omitempty`) holds.
/// `readOnlyPort: 0` is not shown in `/configz`.
fn zero(kind: SettingKind) -> Value {
    match kind {
        SettingKind::Bool => Value::Bool(false),
        SettingKind::Int => Value::from(0),
        SettingKind::String => Value::String(String::new()),
        SettingKind::Duration => Value::String("0s".to_string()),
        SettingKind::StringList => Value::Array(Vec::new()),
        SettingKind::StringMap | SettingKind::BoolMap => Value::Object(Default::default()),
    }
}

fn as_int(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => crate::model::kubelet_config::flags::parse_go_bool(s.trim()),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether two values of a setting mean the same: durations by length (`4h0m0s` = `4h`),
/// numbers by value (`50` = `"50"` = `50.0`), lists in order, maps by entries.
pub fn same(kind: SettingKind, running: &Value, disk: &Value) -> bool {
    match kind {
        SettingKind::Bool => {
            matches!((as_bool(running), as_bool(disk)), (Some(a), Some(b)) if a == b)
        }
        SettingKind::Int => {
            matches!((as_int(running), as_int(disk)), (Some(a), Some(b)) if a == b)
        }
        SettingKind::String => {
            matches!((as_text(running), as_text(disk)), (Some(a), Some(b)) if a == b)
        }
        SettingKind::Duration => {
            let secs = |v: &Value| v.as_str().and_then(parse_go_duration);
            matches!((secs(running), secs(disk)), (Some(a), Some(b)) if (a - b).abs() < 1e-9)
        }
        SettingKind::StringList => match (running.as_array(), disk.as_array()) {
            (Some(a), Some(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| as_text(x).is_some() && as_text(x) == as_text(y))
            }
            _ => false,
        },
        SettingKind::StringMap => match (running.as_object(), disk.as_object()) {
            (Some(a), Some(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.get(k)
                            .is_some_and(|w| as_text(v).is_some() && as_text(v) == as_text(w))
                    })
            }
            _ => false,
        },
        SettingKind::BoolMap => match (running.as_object(), disk.as_object()) {
            (Some(a), Some(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.get(k)
                            .is_some_and(|w| as_bool(v).is_some() && as_bool(v) == as_bool(w))
                    })
            }
            _ => false,
        },
    }
}

fn shown(v: &Value) -> String {
    let s = render(v);
    if s.is_empty() {
        "\"\"".to_string()
    } else {
        s
    }
}

/// The result of comparing the running configuration with the effective one.
#[derive(Debug, Default, PartialEq)]
pub struct Comparison {
    /// Settings that agree.
    pub agreed: usize,
    /// `key: running=<v> disk=<v> (source)`, one per disagreement.
    pub disagreements: Vec<String>,
    /// Settings that could not be compared (the disk side is undecided), with why.
    pub undecided: Vec<String>,
}

/// Compare every compared setting of `running` (the `kubeletconfig` object) with the
/// effective configuration (`disk`: a lookup per key).
pub fn compare(running: &Value, disk: impl Fn(&str) -> Lookup) -> Comparison {
    let mut out = Comparison::default();
    for def in compared() {
        let d = match disk(def.key) {
            Lookup::Known(s) => s,
            Lookup::Unknown { reason } => {
                out.undecided.push(format!("{}: {reason}", def.key));
                continue;
            }
        };
        let (r, absent) = match get_path(running, def.path) {
            Some(v) if !v.is_null() => (v.clone(), false),
            _ => (zero(def.kind), true),
        };
        let disk_value = d.value.clone();
        if same(def.kind, &r, &disk_value) {
            out.agreed += 1;
        } else {
            out.disagreements.push(format!(
                "{}: running={}{} disk={} ({})",
                def.key,
                shown(&r),
                if absent { " (absent)" } else { "" },
                shown(&disk_value),
                d.source.label()
            ));
        }
    }
    out
}

fn evaluate_matches(ctx: &Ctx) -> Outcome {
    if !ctx.policy.expected.cluster_checks {
        return Outcome::not_applicable(
            "cluster checks are off in the policy (cluster_checks: false)",
        );
    }
    let Some(kubelet) = ctx.kubelet() else {
        return Outcome::unknown(
            ctx.snapshot
                .no_kubelet_reason()
                .unwrap_or_else(|| "no kubelet".to_string()),
        );
    };
    let Some(rc) = &ctx.snapshot.running_config else {
        return Outcome::not_applicable(format!(
            "reading the running configuration is off: {FLAG} (it needs RBAC get on nodes/configz; see docs/running-config.md)"
        ));
    };
    let via = rc.via.as_str();
    let running = match &rc.config {
        Ok(v) => v,
        Err(e) => {
            return Outcome::new(
                super::Status::Unknown,
                "",
                via,
                format!("the running configuration could not be read: {e}"),
            )
        }
    };
    let minor = ctx.loading_minor();
    let c = compare(running, |key| kubelet.config.configz_view(key, minor));
    if c.agreed == 0 && c.disagreements.is_empty() {
        return Outcome::new(
            super::Status::Unknown,
            "",
            via,
            format!(
                "the configuration on disk cannot be decided: {}",
                c.undecided.join("; ")
            ),
        );
    }
    let skipped = if c.undecided.is_empty() {
        String::new()
    } else {
        format!(
            "; {} not compared (undecided on disk): {}",
            c.undecided.len(),
            c.undecided.join("; ")
        )
    };
    if c.disagreements.is_empty() {
        Outcome::pass(
            // No count here: the observed value is what drift compares, and an agent that
            // compares one more setting must not look like a change on the node.
            "all settings agree".to_string(),
            via,
            format!(
                "the running configuration (/configz via {via}) agrees with the files and flags on all {} settings compared{skipped}",
                c.agreed
            ),
        )
    } else {
        Outcome::fail(
            c.disagreements.join("; "),
            via,
            format!(
                "{} of {} settings differ between the running kubelet (/configz via {via}) and its files and flags: restarted since the change?{skipped}",
                c.disagreements.len(),
                c.disagreements.len() + c.agreed
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::policy::Policy;
    use crate::evaluate::testing::snapshot_with;
    use crate::evaluate::{evaluate, Status};
    use crate::model::snapshot::{ConfigzRoute, RunningConfig};
    use serde_json::json;

    const HARDENED: &str = "authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\nauthorization:\n  mode: Webhook\nreadOnlyPort: 0\nstreamingConnectionIdleTimeout: 0s\n";

    /// What the kubelet would serve for a configuration: every compared setting, defaults
    /// filled in, durations rendered the Go way, empty values omitted.
    fn configz_of(snapshot: &crate::model::snapshot::Snapshot) -> Value {
        let k = snapshot.kubelet.as_ref().unwrap();
        let mut root = json!({});
        for def in SETTINGS {
            let Lookup::Known(s) = k.config.configz_view(def.key, k.config.kubelet_minor) else {
                panic!("{}", def.key)
            };
            let v = s.value.clone();
            let empty = v == zero(def.kind) || v == json!("");
            if empty {
                continue;
            }
            let mut cur = &mut root;
            for p in &def.path[..def.path.len() - 1] {
                cur = cur
                    .as_object_mut()
                    .unwrap()
                    .entry(p.to_string())
                    .or_insert(json!({}));
            }
            cur.as_object_mut()
                .unwrap()
                .insert(def.path[def.path.len() - 1].to_string(), v);
        }
        root
    }

    fn with_running(
        mut snap: crate::model::snapshot::Snapshot,
        config: Result<Value, String>,
    ) -> crate::evaluate::ControlResult {
        snap.running_config = Some(RunningConfig {
            via: ConfigzRoute::Kubelet,
            config,
            process: (4242, None),
        });
        result(&snap, &Policy::embedded())
    }

    fn result(
        snap: &crate::model::snapshot::Snapshot,
        policy: &Policy,
    ) -> crate::evaluate::ControlResult {
        evaluate(snap, policy)
            .into_iter()
            .find(|r| r.id == "running-config-matches-disk")
            .unwrap()
    }

    #[test]
    fn agreement_passes_with_the_count_and_route() {
        let snap = snapshot_with(&[], Some(HARDENED));
        let running = configz_of(&snap);
        let r = with_running(snap, Ok(running));
        assert_eq!(r.status, Status::Pass, "{r:?}");
        assert_eq!(r.observed, "all settings agree");
        assert!(
            r.reason
                .contains(&format!("all {} settings compared", SETTINGS.len())),
            "{}",
            r.reason
        );
        assert_eq!(r.source, "nodes/configz");
        assert!(r.reason.contains("via nodes/configz"), "{}", r.reason);
    }

    #[test]
    fn durations_compare_by_length_and_numbers_by_value() {
        let snap = snapshot_with(&[], Some(HARDENED));
        let mut running = configz_of(&snap);
        // The file's 0s is the default 4h0m0s; the kubelet may render it as 4h.
        running["streamingConnectionIdleTimeout"] = json!("4h");
        running["eventRecordQPS"] = json!("50");
        running["eventBurst"] = json!(100.0);
        let r = with_running(snap, Ok(running));
        assert_eq!(r.status, Status::Pass, "{r:?}");
    }

    #[test]
    fn a_disagreement_fails_naming_key_values_and_source() {
        let snap = snapshot_with(&[], Some(HARDENED));
        let mut running = configz_of(&snap);
        // The kubelet still runs with the read-only port open (file edited, no restart).
        running["readOnlyPort"] = json!(10255);
        running["authentication"]["anonymous"]["enabled"] = json!(true);
        let r = with_running(snap, Ok(running));
        assert_eq!(r.status, Status::Fail);
        assert!(
            r.observed
                .contains("readOnlyPort: running=10255 disk=0 (config-file)"),
            "{}",
            r.observed
        );
        assert!(
            r.observed.contains(
                "authentication.anonymous.enabled: running=true disk=false (config-file)"
            ),
            "{}",
            r.observed
        );
        assert!(r.reason.starts_with("2 of "), "{}", r.reason);
    }

    #[test]
    fn a_setting_missing_on_one_side_is_its_zero_or_default() {
        // Absent from /configz (omitempty): readOnlyPort 0 agrees with a file's 0 …
        let snap = snapshot_with(&[], Some(HARDENED));
        let mut running = configz_of(&snap);
        assert!(running.get("readOnlyPort").is_none());
        // … but not with a flags-only kubelet's default 10255 (absent on disk).
        let flags_only = snapshot_with(&["--anonymous-auth=false"], None);
        running["authorization"]["mode"] = json!("AlwaysAllow");
        running["authentication"]["webhook"]["enabled"] = json!(false);
        let r = with_running(flags_only, Ok(running));
        assert_eq!(r.status, Status::Fail);
        assert!(
            r.observed
                .contains("readOnlyPort: running=0 (absent) disk=10255 (default)"),
            "{}",
            r.observed
        );
    }

    #[test]
    fn the_cert_pair_filled_in_at_start_agrees_with_an_empty_disk_value() {
        let snap = snapshot_with(&[], Some(HARDENED));
        let mut running = configz_of(&snap);
        running["tlsCertFile"] = json!("/var/lib/kubelet/pki/kubelet.crt");
        running["tlsPrivateKeyFile"] = json!("/var/lib/kubelet/pki/kubelet.key");
        assert_eq!(with_running(snap, Ok(running)).status, Status::Pass);
    }

    #[test]
    fn relative_paths_are_resolved_against_their_file() {
        let snap = snapshot_with(
            &[],
            Some("authentication:\n  x509:\n    clientCAFile: pki/ca.crt\n  anonymous:\n    enabled: false\nreadOnlyPort: 0\n"),
        );
        let mut running = configz_of(&snap);
        let cfg = snap
            .kubelet
            .as_ref()
            .unwrap()
            .config
            .config_file
            .clone()
            .unwrap();
        let dir = cfg.rsplit_once('/').unwrap().0.to_string();
        running["authentication"]["x509"]["clientCAFile"] = json!(format!("{dir}/pki/ca.crt"));
        let r = with_running(snap, Ok(running));
        assert_eq!(r.status, Status::Pass, "{r:?}");
    }

    #[test]
    fn read_errors_are_unknown_with_the_route_and_why() {
        let snap = snapshot_with(&[], Some(HARDENED));
        let r = with_running(
            snap,
            Err("nodes/configz: 403 Forbidden: needs `get` on `nodes/configz`".into()),
        );
        assert_eq!(r.status, Status::Unknown);
        assert!(r.reason.contains("nodes/configz"), "{}", r.reason);
        assert_eq!(r.source, "nodes/configz");
    }

    #[test]
    fn off_and_cluster_checks_off_are_not_applicable_and_no_kubelet_unknown() {
        let snap = snapshot_with(&[], Some(HARDENED));
        let r = result(&snap, &Policy::embedded());
        assert_eq!(r.status, Status::NotApplicable);
        assert!(r.reason.contains("--read-running-config"), "{}", r.reason);
        let mut policy = Policy::embedded();
        policy.expected.cluster_checks = false;
        let mut snap2 = snapshot_with(&[], Some(HARDENED));
        snap2.running_config = Some(RunningConfig {
            via: ConfigzRoute::Kubelet,
            config: Ok(json!({})),
            process: (1, None),
        });
        assert_eq!(result(&snap2, &policy).status, Status::NotApplicable);
        let mut none = snapshot_with(&[], Some(HARDENED));
        none.kubelet = None;
        none.discovery = crate::model::snapshot::Discovery::NotFound {
            reason: "no kubelet process".into(),
        };
        let r = result(&none, &Policy::embedded());
        assert_eq!(r.status, Status::Unknown);
        assert_eq!(r.reason, "no kubelet process");
    }

    #[test]
    fn an_undecidable_disk_config_is_unknown() {
        let mut snap = snapshot_with(&[], Some("readOnlyPort: [\n"));
        snap.running_config = Some(RunningConfig {
            via: ConfigzRoute::ApiProxy,
            config: Ok(json!({"readOnlyPort": 0})),
            process: (4242, None),
        });
        let r = result(&snap, &Policy::embedded());
        // Flag-backed settings without flags are decided by the (broken) files: unknown.
        assert_eq!(r.status, Status::Unknown, "{r:?}");
        assert!(r.reason.contains("cannot be decided"), "{}", r.reason);
        assert_eq!(r.source, "nodes/proxy");
    }

    /// Every setting a control (or the live probes) looks up by name is in the compared
    /// list: a control cannot start reading a setting that is not compared. (The list is
    /// every setting the agent models; a few are modelled without a control reading them,
    /// e.g. the webhook cache TTLs, and are compared too.)
    #[test]
    fn every_setting_the_controls_read_is_compared() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        // Every source file under evaluate/, a family's directory included.
        fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    rust_files(&p, out);
                } else if p.extension().is_some_and(|e| e == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        rust_files(
            std::path::Path::new(&format!("{root}/evaluate")),
            &mut files,
        );
        files.push(format!("{root}/observe/live/mod.rs").into());
        // Direct lookups, and family helpers called with a setting key (`bool_control(ctx,
        // "seccompDefault", ..)`, `reserved(ctx, "kubeReserved", ..)`).
        let patterns = [
            "known(ctx, \"",
            "ctx.setting(\"",
            "with_setting(ctx, \"",
            "config.get(\"",
            "_setting(snapshot, \"",
            "(ctx, \"",
        ];
        let looks_like_key = |k: &str| {
            !k.is_empty()
                && k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        };
        let mut used = std::collections::BTreeSet::new();
        for f in &files {
            if f.ends_with("running_config.rs") {
                continue;
            }
            // rustfmt breaks long calls over lines: `bool_control(\n ctx,\n "x"`.
            let text = std::fs::read_to_string(f)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("( ", "(");
            for pat in patterns {
                for (i, _) in text.match_indices(pat) {
                    let rest = &text[i + pat.len()..];
                    let key = &rest[..rest.find('"').unwrap()];
                    if looks_like_key(key) {
                        used.insert(key.to_string());
                    }
                }
            }
        }
        let listed: std::collections::BTreeSet<String> =
            compared().map(|d| d.key.to_string()).collect();
        let unlisted: Vec<&String> = used.difference(&listed).collect();
        assert!(
            unlisted.is_empty(),
            "looked up but not compared: {unlisted:?}"
        );
        for k in [
            "readOnlyPort",
            "seccompDefault",
            "kubeReserved",
            "tlsCipherSuites",
            "port",
        ] {
            assert!(used.contains(k), "the scan missed {k}: {used:?}");
        }
    }

    proptest::proptest! {
        /// Whatever `/configz` holds, the comparison never panics.
        #[test]
        fn any_running_json_is_compared_without_panicking(s in ".{0,200}") {
            let snap = snapshot_with(&[], Some(HARDENED));
            let k = snap.kubelet.as_ref().unwrap();
            if let Ok(v) = crate::model::kubelet_config::configz::parse_configz(s.as_bytes()) {
                let _ = compare(&v, |key| k.config.get(key));
            }
            let _ = compare(&Value::String(s.clone()), |key| k.config.get(key));
        }

        #[test]
        fn arbitrary_values_for_every_setting_never_panic(
            picks in proptest::collection::vec(0usize..8, SETTINGS.len())
        ) {
            let choices = [json!(null), json!(1), json!("4h"), json!([1, "a"]), json!({"a": true}),
                           json!(true), json!(-1.5), json!("")];
            let snap = snapshot_with(&[], Some(HARDENED));
            let k = snap.kubelet.as_ref().unwrap();
            let mut running = json!({});
            for (def, pick) in SETTINGS.iter().zip(picks) {
                running[def.path[0]] = choices[pick].clone();
            }
            let _ = compare(&running, |key| k.config.get(key));
        }
    }
}
