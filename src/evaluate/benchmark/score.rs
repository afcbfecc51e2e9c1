//! The scoring of benchmark items from the controls' results, as kube-bench scores a check
//! (check/check.go `Check.run`; the rules are in the module's parent, `benchmark`).

use super::{Assessment, Backing, Benchmark, Item, Judge};
use crate::evaluate::{ControlResult, Status};

/// An item's state, kube-bench's `State` (check/check.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    /// The backing controls pass.
    Pass,
    /// A scored item whose controls fail.
    Fail,
    /// Could not be decided, not checked, an unscored failure, or a failure of a stricter
    /// control.
    Warn,
    /// The backing controls do not apply to this node.
    Info,
}

impl State {
    /// kube-bench's spelling: `PASS`, `FAIL`, `WARN`, `INFO`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pass => "PASS",
            State::Fail => "FAIL",
            State::Warn => "WARN",
            State::Info => "INFO",
        }
    }
}

/// How completely our controls cover an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// The controls judge what the item asks.
    Checked,
    /// The controls are stricter than the item: their failure is only a warning here.
    Stricter,
    /// File modes judged again at the item's limit from the controls' observations.
    Rejudged,
    /// No control covers the item (or its control is disabled by the policy).
    NotChecked,
}

/// One backing control's result, as evidence for an item.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evidence {
    /// The control's id.
    pub control: &'static str,
    /// Its status.
    pub status: Status,
    /// What it observed (empty when nothing was).
    pub observed: String,
    /// Where the observed value came from (`flag`, `config-file`, `default`,
    /// `file-metadata`, ...).
    pub source: String,
    /// What passing looks like.
    pub expected: String,
    /// Why this status.
    pub reason: String,
}

impl Evidence {
    fn of(r: &ControlResult) -> Evidence {
        Evidence {
            control: r.id,
            status: r.status,
            observed: r.observed.clone(),
            source: r.source.clone(),
            expected: r.expected.clone(),
            reason: r.reason.clone(),
        }
    }
}

/// One item's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ItemResult {
    /// The item's id.
    pub id: &'static str,
    /// The benchmark's title.
    pub title: &'static str,
    /// Automated or Manual.
    pub assessment: Assessment,
    /// Whether the item is scored.
    pub scored: bool,
    /// PASS, FAIL, WARN or INFO.
    pub state: State,
    /// Why this state, in one line.
    pub reason: String,
    /// What passing looks like: the controls' expectations (joined with ` AND `), or the
    /// benchmark's own file mode limit when the modes were judged again; empty when not
    /// checked.
    pub expected: String,
    /// How completely the controls cover the item.
    pub coverage: Coverage,
    /// The ids of the controls behind the item (empty when not checked).
    pub controls: Vec<&'static str>,
    /// Each backing control's result: the evidence and its provenance.
    pub evidence: Vec<Evidence>,
    /// How our controls judge the item differently from kube-bench's audit, when they do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    /// What to change.
    pub remediation: &'static str,
}

/// Counts per state (kube-bench's `Summary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// PASS items.
    pub pass: usize,
    /// FAIL items.
    pub fail: usize,
    /// WARN items.
    pub warn: usize,
    /// INFO items.
    pub info: usize,
}

impl Totals {
    fn add(&mut self, s: State) {
        match s {
            State::Pass => self.pass += 1,
            State::Fail => self.fail += 1,
            State::Warn => self.warn += 1,
            State::Info => self.info += 1,
        }
    }

    /// Counts the states of these items.
    pub fn of<'a>(items: impl IntoIterator<Item = &'a ItemResult>) -> Totals {
        let mut t = Totals::default();
        for i in items {
            t.add(i.state);
        }
        t
    }
}

/// One group's results.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GroupResult {
    /// The group's id.
    pub id: &'static str,
    /// The group's title.
    pub text: &'static str,
    /// Its items' results.
    pub items: Vec<ItemResult>,
    /// Counts per state.
    pub totals: Totals,
}

/// A benchmark's node section scored from one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessed {
    /// The benchmark.
    pub benchmark: &'static Benchmark,
    /// Every group, in order.
    pub groups: Vec<GroupResult>,
    /// Counts per state over every item.
    pub totals: Totals,
}

/// Score every item of `benchmark` from the controls' results.
pub fn assess(benchmark: &'static Benchmark, results: &[ControlResult]) -> Assessed {
    let groups: Vec<GroupResult> = benchmark
        .groups
        .iter()
        .map(|g| {
            let items: Vec<ItemResult> = g.items.iter().map(|i| score(i, results)).collect();
            GroupResult {
                id: g.id,
                text: g.text,
                totals: Totals::of(&items),
                items,
            }
        })
        .collect();
    let totals = Totals::of(groups.iter().flat_map(|g| g.items.iter()));
    Assessed {
        benchmark,
        groups,
        totals,
    }
}

