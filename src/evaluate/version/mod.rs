//! Practice 4, version currency: the kubelet's minor release is still maintained upstream,
//! and its patch release has no known kubelet CVE.
//!
//! Both controls decide from tables embedded at build time (`data/releases.yaml`,
//! `data/cves.yaml`), parsed and validated on first use. A table that does not parse is a
//! build defect caught by this module's tests; at run time it is logged once and makes the
//! controls `unknown` ("embedded table invalid"), never a panic.
//!
//! `release_table.rs` and `cve_table.rs` hold the tables and their parsing (the CVE feed
//! reuses the CVE one); `supported.rs` and `known_cves.rs` the two controls; this file the
//! catalogue entries and the observed version both judge.

pub mod cve_table;
mod known_cves;
pub mod release_table;
mod supported;

use known_cves::evaluate_cves;
use supported::evaluate_supported;

use super::outcome::kubelet;
use super::{Control, Ctx, Family, Needs, Severity, PRACTICE_HARDENING};
use crate::model::version::{version_suffix, KubeVersion};

/// The version controls (hardening family): a supported kubelet minor, no known CVE.
pub static CONTROLS: &[Control] = &[
    Control {
        id: "kubelet-version-supported",
        title: "Kubelet runs a Kubernetes minor release that is still maintained upstream",
        family: Family::Hardening,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_HARDENING,
        expected: "one of the three newest maintained minors (before their end of life)",
        remediation: "Upgrade the node (kubelet) to one of the three newest Kubernetes minor releases that have not reached end of life (kubernetes.io/releases); the kubelet may be up to three minors older than the API server, never newer. A branch past its end of life gets no security fixes. If a vendor supports the minor for longer (extended support), list it in the policy's `supported_kubelet_minors`.",
        needs: Needs::Kubelet,
        evaluate: evaluate_supported,
    },
    Control {
        id: "kubelet-version-no-known-cves",
        title: "Kubelet version has no known kubelet CVE",
        family: Family::Hardening,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_HARDENING,
        expected: "no known kubelet CVE (embedded table, and the --cve-feed file when given) affects this version (Windows-only and unfixable CVEs are listed, not counted)",
        remediation: "Upgrade the kubelet to at least the fixed patch release of its minor named in the reason (or to a newer maintained minor). Windows-only CVEs are never counted on Linux nodes. CVEs with no upstream fix at all (e.g. CVE-2025-1767, gitRepo volumes) are listed for information and never fail this control, since no upgrade clears them: mitigate them as the reason says (e.g. forbid gitRepo volumes with an admission policy and clone repositories in an init container). Vendor builds (EKS, GKE, AKS, RKE2, k3s) are judged by their upstream patch version; a vendor may have backported a fix, so check its security bulletin before disabling the control. With --cve-feed, the CVEs of that copy of the official feed count too; `unknown` with a feed means the file is unusable (the reason says why) or the feed lists a kubelet CVE whose affected versions could not be read: read its announcement, named in the reason, and upgrade past it or refresh the feed.",
        needs: Needs::Kubelet,
        evaluate: evaluate_cves,
    },
];

// ---------------------------------------------------------------------------------------
// The evaluation time.
// ---------------------------------------------------------------------------------------

/// The evaluation time (`snapshot.taken_at`) in whole seconds.
pub fn evaluation_time(ctx: &Ctx) -> i64 {
    crate::model::time::whole_seconds(ctx.snapshot.taken_at)
}

// ---------------------------------------------------------------------------------------
// Versions.
// ---------------------------------------------------------------------------------------

/// Whether a suffix marks an upstream pre-release (`-alpha.1`, `-beta.0`, `-rc.2`).
fn is_prerelease(suffix: &str) -> bool {
    ["-alpha.", "-beta.", "-rc."]
        .iter()
        .any(|p| suffix.starts_with(p))
}

fn embedded<T>(name: &str, parsed: Result<T, String>) -> Result<T, String> {
    parsed.map_err(|e| {
        let msg = format!("embedded table invalid: {name}: {e}");
        tracing::error!("{msg}");
        msg
    })
}

// ---------------------------------------------------------------------------------------
// The observed version.
// ---------------------------------------------------------------------------------------

/// `status.nodeInfo.kubeletVersion` of this node's Node object, when the API view has it.
pub(crate) fn api_version<'a>(ctx: &Ctx<'a>) -> Option<&'a str> {
    ctx.snapshot.node_kubelet_version()
}

/// The kubelet's observed version: (parsed, raw text, source).
///
/// Sources: the binary (`kubelet --version`), `kubernetes_build_info`, `--kubelet-version`,
/// and the Node's `status.nodeInfo.kubeletVersion` (component-base/version `Get().GitVersion`: the same GitVersion, as
/// reported by the *running* kubelet at its start). When the process-local source and the
/// API disagree — typically a kubelet package upgraded on disk while the old process runs
/// on — the older of the two is judged (the process that runs may be the old one), and the
/// source names both.
fn observed_version(ctx: &Ctx) -> Result<(KubeVersion, String, String), String> {
    let k = kubelet(ctx)?;
    let source = k
        .version_source
        .map_or_else(|| "unknown".to_string(), |s| s.as_str().to_string());
    let api = api_version(ctx);
    let Some(raw) = k.version.as_deref() else {
        if let Some(a) = api {
            let v = KubeVersion::parse(a).ok_or_else(|| {
                format!("the kubelet's version {a:?} (source node_status) is not understood")
            })?;
            return Ok((v, a.to_string(), "node_status".to_string()));
        }
        return Err(match &k.version_error {
            Some(e) => format!("the kubelet's version is not known: {e}"),
            None => "the kubelet's version is not known".to_string(),
        });
    };
    let v = KubeVersion::parse(raw).ok_or_else(|| {
        format!("the kubelet's version {raw:?} (source {source}) is not understood")
    })?;
    match api.filter(|a| *a != raw) {
        None => Ok((v, raw.to_string(), source)),
        Some(a) => match KubeVersion::parse(a) {
            Some(av) if av < v => Ok((
                av,
                a.to_string(),
                format!("node_status; mismatch: {source} says {raw}"),
            )),
            _ => Ok((
                v,
                raw.to_string(),
                format!("{source}; mismatch: node_status says {a}"),
            )),
        },
    }
}

/// A note on how a suffixed version is judged, or nothing.
fn suffix_note(raw: &str, v: KubeVersion) -> Option<String> {
    let suffix = version_suffix(raw)?;
    Some(if is_prerelease(suffix) {
        format!("pre-release {raw} judged as {v}")
    } else {
        format!("vendor build ({suffix}) judged by its upstream version {v}; the vendor may backport fixes")
    })
}

#[cfg(test)]
mod tests;
