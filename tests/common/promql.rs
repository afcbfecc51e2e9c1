//! A small PromQL tokenizer, enough to find the vector selectors of an expression (metric
//! name and `label op "value"` matchers) and the Grafana variables it uses. Shared by the
//! alert-rule and dashboard contracts (`tests/alerts_contract.rs`,
//! `tests/dashboards_contract.rs`).
//!
//! Not mistaken for metrics: functions and aggregations (`rate(...)`, `max by (x) (...)`),
//! the label lists of `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`,
//! operators and modifiers (`and`, `unless`, `bool`, `offset`, ...), numbers and durations,
//! range and subquery brackets, and whatever is inside a string.

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// A string literal's content, escapes kept as written (`\"` stays two characters).
    Str(String),
    /// A number or a duration (`5m`, `1h30m`, `1e3`, `0x1f`).
    Num(String),
    /// A Grafana variable or macro: `$name`, `${name}`, `${name:format}`.
    Var(String),
    Punct(String),
}

pub fn tokenize(expr: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let s = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':'))
            {
                i += 1;
            }
            toks.push(Tok::Ident(chars[s..i].iter().collect()));
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let s = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            toks.push(Tok::Num(chars[s..i].iter().collect()));
        } else if c == '$' {
            let (name, next) = variable(&chars, i)?;
            toks.push(Tok::Var(name));
            i = next;
        } else if matches!(c, '"' | '\'' | '`') {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err(format!("unterminated string in {expr}"));
                };
                i += 1;
                if ch == c {
                    break;
                }
                if ch == '\\' && c != '`' {
                    if let Some(&esc) = chars.get(i) {
                        s.push('\\');
                        s.push(esc);
                        i += 1;
                    }
                } else {
                    s.push(ch);
                }
            }
            toks.push(Tok::Str(s));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if matches!(two.as_str(), "=~" | "!~" | "!=" | "==" | ">=" | "<=") {
                toks.push(Tok::Punct(two));
                i += 2;
            } else if "(){}[],=<>+-*/%^@".contains(c) {
                toks.push(Tok::Punct(c.to_string()));
                i += 1;
            } else {
                return Err(format!("unexpected {c:?} in {expr}"));
            }
        }
    }
    Ok(toks)
}

/// `$name` or `${name}` / `${name:format}` at `chars[i]`: the name and the index after it.
fn variable(chars: &[char], i: usize) -> Result<(String, usize), String> {
    let ident = |from: usize| {
        let mut j = from;
        while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        (chars[from..j].iter().collect::<String>(), j)
    };
    if chars.get(i + 1) == Some(&'{') {
        let (name, j) = ident(i + 2);
        let close = chars[j..]
            .iter()
            .position(|&c| c == '}')
            .ok_or("unterminated ${")?;
        Ok((name, j + close + 1))
    } else {
        let (name, j) = ident(i + 1);
        if name.is_empty() {
            return Err("a lone $".to_string());
        }
        Ok((name, j))
    }
}

/// Every Grafana variable referenced in an expression, inside strings too.
pub fn variables_in(expr: &str) -> Result<BTreeSet<String>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' {
            let (name, next) = variable(&chars, i)?;
            out.insert(name);
            i = next;
        } else {
            i += 1;
        }
    }
    Ok(out)
}

/// One vector selector: the metric name and its `(label, op, value)` matchers.
#[derive(Debug, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<(String, String, String)>,
}

impl Selector {
    /// The label names of the matchers, in order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.matchers.iter().map(|(l, _, _)| l.as_str())
    }
}

/// Aggregation operators: `max by (x) (...)` is not a call of `max` nor a metric `max`.
pub const AGGREGATORS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Keywords followed by a parenthesised list of label names.
pub const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Binary operators, modifiers and literals spelt as identifiers (case-insensitive).
pub const KEYWORDS: [&str; 8] = [
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

/// The vector selectors of an expression, in order. An error for what cannot be read: an
/// unterminated string, a stray character, a selector without a metric name, malformed
/// matchers.
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    Ok(spans(&tokenize(expr)?, expr)?
        .into_iter()
        .map(|(s, _, _)| s)
        .collect())
}

