//! The kubelet's effective configuration, computed with its own precedence rules, with
//! the provenance of every value.
//!
//! cmd/kubelet/app/server.go `NewKubeletCommand`:
//! 1. start from the flags-only object (`options.NewKubeletConfiguration`: v1beta1
//!    defaults + `applyLegacyDefaults`);
//! 2. `--config` *replaces* it with the file decoded with v1beta1 defaulting
//!    (`loadConfigFile`; the legacy defaults are gone; a zero value field means "the
//!    default");
//! 3. `--config-dir`: every `.conf` file, walked with `filepath.WalkDir`, is applied as an
//!    RFC 7386 JSON merge patch (`mergeKubeletConfigurations`); how the merged document
//!    is decoded and defaulted changed in 1.32 (see `loading.rs`);
//! 4. when `--config` or `--config-dir` is set, the command line is re-parsed on top
//!    (`kubeletConfigFlagPrecedence`): flags win; feature gates from files are kept unless
//!    the same gate is a flag.
//!
//! The rules, with the versions they hold for, are in docs/kubelet-config-loading.md and
//! are proven against real kubelets by tests/kubelet_truth.rs.
//!
//! This module is pure: the observe step reads the files and hands their text here.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::model::parse::ParseFault;

use super::flags::{FlagValue, Flags};
use super::loading::{self, DropinMerge, Rules, NEWEST_KNOWN_MINOR};
use super::settings::{parse_go_duration, setting, SettingDef, SettingKind};

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A built-in default. `flags_only` tells which default table applied.
    Default { flags_only: bool },
    /// The `--config` file.
    ConfigFile { path: String },
    /// A drop-in under `--config-dir`.
    DropIn { path: String },
    /// The command line.
    Flag { flag: String },
}

impl Source {
    /// The short label used in reports and metrics: `default`, `config-file`,
    /// `drop-in:<file>`, `flag`.
    pub fn label(&self) -> String {
        match self {
            Source::Default { .. } => "default".to_string(),
            Source::ConfigFile { .. } => "config-file".to_string(),
            Source::DropIn { path } => format!("drop-in:{}", file_name(path)),
            Source::Flag { .. } => "flag".to_string(),
        }
    }

    /// The file a value came from, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Source::ConfigFile { path } | Source::DropIn { path } => Some(path),
            _ => None,
        }
    }

    /// A human description: `default (flags-only)`, `config-file /var/lib/kubelet/config.yaml`,
    /// `flag --anonymous-auth`.
    pub fn describe(&self) -> String {
        match self {
            Source::Default { flags_only: true } => "default (flags-only mode)".to_string(),
            Source::Default { flags_only: false } => "default (v1beta1, --config mode)".to_string(),
            Source::ConfigFile { path } => format!("config-file {path}"),
            Source::DropIn { path } => format!("drop-in {path}"),
            Source::Flag { flag } => format!("flag --{flag}"),
        }
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A file the configuration was read from, and what happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfigInput {
    pub path: String,
    /// `Ok(text)` or the read error's message.
    pub text: Result<String, String>,
}

/// An effective setting with its provenance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Setting {
    pub value: Value,
    pub source: Source,
    /// Extra explanation (e.g. "0s in the file means the default").
    pub note: Option<String>,
}

/// The result of looking a setting up.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Lookup {
    Known(Setting),
    /// The value cannot be decided; the reason says why (parse error, unreadable file).
    Unknown {
        reason: String,
    },
}

impl Lookup {
    pub fn known(&self) -> Option<&Setting> {
        match self {
            Lookup::Known(s) => Some(s),
            Lookup::Unknown { .. } => None,
        }
    }
}

/// The effective configuration of one kubelet.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EffectiveConfig {
    pub config_file: Option<String>,
    pub config_dir: Option<String>,
    /// True when there is no `--config` (legacy flag defaults are the base).
    pub flags_only_base: bool,
    /// The merged document (config file + drop-ins), before flags.
    pub merged: Value,
    /// Provenance of every leaf in `merged`, by path.
    #[serde(skip)]
    provenance: BTreeMap<Vec<String>, Source>,
    /// Drop-in files applied, in order.
    pub dropins: Vec<String>,
    /// Errors that make file-decided settings unknown (parse errors, unreadable files).
    pub errors: Vec<String>,
    /// The command line.
    #[serde(skip)]
    pub flags: Flags,
    /// The `--config` document as parsed (type meta removed), before defaulting.
    #[serde(skip)]
    config_doc: Option<Value>,
    /// Each drop-in as parsed (type meta removed), in walk order.
    #[serde(skip)]
    dropin_docs: Vec<(String, Value)>,
    /// The kubelet's minor version (1.x), which decides the loading rules that changed
    /// between releases (`loading::Rules`); `None` while unknown.
    pub kubelet_minor: Option<u32>,
    /// Why `--config-dir` contributes nothing although it is set (a symlink the kubelet
    /// does not follow), added to the note of every value the drop-ins did not decide.
    pub dropin_note: Option<String>,
    /// Drop-ins that are not a v1beta1 `KubeletConfiguration`: from 1.32 the kubelet
    /// refuses them (`mergeKubeletConfigurations` checks each drop-in's group, version and
    /// kind); 1.28–1.31 merge whatever decodes.
    pub dropin_kind_errors: Vec<String>,
}

/// Parse a KubeletConfiguration document (YAML or JSON) into JSON, checking
/// `apiVersion`/`kind` as the kubelet's decoder does.
pub fn parse_document(text: &str) -> Result<Value, String> {
    let value = parse_any_kind(text)?;
    check_type_meta(&value)?;
    Ok(value)
}

