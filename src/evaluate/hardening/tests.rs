use super::super::Status;
use crate::evaluate::testing::*;
use crate::model::snapshot::Snapshot;

fn with_version(mut s: Snapshot, v: &str) -> Snapshot {
    kubelet_mut(&mut s).version = Some(v.into());
    kubelet_mut(&mut s).version_source = Some(crate::model::snapshot::VersionSource::Binary);
    s
}

#[test]
fn streaming_timeout_up_to_1_23_is_judged() {
    let id = "streaming-idle-timeout-set";
    // kubeadm writes 0s in the --config file: the kubelet uses 4h.
    let o = eval(id, &with_version(kubeadm(), "v1.23.17"));
    assert_status(&o, Status::Pass);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("4h0m0s", "default")
    );
    assert!(
        o.reason.contains("replaces with the default"),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains("kubelet v1.23.17 (binary), up to 1.23: dockershim"),
        "{}",
        o.reason
    );

    let zero = with_version(
        snapshot_with(&["--streaming-connection-idle-timeout=0"], None),
        "v1.19.16",
    );
    let o = eval(id, &zero);
    assert_status(&o, Status::Fail);
    assert_eq!((o.observed.as_str(), o.source.as_str()), ("0", "flag"));

    // A 0s in a drop-in stays 0 up to 1.31 (the loading rules of that minor; 1.32+
    // default it to 4h, kubernetes PR #127421).
    let o = eval(
        id,
        &with_version(
            snapshot_with_dropins(
                &[],
                Some(""),
                &[("10-x.conf", "streamingConnectionIdleTimeout: 0s\n")],
            ),
            "v1.22.0",
        ),
    );
    assert_status(&o, Status::Fail);
    assert_eq!(o.source, "drop-in:10-x.conf");

    // A remote runtime serves the streams itself, before 1.24 too.
    let remote = with_version(
        snapshot_with(
            &[
                "--streaming-connection-idle-timeout=0",
                "--container-runtime=remote",
            ],
            None,
        ),
        "v1.23.17",
    );
    let o = eval(id, &remote);
    assert_status(&o, Status::NotApplicable);
    assert_eq!((o.observed.as_str(), o.source.as_str()), ("0", "flag"));
    assert!(
        o.reason.contains("--container-runtime=remote"),
        "{}",
        o.reason
    );

    assert_status(
        &eval(
            id,
            &with_version(
                snapshot_with(&["--streaming-connection-idle-timeout=5"], None),
                "v1.23.0",
            ),
        ),
        Status::Unknown,
    );
}

#[test]
fn streaming_timeout_has_no_effect_from_1_24() {
    let id = "streaming-idle-timeout-set";
    for v in ["v1.24.0", "v1.33.4+rke2r1", "v1.34.1", "v1.37.2"] {
        let zero = with_version(
            snapshot_with(&["--streaming-connection-idle-timeout=0"], None),
            v,
        );
        let o = eval(id, &zero);
        assert_status(&o, Status::NotApplicable);
        assert_eq!((o.observed.as_str(), o.source.as_str()), ("0", "flag"));
        assert!(
            o.reason.contains("from 1.24: no effect"),
            "{v}: {}",
            o.reason
        );
        assert!(o.reason.contains("kubernetes#97252"), "{}", o.reason);
    }
    // Even a value the config layer cannot decide does not matter there.
    let o = eval(
        id,
        &with_version(
            snapshot_with(&[], Some("streamingConnectionIdleTimeout: [\n")),
            "v1.30.0",
        ),
    );
    assert_status(&o, Status::NotApplicable);
}

