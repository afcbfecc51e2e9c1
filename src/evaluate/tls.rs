//! Practice 2: strong TLS on every kubelet connection (serving certificate, client CA,
//! protocol version, cipher suites, certificate rotation).

use super::util::{
    self, because, bool_of, decide, known, kubelet, kubelet_version, list_of, str_of, unknown_with,
    with_live, LiveVerdict, PRACTICE_TLS,
};
use super::{Control, Ctx, Family, Needs, Outcome, Severity, Status};
use crate::observe::config::Source;
use crate::snapshot::{Credential, ObsErrorKind};

pub static CONTROLS: &[Control] = &[
    Control {
        id: "tls-serving-cert-configured",
        title: "Kubelet serves a CA-issued certificate, not a self-signed one",
        family: Family::Tls,
        severity: Severity::High,
        cis: Some("4.2.9"),
        practice: PRACTICE_TLS,
        expected: "tlsCertFile and tlsPrivateKeyFile set, or serverTLSBootstrap: true",
        remediation: "Set `serverTLSBootstrap: true` in the KubeletConfiguration (or `--rotate-server-certificates`) and approve the kubelet-serving CSRs, or set `tlsCertFile` and `tlsPrivateKeyFile` (`--tls-cert-file`, `--tls-private-key-file`) to a certificate signed by a CA the API server trusts; restart the kubelet.",
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
        remediation: "Set `tlsMinVersion: VersionTLS12` (or VersionTLS13) in the KubeletConfiguration (or `--tls-min-version`); restart the kubelet.",
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
        expected: "only the CIS 4.2.12 ECDHE AES-GCM/ChaCha20 suites (policy tls_cipher_suites)",
        remediation: "Set `tlsCipherSuites` in the KubeletConfiguration (or `--tls-cipher-suites`) to the allowed ECDHE AEAD suites only, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (or set `tlsMinVersion: VersionTLS13`); restart the kubelet.",
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

/// The CIS 1.12 4.2.12 list (the embedded policy default; a test keeps them equal).
const CIS_CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
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

fn evaluate_serving_cert(ctx: &Ctx) -> Outcome {
    decide(|| {
        let c = known(ctx, "tlsCertFile")?;
        let k = known(ctx, "tlsPrivateKeyFile")?;
        let cert = str_of(&c)?.trim().to_string();
        let key = str_of(&k)?.trim().to_string();
        if !cert.is_empty() && !key.is_empty() {
            return Ok(Outcome::pass(
                format!("tlsCertFile={cert}, tlsPrivateKeyFile={key}"),
                util::source_label(&c),
                because("a serving certificate and key are configured", &c),
            ));
        }
        let b = known(ctx, "serverTLSBootstrap")?;
        if bool_of(&b)? {
            return Ok(match server_gate(ctx)? {
                Some((false, src)) => Outcome::fail(
                    format!("serverTLSBootstrap=true, {SERVER_GATE}=false"),
                    src.label(),
                    format!(
                        "serverTLSBootstrap needs the {SERVER_GATE} gate, which is false ({}): no serving certificate is requested and the kubelet's validation rejects this combination",
                        src.describe()
                    ),
                ),
                _ => Outcome::pass(
                    "serverTLSBootstrap=true",
                    util::source_label(&b),
                    because(
                        "the kubelet requests its serving certificate from the API server (a CSR signed by the cluster CA)",
                        &b,
                    ),
                ),
            });
        }
        let observed = format!(
            "tlsCertFile={}, tlsPrivateKeyFile={}, serverTLSBootstrap=false",
            if cert.is_empty() { "\"\"" } else { &cert },
            if key.is_empty() { "\"\"" } else { &key }
        );
        if cert.is_empty() != key.is_empty() {
            let (set, unset, s) = if cert.is_empty() {
                ("tlsPrivateKeyFile", "tlsCertFile", &k)
            } else {
                ("tlsCertFile", "tlsPrivateKeyFile", &c)
            };
            return Ok(Outcome::fail(
                observed,
                util::source_label(s),
                because(
                    format!("only {set} is set; without {unset} the kubelet cannot serve that certificate"),
                    s,
                ),
            ));
        }
        // reference §2.2 (server.go InitializeTLS): with neither file and no
        // serverTLSBootstrap the kubelet writes a self-signed <cert-dir>/kubelet.crt.
        Ok(Outcome::fail(
            observed,
            util::source_label(&c),
            because(
                "no serving certificate: the kubelet generates a self-signed cert in its cert dir (/var/lib/kubelet/pki/kubelet.crt), which clients cannot verify",
                &c,
            ),
        ))
    })
}

fn evaluate_client_ca(ctx: &Ctx) -> Outcome {
    decide(|| {
        let s = known(ctx, "authentication.x509.clientCAFile")?;
        let path = str_of(&s)?.trim().to_string();
        let src = util::source_label(&s);
        if path.is_empty() {
            return Ok(Outcome::fail(
                "\"\"",
                src,
                because(
                    "no client CA: client certificates (the API server's kubelet client) cannot be authenticated",
                    &s,
                ),
            ));
        }
        Ok(match &kubelet(ctx)?.client_ca {
            Some(Ok(cert)) if cert.is_ca => Outcome::pass(
                path.clone(),
                src,
                because(format!("the client CA is {}", cert.subject), &s),
            ),
            Some(Ok(cert)) => Outcome::fail(
                path.clone(),
                src,
                because(
                    format!(
                        "{path} holds {} which is not a CA certificate",
                        cert.subject
                    ),
                    &s,
                ),
            ),
            Some(Err(e)) => match e.kind {
                ObsErrorKind::NotFound => Outcome::fail(
                    path.clone(),
                    src,
                    because(format!("configured file does not exist: {}", e.message), &s),
                ),
                ObsErrorKind::Invalid => Outcome::fail(
                    path.clone(),
                    src,
                    because(
                        format!("the file is not a valid CA certificate: {}", e.message),
                        &s,
                    ),
                ),
                ObsErrorKind::Unreadable => unknown_with(
                    path.clone(),
                    src,
                    because(
                        format!("the client CA file could not be read: {}", e.message),
                        &s,
                    ),
                ),
            },
            None => unknown_with(
                path.clone(),
                src,
                because("the client CA file was not examined", &s),
            ),
        })
    })
}

/// `VersionTLS1x` → 10..13.
fn tls_rank(v: &str) -> Option<u8> {
    match v {
        "VersionTLS10" => Some(10),
        "VersionTLS11" => Some(11),
        "VersionTLS12" => Some(12),
        "VersionTLS13" => Some(13),
        _ => None,
    }
}

fn tls_name(rank: u8) -> String {
    format!("VersionTLS{rank}")
}

/// The minimum TLS version the kubelet's server really accepts.
enum MinTls {
    /// Set to a version the kubelet knows.
    Explicit(u8),
    /// Set to something the kubelet does not accept.
    Invalid(String),
    /// Unset: Go's default for the kubelet's build.
    GoDefault { rank: u8, version: String },
    /// Unset, and the build (version) is not known.
    Undecided(String),
}

fn min_tls(ctx: &Ctx, raw: &str) -> MinTls {
    if !raw.is_empty() {
        return match tls_rank(raw) {
            Some(r) => MinTls::Explicit(r),
            None => MinTls::Invalid(raw.to_string()),
        };
    }
    // An empty tlsMinVersion leaves crypto/tls's server default. Go 1.22 raised it from
    // TLS 1.0 to TLS 1.2 (GODEBUG tls10server). The GODEBUG default follows the `go`
    // line of the main module's go.mod, and Kubernetes 1.30 is the first release whose
    // go.mod says go ≥ 1.22; 1.29 and older keep TLS 1.0 even when a patch release is
    // built with a newer Go toolchain.
    match kubelet_version(ctx) {
        Ok(((major, minor, _), version)) => {
            let rank = if (major, minor) >= (1, 30) { 12 } else { 10 };
            MinTls::GoDefault { rank, version }
        }
        Err(why) => MinTls::Undecided(why),
    }
}

/// Whether the effective `key` is explicitly an empty string/list (Go's default applies).
fn unset(ctx: &Ctx, key: &str) -> bool {
    ctx.setting(key).known().is_some_and(|s| match &s.value {
        serde_json::Value::String(v) => v.trim().is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        _ => false,
    })
}

/// Live evidence: which protocol versions the serving port accepts.
fn versions_live(ctx: &Ctx, want: u8) -> Option<LiveVerdict> {
    let l = util::live(ctx)?;
    Some(match l.tls_versions.as_ref()? {
        Ok(list) => {
            let accepted: Vec<&str> = list
                .iter()
                .filter(|(_, ok)| *ok)
                .map(|(v, _)| v.as_str())
                .collect();
            let below: Vec<&str> = accepted
                .iter()
                .copied()
                .filter(|v| tls_rank(v).is_some_and(|r| r < want))
                .collect();
            if accepted.is_empty() {
                LiveVerdict::Unavailable("the serving port accepted no TLS version offered".into())
            } else if below.is_empty() {
                LiveVerdict::Secure(format!("accepts only {}", accepted.join(", ")))
            } else {
                LiveVerdict::Insecure(format!("accepts {}", below.join(", ")))
            }
        }
        Err(e) => LiveVerdict::Unavailable(format!("protocol scan: {e}")),
    })
}

/// Live evidence: which TLS 1.2 suites the serving port accepts.
fn suites_live(ctx: &Ctx, allowed: &[String]) -> Option<LiveVerdict> {
    let l = util::live(ctx)?;
    Some(match l.tls12_suites.as_ref()? {
        Ok(list) => {
            let accepted: Vec<&str> = list
                .iter()
                .filter(|(_, ok)| *ok)
                .map(|(v, _)| v.as_str())
                .collect();
            let weak: Vec<&str> = accepted
                .iter()
                .copied()
                .filter(|c| !allowed.iter().any(|a| a == c))
                .collect();
            if !weak.is_empty() {
                LiveVerdict::Insecure(format!("accepts {}", weak.join(", ")))
            } else if accepted.is_empty() {
                LiveVerdict::Secure("accepts no TLS 1.2 suite (TLS 1.3 only)".into())
            } else {
                LiveVerdict::Secure(format!("accepts only {}", accepted.join(", ")))
            }
        }
        Err(e) => LiveVerdict::Unavailable(format!("cipher suite scan: {e}")),
    })
}

/// When the setting is unset, the Go default is what the kubelet does: live evidence of
/// that behaviour decides on its own (there is no configured claim to disagree with).
fn live_decides(live: LiveVerdict, expected: String) -> Outcome {
    match live {
        LiveVerdict::Secure(e) => Outcome::pass(
            format!("\"\" (live: {e})"),
            "live",
            format!("unset (Go default); the running kubelet {e}"),
        ),
        LiveVerdict::Insecure(e) => Outcome::fail(
            format!("\"\" (live: {e})"),
            "live",
            format!("unset (Go default); the running kubelet {e}"),
        ),
        LiveVerdict::Neutral(e) | LiveVerdict::Unavailable(e) => {
            Outcome::unknown(format!("unset (Go default) and no live answer: {e}"))
        }
    }
    .with_expected(expected)
}

fn evaluate_min_version(ctx: &Ctx) -> Outcome {
    let want = tls_rank(&ctx.policy.expected.tls_min_version).unwrap_or(12);
    let config = evaluate_min_version_config(ctx);
    let live = versions_live(ctx, want);
    match live {
        Some(l) if unset(ctx, "tlsMinVersion") => {
            live_decides(l, config.expected.clone().unwrap_or_default())
        }
        l => with_live(config, l),
    }
}

fn evaluate_cipher_suites(ctx: &Ctx) -> Outcome {
    let config = evaluate_cipher_suites_config(ctx);
    let live = suites_live(ctx, &ctx.policy.expected.tls_cipher_suites);
    match live {
        Some(l) if unset(ctx, "tlsCipherSuites") => {
            let expected = config
                .expected
                .clone()
                .unwrap_or_else(|| "only the CIS 1.12 suites".to_string());
            live_decides(l, expected)
        }
        l => with_live(config, l),
    }
}

fn evaluate_min_version_config(ctx: &Ctx) -> Outcome {
    let want_name = ctx.policy.expected.tls_min_version.clone();
    // The policy is validated at load; fall back to the default 1.2 defensively.
    let want = tls_rank(&want_name).unwrap_or(12);
    let out = decide(|| {
        let s = known(ctx, "tlsMinVersion")?;
        let raw = str_of(&s)?.trim().to_string();
        let src = util::source_label(&s);
        Ok(match min_tls(ctx, &raw) {
            MinTls::Explicit(r) if r >= want => Outcome::pass(
                raw.clone(),
                src,
                because(format!("{raw} meets the minimum {want_name}"), &s),
            ),
            MinTls::Explicit(_) => Outcome::fail(
                raw.clone(),
                src,
                because(format!("{raw} is below the minimum {want_name}"), &s),
            ),
            MinTls::Invalid(v) => Outcome::fail(
                v.clone(),
                src,
                because(
                    format!("{v:?} is not a TLS version the kubelet accepts (VersionTLS10..VersionTLS13); it would refuse to start"),
                    &s,
                ),
            ),
            MinTls::GoDefault { rank, version } => {
                let observed = format!("\"\" (Go default: {})", tls_name(rank));
                let why = if rank >= 12 {
                    format!("tlsMinVersion unset: kubelet {version} is Kubernetes ≥ 1.30, built with Go ≥ 1.22 whose servers default to TLS 1.2")
                } else {
                    format!("tlsMinVersion unset: kubelet {version} is older than Kubernetes 1.30 (Go < 1.22 semantics), whose servers accept TLS 1.0")
                };
                if rank >= want {
                    Outcome::pass(observed, src, because(format!("{why}, meeting {want_name}"), &s))
                } else {
                    Outcome::fail(observed, src, because(format!("{why}, below {want_name}"), &s))
                }
            }
            MinTls::Undecided(why) => unknown_with(
                "\"\"",
                src,
                because(
                    if kubelet(ctx).is_ok_and(|k| k.version.is_none()) {
                        "tlsMinVersion unset; the Go default depends on the kubelet's build, and its version is not known".to_string()
                    } else {
                        format!("tlsMinVersion unset; the Go default depends on the kubelet's build: {why}")
                    },
                    &s,
                ),
            ),
        })
    });
    out.with_expected(format!("≥ {want_name}"))
}

fn evaluate_cipher_suites_config(ctx: &Ctx) -> Outcome {
    let allowed = &ctx.policy.expected.tls_cipher_suites;
    let out = decide(|| {
        let s = known(ctx, "tlsCipherSuites")?;
        let suites = list_of(&s)?;
        let src = util::source_label(&s);
        // A non-empty list is judged as written, even with tlsMinVersion VersionTLS13
        // (where Go ignores it): the configuration still names the weak suites.
        if !suites.is_empty() {
            let outside: Vec<&str> = suites
                .iter()
                .filter(|c| !allowed.contains(c))
                .map(String::as_str)
                .collect();
            let observed = suites.join(",");
            return Ok(if outside.is_empty() {
                Outcome::pass(
                    observed,
                    src,
                    because(
                        format!(
                            "all {} configured suites are in the allowed list",
                            suites.len()
                        ),
                        &s,
                    ),
                )
            } else {
                // e.g. EKS AL2's TLS_RSA_WITH_AES_{128,256}_GCM_* (reference §5): no forward
                // secrecy, allowed by CIS 1.10/1.11 but not by 1.12.
                Outcome::fail(
                    observed,
                    src,
                    because(
                        format!("weak or unlisted suites allowed: {}", outside.join(", ")),
                        &s,
                    ),
                )
            });
        }
        // Unset: Go's defaults. Only a TLS 1.3 floor makes them irrelevant (TLS 1.3
        // suites are fixed by Go and all AEAD).
        let m = known(ctx, "tlsMinVersion")?;
        let raw = str_of(&m)?.trim().to_string();
        Ok(match min_tls(ctx, &raw) {
            MinTls::Explicit(13) => Outcome::pass(
                "[] (Go default)",
                util::source_label(&m),
                because(
                    "tlsCipherSuites unset but tlsMinVersion is VersionTLS13: TLS 1.3 suites are fixed and all AEAD",
                    &m,
                ),
            ),
            _ => Outcome::fail(
                "[] (Go default)",
                src,
                because(
                    "unset: Go's default TLS 1.2 suites include CBC-mode suites outside the CIS list; kube-bench also fails an unset list",
                    &s,
                ),
            ),
        })
    });
    let is_cis = allowed.len() == CIS_CIPHER_SUITES.len()
        && CIS_CIPHER_SUITES
            .iter()
            .all(|c| allowed.iter().any(|a| a == c));
    if is_cis {
        out
    } else {
        out.with_expected(format!("only: {}", allowed.join(",")))
    }
}

fn evaluate_client_rotation(ctx: &Ctx) -> Outcome {
    decide(|| {
        if let Some(Ok(c)) = &kubelet(ctx)?.credential {
            // `Credential::None` (no credential in the kubeconfig user) is no alternative
            // to a client certificate: rotation is still judged on the setting.
            let other = match c {
                Credential::ClientCertificate { .. } | Credential::None => None,
                Credential::Token => {
                    Some(("bearer token".to_string(), "a bearer token".to_string()))
                }
                Credential::Exec { command } => Some((
                    format!("exec plugin {command}"),
                    format!("an exec plugin ({command})"),
                )),
                Credential::AuthProvider { name } => Some((
                    format!("auth-provider {name}"),
                    format!("an auth-provider plugin ({name})"),
                )),
            };
            if let Some((observed, how)) = other {
                return Ok(Outcome::new(
                    Status::NotApplicable,
                    observed,
                    "kubeconfig",
                    format!("the kubelet authenticates with {how}, not a client certificate"),
                ));
            }
        }
        // kube-bench passes 4.2.10 when the key is absent (reference §1.2), but the
        // kubelet's default is false (reference §2.2): absent means no rotation.
        let s = known(ctx, "rotateCertificates")?;
        let on = bool_of(&s)?;
        let src = util::source_label(&s);
        Ok(if on {
            Outcome::pass(
                "true",
                src,
                because("the client certificate is renewed before it expires", &s),
            )
        } else {
            Outcome::fail(
                "false",
                src,
                because(
                    "the client certificate is not rotated: when it expires the kubelet loses access to the API server (the kubelet's default is false)",
                    &s,
                ),
            )
        })
    })
}

fn evaluate_server_rotation(ctx: &Ctx) -> Outcome {
    decide(|| {
        let gate = server_gate(ctx)?;
        if let Some((false, src)) = &gate {
            return Ok(Outcome::fail(
                format!("{SERVER_GATE}=false"),
                src.label(),
                format!(
                    "the {SERVER_GATE} gate is off: the kubelet never requests or rotates serving certificates; from {}",
                    src.describe()
                ),
            ));
        }
        let gate_text = match &gate {
            Some((_, src)) => format!("{SERVER_GATE}=true ({})", src.label()),
            None => format!("{SERVER_GATE} unset (on by default)"),
        };
        let b = known(ctx, "serverTLSBootstrap")?;
        let src = util::source_label(&b);
        Ok(if bool_of(&b)? {
            Outcome::pass(
                format!("serverTLSBootstrap=true, {gate_text}"),
                src,
                because(
                    "the kubelet requests and renews its serving certificate through CSRs",
                    &b,
                ),
            )
        } else {
            Outcome::fail(
                format!("serverTLSBootstrap=false, {gate_text}"),
                src,
                because(
                    "the gate alone rotates nothing: the kubelet only requests serving certificates when serverTLSBootstrap / --rotate-server-certificates is true",
                    &b,
                ),
            )
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::util::testing::*;
    use super::super::Status;
    use super::*;
    use crate::snapshot::{ObsError, ObsErrorKind};

    #[test]
    fn serving_cert() {
        let id = "tls-serving-cert-configured";
        let o = eval(id, &snapshot_with(&[], Some("")));
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("self-signed"), "{}", o.reason);
        assert_eq!(o.source, "default");

        let o = eval(
            id,
            &snapshot_with(
                &["--tls-cert-file=/pki/k.crt"],
                Some("tlsPrivateKeyFile: /pki/k.key\n"),
            ),
        );
        assert_status(&o, Status::Pass);
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

    #[test]
    fn kube_versions_drive_the_go_default() {
        let id = "tls-min-version";
        let mut s = snapshot_with(&[], Some(""));
        let o = eval(id, &s);
        assert_status(&o, Status::Unknown);
        assert!(o.reason.contains("version is not known"), "{}", o.reason);
        assert_eq!(o.expected.as_deref(), Some("≥ VersionTLS12"));

        kubelet_mut(&mut s).version = Some("v1.31.4".into());
        let o = eval(id, &s);
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "default");
        assert!(o.observed.contains("VersionTLS12"));
        let p13 = policy("expected:\n  tls_min_version: VersionTLS13\n");
        let o = eval_with(id, &s, &p13);
        assert_status(&o, Status::Fail);
        assert_eq!(o.expected.as_deref(), Some("≥ VersionTLS13"));

        kubelet_mut(&mut s).version = Some("v1.29.8-gke.1031000".into());
        let o = eval(id, &s);
        assert_status(&o, Status::Fail);
        assert!(o.observed.contains("VersionTLS10"));
        kubelet_mut(&mut s).version = Some("v1.30.2-eks-1552ad0".into());
        assert_status(&eval(id, &s), Status::Pass);
        kubelet_mut(&mut s).version = Some("garbage".into());
        assert_status(&eval(id, &s), Status::Unknown);
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

        // EKS AL2 (reference §5): six ECDHE suites plus two TLS_RSA suites.
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

    #[test]
    fn cis_suites_match_the_default_policy() {
        let p = crate::policy::Policy::embedded();
        assert_eq!(p.expected.tls_cipher_suites, CIS_CIPHER_SUITES);
    }

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
        kubelet_mut(&mut s).credential =
            Some(Ok(client_cert("system:node:node-1", &["system:nodes"])));
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
}
