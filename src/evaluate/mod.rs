//! Evaluate: the control catalogue as a declarative table (one file per family) and pure
//! functions from a [`Snapshot`] and a [`Policy`] to results.

pub mod api_access;
pub mod audit;
pub mod authn;
pub mod by_version;
#[cfg(test)]
mod catalogue_tests;
pub mod certs;
pub mod cluster_view;
pub mod cve_feed;
pub mod files;
pub mod hardening;
pub mod live_verdict;
#[cfg(test)]
mod live_verdict_tests;
pub mod outcome;
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
    Pass,
    Fail,
    Unknown,
    NotApplicable,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Pass,
        Status::Fail,
        Status::Unknown,
        Status::NotApplicable,
    ];

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
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

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
    ApiAccess,
    Tls,
    Authn,
    Hardening,
    Resources,
    Files,
    PodSecurity,
    Rbac,
    Audit,
}

impl Family {
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
    pub snapshot: &'a Snapshot,
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
pub const PRACTICE_TLS: &str = "2 strong TLS on every kubelet connection";
pub const PRACTICE_AUTHN: &str = "3 authenticate and authorise every kubelet request";
pub const PRACTICE_HARDENING: &str = "4 harden kubelet defaults";
pub const PRACTICE_RESOURCES: &str = "4 harden kubelet defaults and reserve node resources";
pub const PRACTICE_POD_SECURITY: &str = "5 Pod Security";
pub const PRACTICE_RBAC: &str = "6 least-privilege kubelet credentials (RBAC, node side)";
pub const PRACTICE_AUDIT: &str = "7 audit logging";

/// One entry of the catalogue.
pub struct Control {
    /// Stable kebab-case id: a public contract (dashboards, alerts, policies).
    pub id: &'static str,
    pub title: &'static str,
    pub family: Family,
    pub severity: Severity,
    /// CIS Kubernetes Benchmark 1.12 reference, when there is one.
    pub cis: Option<&'static str>,
    /// The seed practice this control implements.
    pub practice: &'static str,
    /// What passing looks like (policy may refine it; see [`Outcome::expected`]).
    pub expected: &'static str,
    pub remediation: &'static str,
    pub needs: Needs,
    pub evaluate: fn(&Ctx) -> Outcome,
}

/// What an evaluation found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
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

    pub fn pass(
        observed: impl Into<String>,
        source: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::new(Status::Pass, observed, source, reason)
    }

    pub fn fail(
        observed: impl Into<String>,
        source: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::new(Status::Fail, observed, source, reason)
    }

    pub fn unknown(reason: impl Into<String>) -> Self {
        Self::new(Status::Unknown, "", "", reason)
    }

    pub fn not_applicable(reason: impl Into<String>) -> Self {
        Self::new(Status::NotApplicable, "", "", reason)
    }

    pub fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
}

/// A control's result, ready for publishing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ControlResult {
    pub id: &'static str,
    pub title: &'static str,
    pub family: &'static str,
    /// Effective severity (after policy).
    pub severity: Severity,
    pub cis: Option<&'static str>,
    pub practice: &'static str,
    pub status: Status,
    pub observed: String,
    pub expected: String,
    pub source: String,
    pub reason: String,
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
    pub pass: usize,
    pub fail: usize,
    pub unknown: usize,
    pub not_applicable: usize,
}

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
