//! An effective kubelet setting as a control reads it: looked up (`known`,
//! `with_setting`), typed (`bool_of`, `int_of`, ...), and shown to humans with where it
//! came from (`render`, `provenance`, `because`).

use serde_json::Value;

use super::{Ctx, Outcome};
use crate::model::kubelet_config::{Lookup, Setting};

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

/// A reason suffix describing where a value came from, with any note.
pub fn provenance(s: &Setting) -> String {
    match &s.note {
        Some(n) => format!("{}; {n}", s.source.describe()),
        None => s.source.describe(),
    }
}

/// A one-line reason: why, then where the value came from (`provenance`).
pub fn because(why: impl std::fmt::Display, s: &Setting) -> String {
    format!("{why}; from {}", provenance(s))
}

/// Evaluate with an effective setting; an undecidable setting is `unknown` with its reason.
pub fn with_setting(ctx: &Ctx, key: &str, f: impl FnOnce(&Setting) -> Outcome) -> Outcome {
    match ctx.setting(key) {
        Lookup::Known(s) => f(&s),
        Lookup::Unknown { reason } => Outcome::unknown(reason),
    }
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
