//! Changes that can break a node, and what must hold on it first. Each is judged from
//! what the node shows (the snapshot, the facts `observe::fix_facts` read); when it does
//! not hold, or cannot be checked, the change is not written and the summary says what
//! to do first.

use serde_json::Value;

use super::Facts;
use crate::evaluate::Ctx;
use crate::model::fix::KERNEL_TUNABLES;
use crate::model::kubelet_config::Lookup;
use crate::model::snapshot::Credential;

/// A precondition of some controls' change, as checked on the node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Precondition {
    /// The controls whose change needs it.
    pub controls: Vec<String>,
    /// It holds (the change is written); false when it does not or cannot be checked.
    pub holds: bool,
    /// What was checked and what was found.
    pub checked: String,
    /// What to do before the change can be made (empty when it holds).
    pub do_first: String,
}

/// The precondition of setting `key` to `value` for `control`, when it has one.
/// `planned` are the controls the fix plans to change too (their changes count:
/// webhook authentication planned makes anonymous auth off safe).
pub fn for_setting(
    control: &str,
    key: &str,
    value: &Value,
    ctx: &Ctx,
    facts: &Facts,
    planned: &[String],
) -> Option<Precondition> {
    let p = |holds: bool, checked: String, do_first: &str| Precondition {
        controls: vec![control.to_string()],
        holds,
        checked,
        do_first: if holds {
            String::new()
        } else {
            do_first.to_string()
        },
    };
    match (key, value) {
        ("authorization.mode", Value::String(m)) if m == "Webhook" => {
            let (holds, checked) = api_credentials(ctx);
            Some(p(holds, checked, API_CREDENTIALS_FIRST))
        }
        ("authentication.webhook.enabled", Value::Bool(true)) => {
            let (holds, checked) = api_credentials(ctx);
            Some(p(holds, checked, API_CREDENTIALS_FIRST))
        }
        ("protectKernelDefaults", Value::Bool(true)) => {
            let (holds, checked) = kernel_tunables(facts);
            Some(p(holds, checked, &kernel_do_first()))
        }
        ("serverTLSBootstrap", Value::Bool(true)) => Some(p(
            false,
            "an approver for kubernetes.io/kubelet-serving CSRs cannot be seen from the node: kube-controller-manager's csrapproving controller approves kubelet client CSRs only (pkg/controller/certificates/approver/sarapprove.go), and until a serving CSR is approved the kubelet serves no certificate (kubectl logs/exec and metrics fail)".to_string(),
            "run an approver for kubelet-serving CSRs (e.g. postfinance/kubelet-csr-approver) or approve them yourself, then set serverTLSBootstrap: true (the fix never writes it)",
        )),
        ("authentication.anonymous.enabled", Value::Bool(false)) => {
            let (holds, checked) = authenticator(ctx, planned);
            Some(p(
                holds,
                checked,
                "configure authentication.x509.clientCAFile (the API server's kubelet client certificate) or webhook authentication first: with anonymous access off and no authenticator, every request to the kubelet (kubectl logs/exec, metrics) gets 401",
            ))
        }
        _ => None,
    }
}

/// The precondition of removing `--hostname-override`: the node keeps its name, i.e. the
/// override is the host's own name (the kubelet lower-cases both).
pub fn for_flag_removal(
    control: &str,
    flag: &str,
    ctx: &Ctx,
    facts: &Facts,
) -> Option<Precondition> {
    if flag != "hostname-override" {
        return None;
    }
    let value = ctx
        .kubelet()
        .and_then(|k| k.flags.last("hostname-override"))
        .unwrap_or("")
        .trim()
        .to_lowercase();
    let k3s = ctx.kubelet().is_some_and(|k| k.k3s.is_some());
    let (holds, checked) = if k3s {
        (
            false,
            "k3s/RKE2 set --hostname-override themselves (the node name they registered)"
                .to_string(),
        )
    } else {
        match &facts.hostname {
            Some(Ok(h)) if h.trim().to_lowercase() == value => (
                true,
                format!("--hostname-override={value} is the host name: the node keeps its name"),
            ),
            Some(Ok(h)) => (
                false,
                format!(
                    "--hostname-override={value} differs from the host name {}: without it the kubelet registers a new node",
                    h.trim()
                ),
            ),
            Some(Err(e)) => (false, format!("the host name cannot be read: {e}")),
            None => (false, "the host name was not read".to_string()),
        }
    };
    Some(Precondition {
        controls: vec![control.to_string()],
        holds,
        checked,
        do_first: if holds {
            String::new()
        } else {
            "keep --hostname-override where the node's name must differ from the host name (cloud providers, k3s/RKE2), or rename the host to the node's name first".to_string()
        },
    })
}