/// Parse a drop-in: any object with a `kind` and an `apiVersion` decodes (the kubelet
/// reads drop-ins into an `Unstructured`); whether it must be a `KubeletConfiguration`
/// depends on the kubelet's version (see [`EffectiveConfig::dropin_kind_errors`]).
fn parse_dropin(text: &str) -> Result<(Value, Option<String>), String> {
    let value = parse_any_kind(text)?;
    let obj = value.as_object().ok_or("not a mapping at the top level")?;
    if obj.get("kind").and_then(Value::as_str).is_none() {
        return Err("Object 'Kind' is missing".to_string());
    }
    if obj.get("apiVersion").and_then(Value::as_str).is_none() {
        return Err("apiVersion is missing".to_string());
    }
    let kind_error = check_type_meta(&value).err();
    Ok((value, kind_error))
}

fn parse_any_kind(text: &str) -> Result<Value, String> {
    // configfiles.go `Load`/`LoadIntoJSON`: "no configuration is an error".
    if text.is_empty() {
        return Err("kubelet config file was empty".to_string());
    }
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    // A KubeletConfiguration can hold secrets (`staticPodURLHeader`, e.g. an
    // `Authorization` header): a parse error names the position and the kind, never the
    // text (ParseFault), and the YAML budget applies.
    let value: Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed)
            .map_err(|e| format!("invalid JSON: {}", ParseFault::from_json(&e)))?
    } else {
        crate::model::parse::yaml::<Value>(text).map_err(|e| format!("invalid YAML: {e}"))?
    };
    match &value {
        Value::Object(_) => Ok(value),
        Value::Null => Err("empty document (Object 'Kind' is missing)".to_string()),
        _ => Err("not a mapping at the top level".to_string()),
    }
}

/// The type meta the kubelet's decoder serves: `kubelet.config.k8s.io/v1beta1`
/// `KubeletConfiguration`.
fn check_type_meta(value: &Value) -> Result<(), String> {
    let obj = value.as_object().ok_or("not a mapping at the top level")?;
    match obj.get("kind").and_then(Value::as_str) {
        Some("KubeletConfiguration") => {}
        Some(other) => return Err(format!("kind is {other:?}, want KubeletConfiguration")),
        None => return Err("Object 'Kind' is missing".to_string()),
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some("kubelet.config.k8s.io/v1beta1") => {}
        Some(other) => {
            return Err(format!(
                "apiVersion {other:?} is not served by the kubelet (want kubelet.config.k8s.io/v1beta1)"
            ))
        }
        None => return Err("apiVersion is missing".to_string()),
    }
    Ok(())
}

impl EffectiveConfig {
    /// Build the effective configuration from the command line and the files' text.
    /// `config_file` is the `--config` file (if the flag is set); `dropins` the `*.conf`
    /// files under `--config-dir` in walk order; `dropin_dir_error` a failure to list it.
    pub fn build(
        flags: Flags,
        config_file: Option<ConfigInput>,
        config_dir: Option<String>,
        dropins: Vec<ConfigInput>,
        dropin_dir_error: Option<String>,
    ) -> EffectiveConfig {
        let mut cfg = EffectiveConfig {
            config_file: config_file.as_ref().map(|c| c.path.clone()),
            config_dir,
            flags_only_base: config_file.is_none(),
            merged: Value::Object(Map::new()),
            provenance: BTreeMap::new(),
            dropins: Vec::new(),
            errors: Vec::new(),
            flags,
            config_doc: None,
            dropin_docs: Vec::new(),
            kubelet_minor: None,
            dropin_note: None,
            dropin_kind_errors: Vec::new(),
        };
        if let Some(input) = config_file {
            match input.text.and_then(|t| parse_document(&t)) {
                Ok(doc) => {
                    let src = Source::ConfigFile {
                        path: input.path.clone(),
                    };
                    let mut doc = doc;
                    strip_type_meta(&mut doc);
                    record_leaves(&doc, &mut Vec::new(), &src, &mut cfg.provenance);
                    cfg.config_doc = Some(doc.clone());
                    cfg.merged = doc;
                }
                Err(e) => cfg.errors.push(format!("config file {}: {e}", input.path)),
            }
        }
        // evictionHard is defaulted when nil by `loadConfigFile` (a --config file only;
        // the flags-only object keeps a nil map). It is then part of the base the drop-ins
        // are merged into, so a drop-in that sets one signal keeps the other defaults.
        if cfg.errors.is_empty() && !cfg.flags_only_base {
            if let Value::Object(o) = &mut cfg.merged {
                if !o.contains_key("evictionHard") || o.get("evictionHard") == Some(&Value::Null) {
                    let default = super::settings::default_eviction_hard();
                    let src = Source::Default {
                        flags_only: cfg.flags_only_base,
                    };
                    record_leaves(
                        &default,
                        &mut vec!["evictionHard".to_string()],
                        &src,
                        &mut cfg.provenance,
                    );
                    o.insert("evictionHard".to_string(), default);
                }
            }
        }
        if let Some(e) = dropin_dir_error {
            cfg.errors.push(e);
        }
        for input in dropins {
            match input.text.and_then(|t| parse_dropin(&t)) {
                Ok((mut patch, kind_error)) => {
                    if let Some(e) = kind_error {
                        cfg.dropin_kind_errors
                            .push(format!("drop-in {}: {e}", input.path));
                    }
                    strip_type_meta(&mut patch);
                    let src = Source::DropIn {
                        path: input.path.clone(),
                    };
                    merge_patch(
                        &mut cfg.merged,
                        &patch,
                        &mut Vec::new(),
                        &src,
                        &mut cfg.provenance,
                    );
                    cfg.dropin_docs.push((input.path.clone(), patch));
                    cfg.dropins.push(input.path);
                }
                Err(e) => cfg.errors.push(format!("drop-in {}: {e}", input.path)),
            }
        }
        cfg
    }

    /// Whether any configuration file failed to load.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The effective value of a known setting (see `settings::SETTINGS`).
    pub fn get(&self, key: &str) -> Lookup {
        self.get_for(key, self.kubelet_minor)
    }

