//! Practice 4: harden kubelet defaults.

use super::by_version::{self, minor, Era, Minors};
use super::outcome::{decide, kubelet, unknown_with};
use super::setting::{because, bool_of, int_of, known, render, str_of};
use super::{Control, Ctx, Family, Needs, Outcome, Severity, PRACTICE_HARDENING};
use crate::model::kubelet_config::settings::parse_go_duration;
use crate::model::version::Minor;

/// The hardening controls: kubelet settings whose defaults are worth tightening.
pub static CONTROLS: &[Control] = &[
    Control {
        id: "streaming-idle-timeout-set",
        title: "Idle streaming connections time out",
        family: Family::Hardening,
        severity: Severity::Low,
        cis: Some("4.2.5"),
        practice: PRACTICE_HARDENING,
        expected: "> 0 (e.g. 4h0m0s) on kubelets up to 1.23 running dockershim; not applicable from 1.24, where the setting has no effect",
        remediation: "Kubelets 1.24 and newer ignore this setting (the control is not applicable there): idle exec/attach/port-forward streams are closed by the container runtime's streaming server, so set its idle timeout instead (e.g. containerd's `stream_idle_timeout`). On kubelets up to 1.23 running dockershim (`--container-runtime=docker`, the default then), set `streamingConnectionIdleTimeout: 4h0m0s` (or shorter) in the KubeletConfiguration and remove `--streaming-connection-idle-timeout=0` from the command line and any `0s` from drop-ins (a `0s` in the --config file already means the 4h default); restart the kubelet. When the control is unknown, make the kubelet's version known (see `kubelet-version-supported`).",
        needs: Needs::Kubelet,
        evaluate: evaluate_streaming_timeout,
    },
    Control {
        id: "iptables-util-chains",
        title: "Kubelet manages its iptables utility chains",
        family: Family::Hardening,
        severity: Severity::Low,
        cis: Some("4.2.6"),
        practice: PRACTICE_HARDENING,
        expected: "true",
        remediation: "Set `makeIPTablesUtilChains: true` in the KubeletConfiguration (or remove `--make-iptables-util-chains=false`); restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_iptables,
    },
    Control {
        id: "hostname-override-unset",
        title: "Node name is not overridden (--hostname-override)",
        family: Family::Hardening,
        severity: Severity::Low,
        cis: Some("4.2.7"),
        practice: PRACTICE_HARDENING,
        expected: "not set",
        remediation: "Remove `--hostname-override` from the kubelet command line (systemd unit, drop-ins, kubeadm-flags.env, /etc/default/kubelet) so the node name matches the host name and its TLS certificates; restart the kubelet. Some distributions (EKS, k3s, RKE2) set it on purpose: disable this control in the policy there.",
        needs: Needs::Kubelet,
        evaluate: evaluate_hostname_override,
    },
    Control {
        id: "event-qps-limited",
        title: "Event creation rate is limited",
        family: Family::Hardening,
        severity: Severity::Low,
        cis: Some("4.2.8"),
        practice: PRACTICE_HARDENING,
        expected: "effective event QPS ≥ 1 (0 means 5/s up to 1.36 and no limit from 1.37)",
        remediation: "Set `eventRecordQPS` in the KubeletConfiguration (or `--event-qps`) to a positive value within the policy bounds (the default 50 is fine). Do not use 0: it means client-go's default of 5/s on kubelets up to 1.36 and no rate limit at all from 1.37. Restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_event_qps,
    },
    Control {
        id: "pod-pids-limit-set",
        title: "Per-pod process (PID) limit is set",
        family: Family::Hardening,
        severity: Severity::Medium,
        cis: Some("4.2.13"),
        practice: PRACTICE_HARDENING,
        expected: "> 0",
        remediation: "Set `podPidsLimit` in the KubeletConfiguration (or `--pod-max-pids`) to a positive number sized for your workloads (e.g. 4096); restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_pod_pids,
    },
    Control {
        id: "seccomp-default-enabled",
        title: "RuntimeDefault seccomp profile is the default for pods",
        family: Family::Hardening,
        severity: Severity::Medium,
        cis: Some("4.2.14"),
        practice: PRACTICE_HARDENING,
        expected: "true",
        remediation: "Set `seccompDefault: true` in the KubeletConfiguration (or `--seccomp-default`); restart the kubelet. Test workloads first: syscalls outside the runtime's default profile are refused.",
        needs: Needs::Kubelet,
        evaluate: evaluate_seccomp_default,
    },
    Control {
        id: "protect-kernel-defaults",
        title: "Kubelet refuses to run with non-default kernel tunables",
        family: Family::Hardening,
        severity: Severity::Medium,
        cis: None,
        practice: PRACTICE_HARDENING,
        expected: "true",
        remediation: "Set the kernel parameters the kubelet expects (vm.overcommit_memory=1, vm.panic_on_oom=0, kernel.panic=10, kernel.panic_on_oops=1, kernel.keys.root_maxkeys/maxbytes) in /etc/sysctl.d, then set `protectKernelDefaults: true` in the KubeletConfiguration (or `--protect-kernel-defaults`); restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_protect_kernel,
    },
];

