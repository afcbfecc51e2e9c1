//! Practice 2: strong TLS on every kubelet connection (serving certificate, client CA,
//! protocol version, cipher suites, certificate rotation).

use super::by_version::{self, minor, Era, Minors};
use super::files::obs_kind_str;
use super::live_verdict::{live, with_live, LiveVerdict};
use super::outcome::{decide, kubelet, unknown_with};
use super::setting::{because, bool_of, known, list_of, str_of};
use super::{Control, Ctx, Family, Needs, Outcome, Severity, Status, PRACTICE_TLS};
use crate::model::kubelet_config::Source;
use crate::model::snapshot::{Credential, ObsErrorKind};
use crate::model::version::Minor;

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
        let both = !cert.is_empty() && !key.is_empty();
        let b = known(ctx, "serverTLSBootstrap")?;
        if bool_of(&b)? {
            if let Some((false, src)) = server_gate(ctx)? {
                return Ok(Outcome::fail(
                    format!("serverTLSBootstrap=true, {SERVER_GATE}=false"),
                    src.label(),
                    format!(
                        "serverTLSBootstrap needs the {SERVER_GATE} gate, which is false ({}): no serving certificate is requested and the kubelet's validation rejects this combination",
                        src.describe()
                    ),
                ));
            }
            let bootstrap = Outcome::pass(
                "serverTLSBootstrap=true",
                b.source.label(),
                "the kubelet requests its serving certificate from the API server (a CSR signed by the cluster CA)",
            );
            if !both {
                let mut o = bootstrap;
                o.reason = because(&o.reason, &b);
                return Ok(o);
            }
            // Both: pkg/kubelet/kubelet.go `NewMainKubelet` gives the server the CSR
            // manager's certificate as `GetCertificate`, but pkg/kubelet/server/server.go
            // `ListenAndServeKubeletServer` calls `ListenAndServeTLS(tlsOptions.CertFile,
            // tlsOptions.KeyFile)` up to 1.35 (checked in v1.19.16 .. v1.35.4), which loads
            // the files too, and Go's crypto/tls `Config.getCertificate` then asks
            // GetCertificate only when the client sends SNI: a client connecting by IP (the
            // API server, by default) gets tlsCertFile. From 1.36 (v1.36.3, v1.37.2) it calls
            // `ListenAndServeTLS("", "")`: only the CSR certificate is served.
            let file = judge_serving_file(ctx, &cert, &key, &c.source.label())?;
            if file.status == Status::Pass {
                let mut o = bootstrap;
                o.reason = because(
                    format!("{}; tlsCertFile is set too and {}", o.reason, file.reason),
                    &b,
                );
                return Ok(o);
            }
            let mut served = file;
            served.reason = format!(
                "serverTLSBootstrap is on, but the server also loads tlsCertFile and serves it to clients without SNI (the API server connecting by IP): {}",
                served.reason
            );
            let mut out = by_version::judge(
                ctx,
                vec![
                    Era::new(Minors::up_to(minor(1, 35)), served),
                    Era::new(
                        Minors::from(BOOTSTRAP_ONLY_FROM),
                        Outcome {
                            reason: format!("{}; tlsCertFile is ignored", bootstrap.reason),
                            ..bootstrap
                        },
                    ),
                ],
                &format!("serverTLSBootstrap=true, tlsCertFile={cert}"),
                &c.source.label(),
            );
            out.reason = because(&out.reason, &c);
            return Ok(out);
        }
        if both {
            let mut o = judge_serving_file(ctx, &cert, &key, &c.source.label())?;
            o.reason = because(&o.reason, &c);
            return Ok(o);
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
                s.source.label(),
                because(
                    format!("only {set} is set; without {unset} the kubelet cannot serve that certificate"),
                    s,
                ),
            ));
        }
        // cmd/kubelet/app/server.go `InitializeTLS`: with neither file and no
        // serverTLSBootstrap the kubelet writes <cert-dir>/kubelet.crt from
        // client-go/util/cert `GenerateSelfSignedCertKey` (a leaf and its throwaway CA).
        Ok(Outcome::fail(
            observed,
            c.source.label(),
            because(
                "no serving certificate: the kubelet generates a self-signed cert in its cert dir (/var/lib/kubelet/pki/kubelet.crt), which clients cannot verify",
                &c,
            ),
        ))
    })
}