    /// [`get`](Self::get) under the loading rules of kubelet minor `minor` (`None`: the
    /// version is unknown, so a value that differs between versions is unknown).
    pub fn get_for(&self, key: &str, minor: Option<u32>) -> Lookup {
        let Some(def) = setting(key) else {
            return Lookup::Unknown {
                reason: format!("internal: unknown setting {key}"),
            };
        };
        // A command line the kubelet's flag parsing rejects never gets as far as loading a
        // configuration: nothing about it can be decided.
        if let Some(r) = self.flags.refusal() {
            return Lookup::Unknown {
                reason: format!(
                    "the kubelet would refuse this command line ({r}), so {key} cannot be decided"
                ),
            };
        }
        self.lookup(def, minor)
    }

    fn lookup(&self, def: &SettingDef, minor: Option<u32>) -> Lookup {
        // 4. Flags win (kubeletConfigFlagPrecedence).
        let flag_value = def
            .flag
            .and_then(|name| self.flags.value(name).map(|v| (name, v)));
        if def.kind == SettingKind::BoolMap {
            return self.lookup_bool_map(def, flag_value, minor);
        }
        if let Some((name, v)) = flag_value {
            return match v.and_then(|v| flag_to_json(def, v)) {
                Ok(value) => {
                    // server.go: seccompDefault is the flag OR the config value.
                    if def.key == "seccompDefault" && value == Value::Bool(false) {
                        if let Lookup::Known(from_file) = self.lookup_files(def, minor) {
                            if from_file.value == Value::Bool(true) {
                                return Lookup::Known(Setting {
                                    note: Some(
                                        "the kubelet ORs --seccomp-default with the config value"
                                            .to_string(),
                                    ),
                                    ..from_file
                                });
                            }
                        }
                    }
                    Lookup::Known(Setting {
                        value,
                        source: Source::Flag {
                            flag: name.to_string(),
                        },
                        note: None,
                    })
                }
                Err(reason) => Lookup::Unknown { reason },
            };
        }
        self.lookup_files(def, minor)
    }

    /// What the kubelet's `/configz` shows for a setting (its `KubeletConfiguration` after
    /// start-up), which is the effective value except:
    /// - `seccompDefault`: `--seccomp-default` is a `KubeletFlags` field the kubelet ORs
    ///   with the configuration's value when it runs (server.go `RunKubelet`), so /configz
    ///   shows the files' value;
    /// - `tlsCertFile`/`tlsPrivateKeyFile`, both empty without `serverTLSBootstrap`:
    ///   `InitializeTLS` fills in `<--cert-dir>/kubelet.crt` and `kubelet.key`.
    pub fn configz_view(&self, key: &str, minor: Option<u32>) -> Lookup {
        let Some(def) = setting(key) else {
            return self.get_for(key, minor);
        };
        match key {
            "seccompDefault" => self.lookup_files(def, minor),
            "tlsCertFile" | "tlsPrivateKeyFile" => {
                let got = self.get_for(key, minor);
                let empty = |k: &str| matches!(self.get_for(k, minor), Lookup::Known(s) if s.value.as_str() == Some(""));
                let bootstrap = matches!(
                    self.get_for("serverTLSBootstrap", minor),
                    Lookup::Known(s) if s.value == Value::Bool(true)
                );
                if !bootstrap && empty("tlsCertFile") && empty("tlsPrivateKeyFile") {
                    let dir = self
                        .flags
                        .string("cert-dir")
                        .filter(|d| !d.is_empty())
                        .unwrap_or_else(|| DEFAULT_CERT_DIR.to_string());
                    let file = if key == "tlsCertFile" {
                        "kubelet.crt"
                    } else {
                        "kubelet.key"
                    };
                    return Lookup::Known(Setting {
                        value: Value::String(format!("{}/{file}", dir.trim_end_matches('/'))),
                        source: Source::Default {
                            flags_only: self.flags_only_base,
                        },
                        note: Some(
                            "empty: the kubelet generates a self-signed pair under --cert-dir at start (InitializeTLS)"
                                .to_string(),
                        ),
                    });
                }
                got
            }
            _ => self.get_for(key, minor),
        }
    }

    /// Set the kubelet's version (its minor decides the loading rules that changed between
    /// releases). Unparseable text leaves it unknown.
    pub fn set_kubelet_version(&mut self, version: Option<&str>) {
        self.kubelet_minor = version.and_then(crate::model::version::minor_of);
    }

    /// The value decided by the files and defaults (ignoring flags).
    ///
    /// With the kubelet's version known, the rules of that minor decide. With it unknown,
    /// every modelled minor is tried: when they agree the value is known; when they do not,
    /// the answer is `unknown`, naming the versions and what each would give.
    fn lookup_files(&self, def: &SettingDef, minor: Option<u32>) -> Lookup {
        if self.has_errors() {
            return Lookup::Unknown {
                reason: format!("cannot decide {}: {}", def.key, self.errors.join("; ")),
            };
        }
        if let Some(minor) = minor {
            return self.resolve_files(def, Rules::new(minor.min(NEWEST_KNOWN_MINOR)));
        }
        // Group the modelled minors by outcome, newest first.
        let mut groups: Vec<(Vec<u32>, Lookup)> = Vec::new();
        for (class, rules) in loading::rule_classes() {
            let got = self.resolve_files(def, rules);
            match groups.iter_mut().find(|(_, l)| same_outcome(l, &got)) {
                Some((minors, _)) => {
                    minors.extend(class);
                    minors.sort_unstable();
                }
                None => groups.push((class, got)),
            }
        }
        if groups.len() == 1 {
            return groups.pop().map(|(_, l)| l).unwrap_or(Lookup::Unknown {
                reason: "internal: no kubelet version modelled".to_string(),
            });
        }
        let outcomes: Vec<String> = groups
            .iter()
            .rev()
            .map(|(minors, l)| {
                let what = match l {
                    Lookup::Known(s) => format!("{} ({})", s.value, s.source.describe()),
                    Lookup::Unknown { reason } => format!("unknown ({reason})"),
                };
                format!("{} gives {what}", Rules::describe_range(minors))
            })
            .collect();
        Lookup::Unknown {
            reason: format!(
                "{} depends on the kubelet's version, which is not known: {}",
                def.key,
                outcomes.join("; ")
            ),
        }
    }

