use super::super::Status;
use crate::evaluate::testing::*;
use crate::model::observed::{ObsError, ObsErrorKind};
use crate::model::snapshot::Credential;

const ID: &str = "kubelet-credential-node-scoped";

#[test]
fn node_identity() {
    let mut s = kubeadm();
    assert_status(&eval(ID, &s), Status::NotApplicable);

    kubelet_mut(&mut s).credential = Some(Ok(client_cert("system:node:node-1", &["system:nodes"])));
    let o = eval(ID, &s);
    assert_status(&o, Status::Pass);
    assert_eq!(o.source, "kubeconfig");
    assert_eq!(
        o.observed,
        "CN=system:node:node-1 O=system:nodes (/var/lib/kubelet/pki/kubelet-client-current.pem)"
    );

    kubelet_mut(&mut s).credential = Some(Ok(client_cert("system:node:node-2", &["system:nodes"])));
    let o = eval(ID, &s);
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("another node"), "{}", o.reason);

    // The hostname override is a name this kubelet registers as.
    let mut h = snapshot_with(&["--hostname-override=node-2"], Some(""));
    kubelet_mut(&mut h).credential = Some(Ok(client_cert("system:node:node-2", &["system:nodes"])));
    assert_status(&eval(ID, &h), Status::Pass);
    h.node = String::new();
    kubelet_mut(&mut h).flags = crate::model::kubelet_config::flags::Flags::parse::<&str>(&[]);
    assert_status(&eval(ID, &h), Status::Unknown);
}

#[test]
fn admin_and_foreign_identities_fail() {
    let mut s = kubeadm();
    kubelet_mut(&mut s).credential = Some(Ok(client_cert("kubernetes-admin", &["system:masters"])));
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
        kubelet_mut(&mut s).credential = Some(Err(ObsError::new(kind, "kubelet.conf: bad user")));
        let o = eval(ID, &s);
        assert_status(&o, Status::Unknown);
        assert!(o.reason.contains("bad user"));
    }
}

#[test]
fn node_authorizer() {
    const ID: &str = "node-authorizer-enabled";
    let mut s = kubeadm();
    let o = eval(ID, &s);
    assert_status(&o, Status::NotApplicable);
    assert!(o.reason.contains("no kube-apiserver"), "{}", o.reason);

    s.apiserver = Some(apiserver(&[
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
    ]));
    let o = eval(ID, &s);
    assert_status(&o, Status::Pass);
    assert_eq!(
        o.observed,
        "authorization=Node,RBAC; NodeRestriction enabled"
    );
    assert_eq!(o.source, "process");

    // Repeated slice flags accumulate, like pflag's StringSlice.
    s.apiserver = Some(apiserver(&[
        "--authorization-mode",
        "Node",
        "--authorization-mode=RBAC",
        "--enable-admission-plugins=PodSecurity,NodeRestriction",
    ]));
    assert_status(&eval(ID, &s), Status::Pass);

    // The default authorization mode is AlwaysAllow.
    s.apiserver = Some(apiserver(&["--enable-admission-plugins=NodeRestriction"]));
    let o = eval(ID, &s);
    assert_status(&o, Status::Fail);
    assert_eq!(o.source, "default");
    assert!(
        o.reason.contains("AlwaysAllow") && o.reason.contains("no Node"),
        "{}",
        o.reason
    );

    s.apiserver = Some(apiserver(&[
        "--authorization-mode=RBAC,Node,AlwaysAllow",
        "--enable-admission-plugins=NodeRestriction",
    ]));
    assert_status(&eval(ID, &s), Status::Fail);

    s.apiserver = Some(apiserver(&["--authorization-mode=Node,RBAC"]));
    let o = eval(ID, &s);
    assert_status(&o, Status::Fail);
    assert!(o.reason.contains("not on by default"), "{}", o.reason);

    s.apiserver = Some(apiserver(&[
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--disable-admission-plugins=NodeRestriction",
    ]));
    let o = eval(ID, &s);
    assert_status(&o, Status::Fail);
    assert!(
        o.reason.contains("--disable-admission-plugins"),
        "{}",
        o.reason
    );

    // Structured authorization: the file decides; unreadable is unknown.
    let mut a = apiserver(&[
        "--authorization-config=/etc/kubernetes/authz.yaml",
        "--enable-admission-plugins=NodeRestriction",
    ]);
    a.authorization_config = Some(Ok(vec!["Node".into(), "RBAC".into(), "Webhook".into()]));
    s.apiserver = Some(a.clone());
    let o = eval(ID, &s);
    assert_status(&o, Status::Pass);
    assert_eq!(o.source, "authorization-config");
    a.authorization_config = Some(Err(crate::model::observed::ObsError::new(
        crate::model::observed::ObsErrorKind::NotFound,
        "/etc/kubernetes/authz.yaml: not found",
    )));
    s.apiserver = Some(a);
    assert_status(&eval(ID, &s), Status::Unknown);
}

