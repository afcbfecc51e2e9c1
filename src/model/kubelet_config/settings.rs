//! The KubeletConfiguration fields the controls use: their config path, their flag,
//! their type and their defaults in both of the kubelet's modes.
//!
//! Five defaults differ between "a `--config` file is used" (v1beta1 defaulting) and
//! "flags only": the four of `applyLegacyDefaults` in cmd/kubelet/app/options/options.go
//! (anonymous auth, webhook authentication, authorization mode, the read-only port) and
//! `evictionHard`, which only `loadConfigFile` fills in (cmd/kubelet/app/server.go).

use serde_json::{json, Value};

/// How a setting's value is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// A JSON boolean (e.g. `authentication.anonymous.enabled`).
    Bool,
    /// A JSON integer (e.g. `eventBurst`); a flag's text must parse as one.
    Int,
    /// A JSON string (e.g. `authorization.mode`, `address`).
    String,
    /// A Go duration string (`4h0m0s`); a zero in the `--config` file means the default.
    Duration,
    /// A list of strings (e.g. `tlsCipherSuites`); a flag gives it comma-separated.
    StringList,
    /// A string-to-string map (e.g. `evictionHard`); a flag gives it as `k=v` or `k<v`
    /// pairs.
    StringMap,
    /// A map of names to booleans: `featureGates`, where the files and the flag are
    /// combined gate by gate.
    BoolMap,
}

/// A known KubeletConfiguration field.
#[derive(Debug)]
pub struct SettingDef {
    /// Stable key used by controls (also the JSON path, dot-separated).
    pub key: &'static str,
    /// Path of the field in the KubeletConfiguration document.
    pub path: &'static [&'static str],
    /// The command-line flag that sets it, if any.
    pub flag: Option<&'static str>,
    /// How the value is typed: how a flag's text becomes JSON, and whether a zero in a
    /// file means the default.
    pub kind: SettingKind,
    /// Default when a `--config` file is used (v1beta1 defaulting).
    pub default_config: fn() -> Value,
    /// Default in flags-only mode (and with `--config-dir` but no `--config`).
    pub default_flags: fn() -> Value,
}

fn f() -> Value {
    json!(false)
}
fn t() -> Value {
    json!(true)
}
fn empty_str() -> Value {
    json!("")
}
fn empty_list() -> Value {
    json!([])
}
fn empty_map() -> Value {
    json!({})
}

/// `eviction.DefaultEvictionHard` (pkg/kubelet/eviction/defaults_linux.go), applied by
/// `loadConfigFile` (cmd/kubelet/app/server.go) when the file has no `evictionHard`.
pub fn default_eviction_hard() -> Value {
    json!({
        "memory.available": "100Mi",
        "nodefs.available": "10%",
        "nodefs.inodesFree": "5%",
        "imagefs.available": "15%",
        "imagefs.inodesFree": "5%"
    })
}

macro_rules! setting {
    ($key:literal, [$($p:literal),+], $flag:expr, $kind:ident, $dc:expr, $df:expr) => {
        SettingDef {
            key: $key,
            path: &[$($p),+],
            flag: $flag,
            kind: SettingKind::$kind,
            default_config: $dc,
            default_flags: $df,
        }
    };
}

