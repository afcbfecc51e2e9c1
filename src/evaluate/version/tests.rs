use super::super::Status;
use super::cve_table::{cves, parse_cves, CveOrigin, Range};
use super::release_table::{maintained_minors, parse_releases, releases};
use super::supported::judge_by_policy;
use super::*;
use crate::evaluate::testing::*;
use crate::model::time::Day;
use crate::model::version::Minor;

fn v(s: &str) -> KubeVersion {
    KubeVersion::parse(s).unwrap()
}

fn with_version(raw: Option<&str>, source: &str) -> crate::model::snapshot::Snapshot {
    let mut s = kubeadm();
    let k = kubelet_mut(&mut s);
    k.version = raw.map(str::to_string);
    k.version_source = raw.map(|_| source.parse().expect("a version source"));
    s
}

fn at(s: &mut crate::model::snapshot::Snapshot, date: &str) {
    s.taken_at = Day::parse(date).unwrap().unix() as f64 + 3600.5;
}

fn with_api(s: &mut crate::model::snapshot::Snapshot, api: Option<&str>) {
    use crate::model::snapshot::{ApiSource, ClusterView, NodeFacts};
    s.cluster = Some(ClusterView {
        access: Ok("in-cluster service account".into()),
        node: ApiSource {
            data: Some(vec![NodeFacts {
                name: "node-1".into(),
                kubelet_version: api.map(str::to_string),
                pool: None,
            }]),
            health: Ok(()),
            duration: std::time::Duration::ZERO,
        },
        ..ClusterView::no_access("")
    });
}

#[test]
fn the_node_status_is_a_version_source_and_a_cross_check() {
    const CVES: &str = "kubelet-version-no-known-cves";
    // No process-local version: the API's is used.
    let mut s = with_version(None, "binary");
    with_api(&mut s, Some("v1.33.4"));
    at(&mut s, "2026-03-01");
    let o = eval("kubelet-version-supported", &s);
    assert_eq!(o.observed, "v1.33.4 (source node_status)");
    assert_eq!(o.source, "node_status");
    // Agreement: nothing said.
    let mut s = with_version(Some("v1.33.4"), "binary");
    with_api(&mut s, Some("v1.33.4"));
    at(&mut s, "2026-03-01");
    assert_eq!(eval(CVES, &s).source, "binary");
    // The binary on disk is newer than the running kubelet: the older is judged.
    let mut s = with_version(Some("v1.33.4"), "binary");
    with_api(&mut s, Some("v1.31.1"));
    at(&mut s, "2026-03-01");
    let o = eval("kubelet-version-supported", &s);
    assert_status(&o, Status::Fail);
    assert!(o.observed.starts_with("v1.31.1"), "{}", o.observed);
    assert_eq!(o.source, "node_status; mismatch: binary says v1.33.4");
    // The API reports a newer one (a stale Node status): the binary's is judged.
    let mut s = with_version(Some("v1.31.1"), "binary");
    with_api(&mut s, Some("v1.33.4"));
    at(&mut s, "2026-03-01");
    let o = eval("kubelet-version-supported", &s);
    assert!(o.observed.starts_with("v1.31.1"), "{}", o.observed);
    assert_eq!(o.source, "binary; mismatch: node_status says v1.33.4");
    // Neither: unknown.
    let mut s = with_version(None, "binary");
    with_api(&mut s, None);
    assert_status(&eval(CVES, &s), Status::Unknown);
}

