//! The baseline: what a node looked like when it was last known good (its first complete
//! evaluation, an accepted state, or the policy's expectations), and the pure comparison
//! of an evaluation against it.

use std::collections::BTreeMap;

use crate::evaluate::{ControlResult, Status};
use crate::model::snapshot::{Kubelet, Snapshot};

/// Version of the on-disk baseline format. A file with another version is moved aside
/// (kept) and a new baseline is taken.
pub const SCHEMA_VERSION: u32 = 1;

/// How a baseline came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The first complete evaluation on this node (the default).
    FirstObservation,
    /// `kubelet-sentinel baseline accept`.
    Accepted,
    /// `--baseline-from-policy`: every control is held to the policy (its baseline status
    /// is `pass`), whatever the node looked like.
    Policy,
}

impl Origin {
    /// The snake_case name: the `origin` label of the baseline info metric, the report's
    /// `origin` and the stored file's.
    pub fn as_str(&self) -> &'static str {
        match self {
            Origin::FirstObservation => "first_observation",
            Origin::Accepted => "accepted",
            Origin::Policy => "policy",
        }
    }
}

/// The kubelet a baseline was taken from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The kubelet's executable (`/proc/<pid>/exe` target, else `argv[0]`).
    pub binary: String,
    /// The kubelet's version, when it was known.
    pub version: Option<String>,
    /// `sha256:` of the command line (arguments NUL-separated).
    pub command_line_hash: String,
}

/// One control in the baseline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlBaseline {
    /// The control's status when the baseline was taken (never `unknown`; always `pass`
    /// in a policy baseline).
    pub status: Status,
    /// The observed value (absent in a policy baseline: there the standard is the
    /// expectation, not a value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// Where the observed value came from (`flag`, `config-file`, `default`, ...); absent
    /// in a policy baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What passing meant when the baseline was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

/// A node's baseline, as stored in `<state-dir>/baseline.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The file format's version ([`SCHEMA_VERSION`]); a file of another version is treated
    /// as corrupt.
    pub schema_version: u32,
    /// The node the baseline belongs to.
    pub node: String,
    /// Unix time (seconds) the baseline was taken.
    pub created_at: f64,
    /// How the baseline came to be.
    pub origin: Origin,
    /// The kubelet-sentinel version that took it.
    pub agent_version: String,
    /// The kubelet it was taken from: executable, version, command-line hash.
    pub kubelet: Identity,
    /// `sha256:` of the effective configuration (every setting with its value and source).
    pub config_hash: String,
    /// Per control id. Controls that were `unknown` when the baseline was taken are
    /// absent until their first known observation fills them in.
    pub controls: BTreeMap<String, ControlBaseline>,
}

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!("sha256:{}", data_encoding::HEXLOWER.encode(d.as_ref()))
}

/// Hash of a command line: the arguments NUL-separated, as in `/proc/<pid>/cmdline`.
pub fn command_line_hash(argv: &[String]) -> String {
    sha256(argv.join("\0").as_bytes())
}

/// Hash of the effective configuration: every setting's value *and* source. A setting
/// moved from the config file to a flag is a change even with the same value: from then
/// on, editing the file no longer changes what the kubelet runs.
pub fn config_hash(k: &Kubelet) -> String {
    sha256(k.config.fingerprint_material().as_bytes())
}

/// One control's drift against the baseline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ControlDrift {
    /// The observed value differs from the baseline's (policy baseline: the control
    /// fails, i.e. it is off the standard).
    pub drifted: bool,
    /// The baseline status was `pass` and the control now fails.
    pub regressed: bool,
    /// The control's status in the baseline.
    pub baseline_status: Status,
    /// The observed value in the baseline (`None` in a policy baseline, or without a
    /// baseline entry).
    pub baseline_observed: Option<String>,
}

impl Baseline {
    /// A baseline from an evaluation: identity, config hash and every control whose status
    /// is known. `None` without a kubelet (no evaluation is complete without one).
    pub fn from_evaluation(
        snapshot: &Snapshot,
        results: &[ControlResult],
        now: f64,
        origin: Origin,
        agent_version: &str,
    ) -> Option<Baseline> {
        let k = snapshot.kubelet.as_ref()?;
        let controls = match origin {
            Origin::Policy => policy_controls(results),
            Origin::FirstObservation | Origin::Accepted => results
                .iter()
                .filter(|r| r.status != Status::Unknown)
                .map(|r| (r.id.to_string(), observed_entry(r)))
                .collect(),
        };
        Some(Baseline {
            schema_version: SCHEMA_VERSION,
            node: snapshot.node.clone(),
            created_at: now,
            origin,
            agent_version: agent_version.to_string(),
            kubelet: Identity {
                binary: k.binary.clone(),
                version: k.version.clone(),
                command_line_hash: command_line_hash(&k.argv),
            },
            config_hash: config_hash(k),
            controls,
        })
    }