/// Every setting the controls read. Defaults: pkg/kubelet/apis/config/v1beta1/defaults.go
/// `SetDefaults_KubeletConfiguration` and cmd/kubelet/app/options/options.go
/// `applyLegacyDefaults`.
pub static SETTINGS: &[SettingDef] = &[
    setting!(
        "authentication.anonymous.enabled",
        ["authentication", "anonymous", "enabled"],
        Some("anonymous-auth"),
        Bool,
        f,
        t
    ),
    setting!(
        "authentication.webhook.enabled",
        ["authentication", "webhook", "enabled"],
        Some("authentication-token-webhook"),
        Bool,
        t,
        f
    ),
    setting!(
        "authentication.webhook.cacheTTL",
        ["authentication", "webhook", "cacheTTL"],
        Some("authentication-token-webhook-cache-ttl"),
        Duration,
        || json!("2m0s"),
        || json!("2m0s")
    ),
    setting!(
        "authentication.x509.clientCAFile",
        ["authentication", "x509", "clientCAFile"],
        Some("client-ca-file"),
        String,
        empty_str,
        empty_str
    ),
    setting!(
        "authorization.mode",
        ["authorization", "mode"],
        Some("authorization-mode"),
        String,
        || json!("Webhook"),
        || json!("AlwaysAllow")
    ),
    setting!(
        "authorization.webhook.cacheAuthorizedTTL",
        ["authorization", "webhook", "cacheAuthorizedTTL"],
        Some("authorization-webhook-cache-authorized-ttl"),
        Duration,
        || json!("5m0s"),
        || json!("5m0s")
    ),
    setting!(
        "authorization.webhook.cacheUnauthorizedTTL",
        ["authorization", "webhook", "cacheUnauthorizedTTL"],
        Some("authorization-webhook-cache-unauthorized-ttl"),
        Duration,
        || json!("30s"),
        || json!("30s")
    ),
    setting!(
        "readOnlyPort",
        ["readOnlyPort"],
        Some("read-only-port"),
        Int,
        || json!(0),
        || json!(10255)
    ),
    setting!(
        "port",
        ["port"],
        Some("port"),
        Int,
        || json!(10250),
        || json!(10250)
    ),
    setting!(
        "address",
        ["address"],
        Some("address"),
        String,
        || json!("0.0.0.0"),
        || json!("0.0.0.0")
    ),
    setting!(
        "healthzPort",
        ["healthzPort"],
        Some("healthz-port"),
        Int,
        || json!(10248),
        || json!(10248)
    ),
    setting!(
        "healthzBindAddress",
        ["healthzBindAddress"],
        Some("healthz-bind-address"),
        String,
        || json!("127.0.0.1"),
        || json!("127.0.0.1")
    ),
    setting!(
        "streamingConnectionIdleTimeout",
        ["streamingConnectionIdleTimeout"],
        Some("streaming-connection-idle-timeout"),
        Duration,
        || json!("4h0m0s"),
        || json!("4h0m0s")
    ),
    setting!(
        "protectKernelDefaults",
        ["protectKernelDefaults"],
        Some("protect-kernel-defaults"),
        Bool,
        f,
        f
    ),
    setting!(
        "makeIPTablesUtilChains",
        ["makeIPTablesUtilChains"],
        Some("make-iptables-util-chains"),
        Bool,
        t,
        t
    ),
    setting!(
        "eventRecordQPS",
        ["eventRecordQPS"],
        Some("event-qps"),
        Int,
        || json!(50),
        || json!(50)
    ),
    setting!(
        "eventBurst",
        ["eventBurst"],
        Some("event-burst"),
        Int,
        || json!(100),
        || json!(100)
    ),
    setting!(
        "rotateCertificates",
        ["rotateCertificates"],
        Some("rotate-certificates"),
        Bool,
        f,
        f
    ),
    setting!(
        "serverTLSBootstrap",
        ["serverTLSBootstrap"],
        Some("rotate-server-certificates"),
        Bool,
        f,
        f
    ),
    setting!(
        "tlsMinVersion",
        ["tlsMinVersion"],
        Some("tls-min-version"),
        String,
        empty_str,
        empty_str
    ),
    setting!(
        "tlsCipherSuites",
        ["tlsCipherSuites"],
        Some("tls-cipher-suites"),
        StringList,
        empty_list,
        empty_list
    ),
    setting!(
        "tlsCertFile",
        ["tlsCertFile"],
        Some("tls-cert-file"),
        String,
        empty_str,
        empty_str
    ),
    setting!(
        "tlsPrivateKeyFile",
        ["tlsPrivateKeyFile"],
        Some("tls-private-key-file"),
        String,
        empty_str,
        empty_str
    ),
    setting!(
        "podPidsLimit",
        ["podPidsLimit"],
        Some("pod-max-pids"),
        Int,
        || json!(-1),
        || json!(-1)
    ),
    setting!(
        "seccompDefault",
        ["seccompDefault"],
        Some("seccomp-default"),
        Bool,
        f,
        f
    ),
    setting!(
        "kubeReserved",
        ["kubeReserved"],
        Some("kube-reserved"),
        StringMap,
        empty_map,
        empty_map
    ),
    setting!(
        "systemReserved",
        ["systemReserved"],
        Some("system-reserved"),
        StringMap,
        empty_map,
        empty_map
    ),
    setting!(
        "evictionHard",
        ["evictionHard"],
        Some("eviction-hard"),
        StringMap,
        default_eviction_hard,
        // Flags only: none. `loadConfigFile` fills in eviction.DefaultEvictionHard only
        // for a --config file (kubernetes PR #110263, 1.25); the flags-only object keeps a
        // nil map, and /configz of a real kubelet shows none.
        empty_map
    ),
    setting!(
        "featureGates",
        ["featureGates"],
        Some("feature-gates"),
        BoolMap,
        empty_map,
        empty_map
    ),
    setting!(
        "enableDebuggingHandlers",
        ["enableDebuggingHandlers"],
        Some("enable-debugging-handlers"),
        Bool,
        t,
        t
    ),
    setting!(
        "enableServer",
        ["enableServer"],
        Some("enable-server"),
        Bool,
        t,
        t
    ),
];

/// Look up a setting by key.
pub fn setting(key: &str) -> Option<&'static SettingDef> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Whether a flag is one of the KubeletConfiguration-backed flags we model (these all
/// take a value unless boolean).
pub fn flag_is_config_backed(flag: &str) -> bool {
    SETTINGS.iter().any(|s| s.flag == Some(flag))
}

/// Parse a Go duration string (`4h0m0s`, `2m`, `30s`, `1.5h`, `0`) into seconds.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if s == "0" {
        return Some(0.0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * mult;
    }
    Some(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("4h0m0s"), Some(14400.0));
        assert_eq!(parse_go_duration("2m"), Some(120.0));
        assert_eq!(parse_go_duration("0s"), Some(0.0));
        assert_eq!(parse_go_duration("0"), Some(0.0));
        assert_eq!(parse_go_duration("1.5h"), Some(5400.0));
        assert_eq!(parse_go_duration("300ms"), Some(0.3));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("abc"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    /// The four `applyLegacyDefaults` values, and evictionHard, which only
    /// `loadConfigFile` defaults (a flags-only kubelet has none; recorded from real
    /// kubelets in tests/kubelet-truth, scenario flags-only).
    #[test]
    fn only_five_defaults_differ() {
        let differing: Vec<&str> = SETTINGS
            .iter()
            .filter(|s| (s.default_config)() != (s.default_flags)())
            .map(|s| s.key)
            .collect();
        assert_eq!(
            differing,
            vec![
                "authentication.anonymous.enabled",
                "authentication.webhook.enabled",
                "authorization.mode",
                "readOnlyPort",
                "evictionHard"
            ]
        );
    }
}
