//! Certificate rotation: the client certificate (`client-cert-rotation`) and the serving
//! certificate (`server-cert-rotation`).

use super::{server_gate, SERVER_GATE};
use crate::evaluate::outcome::{decide, kubelet};
use crate::evaluate::setting::{because, bool_of, known};
use crate::evaluate::{Ctx, Outcome, Status};
use crate::model::snapshot::Credential;

pub(super) fn evaluate_client_rotation(ctx: &Ctx) -> Outcome {
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

pub(super) fn evaluate_server_rotation(ctx: &Ctx) -> Outcome {
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
