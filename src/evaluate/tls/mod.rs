//! Practice 2: strong TLS on every kubelet connection (serving certificate, client CA,
//! protocol version, cipher suites, certificate rotation). The catalogue entries are here;
//! their judgements in `certificates.rs` (serving certificate, client CA), `protocol.rs`
//! (minimum version, cipher suites, with the live scans) and `rotation.rs`.

mod certificates;
mod protocol;
mod rotation;

use certificates::{evaluate_client_ca, evaluate_serving_cert};
use protocol::{evaluate_cipher_suites, evaluate_min_version};
use rotation::{evaluate_client_rotation, evaluate_server_rotation};

use super::outcome::kubelet;
use super::{Control, Ctx, Family, Needs, Severity, PRACTICE_TLS};
use crate::model::kubelet_config::Source;

/// The tls controls: serving certificate, client CA, minimum version, cipher suites and
/// certificate rotation.
pub static CONTROLS: &[Control] = &[
    Control {
        id: "tls-serving-cert-configured",
        title: "Kubelet serves a CA-issued certificate, not a self-signed one",
        family: Family::Tls,
        severity: Severity::High,
        cis: Some("4.2.9"),
        practice: PRACTICE_TLS,
        expected: "serverTLSBootstrap: true, or tlsCertFile and tlsPrivateKeyFile with a certificate that is not self-signed",
        remediation: "Set `serverTLSBootstrap: true` in the KubeletConfiguration (or `--rotate-server-certificates`) and approve the kubelet-serving CSRs, or set `tlsCertFile` and `tlsPrivateKeyFile` (`--tls-cert-file`, `--tls-private-key-file`) to a certificate signed by a CA the API server trusts (not a self-signed one, and not the kubelet's own generated `/var/lib/kubelet/pki/kubelet.crt`); restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_serving_cert,
    },
    Control {
        id: "client-ca-configured",
        title: "Client CA is configured for x509 authentication",
        family: Family::Tls,
        severity: Severity::Critical,
        cis: Some("4.2.3"),
        practice: PRACTICE_TLS,
        expected: "clientCAFile set to a readable CA certificate",
        remediation: "Set `authentication.x509.clientCAFile` in the KubeletConfiguration (or `--client-ca-file`) to the cluster CA bundle, e.g. /etc/kubernetes/pki/ca.crt, and make sure the file exists and holds a CA certificate; restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_client_ca,
    },
    Control {
        id: "tls-min-version",
        title: "Minimum TLS version meets the policy",
        family: Family::Tls,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_TLS,
        expected: "≥ VersionTLS12",
        remediation: "Set `tlsMinVersion: VersionTLS12` (or VersionTLS13) in the KubeletConfiguration (or `--tls-min-version`), or remove a lower value (unset means VersionTLS12 on every kubelet); restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_min_version,
    },
    Control {
        id: "tls-strong-cipher-suites",
        title: "Only strong TLS cipher suites are allowed",
        family: Family::Tls,
        severity: Severity::Medium,
        cis: Some("4.2.12"),
        practice: PRACTICE_TLS,
        expected: "TLS 1.2: only the CIS 4.2.12 ECDHE AES-GCM/ChaCha20 suites (policy tls_cipher_suites); TLS 1.3 suites are not configurable",
        remediation: "Set `tlsCipherSuites` in the KubeletConfiguration (or `--tls-cipher-suites`) to the allowed ECDHE AEAD suites only, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (or set `tlsMinVersion: VersionTLS13`); restart the kubelet. Use Go's names: a name the kubelet does not know stops it from starting (the ChaCha20 names ending in `_SHA256` only work from Kubernetes 1.23). TLS 1.3 suites cannot be chosen: Go's are fixed and all AEAD, so listing them changes nothing.",
        needs: Needs::Kubelet,
        evaluate: evaluate_cipher_suites,
    },
    Control {
        id: "client-cert-rotation",
        title: "Kubelet client certificate is rotated",
        family: Family::Tls,
        severity: Severity::Medium,
        cis: Some("4.2.10"),
        practice: PRACTICE_TLS,
        expected: "true",
        remediation: "Set `rotateCertificates: true` in the KubeletConfiguration (or `--rotate-certificates`; remove `--rotate-certificates=false`); restart the kubelet. kubeadm sets it; the kubelet's own default is false.",
        needs: Needs::Kubelet,
        evaluate: evaluate_client_rotation,
    },
    Control {
        id: "server-cert-rotation",
        title: "Kubelet serving certificate is requested and rotated",
        family: Family::Tls,
        severity: Severity::Medium,
        cis: Some("4.2.11"),
        practice: PRACTICE_TLS,
        expected: "serverTLSBootstrap: true, RotateKubeletServerCertificate not false",
        remediation: "Set `serverTLSBootstrap: true` in the KubeletConfiguration (or `--rotate-server-certificates`), do not set `RotateKubeletServerCertificate=false` in featureGates/`--feature-gates`, and approve the kubelet-serving CSRs (or run an approver); restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_server_rotation,
    },
];

const SERVER_GATE: &str = "RotateKubeletServerCertificate";

/// The RotateKubeletServerCertificate gate: explicit value and source, or `None` when
/// unset (on by default: beta since 1.12).
fn server_gate(ctx: &Ctx) -> Result<Option<(bool, Source)>, String> {
    kubelet(ctx)?
        .config
        .feature_gate(SERVER_GATE)
        .map_err(|e| format!("feature gate {SERVER_GATE} cannot be decided: {e}"))
}

#[cfg(test)]
mod certificates_tests;
#[cfg(test)]
mod protocol_tests;
#[cfg(test)]
mod rotation_tests;
