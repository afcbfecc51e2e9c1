//! Helpers shared by the control families.

use serde_json::Value;

use super::{Ctx, Outcome};
use crate::model::kubelet_config::{Lookup, Setting};
use crate::model::snapshot::{ApiSource, ClusterView};

/// Render a JSON value for humans: strings bare, lists comma-joined, maps `k=v`.
pub fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(render).collect::<Vec<_>>().join(","),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}={}", render(v)))
            .collect::<Vec<_>>()
            .join(","),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The source column for a setting: `flag`, `config-file`, `drop-in:<file>`, `default`.
pub fn source_label(s: &Setting) -> String {
    s.source.label()
}

/// A reason suffix describing where a value came from, with any note.
pub fn provenance(s: &Setting) -> String {
    match &s.note {
        Some(n) => format!("{}; {n}", s.source.describe()),
        None => s.source.describe(),
    }
}

/// Evaluate with an effective setting; an undecidable setting is `unknown` with its reason.
pub fn with_setting(ctx: &Ctx, key: &str, f: impl FnOnce(&Setting) -> Outcome) -> Outcome {
    match ctx.setting(key) {
        Lookup::Known(s) => f(&s),
        Lookup::Unknown { reason } => Outcome::unknown(reason),
    }
}

/// Format a file mode as four octal digits.
pub fn mode_str(mode: u32) -> String {
    format!("{mode:04o}")
}

// ---------------------------------------------------------------------------------------
// Catalogue helpers (appended for the control families).
// ---------------------------------------------------------------------------------------

/// The seed practices a control implements (the `practice` column).
pub const PRACTICE_NETWORK: &str = "1 restrict network access to the kubelet API";
pub const PRACTICE_TLS: &str = "2 strong TLS on every kubelet connection";
pub const PRACTICE_AUTHN: &str = "3 authenticate and authorise every kubelet request";
pub const PRACTICE_HARDENING: &str = "4 harden kubelet defaults";
pub const PRACTICE_RESOURCES: &str = "4 harden kubelet defaults and reserve node resources";
pub const PRACTICE_POD_SECURITY: &str = "5 Pod Security";
pub const PRACTICE_RBAC: &str = "6 least-privilege kubelet credentials (RBAC, node side)";
pub const PRACTICE_AUDIT: &str = "7 audit logging";

// ---------------------------------------------------------------------------------------
// The controls that need the Kubernetes API (`Needs::Api`).
// ---------------------------------------------------------------------------------------

/// The common gate of `Needs::Api` controls: `Some(outcome)` when they cannot be judged.
pub fn api_gate(ctx: &Ctx) -> Option<Outcome> {
    if !ctx.policy.expected.cluster_checks {
        return Some(Outcome::not_applicable(
            "cluster checks are off in the policy (cluster_checks: false)",
        ));
    }
    match &ctx.snapshot.cluster {
        None => Some(Outcome::unknown(
            "no API access (this evaluation did not use the Kubernetes API)",
        )),
        Some(ClusterView {
            access: Err(why), ..
        }) => Some(Outcome::unknown(format!("no API access ({why})"))),
        Some(_) => None,
    }
}

/// The data of an API source, or the `unknown` that says it is awaited; `first` names
/// what is awaited (`list of pods`, `SubjectAccessReviews`).
pub fn api_data<'a, T>(src: &'a ApiSource<T>, first: &str) -> Result<&'a T, Outcome> {
    src.data.as_ref().ok_or_else(|| {
        Outcome::unknown(match &src.health {
            Err(e) if e != "waiting for the first list" => {
                format!("waiting for the first {first} (last error: {e})")
            }
            _ => format!("waiting for the first {first}"),
        })
    })
}

/// A reason suffix when the data is from an earlier answer because the task that keeps it
/// (`pods watch`) is failing now; `last` names that answer (`list`, `answers`).
pub fn api_stale<T>(src: &ApiSource<T>, task: &str, last: &str) -> String {
    match &src.health {
        Err(e) => format!("; the {task} is failing ({e}): as of its last {last}"),
        Ok(()) => String::new(),
    }
}

