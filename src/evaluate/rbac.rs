//! Practice 6: least-privilege kubelet credentials (RBAC, node side): the kubelet's own
//! identity must be a node identity, scoped by the Node authorizer and NodeRestriction.

use super::util::{kubelet, unknown_with, PRACTICE_RBAC};
use super::{Control, Ctx, Family, Needs, Outcome, Severity};
use crate::snapshot::{CertSummary, Credential, ObsErrorKind};

pub static CONTROLS: &[Control] = &[Control {
    id: "kubelet-credential-node-scoped",
    title: "Kubelet authenticates to the API server as its own node",
    family: Family::Rbac,
    severity: Severity::Critical,
    cis: None,
    practice: PRACTICE_RBAC,
    expected: "CN=system:node:<this node>, O=system:nodes",
    remediation: "Give the kubelet a client certificate with CN `system:node:<node name>` and O `system:nodes` (kubeadm/TLS bootstrapping does this: `--bootstrap-kubeconfig` plus `rotateCertificates: true`), never an admin or shared credential; enable the Node authorizer and the NodeRestriction admission plugin on the API server.",
    needs: Needs::Kubelet,
    evaluate: evaluate_node_scoped,
}];

const NODE_PREFIX: &str = "system:node:";

fn describe(cert: &CertSummary, from: &str) -> String {
    let orgs = if cert.organizations.is_empty() {
        String::new()
    } else {
        format!(" O={}", cert.organizations.join(","))
    };
    format!(
        "CN={}{orgs} ({from})",
        cert.common_name.as_deref().unwrap_or("")
    )
}