/// How an expression reads each selector of `metric`: for every one, whether its value is
/// used in a way that means the same whether the series of states that are not current
/// are absent (the default shape of `kubelet_sentinel_control_status`: one series per
/// control, value 1) or present with value 0 (`--metrics-control-states all`). Crude, on
/// purpose, and on the safe side: a selector counts as read in both shapes only when
/// - it is compared directly, `selector == 1` (not `== bool 1`, not `!= 0`), or
/// - it is the whole argument of a `sum`: `sum(selector)`, `sum by (l) (selector)`,
///   `sum without (l) (selector)` (0s add nothing).
///
/// Anything else (`count(selector)`, `max(selector)`, `selector > 0`, `selector * 2`, an
/// `and`/`unless` operand without `== 1`) is reported as not read in both shapes, with
/// the metric's matchers, so the contract tests can name it.
pub fn shape_safe_reads(expr: &str, metric: &str) -> Result<Vec<(Selector, bool)>, String> {
    let toks = tokenize(expr)?;
    let punct = |j: usize, p: &str| matches!(toks.get(j), Some(Tok::Punct(q)) if q == p);
    let ident = |j: usize, w: &str| matches!(toks.get(j), Some(Tok::Ident(q)) if q == w);
    let mut out = Vec::new();
    for (sel, start, end) in spans(&toks, expr)? {
        if sel.metric != metric {
            continue;
        }
        let compared =
            punct(end, "==") && matches!(toks.get(end + 1), Some(Tok::Num(n)) if n == "1");
        // `sum (` selector `)` or `sum by|without ( labels ) (` selector `)`.
        let summed = start >= 2 && punct(start - 1, "(") && punct(end, ")") && {
            let before = start - 2;
            ident(before, "sum")
                || (punct(before, ")") && {
                    // Back over the label list to its `(`, then `by`/`without`, then `sum`.
                    let open = (0..before).rev().find(|&j| punct(j, "("));
                    open.is_some_and(|o| {
                        o >= 2
                            && (ident(o - 1, "by") || ident(o - 1, "without"))
                            && ident(o - 2, "sum")
                    })
                })
        };
        out.push((sel, compared || summed));
    }
    Ok(out)
}

