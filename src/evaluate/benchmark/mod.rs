//! Benchmarks: the node sections of the CIS Kubernetes Benchmark and of the managed-cluster
//! benchmarks (EKS, GKE, AKS) as tables, one file per family, each item with the controls
//! that back it; the choice of a benchmark from the kubelet's version; and the pure scoring
//! of every item from its controls' results, as kube-bench scores a check
//! (kube-bench check/check.go, `Check.run`):
//!
//! - a passing test is `PASS`; a failing one is `FAIL` when the item is scored and `WARN`
//!   when it is not;
//! - a check that cannot be carried out is `WARN` (kube-bench: "There are no tests", type
//!   `manual`); here an item no control covers, or whose controls are `unknown`;
//! - `INFO` is kube-bench's skipped check; here an item whose controls do not apply to
//!   this node (`not_applicable`, with the reason).
//!
//! The tables follow kube-bench's `cfg/<benchmark>/node.yaml` (ids, titles, `scored`) at
//! the commit each table names; the remediation texts are adapted to this agent's terms.

pub mod aks;
pub mod cis;
pub mod eks;
pub mod gke;
mod score;
#[cfg(test)]
mod tests;

pub use score::{
    assess, score, Assessed, Coverage, Evidence, GroupResult, ItemResult, State, Totals,
};

/// Whether the benchmark marks an item `(Automated)` or `(Manual)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Assessment {
    /// The benchmark's audit can be scripted.
    Automated,
    /// The benchmark expects a person to judge the audit's output.
    Manual,
}

/// How an item's verdict follows from the controls that back it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge {
    /// The controls judge exactly what the item asks: their verdict is the item's.
    Same,
    /// The controls are stricter than the item (the text says how): a pass is the item's
    /// pass, but a failure may be one the benchmark accepts, so it is only a `WARN`.
    Stricter(&'static str),
    /// File permissions: the controls' observed modes are judged again at the item's own
    /// limit (the policy may set the controls' limit elsewhere), the rule of kube-bench's
    /// `bitmask` comparison (check/test.go): no permission bit outside the limit.
    ModeAtMost(u32),
}

/// What stands behind an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// These catalogue controls, combined (any failure fails, any unknown is unknown).
    Controls(&'static [&'static str], Judge),
    /// No control covers the item; why (shown as `WARN: not checked: <why>`).
    NotChecked(&'static str),
}

/// One benchmark item (kube-bench's check).
#[derive(Debug, Clone, Copy)]
pub struct Item {
    /// The benchmark's id (`4.2.1`).
    pub id: &'static str,
    /// The benchmark's title, with its `(Automated)`/`(Manual)` mark.
    pub title: &'static str,
    /// Automated or Manual, as the title says.
    pub assessment: Assessment,
    /// Whether a failure is a `FAIL` (scored) or a `WARN` (kube-bench's `scored: false`).
    pub scored: bool,
    /// The controls behind it, or why there are none.
    pub backing: Backing,
    /// How our controls judge the item differently from kube-bench's audit, when they do
    /// (empty: no difference worth saying).
    pub note: &'static str,
    /// What to change, adapted from the benchmark's remediation.
    pub remediation: &'static str,
}

/// A group of items (kube-bench's group: `4.1`, `4.2`).
#[derive(Debug, Clone, Copy)]
pub struct Group {
    /// The group's id (`4.1`).
    pub id: &'static str,
    /// The group's title.
    pub text: &'static str,
    /// Its items, in the benchmark's order.
    pub items: &'static [Item],
}

/// One benchmark's node section. Serialised as its header (the benchmark JSON's
/// `benchmark` object): the groups are the report's own, with their results.
#[derive(Debug, serde::Serialize)]
pub struct Benchmark {
    /// The id `--benchmark` takes, kube-bench's `cfg/` directory name (`cis-1.12`).
    pub id: &'static str,
    /// The benchmark's full name and version.
    pub name: &'static str,
    /// The Kubernetes minors it is for: the benchmark's own scope where CIS states it,
    /// else the minors kube-bench chooses it for (cmd/util.go).
    pub kubernetes: &'static str,
    /// The node section's id (`4` for CIS, `3` for the managed ones).
    pub section: &'static str,
    /// The node section's title.
    pub text: &'static str,
    /// Where the table comes from (kube-bench's file at a commit).
    pub source: &'static str,
    /// The groups of the node section.
    #[serde(skip)]
    pub groups: &'static [Group],
}

impl Benchmark {
    /// Every item, in order.
    pub fn items(&self) -> impl Iterator<Item = &'static Item> + '_ {
        self.groups.iter().flat_map(|g| g.items.iter())
    }
}

/// Every benchmark this build can report in, newest CIS first.
pub static BENCHMARKS: &[&Benchmark] = &[
    &cis::CIS_2_0,
    &cis::CIS_1_12,
    &eks::EKS_1_8_0,
    &gke::GKE_1_9_0,
    &aks::AKS_1_8,
];