const API_CREDENTIALS_FIRST: &str = "give the kubelet API credentials first (a --kubeconfig with a client certificate or token, e.g. by kubeadm join or TLS bootstrapping): with Webhook the kubelet asks the API server (SubjectAccessReview/TokenReview) and refuses to start without a client (cmd/kubelet/app/auth.go BuildAuthz: \"no client provided, cannot use webhook authorization\")";

fn api_credentials(ctx: &Ctx) -> (bool, String) {
    let Some(k) = ctx.kubelet() else {
        return (false, "no kubelet".to_string());
    };
    let Some(path) = k.flags.last("kubeconfig").filter(|p| !p.trim().is_empty()) else {
        return (
            false,
            "the kubelet has no --kubeconfig (standalone): it has no API client".to_string(),
        );
    };
    match &k.credential {
        Some(Ok(Credential::None)) => (
            false,
            format!("--kubeconfig {path} holds no credential for its current user"),
        ),
        Some(Ok(c)) => {
            let what = match c {
                Credential::ClientCertificate { .. } => "a client certificate",
                Credential::Token => "a bearer token",
                Credential::Exec { .. } => "an exec credential plugin",
                Credential::AuthProvider { .. } => "an auth-provider plugin",
                Credential::None => "no credential",
            };
            (true, format!("--kubeconfig {path} holds {what}"))
        }
        Some(Err(e)) => (
            false,
            format!("--kubeconfig {path} cannot be used: {}", e.message),
        ),
        None => (false, format!("--kubeconfig {path} was not read")),
    }
}

fn authenticator(ctx: &Ctx, planned: &[String]) -> (bool, String) {
    let client_ca = match ctx.setting("authentication.x509.clientCAFile") {
        Lookup::Known(s) => s.value.as_str().is_some_and(|p| !p.trim().is_empty()),
        Lookup::Unknown { .. } => false,
    };
    if client_ca {
        return (
            true,
            "authentication.x509.clientCAFile is set: client certificates authenticate".to_string(),
        );
    }
    let webhook = matches!(
        ctx.setting("authentication.webhook.enabled"),
        Lookup::Known(s) if s.value == Value::Bool(true)
    );
    if webhook {
        return (
            true,
            "webhook authentication is on: bearer tokens authenticate".to_string(),
        );
    }
    // Planned too, and its own precondition (API credentials) holds.
    if planned
        .iter()
        .any(|c| c == "authentication-webhook-enabled")
        && api_credentials(ctx).0
    {
        return (
            true,
            "webhook authentication is turned on by the same fix".to_string(),
        );
    }
    (
        false,
        "neither authentication.x509.clientCAFile nor webhook authentication is configured"
            .to_string(),
    )
}

fn kernel_tunables(facts: &Facts) -> (bool, String) {
    let mut wrong = Vec::new();
    let mut unread = Vec::new();
    for (path, want) in KERNEL_TUNABLES {
        match facts
            .sysctls
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v)
        {
            Some(Ok(v)) => {
                if v.trim().parse::<i64>().ok() != Some(*want) {
                    wrong.push(format!("{} is {} (needs {want})", dotted(path), v.trim()));
                }
            }
            Some(Err(e)) => unread.push(format!("{}: {e}", dotted(path))),
            None => unread.push(format!("{}: not read", dotted(path))),
        }
    }
    if wrong.is_empty() && unread.is_empty() {
        return (
            true,
            "the six kernel settings the kubelet checks (setupKernelTunables) hold in /proc/sys"
                .to_string(),
        );
    }
    let mut parts = Vec::new();
    if !wrong.is_empty() {
        parts.push(wrong.join(", "));
    }
    if !unread.is_empty() {
        parts.push(format!("cannot be checked: {}", unread.join("; ")));
    }
    (
        false,
        format!(
            "with protectKernelDefaults the kubelet refuses to start when a kernel setting differs (pkg/kubelet/cm/container_manager_linux.go setupKernelTunables): {}",
            parts.join("; ")
        ),
    )
}

fn kernel_do_first() -> String {
    let lines: Vec<String> = KERNEL_TUNABLES
        .iter()
        .map(|(p, v)| format!("{} = {v}", dotted(p)))
        .collect();
    format!(
        "set the kernel settings and keep them across reboots (e.g. /etc/sysctl.d/90-kubelet.conf with {}; then `sysctl --system`), then set protectKernelDefaults: true",
        lines.join(", ")
    )
}

/// `vm/overcommit_memory` → `vm.overcommit_memory`.
fn dotted(path: &str) -> String {
    path.replace('/', ".")
}