fn evaluate_node_scoped(ctx: &Ctx) -> Outcome {
    let k = match kubelet(ctx) {
        Ok(k) => k,
        Err(e) => return Outcome::unknown(e),
    };
    let cred = match &k.credential {
        None => return Outcome::not_applicable("no --kubeconfig: standalone kubelet"),
        Some(Err(e)) => {
            return Outcome::unknown(match e.kind {
                ObsErrorKind::NotFound => format!(
                    "the kubeconfig or its client certificate does not exist: {}",
                    e.message
                ),
                ObsErrorKind::Unreadable => {
                    format!("the kubeconfig could not be read: {}", e.message)
                }
                ObsErrorKind::Invalid => format!(
                    "the kubeconfig credential could not be understood: {}",
                    e.message
                ),
            })
        }
        Some(Ok(c)) => c,
    };
    let (cert, from) = match cred {
        Credential::ClientCertificate { cert, from } => (cert, from),
        Credential::Exec { command } => {
            return unknown_with(
                format!("exec plugin {command}"),
                "kubeconfig",
                format!("identity is decided by the API server (exec plugin {command}); it cannot be checked from the node"),
            )
        }
        Credential::AuthProvider { name } => {
            return unknown_with(
                format!("auth-provider {name}"),
                "kubeconfig",
                format!("identity is decided by the API server (auth-provider {name}); it cannot be checked from the node"),
            )
        }
        Credential::Token => {
            return unknown_with(
                "bearer token",
                "kubeconfig",
                "identity is decided by the API server (bearer token); it cannot be checked from the node",
            )
        }
        Credential::None => {
            return unknown_with(
                "no credential",
                "kubeconfig",
                "the kubeconfig's user carries no credential; the kubelet's identity cannot be checked",
            )
        }
    };
    let observed = describe(cert, from);
    let in_group = |g: &str| cert.organizations.iter().any(|o| o == g);
    if in_group("system:masters") {
        return Outcome::fail(
            observed,
            "kubeconfig",
            "a system:masters credential is cluster-admin and bypasses RBAC and NodeRestriction",
        );
    }
    let cn = cert.common_name.as_deref().unwrap_or("");
    let node_part = cn.strip_prefix(NODE_PREFIX);
    let Some(cert_node) = node_part.filter(|_| in_group("system:nodes")) else {
        return Outcome::fail(
            observed,
            "kubeconfig",
            "not a node identity (CN system:node:<name>, O system:nodes); the Node authorizer and NodeRestriction do not scope it",
        );
    };
    // The names this kubelet may register as: the node name (snapshot) and any
    // --hostname-override. Node names are lower-case DNS names; compare without case.
    let mut names: Vec<&str> = Vec::new();
    if !ctx.snapshot.node.trim().is_empty() {
        names.push(ctx.snapshot.node.trim());
    }
    if let Some(h) = k.flags.last("hostname-override").map(str::trim) {
        if !h.is_empty() {
            names.push(h);
        }
    }
    if names.is_empty() {
        return unknown_with(
            observed,
            "kubeconfig",
            format!("a node identity for {cert_node:?}, but this node's name is not known"),
        );
    }
    if names.iter().any(|n| n.eq_ignore_ascii_case(cert_node)) {
        Outcome::pass(
            observed,
            "kubeconfig",
            format!("node identity for {cert_node}: the Node authorizer and NodeRestriction limit it to this node's objects"),
        )
    } else {
        Outcome::fail(
            observed,
            "kubeconfig",
            format!(
                "credential for another node: {cert_node:?} is not this node ({})",
                names.join(" / ")
            ),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::util::testing::*;
    use super::super::Status;
    use crate::snapshot::{Credential, ObsError, ObsErrorKind};

    const ID: &str = "kubelet-credential-node-scoped";

    #[test]
    fn node_identity() {
        let mut s = kubeadm();
        assert_status(&eval(ID, &s), Status::NotApplicable);

        kubelet_mut(&mut s).credential =
            Some(Ok(client_cert("system:node:node-1", &["system:nodes"])));
        let o = eval(ID, &s);
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "kubeconfig");
        assert_eq!(
            o.observed,
            "CN=system:node:node-1 O=system:nodes (/var/lib/kubelet/pki/kubelet-client-current.pem)"
        );

        kubelet_mut(&mut s).credential =
            Some(Ok(client_cert("system:node:node-2", &["system:nodes"])));
        let o = eval(ID, &s);
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("another node"), "{}", o.reason);

        // The hostname override is a name this kubelet registers as.
        let mut h = snapshot_with(&["--hostname-override=node-2"], Some(""));
        kubelet_mut(&mut h).credential =
            Some(Ok(client_cert("system:node:node-2", &["system:nodes"])));
        assert_status(&eval(ID, &h), Status::Pass);
        h.node = String::new();
        kubelet_mut(&mut h).flags = crate::observe::flags::Flags::parse::<&str>(&[]);
        assert_status(&eval(ID, &h), Status::Unknown);
    }

    #[test]
    fn admin_and_foreign_identities_fail() {
        let mut s = kubeadm();
        kubelet_mut(&mut s).credential =
            Some(Ok(client_cert("kubernetes-admin", &["system:masters"])));
        let o = eval(ID, &s);
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("system:masters"));
        // system:masters wins even with a node CN.
        kubelet_mut(&mut s).credential = Some(Ok(client_cert(
            "system:node:node-1",
            &["system:nodes", "system:masters"],
        )));
        assert_status(&eval(ID, &s), Status::Fail);
        // Node CN without the group is not scoped by the Node authorizer.
        kubelet_mut(&mut s).credential = Some(Ok(client_cert("system:node:node-1", &[])));
        let o = eval(ID, &s);
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("not a node identity"));
    }

    #[test]
    fn undecidable_credentials() {
        let mut s = kubeadm();
        kubelet_mut(&mut s).credential = Some(Ok(Credential::Exec {
            command: "aws-iam-authenticator".into(),
        }));
        let o = eval(ID, &s);
        assert_status(&o, Status::Unknown);
        assert!(o.reason.contains("exec plugin aws-iam-authenticator"));
        kubelet_mut(&mut s).credential = Some(Ok(Credential::Token));
        assert_status(&eval(ID, &s), Status::Unknown);
        kubelet_mut(&mut s).credential = Some(Ok(Credential::None));
        assert_status(&eval(ID, &s), Status::Unknown);
        for kind in [
            ObsErrorKind::NotFound,
            ObsErrorKind::Unreadable,
            ObsErrorKind::Invalid,
        ] {
            kubelet_mut(&mut s).credential =
                Some(Err(ObsError::new(kind, "kubelet.conf: bad user")));
            let o = eval(ID, &s);
            assert_status(&o, Status::Unknown);
            assert!(o.reason.contains("bad user"));
        }
    }
}
