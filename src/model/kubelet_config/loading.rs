//! The kubelet's configuration-loading rules that change between kubelet versions, as
//! pure functions. `effective/` applies them; `docs/kubelet-config-loading.md` explains
//! them; `tests/kubelet_truth.rs` proves them against recordings of real kubelets.
//!
//! Every rule names the kubelet minors it holds for and the upstream code it mirrors
//! (kubernetes/kubernetes, `cmd/kubelet/app/server.go` unless said otherwise).

use serde_json::{Map, Value};

use super::settings::{parse_go_duration, SettingDef, SettingKind};

/// The oldest kubelet minor with `--config-dir` (alpha in 1.28, KEP-3983).
pub const FIRST_CONFIG_DIR_MINOR: u32 = 28;
/// The newest kubelet minor these rules were checked against.
pub const NEWEST_KNOWN_MINOR: u32 = 38;

/// The loading rules of one kubelet minor (1.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The kubelet's minor version, the `x` of 1.x.
    pub minor: u32,
}

/// How the drop-ins are merged into the base configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropinMerge {
    /// 1.28–1.31: `mergeKubeletConfigurations` marshals the *internal* configuration
    /// (Go field names, no `omitempty`), applies each drop-in as a JSON merge patch and
    /// unmarshals the result back into the same internal object with `encoding/json`; no
    /// defaulting afterwards. A drop-in's zero value stays zero; its `null` cannot remove
    /// a base value (the base's key is spelled differently: `ReadOnlyPort`).
    Internal,
    /// 1.32+: the base is converted to v1beta1 and marshalled (`json` tags), merged, decoded
    /// into a *fresh* v1beta1 object and defaulted again with
    /// `SetDefaults_KubeletConfiguration` (kubernetes PR #127421), so a zero or empty value
    /// of a defaulted field in a drop-in gets the default.
    V1beta1Defaulted,
}

impl Rules {
    /// The rules of kubelet 1.`minor`.
    pub fn new(minor: u32) -> Rules {
        Rules { minor }
    }

    /// How drop-ins are merged (see [`DropinMerge`]).
    pub fn dropin_merge(self) -> DropinMerge {
        if self.minor >= 32 {
            DropinMerge::V1beta1Defaulted
        } else {
            DropinMerge::Internal
        }
    }

    /// 1.28–1.29: `--config-dir` is refused unless the environment variable
    /// `KUBELET_CONFIG_DROPIN_DIR_ALPHA` is set (server.go `NewKubeletCommand`; removed in
    /// 1.30 when the feature went beta).
    pub fn config_dir_needs_alpha_env(self) -> bool {
        self.minor <= 29
    }

    /// 1.33+: `loadConfigFile` keeps the default eviction signals a partial `evictionHard`
    /// does not set when the `--config` file says `mergeDefaultEvictionSettings: true`
    /// (kubernetes PR #127577). Before 1.33 the field is unknown: strict decoding fails and
    /// lenient decoding ignores it.
    pub fn merge_default_eviction_settings(self) -> bool {
        self.minor >= 33
    }

    /// The minors these rules stand for, as text (`1.32+`, `1.28–1.31`).
    pub fn describe_range(minors: &[u32]) -> String {
        match (minors.first(), minors.last()) {
            (Some(a), Some(b)) if *b >= NEWEST_KNOWN_MINOR => format!("1.{a}+"),
            (Some(a), Some(b)) if a == b => format!("1.{a}"),
            (Some(a), Some(b)) => format!("1.{a}–1.{b}"),
            _ => String::new(),
        }
    }
}

/// Every minor whose loading rules are modelled: what "the version is unknown" ranges over.
pub fn modelled_minors() -> impl Iterator<Item = u32> {
    FIRST_CONFIG_DIR_MINOR..=NEWEST_KNOWN_MINOR
}

/// The modelled minors grouped by the rules that decide a setting's value (the drop-in
/// merge and the eviction merge), each group with one representative: an unknown version
/// is resolved once per group, not once per minor.
pub fn rule_classes() -> Vec<(Vec<u32>, Rules)> {
    let mut out: Vec<(Vec<u32>, Rules)> = Vec::new();
    for minor in modelled_minors() {
        let r = Rules::new(minor);
        let key = |x: Rules| (x.dropin_merge(), x.merge_default_eviction_settings());
        match out.iter_mut().find(|(_, rep)| key(*rep) == key(r)) {
            Some((minors, _)) => minors.push(minor),
            None => out.push((vec![minor], r)),
        }
    }
    out
}