/// The benchmark with this id.
pub fn find(id: &str) -> Option<&'static Benchmark> {
    BENCHMARKS.iter().copied().find(|b| b.id == id)
}

/// The ids `--benchmark` accepts besides `auto`.
pub fn ids() -> Vec<&'static str> {
    BENCHMARKS.iter().map(|b| b.id).collect()
}

/// A benchmark and why it was chosen.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The benchmark.
    pub benchmark: &'static Benchmark,
    /// `flag` (named by `--benchmark`) or `auto`.
    pub by: &'static str,
    /// The managed platform the kubelet's version named, when it chose the benchmark.
    pub platform: Option<String>,
    /// How it was chosen, in one line.
    pub why: String,
}

/// The managed platform a kubelet's version names, the way kube-bench reads it from a
/// GitVersion (cmd/util.go `getPlatformInfoFromVersion`: the word after the first `-` or
/// `+` following `major.minor.patch`): `v1.33.5-eks-113cf36` is `eks`, `v1.33.5-gke.1080000`
/// is `gke`.
pub fn platform_of(version: &str) -> Option<String> {
    let suffix = crate::model::version::version_suffix(version)?;
    let word: String = suffix[1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// `--benchmark auto`: the benchmark for the kubelet's version, as kube-bench chooses one
/// (cmd/common.go `getBenchmarkVersion`): first the platform its version names (cmd/util.go
/// `getPlatformBenchmarkVersion`: `eks` → eks-1.8.0 for 1.32–1.34, `gke` → gke-1.9.0,
/// `aks` → aks-1.8), then cfg/config.yaml's `version_mapping` (1.32–1.34 → cis-1.12). Our
/// choices where kube-bench has none: 1.35 and newer → cis-2.0 (CIS v2.0.1 targets
/// 1.34–1.35; kube-bench PR #2126 adds it); older than 1.32 → cis-1.12 (kube-bench picks
/// cis-1.11 or older, whose node items this build does not ship; the `why` says so); an
/// unknown version → cis-2.0, the newest.
pub fn select_auto(kubelet_version: Option<&str>) -> Selection {
    let pick = |id: &str| find(id).unwrap_or(&cis::CIS_2_0);
    let Some(version) = kubelet_version.filter(|v| !v.trim().is_empty()) else {
        return Selection {
            benchmark: &cis::CIS_2_0,
            by: "auto",
            platform: None,
            why: "the kubelet's version is unknown: the newest benchmark, cis-2.0".to_string(),
        };
    };
    let minor = crate::model::version::minor_of(version);
    let platform = platform_of(version);
    let managed = match platform.as_deref() {
        Some("eks") => Some(("eks-1.8.0", (32, 34))),
        Some("gke") => Some(("gke-1.9.0", (31, u32::MAX))),
        Some("aks") => Some(("aks-1.8", (32, u32::MAX))),
        _ => None,
    };
    if let Some((id, (lo, hi))) = managed {
        let b = pick(id);
        let outside = match minor {
            Some(m) if (lo..=hi).contains(&m) => String::new(),
            _ => format!(
                " (kube-bench would choose another {} benchmark for this version; this build ships only {id})",
                platform.as_deref().unwrap_or("")
            ),
        };
        return Selection {
            benchmark: b,
            by: "auto",
            platform: platform.clone(),
            why: format!(
                "kubelet {version} names the platform {}: {id}{outside}",
                platform.as_deref().unwrap_or("")
            ),
        };
    }
    let (b, how) = match minor {
        Some(m) if m >= 35 => (
            pick("cis-2.0"),
            "1.35 and newer → cis-2.0 (CIS Kubernetes Benchmark v2.0.1 targets 1.34–1.35)"
                .to_string(),
        ),
        Some(m) if m >= 32 => (
            pick("cis-1.12"),
            "1.32–1.34 → cis-1.12 (kube-bench cfg/config.yaml version_mapping)".to_string(),
        ),
        Some(m) => (
            pick("cis-1.12"),
            format!(
                "1.{m} is older than every benchmark this build ships: cis-1.12 (kube-bench would choose cis-1.11 or older)"
            ),
        ),
        None => (
            pick("cis-2.0"),
            "not a 1.x version: the newest benchmark, cis-2.0".to_string(),
        ),
    };
    Selection {
        benchmark: b,
        by: "auto",
        platform: None,
        why: format!("kubelet {version}: {how}"),
    }
}

/// `--benchmark <id>`: the named benchmark, or `auto` (see [`select_auto`]); `None` for an
/// id this build does not know.
pub fn select(requested: &str, kubelet_version: Option<&str>) -> Option<Selection> {
    if requested == "auto" {
        return Some(select_auto(kubelet_version));
    }
    find(requested).map(|b| Selection {
        benchmark: b,
        by: "flag",
        platform: None,
        why: format!("--benchmark {}", b.id),
    })
}

impl PartialEq for Benchmark {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
