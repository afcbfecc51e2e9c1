//! Evaluate: the control catalogue as a declarative table (one file per family) and pure
//! functions from a [`Snapshot`] and a [`Policy`] to results.

pub mod api_access;
pub mod audit;
pub mod authn;
pub mod benchmark;
pub mod by_version;
#[cfg(test)]
mod catalogue_tests;
pub mod certs;
pub mod cluster_view;
pub mod cve_feed;
pub mod files;
pub mod fix;
pub mod hardening;
pub mod kube_proxy;
pub mod live_verdict;
#[cfg(test)]
mod live_verdict_tests;
pub mod outcome;
pub mod passes_when;
pub mod pod_security;
pub mod policy;
pub mod rbac;
pub mod resources;
pub mod running_config;
pub mod setting;
#[cfg(test)]
pub mod testing;
pub mod tls;
pub mod version;

use crate::evaluate::policy::Policy;
use crate::model::kubelet_config::Lookup;
use crate::model::snapshot::{Kubelet, Snapshot};

/// A control's verdict.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The observed setting meets the control's expectation.
    Pass,
    /// The observed setting violates the expectation; counts towards `check --fail-on`.
    Fail,
    /// The evidence could not be gathered or read (no kubelet, no API access, unreadable
    /// file); `reason` says why. Neither a pass nor a failure for `--fail-on`.
    Unknown,
    /// The control does not apply to this node's setup (no kube-apiserver here, a
    /// standalone kubelet, cluster checks off in the policy, ...); `reason` says why.
    NotApplicable,
}

impl Status {
    /// Every status in exposition order: the `status` label of the per-control gauge
    /// is emitted once for each (one series at 1, the others at 0).
    pub const ALL: [Status; 4] = [
        Status::Pass,
        Status::Fail,
        Status::Unknown,
        Status::NotApplicable,
    ];

    /// The snake_case name used in the report, the metrics `status` label and serde.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
            Status::NotApplicable => "not_applicable",
        }
    }
}

/// How bad a failure is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    // Ordered so that `Critical` is the greatest.
    /// The lowest severity: fails `check` only under `--fail-on low`.
    Low,
    /// Fails `check` under `--fail-on medium` or `low`.
    Medium,
    /// Fails `check` under the default `--fail-on high` and below.
    High,
    /// The highest severity: fails `check` under any `--fail-on` but `never`.
    Critical,
}

impl Severity {
    /// The lowercase name used in the report, the metrics `severity` label and policies.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// Parses the lowercase name (`critical`, `high`, `medium`, `low`); `None` otherwise.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "critical" => Some(Severity::Critical),
            "high" => Some(Severity::High),
            "medium" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            _ => None,
        }
    }
}

/// Control families (one source file each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Who can reach the kubelet API: ports, bind address, read-only port (`api_access.rs`);
    /// also kube-proxy's metrics address (`kube_proxy.rs`, CIS 4.3.1).
    ApiAccess,
    /// TLS on kubelet connections: versions, ciphers, serving and client certificates
    /// (`tls/`, `certs.rs`).
    Tls,
    /// Authentication and authorisation of kubelet requests (`authn.rs`); reported as
    /// `authn_authz`.
    Authn,
    /// Kubelet defaults worth tightening, plus version and running-config checks
    /// (`hardening/`, `version/`, `running_config.rs`).
    Hardening,
    /// Node resource reservations and eviction limits (`resources.rs`).
    Resources,
    /// Ownership and permissions of the kubelet's files on the host (`files/`), and of
    /// kube-proxy's kubeconfig (`kube_proxy.rs`, CIS 4.1.3/4.1.4).
    Files,
    /// Pod Security admission as seen through the API (`pod_security/`).
    PodSecurity,
    /// The kubelet's RBAC footprint, node side (`rbac/`).
    Rbac,
    /// The kube-apiserver's audit log, on control-plane nodes (`audit.rs`).
    Audit,
}

impl Family {
    /// The snake_case name used as the `family` column of the report and metrics label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Family::ApiAccess => "api_access",
            Family::Tls => "tls",
            Family::Authn => "authn_authz",
            Family::Hardening => "hardening",
            Family::Resources => "resources",
            Family::Files => "files",
            Family::PodSecurity => "pod_security",
            Family::Rbac => "rbac",
            Family::Audit => "audit",
        }
    }
}

/// What a control needs from the snapshot before it can say anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// A discovered, readable kubelet (otherwise `unknown` with the discovery reason).
    Kubelet,
    /// Nothing: the control handles a missing kubelet itself.
    Nothing,
    /// The Kubernetes API's view (not the kubelet: pods and namespaces are known to the API
    /// whether or not a kubelet process is found here). `not_applicable` when the policy
    /// turns cluster checks off; `unknown` ("no API access (why)") without API access.
    Api,
}

