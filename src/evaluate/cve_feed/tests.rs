use super::version_lines::tokens;
use super::*;
use crate::evaluate::version::cve_table::Range;
use crate::model::version::KubeVersion;

fn v(s: &str) -> KubeVersion {
    KubeVersion::parse(s).unwrap()
}

fn item(id: &str, summary: &str, text: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "url": "https://github.com/kubernetes/kubernetes/issues/999001",
        "external_url": format!("https://www.cve.org/cverecord?id={id}"),
        "summary": summary,
        "content_text": text,
        "date_published": "2026-10-01T00:00:00Z",
        "status": "fixed",
        "_kubernetes_io": {"google_group_url": "g", "issue_number": 999001}
    })
}

fn feed_of(items: Vec<serde_json::Value>) -> Feed {
    let doc = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Kubernetes Vulnerability Announcements - CVE Feed",
        "_kubernetes_io": {"updated_at": "2026-11-30T12:00:00Z"},
        "items": items
    });
    parse("feed.json", doc.to_string().as_bytes()).unwrap()
}

fn one(id: &str, summary: &str, text: &str) -> FeedEntry {
    let f = feed_of(vec![item(id, summary, text)]);
    assert_eq!(f.entries.len(), 1);
    f.entries[0].clone()
}

fn kubelet(e: FeedEntry) -> Cve {
    match e {
        FeedEntry::Kubelet(c) => c,
        other => panic!("not read: {other:?}"),
    }
}

#[test]
fn reads_the_announcement_formats_of_the_feed() {
    // The current template (CVE-2025-0426, kubernetes/kubernetes#130016).
    let c = kubelet(one(
            "CVE-2026-99001",
            "Node Denial of Service via kubelet Checkpoint API",
            "CVSS Rating: x\r\n\r\n### Am I vulnerable?\r\n\r\n#### Affected Versions\r\n\r\n- kubelet v1.32.0 to v1.32.1\r\n- kubelet v1.31.0 to v1.31.5\r\n- kubelet v1.30.0 to v1.30.9\r\n\r\n### How do I mitigate this vulnerability?\r\n\r\nUpgrade.\r\n\r\n#### Fixed Versions\r\n\r\n- kubelet master - fixed by #129739\r\n- kubelet v1.32.2 - fixed by #130010\r\n- kubelet v1.31.6 - fixed by #130011\r\n- kubelet v1.30.10 - fixed by #130012\r\n- kubelet v1.29.14 - fixed by #130013\r\n",
        ));
    assert_eq!(c.origin, CveOrigin::Feed);
    assert_eq!(
        c.source,
        "https://github.com/kubernetes/kubernetes/issues/999001"
    );
    assert!(!c.windows_only && !c.all_versions);
    assert_eq!(
        c.affected,
        vec![
            Range::Between {
                min: v("1.32.0"),
                max_inclusive: v("1.32.1")
            },
            Range::Between {
                min: v("1.31.0"),
                max_inclusive: v("1.31.5")
            },
            Range::Between {
                min: v("1.30.0"),
                max_inclusive: v("1.30.9")
            },
        ]
    );
    assert_eq!(
        c.fixed,
        vec![v("1.32.2"), v("1.31.6"), v("1.30.10"), v("1.29.14")]
    );

    // Bold headings, no component, "<=" on the oldest branch, an upper-case V
    // (CVE-2023-2431, #118690).
    let c = kubelet(one(
            "CVE-2026-99002",
            "Bypass of seccomp profile enforcement",
            "This bug affects Kubelet.\n\n### Kubernetes version\n\n**Affected Versions**\nv1.27.0 - v1.27.1\nv1.26.0 - v1.26.4\n<= v1.24.13\n\n**Fixed Versions**\nv1.27.2\nv1.26.5\nV1.24.14\n\n### Anything else we need to know?\n",
        ));
    assert_eq!(c.affected[2], Range::Before(v("1.24.14")));
    assert_eq!(c.fixed, vec![v("1.27.2"), v("1.26.5"), v("1.24.14")]);

    // "<=" on every branch without a v (CVE-2024-5321, #126161), a Windows title.
    let c = kubelet(one(
            "CVE-2026-99003",
            "Incorrect permissions on Windows containers logs",
            "#### Affected Versions\n\n- kubelet <= 1.27.15\n- kubelet <= 1.28.11\n- kubelet <= 1.30.2 \n\n#### Fixed Versions\n\n- kubelet 1.27.16\n- kubelet 1.28.12\n- kubelet 1.30.3 \n",
        ));
    assert!(c.windows_only);
    assert_eq!(
        c.affected,
        vec![
            Range::Before(v("1.27.16")),
            Range::Between {
                min: v("1.28.0"),
                max_inclusive: v("1.28.11")
            },
            Range::Between {
                min: v("1.30.0"),
                max_inclusive: v("1.30.2")
            },
        ]
    );

    // "v1.18.0-1.18.5" and "< v1.16.13" (CVE-2020-8557, #93032).
    let c = kubelet(one(
            "CVE-2026-99004",
            "Node disk DOS by writing to container /etc/hosts",
            "#### Affected Versions\n\n- kubelet v1.18.0-1.18.5\n- kubelet v1.17.0-1.17.8\n- kubelet < v1.16.13\n\n#### Fixed Versions\n\n- kubelet v1.18.6\n- kubelet v1.17.9\n- kubelet v1.16.13\n",
        ));
    assert_eq!(c.affected[2], Range::Before(v("1.16.13")));

    // "All versions" with no fix, the component in its own list (CVE-2025-1767).
    let c = kubelet(one(
            "CVE-2026-99005",
            "GitRepo Volume Inadvertent Local Repository Access",
            "**Am I vulnerable?**\n\nAffected Components\nkubelet\n\n**Affected Versions**\nAll versions of Kubernetes\n\n**How do I mitigate this vulnerability?**\n\nUse an init container.\n",
        ));
    assert!(c.all_versions && c.affected.is_empty() && !c.has_fix());
}

