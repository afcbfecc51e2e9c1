//! What the kubelet's own identity may do, asked of the API server with
//! `SubjectAccessReview`s (authorization.k8s.io/v1): the API server runs its whole
//! authorizer chain (Node, RBAC, webhooks) for the user and groups we name, without any
//! credential of the kubelet's. Asked at start and every [`REVIEW_PERIOD`] (RBAC changes
//! rarely; each round is six small POSTs), sooner after a failure (1 s doubling to 30 s).

use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::Api;

use super::watch::{update, BACKOFF_MAX, BACKOFF_MIN};
use crate::model::snapshot::AccessCheck;

/// How often the reviews are asked again while they succeed.
pub const REVIEW_PERIOD: Duration = Duration::from_secs(300);

/// The groups of a kubelet's node identity (`system:node:<node>`).
pub const NODE_GROUPS: [&str; 2] = ["system:nodes", "system:authenticated"];

/// Whether an allowed action is a finding on its own, or one the Node authorizer grants
/// every kubelet by design and only the NodeRestriction admission plugin narrows (an
/// admission plugin is invisible to a SubjectAccessReview).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Expect {
    /// Must be denied.
    Denied,
    /// The Node authorizer's static node rules allow it for every node (`create pods` for
    /// mirror pods, `update/patch nodes` for registration: plugin/pkg/auth/authorizer/
    /// rbac/bootstrappolicy `NodeRules`), and NodeRestriction confines it to the node's own
    /// objects. Allowed with the Node authorizer's empty reason: expected. Allowed with a
    /// reason (an RBAC binding, a webhook): a grant beyond the node rules.
    NodeRules,
}

/// One dangerous action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// For humans and for the control's observed value.
    pub name: &'static str,
    /// The API verb asked about (`list`, `get`, `create`, `patch`, `impersonate`).
    pub verb: &'static str,
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// The resource, plural (`secrets`, `pods`, `clusterrolebindings`).
    pub resource: &'static str,
    /// Empty: all namespaces (or a cluster-scoped resource).
    pub namespace: &'static str,
    /// Empty: any object; `OTHER_NODE` is replaced by a name that is not this node's.
    pub name_of_object: &'static str,
    /// Whether an allow is a finding by itself, or expected of every kubelet.
    pub expect: Expect,
}

/// Stands for "a node other than this one" in [`Action::name_of_object`].
pub const OTHER_NODE: &str = "<other node>";

/// The actions a stolen kubelet credential must not be able to take (issue 6; CIS 5.1
/// minimises access to secrets, pod creation, impersonation and role bindings).
pub const ACTIONS: &[Action] = &[
    Action {
        name: "list secrets in all namespaces",
        verb: "list",
        group: "",
        resource: "secrets",
        namespace: "",
        name_of_object: "",
        expect: Expect::Denied,
    },
    Action {
        name: "get secrets in kube-system",
        verb: "get",
        group: "",
        resource: "secrets",
        namespace: "kube-system",
        name_of_object: "",
        expect: Expect::Denied,
    },
    Action {
        name: "create pods in kube-system",
        verb: "create",
        group: "",
        resource: "pods",
        namespace: "kube-system",
        name_of_object: "",
        expect: Expect::NodeRules,
    },
    Action {
        name: "patch another node",
        verb: "patch",
        group: "",
        resource: "nodes",
        namespace: "",
        name_of_object: OTHER_NODE,
        expect: Expect::NodeRules,
    },
    Action {
        name: "create clusterrolebindings",
        verb: "create",
        group: "rbac.authorization.k8s.io",
        resource: "clusterrolebindings",
        namespace: "",
        name_of_object: "",
        expect: Expect::Denied,
    },
    Action {
        name: "impersonate users",
        verb: "impersonate",
        group: "",
        resource: "users",
        namespace: "",
        name_of_object: "",
        expect: Expect::Denied,
    },
];

/// A node name that is not `node`.
pub fn other_node(node: &str) -> String {
    let other = "kubelet-sentinel-other-node";
    if node == other {
        format!("{other}-2")
    } else {
        other.to_string()
    }
}

