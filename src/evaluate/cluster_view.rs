//! The controls that need the Kubernetes API (`Needs::Api`): whether they can be judged
//! at all, the data of an API source or why it is awaited, and how stale it is.

use super::{Ctx, Outcome};
use crate::model::snapshot::{ApiSource, ClusterView};

/// The common gate of `Needs::Api` controls: `Some(outcome)` when they cannot be judged.
pub fn api_gate(ctx: &Ctx) -> Option<Outcome> {
    if !ctx.policy.expected.cluster_checks {
        return Some(Outcome::not_applicable(
            "cluster checks are off in the policy (cluster_checks: false)",
        ));
    }
    match &ctx.snapshot.cluster {
        None => Some(Outcome::unknown(
            "no API access (this evaluation did not use the Kubernetes API)",
        )),
        Some(ClusterView {
            access: Err(why), ..
        }) => Some(Outcome::unknown(format!("no API access ({why})"))),
        Some(_) => None,
    }
}

/// The data of an API source, or the `unknown` that says it is awaited; `first` names
/// what is awaited (`list of pods`, `SubjectAccessReviews`).
pub fn api_data<'a, T>(src: &'a ApiSource<T>, first: &str) -> Result<&'a T, Outcome> {
    src.data.as_ref().ok_or_else(|| {
        Outcome::unknown(match &src.health {
            Err(e) if e != "waiting for the first list" => {
                format!("waiting for the first {first} (last error: {e})")
            }
            _ => format!("waiting for the first {first}"),
        })
    })
}

/// A reason suffix when the data is from an earlier answer because the task that keeps it
/// (`pods watch`) is failing now; `last` names that answer (`list`, `answers`).
pub fn api_stale<T>(src: &ApiSource<T>, task: &str, last: &str) -> String {
    match &src.health {
        Err(e) => format!("; the {task} is failing ({e}): as of its last {last}"),
        Ok(()) => String::new(),
    }
}

/// How many items a list shows before `and N more`.
const MAX_LISTED: usize = 10;

/// A list of names from the API (pods, namespaces, permissions) for a reason: at most
/// `MAX_LISTED`, then `and N more`.
pub fn capped(items: &[String]) -> String {
    let mut out = items
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_LISTED {
        out.push_str(&format!(" and {} more", items.len() - MAX_LISTED));
    }
    out
}