    /// The value the files and defaults give under one minor's loading rules.
    fn resolve_files(&self, def: &SettingDef, rules: Rules) -> Lookup {
        match self.resolve_files_inner(def, rules) {
            Ok(s) => Lookup::Known(s),
            Err(reason) => Lookup::Unknown { reason },
        }
    }

    fn resolve_files_inner(&self, def: &SettingDef, rules: Rules) -> Result<Setting, String> {
        let mut base = self.base_setting(def, rules)?;
        if self.config_dir.is_none() {
            return Ok(base);
        }
        if rules.dropin_merge() == DropinMerge::V1beta1Defaulted {
            if let Some(e) = self.dropin_kind_errors.first() {
                return Err(format!("{e} (from 1.32 the kubelet refuses it)"));
            }
        }
        if let Some(n) = &self.dropin_note {
            base.note = Some(match base.note.take() {
                Some(prev) => format!("{prev}; {n}"),
                None => n.clone(),
            });
        }
        let path: Vec<String> = def.path.iter().map(|s| s.to_string()).collect();
        let mut prov: BTreeMap<Vec<String>, Source> = BTreeMap::new();
        let merge = rules.dropin_merge();
        // The base document the drop-ins are merged into: v1beta1 JSON names from 1.32,
        // the internal type's Go field names before.
        let base_path: Vec<String> = match merge {
            DropinMerge::V1beta1Defaulted => path.clone(),
            DropinMerge::Internal => path.iter().map(|p| loading::go_field_name(p)).collect(),
        };
        let mut doc = Value::Object(Map::new());
        // 1.32+ marshal the v1beta1 base with `omitempty`: a value field at its zero is
        // left out, so a drop-in's differently spelled key has no twin to lose against.
        let omitted = merge == DropinMerge::V1beta1Defaulted
            && !loading::is_pointer(def)
            && loading::is_go_zero(def.kind, &base.value);
        if !omitted {
            set_path(&mut doc, &base_path, base.value.clone());
        }
        record_leaves(&base.value, &mut base_path.clone(), &base.source, &mut prov);
        if base.value.as_object().is_some_and(Map::is_empty) || base.value.is_array() {
            prov.insert(base_path.clone(), base.source.clone());
        }
        for (file, patch) in &self.dropin_docs {
            let src = Source::DropIn { path: file.clone() };
            merge_patch(&mut doc, patch, &mut Vec::new(), &src, &mut prov);
        }
        let initial = match merge {
            DropinMerge::V1beta1Defaulted => None,
            DropinMerge::Internal => Some(base.value.clone()),
        };
        let decoded = loading::fold_decode(&doc, &path, def.kind, initial)
            .map_err(|e| format!("{}: {e}", def.key))?;
        let Some(value) = decoded.value else {
            // Absent from the merged document (left out by `omitempty`, or removed by a
            // drop-in's null): a fresh v1beta1 object gets SetDefaults_KubeletConfiguration's
            // default, which has no evictionHard (only loadConfigFile fills that in).
            let value = if def.key == "evictionHard" {
                Value::Object(Map::new())
            } else {
                (def.default_config)()
            };
            let note = self
                .dropin_docs
                .iter()
                .any(|(_, patch)| get_path(patch, &path) == Some(&Value::Null))
                .then(|| {
                    format!(
                        "a drop-in removed {} (null), so the v1beta1 default applies",
                        def.key
                    )
                });
            if value == base.value && note.is_none() {
                return Ok(base);
            }
            return Ok(Setting {
                value,
                source: Source::Default { flags_only: false },
                note,
            });
        };
        let source = self.decoded_source(def, &decoded.keys, &prov, &base.source);
        if let Err(e) = check_kind(def, &value) {
            return Err(format!("{} in {}: {e}", def.key, source.describe()));
        }
        let unchanged = value == base.value && source == base.source;
        if unchanged {
            return Ok(base);
        }
        let note = decoded
            .keys
            .last()
            .filter(|k| k.iter().zip(&path).any(|(a, b)| a != b))
            .filter(|_| matches!(source, Source::DropIn { .. }))
            .map(|k| {
                format!(
                    "the drop-in spells the key {:?}; the kubelet decodes the merged drop-ins with Go's encoding/json, which matches keys case-insensitively",
                    k.join(".")
                )
            });
        if merge == DropinMerge::V1beta1Defaulted {
            if let Some(d) = loading::defaulted(def, &value) {
                return Ok(Setting {
                    value: d,
                    source: Source::Default { flags_only: false },
                    note: Some(format!(
                        "{} is {} in {}; from 1.32 the kubelet defaults the merged configuration again (SetDefaults_KubeletConfiguration, kubernetes PR #127421)",
                        def.key,
                        value,
                        source.path().unwrap_or("a drop-in")
                    )),
                });
            }
        }
        Ok(Setting {
            value,
            source,
            note,
        })
    }

    /// Which file decided a decoded value: the last key decoded for a scalar or list, the
    /// highest-precedence contribution for a map.
    fn decoded_source(
        &self,
        def: &SettingDef,
        keys: &[Vec<String>],
        prov: &BTreeMap<Vec<String>, Source>,
        base: &Source,
    ) -> Source {
        let under = |k: &Vec<String>| -> Vec<Source> {
            prov.range(k.clone()..)
                .take_while(|(p, _)| p.starts_with(k))
                .map(|(_, s)| s.clone())
                .collect()
        };
        let candidates: Vec<Source> = match def.kind {
            SettingKind::StringMap | SettingKind::BoolMap => keys.iter().flat_map(under).collect(),
            _ => keys.last().map(under).unwrap_or_default(),
        };
        candidates
            .into_iter()
            .max_by_key(|s| self.rank(s))
            .unwrap_or_else(|| base.clone())
    }

