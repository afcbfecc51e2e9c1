//! The documents of a kubelet configuration as JSON: parsing a `KubeletConfiguration`
//! (YAML or JSON) and a drop-in, checking its type meta, and the JSON merge-patch and
//! path operations the loading rules are made of.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Source;
use crate::model::kubelet_config::flags::FlagValue;
use crate::model::kubelet_config::settings::{parse_go_duration, SettingDef, SettingKind};
use crate::model::parse::ParseFault;

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
pub(super) fn parse_dropin(text: &str) -> Result<(Value, Option<String>), String> {
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

pub(super) fn parse_any_kind(text: &str) -> Result<Value, String> {
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
pub(super) fn check_type_meta(value: &Value) -> Result<(), String> {
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

/// Set `v` at `path`, creating objects along the way (a scalar in the way is replaced by
/// an object).
pub fn set_path(doc: &mut Value, path: &[String], v: Value) {
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
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Value::Object(o) = cur {
        o.insert(last.clone(), v);
    }
}

/// Remove `apiVersion`/`kind` so they don't take part in merging or provenance.
pub(super) fn strip_type_meta(doc: &mut Value) {
    if let Value::Object(o) = doc {
        o.remove("apiVersion");
        o.remove("kind");
    }
}

/// The value at `path`, if every step is an object that has it.
pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

pub(super) fn record_leaves(
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

pub(super) fn remove_prov_under(prov: &mut BTreeMap<Vec<String>, Source>, path: &[String]) {
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
pub(super) fn merge_patch(
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
pub(super) fn check_kind(def: &SettingDef, v: &Value) -> Result<(), String> {
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
pub(super) fn flag_to_json(def: &SettingDef, v: FlagValue) -> Result<Value, String> {
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