/// `tlsCertFile` and `tlsPrivateKeyFile` are set: the kubelet serves that certificate
/// (pkg/kubelet/kubelet.go `NewMainKubelet` loads the pair; a pair it cannot load stops
/// it). It passes only when the file shows a certificate that something else vouches for.
/// The reason does not name the setting's provenance (the caller adds it).
fn judge_serving_file(ctx: &Ctx, cert: &str, key: &str, src: &str) -> Result<Outcome, String> {
    let observed = format!("tlsCertFile={cert}, tlsPrivateKeyFile={key}");
    Ok(match &kubelet(ctx)?.serving_cert_file {
        Some(Ok(sum)) if sum.self_signed => Outcome::fail(
            observed,
            src,
            format!(
                "{cert} is self-signed ({}, signed by its own key): clients cannot verify it against a CA",
                sum.subject
            ),
        ),
        Some(Ok(sum)) if sum.kubelet_generated => Outcome::fail(
            observed,
            src,
            format!(
                "{cert} is the pair the kubelet generates for itself ({} signed by the throwaway {} bundled with it): clients cannot verify it against a CA",
                sum.subject, sum.issuer
            ),
        ),
        Some(Ok(sum)) => Outcome::pass(
            observed,
            src,
            format!(
                "a serving certificate and key are configured; {} is issued by {}",
                sum.subject, sum.issuer
            ),
        ),
        Some(Err(e)) => match e.kind {
            ObsErrorKind::Unreadable => unknown_with(
                observed,
                src,
                format!(
                    "the serving certificate could not be read, so whether it is self-signed is not known: {}",
                    e.message
                ),
            ),
            ObsErrorKind::NotFound | ObsErrorKind::Invalid => Outcome::fail(
                observed,
                src,
                format!(
                    "the serving certificate is {}: {}; the kubelet cannot load it and does not start",
                    obs_kind_str(e.kind),
                    e.message
                ),
            ),
        },
        None => unknown_with(
            observed,
            src,
            "a serving certificate and key are configured, but the certificate file was not examined",
        ),
    })
}

/// The first kubelet minor whose server serves only the CSR certificate when
/// serverTLSBootstrap is on, whatever tlsCertFile says.
const BOOTSTRAP_ONLY_FROM: Minor = minor(1, 36);

fn evaluate_client_ca(ctx: &Ctx) -> Outcome {
    decide(|| {
        let s = known(ctx, "authentication.x509.clientCAFile")?;
        let path = str_of(&s)?.trim().to_string();
        let src = s.source.label();
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
    /// Unset: the kubelet's own default, VersionTLS12.
    Default,
}

/// `tlsMinVersion` as the kubelet reads it. cmd/kubelet/app/server.go `InitializeTLS`
/// calls k8s.io/component-base/cli/flag `TLSVersion(kc.TLSMinVersion)`, which returns
/// `DefaultTLSVersion()` = `tls.VersionTLS12` for an empty name, one of `VersionTLS10` ..
/// `VersionTLS13`, or the error "unknown tls version" (the kubelet does not start), and
/// puts it in the server's `tls.Config.MinVersion`. The same in every supported kubelet
/// (checked in component-base v0.19.16 .. v0.37.2 and the kubelet's `InitializeTLS` of
/// v1.19.16 .. v1.37.2), so Go's own server default (TLS 1.0 before Go 1.22) never
/// applies: a kubelet with `tlsMinVersion` unset refuses TLS 1.0 and 1.1.
fn min_tls(raw: &str) -> MinTls {
    if raw.is_empty() {
        return MinTls::Default;
    }
    match tls_rank(raw) {
        Some(r) => MinTls::Explicit(r),
        None => MinTls::Invalid(raw.to_string()),
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
    let l = live(ctx)?;
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
    let l = live(ctx)?;
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
                .filter(|c| !suite_allowed(allowed, c))
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
    // Unset is a decided configuration too (VersionTLS12, see `min_tls`): the live scan
    // confirms or contradicts it like any configured value.
    with_live(config, versions_live(ctx, want))
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
        let src = s.source.label();
        Ok(match min_tls(&raw) {
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
            MinTls::Default => {
                let observed = format!("\"\" (kubelet default: {})", tls_name(12));
                let why = "tlsMinVersion unset: every kubelet sets VersionTLS12 (component-base DefaultTLSVersion), refusing TLS 1.0 and 1.1";
                if 12 >= want {
                    Outcome::pass(observed, src, because(format!("{why}, meeting {want_name}"), &s))
                } else {
                    Outcome::fail(observed, src, because(format!("{why}, below {want_name}"), &s))
                }
            }
        })
    });
    out.with_expected(format!("≥ {want_name}"))
}

use crate::model::kubelet_config::loading::KUBELET_SUITES;

/// Names only kubelets from 1.23 accept (see [`KUBELET_SUITES`]).
const CHACHA_SHA256_NAMES: &[&str] = &[
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// The first kubelet minor that accepts [`CHACHA_SHA256_NAMES`].
const CHACHA_SHA256_FROM: Minor = minor(1, 23);

/// The IANA number of a suite name the kubelet accepts.
fn kubelet_suite_id(name: &str) -> Option<u16> {
    KUBELET_SUITES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, id)| *id)
}