    /// The value before drop-ins: the `--config` file decoded and defaulted as
    /// `loadConfigFile` does, or the flags-only defaults.
    fn base_setting(&self, def: &SettingDef, rules: Rules) -> Result<Setting, String> {
        let Some(doc) = &self.config_doc else {
            let value = (def.default_flags)();
            // With --config-dir but no --config the base is the legacy flags object.
            let note = if self.config_dir.is_some() && value != (def.default_config)() {
                Some(format!(
                    "no --config: the flags-only default applies even with --config-dir (k3s#12164); no drop-in sets {}",
                    def.key
                ))
            } else {
                None
            };
            return Ok(Setting {
                value,
                source: Source::Default { flags_only: true },
                note,
            });
        };
        let file = self.config_file.clone().unwrap_or_default();
        let src = Source::ConfigFile { path: file.clone() };
        let path: Vec<String> = def.path.iter().map(|s| s.to_string()).collect();
        // The --config file is decoded case-sensitively (sigs.k8s.io/json): a mis-cased
        // key is an unknown field, which strict decoding rejects and the lenient retry
        // (pkg/kubelet/kubeletconfig/util/codec DecodeKubeletConfiguration) ignores.
        let given = get_path(doc, &path).filter(|v| !v.is_null());
        if def.key == "evictionHard" {
            return Ok(self.eviction_base(doc, given, &src, rules));
        }
        let Some(v) = given else {
            return Ok(Setting {
                value: (def.default_config)(),
                source: Source::Default { flags_only: false },
                note: None,
            });
        };
        check_kind(def, v).map_err(|e| format!("{} in {}: {e}", def.key, src.describe()))?;
        // configfiles.go `resolveRelativePaths`: relative paths in the --config file are
        // made absolute against the file's directory (drop-ins' are not: LoadIntoJSON
        // leaves them relative to the kubelet's working directory).
        if let Some(rel) = v
            .as_str()
            .filter(|p| !p.is_empty() && !p.starts_with('/') && PATH_SETTINGS.contains(&def.key))
        {
            let dir = match file.rfind('/') {
                Some(0) => "/".to_string(),
                Some(i) => file[..i].to_string(),
                None => ".".to_string(),
            };
            return Ok(Setting {
                value: Value::String(join_clean(&dir, rel)),
                source: src,
                note: Some(format!(
                    "{rel:?} is relative: the kubelet resolves it against {dir} (resolveRelativePaths)"
                )),
            });
        }
        if let Some(d) = loading::defaulted(def, v) {
            return Ok(Setting {
                value: d,
                source: Source::Default { flags_only: false },
                note: Some(format!(
                    "{} is {} in {file}, which the kubelet replaces with the default (SetDefaults_KubeletConfiguration)",
                    def.key, v
                )),
            });
        }
        Ok(Setting {
            value: v.clone(),
            source: src,
            note: None,
        })
    }

    /// `evictionHard` after `loadConfigFile`: the defaults when the file has none; a
    /// partial map as it is, or (1.33+, `mergeDefaultEvictionSettings: true`) completed
    /// with the default signals it does not set.
    fn eviction_base(
        &self,
        doc: &Value,
        given: Option<&Value>,
        src: &Source,
        rules: Rules,
    ) -> Setting {
        let default = super::settings::default_eviction_hard();
        let Some(v) = given else {
            return Setting {
                value: default,
                source: Source::Default { flags_only: false },
                note: None,
            };
        };
        let merge = rules.merge_default_eviction_settings()
            && doc.get("mergeDefaultEvictionSettings") == Some(&Value::Bool(true));
        match (merge, v.as_object(), default.as_object()) {
            (true, Some(given), Some(defaults)) => {
                let mut m = defaults.clone();
                for (k, e) in given {
                    m.insert(k.clone(), e.clone());
                }
                Setting {
                    value: Value::Object(m),
                    source: src.clone(),
                    note: Some(
                        "mergeDefaultEvictionSettings: true keeps the default signals the file does not set (1.33+, kubernetes PR #127577)"
                            .to_string(),
                    ),
                }
            }
            _ => Setting {
                value: v.clone(),
                source: src.clone(),
                note: None,
            },
        }
    }

    /// Why the real kubelet would refuse to start with this command line and these files,
    /// under the rules of its version (all modelled versions when unknown: a reason any of
    /// them gives). `alpha_env`: whether `KUBELET_CONFIG_DROPIN_DIR_ALPHA` is set, when known.
    pub fn refusal(&self, alpha_env: Option<bool>) -> Option<String> {
        if let Some(e) = self.flags.refusal() {
            return Some(e);
        }
        if !self.errors.is_empty() {
            return Some(self.errors.join("; "));
        }
        let minors: Vec<u32> = match self.kubelet_minor {
            Some(m) => vec![m.min(NEWEST_KNOWN_MINOR)],
            None => loading::modelled_minors().collect(),
        };
        for minor in minors {
            let rules = Rules::new(minor);
            if self.config_dir.is_some()
                && rules.config_dir_needs_alpha_env()
                && alpha_env == Some(false)
            {
                return Some(format!(
                    "flag {} specified but environment variable KUBELET_CONFIG_DROPIN_DIR_ALPHA not set (1.28–1.29)",
                    self.config_dir.clone().unwrap_or_default()
                ));
            }
            for def in super::settings::SETTINGS {
                if let Err(e) = self.resolve_files_inner(def, rules) {
                    return Some(e);
                }
            }
            let known = |key: &str| match self.get_for(key, Some(minor)) {
                Lookup::Known(s) => Some(s.value),
                Lookup::Unknown { .. } => None,
            };
            // cmd/kubelet/app/auth.go `BuildAuthz`: an empty mode (a drop-in's "" is not
            // defaulted before 1.32) is "no authorization mode specified".
            if known("authorization.mode").as_ref().and_then(Value::as_str) == Some("") {
                return Some("no authorization mode specified".to_string());
            }
            if let (Some(Value::Array(list)), Some(min)) =
                (known("tlsCipherSuites"), known("tlsMinVersion"))
            {
                let names: Vec<String> = list
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect();
                if let Some(e) = loading::tls_refusal(&names, min.as_str().unwrap_or("")) {
                    return Some(e);
                }
            }
        }
        None
    }