#[test]
fn versions() {
    for (s, want) in [
        ("v1.31.4", "1.31.4"),
        ("v1.33.4+rke2r1", "1.33.4"),
        ("v1.30.2-eks-1552ad0", "1.30.2"),
        ("v1.29.8-gke.1031000", "1.29.8"),
        ("v1.35.4+k3s1", "1.35.4"),
    ] {
        assert_eq!(v(s).to_string(), want, "{s}");
    }
    assert!(v("v1.31.10") > v("v1.31.9"));
    assert!(v("v1.32.0") > v("v1.31.99"));
    assert_eq!(v("v1.33.4+rke2r1"), v("v1.33.4-rke2r1"));
    assert_eq!(version_suffix("v1.33.4+rke2r1"), Some("+rke2r1"));
    assert_eq!(version_suffix("v1.30.2-eks-1552ad0"), Some("-eks-1552ad0"));
    assert_eq!(version_suffix("v1.31.4"), None);
    assert!(is_prerelease("-rc.0") && !is_prerelease("-eks-1552ad0"));
    assert_eq!(Minor::parse("1.31").unwrap().to_string(), "1.31");
    assert_eq!(Minor::parse("1.31.0"), None);
    assert_eq!(Minor::parse("v1.31"), None);
    assert_eq!(KubeVersion::parse_plain("1.31.4"), Some(v("1.31.4")));
    assert_eq!(KubeVersion::parse_plain("v1.31.4"), None);
    assert_eq!(KubeVersion::parse_plain("1.31.4-rc.0"), None);
}

/// The embedded tables parse and are consistent with each other.
#[test]
fn embedded_release_table() {
    let t = releases().expect("data/releases.yaml is valid");
    assert_eq!(t.first().unwrap().minor.to_string(), "1.19");
    assert!(t.iter().any(|r| r.minor.to_string() == "1.36"));
    for r in t {
        // 1.19+ get about a year of patches plus a maintenance period; the longest
        // (1.22, late patches) is under 17 months.
        let days = r.released.days_until(r.end_of_life);
        assert!((365..=510).contains(&days), "{}: {days} days", r.minor);
        // Branches whose final patch is recorded are past their end of life.
        if r.final_patch.is_some() {
            assert!(!r.eol_planned, "{}", r.minor);
        }
    }
    // The reference's current three (1.35, 1.34, 1.33) on a date when they were.
    let names = |d: &str| {
        maintained_minors(t, Day::parse(d).unwrap())
            .iter()
            .map(|r| r.minor.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("2026-03-01"), ["1.35", "1.34", "1.33"]);
    assert_eq!(names("2025-01-01"), ["1.32", "1.31", "1.30"]);
    // After 1.37's release, during 1.34's maintenance period, it is no longer a top-3.
    assert_eq!(names("2026-09-01"), ["1.37", "1.36", "1.35"]);
}

#[test]
fn embedded_cve_table() {
    let t = cves().expect("data/cves.yaml is valid");
    let releases = releases().unwrap();
    let ids: Vec<&str> = t.cves.iter().map(|c| c.id.as_str()).collect();
    for id in [
        "CVE-2025-1767",
        "CVE-2025-0426",
        "CVE-2024-9042",
        "CVE-2024-10220",
        "CVE-2024-5321",
        "CVE-2023-5528",
        "CVE-2023-3955",
        "CVE-2023-3676",
        "CVE-2023-2431",
        "CVE-2021-25749",
        "CVE-2021-25741",
        "CVE-2020-8564",
        "CVE-2020-8558",
        "CVE-2020-8557",
        "CVE-2020-8551",
        "CVE-2019-11248",
        "CVE-2019-11245",
        "CVE-2017-1002102",
    ] {
        assert!(ids.contains(&id), "{id} missing");
    }
    assert_eq!(ids.len(), 18);
    assert!(t.unreadable.is_empty() && t.feed.is_none());
    for c in &t.cves {
        // Every entry names its announcement, a kubernetes/kubernetes issue.
        assert!(c.issue().is_some(), "{}: source {}", c.id, c.source);
        assert_eq!(c.origin, CveOrigin::Embedded);
        for r in &c.affected {
            // Every range ends right before a fix on its branch, or at the final patch
            // of a branch that never got one.
            let succ = r.successor();
            let fixed_next = c.fixed.contains(&succ);
            let last = match r {
                Range::Between { max_inclusive, .. } => *max_inclusive,
                Range::Before(b) => *b,
            };
            let final_patch = releases
                .iter()
                .find(|rel| rel.minor == last.minor_of())
                .and_then(|rel| rel.final_patch);
            assert!(
                fixed_next || final_patch == Some(last),
                "{}: range {r} is followed neither by a fix nor by the end of its branch",
                c.id
            );
            assert!(!r.contains(succ), "{}: {r}", c.id);
        }
        for f in &c.fixed {
            assert!(!c.affects(*f), "{}: fixed {f} is affected", c.id);
        }
    }
    let gitrepo = t.cves.iter().find(|c| c.id == "CVE-2025-1767").unwrap();
    assert!(gitrepo.all_versions && !gitrepo.has_fix());
    assert!(gitrepo.affects(v("v1.37.0")) && gitrepo.affects(v("v1.0.0")));
    let windows: Vec<&str> = t
        .cves
        .iter()
        .filter(|c| c.windows_only)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        windows,
        [
            "CVE-2024-9042",
            "CVE-2024-5321",
            "CVE-2023-5528",
            "CVE-2023-3955",
            "CVE-2023-3676",
            "CVE-2021-25749"
        ]
    );
}

