//! The recording rules of the alert rules' single source, `alerts/kubelet-sentinel.rules.yaml`:
//! each rule's group, recorded name, expression, and the labels of the series it records.
//! Shared by the alert-rule and dashboard contracts (`tests/alerts_contract.rs`,
//! `tests/dashboards_contract.rs`): the fleet dashboard and the fleet alerts read only these
//! recorded series, with the labels they carry.

use std::collections::BTreeSet;
use std::path::Path;

use super::promql::{tokenize, Tok};

pub const SOURCE: &str = "alerts/kubelet-sentinel.rules.yaml";

/// One recording rule.
#[derive(Debug)]
pub struct Recorded {
    pub group: String,
    pub name: String,
    pub expr: String,
    /// The labels of the recorded series: the grouping of the expression's outermost
    /// aggregation ([`outer_grouping`]).
    pub labels: BTreeSet<String>,
}

/// Every recording rule of [`SOURCE`], in file order. Panics on a rule whose labels
/// cannot be read from its expression (write it with an outermost `... by (labels)`).
pub fn recording_rules() -> Vec<Recorded> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SOURCE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let doc: serde_json::Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let mut out = Vec::new();
    for g in doc["groups"].as_array().expect("groups") {
        let group = g["name"].as_str().expect("group name").to_string();
        for r in g["rules"].as_array().expect("rules") {
            let Some(name) = r["record"].as_str() else {
                continue;
            };
            let expr = r["expr"].as_str().expect("expr").to_string();
            let labels = outer_grouping(&expr).unwrap_or_else(|e| panic!("{name}: {e}"));
            out.push(Recorded {
                group: group.clone(),
                name: name.to_string(),
                expr,
                labels,
            });
        }
    }
    out
}

/// The label list of the first `by (...)` outside every parenthesis: the grouping of the
/// outermost aggregation, which names the labels of the result (a division or an `or`
/// after it keeps the left-hand side's labels). An error when there is none, or when a
/// `without` (whose result's labels depend on the input) comes first.
pub fn outer_grouping(expr: &str) -> Result<BTreeSet<String>, String> {
    let toks = tokenize(expr)?;
    let mut depth = 0i32;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Punct(p) if p == "(" => depth += 1,
            Tok::Punct(p) if p == ")" => depth -= 1,
            Tok::Ident(id) if depth == 0 && id == "without" => {
                return Err(format!("outermost aggregation uses `without`: {expr}"));
            }
            Tok::Ident(id) if depth == 0 && id == "by" => {
                let mut labels = BTreeSet::new();
                if !matches!(toks.get(i + 1), Some(Tok::Punct(p)) if p == "(") {
                    return Err(format!("`by` without a label list: {expr}"));
                }
                for t in &toks[i + 2..] {
                    match t {
                        Tok::Ident(l) => {
                            labels.insert(l.clone());
                        }
                        Tok::Punct(p) if p == "," => {}
                        Tok::Punct(p) if p == ")" => return Ok(labels),
                        other => return Err(format!("{other:?} in a `by` list: {expr}")),
                    }
                }
                return Err(format!("unterminated `by` list: {expr}"));
            }
            _ => {}
        }
        i += 1;
    }
    Err(format!("no outermost `by (...)` aggregation: {expr}"))
}