    fn lookup_bool_map(
        &self,
        def: &SettingDef,
        flag_value: Option<(&str, Result<FlagValue, String>)>,
        minor: Option<u32>,
    ) -> Lookup {
        let base = self.lookup_files(def, minor);
        let (mut map, mut source) = match base {
            Lookup::Known(s) => (s.value.as_object().cloned().unwrap_or_default(), s.source),
            // The merged map cannot be known without the files; a single gate given as
            // a flag is still known through `feature_gate`.
            Lookup::Unknown { reason } => return Lookup::Unknown { reason },
        };
        if let Some((name, v)) = flag_value {
            match v {
                Ok(FlagValue::BoolMap(gates)) => {
                    for (k, b) in gates {
                        map.insert(k, Value::Bool(b));
                    }
                    source = Source::Flag {
                        flag: name.to_string(),
                    };
                }
                Ok(_) => {}
                Err(reason) => return Lookup::Unknown { reason },
            }
        }
        Lookup::Known(Setting {
            value: Value::Object(map),
            source,
            note: None,
        })
    }

    /// The value and source of one feature gate (`None` value when not set anywhere).
    pub fn feature_gate(&self, gate: &str) -> Result<Option<(bool, Source)>, String> {
        if let Some(Ok(FlagValue::BoolMap(g))) = self.flags.value("feature-gates") {
            if let Some(b) = g.get(gate) {
                return Ok(Some((
                    *b,
                    Source::Flag {
                        flag: "feature-gates".to_string(),
                    },
                )));
            }
        }
        if let Some(Err(e)) = self.flags.value("feature-gates") {
            return Err(e);
        }
        if self.has_errors() {
            return Err(self.errors.join("; "));
        }
        let path = vec!["featureGates".to_string(), gate.to_string()];
        match get_path(&self.merged, &path) {
            Some(Value::Bool(b)) => Ok(Some((*b, self.source_of(&path)))),
            Some(Value::Null) | None => Ok(None),
            Some(other) => Err(format!("featureGates.{gate} is not a boolean: {other}")),
        }
    }

    /// Provenance of a path: the exact leaf, or for a map the highest-precedence source
    /// among its entries (default < config file < drop-ins in order < flag).
    fn source_of(&self, path: &[String]) -> Source {
        // The exact entry (a scalar, a list, or an empty map written in a file) and every
        // entry below it (map keys merged in by later files) compete by precedence.
        self.provenance
            .range(path.to_vec()..)
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(_, s)| s)
            .max_by_key(|s| self.rank(s))
            .cloned()
            .unwrap_or(Source::Default {
                flags_only: self.flags_only_base,
            })
    }

    fn rank(&self, s: &Source) -> usize {
        match s {
            Source::Default { .. } => 0,
            Source::ConfigFile { .. } => 1,
            Source::DropIn { path } => 2 + self.dropins.iter().position(|d| d == path).unwrap_or(0),
            Source::Flag { .. } => usize::MAX,
        }
    }

    /// A stable hash input: the effective value of every known setting with its source.
    pub fn fingerprint_material(&self) -> String {
        let mut out = String::new();
        for def in super::settings::SETTINGS {
            out.push_str(def.key);
            out.push('=');
            match self.lookup(def, self.kubelet_minor) {
                Lookup::Known(s) => {
                    out.push_str(&s.value.to_string());
                    out.push('@');
                    out.push_str(&s.source.label());
                }
                Lookup::Unknown { reason } => {
                    out.push_str("unknown:");
                    out.push_str(&reason);
                }
            }
            out.push('\n');
        }
        out
    }
}

/// The settings that are file paths (`KubeletConfigurationPathRefs`).
pub const PATH_SETTINGS: &[&str] = &[
    "authentication.x509.clientCAFile",
    "tlsCertFile",
    "tlsPrivateKeyFile",
];

/// Go's `filepath.Join`: join and clean (`.` and `..` elements, repeated slashes).
fn join_clean(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let absolute = dir.starts_with('/');
    for p in dir.split('/').chain(rel.split('/')) {
        match p {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// The kubelet's default `--cert-dir` (cmd/kubelet/app/options/options.go).
pub const DEFAULT_CERT_DIR: &str = "/var/lib/kubelet/pki";

/// Two lookups that a user could not tell apart (same value and source, or both unknown
/// for the same reason).
fn same_outcome(a: &Lookup, b: &Lookup) -> bool {
    match (a, b) {
        (Lookup::Known(x), Lookup::Known(y)) => x.value == y.value && x.source == y.source,
        (Lookup::Unknown { reason: x }, Lookup::Unknown { reason: y }) => x == y,
        _ => false,
    }
}

/// Set `v` at `path`, creating objects along the way.
fn set_path(doc: &mut Value, path: &[String], v: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = doc;
    for p in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(o) = cur else { return };
        cur = o
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Value::Object(o) = cur {
        o.insert(last.clone(), v);
    }
}

/// Remove `apiVersion`/`kind` so they don't take part in merging or provenance.
fn strip_type_meta(doc: &mut Value) {
    if let Value::Object(o) = doc {
        o.remove("apiVersion");
        o.remove("kind");
    }
}

fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn record_leaves(
    v: &Value,
    path: &mut Vec<String>,
    src: &Source,
    prov: &mut BTreeMap<Vec<String>, Source>,
) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, child) in o {
                path.push(k.clone());
                record_leaves(child, path, src, prov);
                path.pop();
            }
        }
        _ => {
            if !path.is_empty() {
                prov.insert(path.clone(), src.clone());
            }
        }
    }
}

