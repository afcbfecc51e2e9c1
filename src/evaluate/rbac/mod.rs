//! Practice 6: least-privilege kubelet credentials (RBAC, node side): the kubelet's own
//! identity must be a node identity, scoped by the Node authorizer and NodeRestriction.

use super::cluster_view::{api_data, api_stale, capped};
use super::files::obs_kind_str;
use super::outcome::{kubelet, unknown_with};
use super::{Control, Ctx, Family, Needs, Outcome, Severity, PRACTICE_RBAC};
use crate::model::cert::CertSummary;
use crate::model::observed::ObsErrorKind;
use crate::model::snapshot::Credential;

/// The rbac controls: the kubelet credential's identity, the Node authorizer, and what
/// the node identity may do.
pub static CONTROLS: &[Control] = &[
    Control {
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
},
    Control {
        id: "node-authorizer-enabled",
        title: "kube-apiserver on this node scopes kubelets with the Node authorizer, RBAC and NodeRestriction (cf. CIS master 1.2.7-1.2.9, 1.2.14)",
        family: Family::Rbac,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_RBAC,
        expected: "authorization includes Node and RBAC (never AlwaysAllow); admission plugins include NodeRestriction",
        remediation: "Start kube-apiserver with `--authorization-mode=Node,RBAC` (or an `--authorization-config` whose authorizers include `Node` and `RBAC`) and `--enable-admission-plugins=NodeRestriction,...` (not in `--disable-admission-plugins`); kubeadm does this by default — check the kube-apiserver static pod manifest in /etc/kubernetes/manifests.",
        needs: Needs::Kubelet,
        evaluate: evaluate_node_authorizer,
    },
    Control {
        id: "kubelet-identity-least-privilege",
        title: "The kubelet's identity cannot read secrets cluster-wide, bind roles, impersonate, or act beyond its node rules (SubjectAccessReviews)",
        family: Family::Rbac,
        severity: Severity::Critical,
        cis: None,
        practice: PRACTICE_RBAC,
        expected: "as system:node:<node> (groups system:nodes, system:authenticated): list secrets in all namespaces, get secrets in kube-system, create clusterrolebindings and impersonate users denied; create pods in kube-system and patch another node allowed only by the Node authorizer's node rules (narrowed by NodeRestriction)",
        remediation: "Find the binding the review names (`kubectl get clusterrolebindings,rolebindings -A -o wide | grep -E 'system:node|system:nodes|system:authenticated'`) and remove it: nodes get their access from the Node authorizer, never from RBAC bindings to `system:nodes` or `system:authenticated`; keep `--authorization-mode=Node,RBAC` and the NodeRestriction admission plugin on the API server.",
        needs: Needs::Api,
        evaluate: evaluate_identity,
    },
];

/// What the API server answered for the kubelet's identity: each dangerous action must
/// be denied, except the two the Node authorizer grants every kubelet by design
/// (`cluster::reviews::Expect::NodeRules`), which are findings only when something else
/// (an RBAC binding, a webhook: the review then carries a reason) allowed them.
fn evaluate_identity(ctx: &Ctx) -> Outcome {
    let Some(cluster) = &ctx.snapshot.cluster else {
        return Outcome::unknown("no API access");
    };
    let checks = match api_data(&cluster.identity, "SubjectAccessReviews") {
        Ok(c) => c,
        Err(o) => return o,
    };
    if checks.is_empty() {
        return Outcome::unknown("no SubjectAccessReview was answered");
    }
    let node = &ctx.snapshot.node;
    let mut findings = Vec::new();
    let mut explained = Vec::new();
    let mut by_node_rules = Vec::new();
    for c in checks.iter().filter(|c| c.allowed) {
        match (&c.reason, c.node_rules) {
            (None, true) => by_node_rules.push(c.action.clone()),
            (Some(why), _) => {
                findings.push(c.action.clone());
                explained.push(format!("{} ({why})", c.action));
            }
            (None, false) => {
                findings.push(c.action.clone());
                explained.push(c.action.clone());
            }
        }
    }
    let stale = api_stale(&cluster.identity, "SubjectAccessReview round", "answers");
    let source = "subject-access-review";
    let note = if by_node_rules.is_empty() {
        String::new()
    } else {
        format!(
            "; allowed by the Node authorizer's node rules, as for every kubelet (NodeRestriction confines them to this node's objects; see node-authorizer-enabled): {}",
            by_node_rules.join(", ")
        )
    };
    if findings.is_empty() {
        Outcome::pass(
            if by_node_rules.is_empty() {
                "all denied".to_string()
            } else {
                format!("allowed only by node rules: {}", by_node_rules.join(", "))
            },
            source,
            format!(
                "system:node:{node} was refused {} of {} dangerous actions{note}{stale}",
                checks.len() - by_node_rules.len(),
                checks.len()
            ),
        )
    } else {
        Outcome::fail(
            format!("allowed: {}", capped(&findings)),
            source,
            format!(
                "the API server lets system:node:{node} (a stolen kubelet credential) {}{note}{stale}",
                capped(&explained)
            ),
        )
    }
}

