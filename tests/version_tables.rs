//! The embedded release and CVE tables, loaded through the public API, agree with known
//! facts (the kubernetes/kubernetes security issues, kubernetes.io/releases), and every
//! GitVersion form seen in the wild parses.

use kubelet_sentinel::evaluate::version::cve_table::cves;
use kubelet_sentinel::evaluate::version::release_table::{maintained_minors, releases};
use kubelet_sentinel::model::time::Day;
use kubelet_sentinel::model::version::version_suffix;

use kubelet_sentinel::model::version::{KubeVersion, Minor};
use kubelet_sentinel::observe::version::{parse_build_info, parse_version_output};

fn v(s: &str) -> KubeVersion {
    KubeVersion::parse(s).unwrap_or_else(|| panic!("{s} parses"))
}

/// Ids of the CVEs counted against a Linux node (fixable, not Windows-only).
fn counted(version: &str) -> Vec<String> {
    cves()
        .expect("CVE table")
        .affecting(v(version))
        .into_iter()
        .filter(|c| !c.windows_only && c.has_fix())
        .map(|c| c.id.clone())
        .collect()
}

fn affecting(version: &str) -> Vec<String> {
    cves()
        .expect("CVE table")
        .affecting(v(version))
        .into_iter()
        .map(|c| c.id.clone())
        .collect()
}

#[test]
fn v1_31_4_is_affected_by_the_checkpoint_dos_fixed_in_1_31_6() {
    let table = cves().expect("CVE table");
    let c = table
        .cves
        .iter()
        .find(|c| c.id == "CVE-2025-0426")
        .expect("CVE-2025-0426 listed");
    assert_eq!(
        c.source,
        "https://github.com/kubernetes/kubernetes/issues/130016"
    );
    assert_eq!(c.issue(), Some(130016));
    assert!(!c.windows_only);
    assert!(c.affects(v("v1.31.4")));
    assert_eq!(c.fix_on_branch(v("v1.31.4")), Some(v("1.31.6")));
    assert!(c.affects(v("v1.31.5")));
    assert!(!c.affects(v("v1.31.6")));
    assert!(c.affects(v("v1.32.0")) && c.affects(v("v1.30.0")));
    // The announcement (kubernetes/kubernetes#130016) lists 1.32.0–1.32.1, 1.31.0–1.31.5
    // and 1.30.0–1.30.9 only: no 1.29 release is affected, although 1.29.14 has the fix
    // (the checkpoint API was an off-by-default alpha there).
    assert!(!c.affects(v("v1.29.13")) && !c.affects(v("v1.29.0")));
    assert_eq!(c.fix_on_branch(v("v1.29.13")), Some(v("1.29.14")));
    assert_eq!(counted("v1.31.4"), ["CVE-2025-0426"]);
    assert_eq!(counted("v1.29.13"), Vec::<String>::new());
}

#[test]
fn every_entry_names_its_announcement_and_the_table_is_current() {
    let table = cves().expect("CVE table");
    for c in &table.cves {
        assert!(
            c.source
                .starts_with("https://github.com/kubernetes/kubernetes/issues/")
                && c.issue().is_some(),
            "{}: {}",
            c.id,
            c.source
        );
    }
    // Reviewed against the feed after its last kubelet CVE (CVE-2025-1767, March 2025).
    assert!(table.as_of >= Day::parse("2026-12-03").expect("date"));
    assert!(table.unreadable.is_empty() && table.feed.is_none());
}

#[test]
fn older_feed_cves_are_listed_too() {
    // CVE-2020-8564 (kubernetes/kubernetes#95622): pull secrets in the logs.
    assert!(counted("v1.19.2").contains(&"CVE-2020-8564".to_string()));
    assert!(!counted("v1.19.3").contains(&"CVE-2020-8564".to_string()));
    // CVE-2017-1002102 (#60814): 1.3.x–1.6.x and 1.7.0–1.7.13 are one range.
    for old in ["v1.3.0", "v1.6.13", "v1.7.13", "v1.8.8", "v1.9.3"] {
        assert!(
            affecting(old).contains(&"CVE-2017-1002102".to_string()),
            "{old}"
        );
    }
    assert!(!affecting("v1.9.4").contains(&"CVE-2017-1002102".to_string()));
}

