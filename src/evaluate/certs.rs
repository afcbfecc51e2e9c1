//! Practice 2, certificate validity: the serving certificate the kubelet presents and the
//! client certificate it uses towards the API server are inside their validity period and
//! not about to expire.

use super::files::obs_kind_str;
use super::outcome::{decide, kubelet, unknown_with};
use super::version::evaluation_time;
use super::{Control, Ctx, Family, Needs, Outcome, Severity, Status, PRACTICE_TLS};
use crate::model::cert::CertSummary;
use crate::model::snapshot::{Credential, FileRole};
use crate::model::time::{format_utc, SECS_PER_DAY};

/// The certificate-validity controls of the tls family: the serving and client
/// certificates' validity periods.
pub static CONTROLS: &[Control] = &[
    Control {
        id: "serving-cert-valid",
        title: "Kubelet serving certificate is valid and not about to expire",
        family: Family::Tls,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_TLS,
        expected: "valid now and for more than 14 days (policy cert_expiry_warning_days)",
        remediation: "Renew the kubelet's serving certificate: with `serverTLSBootstrap: true` make sure kubelet-serving CSRs are approved (`kubectl get csr`) so the kubelet rotates it; with `tlsCertFile`/`tlsPrivateKeyFile` issue a new certificate from the cluster CA and restart the kubelet; a self-signed `/var/lib/kubelet/pki/kubelet.crt` is regenerated when deleted and the kubelet restarted. When the kubelet serves a different certificate than the file, find out why (a pending rotation, a file replaced without a restart, a configuration pointing elsewhere).",
        needs: Needs::Kubelet,
        evaluate: evaluate_serving,
    },
    Control {
        id: "client-cert-valid",
        title: "Kubelet client certificate is valid and not about to expire",
        family: Family::Tls,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_TLS,
        expected: "valid now and for more than 14 days (policy cert_expiry_warning_days)",
        remediation: "Renew the kubelet's client certificate before it expires: enable `rotateCertificates: true` and make sure its CSRs are approved, so the kubelet rotates its certificate (/var/lib/kubelet/pki/kubelet-client-current.pem) itself. An expired client certificate cuts the node off from the API server: re-bootstrap the kubelet (a new bootstrap token / `kubeadm join` phase kubelet-start) and restart it.",
        needs: Needs::Kubelet,
        evaluate: evaluate_client,
    },
];

/// A certificate's validity at `now` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// `now` is before `notBefore`.
    NotYetValid {
        /// Seconds until `notBefore`.
        starts_in_secs: i64,
    },
    /// `now` is after `notAfter`.
    Expired {
        /// Seconds since `notAfter`.
        since_secs: i64,
    },
    /// Valid now, but fewer than `warn_days` (policy `cert_expiry_warning_days`) left.
    ExpiresSoon {
        /// Seconds until `notAfter`.
        left_secs: i64,
    },
    /// Valid now and for at least `warn_days` more.
    Valid {
        /// Seconds until `notAfter`.
        left_secs: i64,
    },
}

/// Judge validity: `notBefore <= now <= notAfter` (as Go's x509 does), and more than
/// `warn_days` left.
pub fn validity(cert: &CertSummary, now: i64, warn_days: i64) -> Validity {
    if now < cert.not_before {
        Validity::NotYetValid {
            starts_in_secs: cert.not_before - now,
        }
    } else if now > cert.not_after {
        Validity::Expired {
            since_secs: now - cert.not_after,
        }
    } else if cert.not_after - now < warn_days.saturating_mul(SECS_PER_DAY) {
        Validity::ExpiresSoon {
            left_secs: cert.not_after - now,
        }
    } else {
        Validity::Valid {
            left_secs: cert.not_after - now,
        }
    }
}

/// `3 days` / `5 hours` for humans.
fn span(secs: i64) -> String {
    let days = secs / SECS_PER_DAY;
    if days >= 1 {
        format!("{days} day{}", if days == 1 { "" } else { "s" })
    } else {
        let hours = secs / 3600;
        format!("{hours} hour{}", if hours == 1 { "" } else { "s" })
    }
}

