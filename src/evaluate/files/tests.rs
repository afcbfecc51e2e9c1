use super::super::Status;
use crate::evaluate::testing::*;
use crate::model::observed::ObsErrorKind;
use crate::model::snapshot::FileRole;

#[test]
fn legacy_observed_values_are_read_in_todays_form() {
    let old =
        "0600 0:0 /var/lib/kubelet/config.yaml; ? /etc/x.conf (not found); 0644 1000:5 /a -> /b";
    assert_eq!(
        super::legacy_observed("config-file-ownership", old).as_deref(),
        Some("0:0 /var/lib/kubelet/config.yaml; ? /etc/x.conf (not found); 1000:5 /a -> /b")
    );
    assert_eq!(
        super::legacy_observed("config-file-permissions", old).as_deref(),
        Some("0600 /var/lib/kubelet/config.yaml; ? /etc/x.conf (not found); 0644 /a -> /b")
    );
    // Today's form, another control, a value that only looks alike: unchanged.
    assert_eq!(
        super::legacy_observed("config-file-ownership", "0:0 /var/lib/kubelet/config.yaml"),
        None
    );
    assert_eq!(super::legacy_observed("read-only-port-disabled", old), None);
    assert_eq!(
        super::legacy_observed("config-file-permissions", "0600 /path with spaces"),
        None
    );
}

#[test]
fn config_permissions() {
    let id = "config-file-permissions";
    let o = eval(id, &snapshot_with(&[], None));
    assert_status(&o, Status::NotApplicable);
    assert!(o.reason.contains("nothing configured"));
    // --config set but its metadata not observed: unknown, not "nothing to check".
    let mut s = kubeadm();
    let o = eval(id, &s);
    assert_status(&o, Status::Unknown);
    assert!(
        o.reason.contains("--config /var/lib/kubelet/config.yaml"),
        "{}",
        o.reason
    );
    let o = eval(
        id,
        &snapshot_with_dropins(&[], None, &[("00-defaults.conf", "readOnlyPort: 0\n")]),
    );
    assert_status(&o, Status::Unknown);
    assert!(o.reason.contains("00-defaults.conf"), "{}", o.reason);

    kubelet_mut(&mut s).files = vec![
        file(
            FileRole::ConfigFile,
            "/var/lib/kubelet/config.yaml",
            0o600,
            0,
            0,
        ),
        file(
            FileRole::DropIn,
            "/etc/kubernetes/kubelet.conf.d/10-a.conf",
            0o400,
            0,
            0,
        ),
        file(
            FileRole::Kubeconfig,
            "/etc/kubernetes/kubelet.conf",
            0o644,
            0,
            0,
        ),
    ];
    let o = eval(id, &s);
    assert_status(&o, Status::Pass);
    assert_eq!(o.source, "file-metadata");
    assert_eq!(
        o.observed,
        "0600 /var/lib/kubelet/config.yaml; 0400 /etc/kubernetes/kubelet.conf.d/10-a.conf"
    );
    assert_eq!(o.expected.as_deref(), Some("≤ 0600"));

    kubelet_mut(&mut s).files[1] = file(
        FileRole::DropIn,
        "/etc/kubernetes/kubelet.conf.d/10-a.conf",
        0o644,
        0,
        0,
    );
    let o = eval(id, &s);
    assert_status(&o, Status::Fail);
    assert!(
        o.reason
            .contains("10-a.conf: 0644 is more permissive than 0600"),
        "{}",
        o.reason
    );
    assert!(!o.reason.contains("config.yaml"), "{}", o.reason);

    // Special bits fail even when the permission bits are fine.
    kubelet_mut(&mut s).files[1] = file(FileRole::DropIn, "/d/10-a.conf", 0o4600, 0, 0);
    assert_status(&eval(id, &s), Status::Fail);

    // Missing file: unknown, naming it.
    kubelet_mut(&mut s).files[1] =
        file_err(FileRole::DropIn, "/d/10-a.conf", ObsErrorKind::NotFound);
    let o = eval(id, &s);
    assert_status(&o, Status::Unknown);
    assert!(
        o.reason.contains("/d/10-a.conf is not found"),
        "{}",
        o.reason
    );
    kubelet_mut(&mut s).files[1] =
        file_err(FileRole::DropIn, "/d/10-a.conf", ObsErrorKind::Unreadable);
    assert_status(&eval(id, &s), Status::Unknown);

    // An offender is a failure even when another file could not be checked.
    kubelet_mut(&mut s).files[0] = file(
        FileRole::ConfigFile,
        "/var/lib/kubelet/config.yaml",
        0o666,
        0,
        0,
    );
    let o = eval(id, &s);
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("also not checked"), "{}", o.reason);

    // MicroK8s args file; a looser policy.
    kubelet_mut(&mut s).files = vec![file(
        FileRole::ArgsFile,
        "/var/snap/microk8s/current/args/kubelet",
        0o660,
        0,
        0,
    )];
    assert_status(&eval(id, &s), Status::Fail);
    let p = policy("expected:\n  config_file_max_mode: \"660\"\n");
    let o = eval_with(id, &s, &p);
    assert_status(&o, Status::Pass);
    assert_eq!(o.expected.as_deref(), Some("≤ 0660"));
}

