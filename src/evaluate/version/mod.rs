//! Practice 4, version currency: the kubelet's minor release is still maintained upstream,
//! and its patch release has no known kubelet CVE.
//!
//! Both controls decide from tables embedded at build time (`data/releases.yaml`,
//! `data/cves.yaml`), parsed and validated on first use. A table that does not parse is a
//! build defect caught by this file's tests; at run time it is logged once and makes the
//! controls `unknown` ("embedded table invalid"), never a panic.

use std::fmt;
use std::sync::OnceLock;

use super::cve_feed::{CveFeedError, FeedInfo, UnreadableCve};
use super::outcome::{decide, kubelet, unknown_with};
use super::{Control, Ctx, Family, Needs, Outcome, Severity, PRACTICE_HARDENING};
use crate::model::time::Day;
use crate::model::version::{version_suffix, KubeVersion, Minor};

pub static CONTROLS: &[Control] = &[
    Control {
        id: "kubelet-version-supported",
        title: "Kubelet runs a Kubernetes minor release that is still maintained upstream",
        family: Family::Hardening,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_HARDENING,
        expected: "one of the three newest maintained minors (before their end of life)",
        remediation: "Upgrade the node (kubelet) to one of the three newest Kubernetes minor releases that have not reached end of life (kubernetes.io/releases); the kubelet may be up to three minors older than the API server, never newer. A branch past its end of life gets no security fixes. If a vendor supports the minor for longer (extended support), list it in the policy's `supported_kubelet_minors`.",
        needs: Needs::Kubelet,
        evaluate: evaluate_supported,
    },
    Control {
        id: "kubelet-version-no-known-cves",
        title: "Kubelet version has no known kubelet CVE",
        family: Family::Hardening,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_HARDENING,
        expected: "no known kubelet CVE (embedded table, and the --cve-feed file when given) affects this version (Windows-only and unfixable CVEs are listed, not counted)",
        remediation: "Upgrade the kubelet to at least the fixed patch release of its minor named in the reason (or to a newer maintained minor). Windows-only CVEs are never counted on Linux nodes. CVEs with no upstream fix at all (e.g. CVE-2025-1767, gitRepo volumes) are listed for information and never fail this control, since no upgrade clears them: mitigate them as the reason says (e.g. forbid gitRepo volumes with an admission policy and clone repositories in an init container). Vendor builds (EKS, GKE, AKS, RKE2, k3s) are judged by their upstream patch version; a vendor may have backported a fix, so check its security bulletin before disabling the control. With --cve-feed, the CVEs of that copy of the official feed count too; `unknown` with a feed means the file is unusable (the reason says why) or the feed lists a kubelet CVE whose affected versions could not be read: read its announcement, named in the reason, and upgrade past it or refresh the feed.",
        needs: Needs::Kubelet,
        evaluate: evaluate_cves,
    },
];

// ---------------------------------------------------------------------------------------
// The evaluation time.
// ---------------------------------------------------------------------------------------

/// The evaluation time (`snapshot.taken_at`) in whole seconds.
pub fn evaluation_time(ctx: &Ctx) -> i64 {
    let t = ctx.snapshot.taken_at;
    if t.is_finite() {
        t.floor() as i64
    } else {
        0
    }
}

// ---------------------------------------------------------------------------------------
// Versions.
// ---------------------------------------------------------------------------------------

/// Whether a suffix marks an upstream pre-release (`-alpha.1`, `-beta.0`, `-rc.2`).
fn is_prerelease(suffix: &str) -> bool {
    ["-alpha.", "-beta.", "-rc."]
        .iter()
        .any(|p| suffix.starts_with(p))
}

// ---------------------------------------------------------------------------------------
// The release table.
// ---------------------------------------------------------------------------------------

/// One Kubernetes minor release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub minor: Minor,
    /// When `x.y.0` was released.
    pub released: Day,
    /// The first day the branch is unsupported.
    pub end_of_life: Day,
    /// `end_of_life` comes from a schedule, not the end-of-life history.
    pub eol_planned: bool,
    /// The branch's last patch release, once it is known.
    pub final_patch: Option<KubeVersion>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReleases {
    releases: Vec<RawRelease>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    minor: String,
    released: String,
    end_of_life: String,
    #[serde(default)]
    final_patch: Option<String>,
    #[serde(default)]
    eol: Option<String>,
}

