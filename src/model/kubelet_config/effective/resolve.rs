//! How the files and defaults give one setting's value under one minor's loading rules.

use serde_json::Value;

use super::*;

impl EffectiveConfig {
    /// The value the files and defaults give under one minor's loading rules.
    pub(super) fn resolve_files(&self, def: &SettingDef, rules: Rules) -> Lookup {
        match self.resolve_files_inner(def, rules) {
            Ok(s) => Lookup::Known(s),
            Err(reason) => Lookup::Unknown { reason },
        }
    }

    pub(super) fn resolve_files_inner(
        &self,
        def: &SettingDef,
        rules: Rules,
    ) -> Result<Setting, String> {
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
        let path: Vec<String> = def
            .path
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
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
        let path: Vec<String> = def
            .path
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
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
        let default = crate::model::kubelet_config::settings::default_eviction_hard();
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
}