fn remove_prov_under(prov: &mut BTreeMap<Vec<String>, Source>, path: &[String]) {
    let keys: Vec<Vec<String>> = prov
        .range(path.to_vec()..)
        .take_while(|(p, _)| p.starts_with(path))
        .map(|(p, _)| p.clone())
        .collect();
    for k in keys {
        prov.remove(&k);
    }
}

/// RFC 7386 JSON merge patch, recording provenance of what the patch set.
fn merge_patch(
    target: &mut Value,
    patch: &Value,
    path: &mut Vec<String>,
    src: &Source,
    prov: &mut BTreeMap<Vec<String>, Source>,
) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
                remove_prov_under(prov, path);
            }
            if let Value::Object(t) = target {
                for (k, pv) in p {
                    path.push(k.clone());
                    if pv.is_null() {
                        t.remove(k);
                        remove_prov_under(prov, path);
                    } else {
                        let entry = t.entry(k.clone()).or_insert(Value::Null);
                        merge_patch(entry, pv, path, src, prov);
                    }
                    path.pop();
                }
            }
        }
        other => {
            remove_prov_under(prov, path);
            *target = other.clone();
            if !path.is_empty() {
                prov.insert(path.clone(), src.clone());
            }
        }
    }
}

/// Check that a file value has the type the kubelet's decoder would accept.
fn check_kind(def: &SettingDef, v: &Value) -> Result<(), String> {
    let ok = match def.kind {
        SettingKind::Bool => v.is_boolean(),
        SettingKind::Int => v.is_i64() || v.is_u64(),
        SettingKind::String => v.is_string(),
        SettingKind::Duration => v
            .as_str()
            .map(|s| parse_go_duration(s).is_some())
            .unwrap_or(false),
        SettingKind::StringList => v
            .as_array()
            .map(|a| a.iter().all(Value::is_string))
            .unwrap_or(false),
        SettingKind::StringMap => v
            .as_object()
            .map(|o| o.values().all(Value::is_string))
            .unwrap_or(false),
        SettingKind::BoolMap => v
            .as_object()
            .map(|o| o.values().all(Value::is_boolean))
            .unwrap_or(false),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "value {v} is not a valid {:?} (the kubelet would refuse this file)",
            def.kind
        ))
    }
}

/// Convert a flag value to the JSON the config file would hold.
fn flag_to_json(def: &SettingDef, v: FlagValue) -> Result<Value, String> {
    let flag = def.flag.unwrap_or(def.key);
    match (def.kind, v) {
        (SettingKind::Bool, FlagValue::Bool(b)) => Ok(Value::Bool(b)),
        (SettingKind::Int, FlagValue::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("--{flag}={s}: not an integer")),
        (SettingKind::String, FlagValue::String(s)) => Ok(Value::String(s)),
        (SettingKind::Duration, FlagValue::String(s)) => {
            if parse_go_duration(&s).is_some() {
                Ok(Value::String(s))
            } else {
                Err(format!("--{flag}={s}: not a duration"))
            }
        }
        (SettingKind::StringList, FlagValue::List(l)) => {
            Ok(Value::Array(l.into_iter().map(Value::String).collect()))
        }
        (SettingKind::StringMap, FlagValue::Map(m)) => Ok(Value::Object(
            m.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
        )),
        (SettingKind::BoolMap, FlagValue::BoolMap(m)) => Ok(Value::Object(
            m.into_iter().map(|(k, v)| (k, Value::Bool(v))).collect(),
        )),
        (kind, v) => Err(format!("--{flag}: value {v:?} does not fit {kind:?}")),
    }
}

