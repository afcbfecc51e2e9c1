//! Settings whose effect differs between kubelet releases.
//!
//! A version-dependent control lists what each span of kubelet minors does with the
//! setting ([`Era`]: the minors it holds for and the outcome it gives) and lets [`judge`]
//! pick the one for the kubelet's version. When the version is not known, or two sources
//! name different minors, every era the kubelet could be in is considered: when they all
//! give the same status no version is needed; otherwise the control is `unknown` and its
//! reason names the dependence. A version is never guessed.
//!
//! The supported kubelets are the minors of the embedded release table
//! (`data/releases.yaml`, [`OLDEST`]..=[`NEWEST`]). Every rule built on this module was
//! checked against the kubelet source of each of those minors (their last patch
//! releases, from the Go module proxy); its comment cites the upstream file, function and
//! pull request. A test keeps the two bounds equal to the table's, so adding a minor to the
//! table fails until the rules are checked against that minor's source.

use std::fmt;

use super::outcome::unknown_with;
use super::version::api_version;

use super::{Ctx, Outcome, Status};
use crate::model::version::{KubeVersion, Minor};

/// The oldest supported kubelet minor (the release table's first entry).
pub const OLDEST: Minor = Minor {
    major: 1,
    minor: 19,
};
/// The newest supported kubelet minor (the release table's last entry).
pub const NEWEST: Minor = Minor {
    major: 1,
    minor: 37,
};

/// A span of kubelet minors, inclusive; an open end (`None`) reaches every older or newer
/// minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minors {
    /// The oldest minor in the span; `None`: no lower bound.
    pub first: Option<Minor>,
    /// The newest minor in the span; `None`: no upper bound.
    pub last: Option<Minor>,
}

/// `major.minor` as a constant.
pub const fn minor(major: u32, minor: u32) -> Minor {
    Minor { major, minor }
}

impl Minors {
    /// Every version.
    pub const ALL: Minors = Minors {
        first: None,
        last: None,
    };

    /// `m` and every older minor.
    pub const fn up_to(m: Minor) -> Minors {
        Minors {
            first: None,
            last: Some(m),
        }
    }

    /// `m` and every newer minor.
    pub const fn from(m: Minor) -> Minors {
        Minors {
            first: Some(m),
            last: None,
        }
    }

    /// Whether `m` is in the span (both ends included).
    pub fn contains(self, m: Minor) -> bool {
        self.first.is_none_or(|f| f <= m) && self.last.is_none_or(|l| m <= l)
    }

    /// Whether a supported minor ([`OLDEST`]..=[`NEWEST`]) is in the span.
    pub fn meets_supported(self) -> bool {
        self.first.is_none_or(|f| f <= NEWEST) && self.last.is_none_or(|l| OLDEST <= l)
    }
}

impl fmt::Display for Minors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.first, self.last) {
            (None, None) => write!(f, "every version"),
            (None, Some(l)) => write!(f, "up to {l}"),
            (Some(a), None) => write!(f, "from {a}"),
            (Some(a), Some(l)) if a == l => write!(f, "{a}"),
            (Some(a), Some(l)) => write!(f, "{a}–{l}"),
        }
    }
}

/// What is known of the kubelet's version, as far as the rules need it (its minor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeletMinor {
    /// One minor; `text` names the version and its source (`v1.37.2 (binary)`).
    Known {
        /// The kubelet's minor.
        minor: Minor,
        /// The version and its source, for the observed column.
        text: String,
    },
    /// The process-local source and the Node's `status.nodeInfo.kubeletVersion` name
    /// different minors (typically a package upgraded while the old process runs on):
    /// either is possible.
    Disputed {
        /// The process-local source's minor, then the Node status's.
        minors: [Minor; 2],
        /// Both versions and their sources (`binary says v1.36.1, node_status says v1.35.4`).
        text: String,
    },
    /// Not known, with why: every supported minor is possible.
    Unknown(String),
}