/// How `SetDefaults_KubeletConfiguration` (pkg/kubelet/apis/config/v1beta1/defaults.go)
/// treats a field's Go zero value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroRule {
    /// A pointer field (an explicit `0`/`false` is kept; only an absent value gets the
    /// default), or a field whose default is its zero value (`readOnlyPort`, the TLS
    /// settings, the maps).
    Kept,
    /// A value field whose zero means "unset": `address: ""` → `0.0.0.0`, `port: 0` →
    /// 10250, `healthzBindAddress: ""` → `127.0.0.1`, `authorization.mode: ""` →
    /// `Webhook`, `eventBurst: 0` → 100, and every `metav1.Duration` (`0s` → default).
    Defaulted,
    /// `podPidsLimit`: nil *or negative* becomes -1.
    PidsLimit,
}

/// The zero rule of one setting.
pub fn zero_rule(def: &SettingDef) -> ZeroRule {
    match def.key {
        "podPidsLimit" => ZeroRule::PidsLimit,
        "port" | "address" | "healthzBindAddress" | "authorization.mode" | "eventBurst" => {
            ZeroRule::Defaulted
        }
        _ if def.kind == SettingKind::Duration => ZeroRule::Defaulted,
        _ => ZeroRule::Kept,
    }
}

/// Whether `v` is the Go zero value of a setting of this kind.
pub fn is_go_zero(kind: SettingKind, v: &Value) -> bool {
    match kind {
        SettingKind::Bool => v == &Value::Bool(false),
        SettingKind::Int => v.as_i64() == Some(0),
        SettingKind::String => v.as_str() == Some(""),
        SettingKind::Duration => v.as_str().and_then(parse_go_duration) == Some(0.0),
        SettingKind::StringList => v.as_array().is_some_and(Vec::is_empty),
        SettingKind::StringMap | SettingKind::BoolMap => v.as_object().is_some_and(Map::is_empty),
    }
}

/// What defaulting makes of a decoded value: `Some(default)` when the kubelet replaces it,
/// `None` when it is kept.
pub fn defaulted(def: &SettingDef, v: &Value) -> Option<Value> {
    match zero_rule(def) {
        ZeroRule::Kept => None,
        ZeroRule::Defaulted => is_go_zero(def.kind, v).then(|| (def.default_config)()),
        ZeroRule::PidsLimit => v
            .as_i64()
            .filter(|n| *n < 0 && *n != -1)
            .map(|_| Value::from(-1)),
    }
}

/// The internal configuration type's Go field name for a v1beta1 JSON name (1.28–1.31
/// merge the drop-ins into JSON spelled with Go field names: `readOnlyPort` →
/// `ReadOnlyPort`, `tlsCipherSuites` → `TLSCipherSuites`, `x509` → `X509`).
pub fn go_field_name(json_name: &str) -> String {
    for (prefix, go) in [("tls", "TLS"), ("x509", "X509")] {
        if let Some(rest) = json_name.strip_prefix(prefix) {
            if rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase()) {
                return format!("{go}{rest}");
            }
        }
    }
    let mut c = json_name.chars();
    match c.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// One key that took part in decoding a value: its exact spelling along the path.
pub type KeyPath = Vec<String>;

/// The result of decoding one setting out of a merged JSON document the way Go's
/// `encoding/json` does it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The decoded value (`None`: no key along the path matched).
    pub value: Option<Value>,
    /// The exact key paths that were decoded into the value, in decoding order.
    pub keys: Vec<KeyPath>,
}

/// Decode the value at `path` from `doc` as `encoding/json` does when it unmarshals into a
/// struct: object keys match field names **case-insensitively** (an exact match is not
/// preferred over an earlier folded one: every matching key is decoded, in document
/// order, and the last scalar wins); a JSON object decoded into an existing struct or
/// map fills it in rather than replacing it; a list replaces. The merged document's keys
/// are in byte order at every level (json-patch v4's `MergePatch` re-marshals a Go map),
/// which is `serde_json::Map`'s order.
///
/// `initial` is what the target held before decoding (1.28–1.31 decode into the base
/// object; 1.32+ into a fresh one). `Err` when a matching key has a JSON type the field
/// cannot take: the kubelet refuses to start.
pub fn fold_decode(
    doc: &Value,
    path: &[String],
    kind: SettingKind,
    initial: Option<Value>,
) -> Result<Decoded, String> {
    let mut out = Decoded {
        value: initial,
        keys: Vec::new(),
    };
    let mut prefix = Vec::new();
    decode_into(doc, path, kind, &mut prefix, &mut out)?;
    Ok(out)
}