#[test]
fn config_ownership() {
    let id = "config-file-ownership";
    assert_status(&eval(id, &snapshot_with(&[], None)), Status::NotApplicable);
    let mut s = kubeadm();
    assert_status(&eval(id, &s), Status::Unknown);
    kubelet_mut(&mut s).files = vec![file(
        FileRole::ConfigFile,
        "/var/lib/kubelet/config.yaml",
        0o600,
        0,
        0,
    )];
    let o = eval(id, &s);
    assert_status(&o, Status::Pass);
    assert_eq!(o.observed, "0:0 /var/lib/kubelet/config.yaml");
    kubelet_mut(&mut s).files = vec![file(
        FileRole::ConfigFile,
        "/var/lib/kubelet/config.yaml",
        0o600,
        0,
        1000,
    )];
    let o = eval(id, &s);
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("owned by 0:1000"), "{}", o.reason);
    kubelet_mut(&mut s).files = vec![file_err(
        FileRole::ConfigFile,
        "/x",
        ObsErrorKind::Unreadable,
    )];
    assert_status(&eval(id, &s), Status::Unknown);
}

#[test]
fn kubeconfig() {
    let standalone = snapshot_with(&[], Some(""));
    assert_status(
        &eval("kubeconfig-permissions", &standalone),
        Status::NotApplicable,
    );
    assert!(eval("kubeconfig-ownership", &standalone)
        .reason
        .contains("standalone"));
    let mut s = kubeadm();
    let o = eval("kubeconfig-ownership", &s);
    assert_status(&o, Status::Unknown);
    assert!(
        o.reason
            .contains("--kubeconfig /etc/kubernetes/kubelet.conf"),
        "{}",
        o.reason
    );
    kubelet_mut(&mut s).files = vec![file(
        FileRole::Kubeconfig,
        "/etc/kubernetes/kubelet.conf",
        0o600,
        0,
        0,
    )];
    assert_status(&eval("kubeconfig-permissions", &s), Status::Pass);
    assert_status(&eval("kubeconfig-ownership", &s), Status::Pass);
    kubelet_mut(&mut s).files = vec![file(
        FileRole::Kubeconfig,
        "/etc/kubernetes/kubelet.conf",
        0o640,
        1,
        0,
    )];
    assert_status(&eval("kubeconfig-permissions", &s), Status::Fail);
    assert_status(&eval("kubeconfig-ownership", &s), Status::Fail);
    kubelet_mut(&mut s).files = vec![file_err(
        FileRole::Kubeconfig,
        "/etc/kubernetes/kubelet.conf",
        ObsErrorKind::NotFound,
    )];
    assert_status(&eval("kubeconfig-permissions", &s), Status::Unknown);
    assert_status(&eval("kubeconfig-ownership", &s), Status::Unknown);
}

