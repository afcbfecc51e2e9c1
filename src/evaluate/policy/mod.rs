//! The policy file (`--policy`, YAML): disable controls, change severities, set expected
//! values. The defaults are embedded (`policy/default.yaml`); a user policy is layered
//! on top of them. An invalid policy is a startup error that names the line.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::evaluate::cve_feed::CveFeedLoad;
use crate::evaluate::{self, Severity};
use crate::model::file::HostError;
use crate::model::version::Minor;

/// The embedded default policy (also shipped as a documented example).
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../../policy/default.yaml");

/// A policy that failed to load.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy does not parse or is not valid (unknown control id, bad value), and no
    /// line can be named.
    #[error("policy {path}: {message}")]
    Invalid {
        /// The policy file (`--policy`), or `embedded default`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Like `Invalid`, at a known line of the file.
    #[error("policy {path}: line {line}: {message}")]
    AtLine {
        /// The policy file (`--policy`), or `embedded default`.
        path: String,
        /// 1-based line of the fault.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The `--policy` file could not be read.
    #[error("policy {path}: {error}")]
    Read {
        /// The policy file, as given.
        path: String,
        /// The read error (in the message, not a `source()`: see `crate::cli::CliError`).
        error: std::io::Error,
    },
}

/// A policy boolean: a plain `true` or `false` (YAML 1.2; with the parser's
/// `strict_booleans`, `yes`/`on` are strings), never a number or a quoted string, which
/// serde-saphyr would otherwise coerce for a `bool` target. `null` is "not set".
fn strict_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a boolean, `true` or `false`")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// Cap on the `--policy` file (the embedded default is a few KiB).
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// Per-control overrides.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPolicy {
    /// `false` removes the control from evaluation and metrics.
    #[serde(default, deserialize_with = "strict_bool")]
    pub enabled: Option<bool>,
    /// Replaces the catalogue severity.
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// Expected values used by controls.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Expectations {
    /// Addresses or CIDRs the kubelet's serving `address` may be bound to
    /// (`api-bind-address-restricted`). Empty: any non-wildcard address passes.
    #[serde(default)]
    pub allowed_bind_addresses: Vec<String>,
    /// Minimum TLS version (`VersionTLS12` or `VersionTLS13`).
    pub tls_min_version: String,
    /// Allowed cipher suites (CIS 1.12 4.2.12 list by default).
    pub tls_cipher_suites: Vec<String>,
    /// Minimum effective event QPS (`event-qps-limited`).
    pub event_qps_min: i64,
    /// Maximum effective event QPS, if any.
    #[serde(default)]
    pub event_qps_max: Option<i64>,
    /// Most permissive mode for the kubelet config file, drop-ins, kubeconfig, serving key
    /// (CIS 4.1.5/4.1.9: 600).
    pub config_file_max_mode: String,
    /// Most permissive mode for the client CA file (CIS 4.1.7: 644).
    pub client_ca_max_mode: String,
    /// Most permissive mode for systemd unit files (CIS 4.1.1: 600).
    pub service_file_max_mode: String,
    /// Maximum allowed `podPidsLimit` (`pod-pids-limit-set`); none = any positive value.
    #[serde(default)]
    pub pod_pids_limit_max: Option<i64>,
    /// serving-cert-valid / client-cert-valid fail when fewer days than this are left.
    pub cert_expiry_warning_days: i64,
    /// Minors ("1.33") kubelet-version-supported accepts instead of the release table; empty = table.
    #[serde(default)]
    pub supported_kubelet_minors: Vec<String>,
    /// The controls that need the Kubernetes API (`pod-security-enforced`,
    /// `no-host-takeover-pods`); `false` makes them `not_applicable`.
    pub cluster_checks: bool,
    /// `pod-security-enforced`: the weakest enforced Pod Security level that passes
    /// (`baseline` or `restricted`).
    pub pod_security_required_level: String,
    /// `pod-security-enforced`: namespaces not held to the level.
    pub pod_security_exempt_namespaces: Vec<String>,
    /// `no-host-takeover-pods`: pods allowed host access (this agent, by default).
    pub host_takeover_allowed_pods: Vec<AllowedPod>,
}

/// The policy's file-mode limits (`expected.*_max_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeLimit {
    /// `config_file_max_mode`: the config file, drop-ins, kubeconfig, serving key.
    ConfigFile,
    /// `client_ca_max_mode`: the client CA file.
    ClientCa,
    /// `service_file_max_mode`: the systemd unit files.
    ServiceFile,
}

impl ModeLimit {
    /// Every limit (each is checked when a policy loads).
    pub const ALL: [ModeLimit; 3] = [
        ModeLimit::ConfigFile,
        ModeLimit::ClientCa,
        ModeLimit::ServiceFile,
    ];