/// At most `MAX_LISTED` items, then `and N more`.
const MAX_LISTED: usize = 10;

pub fn capped(items: &[String]) -> String {
    let mut out = items
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_LISTED {
        out.push_str(&format!(" and {} more", items.len() - MAX_LISTED));
    }
    out
}

/// Run an evaluation that may find its input undecidable: `Err(reason)` becomes
/// `unknown` with that reason. Lets a control combine several settings with `?`.
pub fn decide(f: impl FnOnce() -> Result<Outcome, String>) -> Outcome {
    f().unwrap_or_else(Outcome::unknown)
}

/// An `unknown` that still shows what was observed and where it came from.
pub fn unknown_with(
    observed: impl Into<String>,
    source: impl Into<String>,
    reason: impl Into<String>,
) -> Outcome {
    Outcome::new(super::Status::Unknown, observed, source, reason)
}

/// The kubelet under evaluation (always present for `Needs::Kubelet` controls).
pub fn kubelet<'a>(ctx: &Ctx<'a>) -> Result<&'a crate::model::snapshot::Kubelet, String> {
    ctx.kubelet().ok_or_else(|| "no kubelet".to_string())
}

/// An effective setting, or why it cannot be decided.
pub fn known(ctx: &Ctx, key: &str) -> Result<Setting, String> {
    match ctx.setting(key) {
        Lookup::Known(s) => Ok(s),
        Lookup::Unknown { reason } => Err(reason),
    }
}

fn wrong_type(s: &Setting, want: &str) -> String {
    format!("value {} is not {want}; from {}", s.value, provenance(s))
}

/// A boolean setting's value.
pub fn bool_of(s: &Setting) -> Result<bool, String> {
    s.value.as_bool().ok_or_else(|| wrong_type(s, "a boolean"))
}

/// An integer setting's value.
pub fn int_of(s: &Setting) -> Result<i64, String> {
    s.value.as_i64().ok_or_else(|| wrong_type(s, "an integer"))
}

/// A string setting's value.
pub fn str_of(s: &Setting) -> Result<&str, String> {
    s.value.as_str().ok_or_else(|| wrong_type(s, "a string"))
}

/// A string-list setting's value.
pub fn list_of(s: &Setting) -> Result<Vec<String>, String> {
    s.value
        .as_array()
        .and_then(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| wrong_type(s, "a list of strings"))
}

/// A string-map setting's value.
pub fn map_of(s: &Setting) -> Result<std::collections::BTreeMap<String, String>, String> {
    s.value
        .as_object()
        .and_then(|o| {
            o.iter()
                .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect::<Option<std::collections::BTreeMap<_, _>>>()
        })
        .ok_or_else(|| wrong_type(s, "a map of strings"))
}

/// A one-line reason: why, then where the value came from (`provenance`).
pub fn because(why: impl std::fmt::Display, s: &Setting) -> String {
    format!("{why}; from {}", provenance(s))
}

/// Whether a Kubernetes resource quantity or percentage (`0`, `0%`, `0Mi`, `100Mi`,
/// `5%`, `1e3`, `0.5Gi`) is zero. `None` when it is not a valid non-negative quantity.
pub fn quantity_is_zero(s: &str) -> Option<bool> {
    let s = s.trim();
    let number = if let Some(n) = s.strip_suffix('%') {
        n
    } else {
        const SUFFIXES: &[&str] = &[
            "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
        ];
        // A plain or exponent form ("1e3", "0") parses as a number as it is.
        if s.parse::<f64>().is_ok() {
            s
        } else {
            SUFFIXES
                .iter()
                .find_map(|suf| s.strip_suffix(suf))
                .unwrap_or(s)
        }
    };
    let number = number.trim();
    if number.is_empty()
        || !number
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = number.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some(v == 0.0)
}