/// Everything a control's evaluation may look at.
pub struct Ctx<'a> {
    /// The node's observed state: kubelet process, configuration, files, API view.
    pub snapshot: &'a Snapshot,
    /// The operator's policy: enabled controls, severity overrides, expectations.
    pub policy: &'a Policy,
}

impl<'a> Ctx<'a> {
    /// The kubelet (present whenever `Needs::Kubelet` controls run).
    pub fn kubelet(&self) -> Option<&'a Kubelet> {
        self.snapshot.kubelet.as_ref()
    }

    /// The kubelet minor whose configuration-loading rules apply: the one the agent
    /// settled on the snapshot, or, for a snapshot built without that step, the same
    /// [`Snapshot::loading_version`](crate::model::snapshot::Snapshot::loading_version).
    pub fn loading_minor(&self) -> Option<u32> {
        self.kubelet()?.config.kubelet_minor.or_else(|| {
            self.snapshot
                .loading_version()
                .and_then(crate::model::version::minor_of)
        })
    }

    /// Effective setting lookup on the kubelet's configuration, under the loading rules
    /// of the kubelet's version ([`Ctx::loading_minor`]).
    pub fn setting(&self, key: &str) -> Lookup {
        match self.kubelet() {
            Some(k) => k.config.get_for(key, self.loading_minor()),
            None => Lookup::Unknown {
                reason: "no kubelet".to_string(),
            },
        }
    }
}

/// The seed practices a control implements (the `practice` column).
pub const PRACTICE_NETWORK: &str = "1 restrict network access to the kubelet API";
/// Practice 2: TLS versions, ciphers and certificates.
pub const PRACTICE_TLS: &str = "2 strong TLS on every kubelet connection";
/// Practice 3: anonymous auth off, webhook authn/authz.
pub const PRACTICE_AUTHN: &str = "3 authenticate and authorise every kubelet request";
/// Practice 4: hardening flags and defaults.
pub const PRACTICE_HARDENING: &str = "4 harden kubelet defaults";
/// Practice 4, resource side: reservations and eviction thresholds.
pub const PRACTICE_RESOURCES: &str = "4 harden kubelet defaults and reserve node resources";
/// Practice 5: Pod Security admission levels on namespaces.
pub const PRACTICE_POD_SECURITY: &str = "5 Pod Security";
/// Practice 6: node credentials limited by the Node authorizer and NodeRestriction.
pub const PRACTICE_RBAC: &str = "6 least-privilege kubelet credentials (RBAC, node side)";
/// Practice 7: audit logging where requests enter the cluster (the kube-apiserver).
pub const PRACTICE_AUDIT: &str = "7 audit logging";

/// One entry of the catalogue.
pub struct Control {
    /// Stable kebab-case id: a public contract (dashboards, alerts, policies).
    pub id: &'static str,
    /// One-line human title, shown in the report and the `title` label of the info metric.
    pub title: &'static str,
    /// The family (source file) the control belongs to.
    pub family: Family,
    /// Default severity when it fails; a policy may override it per control.
    pub severity: Severity,
    /// CIS Kubernetes Benchmark 1.12 reference, when there is one.
    pub cis: Option<&'static str>,
    /// The seed practice this control implements.
    pub practice: &'static str,
    /// What passing looks like (policy may refine it; see [`Outcome::expected`]).
    pub expected: &'static str,
    /// What to change to make the control pass, for the report.
    pub remediation: &'static str,
    /// What must be in the snapshot before `evaluate` is called; otherwise the control
    /// is answered `unknown`/`not_applicable` without running it.
    pub needs: Needs,
    /// The control's judgement: a pure function of the context.
    pub evaluate: fn(&Ctx) -> Outcome,
}

/// What an evaluation found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// The verdict.
    pub status: Status,
    /// The observed value, rendered for humans (`false`, `10255`, `0600 /etc/...`).
    pub observed: String,
    /// Where the observed value came from (`flag`, `config-file`, `drop-in:10-x.conf`,
    /// `default`, `file-metadata`, ...).
    pub source: String,
    /// One line: why this status.
    pub reason: String,
    /// Policy-specific expectation, replacing the catalogue's text when set.
    pub expected: Option<String>,
}

impl Outcome {
    /// An outcome with the given status, evidence and reason, and no policy expectation.
    pub fn new(
        status: Status,
        observed: impl Into<String>,
        source: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Outcome {
            status,
            observed: observed.into(),
            source: source.into(),
            reason: reason.into(),
            expected: None,
        }
    }