/// The kubelet's minor from its version sources: the process-local one (`--kubelet-version`,
/// the binary, `kubernetes_build_info`) and the Node's `status.nodeInfo.kubeletVersion`.
pub fn kubelet_minor(ctx: &Ctx) -> KubeletMinor {
    let Some(k) = ctx.kubelet() else {
        return KubeletMinor::Unknown("no kubelet".to_string());
    };
    let api = api_version(ctx);
    let Some(raw) = k.version.as_deref() else {
        return match api {
            Some(a) => match KubeVersion::parse(a) {
                Some(v) => KubeletMinor::Known {
                    minor: v.minor_of(),
                    text: format!("{a} (node_status)"),
                },
                None => KubeletMinor::Unknown(format!(
                    "the kubelet's version {a:?} (node_status) is not understood"
                )),
            },
            None => KubeletMinor::Unknown(match &k.version_error {
                Some(e) => format!("the kubelet's version is not known: {e}"),
                None => "the kubelet's version is not known".to_string(),
            }),
        };
    };
    let source = k.version_source.map_or("unknown source", |s| s.as_str());
    let Some(v) = KubeVersion::parse(raw) else {
        return KubeletMinor::Unknown(format!(
            "the kubelet's version {raw:?} ({source}) is not understood"
        ));
    };
    match api.and_then(|a| KubeVersion::parse(a).map(|av| (a, av))) {
        Some((a, av)) if av.minor_of() != v.minor_of() => KubeletMinor::Disputed {
            minors: [v.minor_of(), av.minor_of()],
            text: format!("{source} says {raw}, node_status says {a}"),
        },
        _ => KubeletMinor::Known {
            minor: v.minor_of(),
            text: format!("{raw} ({source})"),
        },
    }
}

/// What the kubelet does with a setting on a span of minors.
#[derive(Debug, Clone, PartialEq)]
pub struct Era {
    /// The minors this era covers.
    pub minors: Minors,
    /// The verdict there. Its reason should not name the setting's provenance: the caller
    /// appends that once to the judged outcome.
    pub outcome: Outcome,
}

impl Era {
    /// The era of `minors` whose verdict is `outcome`.
    pub fn new(minors: Minors, outcome: Outcome) -> Era {
        Era { minors, outcome }
    }
}

/// The outcome for the kubelet's version among `eras` (which must not overlap and should
/// together cover every version). `observed` and `source` describe the setting when the
/// eras' outcomes differ and the version cannot choose.
pub fn judge(ctx: &Ctx, eras: Vec<Era>, observed: &str, source: &str) -> Outcome {
    judge_for(&kubelet_minor(ctx), eras, observed, source)
}