/// A file observation for humans, the attribute a control judges: `0600 /path` or
/// `0:0 /path` (with `-> resolved` when a symlink
/// was followed), or `? /path (error)`.
pub fn file_line(f: &crate::model::snapshot::FileObservation, attribute: FileAttribute) -> String {
    match &f.meta {
        Ok(m) => {
            let target = if m.resolved != f.path && !m.resolved.is_empty() {
                format!("{} -> {}", f.path, m.resolved)
            } else {
                f.path.clone()
            };
            match attribute {
                FileAttribute::Mode => format!("{} {target}", mode_str(m.mode)),
                FileAttribute::Owner => format!("{}:{} {target}", m.uid, m.gid),
            }
        }
        Err(e) => format!("? {} ({})", f.path, obs_kind_str(e.kind)),
    }
}

/// Which attribute of a file a control judges, and so shows as its observed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAttribute {
    /// Permission bits (`0600`).
    Mode,
    /// Owner and group (`0:0`).
    Owner,
}

/// A short word for an observation error kind.
pub fn obs_kind_str(kind: crate::model::snapshot::ObsErrorKind) -> &'static str {
    match kind {
        crate::model::snapshot::ObsErrorKind::NotFound => "not found",
        crate::model::snapshot::ObsErrorKind::Unreadable => "unreadable",
        crate::model::snapshot::ObsErrorKind::Invalid => "invalid",
    }
}

/// Test builders: snapshots in memory, evaluated through the real config layer.
/// What the kubelet's sockets said about a control.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveVerdict {
    /// The running kubelet behaves securely here.
    Secure(String),
    /// The running kubelet behaves insecurely here: a fail whatever the files say.
    Insecure(String),
    /// Live evidence exists but says nothing about this control.
    Neutral(String),
    /// The probe had no answer (timeout, error): the control cannot be confirmed.
    Unavailable(String),
}

/// Combine the configuration's verdict with live evidence (`None`: probes did not run,
/// e.g. a host tree on disk; the configuration's verdict stands alone).
///
/// A control passes only when configuration and live behaviour agree: insecure live
/// behaviour fails; secure behaviour with an insecure configuration fails too (the node
/// runs something other than its files say, e.g. a restart is pending); a probe without
/// an answer makes the control `unknown` — never a pass.
pub fn with_live(config: Outcome, live: Option<LiveVerdict>) -> Outcome {
    use super::Status;
    let Some(live) = live else {
        return config;
    };
    let cfg_desc = if config.observed.is_empty() {
        "configuration undecidable".to_string()
    } else {
        format!("configured {} ({})", config.observed, config.source)
    };
    let joined_source = |src: &str| {
        if src.is_empty() {
            "live".to_string()
        } else {
            format!("{src}+live")
        }
    };
    match live {
        LiveVerdict::Insecure(e) => Outcome {
            status: Status::Fail,
            observed: format!("live: {e}"),
            source: "live".to_string(),
            reason: format!("the running kubelet {e}; {cfg_desc}; {}", config.reason),
            expected: config.expected,
        },
        LiveVerdict::Secure(e) => match config.status {
            Status::Pass | Status::NotApplicable => Outcome {
                observed: format!("{}; live: {e}", config.observed),
                source: joined_source(&config.source),
                reason: format!("{}; confirmed live: {e}", config.reason),
                ..config
            },
            Status::Fail => Outcome {
                observed: format!("{}; live: {e}", config.observed),
                source: joined_source(&config.source),
                reason: format!(
                    "configuration and running kubelet disagree: live {e}, but {}; the files decide after the next restart",
                    config.reason
                ),
                ..config
            },
            Status::Unknown => Outcome {
                reason: format!("{}; live: {e}, but the configuration cannot confirm it", config.reason),
                ..config
            },
        },
        LiveVerdict::Neutral(e) => Outcome {
            reason: format!("{}; live: {e}", config.reason),
            ..config
        },
        LiveVerdict::Unavailable(e) => Outcome {
            status: Status::Unknown,
            reason: format!("live probe has no answer ({e}); {cfg_desc}: {}", config.reason),
            ..config
        },
    }
}

