//! The minimum TLS version and the cipher suites (`protocol.rs`).

use super::super::Status;
use super::protocol::CIS_CIPHER_SUITES;
use crate::evaluate::testing::*;
use crate::model::kubelet_config::loading::KUBELET_SUITES;

#[test]
fn unset_min_version_is_tls12_on_every_kubelet() {
    let id = "tls-min-version";
    let mut s = snapshot_with(&[], Some(""));
    // No version needed: component-base's DefaultTLSVersion is TLS 1.2 everywhere.
    for v in [
        None,
        Some("v1.19.16"),
        Some("v1.29.8-gke.1031000"),
        Some("v1.37.2"),
        Some("garbage"),
    ] {
        kubelet_mut(&mut s).version = v.map(str::to_string);
        let o = eval(id, &s);
        assert_status(&o, Status::Pass);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("\"\" (kubelet default: VersionTLS12)", "default")
        );
        assert!(
            o.reason.contains("refusing TLS 1.0 and 1.1"),
            "{}",
            o.reason
        );
        assert_eq!(o.expected.as_deref(), Some("≥ VersionTLS12"));
    }
    let p13 = policy("expected:\n  tls_min_version: VersionTLS13\n");
    let o = eval_with(id, &s, &p13);
    assert_status(&o, Status::Fail);
    assert_eq!(o.expected.as_deref(), Some("≥ VersionTLS13"));
}

#[test]
fn explicit_min_version() {
    let id = "tls-min-version";
    let o = eval(
        id,
        &snapshot_with(&[], Some("tlsMinVersion: VersionTLS12\n")),
    );
    assert_status(&o, Status::Pass);
    assert_eq!(
        (o.observed.as_str(), o.source.as_str()),
        ("VersionTLS12", "config-file")
    );
    assert_status(
        &eval(
            id,
            &snapshot_with(&["--tls-min-version=VersionTLS11"], None),
        ),
        Status::Fail,
    );
    assert_status(
        &eval(
            id,
            &snapshot_with(&["--tls-min-version=VersionTLS13"], None),
        ),
        Status::Pass,
    );
    let o = eval(id, &snapshot_with(&["--tls-min-version=TLS1.2"], None));
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("not a TLS version"));
    let p13 = policy("expected:\n  tls_min_version: VersionTLS13\n");
    assert_status(
        &eval_with(
            id,
            &snapshot_with(&["--tls-min-version=VersionTLS12"], None),
            &p13,
        ),
        Status::Fail,
    );
}

