use super::*;
use crate::evaluate::{catalogue, control, ControlResult, Severity, Status};

fn result(id: &'static str, status: Status, observed: &str) -> ControlResult {
    ControlResult {
        id,
        title: "t",
        family: "files",
        severity: Severity::High,
        cis: None,
        practice: "p",
        status,
        observed: observed.to_string(),
        expected: "e".to_string(),
        source: "file-metadata".to_string(),
        reason: format!("{id} is {}", status.as_str()),
        remediation: "r",
    }
}

fn item(b: &Benchmark, id: &str) -> &'static Item {
    b.items()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("{} has no item {id}", b.id))
}

#[test]
fn every_backing_control_exists_and_item_ids_are_unique_and_in_their_group() {
    for b in BENCHMARKS {
        let mut seen = std::collections::BTreeSet::new();
        for g in b.groups {
            assert!(
                g.id.starts_with(&format!("{}.", b.section)),
                "{} {}",
                b.id,
                g.id
            );
            for i in g.items {
                assert!(seen.insert(i.id), "{}: {} twice", b.id, i.id);
                assert!(i.id.starts_with(&format!("{}.", g.id)), "{} {}", b.id, i.id);
                let manual = i.title.ends_with("(Manual)");
                assert_eq!(
                    manual,
                    i.assessment == Assessment::Manual,
                    "{} {}: the title's mark and the assessment disagree",
                    b.id,
                    i.id
                );
                assert!(!i.remediation.is_empty(), "{} {}", b.id, i.id);
                if let Backing::Controls(ids, _) = i.backing {
                    assert!(!ids.is_empty(), "{} {}", b.id, i.id);
                    for id in ids {
                        assert!(control(id).is_some(), "{} {}: no control {id}", b.id, i.id);
                    }
                }
            }
        }
    }
}

/// The catalogue's `cis` column and the CIS table say the same: a control with a CIS id
/// backs exactly that item of cis-1.12, and every control behind a cis-1.12 item names it.
#[test]
fn the_catalogue_cis_column_matches_the_cis_table() {
    for c in catalogue() {
        let backs: Vec<&str> = cis::CIS_1_12
            .items()
            .filter(|i| matches!(i.backing, Backing::Controls(ids, _) if ids.contains(&c.id)))
            .map(|i| i.id)
            .collect();
        match c.cis {
            Some(cis_id) => assert_eq!(backs, vec![cis_id], "{}", c.id),
            None => assert!(
                backs.is_empty(),
                "{} backs {backs:?} without a cis id",
                c.id
            ),
        }
    }
}

#[test]
fn cis_2_0_has_the_node_items_of_cis_1_12_and_every_item_is_backed() {
    let a: Vec<(&str, &str, bool)> = cis::CIS_1_12
        .items()
        .map(|i| (i.id, i.title, i.scored))
        .collect();
    let b: Vec<(&str, &str, bool)> = cis::CIS_2_0
        .items()
        .map(|i| (i.id, i.title, i.scored))
        .collect();
    assert_eq!(a, b);
    assert_eq!(
        a.len(),
        25,
        "kube-bench cfg/cis-1.12/node.yaml has 25 checks"
    );
    // The kube-proxy items are backed by the kube-proxy controls.
    for (id, control) in [
        ("4.1.3", "kube-proxy-kubeconfig-permissions"),
        ("4.1.4", "kube-proxy-kubeconfig-ownership"),
        ("4.3.1", "kube-proxy-metrics-localhost"),
    ] {
        assert!(
            matches!(item(&cis::CIS_1_12, id).backing, Backing::Controls(c, _) if c == [control]),
            "{id}"
        );
    }
    // Every item is backed by a control.
    let unbacked = cis::CIS_1_12
        .items()
        .filter(|i| matches!(i.backing, Backing::NotChecked(_)))
        .count();
    assert_eq!(unbacked, 0);
}