/// A TLS 1.3 suite (0x13xx): never chosen through `tlsCipherSuites`.
fn is_tls13(id: u16) -> bool {
    id >> 8 == 0x13
}

/// The number of a suite named by the kubelet, the policy or the live scan (which uses
/// Go's legacy ChaCha20 names and IANA's for suites Go lacks).
fn suite_id(name: &str) -> Option<u16> {
    kubelet_suite_id(name).or_else(|| {
        crate::model::tls::IANA_TLS12_SUITES
            .iter()
            .chain(crate::model::tls::TLS13_SUITES)
            .find(|(_, n)| *n == name)
            .map(|(id, _)| *id)
    })
}

/// Whether `name` is one of the allowed suites, by number (either ChaCha20 spelling).
fn suite_allowed(allowed: &[String], name: &str) -> bool {
    match suite_id(name) {
        Some(id) => allowed.iter().any(|a| suite_id(a) == Some(id)),
        None => allowed.iter().any(|a| a == name),
    }
}

const TLS13_FIXED: &str =
    "TLS 1.3 suites are not configurable (Go's are fixed, all AEAD): only TLS 1.2 suites are judged";

/// A non-empty `tlsCipherSuites` for a kubelet that accepts every name in it.
fn judge_suite_list(
    suites: &[String],
    allowed: &[String],
    min13: bool,
    observed: &str,
    src: &str,
) -> Outcome {
    let tls13: Vec<&str> = suites
        .iter()
        .map(String::as_str)
        .filter(|n| kubelet_suite_id(n).is_some_and(is_tls13))
        .collect();
    let tls12: Vec<&str> = suites
        .iter()
        .map(String::as_str)
        .filter(|n| !tls13.contains(n))
        .collect();
    let outside: Vec<&str> = tls12
        .iter()
        .copied()
        .filter(|n| !suite_allowed(allowed, n))
        .collect();
    let ignored = if tls13.is_empty() {
        String::new()
    } else {
        format!(" ({} ignored: {TLS13_FIXED})", tls13.join(", "))
    };
    if min13 {
        // InitializeTLS: "Warning: TLS 1.3 cipher suites are not configurable, ignoring
        // --tls-cipher-suites".
        let unused = if outside.is_empty() {
            String::new()
        } else {
            format!(
                "; the list names {} for TLS 1.2, used only if the minimum is lowered",
                outside.join(", ")
            )
        };
        return Outcome::pass(
            observed,
            src,
            format!("tlsMinVersion is VersionTLS13: no TLS 1.2 suite is ever negotiated and {TLS13_FIXED}{unused}"),
        );
    }
    if !outside.is_empty() {
        // e.g. EKS AL2's TLS_RSA_WITH_AES_{128,256}_GCM_*: no forward secrecy, allowed by
        // CIS 1.10/1.11 but not by 1.12.
        return Outcome::fail(
            observed,
            src,
            format!(
                "weak or unlisted TLS 1.2 suites allowed: {}{ignored}",
                outside.join(", ")
            ),
        );
    }
    if tls12.is_empty() {
        return Outcome::pass(
            observed,
            src,
            format!("no TLS 1.2 suite is enabled, so TLS 1.2 clients cannot connect{ignored}"),
        );
    }
    Outcome::pass(
        observed,
        src,
        format!(
            "all {} TLS 1.2 suites are in the allowed list{ignored}",
            tls12.len()
        ),
    )
}

