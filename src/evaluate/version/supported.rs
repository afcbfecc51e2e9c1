//! `kubelet-version-supported`: the kubelet's minor is still maintained upstream (the
//! release table), or listed in the policy's `supported_kubelet_minors`.

use super::release_table::{maintained_minors, releases, Release};
use super::{evaluation_time, observed_version};
use crate::evaluate::outcome::{decide, unknown_with};
use crate::evaluate::{Ctx, Outcome};
use crate::model::time::Day;
use crate::model::version::{KubeVersion, Minor};

/// The policy key that replaces the release table (`expected.supported_kubelet_minors`).
const POLICY_MINORS: &str = "supported_kubelet_minors";

pub(super) fn evaluate_supported(ctx: &Ctx) -> Outcome {
    decide(|| {
        let (v, raw, source) = observed_version(ctx)?;
        let today = Day::from_unix(evaluation_time(ctx));
        let observed = format!("{raw} (source {source})");
        let table = releases();
        let minors = ctx.policy.supported_kubelet_minors()?;
        Ok(match minors {
            Some(list) => judge_by_policy(v, &list, table.ok(), today, observed, source),
            None => judge_by_table(v, table?, today, observed, source),
        })
    })
}

fn eol_text(r: &Release) -> String {
    if r.eol_planned {
        format!("{} (planned)", r.end_of_life)
    } else {
        r.end_of_life.to_string()
    }
}

fn judge_by_table(
    v: KubeVersion,
    table: &[Release],
    today: Day,
    observed: String,
    source: String,
) -> Outcome {
    let maintained = maintained_minors(table, today);
    let list = maintained
        .iter()
        .map(|r| r.minor.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let expected = if list.is_empty() {
        "a maintained minor (the release table lists none on this date)".to_string()
    } else {
        format!("one of the three newest maintained minors: {list}")
    };
    let listed = if list.is_empty() {
        format!("no minor in the release table is maintained on {today}")
    } else {
        format!("maintained on {today}: {list}")
    };
    let m = v.minor_of();
    let (Some(oldest), Some(newest)) = (table.first(), table.last()) else {
        return Outcome::unknown("embedded table invalid: no releases");
    };
    // A table more than ~5 months past its newest release has probably missed one.
    let stale = if newest.released.days_until(today) > 150 {
        format!(
            "; the embedded release table ends at {} (released {}): a newer minor may exist",
            newest.minor, newest.released
        )
    } else {
        String::new()
    };
    let out = match table.iter().find(|r| r.minor == m) {
        Some(r) if maintained.contains(&r) => Outcome::pass(
            observed,
            source,
            format!(
                "Kubernetes {m} is maintained until its end of life on {} ({}{} days left); {listed}{stale}",
                r.end_of_life,
                if r.eol_planned { "planned; " } else { "" },
                today.days_until(r.end_of_life)
            ),
        ),
        Some(r) if r.end_of_life <= today => Outcome::fail(
            observed,
            source,
            format!(
                "Kubernetes {m} reached end of life on {}: no security fixes since; {listed}{stale}",
                eol_text(r)
            ),
        ),
        Some(r) if r.released > today => unknown_with(
            observed,
            source,
            format!(
                "Kubernetes {m} was released on {}, after the evaluation date {today}: check the node's clock",
                r.released
            ),
        ),
        Some(r) => Outcome::fail(
            observed,
            source,
            format!(
                "Kubernetes {m} is in its maintenance period until its end of life on {}, but is no longer among the three newest minors ({list}): upgrade before it ends{stale}",
                eol_text(r)
            ),
        ),
        None if m.major == oldest.minor.major && m < oldest.minor => Outcome::fail(
            observed,
            source,
            format!(
                "Kubernetes {m} is older than {}, the oldest minor in the release table (end of life {}): long past end of life; {listed}",
                oldest.minor, oldest.end_of_life
            ),
        ),
        None if m.major == newest.minor.major && m > newest.minor => unknown_with(
            observed,
            source,
            format!(
                "Kubernetes {m} is newer than every minor in the embedded release table (newest {}): its end of life is not known; update kubelet-sentinel or list it in the policy's {POLICY_MINORS}",
                newest.minor
            ),
        ),
        None => unknown_with(
            observed,
            source,
            format!("Kubernetes {m} is not in the embedded release table"),
        ),
    };
    out.with_expected(expected)
}

pub(super) fn judge_by_policy(
    v: KubeVersion,
    list: &[Minor],
    table: Option<&[Release]>,
    today: Day,
    observed: String,
    source: String,
) -> Outcome {
    let m = v.minor_of();
    let shown = list
        .iter()
        .map(Minor::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let upstream = table
        .and_then(|t| t.iter().find(|r| r.minor == m))
        .map(|r| {
            if r.end_of_life <= today {
                format!(
                    "; upstream end of life was {} (the policy accepts it, e.g. vendor extended support)",
                    eol_text(r)
                )
            } else {
                format!("; upstream end of life {}", eol_text(r))
            }
        })
        .unwrap_or_default();
    let out = if list.contains(&m) {
        Outcome::pass(
            observed,
            source,
            format!("Kubernetes {m} is in the policy's {POLICY_MINORS} ({shown}){upstream}"),
        )
    } else {
        Outcome::fail(
            observed,
            source,
            format!("Kubernetes {m} is not in the policy's {POLICY_MINORS} ({shown}){upstream}"),
        )
    };
    out.with_expected(format!("one of the policy's {POLICY_MINORS}: {shown}"))
}