/// A boolean control: true passes, false fails, each with its reason.
fn bool_control(ctx: &Ctx, key: &str, pass_why: &str, fail_why: &str) -> Outcome {
    decide(|| {
        let s = known(ctx, key)?;
        let src = s.source.label();
        Ok(if bool_of(&s)? {
            Outcome::pass("true", src, because(pass_why, &s))
        } else {
            Outcome::fail("false", src, because(fail_why, &s))
        })
    })
}

/// The first kubelet minor without dockershim, the only reader of
/// `streamingConnectionIdleTimeout`.
const STREAMING_TIMEOUT_UNUSED: Minor = minor(1, 24);

fn evaluate_streaming_timeout(ctx: &Ctx) -> Outcome {
    // Who reads streamingConnectionIdleTimeout:
    // - up to 1.23 (checked in v1.19.16 .. v1.23.17): only pkg/kubelet/kubelet.go
    //   `getStreamingConfig` ("the streaming server configuration to use with in-process CRI
    //   shims": `StreamIdleTimeout: kubeCfg.StreamingConnectionIdleTimeout.Duration`), called
    //   from pkg/kubelet/kubelet_dockershim.go `runDockershim`, which `PreInitRuntimeService`
    //   runs for `--container-runtime=docker` (the default; `remote` is a no-op there). With
    //   `--container-runtime=remote` the runtime's own streaming server serves exec, attach
    //   and port-forward, and the setting does nothing.
    // - from 1.24 (checked in v1.24.17 .. v1.37.2): dockershim is gone (kubernetes#97252); the
    //   value is copied into the Kubelet's `streamingConnectionIdleTimeout` field, which
    //   nothing reads (1.24 .. 1.33), and from 1.34 not even copied; k8s.io/kubelet
    //   config/v1beta1 types.go says "Deprecated: no longer has any effect" since 1.34
    //   (kubernetes#131992). pkg/kubelet/server/server.go only proxies or redirects the
    //   streams to the runtime's streaming server.
    let setting = known(ctx, "streamingConnectionIdleTimeout");
    let (observed, src) = match &setting {
        Ok(s) => (render(&s.value), s.source.label()),
        Err(_) => (String::new(), String::new()),
    };
    let judged = decide(|| {
        let s = setting.clone()?;
        let raw = str_of(&s)?.to_string();
        let src = s.source.label();
        // A `0s` in the --config file has already become the 4h default (the config
        // layer applies the v1beta1 defaulting); a 0 from a flag or a drop-in stays 0.
        let Some(secs) = parse_go_duration(&raw) else {
            return Ok(unknown_with(
                raw.clone(),
                src,
                format!("{raw:?} is not a duration"),
            ));
        };
        Ok(if secs > 0.0 {
            Outcome::pass(
                raw.clone(),
                src,
                format!("dockershim (--container-runtime=docker, the default up to 1.23) closes idle exec/attach/port-forward streams after {raw}"),
            )
        } else if secs == 0.0 {
            Outcome::fail(
                raw.clone(),
                src,
                "0 disables the idle timeout of dockershim (--container-runtime=docker, the default up to 1.23): streaming connections stay open forever",
            )
        } else {
            unknown_with(
                raw.clone(),
                src,
                "a negative idle timeout is not a meaningful value",
            )
        })
    });
    let runtime = kubelet(ctx)
        .ok()
        .and_then(|k| k.flags.last("container-runtime"));
    let dockershim_era = if runtime == Some("remote") {
        Outcome::not_applicable(
            "--container-runtime=remote: the container runtime serves exec/attach/port-forward streams; the setting only configures dockershim's streaming server",
        )
    } else {
        judged
    };
    let unused = Outcome::not_applicable(
        "no effect: dockershim, its only reader, was removed in 1.24 (kubernetes#97252); the container runtime serves exec/attach/port-forward streams (deprecated in KubeletConfiguration v1beta1 since 1.34, kubernetes#131992)",
    );
    let with_setting = |mut o: Outcome| {
        if o.observed.is_empty() {
            o.observed = observed.clone();
            o.source = src.clone();
        }
        o
    };
    let mut out = by_version::judge(
        ctx,
        vec![
            Era::new(Minors::up_to(minor(1, 23)), with_setting(dockershim_era)),
            Era::new(Minors::from(STREAMING_TIMEOUT_UNUSED), with_setting(unused)),
        ],
        &observed,
        &src,
    );
    if let Ok(s) = &setting {
        out.reason = because(&out.reason, s);
    }
    out
}