/// One item's result from the controls' results.
pub fn score(item: &Item, results: &[ControlResult]) -> ItemResult {
    let mut out = ItemResult {
        id: item.id,
        title: item.title,
        assessment: item.assessment,
        scored: item.scored,
        state: State::Warn,
        reason: String::new(),
        expected: String::new(),
        coverage: Coverage::NotChecked,
        controls: Vec::new(),
        evidence: Vec::new(),
        note: (!item.note.is_empty()).then_some(item.note),
        remediation: item.remediation,
    };
    let (ids, judge) = match item.backing {
        Backing::NotChecked(why) => {
            out.reason = format!("not checked: {why}");
            return out;
        }
        Backing::Controls(ids, judge) => (ids, judge),
    };
    out.controls = ids.to_vec();
    let mut found = Vec::new();
    for id in ids {
        match results.iter().find(|r| r.id == *id) {
            Some(r) => found.push(r),
            None => {
                out.reason = format!("not checked: control {id} is disabled by the policy");
                return out;
            }
        }
    }
    out.evidence = found.iter().map(|r| Evidence::of(r)).collect();
    out.expected = found
        .iter()
        .map(|r| r.expected.as_str())
        .collect::<Vec<_>>()
        .join(" AND ");
    let (mut status, mut reason) = combine(&found);
    out.coverage = match judge {
        Judge::Same => Coverage::Checked,
        Judge::Stricter(_) => Coverage::Stricter,
        Judge::ModeAtMost(_) => Coverage::Rejudged,
    };
    if let Judge::ModeAtMost(limit) = judge {
        if matches!(status, Status::Pass | Status::Fail) {
            match rejudge_modes(&found, limit) {
                Some((s, r)) => {
                    (status, reason) = (s, r);
                    out.expected = format!("≤ {limit:04o} (the benchmark's limit)");
                }
                // Not in the form the file controls write: their own verdict stands.
                None => out.coverage = Coverage::Checked,
            }
        }
    }
    (out.state, out.reason) = match status {
        Status::Pass => (State::Pass, reason),
        Status::Fail => match judge {
            Judge::Stricter(why) => (
                State::Warn,
                format!("our control fails, but it is stricter than this item ({why}): {reason}"),
            ),
            _ if item.scored => (State::Fail, reason),
            _ => (
                State::Warn,
                format!("fails (the item is not scored): {reason}"),
            ),
        },
        Status::Unknown => (State::Warn, format!("unknown: {reason}")),
        Status::NotApplicable => (State::Info, format!("not applicable: {reason}")),
    };
    out
}

/// The worst status of several controls with its reasons: any failure fails, then any
/// unknown, then any pass; `not_applicable` only when none applies.
fn combine(found: &[&ControlResult]) -> (Status, String) {
    let rank = |s: Status| match s {
        Status::Fail => 3,
        Status::Unknown => 2,
        Status::Pass => 1,
        Status::NotApplicable => 0,
    };
    let worst = found
        .iter()
        .map(|r| r.status)
        .max_by_key(|s| rank(*s))
        .unwrap_or(Status::Unknown);
    let reasons: Vec<String> = found
        .iter()
        .filter(|r| r.status == worst)
        .map(|r| {
            if found.len() == 1 {
                r.reason.clone()
            } else {
                format!("{}: {}", r.id, r.reason)
            }
        })
        .collect();
    let reason = if reasons.is_empty() {
        "no control result".to_string()
    } else {
        reasons.join("; ")
    };
    (worst, reason)
}

/// File modes judged again at `limit`, from the file controls' observed values
/// (`0640 /path; 0600 /other`, `? /path (unreadable)`: see `files::file_line`). `None`
/// when an observed value is not in that form.
fn rejudge_modes(found: &[&ControlResult], limit: u32) -> Option<(Status, String)> {
    let mut offenders = Vec::new();
    let mut unchecked = Vec::new();
    let mut n = 0usize;
    for r in found {
        for entry in r.observed.split("; ").filter(|e| !e.is_empty()) {
            n += 1;
            let (first, path) = entry.split_once(' ')?;
            if first == "?" {
                unchecked.push(path.to_string());
                continue;
            }
            if first.len() != 4 {
                return None;
            }
            let mode = u32::from_str_radix(first, 8).ok()?;
            if mode & 0o7000 != 0 {
                offenders.push(format!("{path}: {first} has setuid/setgid/sticky bits"));
            } else if mode & !limit & 0o777 != 0 {
                offenders.push(format!(
                    "{path}: {first} is more permissive than {limit:04o}"
                ));
            }
        }
    }
    if n == 0 {
        return None;
    }
    if !offenders.is_empty() {
        return Some((
            Status::Fail,
            format!("at the benchmark's {limit:04o}: {}", offenders.join("; ")),
        ));
    }
    if !unchecked.is_empty() {
        return Some((
            Status::Unknown,
            format!("not observed: {}", unchecked.join("; ")),
        ));
    }
    Some((
        Status::Pass,
        if n == 1 {
            format!("the file is {limit:04o} or stricter (the benchmark's limit)")
        } else {
            format!("all {n} files are {limit:04o} or stricter (the benchmark's limit)")
        },
    ))
}
