//! Practice 7: audit logging. The kubelet has no audit log of its own; requests to it
//! are audited where they enter the cluster, at a kube-apiserver (control-plane nodes).

use super::{Control, Ctx, Family, Needs, Outcome, Severity, PRACTICE_AUDIT};

/// The audit controls: the API server's audit log (on control-plane nodes).
pub static CONTROLS: &[Control] = &[Control {
    id: "apiserver-audit-log-enabled",
    title: "kube-apiserver on this node writes an audit log (cf. CIS master 1.2.16)",
    family: Family::Audit,
    severity: Severity::High,
    cis: None,
    practice: PRACTICE_AUDIT,
    expected: "--audit-policy-file and --audit-log-path (or --audit-webhook-config-file) set",
    remediation: "Start kube-apiserver with `--audit-policy-file=<policy>` and `--audit-log-path=<file>` (CIS 1.2.16; also set --audit-log-maxage/maxbackup/maxsize) or an audit webhook backend (`--audit-webhook-config-file`); for kubeadm, add them to the kube-apiserver static pod manifest and mount the paths.",
    needs: Needs::Kubelet,
    evaluate: evaluate_audit,
}];

fn evaluate_audit(ctx: &Ctx) -> Outcome {
    let Some(a) = &ctx.snapshot.apiserver else {
        return Outcome::not_applicable(
            "no kube-apiserver on this node; the kubelet itself has no audit log",
        );
    };
    let get = |flag: &str| {
        a.flags
            .last(flag)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let policy = get("audit-policy-file");
    let log = get("audit-log-path");
    let webhook = get("audit-webhook-config-file");
    let observed = [
        ("audit-policy-file", &policy),
        ("audit-log-path", &log),
        ("audit-webhook-config-file", &webhook),
    ]
    .iter()
    .filter_map(|(f, v)| v.as_ref().map(|v| format!("--{f}={v}")))
    .collect::<Vec<_>>();
    let observed = if observed.is_empty() {
        "no audit flags".to_string()
    } else {
        observed.join(" ")
    };
    let pid = a.pid;
    let mut missing = Vec::new();
    if policy.is_none() {
        missing.push("--audit-policy-file (without a policy nothing is audited)");
    }
    if log.is_none() && webhook.is_none() {
        missing.push("--audit-log-path (no log backend)");
    }
    if missing.is_empty() {
        let backend = match (&log, &webhook) {
            (Some(l), _) if l == "-" => "to stdout".to_string(),
            (Some(l), _) => format!("to {l}"),
            (None, _) => "to the audit webhook".to_string(),
        };
        Outcome::pass(
            observed,
            "process",
            format!("kube-apiserver pid {pid} audits requests {backend} under its audit policy"),
        )
    } else {
        Outcome::fail(
            observed,
            "process",
            format!(
                "kube-apiserver pid {pid} is missing {}",
                missing.join(" and ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use crate::evaluate::testing::*;

    const ID: &str = "apiserver-audit-log-enabled";

    #[test]
    fn audit() {
        let mut s = kubeadm();
        let o = eval(ID, &s);
        assert_status(&o, Status::NotApplicable);
        assert!(o.reason.contains("no kube-apiserver"));

        s.apiserver = Some(apiserver(&[
            "--audit-policy-file=/etc/kubernetes/audit.yaml",
            "--audit-log-path",
            "/var/log/audit.log",
        ]));
        let o = eval(ID, &s);
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "process");
        assert_eq!(
            o.observed,
            "--audit-policy-file=/etc/kubernetes/audit.yaml --audit-log-path=/var/log/audit.log"
        );

        s.apiserver = Some(apiserver(&["--audit-log-path=/var/log/audit.log"]));
        let o = eval(ID, &s);
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("--audit-policy-file"), "{}", o.reason);
        assert!(!o.reason.contains("--audit-log-path"), "{}", o.reason);

        s.apiserver = Some(apiserver(&["--authorization-mode=Node,RBAC"]));
        let o = eval(ID, &s);
        assert_status(&o, Status::Fail);
        assert_eq!(o.observed, "no audit flags");
        assert!(o.reason.contains("--audit-policy-file") && o.reason.contains("--audit-log-path"));

        s.apiserver = Some(apiserver(&[
            "--audit-policy-file=/p.yaml",
            "--audit-log-path=",
        ]));
        assert_status(&eval(ID, &s), Status::Fail);

        s.apiserver = Some(apiserver(&[
            "--audit-policy-file=/p.yaml",
            "--audit-webhook-config-file=/w.yaml",
        ]));
        let o = eval(ID, &s);
        assert_status(&o, Status::Pass);
        assert!(o.reason.contains("webhook"));
    }
}