fn evaluate_cipher_suites_config(ctx: &Ctx) -> Outcome {
    let allowed = &ctx.policy.expected.tls_cipher_suites;
    let out = decide(|| {
        let s = known(ctx, "tlsCipherSuites")?;
        let suites = list_of(&s)?;
        let src = s.source.label();
        // VersionTLS13 as the floor leaves no TLS 1.2 suite in use.
        let min13 = known(ctx, "tlsMinVersion")
            .and_then(|m| Ok(matches!(min_tls(str_of(&m)?.trim()), MinTls::Explicit(13))));
        if !suites.is_empty() {
            let observed = suites.join(",");
            let unknown: Vec<&str> = suites
                .iter()
                .map(String::as_str)
                .filter(|n| kubelet_suite_id(n).is_none())
                .collect();
            if !unknown.is_empty() {
                return Ok(Outcome::fail(
                    observed,
                    src,
                    because(
                        format!(
                            "{} is not a cipher suite name the kubelet knows (component-base TLSCipherSuites: \"not supported or doesn't exist\"): the kubelet refuses to start",
                            unknown.join(", ")
                        ),
                        &s,
                    ),
                ));
            }
            let judged = match &min13 {
                Ok(min13) => judge_suite_list(&suites, allowed, *min13, &observed, &src),
                Err(why) => {
                    let j = judge_suite_list(&suites, allowed, false, &observed, &src);
                    if j.status == Status::Fail {
                        unknown_with(
                            observed.clone(),
                            src.clone(),
                            format!("{}; but tlsMinVersion cannot be decided ({why}), and VersionTLS13 would leave the TLS 1.2 suites unused", j.reason),
                        )
                    } else {
                        j
                    }
                }
            };
            let new_names: Vec<&str> = suites
                .iter()
                .map(String::as_str)
                .filter(|n| CHACHA_SHA256_NAMES.contains(n))
                .collect();
            let mut out = if new_names.is_empty() {
                judged
            } else {
                let refused = Outcome::fail(
                    observed.clone(),
                    src.clone(),
                    format!(
                        "{} is unknown to component-base before v0.23 (it knows only the legacy spelling without _SHA256): the kubelet refuses to start",
                        new_names.join(", ")
                    ),
                );
                by_version::judge(
                    ctx,
                    vec![
                        Era::new(Minors::up_to(minor(1, 22)), refused),
                        Era::new(Minors::from(CHACHA_SHA256_FROM), judged),
                    ],
                    &observed,
                    &src,
                )
            };
            out.reason = because(&out.reason, &s);
            return Ok(out);
        }
        // Unset: Go's default suites. Only a TLS 1.3 floor makes them irrelevant.
        let m = known(ctx, "tlsMinVersion")?;
        Ok(if min13? {
            Outcome::pass(
                "[] (Go default)",
                m.source.label(),
                because(
                    format!(
                        "tlsCipherSuites unset and tlsMinVersion is VersionTLS13: {TLS13_FIXED}"
                    ),
                    &m,
                ),
            )
        } else {
            Outcome::fail(
                "[] (Go default)",
                src,
                because(
                    "unset: Go's default TLS 1.2 suites include CBC-mode suites outside the CIS list; kube-bench also fails an unset list",
                    &s,
                ),
            )
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
        // kube-bench passes 4.2.10 when the key is absent (cfg/cis-1.12/node.yaml), but the
        // kubelet's default is false (v1beta1 defaults.go sets none): absent means no rotation.
        let s = known(ctx, "rotateCertificates")?;
        let on = bool_of(&s)?;
        let src = s.source.label();
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
        let src = b.source.label();
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
mod tests;