    /// Complete an observed baseline with controls that were unknown (or not evaluated)
    /// when it was taken and are known now. Returns the ids filled in. A policy baseline
    /// instead follows the policy: its controls are replaced when the policy changed.
    pub fn fill_in(&mut self, results: &[ControlResult]) -> Vec<&'static str> {
        if self.origin == Origin::Policy {
            let want = policy_controls(results);
            if want == self.controls {
                return Vec::new();
            }
            let changed = results
                .iter()
                .filter(|r| want.get(r.id) != self.controls.get(r.id))
                .map(|r| r.id)
                .collect();
            self.controls = want;
            return changed;
        }
        let mut filled = Vec::new();
        for r in results {
            if r.status != Status::Unknown && !self.controls.contains_key(r.id) {
                self.controls.insert(r.id.to_string(), observed_entry(r));
                filled.push(r.id);
            }
        }
        filled
    }

    /// Compare one result with its baseline. `None` when the baseline has no entry for the
    /// control, or the control is `unknown` now (drift cannot be told without a value).
    pub fn compare(&self, r: &ControlResult) -> Option<ControlDrift> {
        let b = self.controls.get(r.id)?;
        if r.status == Status::Unknown {
            return None;
        }
        // A value stored by an older agent in another form is compared in today's.
        let observed = b
            .observed
            .as_ref()
            .map(|v| crate::evaluate::files::legacy_observed(r.id, v).unwrap_or_else(|| v.clone()));
        let drifted = match &observed {
            Some(v) => *v != r.observed,
            None => r.status == Status::Fail,
        };
        Some(ControlDrift {
            drifted,
            regressed: b.status == Status::Pass && r.status == Status::Fail,
            baseline_status: b.status,
            baseline_observed: observed,
        })
    }

    /// Whether the effective configuration differs from the baseline's.
    pub fn config_drift(&self, k: &Kubelet) -> bool {
        config_hash(k) != self.config_hash
    }
}

fn observed_entry(r: &ControlResult) -> ControlBaseline {
    ControlBaseline {
        status: r.status,
        observed: Some(r.observed.clone()),
        source: Some(r.source.clone()),
        expected: Some(r.expected.clone()),
    }
}