fn decode_into(
    obj: &Value,
    path: &[String],
    kind: SettingKind,
    prefix: &mut Vec<String>,
    out: &mut Decoded,
) -> Result<(), String> {
    let Some((field, rest)) = path.split_first() else {
        return Ok(());
    };
    let Value::Object(map) = obj else {
        return Ok(());
    };
    for (key, v) in map.iter().filter(|(k, _)| k.eq_ignore_ascii_case(field)) {
        prefix.push(key.clone());
        if rest.is_empty() {
            match v {
                // A null leaves a pointer, map or list nil and is a no-op for a value.
                Value::Null => out.value = None,
                Value::Object(entries)
                    if matches!(kind, SettingKind::StringMap | SettingKind::BoolMap) =>
                {
                    let mut merged = match out.value.take() {
                        Some(Value::Object(m)) => m,
                        _ => Map::new(),
                    };
                    for (k, e) in entries {
                        merged.insert(k.clone(), e.clone());
                    }
                    out.value = Some(Value::Object(merged));
                }
                other => out.value = Some(other.clone()),
            }
            out.keys.push(prefix.clone());
        } else {
            match v {
                Value::Object(_) => decode_into(v, rest, kind, prefix, out)?,
                Value::Null => {}
                other => {
                    return Err(format!(
                    "{} is {}, not an object: the kubelet cannot decode the merged configuration",
                    prefix.join("."),
                    json_type(other)
                ))
                }
            }
        }
        prefix.pop();
    }
    Ok(())
}

/// The JSON type of a value, for messages (never the value itself).
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Whether the field is a pointer in the v1beta1 type (an explicit zero survives
/// `omitempty`); every other field the controls read is a value with `omitempty`, so
/// its zero is left out when the base configuration is marshalled for the drop-in merge.
pub fn is_pointer(def: &SettingDef) -> bool {
    matches!(
        def.key,
        "authentication.anonymous.enabled"
            | "authentication.webhook.enabled"
            | "eventRecordQPS"
            | "healthzPort"
            | "makeIPTablesUtilChains"
            | "podPidsLimit"
            | "seccompDefault"
            | "enableDebuggingHandlers"
            | "enableServer"
    )
}

/// Every `tlsCipherSuites` name the kubelet accepts, with the suite's IANA number.
///
/// k8s.io/component-base/cli/flag ciphersuites_flag.go `TLSCipherSuites` looks each name up
/// in `ciphers` and `insecureCiphers`; an unknown name is the error "Cipher suite %s not
/// supported or doesn't exist" and cmd/kubelet/app/server.go `InitializeTLS` returns it:
/// the kubelet does not start.
/// - component-base v0.23.0 and later (kubelet 1.23+; checked up to v0.37.2) fill the maps
///   from Go's crypto/tls `CipherSuites()` and `InsecureCipherSuites()`, which name the
///   ECDHE ChaCha20 suites `..._CHACHA20_POLY1305_SHA256`, and "keep legacy names for
///   backward compatibility": `TLS_ECDHE_{RSA,ECDSA}_WITH_CHACHA20_POLY1305`.
/// - v0.19.16 .. v0.22.17 (kubelet 1.19 .. 1.22) have hand-written maps with the same
///   suites but only the legacy ChaCha20 spelling: `..._CHACHA20_POLY1305_SHA256` is an
///   unknown name there (`evaluate::tls`).
///
/// Go's lists have held these 25 suites since Go 1.14 (checked against go1.26's).
pub const KUBELET_SUITES: &[(&str, u16)] = &[
    // TLS 1.3: accepted, but Go never lets Config.CipherSuites choose TLS 1.3 suites.
    ("TLS_AES_128_GCM_SHA256", 0x1301),
    ("TLS_AES_256_GCM_SHA384", 0x1302),
    ("TLS_CHACHA20_POLY1305_SHA256", 0x1303),
    // CipherSuites() (TLS 1.0 .. 1.2).
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xc009),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xc00a),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xc013),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xc014),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xc02b),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xc02c),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xc02f),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xc030),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca8),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca9),
    // InsecureCipherSuites().
    ("TLS_RSA_WITH_RC4_128_SHA", 0x0005),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x000a),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", 0x002f),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", 0x0035),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003c),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009c),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", 0x009d),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", 0xc007),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", 0xc011),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xc012),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xc023),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xc027),
    // component-base's legacy aliases.
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", 0xcca8),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", 0xcca9),
];

