//! Practice 3: authenticate and authorise every kubelet request.

use super::live_verdict::{live, with_live, LiveVerdict};
use super::outcome::decide;
use super::setting::{because, bool_of, known, str_of};
use super::{Control, Ctx, Family, Needs, Outcome, Severity, PRACTICE_AUTHN};
use crate::model::kubelet_config::Source;

/// The authn_authz controls: anonymous access, webhook authentication and authorisation,
/// and a live anonymous request.
pub static CONTROLS: &[Control] = &[
    Control {
        id: "anonymous-auth-disabled",
        title: "Anonymous requests to the kubelet API are rejected",
        family: Family::Authn,
        severity: Severity::Critical,
        cis: Some("4.2.1"),
        practice: PRACTICE_AUTHN,
        expected: "false",
        remediation: "Set `authentication.anonymous.enabled: false` in the KubeletConfiguration (or `--anonymous-auth=false`; the flag overrides the file). Without `--config` the default is true, so pass the flag; restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_anonymous,
    },
    Control {
        id: "authorization-mode-webhook",
        title: "Kubelet API requests are authorised by the API server (Webhook)",
        family: Family::Authn,
        severity: Severity::Critical,
        cis: Some("4.2.2"),
        practice: PRACTICE_AUTHN,
        expected: "Webhook",
        remediation: "Set `authorization.mode: Webhook` in the KubeletConfiguration (or `--authorization-mode=Webhook`; the flag overrides the file). Without `--config` the default is AlwaysAllow, so pass the flag; restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_authz_mode,
    },
    Control {
        id: "authentication-webhook-enabled",
        title: "Bearer tokens are verified by the API server (webhook authentication)",
        family: Family::Authn,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_AUTHN,
        expected: "true",
        remediation: "Set `authentication.webhook.enabled: true` in the KubeletConfiguration (or `--authentication-token-webhook=true`). Without `--config` the default is false, so pass the flag; restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_authn_webhook,
    },
    Control {
        id: "kubelet-api-rejects-anonymous",
        title: "The running kubelet refuses an anonymous GET /pods (live)",
        family: Family::Authn,
        severity: Severity::Critical,
        cis: None,
        practice: PRACTICE_AUTHN,
        expected: "HTTP 401 or 403",
        remediation: "Disable anonymous authentication (`authentication.anonymous.enabled: false`) and use `authorization.mode: Webhook`; check that no flag overrides the file (`ps -o args -C kubelet`), then restart the kubelet. Confirm with `curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:10250/pods` (expect 401).",
        needs: Needs::Kubelet,
        evaluate: evaluate_api_rejects_anonymous,
    },
];

/// Extra words when a value is the flags-only default (cmd/kubelet/app/options/options.go
/// `applyLegacyDefaults`: only four defaults differ between the modes, and these are three
/// of them).
fn flags_only_hint(s: &crate::model::kubelet_config::Setting, what: &str) -> String {
    match s.source {
        Source::Default { flags_only: true } => format!(
            " ({what} is the flags-only default: without --config the kubelet applies its legacy defaults)"
        ),
        _ => String::new(),
    }
}

/// Live evidence from `GET /pods` without credentials (pkg/kubelet/server/server.go
/// `InstallAuthFilter`: 401 → anonymous disabled, 403 → anonymous enabled but denied,
/// 200 → open).
fn anonymous_status(ctx: &Ctx) -> Option<Result<u16, String>> {
    let l = live(ctx)?;
    Some(match l.anonymous.as_ref()? {
        Ok(code) => Ok(*code),
        Err(e) => Err(format!(
            "GET /pods on {}: {e}",
            l.serving_target.as_deref().unwrap_or("?")
        )),
    })
}

fn anonymous_live(ctx: &Ctx) -> Option<LiveVerdict> {
    Some(match anonymous_status(ctx)? {
        Ok(401) => LiveVerdict::Secure("answers 401 to GET /pods without credentials".into()),
        Ok(code @ (403 | 200)) => LiveVerdict::Insecure(format!(
            "answers {code} to GET /pods without credentials: anonymous requests are authenticated as system:anonymous"
        )),
        Ok(code) => LiveVerdict::Unavailable(format!("unexpected HTTP {code} to GET /pods")),
        Err(e) => LiveVerdict::Unavailable(e),
    })
}

fn authz_live(ctx: &Ctx) -> Option<LiveVerdict> {
    Some(match anonymous_status(ctx)? {
        Ok(200) => LiveVerdict::Insecure(
            "answers 200 with the pod list to an anonymous GET /pods: requests are not authorised (AlwaysAllow)".into(),
        ),
        Ok(403) => LiveVerdict::Secure("denies an anonymous GET /pods with 403 (authorizer active)".into()),
        Ok(401) => LiveVerdict::Neutral(
            "401 to an anonymous GET /pods: authentication refuses before authorisation, so the mode is not visible".into(),
        ),
        Ok(code) => LiveVerdict::Unavailable(format!("unexpected HTTP {code} to GET /pods")),
        Err(e) => LiveVerdict::Unavailable(e),
    })
}

fn evaluate_api_rejects_anonymous(ctx: &Ctx) -> Outcome {
    match anonymous_status(ctx) {
        None => Outcome::unknown(
            "no live evidence: the kubelet's sockets were not probed (host tree on disk, or --live-probes off)",
        ),
        Some(Ok(code @ (401 | 403))) => Outcome::pass(
            format!("HTTP {code}"),
            "live",
            format!("an anonymous GET /pods is refused with {code}"),
        ),
        Some(Ok(200)) => Outcome::fail(
            "HTTP 200",
            "live",
            "an anonymous GET /pods returns the pod list: anyone who reaches the port can read every pod, exec into containers and read logs",
        ),
        Some(Ok(code)) => Outcome::unknown(format!("unexpected HTTP {code} to an anonymous GET /pods")),
        Some(Err(e)) => Outcome::unknown(format!("no answer: {e}")),
    }
}