/// The live probes ran for this snapshot.
pub fn live<'a>(ctx: &Ctx<'a>) -> Option<&'a crate::model::snapshot::Live> {
    ctx.snapshot.live.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering() {
        assert_eq!(render(&serde_json::json!("x")), "x");
        assert_eq!(render(&serde_json::json!(["a", "b"])), "a,b");
        assert_eq!(render(&serde_json::json!({"cpu": "1"})), "cpu=1");
        assert_eq!(render(&serde_json::json!(10255)), "10255");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod catalogue_tests {
    use super::*;
    use crate::evaluate::testing::*;
    use crate::evaluate::{catalogue, evaluate, Family, Status};
    use crate::model::snapshot::FileRole;

    #[test]
    fn quantities() {
        for zero in ["0", "0%", "0Mi", "0.0%", "0Gi", "0k", "0e3", " 0 "] {
            assert_eq!(quantity_is_zero(zero), Some(true), "{zero}");
        }
        for non_zero in ["100Mi", "5%", "1", "0.5Gi", "1e3", "250m", "1Ki", "1E"] {
            assert_eq!(quantity_is_zero(non_zero), Some(false), "{non_zero}");
        }
        for bad in ["", "%", "Mi", "lots", "-1Mi", "1Xi", "1.2.3"] {
            assert_eq!(quantity_is_zero(bad), None, "{bad}");
        }
    }

    fn is_kebab(id: &str) -> bool {
        !id.is_empty()
            && !id.starts_with('-')
            && !id.ends_with('-')
            && !id.contains("--")
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    /// The public contract: every id, its family and its CIS reference.
    const CONTRACT: &[(&str, Family, Option<&str>)] = &[
        ("read-only-port-disabled", Family::ApiAccess, Some("4.2.4")),
        ("api-bind-address-restricted", Family::ApiAccess, None),
        ("healthz-bind-localhost", Family::ApiAccess, None),
        ("tls-serving-cert-configured", Family::Tls, Some("4.2.9")),
        ("client-ca-configured", Family::Tls, Some("4.2.3")),
        ("tls-min-version", Family::Tls, None),
        ("tls-strong-cipher-suites", Family::Tls, Some("4.2.12")),
        ("client-cert-rotation", Family::Tls, Some("4.2.10")),
        ("server-cert-rotation", Family::Tls, Some("4.2.11")),
        ("serving-cert-valid", Family::Tls, None),
        ("client-cert-valid", Family::Tls, None),
        ("anonymous-auth-disabled", Family::Authn, Some("4.2.1")),
        ("authorization-mode-webhook", Family::Authn, Some("4.2.2")),
        ("authentication-webhook-enabled", Family::Authn, None),
        ("kubelet-api-rejects-anonymous", Family::Authn, None),
        (
            "streaming-idle-timeout-set",
            Family::Hardening,
            Some("4.2.5"),
        ),
        ("iptables-util-chains", Family::Hardening, Some("4.2.6")),
        ("hostname-override-unset", Family::Hardening, Some("4.2.7")),
        ("event-qps-limited", Family::Hardening, Some("4.2.8")),
        ("pod-pids-limit-set", Family::Hardening, Some("4.2.13")),
        ("seccomp-default-enabled", Family::Hardening, Some("4.2.14")),
        ("protect-kernel-defaults", Family::Hardening, None),
        ("kubelet-version-supported", Family::Hardening, None),
        ("kubelet-version-no-known-cves", Family::Hardening, None),
        ("running-config-matches-disk", Family::Hardening, None),
        ("kube-reserved-set", Family::Resources, None),
        ("system-reserved-set", Family::Resources, None),
        ("eviction-hard-set", Family::Resources, None),
        ("config-file-permissions", Family::Files, Some("4.1.9")),
        ("config-file-ownership", Family::Files, Some("4.1.10")),
        ("kubeconfig-permissions", Family::Files, Some("4.1.5")),
        ("kubeconfig-ownership", Family::Files, Some("4.1.6")),
        ("client-ca-permissions", Family::Files, Some("4.1.7")),
        ("client-ca-ownership", Family::Files, Some("4.1.8")),
        ("serving-key-permissions", Family::Files, None),
        ("service-file-permissions", Family::Files, Some("4.1.1")),
        ("service-file-ownership", Family::Files, Some("4.1.2")),
        ("pod-security-enforced", Family::PodSecurity, None),
        ("no-host-takeover-pods", Family::PodSecurity, None),
        ("kubelet-credential-node-scoped", Family::Rbac, None),
        ("node-authorizer-enabled", Family::Rbac, None),
        ("kubelet-identity-least-privilege", Family::Rbac, None),
        ("apiserver-audit-log-enabled", Family::Audit, None),
    ];

    #[test]
    fn catalogue_matches_the_contract() {
        let all = catalogue();
        let mut seen = std::collections::BTreeSet::new();
        for c in &all {
            assert!(is_kebab(c.id), "{} is not kebab-case", c.id);
            assert!(seen.insert(c.id), "duplicate id {}", c.id);
            assert!(
                !c.title.is_empty() && !c.expected.is_empty() && !c.remediation.is_empty(),
                "{}",
                c.id
            );
            let practices = [
                PRACTICE_NETWORK,
                PRACTICE_TLS,
                PRACTICE_AUTHN,
                PRACTICE_HARDENING,
                PRACTICE_RESOURCES,
                PRACTICE_POD_SECURITY,
                PRACTICE_RBAC,
                PRACTICE_AUDIT,
            ];
            assert!(practices.contains(&c.practice), "{}: {}", c.id, c.practice);
        }
        let ids: Vec<&str> = all.iter().map(|c| c.id).collect();
        let want: Vec<&str> = CONTRACT.iter().map(|c| c.0).collect();
        assert_eq!(ids, want);
        for (id, family, cis) in CONTRACT {
            let c = crate::evaluate::control(id).unwrap();
            assert_eq!(c.family, *family, "{id}");
            assert_eq!(c.cis, *cis, "{id}");
        }
        // CIS references are unique too.
        let mut cis: Vec<&str> = all.iter().filter_map(|c| c.cis).collect();
        let n = cis.len();
        cis.sort();
        cis.dedup();
        assert_eq!(cis.len(), n);
    }

    #[test]
    fn policy_can_name_controls() {
        let p = crate::evaluate::policy::Policy::from_yaml(
            "p.yaml",
            "controls:\n  hostname-override-unset:\n    enabled: false\n  tls-min-version:\n    severity: low\n",
        )
        .unwrap();
        assert!(!p.enabled("hostname-override-unset"));
        let snap = kubeadm();
        let results = evaluate(&snap, &p);
        assert!(results.iter().all(|r| r.id != "hostname-override-unset"));
        let tls = results.iter().find(|r| r.id == "tls-min-version").unwrap();
        assert_eq!(tls.severity, crate::evaluate::Severity::Low);
        assert_eq!(tls.expected, "≥ VersionTLS12");
    }

    /// Every outcome explains itself; a pass or a fail always shows its evidence.
    #[test]
    fn every_verdict_carries_evidence() {
        let mut hardened = kubeadm();
        {
            let k = kubelet_mut(&mut hardened);
            k.unit = Some("kubelet.service".into());
            k.version = Some("v1.31.4".into());
            k.files = vec![
                file(
                    FileRole::ConfigFile,
                    "/var/lib/kubelet/config.yaml",
                    0o600,
                    0,
                    0,
                ),
                file(
                    FileRole::Kubeconfig,
                    "/etc/kubernetes/kubelet.conf",
                    0o600,
                    0,
                    0,
                ),
                file(
                    FileRole::ClientCa,
                    "/etc/kubernetes/pki/ca.crt",
                    0o644,
                    0,
                    0,
                ),
                file(
                    FileRole::ServiceUnit,
                    "/usr/lib/systemd/system/kubelet.service",
                    0o644,
                    0,
                    0,
                ),
            ];
            k.client_ca = Some(Ok(cert("kubernetes", &[], true)));
            k.credential = Some(Ok(client_cert("system:node:node-1", &["system:nodes"])));
        }
        hardened.apiserver = Some(apiserver(&["--audit-log-path=/var/log/a.log"]));
        let snapshots = [
            hardened,
            snapshot_with(&[], None),
            snapshot_with(&[], Some("readOnlyPort: [\n")),
        ];
        let policy = crate::evaluate::policy::Policy::embedded();
        for snap in &snapshots {
            let results = evaluate(snap, &policy);
            assert_eq!(results.len(), CONTRACT.len());
            for r in &results {
                assert!(!r.reason.is_empty(), "{}: empty reason", r.id);
                assert!(!r.expected.is_empty(), "{}", r.id);
                if matches!(r.status, Status::Pass | Status::Fail) {
                    assert!(!r.observed.is_empty(), "{}: no observed value", r.id);
                    assert!(!r.source.is_empty(), "{}: no source", r.id);
                }
            }
        }
        // The flags-only kubelet fails the critical defaults.
        let flags_only = evaluate(&snapshots[1], &policy);
        for id in [
            "read-only-port-disabled",
            "anonymous-auth-disabled",
            "authorization-mode-webhook",
        ] {
            let r = flags_only.iter().find(|r| r.id == id).unwrap();
            assert_eq!(r.status, Status::Fail, "{id}");
        }
        // An unparseable config file makes file-decided settings unknown, never pass/fail.
        let broken = evaluate(&snapshots[2], &policy);
        let r = broken
            .iter()
            .find(|r| r.id == "read-only-port-disabled")
            .unwrap();
        assert_eq!(r.status, Status::Unknown);
        // Without a kubelet everything is unknown with the discovery reason.
        let mut none = kubeadm();
        none.kubelet = None;
        none.discovery = crate::model::snapshot::Discovery::NotFound {
            reason: "no kubelet process".into(),
        };
        // ... but the cluster controls, which need the API, not the kubelet: without API
        // access they are unknown for that reason.
        for r in evaluate(&none, &policy) {
            assert_eq!(r.status, Status::Unknown, "{}", r.id);
            let needs_api = crate::evaluate::catalogue()
                .iter()
                .any(|c| c.id == r.id && c.needs == crate::evaluate::Needs::Api);
            if needs_api {
                assert!(r.reason.starts_with("no API access"), "{}", r.reason);
            } else {
                assert_eq!(r.reason, "no kubelet process");
            }
        }
    }
}

#[cfg(test)]
mod live_tests {
    use crate::evaluate::testing::*;
    use crate::evaluate::{evaluate, ControlResult, Status};
    use crate::model::snapshot::{
        Listener, Listeners, Live, LiveError, LiveErrorKind, ReadOnlyAnswer, Snapshot,
    };

    const HARDENED: &str = "authentication:\n  anonymous:\n    enabled: false\nauthorization:\n  mode: Webhook\nreadOnlyPort: 0\ntlsMinVersion: VersionTLS12\ntlsCipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n";

    fn with(live: Live, config: &str) -> Snapshot {
        let mut s = snapshot_with(&["--config=/var/lib/kubelet/config.yaml"], Some(config));
        s.live = Some(live);
        s
    }

    fn get(s: &Snapshot, id: &str) -> ControlResult {
        evaluate(s, &crate::evaluate::policy::Policy::embedded())
            .into_iter()
            .find(|r| r.id == id)
            .unwrap()
    }

    fn closed() -> ReadOnlyAnswer {
        ReadOnlyAnswer {
            healthz: None,
            pods: None,
        }
    }

    fn timeout() -> LiveError {
        LiveError::new(LiveErrorKind::Timeout, "no answer within 2s")
    }

    #[test]
    fn anonymous_live_overrides_a_secure_file() {
        // The file says anonymous is off, but the kubelet answers 200: a lie on disk.
        let s = with(
            Live {
                anonymous: Some(Ok(200)),
                ..Live::default()
            },
            HARDENED,
        );
        let r = get(&s, "anonymous-auth-disabled");
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.source, "live");
        assert!(r.reason.contains("200"), "{}", r.reason);
        assert_eq!(get(&s, "authorization-mode-webhook").status, Status::Fail);
        assert_eq!(
            get(&s, "kubelet-api-rejects-anonymous").status,
            Status::Fail
        );
    }

    #[test]
    fn agreement_passes_and_shows_both() {
        let s = with(
            Live {
                anonymous: Some(Ok(401)),
                read_only: Some(Ok(closed())),
                ..Live::default()
            },
            HARDENED,
        );
        let r = get(&s, "anonymous-auth-disabled");
        assert_eq!(r.status, Status::Pass);
        assert_eq!(r.source, "config-file+live");
        assert!(
            r.observed.contains("false") && r.observed.contains("401"),
            "{}",
            r.observed
        );
        // 401 says nothing about the authorisation mode: the file decides.
        let a = get(&s, "authorization-mode-webhook");
        assert_eq!(a.status, Status::Pass);
        assert!(a.reason.contains("not visible"), "{}", a.reason);
        assert_eq!(get(&s, "read-only-port-disabled").status, Status::Pass);
        assert_eq!(
            get(&s, "kubelet-api-rejects-anonymous").status,
            Status::Pass
        );
    }

    #[test]
    fn webhook_403_confirms_authorisation_but_not_anonymous() {
        let s = with(
            Live {
                anonymous: Some(Ok(403)),
                ..Live::default()
            },
            HARDENED,
        );
        assert_eq!(get(&s, "authorization-mode-webhook").status, Status::Pass);
        assert_eq!(get(&s, "anonymous-auth-disabled").status, Status::Fail);
        assert_eq!(
            get(&s, "kubelet-api-rejects-anonymous").status,
            Status::Pass
        );
    }

    #[test]
    fn probe_failure_is_unknown_never_pass() {
        let s = with(
            Live {
                anonymous: Some(Err(timeout())),
                read_only: Some(Err(timeout())),
                ..Live::default()
            },
            HARDENED,
        );
        for id in [
            "anonymous-auth-disabled",
            "authorization-mode-webhook",
            "kubelet-api-rejects-anonymous",
            "read-only-port-disabled",
        ] {
            let r = get(&s, id);
            assert_eq!(r.status, Status::Unknown, "{id}: {r:?}");
            assert!(r.reason.contains("no answer"), "{id}: {}", r.reason);
        }
    }

    #[test]
    fn read_only_port_answer_fails_whatever_the_config_says() {
        let open = ReadOnlyAnswer {
            healthz: Some(200),
            pods: Some(200),
        };
        let s = with(
            Live {
                read_only: Some(Ok(open)),
                ..Live::default()
            },
            HARDENED,
        );
        let r = get(&s, "read-only-port-disabled");
        assert_eq!(r.status, Status::Fail);
        assert!(r.observed.contains("GET /healthz 200"), "{}", r.observed);
        // Config opens it but nothing listens: the files disagree with the node.
        let s = with(
            Live {
                read_only: Some(Ok(closed())),
                ..Live::default()
            },
            "readOnlyPort: 10255\n",
        );
        let r = get(&s, "read-only-port-disabled");
        assert_eq!(r.status, Status::Fail);
        assert!(r.reason.contains("disagree"), "{}", r.reason);
    }

    #[test]
    fn tls_live_evidence() {
        let versions = vec![
            ("VersionTLS10".to_string(), true),
            ("VersionTLS11".to_string(), false),
            ("VersionTLS12".to_string(), true),
            ("VersionTLS13".to_string(), true),
        ];
        let s = with(
            Live {
                tls_versions: Some(Ok(versions)),
                ..Live::default()
            },
            HARDENED,
        );
        let r = get(&s, "tls-min-version");
        assert_eq!(r.status, Status::Fail);
        assert!(r.observed.contains("VersionTLS10"), "{}", r.observed);
        // Unset in the config: the kubelet's default (TLS 1.2, any version), confirmed live.
        let good = vec![
            ("VersionTLS10".to_string(), false),
            ("VersionTLS12".to_string(), true),
        ];
        let s = with(
            Live {
                tls_versions: Some(Ok(good)),
                ..Live::default()
            },
            "readOnlyPort: 0\n",
        );
        let r = get(&s, "tls-min-version");
        assert_eq!(r.status, Status::Pass, "{r:?}");
        assert_eq!(r.source, "default+live");
        assert!(r.reason.contains("confirmed live"), "{}", r.reason);
        // ... and a running kubelet that accepts TLS 1.0 anyway fails on the scan.
        let old = vec![("VersionTLS10".to_string(), true)];
        let s = with(
            Live {
                tls_versions: Some(Ok(old)),
                ..Live::default()
            },
            "readOnlyPort: 0\n",
        );
        let r = get(&s, "tls-min-version");
        assert_eq!((r.status, r.source.as_str()), (Status::Fail, "live"));
        let suites = vec![
            ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string(), true),
            ("TLS_RSA_WITH_AES_128_CBC_SHA".to_string(), true),
        ];
        let s = with(
            Live {
                tls12_suites: Some(Ok(suites)),
                ..Live::default()
            },
            HARDENED,
        );
        let r = get(&s, "tls-strong-cipher-suites");
        assert_eq!(r.status, Status::Fail);
        assert!(
            r.observed.contains("TLS_RSA_WITH_AES_128_CBC_SHA"),
            "{}",
            r.observed
        );
    }

    #[test]
    fn healthz_uses_the_real_listener() {
        let listeners = Listeners {
            method: "fd".into(),
            sockets: vec![Listener {
                address: "0.0.0.0".parse().unwrap(),
                port: 10248,
            }],
        };
        let s = with(
            Live {
                listeners: Some(Ok(listeners)),
                ..Live::default()
            },
            HARDENED,
        );
        let r = get(&s, "healthz-bind-localhost");
        assert_eq!(r.status, Status::Fail, "{r:?}");
        assert!(r.observed.contains("0.0.0.0:10248"), "{}", r.observed);
    }

    #[test]
    fn without_probes_the_config_stands_and_the_live_only_control_is_unknown() {
        let s = snapshot_with(&["--config=/var/lib/kubelet/config.yaml"], Some(HARDENED));
        assert_eq!(get(&s, "anonymous-auth-disabled").status, Status::Pass);
        assert_eq!(
            get(&s, "kubelet-api-rejects-anonymous").status,
            Status::Unknown
        );
    }
}

