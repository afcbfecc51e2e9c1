//! The CVE table (`data/cves.yaml`): kubelet CVEs with the versions each affects, parsed
//! and validated once; the `--cve-feed` file is read into the same types.

use std::fmt;
use std::sync::OnceLock;

use super::embedded;
use crate::model::time::Day;
use crate::model::version::KubeVersion;

/// A kubelet CVE the feed lists whose affected versions could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableCve {
    /// The CVE id (`CVE-2024-...`).
    pub id: String,
    /// The announcement's URL (empty when the item had no usable one).
    pub source: String,
    /// The feed item's `summary` (its title), shortened to 160 characters for display.
    pub summary: String,
    /// Whether the summary names Windows (such CVEs are reported apart from the others).
    pub windows_only: bool,
    /// What could not be read.
    pub why: &'static str,
}

/// What the feed added to the embedded table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedInfo {
    /// The file, as given.
    pub path: String,
    /// The feed's `_kubernetes_io.updated_at`, when it has one.
    pub updated_at: Option<String>,
    /// Items in the file.
    pub items: usize,
    /// Kubelet CVEs added from it (not already embedded, versions read).
    pub added: usize,
}

/// Versions a CVE affects on one branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// `min ..= max_inclusive`.
    Between {
        /// The first affected version.
        min: KubeVersion,
        /// The last affected version.
        max_inclusive: KubeVersion,
    },
    /// Every version below this one (older minors included).
    Before(KubeVersion),
}

impl Range {
    /// Whether `v` is in the range.
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
    /// The CVE id (`CVE-2024-...`).
    pub id: String,
    /// The announcement: a kubernetes/kubernetes issue URL (empty when a feed item had no
    /// usable URL).
    pub source: String,
    /// Whether it is curated (`data/cves.yaml`) or read from the `--cve-feed` file.
    pub origin: CveOrigin,
    /// One line for humans: what the CVE is about.
    pub summary: String,
    /// Whether only Windows nodes are affected (never counted on Linux nodes).
    pub windows_only: bool,
    /// Every version is affected and there is no fix.
    pub all_versions: bool,
    /// The affected versions, one range per branch.
    pub affected: Vec<Range>,
    /// First fixed patch release per branch.
    pub fixed: Vec<KubeVersion>,
    /// What to do when upgrading is not the answer, when there is advice.
    pub mitigation: Option<String>,
}

impl Cve {
    /// Whether version `v` is affected.
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
    /// The kubelet CVEs known (embedded, plus those the feed added), in table order.
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