fn evaluate_anonymous(ctx: &Ctx) -> Outcome {
    with_live(evaluate_anonymous_config(ctx), anonymous_live(ctx))
}

fn evaluate_authz_mode(ctx: &Ctx) -> Outcome {
    with_live(evaluate_authz_mode_config(ctx), authz_live(ctx))
}

fn evaluate_anonymous_config(ctx: &Ctx) -> Outcome {
    decide(|| {
        let s = known(ctx, "authentication.anonymous.enabled")?;
        let src = s.source.label();
        Ok(if bool_of(&s)? {
            // kube-bench gets this wrong both ways for flags-only kubelets (#1242, #204):
            // the value here is what the kubelet really applies.
            Outcome::fail(
                "true",
                src,
                because(
                    format!(
                        "requests without credentials are accepted as system:anonymous{}",
                        flags_only_hint(&s, "true")
                    ),
                    &s,
                ),
            )
        } else {
            Outcome::pass(
                "false",
                src,
                because("requests without credentials get 401 Unauthorized", &s),
            )
        })
    })
}

fn evaluate_authz_mode_config(ctx: &Ctx) -> Outcome {
    decide(|| {
        let s = known(ctx, "authorization.mode")?;
        let mode = str_of(&s)?.to_string();
        let src = s.source.label();
        Ok(match mode.as_str() {
            "Webhook" => Outcome::pass(
                mode.clone(),
                src,
                because("each request is authorised by the API server (SubjectAccessReview)", &s),
            ),
            "AlwaysAllow" => Outcome::fail(
                mode.clone(),
                src,
                because(
                    format!(
                        "every authenticated (and, with anonymous auth, unauthenticated) request is allowed{}",
                        flags_only_hint(&s, "AlwaysAllow")
                    ),
                    &s,
                ),
            ),
            other => Outcome::fail(
                if other.is_empty() { "\"\"".to_string() } else { other.to_string() },
                src,
                because(
                    format!("{other:?} is not a valid kubelet authorization mode (Webhook or AlwaysAllow)"),
                    &s,
                ),
            ),
        })
    })
}

fn evaluate_authn_webhook(ctx: &Ctx) -> Outcome {
    decide(|| {
        let s = known(ctx, "authentication.webhook.enabled")?;
        let src = s.source.label();
        Ok(if bool_of(&s)? {
            Outcome::pass(
                "true",
                src,
                because(
                    "bearer tokens are verified by the API server (TokenReview)",
                    &s,
                ),
            )
        } else {
            Outcome::fail(
                "false",
                src,
                because(
                    format!(
                        "bearer tokens (service accounts) are not verified by the API server{}",
                        flags_only_hint(&s, "false")
                    ),
                    &s,
                ),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use crate::evaluate::testing::*;

    #[test]
    fn anonymous() {
        let id = "anonymous-auth-disabled";
        let o = eval(id, &kubeadm());
        assert_status(&o, Status::Pass);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("false", "config-file")
        );
        assert!(
            o.reason
                .contains("config-file /var/lib/kubelet/config.yaml"),
            "{}",
            o.reason
        );

        // Flags only: default true (kube-bench #1242).
        let o = eval(id, &snapshot_with(&[], None));
        assert_status(&o, Status::Fail);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("true", "default")
        );
        assert!(o.reason.contains("flags-only"), "{}", o.reason);

        // --config mode: default false.
        let o = eval(id, &snapshot_with(&[], Some("")));
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "default");

        let o = eval(
            id,
            &snapshot_with(
                &["--anonymous-auth"],
                Some("authentication:\n  anonymous:\n    enabled: false\n"),
            ),
        );
        assert_status(&o, Status::Fail);
        assert_eq!(o.source, "flag");
        assert!(o.reason.contains("flag --anonymous-auth"), "{}", o.reason);

        let o = eval(
            id,
            &snapshot_with_dropins(
                &[],
                Some(""),
                &[(
                    "50-x.conf",
                    "authentication:\n  anonymous:\n    enabled: true\n",
                )],
            ),
        );
        assert_status(&o, Status::Fail);
        assert_eq!(o.source, "drop-in:50-x.conf");

        assert_status(
            &eval(id, &snapshot_with(&["--anonymous-auth=maybe"], None)),
            Status::Unknown,
        );
    }

    #[test]
    fn authorization_mode() {
        let id = "authorization-mode-webhook";
        let o = eval(id, &kubeadm());
        assert_status(&o, Status::Pass);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("Webhook", "config-file")
        );
        let o = eval(id, &snapshot_with(&[], None));
        assert_status(&o, Status::Fail);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("AlwaysAllow", "default")
        );
        assert!(o.reason.contains("every authenticated"));
        let o = eval(id, &snapshot_with(&["--authorization-mode=webhook"], None));
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("not a valid"));
        assert_status(
            &eval(id, &snapshot_with(&[], Some("authorization: {mode: 3}\n"))),
            Status::Unknown,
        );
    }

    #[test]
    fn authentication_webhook() {
        let id = "authentication-webhook-enabled";
        let o = eval(id, &kubeadm());
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "config-file");
        let o = eval(id, &snapshot_with(&[], None));
        assert_status(&o, Status::Fail);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("false", "default")
        );
        assert!(o.reason.contains("not verified"));
        assert_status(
            &eval(
                id,
                &snapshot_with(&["--authentication-token-webhook=true"], None),
            ),
            Status::Pass,
        );
        assert_status(
            &eval(id, &snapshot_with(&[], Some("authentication: [\n"))),
            Status::Unknown,
        );
    }
}