/// The policy baseline of every evaluated control: `pass` against its expectation.
fn policy_controls(results: &[ControlResult]) -> BTreeMap<String, ControlBaseline> {
    results
        .iter()
        .map(|r| {
            (
                r.id.to_string(),
                ControlBaseline {
                    status: Status::Pass,
                    observed: None,
                    source: None,
                    expected: Some(r.expected.clone()),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::policy::Policy;
    use crate::evaluate::testing::{eval, snapshot_with};

    fn baseline_of(s: &Snapshot, origin: Origin) -> (Baseline, Vec<ControlResult>) {
        let results = crate::evaluate::evaluate(s, &Policy::embedded());
        let b = Baseline::from_evaluation(s, &results, 1.0, origin, "test").unwrap();
        (b, results)
    }

    fn result<'a>(results: &'a [ControlResult], id: &str) -> &'a ControlResult {
        results.iter().find(|r| r.id == id).unwrap()
    }

    #[test]
    fn hashes_are_stable_and_distinguish() {
        assert_eq!(
            sha256(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let a = command_line_hash(&["kubelet".into(), "--a".into()]);
        assert_eq!(a, command_line_hash(&["kubelet".into(), "--a".into()]));
        // The separator matters: ["a b"] is not ["a", "b"].
        assert_ne!(
            command_line_hash(&["a b".into()]),
            command_line_hash(&["a".into(), "b".into()])
        );
    }

    #[test]
    fn same_evaluation_has_no_drift() {
        let s = snapshot_with(&["--anonymous-auth=false"], None);
        let (b, results) = baseline_of(&s, Origin::FirstObservation);
        for r in &results {
            if let Some(d) = b.compare(r) {
                assert!(!d.drifted && !d.regressed, "{}", r.id);
            }
        }
        assert!(!b.config_drift(s.kubelet.as_ref().unwrap()));
        // Unknown controls are not in an observed baseline.
        for r in results.iter().filter(|r| r.status == Status::Unknown) {
            assert!(!b.controls.contains_key(r.id), "{}", r.id);
        }
    }

    #[test]
    fn a_changed_value_drifts_and_a_failure_regresses() {
        let before = snapshot_with(&["--read-only-port=0"], None);
        let (b, _) = baseline_of(&before, Origin::FirstObservation);
        assert_eq!(b.controls["read-only-port-disabled"].status, Status::Pass);
        // Opened: value changed and status pass → fail.
        let after = snapshot_with(&["--read-only-port=10255"], None);
        let r = eval("read-only-port-disabled", &after);
        assert_eq!(r.status, Status::Fail);
        let results = crate::evaluate::evaluate(&after, &Policy::embedded());
        let d = b
            .compare(result(&results, "read-only-port-disabled"))
            .unwrap();
        assert!(d.drifted && d.regressed);
        assert_eq!(d.baseline_observed.as_deref(), Some("0"));
        assert!(b.config_drift(after.kubelet.as_ref().unwrap()));
    }

    #[test]
    fn a_change_that_keeps_passing_drifts_without_regressing() {
        let before = snapshot_with(&["--event-qps=20"], None);
        let (b, _) = baseline_of(&before, Origin::FirstObservation);
        let after = snapshot_with(&["--event-qps=30"], None);
        let results = crate::evaluate::evaluate(&after, &Policy::embedded());
        let r = result(&results, "event-qps-limited");
        assert_eq!(r.status, Status::Pass);
        let d = b.compare(r).unwrap();
        assert!(d.drifted && !d.regressed);
    }

    #[test]
    fn unknown_now_is_not_judged_and_fill_in_completes() {
        let s = snapshot_with(&[], None);
        let (mut b, results) = baseline_of(&s, Origin::FirstObservation);
        let unknown: Vec<&ControlResult> = results
            .iter()
            .filter(|r| r.status == Status::Unknown)
            .collect();
        assert!(
            !unknown.is_empty(),
            "the bare snapshot has unknown controls"
        );
        for r in &unknown {
            assert_eq!(b.compare(r), None);
        }
        // Pretend one became known: fill-in adds exactly that one.
        let mut later = results.clone();
        let id = unknown[0].id;
        let r = later.iter_mut().find(|r| r.id == id).unwrap();
        r.status = Status::Pass;
        r.observed = "now known".into();
        assert_eq!(b.fill_in(&later), vec![id]);
        assert_eq!(b.controls[id].observed.as_deref(), Some("now known"));
        assert!(b.fill_in(&later).is_empty());
    }

    #[test]
    fn policy_baseline_holds_every_control_to_pass() {
        let s = snapshot_with(&["--read-only-port=10255"], None);
        let (mut b, results) = baseline_of(&s, Origin::Policy);
        assert!(b
            .controls
            .values()
            .all(|c| c.status == Status::Pass && c.observed.is_none()));
        let r = result(&results, "read-only-port-disabled");
        assert_eq!(r.status, Status::Fail);
        let d = b.compare(r).unwrap();
        assert!(d.drifted && d.regressed);
        // A passing control is on the standard.
        let p = results.iter().find(|r| r.status == Status::Pass).unwrap();
        assert_eq!(
            b.compare(p).map(|d| (d.drifted, d.regressed)),
            Some((false, false))
        );
        // Unchanged policy: nothing to refill; a changed expectation replaces the entry.
        assert!(b.fill_in(&results).is_empty());
        let mut changed = results.clone();
        changed[0].expected = "something stricter".into();
        assert_eq!(b.fill_in(&changed), vec![changed[0].id]);
    }

    #[test]
    fn round_trips_through_json_and_rejects_unknown_fields() {
        let s = snapshot_with(&["--read-only-port=0"], None);
        let (b, _) = baseline_of(&s, Origin::Accepted);
        let text = serde_json::to_string_pretty(&b).unwrap();
        let back: Baseline = serde_json::from_str(&text).unwrap();
        assert_eq!(back, b);
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["surprise"] = serde_json::Value::Bool(true);
        assert!(serde_json::from_value::<Baseline>(v).is_err());
    }

    #[test]
    fn no_kubelet_no_baseline() {
        let mut s = snapshot_with(&[], None);
        s.kubelet = None;
        let results = crate::evaluate::evaluate(&s, &Policy::embedded());
        assert!(
            Baseline::from_evaluation(&s, &results, 1.0, Origin::FirstObservation, "t").is_none()
        );
    }
}