/// The authorizer types, in order, of a kube-apiserver `AuthorizationConfiguration`
/// (`--authorization-config`, apiserver.config.k8s.io): `authorizers[].type`.
pub fn authorizer_types(text: &str) -> Result<Vec<String>, String> {
    let doc: Value = crate::model::parse::yaml(text).map_err(|e| e.to_string())?;
    if doc.get("kind").and_then(Value::as_str) != Some("AuthorizationConfiguration") {
        return Err("not an AuthorizationConfiguration".to_string());
    }
    let list = doc
        .get("authorizers")
        .and_then(Value::as_array)
        .ok_or_else(|| "no authorizers list".to_string())?;
    list.iter()
        .map(|a| {
            a.get("type")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| "an authorizer without a type".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn authorizer_types_of_a_structured_authorization_config() {
        let text = "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n  - type: Node\n    name: node\n  - type: RBAC\n    name: rbac\n";
        assert_eq!(authorizer_types(text).unwrap(), vec!["Node", "RBAC"]);
        assert!(authorizer_types("kind: KubeletConfiguration\n").is_err());
        assert!(
            authorizer_types("kind: AuthorizationConfiguration\nauthorizers:\n  - name: x\n")
                .is_err()
        );
        assert!(authorizer_types(": : :").is_err());
    }

    const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

    fn input(path: &str, body: &str) -> ConfigInput {
        ConfigInput {
            path: path.to_string(),
            text: Ok(format!("{HEAD}{body}")),
        }
    }

    fn known(c: &EffectiveConfig, key: &str) -> Setting {
        match c.get(key) {
            Lookup::Known(s) => s,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn flags_only_defaults_are_insecure() {
        let c = EffectiveConfig::build(Flags::parse::<&str>(&[]), None, None, vec![], None);
        assert_eq!(
            known(&c, "authentication.anonymous.enabled").value,
            json!(true)
        );
        assert_eq!(known(&c, "authorization.mode").value, json!("AlwaysAllow"));
        assert_eq!(known(&c, "readOnlyPort").value, json!(10255));
        assert_eq!(
            known(&c, "readOnlyPort").source,
            Source::Default { flags_only: true }
        );
    }

    #[test]
    fn config_file_replaces_legacy_defaults() {
        let c = EffectiveConfig::build(
            Flags::parse(&["--config=/c.yaml"]),
            Some(input("/c.yaml", "streamingConnectionIdleTimeout: 0s\n")),
            None,
            vec![],
            None,
        );
        assert_eq!(
            known(&c, "authentication.anonymous.enabled").value,
            json!(false)
        );
        assert_eq!(known(&c, "readOnlyPort").value, json!(0));
        let s = known(&c, "streamingConnectionIdleTimeout");
        assert_eq!(s.value, json!("4h0m0s"));
        assert!(s.note.is_some());
    }

    #[test]
    fn dropins_merge_and_flags_win() {
        let mut c = EffectiveConfig::build(
            Flags::parse(&["--config=/c.yaml", "--config-dir=/d", "--read-only-port=0"]),
            Some(input(
                "/c.yaml",
                "readOnlyPort: 10255\nauthorization:\n  mode: Webhook\nclusterDNS: [a, b]\nkubeReserved:\n  cpu: 100m\n",
            )),
            Some("/d".into()),
            vec![
                input("/d/10-a.conf", "authorization:\n  mode: AlwaysAllow\nclusterDNS: [c]\nkubeReserved:\n  memory: 1Gi\nstreamingConnectionIdleTimeout: 0s\n"),
                input("/d/20-b.conf", "kubeReserved:\n  cpu: null\n"),
            ],
            None,
        );
        // 1.32+: the drop-in's null removes the base's entry (1.28–1.31 keep it).
        c.set_kubelet_version(Some("v1.33.2"));
        assert_eq!(known(&c, "readOnlyPort").value, json!(0));
        assert_eq!(
            known(&c, "readOnlyPort").source,
            Source::Flag {
                flag: "read-only-port".into()
            }
        );
        let m = known(&c, "authorization.mode");
        assert_eq!(m.value, json!("AlwaysAllow"));
        assert_eq!(m.source.label(), "drop-in:10-a.conf");
        assert_eq!(c.merged["clusterDNS"], json!(["c"]));
        assert_eq!(known(&c, "kubeReserved").value, json!({"memory": "1Gi"}));
        // From 1.32 a zero duration in a drop-in is defaulted (kubernetes PR #127421);
        // up to 1.31 it stays 0.
        assert_eq!(
            known(&c, "streamingConnectionIdleTimeout").value,
            json!("4h0m0s")
        );
        c.set_kubelet_version(Some("v1.31.1"));
        assert_eq!(
            known(&c, "streamingConnectionIdleTimeout").value,
            json!("0s")
        );
    }

    #[test]
    fn config_dir_without_config_keeps_legacy_base() {
        // k3s#12164 / rke2#8094: drop-ins only, readOnlyPort stays 10255.
        let c = EffectiveConfig::build(
            Flags::parse(&["--config-dir=/d"]),
            None,
            Some("/d".into()),
            vec![input(
                "/d/00-rke2-defaults.conf",
                "authentication:\n  anonymous:\n    enabled: false\n",
            )],
            None,
        );
        assert_eq!(known(&c, "readOnlyPort").value, json!(10255));
        assert_eq!(
            known(&c, "authentication.anonymous.enabled").value,
            json!(false)
        );
        assert_eq!(known(&c, "authorization.mode").value, json!("AlwaysAllow"));
    }

    #[test]
    fn parse_error_makes_file_settings_unknown_but_flags_known() {
        let c = EffectiveConfig::build(
            Flags::parse(&["--config=/c.yaml", "--anonymous-auth=false"]),
            Some(ConfigInput {
                path: "/c.yaml".into(),
                text: Ok("apiVersion: [unclosed\n".into()),
            }),
            None,
            vec![],
            None,
        );
        assert!(matches!(c.get("readOnlyPort"), Lookup::Unknown { .. }));
        assert_eq!(
            known(&c, "authentication.anonymous.enabled").value,
            json!(false)
        );
    }

    #[test]
    fn json_config_and_kind_checks() {
        let c = EffectiveConfig::build(
            Flags::parse(&["--config", "/c.json"]),
            Some(ConfigInput {
                path: "/c.json".into(),
                text: Ok(r#"{"kind":"KubeletConfiguration","apiVersion":"kubelet.config.k8s.io/v1beta1","readOnlyPort":0,"featureGates":{"RotateKubeletServerCertificate":true}}"#.into()),
            }),
            None,
            vec![],
            None,
        );
        assert_eq!(known(&c, "readOnlyPort").value, json!(0));
        assert_eq!(
            c.feature_gate("RotateKubeletServerCertificate")
                .unwrap()
                .map(|g| g.0),
            Some(true)
        );
        assert!(parse_document("kind: Pod\napiVersion: v1\n").is_err());
        assert!(parse_document("kind: KubeletConfiguration\n").is_err());
    }

    #[test]
    fn feature_gates_merge_flag_over_file() {
        let c = EffectiveConfig::build(
            Flags::parse(&["--config=/c.yaml", "--feature-gates=B=false"]),
            Some(input("/c.yaml", "featureGates:\n  A: true\n  B: true\n")),
            None,
            vec![],
            None,
        );
        assert_eq!(
            known(&c, "featureGates").value,
            json!({"A": true, "B": false})
        );
        assert_eq!(c.feature_gate("A").unwrap().map(|g| g.0), Some(true));
        assert_eq!(c.feature_gate("B").unwrap().map(|g| g.0), Some(false));
    }

    #[test]
    fn wrong_type_is_unknown() {
        let c = EffectiveConfig::build(
            Flags::parse(&["--config=/c.yaml"]),
            Some(input("/c.yaml", "readOnlyPort: \"0\"\n")),
            None,
            vec![],
            None,
        );
        assert!(matches!(c.get("readOnlyPort"), Lookup::Unknown { .. }));
    }
}
