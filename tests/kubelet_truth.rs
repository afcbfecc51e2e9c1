//! The agent's model of the kubelet's configuration loading, proven against recordings of
//! real kubelets (`tests/kubelet-truth/`): for every scenario and every recorded kubelet
//! version, the agent observes a host tree laid out as the recording kubelet saw it (the
//! same command line, files, symlinks and working directory) and must
//! - predict the kubelet that refused to start, and only that one;
//! - agree with the kubelet's own `/configz` on every setting the controls read (the
//!   comparison `running-config-matches-disk` uses);
//! - predict the sockets the kubelet listened on;
//! - say `unknown` when its version is unknown and real kubelets of different versions
//!   disagree on a setting.
//!
//! Nothing here runs a kubelet: `tests/kubelet-truth/record.sh` made the recordings (and
//! `.ci/run` re-records them with the newest version and fails on any difference).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use common::truth::{
    observe_kubelet, placeholders, recordings, scenario_names, strings, truth_dir,
};
use kubelet_sentinel::evaluate::running_config::compare;
use kubelet_sentinel::model::kubelet_config::settings::SETTINGS;
use kubelet_sentinel::model::kubelet_config::{EffectiveConfig, Lookup};
use serde_json::Value;

fn alpha_env(rec: &Value) -> bool {
    strings(&rec["env"])
        .iter()
        .any(|e| e.starts_with("KUBELET_CONFIG_DROPIN_DIR_ALPHA="))
}

fn lookup_value(cfg: &EffectiveConfig, key: &str, minor: Option<u32>) -> Option<Value> {
    match cfg.configz_view(key, minor) {
        Lookup::Known(s) => Some(s.value),
        Lookup::Unknown { .. } => None,
    }
}

fn int(cfg: &EffectiveConfig, key: &str, minor: Option<u32>) -> Option<i64> {
    lookup_value(cfg, key, minor).and_then(|v| v.as_i64())
}

fn text(cfg: &EffectiveConfig, key: &str, minor: Option<u32>) -> Option<String> {
    lookup_value(cfg, key, minor).and_then(|v| v.as_str().map(str::to_string))
}

/// A listening address as the kernel shows it: Go listens on the dual-stack wildcard for
/// an empty or unspecified address.
fn norm_addr(a: &str) -> String {
    match a {
        "" | "0.0.0.0" | "::" | "[::]" => "*".to_string(),
        other => other.trim_matches(['[', ']']).to_string(),
    }
}

/// The sockets the agent predicts from the effective configuration.
fn predicted_listeners(
    cfg: &EffectiveConfig,
    minor: Option<u32>,
) -> Option<BTreeSet<(String, i64)>> {
    let mut out = BTreeSet::new();
    let address = text(cfg, "address", minor)?;
    let server = lookup_value(cfg, "enableServer", minor)? == Value::Bool(true);
    if server {
        out.insert((norm_addr(&address), int(cfg, "port", minor)?));
    }
    let ro = int(cfg, "readOnlyPort", minor)?;
    if ro > 0 {
        out.insert((norm_addr(&address), ro));
    }
    let hz = int(cfg, "healthzPort", minor)?;
    if hz > 0 {
        out.insert((norm_addr(&text(cfg, "healthzBindAddress", minor)?), hz));
    }
    Some(out)
}

