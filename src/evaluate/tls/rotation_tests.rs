//! Client and serving certificate rotation (`rotation.rs`).

use super::super::Status;
use crate::evaluate::testing::*;
use crate::model::snapshot::Credential;

#[test]
fn client_rotation() {
    let id = "client-cert-rotation";
    let mut s = kubeadm();
    let o = eval(id, &s);
    assert_status(&o, Status::Pass);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("true", "config-file")
    );

    // Absent: kube-bench passes, the kubelet default is false.
    let o = eval(id, &snapshot_with(&[], Some("")));
    assert_status(&o, Status::Fail);
    assert_eq!(o.source, "default");
    assert_status(
        &eval(id, &snapshot_with(&["--rotate-certificates=false"], None)),
        Status::Fail,
    );

    kubelet_mut(&mut s).credential = Some(Ok(Credential::Exec {
        command: "aws-iam-authenticator".into(),
    }));
    let o = eval(id, &s);
    assert_status(&o, Status::NotApplicable);
    assert!(o.reason.contains("aws-iam-authenticator"));
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("exec plugin aws-iam-authenticator", "kubeconfig")
    );
    // No credential in the user is no alternative: the setting still decides.
    kubelet_mut(&mut s).credential = Some(Ok(Credential::None));
    assert_status(&eval(id, &s), Status::Pass);
    kubelet_mut(&mut s).credential = Some(Ok(client_cert("system:node:node-1", &["system:nodes"])));
    assert_status(&eval(id, &s), Status::Pass);
    assert_status(
        &eval(id, &snapshot_with(&[], Some("rotateCertificates: 1\n"))),
        Status::Unknown,
    );
}

#[test]
fn server_rotation() {
    let id = "server-cert-rotation";
    let o = eval(id, &snapshot_with(&[], Some("serverTLSBootstrap: true\n")));
    assert_status(&o, Status::Pass);
    assert_eq!(o.source, "config-file");
    assert!(o.observed.contains("unset (on by default)"));

    // CIS 4.2.11 looks at the gate only; the gate alone does nothing.
    let o = eval(
        id,
        &snapshot_with(
            &[],
            Some("featureGates:\n  RotateKubeletServerCertificate: true\n"),
        ),
    );
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("gate alone rotates nothing"));

    let o = eval(
        id,
        &snapshot_with(
            &["--rotate-server-certificates"],
            Some("featureGates:\n  RotateKubeletServerCertificate: false\n"),
        ),
    );
    assert_status(&o, Status::Fail);
    assert_eq!(o.source, "config-file");

    assert_status(
        &eval(
            id,
            &snapshot_with(
                &["--feature-gates=RotateKubeletServerCertificate=maybe"],
                None,
            ),
        ),
        Status::Unknown,
    );
}