#[test]
fn tables_reject_inconsistencies() {
    let cve = |body: &str| {
        parse_cves(&format!(
                "as_of: \"2026-01-01\"\ncves:\n  - id: CVE-2099-0001\n    source: https://github.com/kubernetes/kubernetes/issues/1\n    summary: s\n    windows_only: false\n{body}"
            ))
    };
    assert!(cve(
        "    affected: [{min: \"1.30.0\", max_inclusive: \"1.30.2\"}]\n    fixed: [\"1.30.3\"]\n"
    )
    .is_ok());
    for (bad, why) in [
            ("    affected: [{min: \"1.30.3\", max_inclusive: \"1.30.2\"}]\n", "empty"),
            ("    affected: [{min: \"1.30.0\", max_inclusive: \"1.30.2\"}]\n    fixed: [\"1.30.1\"]\n", "inside"),
            ("    affected: [{min: \"1.30.0\"}]\n", "either"),
            ("    affected: [{before: \"1.30.0\", min: \"1.29.0\"}]\n", "either"),
            ("    affected: [{before: \"1.30.0\"}, {min: \"1.29.0\", max_inclusive: \"1.29.5\"}]\n", "overlap"),
            ("    affected: [{before: \"v1.30.0\"}]\n", "major.minor.patch"),
            ("    affected: []\n", "no affected"),
            ("    all_versions: true\n    affected: [{before: \"1.30.0\"}]\n", "all_versions"),
            ("    affected: [{before: \"1.30.0\"}]\n    fixed: [\"1.30.0\", \"1.30.1\"]\n", "two fixed"),
            ("    affected: [{befor: \"1.30.0\"}]\n", "befor"),
        ] {
            let e = cve(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    // The source must be an announcement issue.
    let ok = "    affected: [{before: \"1.30.0\"}]\n";
    for bad in [
        "https://github.com/kubernetes/kubernetes/pull/1",
        "https://github.com/kubernetes/kubernetes/issues/",
        "https://github.com/kubernetes/kubernetes/issues/12a",
        "https://example.com/kubernetes/kubernetes/issues/1",
    ] {
        let text = format!(
                "as_of: \"2026-01-01\"\ncves:\n  - id: CVE-2099-0001\n    source: {bad}\n    summary: s\n    windows_only: false\n{ok}"
            );
        let e = parse_cves(&text).unwrap_err();
        assert!(e.contains("announcement"), "{bad}: {e}");
    }
    let rel = |body: &str| parse_releases(&format!("releases:\n{body}"));
    let ok = "  - {minor: \"1.30\", released: \"2024-04-17\", end_of_life: \"2025-07-15\"}\n";
    assert!(rel(ok).is_ok());
    for (bad, why) in [
            ("  - {minor: \"1.30\", released: \"2024-04-17\", end_of_life: \"2024-04-17\"}\n", "not after"),
            ("  - {minor: \"1.30\", released: \"2024-02-30\", end_of_life: \"2025-07-15\"}\n", "released"),
            ("  - {minor: \"1.30\", released: \"2024-04-17\", end_of_life: \"2025-07-15\", final_patch: \"1.31.1\"}\n", "another branch"),
            ("  - {minor: \"1.30\", released: \"2024-04-17\", end_of_life: \"2025-07-15\", eol: soon}\n", "planned"),
        ] {
            let e = rel(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    let gap = format!(
        "{ok}  - {{minor: \"1.32\", released: \"2024-12-11\", end_of_life: \"2026-02-28\"}}\n"
    );
    assert!(rel(&gap).unwrap_err().contains("without gaps"));
    assert!(rel("").is_err());
}

#[test]
fn supported_versions() {
    let id = "kubelet-version-supported";
    let mut s = with_version(Some("v1.35.2"), "binary");
    at(&mut s, "2026-03-01");
    let o = eval(id, &s);
    assert_status(&o, Status::Pass);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("v1.35.2 (source binary)", "binary")
    );
    assert!(o.reason.contains("2027-02-28"), "{}", o.reason);
    assert_eq!(
        o.expected.as_deref(),
        Some("one of the three newest maintained minors: 1.35, 1.34, 1.33")
    );

    // Past end of life: the reason names the date.
    let mut s = with_version(Some("v1.31.4"), "binary");
    at(&mut s, "2026-03-01");
    let o = eval(id, &s);
    assert_status(&o, Status::Fail);
    assert_eq!(o.observed, "v1.31.4 (source binary)");
    assert!(
        o.reason.contains("reached end of life on 2025-11-11"),
        "{}",
        o.reason
    );

    // The same version was fine while 1.31 was maintained.
    at(&mut s, "2025-01-01");
    assert_status(&eval(id, &s), Status::Pass);

    // Maintenance period, but a fourth minor is out.
    let mut s = with_version(Some("v1.34.1+rke2r1"), "build_info");
    at(&mut s, "2026-09-01");
    let o = eval(id, &s);
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("2026-10-27 (planned)"), "{}", o.reason);
    assert!(o.reason.contains("1.37, 1.36, 1.35"), "{}", o.reason);

    // Older than the table: fail; newer: unknown (never a guess).
    let mut s = with_version(Some("v1.16.3"), "binary");
    at(&mut s, "2026-03-01");
    assert_status(&eval(id, &s), Status::Fail);
    let mut s = with_version(Some("v1.99.0"), "binary");
    at(&mut s, "2026-03-01");
    let o = eval(id, &s);
    assert_status(&o, Status::Unknown);
    assert!(
        o.reason.contains("supported_kubelet_minors"),
        "{}",
        o.reason
    );

    // A clock before the minor's release.
    let mut s = with_version(Some("v1.36.0"), "binary");
    at(&mut s, "2026-01-01");
    assert_status(&eval(id, &s), Status::Unknown);

    // A stale table says so.
    let mut s = with_version(Some("v1.37.2"), "binary");
    at(&mut s, "2027-03-01");
    let o = eval(id, &s);
    assert_status(&o, Status::Pass);
    assert!(o.reason.contains("a newer minor may exist"), "{}", o.reason);
}

#[test]
fn unknown_versions() {
    for id in ["kubelet-version-supported", "kubelet-version-no-known-cves"] {
        let mut s = with_version(None, "binary");
        kubelet_mut(&mut s).version_error =
            Some("/usr/bin/kubelet --version: timed out after 5s".into());
        let o = eval(id, &s);
        assert_status(&o, Status::Unknown);
        assert!(o.reason.contains("timed out"), "{}", o.reason);
        let o = eval(id, &with_version(Some("garbage"), "override"));
        assert_status(&o, Status::Unknown);
        assert!(o.reason.contains("\"garbage\""), "{}", o.reason);
    }
}

#[test]
fn policy_override_of_the_release_table() {
    let minors: Vec<Minor> = ["1.30", "1.31"]
        .iter()
        .map(|m| Minor::parse(m).unwrap())
        .collect();
    let table = releases().unwrap();
    let today = Day::parse("2026-03-01").unwrap();
    let o = judge_by_policy(
        v("v1.31.4"),
        &minors,
        Some(table),
        today,
        "o".into(),
        "binary".into(),
    );
    assert_status(&o, Status::Pass);
    assert!(
        o.reason.contains("upstream end of life was 2025-11-11"),
        "{}",
        o.reason
    );
    assert_eq!(
        o.expected.as_deref(),
        Some("one of the policy's supported_kubelet_minors: 1.30, 1.31")
    );
    let o = judge_by_policy(
        v("v1.35.0"),
        &minors,
        None,
        today,
        "o".into(),
        "binary".into(),
    );
    assert_status(&o, Status::Fail);
    // The embedded policy lists no minors: the table decides.
    assert_eq!(
        crate::evaluate::policy::Policy::embedded().supported_kubelet_minors(),
        Ok(None)
    );
}

#[test]
fn cve_verdicts() {
    let id = "kubelet-version-no-known-cves";
    let o = eval(id, &with_version(Some("v1.31.4"), "binary"));
    assert_status(&o, Status::Fail);
    assert_eq!(o.observed, "CVE-2025-0426");
    assert_eq!(o.source, "binary");
    assert!(o.reason.contains("fixed in 1.31.6"), "{}", o.reason);
    assert!(
        o.reason
            .contains("Windows-only, this is a Linux node): CVE-2024-9042"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("CVE-2025-1767"), "{}", o.reason);

    let o = eval(id, &with_version(Some("v1.30.2-eks-1552ad0"), "build_info"));
    assert_status(&o, Status::Fail);
    assert_eq!(o.observed, "CVE-2025-0426, CVE-2024-10220");
    assert!(
        o.reason.contains("vendor build (-eks-1552ad0)"),
        "{}",
        o.reason
    );

    // Fixed everywhere that counts: the gitRepo CVE is informational only.
    let o = eval(id, &with_version(Some("v1.32.2"), "binary"));
    assert_status(&o, Status::Pass);
    assert_eq!(o.observed, "none");
    assert!(
        o.reason
            .contains("informational, not counted: CVE-2025-1767"),
        "{}",
        o.reason
    );
    assert!(!o.reason.contains("Windows-only"), "{}", o.reason);

    // A branch that never got a fix points at the fixed branches.
    let o = eval(id, &with_version(Some("v1.28.3"), "binary"));
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("fixed in 1.28.12"), "{}", o.reason);
    let o = eval(id, &with_version(Some("v1.26.3"), "binary"));
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("CVE-2024-10220"), "{}", o.reason);
    assert!(
        o.reason
            .contains("no fix on the 1.26 branch; fixed in 1.30.3, 1.29.7, 1.28.12"),
        "{}",
        o.reason
    );

    // CVE-2025-0426's announcement lists no 1.29 release as affected
    // (kubernetes/kubernetes#130016), although 1.29.14 carries the fix.
    let o = eval(id, &with_version(Some("v1.29.13"), "binary"));
    assert_status(&o, Status::Pass);
    assert!(!o.reason.contains("CVE-2025-0426"), "{}", o.reason);
}

fn feed_item(id: &str, summary: &str, text: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "url": format!("https://github.com/kubernetes/kubernetes/issues/9990{}", &id[id.len() - 2..]),
        "summary": summary,
        "content_text": text,
    })
}