#[test]
fn streaming_timeout_with_an_unknown_version() {
    let id = "streaming-idle-timeout-set";
    // 4h: passes up to 1.23 (dockershim), not applicable from 1.24: the version decides.
    let o = eval(id, &kubeadm());
    assert_status(&o, Status::Unknown);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("4h0m0s", "default")
    );
    assert!(
        o.reason.contains("up to 1.23 pass: dockershim"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("from 1.24 not_applicable: no effect"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("version is not known"), "{}", o.reason);
    // 0 fails only up to 1.23: unknown as well.
    let o = eval(
        id,
        &snapshot_with(&["--streaming-connection-idle-timeout=0"], None),
    );
    assert_status(&o, Status::Unknown);
    assert!(o.reason.contains("up to 1.23 fail"), "{}", o.reason);
    // With a remote runtime every supported kubelet ignores it: no version needed.
    let o = eval(
        id,
        &snapshot_with(
            &[
                "--streaming-connection-idle-timeout=0",
                "--container-runtime=remote",
            ],
            None,
        ),
    );
    assert_status(&o, Status::NotApplicable);
    assert!(
        o.reason.contains("so its version is not needed"),
        "{}",
        o.reason
    );
}

#[test]
fn iptables() {
    let id = "iptables-util-chains";
    let o = eval(id, &snapshot_with(&[], Some("")));
    assert_status(&o, Status::Pass);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("true", "default")
    );
    let o = eval(
        id,
        &snapshot_with(&[], Some("makeIPTablesUtilChains: false\n")),
    );
    assert_status(&o, Status::Fail);
    assert_eq!(o.source, "config-file");
    assert_status(
        &eval(
            id,
            &snapshot_with(&["--make-iptables-util-chains=nope"], None),
        ),
        Status::Unknown,
    );
}

#[test]
fn hostname_override() {
    let id = "hostname-override-unset";
    let o = eval(id, &kubeadm());
    assert_status(&o, Status::Pass);
    assert_eq!(o.source, "process");
    // EKS AL2 writes it space-separated (awslabs/amazon-eks-ami templates/al2/runtime/kubelet.service).
    let o = eval(
        id,
        &snapshot_with(&["--hostname-override", "ip-10-0-0-1.ec2.internal"], None),
    );
    assert_status(&o, Status::Fail);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("ip-10-0-0-1.ec2.internal", "process")
    );
    assert_status(
        &eval(id, &snapshot_with(&["--hostname-override="], None)),
        Status::Pass,
    );
    let mut s = kubeadm();
    s.kubelet = None;
    assert_status(&eval(id, &s), Status::Unknown);
}

#[test]
fn event_qps() {
    let id = "event-qps-limited";
    let o = eval(id, &snapshot_with(&[], Some("")));
    assert_status(&o, Status::Pass);
    assert_eq!((o.observed.as_str(), o.source.as_str()), ("50", "default"));
    assert_eq!(o.expected.as_deref(), Some("effective event QPS ≥ 1"));

    let o = eval(id, &snapshot_with(&[], Some("eventRecordQPS: -1\n")));
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("negative"));

    let p = policy("expected:\n  event_qps_min: 10\n  event_qps_max: 40\n");
    let o = eval_with(id, &snapshot_with(&[], Some("")), &p);
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("above the policy maximum 40"));
    assert_eq!(o.expected.as_deref(), Some("effective event QPS 10..=40"));
    assert_status(
        &eval_with(id, &snapshot_with(&["--event-qps=20"], None), &p),
        Status::Pass,
    );
    assert_status(
        &eval(id, &snapshot_with(&["--event-qps=lots"], None)),
        Status::Unknown,
    );
}

#[test]
fn event_qps_zero_is_5_per_second_up_to_1_36() {
    let id = "event-qps-limited";
    // k3s used --event-qps=0: that is 5/s, not unlimited, on these kubelets.
    for v in ["v1.19.16", "v1.29.6", "v1.36.3", "v1.36.9-eks-1552ad0"] {
        let o = eval(
            id,
            &with_version(snapshot_with(&["--event-qps=0"], None), v),
        );
        assert_status(&o, Status::Pass);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("0 (effective 5/s)", "flag")
        );
        assert!(
            o.reason
                .contains("up to 1.36: events are rate-limited at 5/s"),
            "{}",
            o.reason
        );
    }
    let p = policy("expected:\n  event_qps_min: 10\n");
    let o = eval_with(
        id,
        &with_version(snapshot_with(&["--event-qps=0"], None), "v1.36.3"),
        &p,
    );
    assert_status(&o, Status::Fail);
    assert!(
        o.reason.contains("below the policy minimum 10"),
        "{}",
        o.reason
    );
}

#[test]
fn event_qps_zero_is_no_limit_from_1_37() {
    let id = "event-qps-limited";
    for v in ["v1.37.0", "v1.37.2", "v1.38.0-alpha.1"] {
        let o = eval(
            id,
            &with_version(snapshot_with(&[], Some("eventRecordQPS: 0\n")), v),
        );
        assert_status(&o, Status::Fail);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("0 (no limit)", "config-file")
        );
        assert!(
            o.reason.contains("from 1.37: 0 means no limit"),
            "{}",
            o.reason
        );
    }
    // A positive value is the same on every version.
    let o = eval(
        id,
        &with_version(snapshot_with(&["--event-qps=5"], None), "v1.37.2"),
    );
    assert_status(&o, Status::Pass);
    assert_eq!(
        o.reason,
        "events are rate-limited at 5/s; from flag --event-qps"
    );
}