/// [`judge`] for a given version.
pub fn judge_for(version: &KubeletMinor, eras: Vec<Era>, observed: &str, source: &str) -> Outcome {
    let (possible, why, agreed): (Vec<Era>, String, String) = match version {
        KubeletMinor::Known { minor, text } => {
            return match eras.into_iter().find(|e| e.minors.contains(*minor)) {
                Some(e) if e.minors == Minors::ALL => e.outcome,
                Some(e) => {
                    let mut o = e.outcome;
                    o.reason = format!("kubelet {text}, {}: {}", e.minors, o.reason);
                    o
                }
                None => unknown_with(observed, source, format!("no rule covers kubelet {text}")),
            };
        }
        KubeletMinor::Disputed { minors, text } => (
            eras.into_iter()
                .filter(|e| minors.iter().any(|m| e.minors.contains(*m)))
                .collect(),
            format!("the kubelet's version is disputed: {text}"),
            "for both versions, so the dispute does not matter".to_string(),
        ),
        KubeletMinor::Unknown(why) => (
            eras.into_iter()
                .filter(|e| e.minors.meets_supported())
                .collect(),
            why.clone(),
            format!(
                "on every supported kubelet ({}), so its version is not needed",
                Minors {
                    first: Some(OLDEST),
                    last: Some(NEWEST)
                }
            ),
        ),
    };
    let mut possible = possible.into_iter();
    let Some(first) = possible.next() else {
        return unknown_with(observed, source, format!("no rule applies; {why}"));
    };
    let rest: Vec<Era> = possible.collect();
    if rest.is_empty() {
        return first.outcome;
    }
    let each = std::iter::once(&first)
        .chain(rest.iter())
        .map(|e| {
            format!(
                "{} {}: {}",
                e.minors,
                e.outcome.status.as_str(),
                e.outcome.reason
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if rest
        .iter()
        .all(|e| e.outcome.status == first.outcome.status)
    {
        let status = first.outcome.status;
        let same_observed = rest
            .iter()
            .all(|e| e.outcome.observed == first.outcome.observed);
        Outcome {
            observed: if same_observed {
                first.outcome.observed.clone()
            } else {
                observed.to_string()
            },
            reason: format!("{each}; {} {agreed}", status.as_str()),
            ..first.outcome
        }
    } else {
        Outcome::new(
            Status::Unknown,
            observed,
            source,
            format!("{each}; the verdict depends on the kubelet's version, and {why}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::version::release_table::releases;
    use super::*;
    use crate::evaluate::testing::*;

    #[test]
    fn bounds_are_the_release_tables() {
        let t = releases().unwrap();
        assert_eq!(
            (t.first().unwrap().minor, t.last().unwrap().minor),
            (OLDEST, NEWEST),
            "data/releases.yaml changed: check every rule in src/evaluate/*.rs that uses \
             evaluate::by_version against the new minor's kubelet source, then move the bounds"
        );
    }

    #[test]
    fn spans() {
        let m = |x| minor(1, x);
        assert!(Minors::up_to(m(36)).contains(m(36)));
        assert!(!Minors::up_to(m(36)).contains(m(37)));
        assert!(Minors::from(m(37)).contains(m(40)));
        assert!(Minors::ALL.contains(m(1)));
        assert!(Minors::from(m(37)).meets_supported());
        assert!(!Minors::from(m(38)).meets_supported());
        assert!(!Minors::up_to(m(18)).meets_supported());
        assert_eq!(Minors::up_to(m(36)).to_string(), "up to 1.36");
        assert_eq!(Minors::from(m(37)).to_string(), "from 1.37");
        let between = Minors {
            first: Some(m(19)),
            last: Some(m(23)),
        };
        assert_eq!(between.to_string(), "1.19–1.23");
    }

    fn eras(before: Status, after: Status) -> Vec<Era> {
        vec![
            Era::new(
                Minors::up_to(minor(1, 36)),
                Outcome::new(before, "0 (5/s)", "config-file", "old"),
            ),
            Era::new(
                Minors::from(minor(1, 37)),
                Outcome::new(after, "0 (none)", "config-file", "new"),
            ),
        ]
    }

    #[test]
    fn a_known_version_picks_its_era() {
        let v = |m| KubeletMinor::Known {
            minor: minor(1, m),
            text: format!("v1.{m}.0 (binary)"),
        };
        let o = judge_for(&v(36), eras(Status::Pass, Status::Fail), "0", "x");
        assert_eq!(
            (o.status, o.reason.as_str()),
            (Status::Pass, "kubelet v1.36.0 (binary), up to 1.36: old")
        );
        let o = judge_for(&v(37), eras(Status::Pass, Status::Fail), "0", "x");
        assert_eq!((o.status, o.observed.as_str()), (Status::Fail, "0 (none)"));
        // Older and newer than the table: the open ends hold.
        assert_eq!(
            judge_for(&v(12), eras(Status::Pass, Status::Fail), "0", "x").status,
            Status::Pass
        );
        assert_eq!(
            judge_for(&v(40), eras(Status::Pass, Status::Fail), "0", "x").status,
            Status::Fail
        );
    }

    #[test]
    fn an_unknown_version_decides_only_when_every_era_agrees() {
        let u = KubeletMinor::Unknown("the kubelet's version is not known".into());
        let o = judge_for(&u, eras(Status::Pass, Status::Fail), "0", "config-file");
        assert_eq!(o.status, Status::Unknown);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("0", "config-file")
        );
        assert!(
            o.reason
                .starts_with("up to 1.36 pass: old; from 1.37 fail: new; the verdict depends"),
            "{}",
            o.reason
        );
        assert!(
            o.reason.ends_with("the kubelet's version is not known"),
            "{}",
            o.reason
        );

        let o = judge_for(&u, eras(Status::Fail, Status::Fail), "0", "config-file");
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.observed, "0");
        assert!(
            o.reason
                .contains("fail on every supported kubelet (1.19–1.37)"),
            "{}",
            o.reason
        );

        // An era outside the supported minors is not a possibility.
        let mut e = eras(Status::Pass, Status::Fail);
        e[1].minors = Minors::from(minor(1, 38));
        e[0].minors = Minors::up_to(minor(1, 37));
        let o = judge_for(&u, e, "0", "config-file");
        assert_eq!((o.status, o.reason.as_str()), (Status::Pass, "old"));
    }

    #[test]
    fn disputed_versions_count_both() {
        let d = KubeletMinor::Disputed {
            minors: [minor(1, 37), minor(1, 36)],
            text: "binary says v1.37.0, node_status says v1.36.3".into(),
        };
        let o = judge_for(&d, eras(Status::Pass, Status::Fail), "0", "flag");
        assert_eq!(o.status, Status::Unknown);
        assert!(
            o.reason.contains("disputed: binary says v1.37.0"),
            "{}",
            o.reason
        );
        let d = KubeletMinor::Disputed {
            minors: [minor(1, 35), minor(1, 36)],
            text: "binary says v1.36.0, node_status says v1.35.3".into(),
        };
        assert_eq!(
            judge_for(&d, eras(Status::Pass, Status::Fail), "0", "flag").status,
            Status::Pass
        );
        let d = KubeletMinor::Disputed {
            minors: [minor(1, 37), minor(1, 36)],
            text: "binary says v1.37.0, node_status says v1.36.3".into(),
        };
        let o = judge_for(&d, eras(Status::Fail, Status::Fail), "0", "flag");
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.reason
                .ends_with("fail for both versions, so the dispute does not matter"),
            "{}",
            o.reason
        );
    }

    fn ctx_of(s: &crate::model::snapshot::Snapshot) -> KubeletMinor {
        let p = crate::evaluate::policy::Policy::embedded();
        kubelet_minor(&Ctx {
            snapshot: s,
            policy: &p,
        })
    }

    #[test]
    fn version_sources() {
        let mut s = kubeadm();
        assert!(matches!(ctx_of(&s), KubeletMinor::Unknown(_)));
        kubelet_mut(&mut s).version = Some("v1.37.2+rke2r1".into());
        kubelet_mut(&mut s).version_source = Some(crate::model::snapshot::VersionSource::Binary);
        assert_eq!(
            ctx_of(&s),
            KubeletMinor::Known {
                minor: minor(1, 37),
                text: "v1.37.2+rke2r1 (binary)".into()
            }
        );
        kubelet_mut(&mut s).version = Some("garbage".into());
        assert!(matches!(ctx_of(&s), KubeletMinor::Unknown(w) if w.contains("not understood")));

        // The Node's kubeletVersion: alone it decides; naming another minor it disputes.
        let mut view = crate::model::snapshot::ClusterView::no_access("test");
        view.node.data = Some(vec![crate::model::snapshot::NodeFacts {
            name: "node-1".into(),
            kubelet_version: Some("v1.36.3".into()),
            pool: None,
        }]);
        s.cluster = Some(view);
        kubelet_mut(&mut s).version = None;
        assert_eq!(
            ctx_of(&s),
            KubeletMinor::Known {
                minor: minor(1, 36),
                text: "v1.36.3 (node_status)".into()
            }
        );
        kubelet_mut(&mut s).version = Some("v1.36.9".into());
        assert!(matches!(ctx_of(&s), KubeletMinor::Known { minor: m, .. } if m == minor(1, 36)));
        kubelet_mut(&mut s).version = Some("v1.37.0".into());
        assert_eq!(
            ctx_of(&s),
            KubeletMinor::Disputed {
                minors: [minor(1, 37), minor(1, 36)],
                text: "binary says v1.37.0, node_status says v1.36.3".into()
            }
        );
    }
}
