//! Live evidence against the configuration, through the whole catalogue: a running
//! kubelet that contradicts its files, agreement, probes without an answer, and a
//! listener that is not the kubelet's ([`super::live_verdict`]).

use crate::evaluate::testing::*;
use crate::evaluate::{evaluate, ControlResult, Status};
use crate::model::live::{Listener, Listeners, Live, LiveError, LiveErrorKind, ReadOnlyAnswer};
use crate::model::snapshot::Snapshot;

const HARDENED: &str = "authentication:\n  anonymous:\n    enabled: false\nauthorization:\n  mode: Webhook\nreadOnlyPort: 0\ntlsMinVersion: VersionTLS12\ntlsCipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n";

fn with(live: Live, config: &str) -> Snapshot {
    let mut s = snapshot_with(&["--config=/var/lib/kubelet/config.yaml"], Some(config));
    s.live = Some(live);
    s
}

fn get(s: &Snapshot, id: &str) -> ControlResult {
    evaluate(s, &crate::evaluate::policy::Policy::embedded())
        .into_iter()
        .find(|r| r.id == id)
        .unwrap()
}

fn closed() -> ReadOnlyAnswer {
    ReadOnlyAnswer {
        healthz: None,
        pods: None,
    }
}

fn timeout() -> LiveError {
    LiveError::new(LiveErrorKind::Timeout, "no answer within 2s")
}

#[test]
fn anonymous_live_overrides_a_secure_file() {
    // The file says anonymous is off, but the kubelet answers 200: a lie on disk.
    let s = with(
        Live {
            anonymous: Some(Ok(200)),
            ..Live::default()
        },
        HARDENED,
    );
    let r = get(&s, "anonymous-auth-disabled");
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.source, "live");
    assert!(r.reason.contains("200"), "{}", r.reason);
    assert_eq!(get(&s, "authorization-mode-webhook").status, Status::Fail);
    assert_eq!(
        get(&s, "kubelet-api-rejects-anonymous").status,
        Status::Fail
    );
}

#[test]
fn agreement_passes_and_shows_both() {
    let s = with(
        Live {
            anonymous: Some(Ok(401)),
            read_only: Some(Ok(closed())),
            ..Live::default()
        },
        HARDENED,
    );
    let r = get(&s, "anonymous-auth-disabled");
    assert_eq!(r.status, Status::Pass);
    assert_eq!(r.source, "config-file+live");
    assert!(
        r.observed.contains("false") && r.observed.contains("401"),
        "{}",
        r.observed
    );
    // 401 says nothing about the authorisation mode: the file decides.
    let a = get(&s, "authorization-mode-webhook");
    assert_eq!(a.status, Status::Pass);
    assert!(a.reason.contains("not visible"), "{}", a.reason);
    assert_eq!(get(&s, "read-only-port-disabled").status, Status::Pass);
    assert_eq!(
        get(&s, "kubelet-api-rejects-anonymous").status,
        Status::Pass
    );
}

#[test]
fn webhook_403_confirms_authorisation_but_not_anonymous() {
    let s = with(
        Live {
            anonymous: Some(Ok(403)),
            ..Live::default()
        },
        HARDENED,
    );
    assert_eq!(get(&s, "authorization-mode-webhook").status, Status::Pass);
    assert_eq!(get(&s, "anonymous-auth-disabled").status, Status::Fail);
    assert_eq!(
        get(&s, "kubelet-api-rejects-anonymous").status,
        Status::Pass
    );
}

#[test]
fn probe_failure_is_unknown_never_pass() {
    let s = with(
        Live {
            anonymous: Some(Err(timeout())),
            read_only: Some(Err(timeout())),
            ..Live::default()
        },
        HARDENED,
    );
    for id in [
        "anonymous-auth-disabled",
        "authorization-mode-webhook",
        "kubelet-api-rejects-anonymous",
        "read-only-port-disabled",
    ] {
        let r = get(&s, id);
        assert_eq!(r.status, Status::Unknown, "{id}: {r:?}");
        assert!(r.reason.contains("no answer"), "{id}: {}", r.reason);
    }
}

#[test]
fn read_only_port_answer_fails_whatever_the_config_says() {
    let open = ReadOnlyAnswer {
        healthz: Some(200),
        pods: Some(200),
    };
    let s = with(
        Live {
            read_only: Some(Ok(open)),
            ..Live::default()
        },
        HARDENED,
    );
    let r = get(&s, "read-only-port-disabled");
    assert_eq!(r.status, Status::Fail);
    assert!(r.observed.contains("GET /healthz 200"), "{}", r.observed);
    // Config opens it but nothing listens: the files disagree with the node.
    let s = with(
        Live {
            read_only: Some(Ok(closed())),
            ..Live::default()
        },
        "readOnlyPort: 10255\n",
    );
    let r = get(&s, "read-only-port-disabled");
    assert_eq!(r.status, Status::Fail);
    assert!(r.reason.contains("disagree"), "{}", r.reason);
}

