//! docs/controls.md, generated from the catalogue (`evaluate::catalogue`) and its "passes
//! when" texts (`evaluate::passes_when`), so that the reference cannot drift from the
//! controls (tests/generated_docs.rs compares it with the committed file; `UPDATE_DOCS=1`
//! rewrites it).

use std::fmt::Write as _;

use crate::evaluate::passes_when::passes_when;
use crate::evaluate::{Control, Needs};

/// Text for a Markdown table cell: a `|` would end the cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// What a control needs before it can judge, in the reference's words.
fn needs(n: Needs) -> &'static str {
    match n {
        Needs::Kubelet => "a kubelet process found and read on this node (else `unknown`, with why)",
        Needs::Api => "the Kubernetes API's view, not the kubelet: evaluated even without a kubelet (`unknown` without API access, `not_applicable` with the policy's `cluster_checks: false`)",
        Needs::Nothing => "nothing beforehand: the control says itself what a missing kubelet means",
    }
}

/// docs/controls.md for `controls` (the catalogue, in its order).
pub fn controls_markdown(controls: &[&Control]) -> String {
    let mut out = String::from(
        "# Controls\n\n\
         <!-- Generated from the catalogue (src/publish/controls_doc.rs, from src/evaluate/); \
         do not edit. `UPDATE_DOCS=1 cargo test --test generated_docs` rewrites it. -->\n\n\
         Ids are a public contract (dashboards, alerts and policies use them); they are never \
         renamed. Severity is the default: the policy may change it ([policy.md](policy.md)). \
         CIS refers to the CIS Kubernetes Benchmark 1.12 worker-node section. Each result \
         carries the observed value, its source and a one-line reason; how the kubelet's \
         effective configuration is computed and which controls depend on its version is in \
         [evaluation.md](evaluation.md).\n",
    );

    let mut practices: Vec<&str> = Vec::new();
    for c in controls {
        if !practices.contains(&c.practice) {
            practices.push(c.practice);
        }
    }
    out.push_str("\nThe practices the controls implement:\n\n");
    for p in &practices {
        let _ = writeln!(out, "- {p}");
    }

    out.push_str("\n| id | family | severity | CIS | passes when |\n|---|---|---|---|---|\n");
    for c in controls {
        let _ = writeln!(
            out,
            "| [`{id}`](#{id}) | {} | {} | {} | {} |",
            c.family.as_str(),
            c.severity.as_str(),
            c.cis.unwrap_or(""),
            cell(passes_when(c.id).unwrap_or(c.expected)),
            id = c.id,
        );
    }

    for c in controls {
        let _ = write!(
            out,
            "\n## {id}\n\n{title}\n\n\
             - family: `{family}`, default severity: `{severity}`{cis}\n\
             - practice: {practice}\n\
             - needs: {needs}\n\
             - expected (as reports show it): {expected}\n\
             - passes when: {passes}\n\n\
             Remediation: {remediation}\n",
            id = c.id,
            title = c.title,
            family = c.family.as_str(),
            severity = c.severity.as_str(),
            cis = c.cis.map(|x| format!(", CIS {x}")).unwrap_or_default(),
            practice = c.practice,
            needs = needs(c.needs),
            expected = c.expected,
            passes = passes_when(c.id).unwrap_or(c.expected),
            remediation = c.remediation,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::catalogue;

    #[test]
    fn every_control_has_a_row_and_a_section_with_its_facts() {
        let all = catalogue();
        let md = controls_markdown(&all);
        for c in &all {
            let row = md
                .lines()
                .find(|l| l.starts_with(&format!("| [`{}`](#{}) |", c.id, c.id)))
                .unwrap_or_else(|| panic!("no row for {}", c.id));
            assert!(
                row.contains(&format!("| {} |", c.severity.as_str())),
                "{row}"
            );
            assert!(row.contains(&format!("| {} |", c.family.as_str())), "{row}");
            assert!(
                md.contains(&format!("\n## {}\n\n{}\n", c.id, c.title)),
                "{}",
                c.id
            );
            assert!(md.contains(c.remediation), "{}", c.id);
        }
        // Sections are as many as controls: a heading per control, no more.
        assert_eq!(md.matches("\n## ").count(), all.len());
    }

    #[test]
    fn a_bar_cannot_break_a_row() {
        assert_eq!(cell("a | b\nc"), "a \\| b c");
    }
}