fn evaluate_iptables(ctx: &Ctx) -> Outcome {
    bool_control(
        ctx,
        "makeIPTablesUtilChains",
        "the kubelet keeps its iptables utility chains in place",
        "the kubelet does not manage its iptables utility chains",
    )
}

fn evaluate_hostname_override(ctx: &Ctx) -> Outcome {
    decide(|| {
        let k = kubelet(ctx)?;
        // A flag only (KubeletFlags, not in the config file): kube-bench checks it the same way.
        Ok(match k.flags.last("hostname-override") {
            None => Outcome::pass(
                "not set",
                "process",
                "--hostname-override is not on the command line",
            ),
            Some(v) if v.trim().is_empty() => Outcome::pass(
                "\"\"",
                "process",
                "--hostname-override is empty, which the kubelet ignores (the host name is used)",
            ),
            Some(v) => Outcome::fail(
                v.to_string(),
                "process",
                format!("--hostname-override={v} on the command line: the node name no longer follows the host name, which can break TLS identity checks"),
            ),
        })
    })
}

/// client-go's `rest.DefaultQPS`.
const CLIENT_GO_DEFAULT_QPS: i64 = 5;

/// The first kubelet minor that turns `eventRecordQPS: 0` into "no limit".
const EVENT_QPS_ZERO_UNLIMITED: Minor = minor(1, 37);

