//! Practice 4: harden kubelet defaults and reserve node resources (reservations for the
//! kubelet/runtime and the OS, hard eviction for memory).

use super::outcome::{decide, kubelet, unknown_with};
use super::setting::{because, known, map_of, render};
use super::{Control, Ctx, Family, Needs, Outcome, Severity, PRACTICE_RESOURCES};
use crate::model::quantity::quantity_is_zero;

/// The resources controls: kube and system reservations and hard eviction thresholds.
pub static CONTROLS: &[Control] = &[
    Control {
        id: "kube-reserved-set",
        title: "CPU or memory is reserved for the kubelet and runtime",
        family: Family::Resources,
        severity: Severity::Medium,
        cis: None,
        practice: PRACTICE_RESOURCES,
        expected: "kubeReserved with a non-zero cpu or memory",
        remediation: "Set `kubeReserved: {cpu: 100m, memory: 1Gi}` (sized for the node) in the KubeletConfiguration (or `--kube-reserved=cpu=100m,memory=1Gi`); restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_kube_reserved,
    },
    Control {
        id: "system-reserved-set",
        title: "CPU or memory is reserved for the operating system",
        family: Family::Resources,
        severity: Severity::Medium,
        cis: None,
        practice: PRACTICE_RESOURCES,
        expected: "systemReserved with a non-zero cpu or memory",
        remediation: "Set `systemReserved: {cpu: 100m, memory: 500Mi}` (sized for the node) in the KubeletConfiguration (or `--system-reserved=cpu=100m,memory=500Mi`); restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_system_reserved,
    },
    Control {
        id: "eviction-hard-set",
        title: "Hard eviction protects node memory",
        family: Family::Resources,
        severity: Severity::Medium,
        cis: None,
        practice: PRACTICE_RESOURCES,
        expected: "evictionHard memory.available > 0 (default 100Mi)",
        remediation: "Include `memory.available` with a non-zero threshold (e.g. `100Mi` or `5%`) in `evictionHard` in the KubeletConfiguration (or `--eviction-hard=memory.available<100Mi,...`). A map in the file replaces the default map entirely, so list every signal you want; restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_eviction_hard,
    },
];

fn evaluate_kube_reserved(ctx: &Ctx) -> Outcome {
    reserved(ctx, "kubeReserved", "the kubelet and container runtime")
}

fn evaluate_system_reserved(ctx: &Ctx) -> Outcome {
    reserved(ctx, "systemReserved", "system daemons")
}

/// A reservation map passes when it reserves a non-zero cpu or memory.
fn reserved(ctx: &Ctx, key: &str, for_whom: &str) -> Outcome {
    decide(|| {
        let s = known(ctx, key)?;
        let map = map_of(&s)?;
        let src = s.source.label();
        let observed = if map.is_empty() {
            "{}".to_string()
        } else {
            render(&s.value)
        };
        let mut reserving = Vec::new();
        for r in ["cpu", "memory"] {
            if let Some(q) = map.get(r) {
                match quantity_is_zero(q) {
                    Some(false) => reserving.push(format!("{r}={q}")),
                    Some(true) => {}
                    None => {
                        return Ok(unknown_with(
                            observed,
                            src,
                            because(format!("{key}.{r} {q:?} is not a valid quantity"), &s),
                        ))
                    }
                }
            }
        }
        Ok(if reserving.is_empty() {
            Outcome::fail(
                observed,
                src,
                because(
                    format!("no cpu or memory is reserved for {for_whom}: pods can starve them"),
                    &s,
                ),
            )
        } else {
            Outcome::pass(
                observed,
                src,
                because(
                    format!("{} reserved for {for_whom}", reserving.join(", ")),
                    &s,
                ),
            )
        })
    })
}