fn recorded_listeners(rec: &Value) -> BTreeSet<(String, i64)> {
    rec["listening"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| Some((norm_addr(l["address"].as_str()?), l["port"].as_i64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn minor_of(version: &str) -> u32 {
    kubelet_sentinel::model::version::minor_of(version)
        .unwrap_or_else(|| panic!("version {version}"))
}

#[test]
fn every_scenario_is_recorded_for_every_version() {
    let names: BTreeSet<String> = scenario_names().into_iter().collect();
    assert!(names.len() >= 40, "only {} scenarios", names.len());
    let mut by_version: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (v, s, _) in recordings() {
        by_version.entry(v).or_default().insert(s);
    }
    let versions: Vec<&String> = by_version.keys().collect();
    for want in ["v1.35", "v1.36", "v1.37"] {
        assert!(
            versions.iter().any(|v| v.starts_with(&format!("{want}."))),
            "no recordings of a {want} kubelet (have {versions:?})"
        );
    }
    for (v, recorded) in &by_version {
        let missing: Vec<&String> = names.difference(recorded).collect();
        let stale: Vec<&String> = recorded.difference(&names).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "{v}: scenarios without a recording {missing:?}, recordings without a scenario {stale:?} (run tests/kubelet-truth/record.sh --version {v})"
        );
    }
}

#[test]
fn the_agent_agrees_with_every_real_kubelet() {
    let mut failures: Vec<String> = Vec::new();
    let mut checked = 0;
    for (version, scenario, rec) in recordings() {
        checked += 1;
        let minor = Some(minor_of(&version));
        let (mut k, _dir) = observe_kubelet(&scenario, &rec);
        k.config.set_kubelet_version(Some(&version));
        let refusal = k.config.refusal(Some(alpha_env(&rec)));
        let started = rec["started"].as_bool().unwrap_or(false);
        let at = format!("{version} {scenario}");
        match (started, &refusal) {
            (true, Some(r)) => {
                failures.push(format!(
                    "{at}: the kubelet started, the agent says it would refuse: {r}"
                ));
                continue;
            }
            (false, None) => {
                failures.push(format!(
                    "{at}: the kubelet refused to start ({}), the agent saw nothing wrong",
                    rec["exit_error"].as_str().unwrap_or("?")
                ));
                continue;
            }
            (false, Some(agent)) => {
                // The scenario's `refusal` phrase must be in both reasons: the agent says
                // why the kubelet refuses, not just that it does.
                if let Ok(phrase) = fs::read_to_string(
                    truth_dir()
                        .join("scenarios")
                        .join(&scenario)
                        .join("refusal"),
                ) {
                    let phrase = phrase.trim().to_lowercase();
                    let kubelet = rec["exit_error"].as_str().unwrap_or("").to_lowercase();
                    if !kubelet.contains(&phrase) || !agent.to_lowercase().contains(&phrase) {
                        failures.push(format!(
                            "{at}: refusal phrase {phrase:?} not in both reasons: kubelet {kubelet:?}, agent {agent:?}"
                        ));
                    }
                } else {
                    failures.push(format!(
                        "{at}: the kubelet refused to start but the scenario has no refusal phrase"
                    ));
                }
                continue;
            }
            (true, None) => {}
        }
        if let Some(configz) = rec["configz"].as_object() {
            let configz = placeholders(&Value::Object(configz.clone()));
            let c = compare(&configz, |key| k.config.configz_view(key, minor));
            for d in c.disagreements.iter().chain(&c.undecided) {
                failures.push(format!("{at}: {d}"));
            }
        }
        match predicted_listeners(&k.config, minor) {
            Some(p) => {
                let r = recorded_listeners(&rec);
                if p != r {
                    failures.push(format!("{at}: listening: agent {p:?}, kubelet {r:?}"));
                }
            }
            None => failures.push(format!("{at}: the agent cannot predict the listeners")),
        }
        // TLS versions the kubelet's API port accepts: from tlsMinVersion up, TLS 1.2 when
        // unset (InitializeTLS sets component-base's DefaultTLSVersion on every version).
        if let (Some(port), Some(min)) = (
            int(&k.config, "port", minor),
            text(&k.config, "tlsMinVersion", minor),
        ) {
            if let Some(versions) = rec["tls"][port.to_string()]["versions"].as_object() {
                let floor = match min.as_str() {
                    "VersionTLS10" => "1.0",
                    "VersionTLS11" => "1.1",
                    "VersionTLS13" => "1.3",
                    _ => "1.2",
                };
                for (v, accepted) in versions {
                    let predicted = v.as_str() >= floor;
                    if accepted.as_bool() != Some(predicted) {
                        failures.push(format!(
                            "{at}: TLS {v}: kubelet accepted={accepted}, agent predicts {predicted} (tlsMinVersion {min:?})"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        checked > 0,
        "no recordings under tests/kubelet-truth/recorded"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} recordings disagree with the agent:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Where real kubelets of different versions show different values for the same
/// scenario, the agent without a version must not pick one: `unknown`, naming the
/// dependence.
#[test]
fn an_unknown_version_is_unknown_where_real_kubelets_differ() {
    let mut by_scenario: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for (v, s, rec) in recordings() {
        by_scenario.entry(s).or_default().push((v, rec));
    }
    let mut differing = 0;
    let mut failures = Vec::new();
    for (scenario, recs) in by_scenario {
        let started: Vec<&(String, Value)> = recs
            .iter()
            .filter(|(_, r)| r["configz"].is_object())
            .collect();
        let Some((_, first)) = started.first() else {
            continue;
        };
        let (k, _dir) = observe_kubelet(&scenario, first);
        for def in SETTINGS {
            let values: BTreeSet<String> = started
                .iter()
                .map(|(_, r)| {
                    let mut cur = &r["configz"];
                    for p in def.path {
                        cur = &cur[*p];
                    }
                    cur.to_string()
                })
                .collect();
            if values.len() < 2 {
                continue;
            }
            differing += 1;
            if let Lookup::Known(s) = k.config.configz_view(def.key, None) {
                failures.push(format!(
                    "{scenario}: {} differs between kubelet versions ({values:?}) but the agent without a version says {}",
                    def.key, s.value
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{differing} (scenario, setting) pairs differ between recorded versions");
}