fn evaluate_event_qps(ctx: &Ctx) -> Outcome {
    let min = ctx.policy.expected.event_qps_min;
    let max = ctx.policy.expected.event_qps_max;
    let expected = match max {
        Some(max) => format!("effective event QPS {min}..={max}"),
        None => format!("effective event QPS ≥ {min}"),
    };
    // kube-bench tests `gte 0`, which every valid value passes. What the kubelet does
    // (cmd/kubelet/app/server.go, `run`, where the event client is made):
    // `eventClientConfig.QPS = float32(s.EventRecordQPS)`, then
    // `v1core.NewForConfig`, whose client-go `rest.RESTClientFor` (from v0.23 through
    // `RESTClientForConfigAndClient`) turns a QPS of 0 into `rest.DefaultQPS` (5) and builds
    // no rate limiter for a negative QPS (checked in client-go v0.19.16, v0.23.17, v0.29.6,
    // v0.36.3, v0.37.2).
    // - 1.19 .. 1.36 (checked in v1.19.16 .. v1.36.3): nothing else; 0 is a 5/s limit.
    // - from 1.37 (v1.37.0, v1.37.2): kubernetes#117119 adds `if int(eventClientConfig.QPS)
    //   == 0 { eventClientConfig.QPS = float32(-1) }` ("If the value of EventRecordQPS is 0,
    //   there is no limit enforced"): no rate limiter at all.
    // - a negative value is refused by pkg/kubelet/apis/config/validation
    //   `ValidateKubeletConfiguration` ("eventRecordQPS (--event-qps) ... must not be a
    //   negative number") in every version.
    // /configz shows 0 in both cases: only the version tells them apart.
    decide(|| {
        let s = known(ctx, "eventRecordQPS")?;
        let qps = int_of(&s)?;
        let src = s.source.label();
        if qps < 0 {
            return Ok(Outcome::fail(
                qps.to_string(),
                src,
                because(
                    "negative: the kubelet's validation refuses it, so the kubelet does not start",
                    &s,
                ),
            ));
        }
        let within = |effective: i64, observed: String, note: &str| -> Outcome {
            if effective < min {
                Outcome::fail(
                    observed,
                    src.clone(),
                    format!("effective {effective} events/s is below the policy minimum {min}: events may be dropped{note}"),
                )
            } else if let Some(max) = max.filter(|m| effective > *m) {
                Outcome::fail(
                    observed,
                    src.clone(),
                    format!("effective {effective} events/s is above the policy maximum {max}{note}"),
                )
            } else {
                Outcome::pass(
                    observed,
                    src.clone(),
                    format!("events are rate-limited at {effective}/s{note}"),
                )
            }
        };
        let mut out = if qps > 0 {
            within(qps, qps.to_string(), "")
        } else {
            let five = within(
                CLIENT_GO_DEFAULT_QPS,
                format!("0 (effective {CLIENT_GO_DEFAULT_QPS}/s)"),
                " (0 means client-go's default of 5/s)",
            );
            let unlimited = Outcome::fail(
                "0 (no limit)",
                src.clone(),
                "0 means no limit: the kubelet gives its event client QPS -1 and client-go builds no rate limiter",
            );
            by_version::judge(
                ctx,
                vec![
                    Era::new(Minors::up_to(minor(1, 36)), five),
                    Era::new(Minors::from(EVENT_QPS_ZERO_UNLIMITED), unlimited),
                ],
                "0",
                &src,
            )
        };
        out.reason = because(&out.reason, &s);
        Ok(out)
    })
    .with_expected(expected)
}

fn evaluate_pod_pids(ctx: &Ctx) -> Outcome {
    let max = ctx.policy.expected.pod_pids_limit_max;
    let out = decide(|| {
        let s = known(ctx, "podPidsLimit")?;
        let limit = int_of(&s)?;
        let src = s.source.label();
        // kube-bench only checks that the key is present (aquasecurity/kube-bench cfg/cis-1.12/node.yaml 4.2.13), so -1 passes there.
        Ok(if limit <= 0 {
            Outcome::fail(
                limit.to_string(),
                src,
                because(
                    "unlimited: one pod can exhaust the node's PIDs (fork bomb)",
                    &s,
                ),
            )
        } else if let Some(max) = max.filter(|m| limit > *m) {
            Outcome::fail(
                limit.to_string(),
                src,
                because(format!("{limit} is above the policy maximum {max}"), &s),
            )
        } else {
            Outcome::pass(
                limit.to_string(),
                src,
                because(format!("each pod may run at most {limit} processes"), &s),
            )
        })
    });
    match max {
        Some(max) => out.with_expected(format!("1..={max}")),
        None => out,
    }
}

fn evaluate_seccomp_default(ctx: &Ctx) -> Outcome {
    // kube-bench's 4.2.14 checks presence only, so `seccompDefault: false` passes there
    // (aquasecurity/kube-bench cfg/cis-1.12/node.yaml 4.2.14). The config layer applies the kubelet's flag-OR-config rule.
    bool_control(
        ctx,
        "seccompDefault",
        "pods without a seccomp profile get the runtime's default profile",
        "pods without a seccomp profile run Unconfined",
    )
}

fn evaluate_protect_kernel(ctx: &Ctx) -> Outcome {
    bool_control(
        ctx,
        "protectKernelDefaults",
        "the kubelet fails if kernel tunables differ from its defaults instead of changing them",
        "the kubelet silently modifies kernel tunables to suit itself",
    )
}

#[cfg(test)]
mod tests;