/// The embedded `data/releases.yaml`.
pub const RELEASES_YAML: &str = include_str!("../../../data/releases.yaml");

/// Parse and validate a release table: minors in order without gaps, real dates, release
/// before end of life, final patch on its own branch.
pub fn parse_releases(text: &str) -> Result<Vec<Release>, String> {
    let raw: RawReleases = crate::model::parse::yaml_unredacted(text).map_err(|e| e.to_string())?;
    let mut out: Vec<Release> = Vec::with_capacity(raw.releases.len());
    for r in raw.releases {
        let at = |what: &str| format!("release {:?}: {what}", r.minor);
        let minor = Minor::parse(&r.minor).ok_or_else(|| at("minor is not `major.minor`"))?;
        let released =
            Day::parse(&r.released).ok_or_else(|| at("released is not a YYYY-MM-DD date"))?;
        let end_of_life =
            Day::parse(&r.end_of_life).ok_or_else(|| at("end_of_life is not a YYYY-MM-DD date"))?;
        if end_of_life <= released {
            return Err(at("end_of_life is not after released"));
        }
        let eol_planned = match r.eol.as_deref() {
            None => false,
            Some("planned") => true,
            Some(other) => return Err(at(&format!("eol {other:?} is not `planned`"))),
        };
        let final_patch = match &r.final_patch {
            None => None,
            Some(p) => {
                let v = KubeVersion::parse_plain(p)
                    .ok_or_else(|| at("final_patch is not `major.minor.patch`"))?;
                if v.minor_of() != minor {
                    return Err(at("final_patch is on another branch"));
                }
                Some(v)
            }
        };
        if let Some(prev) = out.last() {
            if minor.major != prev.minor.major || minor.minor != prev.minor.minor + 1 {
                return Err(at(&format!(
                    "does not follow {} (minors must be listed in order, without gaps)",
                    prev.minor
                )));
            }
            if released <= prev.released {
                return Err(at("released is not after the previous minor's"));
            }
        }
        out.push(Release {
            minor,
            released,
            end_of_life,
            eol_planned,
            final_patch,
        });
    }
    if out.is_empty() {
        return Err("no releases".to_string());
    }
    Ok(out)
}

/// The embedded release table (parsed once), or why it is unusable.
pub fn releases() -> Result<&'static [Release], &'static str> {
    static TABLE: OnceLock<Result<Vec<Release>, String>> = OnceLock::new();
    match TABLE.get_or_init(|| embedded("data/releases.yaml", parse_releases(RELEASES_YAML))) {
        Ok(t) => Ok(t.as_slice()),
        Err(e) => Err(e.as_str()),
    }
}

fn embedded<T>(name: &str, parsed: Result<T, String>) -> Result<T, String> {
    parsed.map_err(|e| {
        let msg = format!("embedded table invalid: {name}: {e}");
        tracing::error!("{msg}");
        msg
    })
}

// ---------------------------------------------------------------------------------------
// The CVE table.
// ---------------------------------------------------------------------------------------

/// Versions a CVE affects on one branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// `min ..= max_inclusive`.
    Between {
        min: KubeVersion,
        max_inclusive: KubeVersion,
    },
    /// Every version below this one (older minors included).
    Before(KubeVersion),
}

impl Range {
    pub fn contains(&self, v: KubeVersion) -> bool {
        match *self {
            Range::Between { min, max_inclusive } => min <= v && v <= max_inclusive,
            Range::Before(b) => v < b,
        }
    }

    /// The first version above the range (where a fix is expected).
    pub fn successor(&self) -> KubeVersion {
        match *self {
            Range::Between { max_inclusive, .. } => max_inclusive.next_patch(),
            Range::Before(b) => b,
        }
    }

    fn lowest(&self) -> KubeVersion {
        match *self {
            Range::Between { min, .. } => min,
            Range::Before(_) => KubeVersion {
                major: 0,
                minor: 0,
                patch: 0,
            },
        }
    }