fn evaluate_eviction_hard(ctx: &Ctx) -> Outcome {
    decide(|| {
        // The default map counts: `loadConfigFile` (cmd/kubelet/app/server.go) applies
        // eviction.DefaultEvictionHard when the --config file has none; a map in the file or
        // a flag replaces it wholesale. A flags-only kubelet (no --config) has no default
        // map at all, as real kubelets show (tests/kubelet-truth, scenario flags-only).
        let s = known(ctx, "evictionHard")?;
        let map = map_of(&s)?;
        let src = s.source.label();
        let observed = if map.is_empty() {
            "{}".to_string()
        } else {
            render(&s.value)
        };
        let Some(q) = map.get("memory.available") else {
            let why = if kubelet(ctx)?.config.flags_only_base {
                "evictionHard has no memory.available: without a --config file the kubelet has no default eviction thresholds (only loadConfigFile fills them in), so it does not evict on memory pressure (the kernel OOM killer decides)"
            } else {
                "evictionHard has no memory.available: the map replaced the default, so the kubelet does not evict on memory pressure (the kernel OOM killer decides)"
            };
            return Ok(Outcome::fail(observed, src, because(why, &s)));
        };
        Ok(match quantity_is_zero(q) {
            Some(false) => Outcome::pass(
                observed,
                src,
                because(
                    format!("pods are evicted when available memory drops below {q}"),
                    &s,
                ),
            ),
            // kind and minikube ship 0% thresholds (kubernetes-sigs/kind
            // pkg/cluster/internal/kubeadm/config.go, kubernetes/minikube
            // pkg/minikube/bootstrapper/bsutil/ktmpl/v1beta4.go).
            Some(true) => Outcome::fail(
                observed,
                src,
                because(format!("memory.available<{q} disables memory eviction"), &s),
            ),
            None => unknown_with(
                observed,
                src,
                because(
                    format!("memory.available {q:?} is not a valid threshold"),
                    &s,
                ),
            ),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use crate::evaluate::testing::*;

    #[test]
    fn kube_reserved() {
        let id = "kube-reserved-set";
        let o = eval(id, &snapshot_with(&[], Some("")));
        assert_status(&o, Status::Fail);
        assert_eq!((o.observed.as_str(), o.source.as_str()), ("{}", "default"));
        // EKS AL2023 (awslabs/amazon-eks-ami
        // nodeadm/test/e2e/cases/kubelet-config/expected-kubelet-config.json).
        let o = eval(
            id,
            &snapshot_with(
                &[],
                Some("kubeReserved:\n  cpu: 80m\n  ephemeral-storage: 1Gi\n  memory: 893Mi\n"),
            ),
        );
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "config-file");
        assert!(o.observed.contains("memory=893Mi"), "{}", o.observed);
        assert!(o.reason.contains("cpu=80m, memory=893Mi"), "{}", o.reason);
        let o = eval(
            id,
            &snapshot_with(&["--kube-reserved=ephemeral-storage=1Gi"], None),
        );
        assert_status(&o, Status::Fail);
        assert_eq!(o.source, "flag");
        assert_status(
            &eval(
                id,
                &snapshot_with(&["--kube-reserved=cpu=0,memory=0Mi"], None),
            ),
            Status::Fail,
        );
        assert_status(
            &eval(id, &snapshot_with(&["--kube-reserved=memory=lots"], None)),
            Status::Unknown,
        );
    }

    #[test]
    fn system_reserved() {
        let id = "system-reserved-set";
        let o = eval(id, &snapshot_with(&[], None));
        assert_status(&o, Status::Fail);
        assert_eq!(o.source, "default");
        let o = eval(
            id,
            &snapshot_with(&["--system-reserved=memory=500Mi"], None),
        );
        assert_status(&o, Status::Pass);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("memory=500Mi", "flag")
        );
        assert_status(
            &eval(id, &snapshot_with(&[], Some("systemReserved: [\n"))),
            Status::Unknown,
        );
    }

    #[test]
    fn eviction_hard() {
        let id = "eviction-hard-set";
        let o = eval(id, &snapshot_with(&[], Some("")));
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "default");
        assert!(
            o.observed.contains("memory.available=100Mi"),
            "{}",
            o.observed
        );

        // kind (kubernetes-sigs/kind pkg/cluster/internal/kubeadm/config.go): a map without
        // memory.available replaces the default.
        let kind = "evictionHard:\n  imagefs.available: 0%\n  nodefs.available: 0%\n  nodefs.inodesFree: 0%\n";
        let o = eval(id, &snapshot_with(&[], Some(kind)));
        assert_status(&o, Status::Fail);
        assert_eq!(o.source, "config-file");
        assert!(o.reason.contains("no memory.available"), "{}", o.reason);

        // minikube-style 0% memory threshold.
        let o = eval(
            id,
            &snapshot_with(&[], Some("evictionHard:\n  memory.available: 0%\n")),
        );
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("disables memory eviction"));
        assert_status(
            &eval(
                id,
                &snapshot_with(&["--eviction-hard=memory.available<0Mi"], None),
            ),
            Status::Fail,
        );

        // MicroK8s args file.
        let o = eval(
            id,
            &snapshot_with(
                &["--eviction-hard=memory.available<100Mi,nodefs.available<1Gi"],
                None,
            ),
        );
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "flag");
        assert_status(
            &eval(
                id,
                &snapshot_with(&["--eviction-hard=memory.available<5%"], None),
            ),
            Status::Pass,
        );
        assert_status(
            &eval(
                id,
                &snapshot_with(&["--eviction-hard=memory.available<x"], None),
            ),
            Status::Unknown,
        );
        assert_status(
            &eval(
                id,
                &snapshot_with(&["--eviction-hard=memory.available"], None),
            ),
            Status::Unknown,
        );
    }
}
