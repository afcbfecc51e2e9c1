use super::*;
use crate::evaluate::benchmark::select;
use crate::evaluate::policy::Policy;
use crate::evaluate::Status;
use crate::model::testing;
use std::time::Duration;

/// A kubeadm-like kubelet whose anonymous auth is left on: 4.2.1 (scored) fails.
fn report() -> Report {
    let mut snap = testing::snapshot_with(
        &["--config=/var/lib/kubelet/config.yaml"],
        Some("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: true\n"),
    );
    snap.node = "node-1".into();
    let results = crate::evaluate::evaluate(&snap, &Policy::embedded());
    Report::new(&snap, results, Duration::from_millis(3))
}

fn benchmark(id: &str) -> BenchmarkReport {
    let r = report();
    BenchmarkReport::new(&r, &select(id, r.kubelet.version.as_deref()).expect(id))
}

#[test]
fn the_table_lists_every_item_in_kube_benchs_layout_with_its_evidence() {
    let b = benchmark("cis-1.12");
    let text = render_table(&b, false);
    let items: Vec<&str> = text
        .lines()
        .filter(|l| {
            ["[PASS] ", "[FAIL] ", "[WARN] ", "[INFO] "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .filter(|l| {
            l.split(' ')
                .nth(1)
                .is_some_and(|id| id.matches('.').count() == 2)
        })
        .collect();
    assert_eq!(items.len(), 25, "{text}");
    let i = text.find("[FAIL] 4.2.1 ").expect("4.2.1 fails");
    let evidence = &text[i..];
    assert!(
        evidence.contains("anonymous-auth-disabled fail: true [config-file]"),
        "{evidence}"
    );
    // The remediations of FAIL and WARN items only, then kube-bench's summary.
    let rem = &text[text.find("== Remediations node ==").expect("remediations")..];
    assert!(rem.contains("\n4.2.1 Set authentication.anonymous.enabled: false"));
    assert!(
        rem.contains("\n4.3.1 "),
        "a not-checked item is a WARN to act on"
    );
    let t = b.totals;
    assert!(text.ends_with(&format!(
        "== Summary node ==\n{} checks PASS\n{} checks FAIL\n{} checks WARN\n{} checks INFO\n",
        t.pass, t.fail, t.warn, t.info
    )));
    assert!(t.fail >= 1);
    assert!(!text.contains('\x1b'), "no colour when not asked");
    assert!(render_table(&b, true).contains("\x1b[31m[FAIL]\x1b[0m 4.2.1"));
}

#[test]
fn the_benchmark_json_carries_evidence_and_provenance() {
    let b = benchmark("cis-2.0");
    let v: serde_json::Value = serde_json::from_str(&render_json(&b)).expect("json");
    assert_eq!(v["schema_version"], BENCHMARK_SCHEMA_VERSION);
    assert_eq!(v["benchmark"]["id"], "cis-2.0");
    assert_eq!(v["selection"]["by"], "flag");
    let item = v["groups"][1]["items"][0].clone();
    assert_eq!(item["id"], "4.2.1");
    assert_eq!(item["state"], "FAIL");
    assert_eq!(item["evidence"][0]["control"], "anonymous-auth-disabled");
    assert_eq!(item["evidence"][0]["status"], Status::Fail.as_str());
    assert_eq!(item["evidence"][0]["observed"], "true");
    assert_eq!(item["evidence"][0]["source"], "config-file");
}

#[test]
fn kube_bench_detected_version_is_the_minor_or_the_platform_benchmark() {
    use crate::publish::report::kube_bench::overall;
    let mut r = report();
    let detected = |r: &Report| {
        let b = BenchmarkReport::new(
            r,
            &select("auto", r.kubelet.version.as_deref()).expect("auto"),
        );
        let o = overall(&b);
        (
            o.controls[0].version.clone(),
            o.controls[0].detected_version.clone(),
        )
    };
    r.kubelet.version = Some("v1.33.5-eks-113cf36".into());
    assert_eq!(detected(&r), ("eks-1.8.0".into(), Some("eks-1.8.0".into())));
    r.kubelet.version = Some("v1.33.5".into());
    assert_eq!(detected(&r), ("cis-1.12".into(), Some("1.33".into())));
    r.kubelet.version = Some("v1.35.0".into());
    assert_eq!(detected(&r), ("cis-2.0".into(), Some("1.35".into())));
    r.kubelet.version = None;
    assert_eq!(detected(&r), ("cis-2.0".into(), None));
}