    fn overlaps(&self, other: &Range) -> bool {
        self.lowest() < other.successor() && other.lowest() < self.successor()
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Range::Between { min, max_inclusive } if min == max_inclusive => write!(f, "{min}"),
            Range::Between { min, max_inclusive } => write!(f, "{min}–{max_inclusive}"),
            Range::Before(b) => write!(f, "< {b}"),
        }
    }
}

/// Where an entry of the CVE table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CveOrigin {
    /// `data/cves.yaml`, curated and embedded at build time.
    Embedded,
    /// An item of the `--cve-feed` file whose versions were read from its text.
    Feed,
}

/// The kubernetes/kubernetes issues, where every announcement of the official CVE feed
/// lives (<https://kubernetes.io/docs/reference/issues-security/official-cve-feed/>).
pub const ANNOUNCEMENT_PREFIX: &str = "https://github.com/kubernetes/kubernetes/issues/";

/// One kubelet CVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cve {
    pub id: String,
    /// The announcement: a kubernetes/kubernetes issue URL (empty when a feed item had no
    /// usable URL).
    pub source: String,
    pub origin: CveOrigin,
    pub summary: String,
    pub windows_only: bool,
    /// Every version is affected and there is no fix.
    pub all_versions: bool,
    pub affected: Vec<Range>,
    /// First fixed patch release per branch.
    pub fixed: Vec<KubeVersion>,
    pub mitigation: Option<String>,
}

impl Cve {
    pub fn affects(&self, v: KubeVersion) -> bool {
        self.all_versions || self.affected.iter().any(|r| r.contains(v))
    }

    /// Whether any release fixes it (else no upgrade helps).
    pub fn has_fix(&self) -> bool {
        !self.fixed.is_empty()
    }

    /// The fixed release on `v`'s branch, when that branch got one.
    pub fn fix_on_branch(&self, v: KubeVersion) -> Option<KubeVersion> {
        self.fixed
            .iter()
            .copied()
            .find(|f| f.minor_of() == v.minor_of())
    }

    /// The kubernetes/kubernetes issue number of the announcement, when `source` is one.
    pub fn issue(&self) -> Option<u32> {
        issue_number(&self.source)
    }
}

/// The issue number of a kubernetes/kubernetes issue URL.
pub fn issue_number(url: &str) -> Option<u32> {
    let n = url.strip_prefix(ANNOUNCEMENT_PREFIX)?;
    if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|n| *n > 0)
}

/// The CVE table: the embedded one, or the embedded one merged with a `--cve-feed` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CveTable {
    /// When the embedded table was last reviewed.
    pub as_of: Day,
    pub cves: Vec<Cve>,
    /// Kubelet CVEs the feed lists whose affected versions could not be read: they make the
    /// control `unknown` rather than let it pass.
    pub unreadable: Vec<UnreadableCve>,
    /// The feed merged in, if any.
    pub feed: Option<FeedInfo>,
}