#[test]
fn cipher_suites() {
    let id = "tls-strong-cipher-suites";
    let o = eval(id, &snapshot_with(&[], Some("")));
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("CBC"), "{}", o.reason);
    assert_eq!(o.expected, None);

    let o = eval(
        id,
        &snapshot_with(&["--tls-min-version=VersionTLS13"], None),
    );
    assert_status(&o, Status::Pass);
    assert_eq!(o.source, "flag");

    // EKS AL2 (awslabs/amazon-eks-ami kubelet-config.json): six ECDHE suites plus two TLS_RSA suites.
    let eks = r#"{"kind":"KubeletConfiguration","apiVersion":"kubelet.config.k8s.io/v1beta1","tlsCipherSuites":["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256","TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256","TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305","TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305","TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384","TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384","TLS_RSA_WITH_AES_256_GCM_SHA384","TLS_RSA_WITH_AES_128_GCM_SHA256"]}"#;
    let o = eval(
        id,
        &snapshot_with(
            &["--config", "/etc/kubernetes/kubelet/kubelet-config.json"],
            Some(eks),
        ),
    );
    assert_status(&o, Status::Fail);
    assert_eq!(o.source, "config-file");
    assert!(
        o.reason
            .contains("TLS_RSA_WITH_AES_256_GCM_SHA384, TLS_RSA_WITH_AES_128_GCM_SHA256"),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains("/etc/kubernetes/kubelet/kubelet-config.json"),
        "{}",
        o.reason
    );

    let o = eval(
            id,
            &snapshot_with(
                &["--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
                None,
            ),
        );
    assert_status(&o, Status::Pass);
    assert_eq!(
        o.observed,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
    );

    let p = policy("expected:\n  tls_cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n");
    let o = eval_with(
        id,
        &snapshot_with(
            &["--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
            None,
        ),
        &p,
    );
    assert_status(&o, Status::Fail);
    assert_eq!(
        o.expected.as_deref(),
        Some("only: TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    );

    assert_status(
        &eval(id, &snapshot_with(&[], Some("tlsCipherSuites: nope\n"))),
        Status::Unknown,
    );
}

fn suites(list: &str, version: Option<&str>) -> crate::model::snapshot::Snapshot {
    let mut s = snapshot_with(&[&format!("--tls-cipher-suites={list}")], None);
    kubelet_mut(&mut s).version = version.map(str::to_string);
    s
}

#[test]
fn cipher_suite_names_the_kubelet_accepts() {
    let id = "tls-strong-cipher-suites";
    // Both ChaCha20 spellings name an allowed suite (the policy uses the legacy one).
    let legacy = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
    assert_status(&eval(id, &suites(legacy, None)), Status::Pass);
    let iana =
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
    let o = eval(id, &suites(iana, Some("v1.23.0")));
    assert_status(&o, Status::Pass);
    assert!(
        o.reason
            .contains("all 2 TLS 1.2 suites are in the allowed list"),
        "{}",
        o.reason
    );
    assert_status(&eval(id, &suites(iana, Some("v1.37.2"))), Status::Pass);
    // component-base before v0.23 knows only the legacy spelling: no start.
    let o = eval(id, &suites(iana, Some("v1.22.17")));
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("refuses to start"), "{}", o.reason);
    // Unknown version: pass from 1.23, no start before: the version decides.
    let o = eval(id, &suites(iana, None));
    assert_status(&o, Status::Unknown);
    assert!(o.reason.contains("up to 1.22 fail"), "{}", o.reason);
    assert!(o.reason.contains("from 1.23 pass"), "{}", o.reason);
    // ... unless the list fails anyway.
    let weak = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,TLS_RSA_WITH_AES_128_GCM_SHA256";
    assert_status(&eval(id, &suites(weak, None)), Status::Fail);

    // A name no kubelet knows: it does not start, on every version.
    let o = eval(
        id,
        &suites("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_FOO", None),
    );
    assert_status(&o, Status::Fail);
    assert!(
        o.reason
            .contains("TLS_FOO is not a cipher suite name the kubelet knows"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("refuses to start"), "{}", o.reason);
    // OpenSSL's names are not Go's.
    assert_status(
        &eval(id, &suites("ECDHE-RSA-AES128-GCM-SHA256", Some("v1.37.2"))),
        Status::Fail,
    );
}

#[test]
fn cipher_suites_judge_tls12_only() {
    let id = "tls-strong-cipher-suites";
    // TLS 1.3 names are accepted but not configurable: ignored, and said so.
    let o = eval(
        id,
        &suites(
            "TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            None,
        ),
    );
    assert_status(&o, Status::Pass);
    assert!(o.reason.contains("all 1 TLS 1.2 suites"), "{}", o.reason);
    assert!(
        o.reason
            .contains("TLS_AES_128_GCM_SHA256 ignored: TLS 1.3 suites are not configurable"),
        "{}",
        o.reason
    );
    // Only TLS 1.3 names: no TLS 1.2 suite at all.
    let o = eval(
        id,
        &suites("TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256", None),
    );
    assert_status(&o, Status::Pass);
    assert!(
        o.reason.contains("no TLS 1.2 suite is enabled"),
        "{}",
        o.reason
    );
    // A TLS 1.3 floor leaves a weak TLS 1.2 list unused.
    let mut s = snapshot_with(
        &[
            "--tls-cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA",
            "--tls-min-version=VersionTLS13",
        ],
        None,
    );
    let o = eval(id, &s);
    assert_status(&o, Status::Pass);
    assert!(
        o.reason.contains("no TLS 1.2 suite is ever negotiated"),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains("TLS_RSA_WITH_AES_128_CBC_SHA for TLS 1.2"),
        "{}",
        o.reason
    );
    // ... but an undecidable floor cannot.
    s = snapshot_with(
        &["--tls-cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA"],
        Some("tlsMinVersion: [\n"),
    );
    assert_status(&eval(id, &s), Status::Unknown);
    // A weak TLS 1.2 suite fails, naming it and only it.
    let o = eval(
        id,
        &suites(
            "TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
            None,
        ),
    );
    assert_status(&o, Status::Fail);
    assert!(
        o.reason.starts_with(
            "weak or unlisted TLS 1.2 suites allowed: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA ("
        ),
        "{}",
        o.reason
    );
    // A policy naming the IANA spelling allows the legacy one.
    let p =
        policy("expected:\n  tls_cipher_suites: [TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256]\n");
    assert_status(
        &eval_with(
            id,
            &suites("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", None),
            &p,
        ),
        Status::Pass,
    );
}

#[test]
fn kubelet_suites_are_gos() {
    // Every suite the kubelet names has the number the live scan uses for it.
    for (name, id) in KUBELET_SUITES {
        assert_eq!(
            crate::model::tls::suite_name(*id).map(crate::model::tls::iana_name),
            Some(crate::model::tls::iana_name(name)),
            "{name}"
        );
    }
    assert_eq!(KUBELET_SUITES.len(), 27);
}

#[test]
fn cis_suites_match_the_default_policy() {
    let p = crate::evaluate::policy::Policy::embedded();
    assert_eq!(p.expected.tls_cipher_suites, CIS_CIPHER_SUITES);
}

#[test]
fn every_suite_of_the_cis_list_is_probed() {
    for name in CIS_CIPHER_SUITES {
        assert!(
            crate::model::tls::IANA_TLS12_SUITES
                .iter()
                .any(|s| s.1 == *name),
            "{name}"
        );
    }
}