/// Every value of a kube-apiserver string-slice flag (repeats accumulate, items are
/// comma-separated).
fn slice_values(flags: &crate::model::kubelet_config::flags::Flags, name: &str) -> Vec<String> {
    flags
        .occurrences
        .iter()
        .filter(|o| o.name == name)
        .flat_map(|o| o.value.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// On a control-plane node: the API server's authorization chain and admission plugins
/// decide what a kubelet's credential can reach. Without the Node authorizer and
/// NodeRestriction a node identity reads every secret and edits other nodes.
fn evaluate_node_authorizer(ctx: &Ctx) -> Outcome {
    let Some(a) = &ctx.snapshot.apiserver else {
        return Outcome::not_applicable(
            "no kube-apiserver on this node: the authorizers are checked where the API server runs",
        );
    };
    let (modes, source) = match &a.authorization_config {
        Some(Ok(types)) => (types.clone(), "authorization-config"),
        Some(Err(e)) => {
            return Outcome::unknown(format!(
                "--authorization-config could not be read ({}): {}",
                obs_kind_str(e.kind),
                e.message
            ))
        }
        None => {
            let v = slice_values(&a.flags, "authorization-mode");
            if v.is_empty() {
                // kube-apiserver's default --authorization-mode is AlwaysAllow.
                (vec!["AlwaysAllow".to_string()], "default")
            } else {
                (v, "process")
            }
        }
    };
    // `--admission-control` (deprecated) is the same list as --enable-admission-plugins.
    let mut enabled = slice_values(&a.flags, "enable-admission-plugins");
    enabled.extend(slice_values(&a.flags, "admission-control"));
    let disabled = slice_values(&a.flags, "disable-admission-plugins");
    let node_restriction = enabled.iter().any(|p| p == "NodeRestriction")
        && !disabled.iter().any(|p| p == "NodeRestriction");
    let observed = format!(
        "authorization={}; NodeRestriction {}",
        modes.join(","),
        if node_restriction {
            "enabled"
        } else {
            "not enabled"
        }
    );
    let mut problems = Vec::new();
    if modes.iter().any(|m| m == "AlwaysAllow") {
        problems.push("AlwaysAllow authorizes every request that reaches it".to_string());
    }
    for want in ["Node", "RBAC"] {
        if !modes.iter().any(|m| m == want) {
            problems.push(format!("no {want} authorizer"));
        }
    }
    if !node_restriction {
        problems.push(if disabled.iter().any(|p| p == "NodeRestriction") {
            "NodeRestriction is in --disable-admission-plugins".to_string()
        } else {
            "NodeRestriction is not in --enable-admission-plugins (it is not on by default)"
                .to_string()
        });
    }
    let pid = a.pid;
    if problems.is_empty() {
        Outcome::pass(
            observed,
            source,
            format!("kube-apiserver pid {pid} authorizes kubelets with Node and RBAC and limits their writes with NodeRestriction"),
        )
    } else {
        Outcome::fail(
            observed,
            source,
            format!("kube-apiserver pid {pid}: {}", problems.join("; ")),
        )
    }
}

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
mod tests;