#[test]
fn tls_live_evidence() {
    let versions = vec![
        ("VersionTLS10".to_string(), true),
        ("VersionTLS11".to_string(), false),
        ("VersionTLS12".to_string(), true),
        ("VersionTLS13".to_string(), true),
    ];
    let s = with(
        Live {
            tls_versions: Some(Ok(versions)),
            ..Live::default()
        },
        HARDENED,
    );
    let r = get(&s, "tls-min-version");
    assert_eq!(r.status, Status::Fail);
    assert!(r.observed.contains("VersionTLS10"), "{}", r.observed);
    // Unset in the config: the kubelet's default (TLS 1.2, any version), confirmed live.
    let good = vec![
        ("VersionTLS10".to_string(), false),
        ("VersionTLS12".to_string(), true),
    ];
    let s = with(
        Live {
            tls_versions: Some(Ok(good)),
            ..Live::default()
        },
        "readOnlyPort: 0\n",
    );
    let r = get(&s, "tls-min-version");
    assert_eq!(r.status, Status::Pass, "{r:?}");
    assert_eq!(r.source, "default+live");
    assert!(r.reason.contains("confirmed live"), "{}", r.reason);
    // ... and a running kubelet that accepts TLS 1.0 anyway fails on the scan.
    let old = vec![("VersionTLS10".to_string(), true)];
    let s = with(
        Live {
            tls_versions: Some(Ok(old)),
            ..Live::default()
        },
        "readOnlyPort: 0\n",
    );
    let r = get(&s, "tls-min-version");
    assert_eq!((r.status, r.source.as_str()), (Status::Fail, "live"));
    let suites = vec![
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string(), true),
        ("TLS_RSA_WITH_AES_128_CBC_SHA".to_string(), true),
    ];
    let s = with(
        Live {
            tls12_suites: Some(Ok(suites)),
            ..Live::default()
        },
        HARDENED,
    );
    let r = get(&s, "tls-strong-cipher-suites");
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.observed.contains("TLS_RSA_WITH_AES_128_CBC_SHA"),
        "{}",
        r.observed
    );
}

#[test]
fn healthz_uses_the_real_listener() {
    let listeners = Listeners {
        method: "fd".into(),
        sockets: vec![Listener {
            address: "0.0.0.0".parse().unwrap(),
            port: 10248,
        }],
    };
    let s = with(
        Live {
            listeners: Some(Ok(listeners)),
            ..Live::default()
        },
        HARDENED,
    );
    let r = get(&s, "healthz-bind-localhost");
    assert_eq!(r.status, Status::Fail, "{r:?}");
    assert!(r.observed.contains("0.0.0.0:10248"), "{}", r.observed);
}

#[test]
fn without_probes_the_config_stands_and_the_live_only_control_is_unknown() {
    let s = snapshot_with(&["--config=/var/lib/kubelet/config.yaml"], Some(HARDENED));
    assert_eq!(get(&s, "anonymous-auth-disabled").status, Status::Pass);
    assert_eq!(
        get(&s, "kubelet-api-rejects-anonymous").status,
        Status::Unknown
    );
}

#[test]
fn another_process_on_10255_is_not_the_kubelets_read_only_port() {
    let mut s = snapshot_with(
        &["--config=/var/lib/kubelet/config.yaml"],
        Some("readOnlyPort: 0\n"),
    );
    let kubelet_only = Listeners {
        method: "fd".into(),
        sockets: vec![Listener {
            address: "0.0.0.0".parse().unwrap(),
            port: 10250,
        }],
    };
    s.live = Some(Live {
        listeners: Some(Ok(kubelet_only)),
        read_only_target: Some("127.0.0.1:10255".into()),
        read_only: Some(Ok(ReadOnlyAnswer {
            healthz: Some(200),
            pods: None,
        })),
        ..Live::default()
    });
    let r = evaluate(&s, &crate::evaluate::policy::Policy::embedded())
        .into_iter()
        .find(|r| r.id == "read-only-port-disabled")
        .unwrap();
    assert_eq!(r.status, Status::Pass, "{r:?}");
    assert!(r.reason.contains("another process"), "{}", r.reason);
    // The same answer when the kubelet does own a listener there: fail.
    if let Some(l) = s.live.as_mut() {
        l.listeners = Some(Ok(Listeners {
            method: "fd".into(),
            sockets: vec![Listener {
                address: "0.0.0.0".parse().unwrap(),
                port: 10255,
            }],
        }));
    }
    let r = evaluate(&s, &crate::evaluate::policy::Policy::embedded())
        .into_iter()
        .find(|r| r.id == "read-only-port-disabled")
        .unwrap();
    assert_eq!(r.status, Status::Fail, "{r:?}");
}