/// The selectors of a token stream with the index of their first token (the metric name)
/// and the index just after them (after the closing `}` when they have matchers).
fn spans(toks: &[Tok], expr: &str) -> Result<Vec<(Selector, usize, usize)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    let ident_at = |j: usize| match toks.get(j) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    };
    let punct_at = |j: usize, p: &str| matches!(toks.get(j), Some(Tok::Punct(q)) if q == p);
    while i < toks.len() {
        match &toks[i] {
            Tok::Ident(id) if LABEL_LISTS.contains(&id.as_str()) => {
                i += 1;
                if punct_at(i, "(") {
                    while i < toks.len() && !punct_at(i, ")") {
                        i += 1;
                    }
                    i += 1;
                }
            }
            // A function or an aggregation: its arguments follow.
            Tok::Ident(_) if punct_at(i + 1, "(") => i += 1,
            Tok::Ident(id)
                if AGGREGATORS.contains(&id.as_str())
                    && matches!(ident_at(i + 1), Some("by" | "without")) =>
            {
                i += 1;
            }
            Tok::Ident(id) if KEYWORDS.contains(&id.to_ascii_lowercase().as_str()) => i += 1,
            Tok::Ident(id) => {
                let start = i;
                let mut sel = Selector {
                    metric: id.clone(),
                    matchers: Vec::new(),
                };
                i += 1;
                if punct_at(i, "{") {
                    i = matchers(toks, i + 1, &mut sel.matchers, expr)?;
                }
                out.push((sel, start, i));
            }
            Tok::Punct(p) if p == "{" => {
                return Err(format!("a selector without a metric name in {expr}"));
            }
            Tok::Punct(p) if p == "[" => {
                // A range or subquery duration: [5m], [$__rate_interval], [1h:5m].
                while i < toks.len() && !punct_at(i, "]") {
                    i += 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(out)
}

/// Parse `label op "value", …}` from `toks[i]`; returns the index after the `}`.
fn matchers(
    toks: &[Tok],
    mut i: usize,
    out: &mut Vec<(String, String, String)>,
    expr: &str,
) -> Result<usize, String> {
    loop {
        match (toks.get(i), toks.get(i + 1), toks.get(i + 2)) {
            (Some(Tok::Punct(p)), _, _) if p == "}" => return Ok(i + 1),
            (Some(Tok::Punct(p)), _, _) if p == "," => i += 1,
            (Some(Tok::Ident(l)), Some(Tok::Punct(op)), Some(Tok::Str(v)))
                if matches!(op.as_str(), "=" | "!=" | "=~" | "!~") =>
            {
                out.push((l.clone(), op.clone(), v.clone()));
                i += 3;
            }
            _ => {
                return Err(format!(
                    "cannot read the label matchers at token {i} of {expr}"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(l: &str, op: &str, v: &str) -> (String, String, String) {
        (l.into(), op.into(), v.into())
    }

    #[test]
    fn tokenizer_finds_metric_names_and_matchers() {
        let s = selectors(
            r#"sum by (node) (increase(kubelet_sentinel_config_changes_total{cluster=~"$cluster", node=~"$node"}[$__rate_interval])) / on (node) group_left (x) max without (a, b) (foo:bar{a!="x,}y"}) or vector(0) > bool 1"#,
        )
        .unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(names, ["kubelet_sentinel_config_changes_total", "foo:bar"]);
        assert_eq!(
            s[0].matchers,
            [m("cluster", "=~", "$cluster"), m("node", "=~", "$node")]
        );
        assert_eq!(s[1].matchers, [m("a", "!=", "x,}y")]);

        let s = selectors(
            r#"up{cluster=~"$cluster"} * on (instance, job) group_left (node) group by (instance, job, node) (kubelet_sentinel_build_info{node="n"})"#,
        )
        .unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(names, ["up", "kubelet_sentinel_build_info"]);

        let s = selectors(
            r#"count by (version) (label_replace(m{a="1"}, "version", "unknown", "version", "")) * 2 - time()"#,
        )
        .unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].metric, "m");

        assert!(selectors(r#"{__name__="x"}"#).is_err());
        assert!(selectors(r#"x{a="b}"#).is_err());
        assert_eq!(
            variables_in(r#"x{a=~"$cluster", b="${node:regex}"}[$__range]"#).unwrap(),
            BTreeSet::from(["cluster".into(), "node".into(), "__range".into()])
        );
    }

    #[test]
    fn the_selector_parser_finds_metrics_and_labels() {
        let got = selectors(
            "(max by (node) (rate(a_total{x=\"y,z\", w!~\"a|b\"}[5m])) - time() > 3 * 86400) \
             unless on (node) group_left (t) up{job=\"j\"} == 0",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                Selector {
                    metric: "a_total".into(),
                    matchers: vec![m("x", "=", "y,z"), m("w", "!~", "a|b")],
                },
                Selector {
                    metric: "up".into(),
                    matchers: vec![m("job", "=", "j")],
                },
            ]
        );
        let labels: Vec<&str> = got[0].labels().collect();
        assert_eq!(labels, ["x", "w"]);
    }

    #[test]
    fn reads_that_mean_the_same_in_both_shapes_are_told_apart() {
        let m = "kubelet_sentinel_control_status";
        let reads = |expr: &str| -> Vec<bool> {
            shape_safe_reads(expr, m)
                .unwrap()
                .into_iter()
                .map(|(_, ok)| ok)
                .collect()
        };
        // Read in both shapes.
        assert_eq!(reads(&format!("{m}{{status=\"fail\"}} == 1")), [true]);
        assert_eq!(reads(&format!("({m}{{a=\"b\"}} == 1) * 4")), [true]);
        assert_eq!(
            reads(&format!("sum({m}{{status=\"pass\"}}) or vector(0)")),
            [true]
        );
        assert_eq!(reads(&format!("sum by (node) ({m})")), [true]);
        assert_eq!(
            reads(&format!("sum without (status, x) ({m}{{s=\"f\"}})")),
            [true]
        );
        assert_eq!(reads(&format!("sum({m}{{s=\"f\"}}) by (node)")), [true]);
        assert_eq!(
            reads(&format!("count by (node, status) ({m} == 1) / sum({m})")),
            [true, true]
        );
        // Not: 0-valued series of the full StateSet would count, match or be kept.
        assert_eq!(reads(&format!("count({m}{{status=\"fail\"}})")), [false]);
        assert_eq!(reads(&format!("count by (node) ({m})")), [false]);
        assert_eq!(reads(&format!("max by (control) ({m})")), [false]);
        assert_eq!(reads(&format!("{m} > 0")), [false]);
        assert_eq!(reads(&format!("{m} == bool 1")), [false]);
        assert_eq!(reads(&format!("{m} == 2")), [false]);
        assert_eq!(
            reads(&format!("x unless on (node) {m}{{s=\"f\"}}")),
            [false]
        );
        assert_eq!(reads(&format!("sum({m} * 2)")), [false]);
        assert_eq!(reads(&format!("sum by (node) (rate({m}[5m]))")), [false]);
        // Other metrics are not looked at; a mixed expression reports each read.
        assert!(reads("sum(other) / count(other)").is_empty());
        assert_eq!(
            reads(&format!("sum({m}{{s=\"pass\"}}) / count({m})")),
            [true, false]
        );
        let got = shape_safe_reads(&format!("count({m}{{status=\"fail\"}})"), m).unwrap();
        assert_eq!(got[0].0.matchers, [super::tests::m("status", "=", "fail")]);
    }

    #[test]
    fn strings_comments_numbers_and_modifiers_are_not_metrics() {
        // A metric-looking word inside a string, a comment, offset/@ modifiers, a subquery.
        let s = selectors(
            "label_replace(a{b=\"not_a_metric{x=\\\"y\\\"}\"}, \"c\", 'd e', `f`, \"\") # g_total\n\
             + max_over_time(h[1h:5m] offset 1d) + i @ 1609746000 + 1e3 + 0x1f + Inf + NaN",
        )
        .unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(names, ["a", "h", "i"]);
        assert_eq!(s[0].matchers, [m("b", "=", "not_a_metric{x=\\\"y\\\"}")]);
        assert!(selectors("a{b=\"c\"").is_err());
        assert!(selectors("a ! b").is_err());
        assert!(selectors("\"unterminated").is_err());
    }
}