    /// The policy key (`config_file_max_mode`).
    pub fn key(self) -> &'static str {
        match self {
            ModeLimit::ConfigFile => "config_file_max_mode",
            ModeLimit::ClientCa => "client_ca_max_mode",
            ModeLimit::ServiceFile => "service_file_max_mode",
        }
    }

    /// The limit as the policy spells it (`"600"`).
    fn text(self, x: &Expectations) -> &str {
        match self {
            ModeLimit::ConfigFile => &x.config_file_max_mode,
            ModeLimit::ClientCa => &x.client_ca_max_mode,
            ModeLimit::ServiceFile => &x.service_file_max_mode,
        }
    }
}

/// Days before `notAfter` at which a certificate stops passing, when the policy's value is
/// unusable.
pub const DEFAULT_EXPIRY_WARNING_DAYS: i64 = 14;

/// A pod allowed host access: its namespace and the start of its name (empty: every pod
/// of the namespace).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedPod {
    /// The pod's namespace (exact match).
    pub namespace: String,
    /// The start of the pod's name; empty allows every pod of the namespace.
    #[serde(default)]
    pub name_prefix: String,
}

impl AllowedPod {
    /// Whether the pod `namespace`/`name` is allowed.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && name.starts_with(&self.name_prefix)
    }
}

/// The whole policy file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Per control id: enable or disable it, override its severity (optional).
    #[serde(default)]
    pub controls: BTreeMap<String, ControlPolicy>,
    /// The expectations the controls check against (every key required here).
    pub expected: Expectations,
}

/// A partial policy as a user writes it: every section optional.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPolicyFile {
    #[serde(default)]
    controls: BTreeMap<String, ControlPolicy>,
    #[serde(default)]
    expected: Option<UserExpectations>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct UserExpectations {
    allowed_bind_addresses: Option<Vec<String>>,
    tls_min_version: Option<String>,
    tls_cipher_suites: Option<Vec<String>>,
    event_qps_min: Option<i64>,
    event_qps_max: Option<i64>,
    config_file_max_mode: Option<String>,
    client_ca_max_mode: Option<String>,
    service_file_max_mode: Option<String>,
    pod_pids_limit_max: Option<i64>,
    cert_expiry_warning_days: Option<i64>,
    supported_kubelet_minors: Option<Vec<String>>,
    #[serde(default, deserialize_with = "strict_bool")]
    cluster_checks: Option<bool>,
    pod_security_required_level: Option<String>,
    pod_security_exempt_namespaces: Option<Vec<String>>,
    host_takeover_allowed_pods: Option<Vec<AllowedPod>>,
}

/// The effective policy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Policy {
    /// Per control id: enabled or not, severity override (the embedded defaults with the
    /// user file's entries over them).
    pub controls: BTreeMap<String, ControlPolicy>,
    /// The expectations, the user file's keys over the embedded defaults'.
    pub expected: Expectations,
    /// Where it came from (`embedded default` or the file path).
    pub origin: String,
    /// `--cve-feed`: the embedded CVE table merged with the feed file, or why the file is
    /// unusable (`kubelet-version-no-known-cves` is then `unknown`). `None`: the embedded
    /// table alone. Not part of the policy file.
    #[serde(skip)]
    pub cve_feed: Option<Arc<CveFeedLoad>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::embedded()
    }
}

/// Find the first line on which `needle` appears (for semantic errors that serde cannot place).
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// A policy YAML error: the line, the path of the key (`controls.<id>.enabled`) when
/// serde knows it, and serde-saphyr's first message line (no rendered snippet: the
/// options turn it off). The policy holds no secret, so the message may quote a value.
fn yaml_error(path: &str, text: &str, e: &serde_saphyr::Error, key: Option<String>) -> PolicyError {
    let e = e.without_snippet();
    let raw = e.to_string();
    let first = raw.lines().next().unwrap_or("").trim().to_string();
    // serde-saphyr's messages end with "at line N column M"; the line is reported apart.
    let first = match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first,
    };
    // A bomb's budget error reads the same as for every other YAML file.
    let fault = crate::model::parse::ParseFault::from_yaml(e);
    let first = match fault.kind {
        crate::model::parse::FaultKind::TooComplex(_) => fault.kind.to_string(),
        _ => first,
    };
    let message = match (&key, e) {
        (Some(k), serde_saphyr::Error::InvalidBooleanStrict { .. }) => {
            format!("{k}: expected a boolean, `true` or `false` (YAML 1.1 spellings such as yes/no/on/off are not booleans)")
        }
        (Some(k), _) => format!("{k}: {first}"),
        (None, _) => first,
    };
    let line = e
        .location()
        .map(|l| usize::try_from(l.line()).unwrap_or(usize::MAX))
        .filter(|l| *l > 0)
        .or_else(|| {
            // Unknown field errors name the field: find it in the text.
            raw.split('`').nth(1).and_then(|field| line_of(text, field))
        });
    match line {
        Some(line) => PolicyError::AtLine {
            path: path.to_string(),
            line,
            message,
        },
        None => PolicyError::Invalid {
            path: path.to_string(),
            message,
        },
    }
}