/// The review asked for `action` as the kubelet of `node`.
pub fn review(action: &Action, node: &str) -> SubjectAccessReview {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let name = if action.name_of_object == OTHER_NODE {
        Some(other_node(node))
    } else {
        opt(action.name_of_object)
    };
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:node:{node}")),
            groups: Some(
                NODE_GROUPS
                    .iter()
                    .map(std::string::ToString::to_string)
                    .collect(),
            ),
            resource_attributes: Some(ResourceAttributes {
                verb: opt(action.verb),
                group: Some(action.group.to_string()),
                resource: opt(action.resource),
                namespace: opt(action.namespace),
                name,
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

/// The answer to one review.
pub fn check_of(action: &Action, answer: &SubjectAccessReview) -> AccessCheck {
    let status = answer.status.as_ref();
    AccessCheck {
        action: action.name.to_string(),
        allowed: crate::io::kube::allows(status),
        reason: status
            .and_then(|s| s.reason.clone())
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(200).collect()),
        node_rules: action.expect == Expect::NodeRules,
    }
}

/// The reviews' results, shared like a watched collection.
pub type Shared = super::watch::Shared<AccessCheck>;

/// Ask every review once; the first failure ends the round.
pub async fn round(
    api: &Api<SubjectAccessReview>,
    node: &str,
    timeout: Duration,
) -> Result<Vec<AccessCheck>, String> {
    let mut out = Vec::with_capacity(ACTIONS.len());
    for action in ACTIONS {
        let r = review(action, node);
        let what = format!("SubjectAccessReview ({})", action.name);
        let answer = crate::io::kube::create(api, &r, timeout, &what).await?;
        out.push(check_of(action, &answer));
    }
    Ok(out)
}

/// Run forever (aborted with the agent).
pub async fn run(api: Api<SubjectAccessReview>, node: String, timeout: Duration, shared: Shared) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let start = Instant::now();
        let result = round(&api, &node, timeout).await;
        let failed = result.is_err();
        update(&shared, |s| {
            s.duration = start.elapsed();
            match result {
                Ok(checks) => {
                    s.data = Some(checks);
                    s.health = Ok(());
                }
                Err(e) => {
                    tracing::debug!(error = %e, "kubelet identity reviews failing");
                    s.health = Err(e);
                }
            }
        });
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        } else {
            backoff = BACKOFF_MIN;
            tokio::time::sleep(REVIEW_PERIOD).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_name_the_node_identity_and_the_action() {
        let r = review(&ACTIONS[3], "node-1");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["spec"]["user"], "system:node:node-1");
        assert_eq!(
            v["spec"]["groups"],
            serde_json::json!(["system:nodes", "system:authenticated"])
        );
        assert_eq!(
            v["spec"]["resourceAttributes"],
            serde_json::json!({"verb": "patch", "group": "", "resource": "nodes",
                "name": "kubelet-sentinel-other-node"})
        );
        assert_eq!(
            other_node("kubelet-sentinel-other-node"),
            "kubelet-sentinel-other-node-2"
        );
        let v = serde_json::to_value(review(&ACTIONS[1], "n")).unwrap();
        assert_eq!(
            v["spec"]["resourceAttributes"],
            serde_json::json!({"verb": "get", "group": "", "resource": "secrets",
                "namespace": "kube-system"})
        );
    }

    #[test]
    fn answers_become_checks() {
        let answer: SubjectAccessReview = serde_json::from_str(
            r#"{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {}, "status": {"allowed": true,
                "reason": "RBAC: allowed by ClusterRoleBinding \"oops\" of ClusterRole \"cluster-admin\" to Group \"system:nodes\""}}"#,
        )
        .unwrap();
        let c = check_of(&ACTIONS[0], &answer);
        assert!(c.allowed && !c.node_rules);
        assert!(c.reason.unwrap().contains("oops"));
        let denied: SubjectAccessReview =
            serde_json::from_str(r#"{"spec": {}, "status": {"allowed": false, "reason": ""}}"#)
                .unwrap();
        let c = check_of(&ACTIONS[2], &denied);
        assert!(!c.allowed && c.node_rules && c.reason.is_none());
        // No status at all: not allowed (never a guess that something is safe either:
        // the control only passes on answers).
        let c = check_of(&ACTIONS[0], &SubjectAccessReview::default());
        assert!(!c.allowed);
    }
}
