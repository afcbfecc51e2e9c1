//! The drop-in's document and text: settings merged as the kubelet merges drop-ins, and
//! written with a comment naming the control(s) above each.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::model::kubelet_config::effective::{get_path, set_path};

/// Set `path` in `doc` to `v`; a map value is merged into a map already there (RFC 7386,
/// as the kubelet merges drop-ins).
pub(super) fn set_merged(doc: &mut Value, path: &[String], v: &Value) {
    let merged = match (get_path(doc, path), v) {
        (Some(Value::Object(have)), Value::Object(add)) => {
            let mut m = have.clone();
            m.extend(add.iter().map(|(k, x)| (k.clone(), x.clone())));
            Value::Object(m)
        }
        _ => v.clone(),
    };
    set_path(doc, path, merged);
}

/// The drop-in's text: a header, the type meta, and each setting under a comment naming
/// its control(s). Values are written as JSON (valid YAML flow scalars), so every type
/// survives exactly; zero values are written explicitly.
pub fn render_dropin(
    doc: &Value,
    comments: &BTreeMap<Vec<String>, Vec<String>>,
    node: &str,
) -> String {
    let mut out = format!(
        "# Written by kubelet-sentinel fix for node {node}: only the settings that must change,\n\
         # each under the control(s) it is for. The kubelet merges --config-dir drop-ins in\n\
         # file-name order after its --config file; a later drop-in or a flag still wins.\n\
         apiVersion: kubelet.config.k8s.io/v1beta1\n\
         kind: KubeletConfiguration\n"
    );
    if let Value::Object(o) = doc {
        emit(o, 0, &mut Vec::new(), comments, &mut out);
    }
    out
}

fn emit(
    o: &Map<String, Value>,
    indent: usize,
    path: &mut Vec<String>,
    comments: &BTreeMap<Vec<String>, Vec<String>>,
    out: &mut String,
) {
    let pad = " ".repeat(indent);
    for (k, v) in o {
        path.push(k.clone());
        if let Some(ids) = comments.get(path.as_slice()) {
            out.push_str(&format!("{pad}# {}\n", ids.join(", ")));
        }
        let key = yaml_key(k);
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push_str(&format!("{pad}{key}:\n"));
                emit(m, indent + 2, path, comments, out);
            }
            other => out.push_str(&format!("{pad}{key}: {other}\n")),
        }
        path.pop();
    }
}

fn yaml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        && !k.starts_with(['-', '.'])
    {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}
