//! `check --cve-feed FILE`: a kubelet CVE that only a newer copy of the official CVE feed
//! knows fails `kubelet-version-no-known-cves`, with the feed as its source; an unusable
//! feed makes the control unknown (with the reason) and the check still runs.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::agent::{agent_command, control, run_report};
use common::Fixture;

const CONTROL: &str = "kubelet-version-no-known-cves";

/// The sample feed in the official format (tests/data/cve-feed/README.md).
fn sample_feed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cve-feed/official-format.json")
}

/// `check --format json` of the kubeadm-hardened fixture at kubelet v1.35.2, offline, with
/// `--cve-feed feed`: the report.
fn check_with_feed(feed: &Path) -> serde_json::Value {
    let fx = Fixture::load("kubeadm-hardened");
    let state = tempfile::tempdir().expect("state dir");
    let mut cmd = agent_command();
    cmd.arg("check")
        .arg("--host-root")
        .arg(fx.root())
        .arg("--state-dir")
        .arg(state.path())
        .args([
            "--kubelet-version",
            "v1.35.2",
            "--live-probes",
            "off",
            "--version-exec=false",
            "--api-access",
            "off",
            "--format",
            "json",
            "--fail-on",
            "never",
            "--cve-feed",
        ])
        .arg(feed);
    run_report(&mut cmd, Duration::from_secs(60)).0
}

#[test]
fn a_cve_only_the_feed_knows_fails_the_control_with_the_feed_as_source() {
    let feed = sample_feed();
    let report = check_with_feed(&feed);
    let c = control(&report, CONTROL);
    assert_eq!(c["status"], "fail", "{c}");
    // The made-up 2026 kubelet CVE of the sample feed, read from its announcement text.
    assert_eq!(c["observed"], "CVE-2026-99901", "{c}");
    let source = c["source"].as_str().unwrap_or_default();
    assert_eq!(
        source,
        format!("override; cve-feed {}", feed.display()),
        "{c}"
    );
    let reason = c["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(
            "fixed in 1.35.6; from the CVE feed: https://github.com/kubernetes/kubernetes/issues/999901"
        ),
        "{reason}"
    );
    // The item whose versions are prose is named, not dropped.
    assert!(reason.contains("CVE-2026-99902"), "{reason}");
    // kube-apiserver and ingress-nginx CVEs of the feed are not the kubelet's.
    assert!(
        !reason.contains("CVE-2025-5187") && !reason.contains("CVE-2026-3288"),
        "{reason}"
    );
    let expected = c["expected"].as_str().unwrap_or_default();
    assert!(expected.contains("+ CVE feed"), "{expected}");
}

#[test]
fn an_unusable_feed_makes_the_control_unknown_and_the_check_still_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let malformed = dir.path().join("index.json");
    std::fs::write(
        &malformed,
        "{\"version\": \"https://jsonfeed.org/version/1.1\",\n \"items\": [ghp_notAToken]}",
    )
    .expect("write");
    for (feed, why) in [
        (
            malformed,
            "not a JSON feed: syntax error at line 2, column 12",
        ),
        (dir.path().to_path_buf(), "not a regular file"),
        (dir.path().join("missing.json"), "not found"),
    ] {
        let report = check_with_feed(&feed);
        let c = control(&report, CONTROL);
        assert_eq!(c["status"], "unknown", "{c}");
        let reason = c["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(&format!("--cve-feed {}", feed.display())) && reason.contains(why),
            "{reason}"
        );
        // The file's content is never echoed.
        assert!(!reason.contains("ghp_notAToken"), "{reason}");
        // The other controls are judged as usual (the version one by the same version).
        assert_ne!(
            control(&report, "kubelet-version-supported")["status"],
            "unknown"
        );
    }
}