    /// A [`Status::Pass`] outcome.
    pub fn pass(
        observed: impl Into<String>,
        source: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::new(Status::Pass, observed, source, reason)
    }

    /// A [`Status::Fail`] outcome.
    pub fn fail(
        observed: impl Into<String>,
        source: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::new(Status::Fail, observed, source, reason)
    }

    /// A [`Status::Unknown`] outcome: nothing observed, only why.
    pub fn unknown(reason: impl Into<String>) -> Self {
        Self::new(Status::Unknown, "", "", reason)
    }

    /// A [`Status::NotApplicable`] outcome: nothing observed, only why.
    pub fn not_applicable(reason: impl Into<String>) -> Self {
        Self::new(Status::NotApplicable, "", "", reason)
    }

    /// Replaces the catalogue's expected text with a policy-specific one.
    pub fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
}

/// A control's result, ready for publishing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ControlResult {
    /// The control's stable id ([`Control::id`]).
    pub id: &'static str,
    /// The control's title ([`Control::title`]).
    pub title: &'static str,
    /// The family's name ([`Family::as_str`]).
    pub family: &'static str,
    /// Effective severity (after policy).
    pub severity: Severity,
    /// CIS Kubernetes Benchmark reference, when there is one.
    pub cis: Option<&'static str>,
    /// The seed practice the control implements (one of the `PRACTICE_*` constants).
    pub practice: &'static str,
    /// The verdict.
    pub status: Status,
    /// The observed value, rendered for humans; empty when nothing was observed.
    pub observed: String,
    /// What passing looks like: the policy-specific expectation, else the catalogue's.
    pub expected: String,
    /// Where the observed value came from (`flag`, `config-file`, `default`, ...); empty
    /// when nothing was observed.
    pub source: String,
    /// One line: why this status.
    pub reason: String,
    /// What to change to make the control pass.
    pub remediation: &'static str,
}

/// The whole catalogue, in a stable order (families, then the order in each file).
pub fn catalogue() -> Vec<&'static Control> {
    let mut all: Vec<&'static Control> = Vec::new();
    for family in [
        api_access::CONTROLS,
        tls::CONTROLS,
        certs::CONTROLS,
        authn::CONTROLS,
        hardening::CONTROLS,
        version::CONTROLS,
        running_config::CONTROLS,
        resources::CONTROLS,
        files::CONTROLS,
        kube_proxy::CONTROLS,
        pod_security::CONTROLS,
        rbac::CONTROLS,
        audit::CONTROLS,
    ] {
        all.extend(family.iter());
    }
    all
}

/// Find a control by id.
pub fn control(id: &str) -> Option<&'static Control> {
    catalogue().into_iter().find(|c| c.id == id)
}

/// Evaluate every enabled control against a snapshot.
pub fn evaluate(snapshot: &Snapshot, policy: &Policy) -> Vec<ControlResult> {
    let ctx = Ctx { snapshot, policy };
    catalogue()
        .into_iter()
        .filter(|c| policy.enabled(c.id))
        .map(|c| {
            let outcome = match (c.needs, snapshot.no_kubelet_reason()) {
                (Needs::Kubelet, Some(reason)) => Outcome::unknown(reason),
                (Needs::Api, _) => {
                    cluster_view::api_gate(&ctx).unwrap_or_else(|| (c.evaluate)(&ctx))
                }
                _ => (c.evaluate)(&ctx),
            };
            ControlResult {
                id: c.id,
                title: c.title,
                family: c.family.as_str(),
                severity: policy.severity(c.id).unwrap_or(c.severity),
                cis: c.cis,
                practice: c.practice,
                status: outcome.status,
                observed: outcome.observed,
                expected: outcome.expected.unwrap_or_else(|| c.expected.to_string()),
                source: outcome.source,
                reason: outcome.reason,
                remediation: c.remediation,
            }
        })
        .collect()
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Controls that passed.
    pub pass: usize,
    /// Controls that failed.
    pub fail: usize,
    /// Controls whose evidence could not be gathered.
    pub unknown: usize,
    /// Controls that do not apply here.
    pub not_applicable: usize,
}

/// Counts the results per status (the report's `summary`).
pub fn summarize(results: &[ControlResult]) -> Summary {
    let mut s = Summary::default();
    for r in results {
        match r.status {
            Status::Pass => s.pass += 1,
            Status::Fail => s.fail += 1,
            Status::Unknown => s.unknown += 1,
            Status::NotApplicable => s.not_applicable += 1,
        }
    }
    s
}