/// Status and explanation of a certificate's validity.
fn judge(what: &str, cert: &CertSummary, now: i64, warn_days: i64) -> (Status, String) {
    let subject = &cert.subject;
    let nb = format_utc(cert.not_before);
    let na = format_utc(cert.not_after);
    match validity(cert, now, warn_days) {
        Validity::NotYetValid { starts_in_secs } => (
            Status::Fail,
            format!(
                "{what} ({subject}) is not valid yet: notBefore {nb} is {} in the future (check the node's clock)",
                span(starts_in_secs)
            ),
        ),
        Validity::Expired { since_secs } => (
            Status::Fail,
            format!(
                "{what} ({subject}) expired on {na}, {} ago",
                span(since_secs)
            ),
        ),
        Validity::ExpiresSoon { left_secs } => (
            Status::Fail,
            format!(
                "{what} ({subject}) expires on {na}, in {}: within the {warn_days}-day warning window",
                span(left_secs)
            ),
        ),
        Validity::Valid { left_secs } => (
            Status::Pass,
            format!(
                "{what} ({subject}) is valid until {na} ({} left, more than the {warn_days}-day warning window)",
                span(left_secs)
            ),
        ),
    }
}

fn observed_of(cert: &CertSummary) -> String {
    format!("notAfter={}", format_utc(cert.not_after))
}

fn expected_text(warn_days: i64) -> String {
    format!("valid now and for more than {warn_days} days")
}

/// Whether two summaries describe different certificates.
fn differs(a: &CertSummary, b: &CertSummary) -> bool {
    a.not_after != b.not_after
        || a.not_before != b.not_before
        || a.subject != b.subject
        || a.issuer != b.issuer
}

fn evaluate_serving(ctx: &Ctx) -> Outcome {
    let warn = ctx.policy.cert_expiry_warning_days();
    decide(|| {
        let k = kubelet(ctx)?;
        let now = evaluation_time(ctx);
        let path = k
            .files_in(FileRole::ServingCert)
            .next()
            .map(|f| f.path.clone());
        let file_name = path.as_deref().unwrap_or("the serving certificate file");
        // What the live handshake gave, or why it gave nothing.
        let live: Result<&CertSummary, String> = match ctx.snapshot.live.as_ref() {
            None => Err("the serving port was not probed".to_string()),
            Some(l) => match &l.tls {
                None => Err("no TLS handshake was attempted".to_string()),
                Some(Err(e)) => Err(format!("the TLS handshake failed: {e}")),
                Some(Ok(hs)) => hs
                    .cert
                    .as_ref()
                    .ok_or_else(|| "the TLS handshake returned no certificate".to_string()),
            },
        };
        let file: Result<&CertSummary, String> = match &k.serving_cert_file {
            None => Err(format!("{file_name} was not examined")),
            Some(Ok(c)) => Ok(c),
            Some(Err(e)) => Err(format!(
                "{file_name} is {}: {}",
                obs_kind_str(e.kind),
                e.message
            )),
        };
        Ok(match (live, file) {
            (Ok(served), file) => {
                let (status, mut reason) = judge("the served certificate", served, now, warn);
                match file {
                    Ok(f) if differs(served, f) => {
                        let (_, file_reason) = judge(file_name, f, now, warn);
                        reason.push_str(&format!(
                            "; the kubelet serves a different certificate than the file: {file_reason}"
                        ));
                    }
                    Ok(_) => reason.push_str(&format!("; it is the one in {file_name}")),
                    Err(_) => {}
                }
                Outcome::new(status, observed_of(served), "live", reason)
            }
            (Err(why_live), Ok(f)) => {
                let (status, reason) = judge(file_name, f, now, warn);
                Outcome::new(
                    status,
                    observed_of(f),
                    "serving-cert-file",
                    format!("{reason}; judged on the file: {why_live}"),
                )
            }
            (Err(why_live), Err(why_file)) => unknown_with(
                "",
                "",
                format!("no serving certificate to judge: {why_live}; {why_file}"),
            ),
        })
    })
    .with_expected(expected_text(warn))
}