#[cfg(test)]
mod live_ownership_tests {
    use crate::evaluate::testing::*;
    use crate::evaluate::{evaluate, Status};
    use crate::model::snapshot::{Listener, Listeners, Live, ReadOnlyAnswer};

    #[test]
    fn another_process_on_10255_is_not_the_kubelets_read_only_port() {
        let mut s = snapshot_with(
            &["--config=/var/lib/kubelet/config.yaml"],
            Some("readOnlyPort: 0\n"),
        );
        let kubelet_only = Listeners {
            method: "fd".into(),
            sockets: vec![Listener {
                address: "0.0.0.0".parse().unwrap(),
                port: 10250,
            }],
        };
        s.live = Some(Live {
            listeners: Some(Ok(kubelet_only)),
            read_only_target: Some("127.0.0.1:10255".into()),
            read_only: Some(Ok(ReadOnlyAnswer {
                healthz: Some(200),
                pods: None,
            })),
            ..Live::default()
        });
        let r = evaluate(&s, &crate::evaluate::policy::Policy::embedded())
            .into_iter()
            .find(|r| r.id == "read-only-port-disabled")
            .unwrap();
        assert_eq!(r.status, Status::Pass, "{r:?}");
        assert!(r.reason.contains("another process"), "{}", r.reason);
        // The same answer when the kubelet does own a listener there: fail.
        if let Some(l) = s.live.as_mut() {
            l.listeners = Some(Ok(Listeners {
                method: "fd".into(),
                sockets: vec![Listener {
                    address: "0.0.0.0".parse().unwrap(),
                    port: 10255,
                }],
            }));
        }
        let r = evaluate(&s, &crate::evaluate::policy::Policy::embedded())
            .into_iter()
            .find(|r| r.id == "read-only-port-disabled")
            .unwrap();
        assert_eq!(r.status, Status::Fail, "{r:?}");
    }
}
