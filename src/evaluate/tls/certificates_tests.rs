//! The serving certificate and the client CA (`certificates.rs`).

use super::super::Status;
use crate::evaluate::testing::*;
use crate::model::observed::{ObsError, ObsErrorKind};

#[test]
fn serving_cert() {
    let id = "tls-serving-cert-configured";
    let o = eval(id, &snapshot_with(&[], Some("")));
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("self-signed"), "{}", o.reason);
    assert_eq!(o.source, "default");

    let both = || {
        snapshot_with(
            &["--tls-cert-file=/pki/k.crt"],
            Some("tlsPrivateKeyFile: /pki/k.key\n"),
        )
    };
    // Configured, but the file was not examined: "not self-signed" cannot be claimed.
    let o = eval(id, &both());
    assert_status(&o, Status::Unknown);
    assert_eq!(
        o.observed,
        "tlsCertFile=/pki/k.crt, tlsPrivateKeyFile=/pki/k.key"
    );
    assert_eq!(o.source, "flag");

    let o = eval(id, &snapshot_with(&["--tls-cert-file=/pki/k.crt"], None));
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("only tlsCertFile"), "{}", o.reason);

    let o = eval(id, &snapshot_with(&[], Some("serverTLSBootstrap: true\n")));
    assert_status(&o, Status::Pass);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("serverTLSBootstrap=true", "config-file")
    );

    let o = eval(
        id,
        &snapshot_with(
            &["--feature-gates=RotateKubeletServerCertificate=false"],
            Some("serverTLSBootstrap: true\n"),
        ),
    );
    assert_status(&o, Status::Fail);
    assert_eq!(o.source, "flag");

    assert_status(
        &eval(
            id,
            &snapshot_with(&["--rotate-server-certificates", "--feature-gates=X"], None),
        ),
        Status::Unknown,
    );
    assert_status(
        &eval(id, &snapshot_with(&[], Some("tlsCertFile: [\n"))),
        Status::Unknown,
    );
}

#[test]
fn a_self_signed_tls_cert_file_fails() {
    use crate::model::cert::summarize_pem;
    let id = "tls-serving-cert-configured";
    let with_file = |pem: &[u8]| {
        let mut s = snapshot_with(
            &[
                "--tls-cert-file=/etc/kubernetes/pki/kubelet.crt",
                "--tls-private-key-file=/etc/kubernetes/pki/kubelet.key",
            ],
            None,
        );
        kubelet_mut(&mut s).serving_cert_file = Some(summarize_pem(pem));
        s
    };
    // The openssl-made self-signed fixture certificate (RSA, CN=node@1736846400).
    let o = eval(
        id,
        &with_file(include_bytes!("../../../tests/fixtures/pki/selfsigned.crt")),
    );
    assert_status(&o, Status::Fail);
    assert!(
        o.reason
            .contains("/etc/kubernetes/pki/kubelet.crt is self-signed (CN=node@1736846400"),
        "{}",
        o.reason
    );
    assert_eq!(o.source, "flag");
    let ec = rcgen::generate_simple_self_signed(vec!["node-1".to_string()]).unwrap();
    assert_status(
        &eval(id, &with_file(ec.cert.pem().as_bytes())),
        Status::Fail,
    );

    // The kubelet's own generated pair, named explicitly.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "node-1-ca@1736846400");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let mut leaf_params = rcgen::CertificateParams::new(vec!["node-1".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "node-1@1736846400");
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let o = eval(
        id,
        &with_file(format!("{}{}", leaf.pem(), ca.pem()).as_bytes()),
    );
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("generates for itself"), "{}", o.reason);

    // Issued by the cluster CA: passes, naming the issuer.
    let o = eval(
        id,
        &with_file(include_bytes!("../../../tests/fixtures/pki/serving.crt")),
    );
    assert_status(&o, Status::Pass);
    assert!(
        o.reason.contains("is issued by CN=kubernetes"),
        "{}",
        o.reason
    );

    // A file the kubelet cannot load stops it; one the agent cannot read says nothing.
    for (kind, status) in [
        (ObsErrorKind::NotFound, Status::Fail),
        (ObsErrorKind::Invalid, Status::Fail),
        (ObsErrorKind::Unreadable, Status::Unknown),
    ] {
        let mut s = with_file(b"");
        kubelet_mut(&mut s).serving_cert_file = Some(Err(ObsError::new(kind, "kubelet.crt")));
        assert_status(&eval(id, &s), status);
    }
}