/// Why the kubelet cannot serve with this TLS configuration, if it cannot:
/// - a name it does not know (`cliflag.TLSCipherSuites`);
/// - a TLS 1.2 list with neither `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` nor its ECDSA
///   twin: `golang.org/x/net/http2` `ConfigureServer` refuses it ("missing an
///   HTTP/2-required AES_128_GCM_SHA256 cipher") and the kubelet's server exits. The
///   check is skipped when TLS 1.3 is the minimum (the list does not apply to TLS 1.3).
pub fn tls_refusal(ciphers: &[String], min_version: &str) -> Option<String> {
    if let Some(bad) = ciphers
        .iter()
        .find(|c| !KUBELET_SUITES.iter().any(|(n, _)| n == c))
    {
        return Some(format!(
            "tlsCipherSuites: Cipher suite {bad} not supported or doesn't exist"
        ));
    }
    const HTTP2: &[&str] = &[
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ];
    if !ciphers.is_empty()
        && min_version != "VersionTLS13"
        && !ciphers.iter().any(|c| HTTP2.contains(&c.as_str()))
    {
        return Some(
            "http2: TLSConfig.CipherSuites is missing an HTTP/2-required AES_128_GCM_SHA256 cipher (need at least one of TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)".to_string(),
        );
    }
    None
}

/// Whether a name is what Go's `filepath.Ext` calls a `.conf` file: the suffix from the
/// final dot is exactly `.conf` (so a file named `.conf` counts, `a.CONF` and
/// `a.conf.bak` do not).
pub fn is_dropin_name(name: &str) -> bool {
    name.ends_with(".conf")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn go_names() {
        assert_eq!(go_field_name("readOnlyPort"), "ReadOnlyPort");
        assert_eq!(go_field_name("tlsCipherSuites"), "TLSCipherSuites");
        assert_eq!(go_field_name("x509"), "X509");
        assert_eq!(go_field_name("clientCAFile"), "ClientCAFile");
        assert_eq!(go_field_name("eventRecordQPS"), "EventRecordQPS");
    }

    #[test]
    fn dropin_names_follow_filepath_ext() {
        assert!(is_dropin_name(".conf"));
        assert!(is_dropin_name("10-a.conf"));
        assert!(!is_dropin_name("10-a.CONF"));
        assert!(!is_dropin_name("10-a.conf.bak"));
        assert!(!is_dropin_name("conf"));
    }

    #[test]
    fn case_insensitive_last_in_byte_order_wins() {
        let doc = json!({"readOnlyPort": 0, "readonlyport": 10255, "ReadOnlyPort": 10256});
        let d = fold_decode(&doc, &p("readOnlyPort"), SettingKind::Int, None).unwrap();
        // Byte order: ReadOnlyPort < readOnlyPort < readonlyport.
        assert_eq!(d.value, Some(json!(10255)));
        assert_eq!(d.keys.last().unwrap(), &vec!["readonlyport".to_string()]);
    }

    #[test]
    fn nested_structs_fill_in_and_maps_accumulate() {
        let doc = json!({
            "Authentication": {"anonymous": {"enabled": true}},
            "authentication": {"Anonymous": {"enabled": false}},
            "KubeReserved": {"cpu": "1"},
            "kubeReserved": {"memory": "1Gi"}
        });
        let d = fold_decode(
            &doc,
            &p("authentication.anonymous.enabled"),
            SettingKind::Bool,
            None,
        )
        .unwrap();
        assert_eq!(d.value, Some(json!(false)));
        let m = fold_decode(&doc, &p("kubeReserved"), SettingKind::StringMap, None).unwrap();
        assert_eq!(m.value, Some(json!({"cpu": "1", "memory": "1Gi"})));
    }

    #[test]
    fn a_scalar_where_an_object_belongs_is_a_decode_error() {
        let doc = json!({"authentication": 5});
        assert!(fold_decode(
            &doc,
            &p("authentication.anonymous.enabled"),
            SettingKind::Bool,
            None
        )
        .is_err());
    }

    #[test]
    fn three_rule_classes() {
        let c = rule_classes();
        let ranges: Vec<String> = c.iter().map(|(m, _)| Rules::describe_range(m)).collect();
        assert_eq!(ranges, ["1.28–1.31", "1.32", "1.33+"]);
    }

    #[test]
    fn rules_by_minor() {
        assert_eq!(Rules::new(31).dropin_merge(), DropinMerge::Internal);
        assert_eq!(Rules::new(32).dropin_merge(), DropinMerge::V1beta1Defaulted);
        assert!(Rules::new(29).config_dir_needs_alpha_env());
        assert!(!Rules::new(30).config_dir_needs_alpha_env());
        assert!(!Rules::new(32).merge_default_eviction_settings());
        assert!(Rules::new(33).merge_default_eviction_settings());
        assert_eq!(Rules::describe_range(&[32, 33, 38]), "1.32+");
        assert_eq!(Rules::describe_range(&[28, 29, 30, 31]), "1.28–1.31");
    }
}