fn with_feed(items: Vec<serde_json::Value>) -> crate::evaluate::policy::Policy {
    let doc = serde_json::json!({"version": "https://jsonfeed.org/version/1.1", "items": items});
    let feed = super::super::cve_feed::parse("/etc/feed.json", doc.to_string().as_bytes()).unwrap();
    let merged = super::super::cve_feed::merge(cves().unwrap(), &feed);
    crate::evaluate::policy::Policy::embedded().with_cve_feed(Ok(merged))
}

#[test]
fn cve_verdicts_with_a_feed() {
    let id = "kubelet-version-no-known-cves";
    let readable = feed_item(
            "CVE-2026-99941",
            "kubelet reads files outside a pod's volumes",
            "#### Affected Versions\n\n- kubelet v1.35.0 - v1.35.5\n\n#### Fixed Versions\n\n- kubelet v1.35.6\n",
        );
    let unreadable = feed_item(
        "CVE-2026-99942",
        "kubelet issue",
        "#### Affected Versions\n\n- kubelet v1.34 and later\n",
    );
    // A CVE only the feed knows fails the control, with the feed as its source.
    let s = with_version(Some("v1.35.2"), "binary");
    let o = eval_with(id, &s, &with_feed(vec![readable.clone()]));
    assert_status(&o, Status::Fail);
    assert_eq!(o.observed, "CVE-2026-99941");
    assert_eq!(o.source, "binary; cve-feed /etc/feed.json");
    assert!(
            o.reason.contains(
                "fixed in 1.35.6; from the CVE feed: https://github.com/kubernetes/kubernetes/issues/999041"
            ),
            "{}",
            o.reason
        );
    assert!(
        o.expected
            .as_deref()
            .unwrap_or("")
            .contains("+ CVE feed /etc/feed.json"),
        "{:?}",
        o.expected
    );
    // Fixed versions pass, and say what was read.
    let s = with_version(Some("v1.35.6"), "binary");
    let o = eval_with(id, &s, &with_feed(vec![readable.clone()]));
    assert_status(&o, Status::Pass);
    assert_eq!(o.source, "binary");
    assert!(
            o.reason.contains("and the CVE feed /etc/feed.json (items: 1; kubelet CVEs added from it: 1, without readable versions: 0)"),
            "{}",
            o.reason
        );
    // A kubelet CVE whose versions cannot be read is never a silent pass...
    let o = eval_with(
        id,
        &s,
        &with_feed(vec![readable.clone(), unreadable.clone()]),
    );
    assert_status(&o, Status::Unknown);
    assert_eq!(o.observed, "CVE-2026-99942");
    assert_eq!(o.source, "binary; cve-feed /etc/feed.json");
    assert!(
            o.reason.contains("whose affected versions could not be read: CVE-2026-99942 (an Affected Versions line is not a version range, https://github.com/kubernetes/kubernetes/issues/999042)"),
            "{}",
            o.reason
        );
    // ...and is named next to a failure.
    let s = with_version(Some("v1.35.2"), "binary");
    let o = eval_with(id, &s, &with_feed(vec![readable, unreadable]));
    assert_status(&o, Status::Fail);
    assert!(
        o.reason.contains("also listed in the CVE feed"),
        "{}",
        o.reason
    );
    // An unusable feed: unknown, with the reason, the version still shown.
    let bad = crate::evaluate::policy::Policy::embedded().with_cve_feed(Err(
        super::super::cve_feed::CveFeedError::Json {
            path: "/etc/feed.json".into(),
            kind: "syntax error",
            line: 3,
            column: 7,
        },
    ));
    let o = eval_with(id, &s, &bad);
    assert_status(&o, Status::Unknown);
    assert_eq!(o.observed, "v1.35.2");
    assert!(
        o.reason.starts_with(
            "--cve-feed /etc/feed.json: not a JSON feed: syntax error at line 3, column 7;"
        ),
        "{}",
        o.reason
    );
}
