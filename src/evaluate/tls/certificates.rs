//! The serving certificate (`tls-serving-cert-configured`) and the client CA
//! (`client-ca-configured`): which files the kubelet serves and trusts.

use super::{server_gate, SERVER_GATE};
use crate::evaluate::by_version::{self, minor, Era, Minors};
use crate::evaluate::files::obs_kind_str;
use crate::evaluate::outcome::{decide, kubelet, unknown_with};
use crate::evaluate::setting::{because, bool_of, known, str_of};
use crate::evaluate::{Ctx, Outcome, Status};
use crate::model::observed::ObsErrorKind;
use crate::model::version::Minor;

pub(super) fn evaluate_serving_cert(ctx: &Ctx) -> Outcome {
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

pub(super) fn evaluate_client_ca(ctx: &Ctx) -> Outcome {
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
