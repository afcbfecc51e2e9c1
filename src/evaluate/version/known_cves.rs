//! `kubelet-version-no-known-cves`: no kubelet CVE of the embedded table (and the
//! `--cve-feed` file) affects the kubelet's patch release.

use super::cve_table::{cves, Cve, CveOrigin, CveTable};
use super::{observed_version, suffix_note};
use crate::evaluate::cve_feed::CveFeedError;
use crate::evaluate::outcome::{decide, unknown_with};
use crate::evaluate::version::cve_table::UnreadableCve;
use crate::evaluate::{Ctx, Outcome};
use crate::model::version::KubeVersion;

pub(super) fn evaluate_cves(ctx: &Ctx) -> Outcome {
    decide(|| {
        let (v, raw, source) = observed_version(ctx)?;
        let table = match ctx.policy.cve_feed.as_deref() {
            None => cves()?,
            Some(Ok(merged)) => merged,
            // A feed was asked for and is unusable: never judge by the embedded table alone
            // as if nothing were wrong.
            Some(Err(e)) => return Ok(feed_unusable(e, &raw, source)),
        };
        Ok(judge_cves(v, &raw, source, table))
    })
}

/// The verdict when the `--cve-feed` file could not be used.
fn feed_unusable(e: &CveFeedError, raw: &str, source: String) -> Outcome {
    unknown_with(
        raw,
        source,
        format!(
            "{e}; the CVE control is not judged until the feed is readable (or --cve-feed is removed)"
        ),
    )
}

/// What the verdict was judged by, for the reason and the expected value.
fn table_text(table: &CveTable, long: bool) -> String {
    let embedded = if long {
        format!(
            "the embedded table ({} entries, as of {})",
            table
                .cves
                .iter()
                .filter(|c| c.origin == CveOrigin::Embedded)
                .count(),
            table.as_of
        )
    } else {
        format!("table as of {}", table.as_of)
    };
    match &table.feed {
        None => embedded,
        Some(f) => {
            let updated = f
                .updated_at
                .as_deref()
                .map(|u| format!(", updated {u}"))
                .unwrap_or_default();
            if long {
                format!(
                    "{embedded} and the CVE feed {} (items: {}{updated}; kubelet CVEs added from it: {}, without readable versions: {})",
                    f.path,
                    f.items,
                    f.added,
                    table.unreadable.len()
                )
            } else {
                format!("{embedded} + CVE feed {}{updated}", f.path)
            }
        }
    }
}

/// How a CVE entry names its announcement in a reason.
fn cited(c: &Cve) -> String {
    match (c.origin, c.source.is_empty()) {
        (CveOrigin::Embedded, _) => String::new(),
        (CveOrigin::Feed, true) => "; from the CVE feed".to_string(),
        (CveOrigin::Feed, false) => format!("; from the CVE feed: {}", c.source),
    }
}

fn unreadable_text(u: &UnreadableCve) -> String {
    let source = if u.source.is_empty() {
        String::new()
    } else {
        format!(", {}", u.source)
    };
    format!("{} ({}{source})", u.id, u.why)
}

/// The CVE verdict for a version (the agent observes Linux nodes: Windows-only entries
/// never count). Kubelet CVEs of a `--cve-feed` file whose versions could not be read are
/// never passed over: with nothing else failing they make the verdict `unknown`.
fn judge_cves(v: KubeVersion, raw: &str, source: String, table: &CveTable) -> Outcome {
    let hits = table.affecting(v);
    let counted: Vec<&Cve> = hits
        .iter()
        .copied()
        .filter(|c| !c.windows_only && c.has_fix())
        .collect();
    let mut windows: Vec<String> = hits
        .iter()
        .filter(|c| c.windows_only)
        .map(|c| c.id.clone())
        .collect();
    windows.extend(
        table
            .unreadable
            .iter()
            .filter(|u| u.windows_only)
            .map(|u| format!("{} (CVE feed, versions unreadable)", u.id)),
    );
    let unreadable: Vec<&UnreadableCve> = table
        .unreadable
        .iter()
        .filter(|u| !u.windows_only)
        .collect();
    let unfixable: Vec<String> = hits
        .iter()
        .filter(|c| !c.windows_only && !c.has_fix())
        .map(|c| match &c.mitigation {
            Some(m) => format!("{} (no upstream fix; mitigate: {m}{})", c.id, cited(c)),
            None => format!("{} (no upstream fix{})", c.id, cited(c)),
        })
        .collect();
    let mut notes = Vec::new();
    if !unreadable.is_empty() && !counted.is_empty() {
        notes.push(format!(
            "also listed in the CVE feed with affected versions that could not be read: {}",
            unreadable
                .iter()
                .map(|u| unreadable_text(u))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if !windows.is_empty() {
        notes.push(format!(
            "skipped (Windows-only, this is a Linux node): {}",
            windows.join(", ")
        ));
    }
    if !unfixable.is_empty() {
        notes.push(format!(
            "informational, not counted: {}",
            unfixable.join("; ")
        ));
    }
    if let Some(n) = suffix_note(raw, v) {
        notes.push(n);
    }
    let notes: String = notes.iter().map(|n| format!("; {n}")).collect();
    let expected = format!(
        "no known kubelet CVE affects this version ({}; Windows-only and unfixable CVEs are listed, not counted)",
        table_text(table, false)
    );
    // The feed decides the verdict: say so where the verdict's source is shown.
    let from_feed = counted.iter().any(|c| c.origin == CveOrigin::Feed) || !unreadable.is_empty();
    let source = match &table.feed {
        Some(f) if from_feed => format!("{source}; cve-feed {}", f.path),
        _ => source,
    };
    let out = if !counted.is_empty() {
        let detail = counted
            .iter()
            .map(|c| {
                let fix = match c.fix_on_branch(v) {
                    Some(f) if f > v => format!("fixed in {f}"),
                    _ => format!(
                        "no fix on the {} branch; fixed in {}",
                        v.minor_of(),
                        c.fixed
                            .iter()
                            .map(KubeVersion::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                format!("{} ({}; {fix}{})", c.id, c.summary, cited(c))
            })
            .collect::<Vec<_>>()
            .join("; ");
        Outcome::fail(
            counted
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            source,
            format!(
                "{raw} is affected by {} known kubelet CVE{}: {detail}{notes}",
                counted.len(),
                if counted.len() == 1 { "" } else { "s" }
            ),
        )
    } else if !unreadable.is_empty() {
        unknown_with(
            unreadable
                .iter()
                .map(|u| u.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            source,
            format!(
                "no kubelet CVE with readable versions in {} affects {raw}, but the CVE feed lists {} kubelet CVE{} whose affected versions could not be read: {}; check {} against the announcement{notes}",
                table_text(table, true),
                unreadable.len(),
                if unreadable.len() == 1 { "" } else { "s" },
                unreadable
                    .iter()
                    .map(|u| unreadable_text(u))
                    .collect::<Vec<_>>()
                    .join("; "),
                if unreadable.len() == 1 { "it" } else { "each" }
            ),
        )
    } else {
        Outcome::pass(
            "none",
            source,
            format!(
                "no kubelet CVE in {} affects {raw}{notes}",
                table_text(table, true)
            ),
        )
    };
    out.with_expected(expected)
}