#[test]
fn a_passing_control_passes_and_a_failure_fails_only_scored_items() {
    let scored = item(&cis::CIS_1_12, "4.2.1");
    assert!(scored.scored);
    let r = score(
        scored,
        &[result("anonymous-auth-disabled", Status::Pass, "false")],
    );
    assert_eq!((r.state, r.coverage), (State::Pass, Coverage::Checked));
    assert_eq!(r.expected, "e");
    assert_eq!(r.evidence[0].observed, "false");
    assert_eq!(r.evidence[0].source, "file-metadata");
    let r = score(
        scored,
        &[result("anonymous-auth-disabled", Status::Fail, "true")],
    );
    assert_eq!(r.state, State::Fail);
    assert_eq!(r.reason, "anonymous-auth-disabled is fail");

    let unscored = item(&cis::CIS_1_12, "4.2.4");
    assert!(!unscored.scored);
    let r = score(
        unscored,
        &[result("read-only-port-disabled", Status::Fail, "10255")],
    );
    assert_eq!(
        r.state,
        State::Warn,
        "kube-bench: an unscored failure is WARN"
    );
    assert!(r.reason.contains("not scored"), "{}", r.reason);
}

#[test]
fn unknown_is_a_warning_with_its_reason_and_not_applicable_is_info() {
    let i = item(&cis::CIS_1_12, "4.2.1");
    let r = score(i, &[result("anonymous-auth-disabled", Status::Unknown, "")]);
    assert_eq!(r.state, State::Warn);
    assert_eq!(r.reason, "unknown: anonymous-auth-disabled is unknown");
    let i = item(&cis::CIS_1_12, "4.2.5");
    let r = score(
        i,
        &[result(
            "streaming-idle-timeout-set",
            Status::NotApplicable,
            "",
        )],
    );
    assert_eq!(r.state, State::Info);
    assert!(r.reason.starts_with("not applicable: "), "{}", r.reason);
}

#[test]
fn not_checked_and_disabled_controls_are_warnings() {
    let r = score(item(&aks::AKS_1_8, "3.1.3"), &[]);
    assert_eq!((r.state, r.coverage), (State::Warn, Coverage::NotChecked));
    assert!(
        r.reason
            .starts_with("not checked: the agent does not observe /etc/kubernetes/azure.json"),
        "{}",
        r.reason
    );
    assert!(r.evidence.is_empty());
    // A control the policy disabled is missing from the results.
    let r = score(item(&cis::CIS_1_12, "4.2.1"), &[]);
    assert_eq!((r.state, r.coverage), (State::Warn, Coverage::NotChecked));
    assert_eq!(
        r.reason,
        "not checked: control anonymous-auth-disabled is disabled by the policy"
    );
}

#[test]
fn a_stricter_control_failing_is_only_a_warning_on_a_scored_item() {
    let i = item(&eks::EKS_1_8_0, "3.2.7");
    assert!(i.scored);
    let r = score(i, &[result("event-qps-limited", Status::Fail, "0")]);
    assert_eq!((r.state, r.coverage), (State::Warn, Coverage::Stricter));
    assert!(r.reason.contains("stricter"), "{}", r.reason);
    let r = score(i, &[result("event-qps-limited", Status::Pass, "50")]);
    assert_eq!(r.state, State::Pass);
}