#[test]
fn event_qps_zero_with_an_unknown_version() {
    let id = "event-qps-limited";
    let o = eval(id, &snapshot_with(&["--event-qps=0"], None));
    assert_status(&o, Status::Unknown);
    assert_eq!((o.observed.as_str(), o.source.as_str()), ("0", "flag"));
    assert!(
            o.reason.contains("up to 1.36 pass: events are rate-limited at 5/s (0 means client-go's default of 5/s); from 1.37 fail: 0 means no limit"),
            "{}",
            o.reason
        );
    assert!(
        o.reason.contains("the kubelet's version is not known"),
        "{}",
        o.reason
    );
    // When 5/s fails the policy too, every version fails: no version needed.
    let p = policy("expected:\n  event_qps_min: 10\n");
    let o = eval_with(id, &snapshot_with(&["--event-qps=0"], None), &p);
    assert_status(&o, Status::Fail);
    assert_eq!(o.observed, "0");
    assert!(
        o.reason
            .contains("fail on every supported kubelet (1.19–1.37)"),
        "{}",
        o.reason
    );
    // A version that cannot be parsed is no better than none.
    let o = eval(
        id,
        &with_version(snapshot_with(&["--event-qps=0"], None), "garbage"),
    );
    assert_status(&o, Status::Unknown);
    assert!(o.reason.contains("not understood"), "{}", o.reason);
}

#[test]
fn pod_pids() {
    let id = "pod-pids-limit-set";
    let o = eval(id, &snapshot_with(&[], Some("")));
    assert_status(&o, Status::Fail);
    assert_eq!((o.observed.as_str(), o.source.as_str()), ("-1", "default"));
    assert!(o.reason.contains("unlimited"));
    assert_status(
        &eval(id, &snapshot_with(&["--pod-max-pids=0"], None)),
        Status::Fail,
    );
    let o = eval(id, &snapshot_with(&[], Some("podPidsLimit: 4096\n")));
    assert_status(&o, Status::Pass);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("4096", "config-file")
    );
    assert_eq!(o.expected, None);
    let p = policy("expected:\n  pod_pids_limit_max: 1024\n");
    let o = eval_with(id, &snapshot_with(&[], Some("podPidsLimit: 4096\n")), &p);
    assert_status(&o, Status::Fail);
    assert_eq!(o.expected.as_deref(), Some("1..=1024"));
    assert_status(
        &eval_with(id, &snapshot_with(&["--pod-max-pids=512"], None), &p),
        Status::Pass,
    );
    assert_status(
        &eval(id, &snapshot_with(&[], Some("podPidsLimit: lots\n"))),
        Status::Unknown,
    );
}

#[test]
fn seccomp_default() {
    let id = "seccomp-default-enabled";
    let o = eval(id, &snapshot_with(&[], Some("")));
    assert_status(&o, Status::Fail);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("false", "default")
    );
    // Presence is not enough (kube-bench passes an explicit false).
    assert_status(
        &eval(id, &snapshot_with(&[], Some("seccompDefault: false\n"))),
        Status::Fail,
    );
    let o = eval(id, &snapshot_with(&["--seccomp-default"], None));
    assert_status(&o, Status::Pass);
    assert_eq!(o.source, "flag");
    // flag OR config: --seccomp-default=false does not turn a true file off.
    let o = eval(
        id,
        &snapshot_with(&["--seccomp-default=false"], Some("seccompDefault: true\n")),
    );
    assert_status(&o, Status::Pass);
    assert_eq!(o.source, "config-file");
    assert_status(
        &eval(id, &snapshot_with(&[], Some("seccompDefault: [\n"))),
        Status::Unknown,
    );
}

#[test]
fn protect_kernel() {
    let id = "protect-kernel-defaults";
    let o = eval(id, &snapshot_with(&[], None));
    assert_status(&o, Status::Fail);
    assert_eq!(o.source, "default");
    let o = eval(
        id,
        &snapshot_with(&[], Some("protectKernelDefaults: true\n")),
    );
    assert_status(&o, Status::Pass);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("true", "config-file")
    );
    assert_status(
        &eval(id, &snapshot_with(&["--protect-kernel-defaults=2"], None)),
        Status::Unknown,
    );
}