#[test]
fn bootstrap_and_a_file_together() {
    use crate::model::cert::summarize_pem;
    let id = "tls-serving-cert-configured";
    let both = |pem: &[u8], version: Option<&str>| {
        let mut s = snapshot_with(
            &[
                "--tls-cert-file=/etc/kubernetes/pki/kubelet.crt",
                "--tls-private-key-file=/etc/kubernetes/pki/kubelet.key",
                "--rotate-server-certificates",
            ],
            None,
        );
        kubelet_mut(&mut s).serving_cert_file = Some(summarize_pem(pem));
        kubelet_mut(&mut s).version = version.map(str::to_string);
        s
    };
    let selfsigned = include_bytes!("../../../tests/fixtures/pki/selfsigned.crt");
    // Up to 1.35 the server also loads the file and serves it to clients without SNI.
    for v in ["v1.19.16", "v1.35.4"] {
        let o = eval(id, &both(selfsigned, Some(v)));
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("clients without SNI"), "{}", o.reason);
        assert!(o.reason.contains("is self-signed"), "{}", o.reason);
    }
    // From 1.36 only the CSR certificate is served.
    for v in ["v1.36.3", "v1.37.2"] {
        let o = eval(id, &both(selfsigned, Some(v)));
        assert_status(&o, Status::Pass);
        assert!(o.reason.contains("tlsCertFile is ignored"), "{}", o.reason);
    }
    let o = eval(id, &both(selfsigned, None));
    assert_status(&o, Status::Unknown);
    assert!(o.reason.contains("up to 1.35 fail"), "{}", o.reason);
    assert!(o.reason.contains("from 1.36 pass"), "{}", o.reason);
    // A CA-issued file passes either way: no version needed.
    let o = eval(
        id,
        &both(
            include_bytes!("../../../tests/fixtures/pki/serving.crt"),
            None,
        ),
    );
    assert_status(&o, Status::Pass);
    assert_eq!(o.observed, "serverTLSBootstrap=true");
    assert!(o.reason.contains("tlsCertFile is set too"), "{}", o.reason);
}

#[test]
fn client_ca() {
    let id = "client-ca-configured";
    let o = eval(id, &snapshot_with(&[], None));
    assert_status(&o, Status::Fail);
    assert_eq!(o.source, "default");

    let mut s = kubeadm();
    let o = eval(id, &s);
    assert_status(&o, Status::Unknown); // set, but not examined
    assert_eq!(o.observed, "/etc/kubernetes/pki/ca.crt");

    kubelet_mut(&mut s).client_ca = Some(Ok(cert("kubernetes", &[], true)));
    let o = eval(id, &s);
    assert_status(&o, Status::Pass);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("/etc/kubernetes/pki/ca.crt", "config-file")
    );
    assert!(o.reason.contains("CN=kubernetes"));

    kubelet_mut(&mut s).client_ca = Some(Ok(cert("node-1", &[], false)));
    assert_status(&eval(id, &s), Status::Fail);
    for (kind, status) in [
        (ObsErrorKind::NotFound, Status::Fail),
        (ObsErrorKind::Invalid, Status::Fail),
        (ObsErrorKind::Unreadable, Status::Unknown),
    ] {
        kubelet_mut(&mut s).client_ca = Some(Err(ObsError::new(kind, "ca.crt: problem")));
        assert_status(&eval(id, &s), status);
    }
    kubelet_mut(&mut s).client_ca = Some(Err(ObsError::new(ObsErrorKind::NotFound, "gone")));
    assert!(eval(id, &s).reason.contains("does not exist"));
}