mod identity {
    use super::super::super::Status;
    use crate::evaluate::testing::*;
    use crate::model::snapshot::{AccessCheck, ApiSource, ClusterView};

    const ID: &str = "kubelet-identity-least-privilege";

    fn check(action: &str, allowed: bool, reason: Option<&str>, node_rules: bool) -> AccessCheck {
        AccessCheck {
            action: action.into(),
            allowed,
            reason: reason.map(str::to_string),
            node_rules,
        }
    }

    /// The six reviews of a hardened cluster: denied, but the two node rules.
    fn hardened() -> Vec<AccessCheck> {
        vec![
            check("list secrets in all namespaces", false, None, false),
            check("get secrets in kube-system", false, None, false),
            check("create pods in kube-system", true, None, true),
            check("patch another node", true, None, true),
            check("create clusterrolebindings", false, None, false),
            check("impersonate users", false, None, false),
        ]
    }

    fn with(identity: ApiSource<Vec<AccessCheck>>) -> crate::model::snapshot::Snapshot {
        let mut s = kubeadm();
        s.cluster = Some(ClusterView {
            access: Ok("in-cluster service account".into()),
            identity,
            ..ClusterView::no_access("")
        });
        s
    }

    fn synced(c: Vec<AccessCheck>) -> ApiSource<Vec<AccessCheck>> {
        ApiSource {
            data: Some(c),
            health: Ok(()),
            duration: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn a_hardened_cluster_passes_with_the_node_rules_named() {
        let o = eval(ID, &with(synced(hardened())));
        assert_status(&o, Status::Pass);
        assert_eq!(
            o.observed,
            "allowed only by node rules: create pods in kube-system, patch another node"
        );
        assert!(o.reason.contains("refused 4 of 6"), "{}", o.reason);
        assert!(o.reason.contains("NodeRestriction"), "{}", o.reason);
        let mut all_denied = hardened();
        for c in &mut all_denied {
            c.allowed = false;
        }
        let o = eval(ID, &with(synced(all_denied)));
        assert_status(&o, Status::Pass);
        assert_eq!(o.observed, "all denied");
    }

    #[test]
    fn an_rbac_grant_fails_and_names_the_action_and_binding() {
        let mut c = hardened();
        c[0] = check(
                "list secrets in all namespaces",
                true,
                Some("RBAC: allowed by ClusterRoleBinding \"nodes-read\" of ClusterRole \"view-secrets\" to Group \"system:nodes\""),
                false,
            );
        let o = eval(ID, &with(synced(c.clone())));
        assert_status(&o, Status::Fail);
        assert_eq!(o.observed, "allowed: list secrets in all namespaces");
        assert!(o.reason.contains("nodes-read"), "{}", o.reason);
        // A node-rules action allowed with a reason is a grant beyond the node rules.
        c[3] = check(
            "patch another node",
            true,
            Some("RBAC: allowed by ClusterRoleBinding \"x\""),
            true,
        );
        let o = eval(ID, &with(synced(c)));
        assert_status(&o, Status::Fail);
        assert_eq!(
            o.observed,
            "allowed: list secrets in all namespaces, patch another node"
        );
        // An allow without a reason (AlwaysAllow) on a must-deny action fails too.
        let mut c = hardened();
        c[5] = check("impersonate users", true, None, false);
        assert_status(&eval(ID, &with(synced(c))), Status::Fail);
    }

    #[test]
    fn unanswered_reviews_are_unknown_and_stale_ones_say_so() {
        let o = eval(ID, &with(ApiSource::default()));
        assert_status(&o, Status::Unknown);
        assert_eq!(o.reason, "waiting for the first SubjectAccessReviews");
        let failing = ApiSource {
            data: None,
            health: Err(
                "SubjectAccessReview (list secrets in all namespaces): 403 Forbidden".into(),
            ),
            duration: std::time::Duration::ZERO,
        };
        let o = eval(ID, &with(failing));
        assert_status(&o, Status::Unknown);
        assert!(o.reason.contains("403 Forbidden"), "{}", o.reason);
        let stale = ApiSource {
            data: Some(hardened()),
            health: Err("SubjectAccessReview (impersonate users): 500 InternalError".into()),
            duration: std::time::Duration::ZERO,
        };
        let o = eval(ID, &with(stale));
        assert_status(&o, Status::Pass);
        assert!(o.reason.contains("500 InternalError"), "{}", o.reason);
        let o = eval(ID, &kubeadm());
        assert_status(&o, Status::Unknown);
        assert!(o.reason.starts_with("no API access"), "{}", o.reason);
    }
}
