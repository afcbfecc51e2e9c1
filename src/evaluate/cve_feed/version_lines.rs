//! The version lines of an announcement (`v1.30.0 - v1.30.2`, `kubelet <= v1.29.13`,
//! `v1.31.6`), read conservatively into the CVE table's ranges and fixed versions.

use crate::evaluate::version::cve_table::{check_versions, Range};
use crate::model::version::KubeVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Component {
    Kubelet,
    Other,
    Unnamed,
}

/// Words before a version that name no component.
pub(super) const GENERIC_WORDS: &[&str] = &[
    "kubernetes",
    "k8s",
    "all",
    "versions",
    "version",
    "and",
    "the",
    "of",
    "only",
    "from",
    "including",
    "prior",
    "to",
    "v",
];

/// The component a version line names (the words before its first version).
pub(super) fn component(line: &str) -> Component {
    let prefix = match tokens(line).first() {
        Some(t) => &line[..t.start],
        None => line,
    };
    let lower = prefix.to_ascii_lowercase();
    if lower.contains("kubelet") {
        return Component::Kubelet;
    }
    let named = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| !w.is_empty() && !GENERIC_WORDS.contains(w))
        .any(|w| w.chars().any(|c| c.is_ascii_alphabetic()));
    if named {
        Component::Other
    } else {
        Component::Unnamed
    }
}

/// A version written in an announcement: `v1.30.2`, `1.30`, `V1.24.14`, `1.20.0-alpha2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token {
    start: usize,
    end: usize,
    major: u32,
    minor: u32,
    pub(super) patch: Option<u32>,
    /// A suffix (`-alpha.1`, `-rc.0`, `.x`): not a release this table can hold.
    pub(super) suffix: bool,
}

impl Token {
    pub(super) fn version(&self) -> Option<KubeVersion> {
        match (self.patch, self.suffix) {
            (Some(patch), false) => Some(KubeVersion {
                major: self.major,
                minor: self.minor,
                patch,
            }),
            _ => None,
        }
    }
}

/// The versions in a line.
pub(super) fn tokens(line: &str) -> Vec<Token> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let number = |i: &mut usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start || *i - start > 6 {
            return None;
        }
        line.get(start..*i)?.parse().ok()
    };
    while i < b.len() {
        let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
        let v_prefix =
            (b[i] == b'v' || b[i] == b'V') && i + 1 < b.len() && b[i + 1].is_ascii_digit();
        if !(boundary && (b[i].is_ascii_digit() || v_prefix)) {
            i += 1;
            continue;
        }
        let start = i;
        if v_prefix {
            i += 1;
        }
        let Some(major) = number(&mut i) else {
            i += 1;
            continue;
        };
        if i >= b.len() || b[i] != b'.' || i + 1 >= b.len() || !b[i + 1].is_ascii_digit() {
            // Not major.minor (an issue number, a count): skip the digits.
            continue;
        }
        i += 1;
        let Some(minor) = number(&mut i) else {
            continue;
        };
        let mut patch = None;
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
            i += 1;
            patch = number(&mut i);
        }
        let mut suffix = false;
        // `.x` wildcards and pre-release suffixes (`-alpha2`, `-rc.0`).
        if i + 1 < b.len() && b[i] == b'.' && (b[i + 1] == b'x' || b[i + 1] == b'X') {
            suffix = true;
            i += 2;
        } else if i + 1 < b.len() && b[i] == b'-' && b[i + 1].is_ascii_alphabetic() {
            suffix = true;
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        }
        out.push(Token {
            start,
            end: i,
            major,
            minor,
            patch,
            suffix,
        });
    }
    out
}

/// One affected-versions line, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expr {
    /// `vA - vB`, `vA to vB`, or a single `vA`.
    Between(KubeVersion, KubeVersion),
    /// `<= vA`.
    AtMost(KubeVersion),
    /// `< vA`.
    Below(KubeVersion),
}

/// Words and signs allowed between the two versions of a range.
pub(super) const RANGE_SEPARATORS: &[&str] = &["-", "–", "—", "to", "through", "thru", "~"];