#[test]
fn cve_2024_9042_is_windows_only() {
    let table = cves().expect("CVE table");
    let c = table
        .cves
        .iter()
        .find(|c| c.id == "CVE-2024-9042")
        .expect("CVE-2024-9042 listed");
    assert!(c.windows_only);
    // It does affect 1.31.4, but never counts on a Linux node.
    assert!(affecting("v1.31.4").contains(&"CVE-2024-9042".to_string()));
    assert!(!counted("v1.31.4").contains(&"CVE-2024-9042".to_string()));
}

#[test]
fn v1_30_2_is_affected_by_the_gitrepo_hooks_cve() {
    let ids = counted("v1.30.2");
    assert!(ids.contains(&"CVE-2024-10220".to_string()), "{ids:?}");
    assert!(!counted("v1.30.3").contains(&"CVE-2024-10220".to_string()));
    // Vendor builds are judged by their upstream patch version.
    assert_eq!(counted("v1.30.2-eks-1552ad0"), ids);
}

#[test]
fn v1_32_2_has_none_of_the_fixed_ones() {
    assert_eq!(counted("v1.32.2"), Vec::<String>::new());
    // Only the unfixable gitRepo CVE (every version, no fix) still lists it.
    assert_eq!(affecting("v1.32.2"), ["CVE-2025-1767"]);
    let table = cves().expect("CVE table");
    let gitrepo = table
        .cves
        .iter()
        .find(|c| c.id == "CVE-2025-1767")
        .expect("CVE-2025-1767 listed");
    assert!(gitrepo.all_versions && !gitrepo.has_fix());
}

#[test]
fn release_table_knows_the_support_window() {
    let t = releases().expect("release table");
    let find = |m: &str| {
        t.iter()
            .find(|r| r.minor == Minor::parse(m).expect("minor"))
            .unwrap_or_else(|| panic!("{m} listed"))
    };
    assert_eq!(find("1.19").released.to_string(), "2020-08-26");
    assert_eq!(find("1.31").end_of_life.to_string(), "2025-11-11");
    assert_eq!(find("1.31").final_patch, Some(v("1.31.14")));
    assert_eq!(find("1.35").end_of_life.to_string(), "2027-02-28");
    let on = |d: &str| {
        maintained_minors(t, Day::parse(d).expect("date"))
            .iter()
            .map(|r| r.minor.to_string())
            .collect::<Vec<_>>()
    };
    // kubernetes.io/releases/version-skew-policy: the three most recent minors are maintained.
    assert_eq!(on("2026-01-15"), ["1.35", "1.34", "1.33"]);
}

#[test]
fn every_git_version_form_parses() {
    for (raw, core, suffix) in [
        ("v1.31.4", (1, 31, 4), None),
        ("v1.33.4+rke2r1", (1, 33, 4), Some("+rke2r1")),
        ("v1.30.2-eks-1552ad0", (1, 30, 2), Some("-eks-1552ad0")),
        ("v1.29.8-gke.1031000", (1, 29, 8), Some("-gke.1031000")),
        ("v1.35.4+k3s1", (1, 35, 4), Some("+k3s1")),
    ] {
        assert_eq!(
            KubeVersion::parse(raw).map(|v| (v.major, v.minor, v.patch)),
            Some(core),
            "{raw}"
        );
        let parsed = v(raw);
        assert_eq!((parsed.major, parsed.minor, parsed.patch), core, "{raw}");
        assert_eq!(version_suffix(raw), suffix, "{raw}");
        // From `kubelet --version` and from kubernetes_build_info, unchanged.
        assert_eq!(
            parse_version_output(&format!("Kubernetes {raw}\n")).as_deref(),
            Some(raw)
        );
        assert_eq!(
            parse_build_info(&format!(
                "kubernetes_build_info{{git_version=\"{raw}\",major=\"1\"}} 1\n"
            ))
            .as_deref(),
            Some(raw)
        );
    }
    // Suffixes are ignored when comparing.
    assert_eq!(v("v1.33.4+rke2r1"), v("v1.33.4"));
    assert!(v("v1.29.8-gke.1031000") < v("v1.29.9"));
    assert!(v("v1.35.4+k3s1") > v("v1.31.4"));
}
