//! The release table (`data/releases.yaml`): each Kubernetes minor with its release and
//! end-of-life days, parsed and validated once.

use std::sync::OnceLock;

use super::embedded;
use crate::model::time::Day;
use crate::model::version::{KubeVersion, Minor};

/// One Kubernetes minor release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The release's minor (`1.31`).
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
