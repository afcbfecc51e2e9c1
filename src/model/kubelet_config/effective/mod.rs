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

mod document;
mod refusal;
mod resolve;
#[cfg(test)]
mod tests;

pub use document::{authorizer_types, get_path, parse_document, set_path};
use document::{
    check_kind, flag_to_json, merge_patch, parse_dropin, record_leaves, strip_type_meta,
};

use super::flags::{FlagValue, Flags};
use super::loading::{self, DropinMerge, Rules, NEWEST_KNOWN_MINOR};
use super::settings::{setting, SettingDef, SettingKind};

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A built-in default. `flags_only` tells which default table applied.
    Default {
        /// True: the flags-only defaults (no `--config`: v1beta1 defaults plus
        /// `applyLegacyDefaults`); false: the v1beta1 defaults a `--config` file is
        /// decoded with.
        flags_only: bool,
    },
    /// The `--config` file.
    ConfigFile {
        /// Its host path, as in [`ConfigInput::path`].
        path: String,
    },
    /// A drop-in under `--config-dir`.
    DropIn {
        /// The drop-in's host path, as in [`ConfigInput::path`].
        path: String,
    },
    /// The command line.
    Flag {
        /// The flag's name without the leading `--` (e.g. `anonymous-auth`).
        flag: String,
        /// Where the flag itself comes from, when that is known and matters (k3s/RKE2:
        /// `k3s default`, `config.yaml.d/50-x.yaml`, `--kubelet-arg`): shown by
        /// [`Source::describe`], not part of [`Source::label`] (the drift fingerprint).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<String>,
    },
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
    /// `flag --anonymous-auth`, `flag --read-only-port (k3s default)`.
    pub fn describe(&self) -> String {
        match self {
            Source::Default { flags_only: true } => "default (flags-only mode)".to_string(),
            Source::Default { flags_only: false } => "default (v1beta1, --config mode)".to_string(),
            Source::ConfigFile { path } => format!("config-file {path}"),
            Source::DropIn { path } => format!("drop-in {path}"),
            Source::Flag { flag, origin: None } => format!("flag --{flag}"),
            Source::Flag {
                flag,
                origin: Some(o),
            } => format!("flag --{flag} ({o})"),
        }
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A file the configuration was read from, and what happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfigInput {
    /// The file's host path. `observe` makes it absolute: a relative flag value is joined
    /// to the kubelet's working directory, as `loadConfigFile` does.
    pub path: String,
    /// `Ok(text)` or the read error's message.
    pub text: Result<String, String>,
}

/// An effective setting with its provenance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Setting {
    /// The value in the JSON shape of the v1beta1 `KubeletConfiguration` field: a bool,
    /// an integer, a string (durations as written, e.g. `"2m0s"`), a list or a map.
    pub value: Value,
    /// Which layer decided the value: a default, the `--config` file, a drop-in, or a flag.
    pub source: Source,
    /// Extra explanation (e.g. "0s in the file means the default").
    pub note: Option<String>,
}

/// The result of looking a setting up.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Lookup {
    /// The value the kubelet runs with, and where it came from.
    Known(Setting),
    /// The value cannot be decided; the reason says why (parse error, unreadable file).
    Unknown {
        /// Why, in words, for the control's `unknown` result.
        reason: String,
    },
}