pub(super) fn read_affected_line(line: &str) -> Result<Option<Expr>, &'static str> {
    const NOT_A_RANGE: &str = "an Affected Versions line is not a version range";
    let toks = tokens(line);
    match toks.as_slice() {
        [] => Ok(None),
        [t] => {
            let v = t.version().ok_or(NOT_A_RANGE)?;
            let before = line[..t.start].trim_end();
            let after = line[t.end..].trim().to_ascii_lowercase();
            if after.starts_with('+')
                || after.starts_with("and later")
                || after.starts_with("or later")
                || after.starts_with("and newer")
                || before.ends_with(">=")
                || before.ends_with('>')
                || before.ends_with('≥')
            {
                // Open-ended upwards: which releases fixed it is not in this line.
                return Err(NOT_A_RANGE);
            }
            if before.ends_with("<=") || before.ends_with('≤') {
                Ok(Some(Expr::AtMost(v)))
            } else if before.ends_with('<') {
                Ok(Some(Expr::Below(v)))
            } else {
                Ok(Some(Expr::Between(v, v)))
            }
        }
        [a, b] => {
            let (va, vb) = (
                a.version().ok_or(NOT_A_RANGE)?,
                b.version().ok_or(NOT_A_RANGE)?,
            );
            let between = line[a.end..b.start].trim().to_ascii_lowercase();
            if !RANGE_SEPARATORS.contains(&between.as_str()) || va > vb {
                return Err(NOT_A_RANGE);
            }
            if line[..a.start].trim_end().ends_with(['<', '>', '=']) {
                return Err(NOT_A_RANGE);
            }
            Ok(Some(Expr::Between(va, vb)))
        }
        _ => Err(NOT_A_RANGE),
    }
}

/// The first fixed version of a Fixed Versions line (`kubelet v1.32.2 - fixed by #130010`,
/// `v1.19.3`, `kube-apiserver >= v1.32.6`); `None` for a line without one (`kubelet
/// master - fixed by #129739`, prose) or naming another component.
pub(super) fn read_fixed_line(line: &str) -> Result<Option<KubeVersion>, &'static str> {
    let toks = tokens(line);
    let Some(t) = toks.first() else {
        return Ok(None);
    };
    if component(line) == Component::Other {
        return Ok(None);
    }
    t.version()
        .map(Some)
        .ok_or("a Fixed Versions line is not a release version")
}

pub(super) type ReadVersions = (Vec<Range>, Vec<KubeVersion>, bool);

/// Read the kubelet's affected lines and the fixed lines into ranges and fixed versions.
pub(super) fn read_versions(
    affected: &[&str],
    fixed: &[&str],
) -> Result<ReadVersions, &'static str> {
    let all_versions = affected
        .iter()
        .any(|l| l.to_ascii_lowercase().contains("all versions"));
    let mut exprs = Vec::new();
    for line in affected {
        if let Some(e) = read_affected_line(line)? {
            exprs.push(e);
        }
    }
    let mut fixed_versions = Vec::new();
    for line in fixed {
        if let Some(v) = read_fixed_line(line)? {
            if !fixed_versions.contains(&v) {
                fixed_versions.push(v);
            }
        }
    }
    if all_versions {
        return if exprs.is_empty() && fixed_versions.is_empty() {
            Ok((Vec::new(), Vec::new(), true))
        } else {
            Err("\"all versions\" next to version ranges or fixed versions")
        };
    }
    if exprs.is_empty() {
        return Err("no version in its Affected Versions list");
    }
    // "<= vX.Y.Z" among several branches means X.Y.0 to X.Y.Z, except on the oldest branch
    // listed, where it also covers every older release (as the announcements intend).
    let oldest = exprs
        .iter()
        .map(|e| match e {
            Expr::Between(a, _) => a.minor_of(),
            Expr::AtMost(v) | Expr::Below(v) => v.minor_of(),
        })
        .min();
    let mut ranges = Vec::with_capacity(exprs.len());
    for e in exprs {
        let range = match e {
            Expr::Between(min, max_inclusive) => Range::Between { min, max_inclusive },
            Expr::AtMost(v) if Some(v.minor_of()) == oldest => Range::Before(KubeVersion {
                patch: v.patch.saturating_add(1),
                ..v
            }),
            Expr::Below(v) if Some(v.minor_of()) == oldest => Range::Before(v),
            Expr::AtMost(v) => Range::Between {
                min: KubeVersion { patch: 0, ..v },
                max_inclusive: v,
            },
            Expr::Below(v) if v.patch > 0 => Range::Between {
                min: KubeVersion { patch: 0, ..v },
                max_inclusive: KubeVersion {
                    patch: v.patch - 1,
                    ..v
                },
            },
            Expr::Below(_) => return Err("an Affected Versions line is not a version range"),
        };
        ranges.push(range);
    }
    check_versions(&ranges, &fixed_versions, false)
        .map_err(|_| "its affected and fixed versions contradict each other")?;
    Ok((ranges, fixed_versions, false))
}