fn parse_mode(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
}

const TLS_VERSIONS: &[&str] = &[
    "VersionTLS10",
    "VersionTLS11",
    "VersionTLS12",
    "VersionTLS13",
];

impl Policy {
    /// The embedded default policy.
    pub fn embedded() -> Policy {
        // The embedded file is checked by a unit test; a failure here is a build defect.
        #[allow(clippy::expect_used)] // an invariant: the embedded file is parsed by a unit test
        let file: PolicyFile = crate::model::parse::yaml_unredacted(DEFAULT_POLICY_YAML)
            .expect("embedded default policy is valid (tested)");
        Policy {
            controls: file.controls,
            expected: file.expected,
            origin: "embedded default".to_string(),
            cve_feed: None,
        }
    }

    /// This policy judging CVEs by `loaded` (the `--cve-feed` merge, or its error).
    pub fn with_cve_feed(mut self, loaded: CveFeedLoad) -> Policy {
        self.cve_feed = Some(Arc::new(loaded));
        self
    }

    /// A user policy file, as the caller read it (at most [`MAX_POLICY_BYTES`], a regular
    /// file: `io::host::read_operator_file`), layered on the defaults. The read's failure
    /// and text that is not UTF-8 are both `PolicyError::Read`.
    pub fn load(path: &str, read: Result<Vec<u8>, HostError>) -> Result<Policy, PolicyError> {
        let read_err = |error| PolicyError::Read {
            path: path.to_string(),
            error,
        };
        let bytes = read.map_err(|e| read_err(e.into_io_error()))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            read_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not valid UTF-8",
            ))
        })?;
        Policy::from_yaml(path, &text)
    }

    /// Parse a user policy text (layered on the defaults) and validate it.
    pub fn from_yaml(path: &str, text: &str) -> Result<Policy, PolicyError> {
        let user: UserPolicyFile = if text.trim().is_empty() {
            UserPolicyFile::default()
        } else {
            // YAML 1.2 booleans only (`enabled: yes` is refused, naming the key).
            crate::model::parse::yaml_strict(text)
                .map_err(|(e, key)| yaml_error(path, text, &e, key))?
        };
        let mut policy = Policy::embedded();
        policy.origin = path.to_string();
        for (id, c) in user.controls {
            if evaluate::control(&id).is_none() {
                let msg = format!("unknown control id {id:?}");
                return Err(match line_of(text, &id) {
                    Some(line) => PolicyError::AtLine {
                        path: path.to_string(),
                        line,
                        message: msg,
                    },
                    None => PolicyError::Invalid {
                        path: path.to_string(),
                        message: msg,
                    },
                });
            }
            policy.controls.insert(id, c);
        }
        if let Some(e) = user.expected {
            let x = &mut policy.expected;
            if let Some(v) = e.allowed_bind_addresses {
                x.allowed_bind_addresses = v;
            }
            if let Some(v) = e.tls_min_version {
                x.tls_min_version = v;
            }
            if let Some(v) = e.tls_cipher_suites {
                x.tls_cipher_suites = v;
            }
            if let Some(v) = e.event_qps_min {
                x.event_qps_min = v;
            }
            if let Some(v) = e.event_qps_max {
                x.event_qps_max = Some(v);
            }
            if let Some(v) = e.config_file_max_mode {
                x.config_file_max_mode = v;
            }
            if let Some(v) = e.client_ca_max_mode {
                x.client_ca_max_mode = v;
            }
            if let Some(v) = e.service_file_max_mode {
                x.service_file_max_mode = v;
            }
            if let Some(v) = e.pod_pids_limit_max {
                x.pod_pids_limit_max = Some(v);
            }
            if let Some(v) = e.cert_expiry_warning_days {
                x.cert_expiry_warning_days = v;
            }
            if let Some(v) = e.supported_kubelet_minors {
                x.supported_kubelet_minors = v;
            }
            if let Some(v) = e.cluster_checks {
                x.cluster_checks = v;
            }
            if let Some(v) = e.pod_security_required_level {
                x.pod_security_required_level = v;
            }
            if let Some(v) = e.pod_security_exempt_namespaces {
                x.pod_security_exempt_namespaces = v;
            }
            if let Some(v) = e.host_takeover_allowed_pods {
                x.host_takeover_allowed_pods = v;
            }
        }
        policy.validate(text)?;
        Ok(policy)
    }

    fn validate(&self, text: &str) -> Result<(), PolicyError> {
        let err = |needle: &str, message: String| match line_of(text, needle) {
            Some(line) => PolicyError::AtLine {
                path: self.origin.clone(),
                line,
                message,
            },
            None => PolicyError::Invalid {
                path: self.origin.clone(),
                message,
            },
        };
        let x = &self.expected;
        if !TLS_VERSIONS.contains(&x.tls_min_version.as_str()) {
            return Err(err(
                "tls_min_version",
                format!(
                    "tls_min_version {:?} is not one of {}",
                    x.tls_min_version,
                    TLS_VERSIONS.join(", ")
                ),
            ));
        }
        for limit in ModeLimit::ALL {
            let (name, v) = (limit.key(), limit.text(x));
            if parse_mode(v).is_none() {
                return Err(err(name, format!("{name} {v:?} is not an octal file mode")));
            }
        }
        for a in &x.allowed_bind_addresses {
            if crate::model::net::parse_cidr(a).is_none() {
                return Err(err(
                    a,
                    format!("allowed_bind_addresses: {a:?} is not an IP address or CIDR"),
                ));
            }
        }
        if x.cert_expiry_warning_days < 0 {
            return Err(err(
                "cert_expiry_warning_days",
                format!(
                    "cert_expiry_warning_days {} is negative",
                    x.cert_expiry_warning_days
                ),
            ));
        }
        for m in &x.supported_kubelet_minors {
            if Minor::parse(m).is_none() {
                return Err(err(
                    m,
                    format!(
                        "supported_kubelet_minors: {m:?} is not a `major.minor` such as \"1.33\""
                    ),
                ));
            }
        }
        if !["baseline", "restricted"].contains(&x.pod_security_required_level.as_str()) {
            return Err(err(
                "pod_security_required_level",
                format!(
                    "pod_security_required_level {:?} is not baseline or restricted",
                    x.pod_security_required_level
                ),
            ));
        }
        for n in &x.pod_security_exempt_namespaces {
            if n.trim().is_empty() {
                return Err(err(
                    "pod_security_exempt_namespaces",
                    "pod_security_exempt_namespaces: an empty namespace name".to_string(),
                ));
            }
        }
        for a in &x.host_takeover_allowed_pods {
            if a.namespace.trim().is_empty() {
                return Err(err(
                    "host_takeover_allowed_pods",
                    "host_takeover_allowed_pods: an entry without a namespace".to_string(),
                ));
            }
        }
        if let Some(max) = x.event_qps_max {
            if max < x.event_qps_min {
                return Err(err(
                    "event_qps_max",
                    format!(
                        "event_qps_max {max} is below event_qps_min {}",
                        x.event_qps_min
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether a control is evaluated.
    pub fn enabled(&self, id: &str) -> bool {
        self.controls
            .get(id)
            .and_then(|c| c.enabled)
            .unwrap_or(true)
    }

    /// Severity override for a control.
    pub fn severity(&self, id: &str) -> Option<Severity> {
        self.controls.get(id).and_then(|c| c.severity)
    }

    /// A mode limit from the expectations, as bits (validated at load).
    pub fn mode_limit(&self, limit: ModeLimit) -> u32 {
        parse_mode(limit.text(&self.expected)).unwrap_or(0o600)
    }

    /// `expected.cert_expiry_warning_days` (a negative value, which validation rejects,
    /// falls back to [`DEFAULT_EXPIRY_WARNING_DAYS`]).
    pub fn cert_expiry_warning_days(&self) -> i64 {
        Some(self.expected.cert_expiry_warning_days)
            .filter(|d| *d >= 0)
            .unwrap_or(DEFAULT_EXPIRY_WARNING_DAYS)
    }

    /// `expected.supported_kubelet_minors` (`["1.31", "1.32"]`), replacing the release
    /// table's verdict when non-empty; `None` when empty. An entry that is not a
    /// `major.minor`, which validation rejects, is an error.
    pub fn supported_kubelet_minors(&self) -> Result<Option<Vec<Minor>>, String> {
        let list = &self.expected.supported_kubelet_minors;
        if list.is_empty() {
            return Ok(None);
        }
        list.iter()
            .map(|m| {
                Minor::parse(m).ok_or_else(|| {
                    format!("policy supported_kubelet_minors: {m:?} is not a `major.minor`")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests;