impl Lookup {
    /// The setting when its value is known; `None` for [`Lookup::Unknown`].
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
    /// Host path of the `--config` file (as in [`ConfigInput::path`]); `None` without
    /// `--config`.
    pub config_file: Option<String>,
    /// Host path of the `--config-dir` directory (made absolute like the `--config` path);
    /// `None` without `--config-dir`.
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
    /// Where each flag comes from, by flag name (the last occurrence's, which wins), for
    /// [`Source::Flag::origin`]: filled for k3s/RKE2, whose flags are built from several
    /// files (model/k3s.rs).
    #[serde(skip)]
    pub flag_origins: BTreeMap<String, String>,
    /// Flags that may or may not be on the command line, by name, with the reason (k3s
    /// whose release is unknown: `--read-only-port=0` is passed from 1.32.4 but not by
    /// 1.32.0–1.32.3). A setting such a flag would decide is unknown unless the flag is
    /// seen.
    #[serde(skip)]
    pub undecided_flags: BTreeMap<String, String>,
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
            flag_origins: BTreeMap::new(),
            undecided_flags: BTreeMap::new(),
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
        if cfg.errors.is_empty() {
            cfg.default_eviction_hard();
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

    /// `loadConfigFile` defaults a nil `evictionHard` of a `--config` file (not the
    /// flags-only object), before the drop-ins are merged into it.
    fn default_eviction_hard(&mut self) {
        if self.flags_only_base {
            return;
        }
        if let Value::Object(o) = &mut self.merged {
            if !o.contains_key("evictionHard") || o.get("evictionHard") == Some(&Value::Null) {
                let default = super::settings::default_eviction_hard();
                let src = Source::Default { flags_only: false };
                record_leaves(
                    &default,
                    &mut vec!["evictionHard".to_string()],
                    &src,
                    &mut self.provenance,
                );
                o.insert("evictionHard".to_string(), default);
            }
        }
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
        if flag_value.is_none() {
            if let Some((name, reason)) = def
                .flag
                .and_then(|n| self.undecided_flags.get(n).map(|r| (n, r)))
            {
                return Lookup::Unknown {
                    reason: format!("whether --{name} is on the command line is unknown: {reason}"),
                };
            }
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
                        source: self.flag_source(name),
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
                    source = self.flag_source(name);
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
                return Ok(Some((*b, self.flag_source("feature-gates"))));
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

    /// The source of a value set by flag `name`, with the flag's origin when known.
    fn flag_source(&self, name: &str) -> Source {
        Source::Flag {
            flag: name.to_string(),
            origin: self.flag_origins.get(name).cloned(),
        }
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

impl EffectiveConfig {
    /// The configuration the kubelet would load after a change (the in-memory proof of
    /// `kubelet-sentinel fix`): the same `--config` document and drop-ins as parsed, with
    /// `flags` as the command line and `extra` as one more drop-in under `--config-dir`,
    /// merged at its `filepath.WalkDir` position (entries in lexical order per directory,
    /// a directory's entries where the directory sorts; cmd/kubelet/app/server.go
    /// `mergeKubeletConfigurations`). A drop-in already at `extra`'s path is replaced.
    /// Errors of the original load (unreadable files, parse errors) are kept: what could
    /// not be read before cannot be known after.
    pub fn rebuilt_with(&self, flags: Flags, extra: Option<ConfigInput>) -> EffectiveConfig {
        // Everything the load found stays (paths, errors, the version, notes); what the
        // files and flags decide is merged again below.
        let mut cfg = self.clone();
        cfg.merged = Value::Object(Map::new());
        cfg.provenance = BTreeMap::new();
        cfg.dropins = Vec::new();
        cfg.dropin_docs = Vec::new();
        cfg.flags = flags;
        if let (Some(doc), Some(path)) = (&self.config_doc, &self.config_file) {
            let src = Source::ConfigFile { path: path.clone() };
            record_leaves(doc, &mut Vec::new(), &src, &mut cfg.provenance);
            cfg.merged = doc.clone();
        }
        // As in `build`: the evictionHard default of `loadConfigFile`.
        if self.errors.is_empty() {
            cfg.default_eviction_hard();
        }
        let mut docs: Vec<(String, Value)> = self.dropin_docs.clone();
        if let Some(input) = extra {
            docs.retain(|(p, _)| *p != input.path);
            cfg.dropin_kind_errors
                .retain(|e| !e.starts_with(&format!("drop-in {}:", input.path)));
            match input.text.and_then(|t| parse_dropin(&t)) {
                Ok((mut patch, kind_error)) => {
                    if let Some(e) = kind_error {
                        cfg.dropin_kind_errors
                            .push(format!("drop-in {}: {e}", input.path));
                    }
                    strip_type_meta(&mut patch);
                    let dir = self.config_dir.as_deref().unwrap_or("");
                    let key = walk_key(dir, &input.path);
                    let at = docs
                        .iter()
                        .position(|(p, _)| walk_key(dir, p) > key)
                        .unwrap_or(docs.len());
                    docs.insert(at, (input.path, patch));
                }
                Err(e) => cfg.errors.push(format!("drop-in {}: {e}", input.path)),
            }
        }
        for (path, patch) in docs {
            let src = Source::DropIn { path: path.clone() };
            merge_patch(
                &mut cfg.merged,
                &patch,
                &mut Vec::new(),
                &src,
                &mut cfg.provenance,
            );
            cfg.dropins.push(path.clone());
            cfg.dropin_docs.push((path, patch));
        }
        cfg
    }

    /// The drop-in at `path` as it was parsed (type meta removed), if it was applied.
    pub fn dropin_doc(&self, path: &str) -> Option<&Value> {
        self.dropin_docs
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, d)| d)
    }
}

/// The order `filepath.WalkDir` visits a file under `dir` in: its path components below
/// `dir`, compared component by component (lexical per directory).
fn walk_key<'a>(dir: &str, path: &'a str) -> Vec<&'a str> {
    let rel = path
        .strip_prefix(dir.trim_end_matches('/'))
        .unwrap_or(path)
        .trim_start_matches('/');
    rel.split('/').filter(|c| !c.is_empty()).collect()
}
