//! docs/benchmarks.md's tables say what the code does: for every benchmark, one row per item
//! with whether it is scored and the controls behind it, in the table under the
//! benchmark's heading; and its list of benchmarks names every one this build ships.

use kubelet_sentinel::evaluate::benchmark::{Backing, BENCHMARKS};

#[test]
fn every_item_has_its_row_under_its_benchmark() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/benchmarks.md"))
        .expect("docs/benchmarks.md");
    for b in BENCHMARKS {
        assert!(
            doc.contains(&format!("| `{}` |", b.id)),
            "docs/benchmarks.md does not list {}",
            b.id
        );
        // cis-2.0 shares cis-1.12's table (the same items).
        let table_of = if b.id == "cis-2.0" { "cis-1.12" } else { b.id };
        let start = doc
            .find(&format!("(`{table_of}`)\n"))
            .unwrap_or_else(|| panic!("no table heading for {table_of}"));
        let section = &doc[start..];
        let end = section[1..]
            .find("\n#### ")
            .map_or(section.len(), |i| i + 1);
        let section = &section[..end];
        for i in b.items() {
            let controls = match i.backing {
                Backing::Controls(ids, _) => ids
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                Backing::NotChecked(_) => "—".to_string(),
            };
            let row = format!(
                "| {} | {} | {controls} |",
                i.id,
                if i.scored { "yes" } else { "no" }
            );
            assert!(section.contains(&row), "{}: no row {row:?}", b.id);
        }
        let rows = section
            .lines()
            .filter(|l| l.starts_with("| ") && l.chars().nth(2).is_some_and(|c| c.is_ascii_digit()))
            .count();
        assert_eq!(
            rows,
            b.items().count(),
            "{}: rows for items that do not exist",
            b.id
        );
    }
}