/// `not_applicable` for a credential that is not a certificate.
fn not_a_certificate(observed: &str, how: &str) -> Outcome {
    Outcome::new(
        Status::NotApplicable,
        observed,
        "kubeconfig",
        format!(
            "the kubelet authenticates with {how}, not a client certificate: nothing expires here"
        ),
    )
}

fn evaluate_client(ctx: &Ctx) -> Outcome {
    let warn = ctx.policy.cert_expiry_warning_days();
    decide(|| {
        let k = kubelet(ctx)?;
        let now = evaluation_time(ctx);
        Ok(match &k.credential {
            // No --kubeconfig (observe reads the credential whenever the flag is set): a
            // standalone kubelet has no client certificate to expire.
            None if !k.flags.has("kubeconfig") => Outcome::not_applicable(
                "no --kubeconfig: a standalone kubelet has no API client certificate",
            ),
            None => Outcome::unknown("the kubeconfig's credential was not examined"),
            Some(Err(e)) => Outcome::unknown(format!(
                "the kubeconfig's credential could not be read ({}): {}",
                obs_kind_str(e.kind),
                e.message
            )),
            Some(Ok(Credential::ClientCertificate { cert, from })) => {
                let (status, reason) = judge("the client certificate", cert, now, warn);
                Outcome::new(
                    status,
                    observed_of(cert),
                    "kubeconfig",
                    format!("{reason}; from {from}"),
                )
            }
            Some(Ok(Credential::None)) => Outcome::unknown(
                "the kubeconfig's user has no credential: no client certificate to judge",
            ),
            Some(Ok(Credential::Token)) => not_a_certificate("bearer token", "a bearer token"),
            Some(Ok(Credential::Exec { command })) => not_a_certificate(
                &format!("exec plugin {command}"),
                &format!("an exec plugin ({command})"),
            ),
            Some(Ok(Credential::AuthProvider { name })) => not_a_certificate(
                &format!("auth-provider {name}"),
                &format!("an auth-provider plugin ({name})"),
            ),
        })
    })
    .with_expected(expected_text(warn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::testing::*;
    use crate::model::live::{Live, LiveError, LiveErrorKind, TlsHandshake};
    use crate::model::observed::{ObsError, ObsErrorKind};
    use crate::model::snapshot::Snapshot;

    #[test]
    fn standalone_kubelet_has_no_client_certificate() {
        let s = snapshot_with(&[], None);
        assert_eq!(
            eval("client-cert-valid", &s).status,
            crate::evaluate::Status::NotApplicable
        );
        let s = snapshot_with(&["--kubeconfig=/etc/kubernetes/kubelet.conf"], None);
        assert_eq!(
            eval("client-cert-valid", &s).status,
            crate::evaluate::Status::Unknown
        );
    }

    /// `taken_at` in the test snapshots: 2023-11-14T22:13:20Z.
    const NOW: i64 = 1_700_000_000;
    const DAY: i64 = SECS_PER_DAY;

    fn cert_until(cn: &str, not_after: i64) -> CertSummary {
        let mut c = cert(cn, &[], false);
        c.subject = format!("CN={cn}");
        c.not_before = NOW - 300 * DAY;
        c.not_after = not_after;
        c
    }

    fn with_live_cert(s: &mut Snapshot, c: Option<CertSummary>) {
        s.live = Some(Live {
            tls: Some(Ok(TlsHandshake {
                version: "VersionTLS13".into(),
                cipher: "TLS_AES_128_GCM_SHA256".into(),
                cert: c,
            })),
            ..Live::default()
        });
    }

    #[test]
    fn validity_edges() {
        let c = cert_until("x", NOW + 14 * DAY);
        assert_eq!(
            validity(&c, NOW, 14),
            Validity::Valid {
                left_secs: 14 * DAY
            }
        );
        assert_eq!(
            validity(&c, NOW + 1, 14),
            Validity::ExpiresSoon {
                left_secs: 14 * DAY - 1
            }
        );
        assert_eq!(
            validity(&c, NOW + 14 * DAY, 14),
            Validity::ExpiresSoon { left_secs: 0 }
        );
        assert_eq!(
            validity(&c, NOW + 14 * DAY + 1, 14),
            Validity::Expired { since_secs: 1 }
        );
        assert_eq!(
            validity(&c, c.not_before - 5, 14),
            Validity::NotYetValid { starts_in_secs: 5 }
        );
        assert_eq!(
            validity(&c, NOW + 13 * DAY, 0),
            Validity::Valid { left_secs: DAY }
        );
        assert_eq!(span(DAY), "1 day");
        assert_eq!(span(3 * DAY + 5), "3 days");
        assert_eq!(span(7200), "2 hours");
    }

    #[test]
    fn serving_cert_from_the_file() {
        let id = "serving-cert-valid";
        let mut s = kubeadm();
        kubelet_mut(&mut s).serving_cert_file = Some(Ok(cert_until("node-1", NOW + 200 * DAY)));
        let o = eval(id, &s);
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "serving-cert-file");
        assert_eq!(
            o.observed,
            format!("notAfter={}", format_utc(NOW + 200 * DAY))
        );
        assert!(o.reason.contains("200 days left"), "{}", o.reason);
        assert!(
            o.reason.contains("the serving port was not probed"),
            "{}",
            o.reason
        );
        assert_eq!(
            o.expected.as_deref(),
            Some("valid now and for more than 14 days")
        );

        kubelet_mut(&mut s).serving_cert_file = Some(Ok(cert_until("node-1", NOW - 3 * DAY)));
        let o = eval(id, &s);
        assert_status(&o, Status::Fail);
        assert!(
            o.reason
                .contains("expired on 2023-11-11T22:13:20Z, 3 days ago"),
            "{}",
            o.reason
        );

        kubelet_mut(&mut s).serving_cert_file = Some(Ok(cert_until("node-1", NOW + 10 * DAY)));
        let o = eval(id, &s);
        assert_status(&o, Status::Fail);
        assert!(
            o.reason.contains("within the 14-day warning window"),
            "{}",
            o.reason
        );

        let mut early = cert_until("node-1", NOW + 400 * DAY);
        early.not_before = NOW + 2 * DAY;
        kubelet_mut(&mut s).serving_cert_file = Some(Ok(early));
        let o = eval(id, &s);
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("not valid yet"), "{}", o.reason);

        // Neither a live certificate nor a readable file: unknown with both reasons.
        kubelet_mut(&mut s).serving_cert_file = Some(Err(ObsError::new(
            ObsErrorKind::Unreadable,
            "/var/lib/kubelet/pki/kubelet.crt: permission denied",
        )));
        kubelet_mut(&mut s).files = vec![file(
            FileRole::ServingCert,
            "/var/lib/kubelet/pki/kubelet.crt",
            0o644,
            0,
            0,
        )];
        s.live = Some(Live {
            tls: Some(Err(LiveError::new(
                LiveErrorKind::Refused,
                "connection refused",
            ))),
            ..Live::default()
        });
        let o = eval(id, &s);
        assert_status(&o, Status::Unknown);
        assert!(o.reason.contains("connection refused"), "{}", o.reason);
        assert!(o.reason.contains("permission denied"), "{}", o.reason);
        assert_status(&eval(id, &kubeadm()), Status::Unknown);
    }

    #[test]
    fn serving_cert_live_wins() {
        let id = "serving-cert-valid";
        let mut s = kubeadm();
        kubelet_mut(&mut s).files = vec![file(
            FileRole::ServingCert,
            "/var/lib/kubelet/pki/kubelet.crt",
            0o644,
            0,
            0,
        )];
        // The file was renewed; the running kubelet still serves the old, expired one.
        kubelet_mut(&mut s).serving_cert_file = Some(Ok(cert_until("node-1", NOW + 300 * DAY)));
        with_live_cert(&mut s, Some(cert_until("node-1", NOW - DAY)));
        let o = eval(id, &s);
        assert_status(&o, Status::Fail);
        assert_eq!(o.source, "live");
        assert!(o.reason.contains("expired"), "{}", o.reason);
        assert!(
            o.reason
                .contains("the kubelet serves a different certificate than the file"),
            "{}",
            o.reason
        );
        assert!(
            o.reason.contains("/var/lib/kubelet/pki/kubelet.crt"),
            "{}",
            o.reason
        );

        // Same certificate in both: pass, and said so.
        with_live_cert(&mut s, Some(cert_until("node-1", NOW + 300 * DAY)));
        let o = eval(id, &s);
        assert_status(&o, Status::Pass);
        assert!(
            o.reason
                .contains("it is the one in /var/lib/kubelet/pki/kubelet.crt"),
            "{}",
            o.reason
        );

        // A handshake without a certificate falls back to the file.
        with_live_cert(&mut s, None);
        let o = eval(id, &s);
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "serving-cert-file");
        assert!(o.reason.contains("returned no certificate"), "{}", o.reason);
    }

    #[test]
    fn client_cert() {
        let id = "client-cert-valid";
        let mut s = kubeadm();
        assert_status(&eval(id, &s), Status::Unknown);

        kubelet_mut(&mut s).credential = Some(Ok(Credential::ClientCertificate {
            cert: cert_until("system:node:node-1", NOW + 90 * DAY),
            from: "/var/lib/kubelet/pki/kubelet-client-current.pem".into(),
        }));
        let o = eval(id, &s);
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "kubeconfig");
        assert!(
            o.reason.contains("kubelet-client-current.pem"),
            "{}",
            o.reason
        );

        kubelet_mut(&mut s).credential = Some(Ok(Credential::ClientCertificate {
            cert: cert_until("system:node:node-1", NOW + 3600),
            from: "inline".into(),
        }));
        let o = eval(id, &s);
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("in 1 hour"), "{}", o.reason);

        kubelet_mut(&mut s).credential = Some(Ok(Credential::Exec {
            command: "aws-iam-authenticator".into(),
        }));
        let o = eval(id, &s);
        assert_status(&o, Status::NotApplicable);
        assert_eq!(o.observed, "exec plugin aws-iam-authenticator");
        kubelet_mut(&mut s).credential = Some(Ok(Credential::Token));
        assert_status(&eval(id, &s), Status::NotApplicable);

        kubelet_mut(&mut s).credential = Some(Ok(Credential::None));
        assert_status(&eval(id, &s), Status::Unknown);
        kubelet_mut(&mut s).credential = Some(Err(ObsError::new(
            ObsErrorKind::NotFound,
            "/etc/kubernetes/kubelet.conf: not found",
        )));
        let o = eval(id, &s);
        assert_status(&o, Status::Unknown);
        assert!(o.reason.contains("not found"), "{}", o.reason);
    }

    #[test]
    fn warning_window_defaults_until_wired() {
        let s = kubeadm();
        let ctx = Ctx {
            snapshot: &s,
            policy: &crate::evaluate::policy::Policy::embedded(),
        };
        assert_eq!(
            ctx.policy.cert_expiry_warning_days(),
            crate::evaluate::policy::DEFAULT_EXPIRY_WARNING_DAYS
        );
        let c = cert_until("x", NOW + 20 * DAY);
        assert_eq!(judge("c", &c, NOW, 30).0, Status::Fail);
        assert_eq!(judge("c", &c, NOW, 14).0, Status::Pass);
    }
}