#[test]
fn client_ca_files() {
    assert_status(
        &eval("client-ca-permissions", &snapshot_with(&[], None)),
        Status::NotApplicable,
    );
    // The config file does not parse: whether a CA is configured is unknown.
    let o = eval(
        "client-ca-ownership",
        &snapshot_with(&[], Some("authentication: [\n")),
    );
    assert_status(&o, Status::Unknown);
    assert!(o.reason.contains("cannot be decided"), "{}", o.reason);
    let mut s = kubeadm();
    let o = eval("client-ca-permissions", &s);
    assert_status(&o, Status::Unknown);
    assert!(
        o.reason.contains("clientCAFile /etc/kubernetes/pki/ca.crt"),
        "{}",
        o.reason
    );
    kubelet_mut(&mut s).files = vec![file(
        FileRole::ClientCa,
        "/etc/kubernetes/pki/ca.crt",
        0o644,
        0,
        0,
    )];
    let o = eval("client-ca-permissions", &s);
    assert_status(&o, Status::Pass);
    assert_eq!(o.expected.as_deref(), Some("≤ 0644"));
    assert_status(&eval("client-ca-ownership", &s), Status::Pass);
    kubelet_mut(&mut s).files = vec![file(
        FileRole::ClientCa,
        "/etc/kubernetes/pki/ca.crt",
        0o664,
        0,
        0,
    )];
    assert_status(&eval("client-ca-permissions", &s), Status::Fail);
    kubelet_mut(&mut s).files = vec![file(
        FileRole::ClientCa,
        "/etc/kubernetes/pki/ca.crt",
        0o644,
        1000,
        1000,
    )];
    let o = eval("client-ca-ownership", &s);
    assert_status(&o, Status::Fail);
    assert_eq!(o.observed, "1000:1000 /etc/kubernetes/pki/ca.crt");
    kubelet_mut(&mut s).files = vec![file_err(
        FileRole::ClientCa,
        "/ca.crt",
        ObsErrorKind::Unreadable,
    )];
    assert_status(&eval("client-ca-ownership", &s), Status::Unknown);
    assert_status(&eval("client-ca-permissions", &s), Status::Unknown);
}

#[test]
fn serving_key() {
    let id = "serving-key-permissions";
    let mut s = kubeadm();
    assert_status(&eval(id, &s), Status::NotApplicable);
    assert_status(
        &eval(
            id,
            &snapshot_with(&["--tls-private-key-file=/pki/k.key"], None),
        ),
        Status::Unknown,
    );
    kubelet_mut(&mut s).files = vec![
        file(
            FileRole::ServingCert,
            "/var/lib/kubelet/pki/kubelet.crt",
            0o644,
            0,
            0,
        ),
        file(
            FileRole::ServingKey,
            "/var/lib/kubelet/pki/kubelet.key",
            0o600,
            0,
            0,
        ),
    ];
    let o = eval(id, &s);
    assert_status(&o, Status::Pass);
    assert_eq!(o.observed, "0600 /var/lib/kubelet/pki/kubelet.key");
    kubelet_mut(&mut s).files[1] = file(
        FileRole::ServingKey,
        "/var/lib/kubelet/pki/kubelet.key",
        0o644,
        0,
        0,
    );
    assert_status(&eval(id, &s), Status::Fail);
    kubelet_mut(&mut s).files[1] = file_err(FileRole::ServingKey, "/k.key", ObsErrorKind::NotFound);
    assert_status(&eval(id, &s), Status::Unknown);
}

#[test]
fn service_files() {
    let mut s = kubeadm();
    let o = eval("service-file-permissions", &s);
    assert_status(&o, Status::NotApplicable);
    assert!(o.reason.contains("systemd unit"));
    kubelet_mut(&mut s).unit = Some("kubelet.service".into());
    let o = eval("service-file-ownership", &s);
    assert_status(&o, Status::Unknown);
    assert!(o.reason.contains("kubelet.service"));

    kubelet_mut(&mut s).files = vec![
        file(
            FileRole::ServiceUnit,
            "/usr/lib/systemd/system/kubelet.service",
            0o644,
            0,
            0,
        ),
        file(
            FileRole::ServiceDropIn,
            "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
            0o600,
            0,
            0,
        ),
    ];
    let o = eval("service-file-permissions", &s);
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("kubelet.service: 0644"), "{}", o.reason);
    assert_eq!(o.expected.as_deref(), Some("≤ 0600"));
    assert_status(&eval("service-file-ownership", &s), Status::Pass);
    kubelet_mut(&mut s).files[0] = file(
        FileRole::ServiceUnit,
        "/usr/lib/systemd/system/kubelet.service",
        0o600,
        0,
        0,
    );
    let o = eval("service-file-permissions", &s);
    assert_status(&o, Status::Pass);
    assert!(o.reason.contains("all 2 files"), "{}", o.reason);
    kubelet_mut(&mut s).files[1] = file(
        FileRole::ServiceDropIn,
        "/etc/systemd/system/kubelet.service.d/20-x.conf",
        0o600,
        0,
        5,
    );
    assert_status(&eval("service-file-ownership", &s), Status::Fail);
}