impl CveTable {
    /// Every entry whose ranges contain `v` (Windows-only and unfixable ones included).
    pub fn affecting(&self, v: KubeVersion) -> Vec<&Cve> {
        self.cves.iter().filter(|c| c.affects(v)).collect()
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCves {
    as_of: String,
    cves: Vec<RawCve>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCve {
    id: String,
    source: String,
    summary: String,
    windows_only: bool,
    #[serde(default)]
    all_versions: bool,
    #[serde(default)]
    affected: Vec<RawRange>,
    #[serde(default)]
    fixed: Vec<String>,
    #[serde(default)]
    mitigation: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    #[serde(default)]
    min: Option<String>,
    #[serde(default)]
    max_inclusive: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

pub(crate) fn is_cve_id(id: &str) -> bool {
    let mut parts = id.split('-');
    let ok = |p: Option<&str>, min: usize, max: usize| {
        p.is_some_and(|p| (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    parts.next() == Some("CVE")
        && ok(parts.next(), 4, 4)
        && ok(parts.next(), 4, 7)
        && parts.next().is_none()
}

/// The embedded `data/cves.yaml`.
pub const CVES_YAML: &str = include_str!("../../../data/cves.yaml");

/// Check one entry's versions: ranges non-empty and disjoint, fixed versions outside
/// every range and at most one per branch, and either ranges or `all_versions` (which
/// takes no fixed versions). Shared by the embedded table and the feed's items.
pub fn check_versions(
    affected: &[Range],
    fixed: &[KubeVersion],
    all_versions: bool,
) -> Result<(), String> {
    for (i, r) in affected.iter().enumerate() {
        if let Range::Between { min, max_inclusive } = r {
            if min > max_inclusive {
                return Err(format!("range {min}–{max_inclusive} is empty"));
            }
        }
        if let Some(o) = affected[..i].iter().find(|o| o.overlaps(r)) {
            return Err(format!("ranges {o} and {r} overlap"));
        }
    }
    for (i, f) in fixed.iter().enumerate() {
        if let Some(r) = affected.iter().find(|r| r.contains(*f)) {
            return Err(format!("fixed version {f} is inside the range {r}"));
        }
        if fixed[..i].iter().any(|o| o.minor_of() == f.minor_of()) {
            return Err(format!("two fixed versions on the {} branch", f.minor_of()));
        }
    }
    if all_versions {
        if !affected.is_empty() || !fixed.is_empty() {
            return Err("all_versions takes no ranges and no fixed versions".to_string());
        }
    } else if affected.is_empty() {
        return Err(
            "no affected ranges (set all_versions when every version is affected)".to_string(),
        );
    }
    Ok(())
}

/// Parse and validate a CVE table: ids unique and well-formed, every entry's source a
/// kubernetes/kubernetes issue, ranges well-formed and disjoint, fixed versions outside
/// every range and at most one per branch.
pub fn parse_cves(text: &str) -> Result<CveTable, String> {
    let raw: RawCves = crate::model::parse::yaml_unredacted(text).map_err(|e| e.to_string())?;
    let as_of = Day::parse(&raw.as_of).ok_or("as_of is not a YYYY-MM-DD date")?;
    let mut cves: Vec<Cve> = Vec::with_capacity(raw.cves.len());
    for c in raw.cves {
        let at = |what: &str| format!("{}: {what}", c.id);
        if !is_cve_id(&c.id) {
            return Err(at("id is not CVE-YYYY-NNNN"));
        }
        if cves.iter().any(|o| o.id == c.id) {
            return Err(at("duplicate id"));
        }
        if c.summary.trim().is_empty() {
            return Err(at("summary is required"));
        }
        if issue_number(&c.source).is_none() {
            return Err(at(&format!(
                "source {:?} is not a {ANNOUNCEMENT_PREFIX}<number> announcement",
                c.source
            )));
        }
        let version = |s: &str| {
            KubeVersion::parse_plain(s)
                .ok_or_else(|| at(&format!("{s:?} is not `major.minor.patch`")))
        };
        let mut affected = Vec::with_capacity(c.affected.len());
        for r in &c.affected {
            affected.push(match (&r.min, &r.max_inclusive, &r.before) {
                (Some(min), Some(max), None) => Range::Between {
                    min: version(min)?,
                    max_inclusive: version(max)?,
                },
                (None, None, Some(b)) => Range::Before(version(b)?),
                _ => return Err(at("a range is either {min, max_inclusive} or {before}")),
            });
        }
        let fixed = c
            .fixed
            .iter()
            .map(|f| version(f))
            .collect::<Result<Vec<_>, _>>()?;
        check_versions(&affected, &fixed, c.all_versions).map_err(|e| at(&e))?;
        cves.push(Cve {
            id: c.id.clone(),
            source: c.source,
            origin: CveOrigin::Embedded,
            summary: c.summary.trim().to_string(),
            windows_only: c.windows_only,
            all_versions: c.all_versions,
            affected,
            fixed,
            mitigation: c.mitigation.map(|m| m.trim().to_string()),
        });
    }
    if cves.is_empty() {
        return Err("no CVEs".to_string());
    }
    Ok(CveTable {
        as_of,
        cves,
        unreadable: Vec::new(),
        feed: None,
    })
}

/// The embedded CVE table (parsed once), or why it is unusable.
pub fn cves() -> Result<&'static CveTable, &'static str> {
    static TABLE: OnceLock<Result<CveTable, String>> = OnceLock::new();
    match TABLE.get_or_init(|| embedded("data/cves.yaml", parse_cves(CVES_YAML))) {
        Ok(t) => Ok(t),
        Err(e) => Err(e.as_str()),
    }
}

// ---------------------------------------------------------------------------------------
// The controls.
// ---------------------------------------------------------------------------------------

/// The policy key that replaces the release table (`expected.supported_kubelet_minors`).
const POLICY_MINORS: &str = "supported_kubelet_minors";

/// `status.nodeInfo.kubeletVersion` of this node's Node object, when the API view has it.
pub(crate) fn api_version<'a>(ctx: &Ctx<'a>) -> Option<&'a str> {
    ctx.snapshot.node_kubelet_version()
}

/// The kubelet's observed version: (parsed, raw text, source).
///
/// Sources: the binary (`kubelet --version`), `kubernetes_build_info`, `--kubelet-version`,
/// and the Node's `status.nodeInfo.kubeletVersion` (component-base/version `Get().GitVersion`: the same GitVersion, as
/// reported by the *running* kubelet at its start). When the process-local source and the
/// API disagree — typically a kubelet package upgraded on disk while the old process runs
/// on — the older of the two is judged (the process that runs may be the old one), and the
/// source names both.
fn observed_version(ctx: &Ctx) -> Result<(KubeVersion, String, String), String> {
    let k = kubelet(ctx)?;
    let source = k
        .version_source
        .clone()
        .unwrap_or_else(|| "unknown".to_string());
    let api = api_version(ctx);
    let Some(raw) = k.version.as_deref() else {
        if let Some(a) = api {
            let v = KubeVersion::parse(a).ok_or_else(|| {
                format!("the kubelet's version {a:?} (source node_status) is not understood")
            })?;
            return Ok((v, a.to_string(), "node_status".to_string()));
        }
        return Err(match &k.version_error {
            Some(e) => format!("the kubelet's version is not known: {e}"),
            None => "the kubelet's version is not known".to_string(),
        });
    };
    let v = KubeVersion::parse(raw).ok_or_else(|| {
        format!("the kubelet's version {raw:?} (source {source}) is not understood")
    })?;
    match api.filter(|a| *a != raw) {
        None => Ok((v, raw.to_string(), source)),
        Some(a) => match KubeVersion::parse(a) {
            Some(av) if av < v => Ok((
                av,
                a.to_string(),
                format!("node_status; mismatch: {source} says {raw}"),
            )),
            _ => Ok((
                v,
                raw.to_string(),
                format!("{source}; mismatch: node_status says {a}"),
            )),
        },
    }
}

/// A note on how a suffixed version is judged, or nothing.
fn suffix_note(raw: &str, v: KubeVersion) -> Option<String> {
    let suffix = version_suffix(raw)?;
    Some(if is_prerelease(suffix) {
        format!("pre-release {raw} judged as {v}")
    } else {
        format!("vendor build ({suffix}) judged by its upstream version {v}; the vendor may backport fixes")
    })
}

fn evaluate_supported(ctx: &Ctx) -> Outcome {
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

/// The three newest minors that are released and not past end of life on `today`
/// (newest first).
pub fn maintained_minors(table: &[Release], today: Day) -> Vec<&Release> {
    table
        .iter()
        .rev()
        .filter(|r| r.released <= today && today < r.end_of_life)
        .take(3)
        .collect()
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
    let (oldest, newest) = match (table.first(), table.last()) {
        (Some(o), Some(n)) => (o, n),
        _ => return Outcome::unknown("embedded table invalid: no releases"),
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

fn judge_by_policy(
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

fn evaluate_cves(ctx: &Ctx) -> Outcome {
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
pub fn judge_cves(v: KubeVersion, raw: &str, source: String, table: &CveTable) -> Outcome {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