#[test]
fn other_components_are_not_kubelet_cves() {
    for (summary, text) in [
            (
                "Nodes can delete themselves by adding an OwnerReference",
                "#### Affected Versions\n\n- kube-apiserver: v1.32.0 - v1.32.5\n- kube-apiserver: v1.33.0 - 1.33.1\n\n#### Fixed Versions\n\n- kube-apiserver >= v1.32.6\n",
            ),
            (
                "ingress-nginx rewrite-target nginx configuration injection",
                "#### Affected Versions\n\n- ingress-nginx: < 1.13.8\n- ingress-nginx: < 1.14.4\n",
            ),
            (
                "Bypassing policies imposed by the ImagePolicyWebhook",
                "All clusters using the admission plugin.\n\n#### Affected Versions\n\n- v1.27.0 - v1.27.2\n",
            ),
        ] {
            assert_eq!(
                one("CVE-2026-99010", summary, text),
                FeedEntry::Other("CVE-2026-99010".into()),
                "{summary}"
            );
        }
}

#[test]
fn kubelet_cves_that_cannot_be_read_are_reported_not_dropped() {
    for (text, why) in [
            ("The kubelet is affected.\n\nUpgrade soon.", "no Affected Versions list"),
            (
                "#### Affected Versions\n\n- kubelet v1.20 - v1.21\n",
                "not a version range",
            ),
            (
                "#### Affected Versions\n\n- kubelet >= v1.8.0 (including all later minor versions)\n",
                "not a version range",
            ),
            (
                "#### Affected Versions\n\n- kubelet v1.35.0 - v1.35.3\n\n#### Fixed Versions\n\n- kubelet v1.35.2\n",
                "contradict",
            ),
            (
                "#### Affected Versions\n\n- kubelet v1.35.0 - v1.35.3\n\n#### Affected Versions\n\n- kubelet v1.34.0\n",
                "several",
            ),
            (
                "#### Affected Versions\n\n- kubelet v1.35.0 - v1.35.3\n\n#### Fixed Versions\n\n- kubelet v1.36.0-alpha.2\n",
                "not a release version",
            ),
        ] {
            match one("CVE-2026-99020", "A kubelet issue", text) {
                FeedEntry::Unreadable(u) => {
                    assert_eq!(u.id, "CVE-2026-99020");
                    assert!(u.why.contains(why), "{text}: {}", u.why);
                    assert_eq!(u.source, "https://github.com/kubernetes/kubernetes/issues/999001");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    // An old-style item for two CVEs at once.
    let f = feed_of(vec![item(
        "CVE-2026-99021, CVE-2026-99022",
        "kubelet issues",
        "#### Affected Versions\n\n- kubelet v1.35.0\n",
    )]);
    assert!(f
        .entries
        .iter()
        .all(|e| matches!(e, FeedEntry::Unreadable(u) if u.why.contains("several CVEs"))));
    assert_eq!(f.entries.len(), 2);
}

#[test]
fn merge_keeps_embedded_entries_and_adds_new_ones() {
    let embedded = cves().unwrap();
    let curated = embedded
        .cves
        .iter()
        .find(|c| c.id == "CVE-2025-0426")
        .unwrap();
    let feed = feed_of(vec![
            // An embedded id with other versions in the feed: the embedded entry wins.
            item(
                "CVE-2025-0426",
                "Node Denial of Service via kubelet Checkpoint API",
                "#### Affected Versions\n\n- kubelet v1.29.0 - v1.29.13\n\n#### Fixed Versions\n\n- kubelet v1.29.14\n",
            ),
            item(
                "CVE-2026-99030",
                "kubelet new issue",
                "#### Affected Versions\n\n- kubelet v1.35.0 - v1.35.3\n\n#### Fixed Versions\n\n- kubelet v1.35.4\n",
            ),
            item("CVE-2026-99031", "kubelet unreadable", "no lists"),
            // A second item for the same id: the first wins.
            item(
                "CVE-2026-99030",
                "kubelet new issue again",
                "#### Affected Versions\n\n- kubelet v1.36.0\n",
            ),
        ]);
    let merged = merge(embedded, &feed);
    assert_eq!(merged.cves.len(), embedded.cves.len() + 1);
    assert_eq!(
        merged
            .cves
            .iter()
            .find(|c| c.id == "CVE-2025-0426")
            .unwrap(),
        curated
    );
    let new = merged
        .cves
        .iter()
        .find(|c| c.id == "CVE-2026-99030")
        .unwrap();
    assert_eq!(new.summary, "kubelet new issue");
    assert!(new.affects(v("v1.35.2")) && !new.affects(v("v1.35.4")));
    assert_eq!(merged.unreadable.len(), 1);
    assert_eq!(merged.unreadable[0].id, "CVE-2026-99031");
    let info = merged.feed.as_ref().unwrap();
    assert_eq!((info.items, info.added), (4, 1));
    assert_eq!(info.updated_at.as_deref(), Some("2026-11-30T12:00:00Z"));
}

#[test]
fn bad_files_say_what_and_where_but_not_what_they_contain() {
    let e = parse(
        "f.json",
        b"{\"version\": \"https://jsonfeed.org/version/1.1\",\n \"items\": [secret-token-123]}",
    )
    .unwrap_err();
    assert_eq!(
        e,
        CveFeedError::Json {
            path: "f.json".into(),
            kind: "syntax error",
            line: 2,
            column: 12
        }
    );
    let e = parse("f.json", b"{\"version\": 7, \"items\": []}").unwrap_err();
    assert!(
        matches!(
            e,
            CveFeedError::Json {
                kind: "unexpected type or missing field",
                ..
            }
        ),
        "{e}"
    );
    let e = parse("f.json", b"{\"items\": [{\"id\": \"secret-token-123\"}]").unwrap_err();
    assert!(
        matches!(
            e,
            CveFeedError::Json {
                kind: "unexpected end of input",
                ..
            }
        ),
        "{e}"
    );
    let e = parse("f.json", b"{\"items\": [{\"id\": {\"x\": \"secret-token-123\"}}], \"version\": \"https://jsonfeed.org/version/1.1\"}").unwrap_err();
    assert!(!e.to_string().contains("secret-token-123"), "{e}");
    let e = parse(
        "f.json",
        b"{\"version\": \"https://example.com/feed\", \"items\": []}",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("not the official CVE feed's format"),
        "{e}"
    );
    let e = parse(
        "f.json",
        b"{\"version\": \"https://jsonfeed.org/version/1.1\"}",
    )
    .unwrap_err();
    assert!(e.to_string().contains("no `items`"), "{e}");
    assert!(parse("f.json", b"\xff\xfe").is_err());
}

#[test]
fn the_sample_feed_and_bad_files() {
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cve-feed/official-format.json");
    let t = load(&sample, Ok(std::fs::read(&sample).unwrap())).unwrap();
    let new = t
        .cves
        .iter()
        .find(|c| c.id == "CVE-2026-99901")
        .expect("the 2026 item");
    assert_eq!(new.origin, CveOrigin::Feed);
    assert_eq!(
        new.source,
        "https://github.com/kubernetes/kubernetes/issues/999901"
    );
    assert!(new.affects(v("v1.35.2")));
    assert!(t.unreadable.iter().any(|u| u.id == "CVE-2026-99902"));
    // Other components and embedded ids add nothing.
    assert!(!t
        .cves
        .iter()
        .any(|c| c.id == "CVE-2025-5187" || c.id == "CVE-2026-3288"));
    assert_eq!(t.feed.as_ref().unwrap().added, 1);

    let dir = tempfile::tempdir().unwrap();
    let malformed = dir.path().join("malformed.json");
    std::fs::write(
        &malformed,
        "{\"version\": \"https://jsonfeed.org/version/1.1\", \"items\": [",
    )
    .unwrap();
    assert!(matches!(
        load(&malformed, Ok(std::fs::read(&malformed).unwrap())),
        Err(CveFeedError::Json { .. })
    ));
    // A file that could not be read (the caller reads it: cli's `load_cve_feed`).
    let e = load(
        &malformed,
        Err(HostError::NotAFile {
            path: "fifo".into(),
        }),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("--cve-feed "), "{e}");
}

#[test]
fn version_tokens() {
    let t = tokens("kubelet v1.32.2 - fixed by #130010");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].version(), Some(v("1.32.2")));
    let t = tokens("1.3.x-1.6.x and v1.20 and 1.20.0-alpha2, 1.30.2+");
    assert_eq!(t.len(), 5);
    assert!(t[0].suffix && t[1].suffix && t[3].suffix);
    assert_eq!(t[2].patch, None);
    assert_eq!(t[4].version(), Some(v("1.30.2")));
    // Issue numbers are not versions; a CVSS score is a major.minor without a patch.
    assert!(tokens("fixed by #130016").is_empty());
    let t = tokens("score: 6.2");
    assert_eq!((t.len(), t[0].patch), (1, None));
}