#[test]
fn file_modes_are_judged_at_the_items_own_limit() {
    // EKS 3.1.1 allows 0644, which the 0600 control fails.
    let i = item(&eks::EKS_1_8_0, "3.1.1");
    let at =
        |status, observed: &str| score(i, &[result("kubeconfig-permissions", status, observed)]);
    let r = at(Status::Fail, "0644 /var/lib/kubelet/kubeconfig");
    assert_eq!(
        (r.state, r.coverage),
        (State::Pass, Coverage::Rejudged),
        "{}",
        r.reason
    );
    let r = at(Status::Fail, "0664 /var/lib/kubelet/kubeconfig");
    assert_eq!(r.state, State::Fail);
    assert!(
        r.reason.contains("0664 is more permissive than 0644"),
        "{}",
        r.reason
    );
    let r = at(Status::Fail, "4600 /k");
    assert_eq!(r.state, State::Fail, "setuid fails at any limit");
    // A symlink's observation names both paths; two files, one unreadable.
    let r = at(Status::Pass, "0600 /a -> /b; 0644 /c");
    assert_eq!(r.state, State::Pass);
    assert!(r.reason.starts_with("all 2 files"), "{}", r.reason);
    let r = at(Status::Fail, "0600 /a; ? /c (unreadable)");
    assert_eq!(r.state, State::Warn);
    // CIS 4.1.5 at 0600: a policy that lets the control pass at 0644 does not make the
    // benchmark item pass.
    let cis = item(&cis::CIS_1_12, "4.1.5");
    let r = score(
        cis,
        &[result("kubeconfig-permissions", Status::Pass, "0644 /k")],
    );
    assert_eq!(r.state, State::Fail, "{}", r.reason);
    // Unknown and not applicable keep the control's own verdict.
    let r = at(Status::Unknown, "");
    assert_eq!(r.state, State::Warn);
    // An observed value not in the file controls' form: the control's verdict stands.
    let r = at(Status::Fail, "something else");
    assert_eq!((r.state, r.coverage), (State::Fail, Coverage::Checked));
}

#[test]
fn totals_count_every_item_once() {
    let results: Vec<ControlResult> = catalogue()
        .into_iter()
        .map(|c| result(c.id, Status::Pass, "x"))
        .collect();
    let a = assess(&cis::CIS_1_12, &results);
    let t = a.totals;
    assert_eq!(t.pass + t.fail + t.warn + t.info, 25);
    // File items re-judge "x" as not a mode: the control's pass stands.
    assert_eq!((t.pass, t.warn, t.fail, t.info), (25, 0, 0, 0));
    let g: usize = a.groups.iter().map(|g| g.totals.pass).sum();
    assert_eq!(g, t.pass);
}

#[test]
fn auto_selection_follows_kube_bench_and_our_1_35_rule() {
    let pick = |v: Option<&str>| select_auto(v).benchmark.id;
    assert_eq!(pick(Some("v1.32.0")), "cis-1.12");
    assert_eq!(pick(Some("v1.34.3")), "cis-1.12");
    assert_eq!(pick(Some("v1.35.1")), "cis-2.0");
    assert_eq!(pick(Some("v1.36.0-alpha.1")), "cis-2.0");
    assert_eq!(pick(None), "cis-2.0");
    assert_eq!(pick(Some("")), "cis-2.0");
    let old = select_auto(Some("v1.30.2"));
    assert_eq!(old.benchmark.id, "cis-1.12");
    assert!(old.why.contains("cis-1.11 or older"), "{}", old.why);
    assert_eq!(pick(Some("v1.33.5-eks-113cf36")), "eks-1.8.0");
    assert_eq!(
        select_auto(Some("v1.33.5-eks-113cf36")).platform.as_deref(),
        Some("eks")
    );
    assert_eq!(select_auto(Some("v1.33.5")).platform, None);
    assert_eq!(pick(Some("v1.33.5-gke.1080000")), "gke-1.9.0");
    // k3s and rke2 have their own kube-bench benchmarks, not shipped: CIS by minor.
    assert_eq!(pick(Some("v1.33.1+k3s1")), "cis-1.12");
    let eks_old = select_auto(Some("v1.29.0-eks-1"));
    assert_eq!(eks_old.benchmark.id, "eks-1.8.0");
    assert!(
        eks_old.why.contains("this build ships only eks-1.8.0"),
        "{}",
        eks_old.why
    );
    assert_eq!(platform_of("v1.31.4"), None);
    assert_eq!(platform_of("v1.31.4+rke2r1").as_deref(), Some("rke2r1"));
    assert_eq!(select("cis-1.12", None).map(|s| s.by), Some("flag"));
    assert!(select("cis-9.9", None).is_none());
    assert_eq!(
        select("auto", Some("v1.35.0")).map(|s| s.benchmark.id),
        Some("cis-2.0")
    );
}
