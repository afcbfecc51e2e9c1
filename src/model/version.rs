//! Kubernetes versions: one parser for every version string the agent meets (the
//! kubelet's build information, `kubelet --version`, `kubernetes_build_info`, the Node's
//! status, the release and CVE tables, the policy).

use std::fmt;

/// A Kubernetes version's core `major.minor.patch`. Anything after it in a GitVersion
/// (`+rke2r1`, `-eks-1552ad0`, `-gke.1031000`, `+k3s1`, `-rc.0`) is ignored for comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// Major version: 1 for every Kubernetes release so far.
    pub major: u32,
    /// Minor version: the release branch (`31` in `v1.31.4`).
    pub minor: u32,
    /// Patch release within the branch (`4` in `v1.31.4`).
    pub patch: u32,
}

/// A release branch (`1.31`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor {
    /// Major version (1).
    pub major: u32,
    /// Minor version (`31` in `1.31`).
    pub minor: u32,
}

impl KubeVersion {
    /// Parse a GitVersion: `v1.31.4`, `v1.33.4+rke2r1`, `v1.30.2-eks-1552ad0`,
    /// `v1.29.8-gke.1031000`, `v1.35.4+k3s1`, `1.31.0`. Anything after the patch number
    /// (`-…` pre-release/vendor part, `+…` build metadata) is ignored.
    pub fn parse(s: &str) -> Option<KubeVersion> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let core = s.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = number(parts.next()?)?;
        let minor = number(parts.next()?)?;
        let patch = number(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(KubeVersion {
            major,
            minor,
            patch,
        })
    }

    /// Parse a plain `major.minor.patch` with no `v` and no suffix (the tables' form).
    pub fn parse_plain(s: &str) -> Option<KubeVersion> {
        KubeVersion::parse(s).filter(|v| v.to_string() == s)
    }

    /// The release branch of this version.
    pub fn minor_of(self) -> Minor {
        Minor {
            major: self.major,
            minor: self.minor,
        }
    }

    /// The next patch release.
    pub fn next_patch(self) -> KubeVersion {
        KubeVersion {
            patch: self.patch.saturating_add(1),
            ..self
        }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Minor {
    /// Parse `1.31` (no `v`, no patch).
    pub fn parse(s: &str) -> Option<Minor> {
        let (major, minor) = s.split_once('.')?;
        Some(Minor {
            major: number(major)?,
            minor: number(minor)?,
        })
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What follows `major.minor.patch` in a GitVersion (`+rke2r1`, `-eks-1552ad0`, `-rc.0`),
/// or `None` for a plain version.
pub fn version_suffix(s: &str) -> Option<&str> {
    let s = s.trim();
    let s = s.strip_prefix('v').unwrap_or(s);
    s.find(['-', '+']).map(|i| &s[i..]).filter(|x| x.len() > 1)
}

/// The kubelet minor of a version string (`v1.33.4`, `1.33.0-rc.1`, `v1.33+k3s1`, or a
/// bare `1.33`), for the loading rules that change between kubelet minors. `None` for
/// anything that is not a 1.x version.
pub fn minor_of(version: &str) -> Option<u32> {
    let v = version.trim();
    let full = KubeVersion::parse(v).map(KubeVersion::minor_of);
    let bare = || {
        let v = v.strip_prefix('v').unwrap_or(v);
        Minor::parse(v.split(['-', '+']).next()?)
    };
    full.or_else(bare).filter(|m| m.major == 1).map(|m| m.minor)
}

/// A run of ASCII digits as a number (no sign, no space, not empty).
fn number(p: &str) -> Option<u32> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(s: &str) -> Option<(u32, u32, u32)> {
        KubeVersion::parse(s).map(|v| (v.major, v.minor, v.patch))
    }

    #[test]
    fn kube_versions() {
        assert_eq!(kv("v1.31.4"), Some((1, 31, 4)));
        assert_eq!(kv("v1.33.4+rke2r1"), Some((1, 33, 4)));
        assert_eq!(kv("v1.33.4-rke2r1"), Some((1, 33, 4)));
        assert_eq!(kv("v1.30.2-eks-1552ad0"), Some((1, 30, 2)));
        assert_eq!(kv("v1.29.8-gke.1031000"), Some((1, 29, 8)));
        assert_eq!(kv("v1.35.4+k3s1"), Some((1, 35, 4)));
        assert_eq!(kv("1.31.0"), Some((1, 31, 0)));
        assert_eq!(kv(" v1.36.0-alpha.1 "), Some((1, 36, 0)));
        for bad in [
            "",
            "v",
            "v1.31",
            "v1.31.x",
            "1.2.3.4",
            "Kubernetes v1.35.0",
            "v1..3",
            "v-1.2.3",
        ] {
            assert_eq!(kv(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn minors() {
        for (s, want) in [
            ("v1.33.4-eks-1", Some(33)),
            ("1.33", Some(33)),
            ("v1.33", Some(33)),
            ("v1.36.0-alpha.1", Some(36)),
            ("v1.35+k3s1", Some(35)),
            ("2.0.0", None),
            ("", None),
            ("v1.x", None),
        ] {
            assert_eq!(minor_of(s), want, "{s:?}");
        }
        assert_eq!(
            Minor::parse("1.31"),
            Some(Minor {
                major: 1,
                minor: 31
            })
        );
        assert_eq!(Minor::parse("1.31.0"), None);
    }
}
