//! Practice 1: restrict network access to the kubelet API (read-only port, serving
//! address, healthz address).

use std::net::IpAddr;

use super::live_verdict::{live, with_live, LiveVerdict};
use super::outcome::{decide, unknown_with};
use super::setting::{because, int_of, known, str_of};
use super::{Control, Ctx, Family, Needs, Outcome, Severity, PRACTICE_NETWORK};
use crate::model::net::{cidr_contains, parse_cidr, parse_ip};

/// The api_access controls: who can reach the kubelet's API (read-only port, bind
/// addresses).
pub static CONTROLS: &[Control] = &[
    Control {
        id: "read-only-port-disabled",
        title: "Unauthenticated read-only port is disabled",
        family: Family::ApiAccess,
        severity: Severity::Critical,
        cis: Some("4.2.4"),
        practice: PRACTICE_NETWORK,
        expected: "0",
        remediation: "Set `readOnlyPort: 0` in the KubeletConfiguration (and remove `--read-only-port` from the command line, which overrides the file); restart the kubelet. Without `--config` (flags only, or `--config-dir` alone as on k3s/RKE2) the default is 10255, so pass `--read-only-port=0`.",
        needs: Needs::Kubelet,
        evaluate: evaluate_read_only_port,
    },
    Control {
        id: "api-bind-address-restricted",
        title: "Kubelet API is bound to a specific address",
        family: Family::ApiAccess,
        severity: Severity::Medium,
        cis: None,
        practice: PRACTICE_NETWORK,
        expected: "a specific IP address (not 0.0.0.0 or ::)",
        remediation: "Set `address: <node IP>` in the KubeletConfiguration (or `--address=<node IP>`; the flag overrides the file) so ports 10250/10255 listen only on the node network; restart the kubelet. Restrict who can reach that address with a host or cloud firewall.",
        needs: Needs::Kubelet,
        evaluate: evaluate_bind_address,
    },
    Control {
        id: "healthz-bind-localhost",
        title: "Healthz endpoint listens on loopback only",
        family: Family::ApiAccess,
        severity: Severity::Medium,
        cis: None,
        practice: PRACTICE_NETWORK,
        expected: "127.0.0.1 (or healthzPort: 0)",
        remediation: "Set `healthzBindAddress: 127.0.0.1` in the KubeletConfiguration (or `--healthz-bind-address=127.0.0.1`), or disable it with `healthzPort: 0`; restart the kubelet.",
        needs: Needs::Kubelet,
        evaluate: evaluate_healthz,
    },
];

/// Live evidence from the read-only port: any HTTP answer fails, whatever the config says.
fn read_only_live(ctx: &Ctx) -> Option<LiveVerdict> {
    let l = live(ctx)?;
    let target = l
        .read_only_target
        .as_deref()
        .unwrap_or("the read-only port");
    Some(match l.read_only.as_ref()? {
        Ok(a) if a.healthz.is_none() && a.pods.is_none() => {
            LiveVerdict::Secure(format!("has nothing listening on {target}"))
        }
        Ok(_) if answered_by_someone_else(l) => LiveVerdict::Neutral(format!(
            "{target} answers, but the kubelet's fd table has no listener on that port: another process owns it"
        )),
        Ok(a) => {
            let part = |path: &str, c: Option<u16>| c.map(|c| format!("GET {path} {c}"));
            let said: Vec<String> = [part("/healthz", a.healthz), part("/pods", a.pods)]
                .into_iter()
                .flatten()
                .collect();
            LiveVerdict::Insecure(format!(
                "answers plain HTTP without authentication on {target} ({})",
                if said.is_empty() {
                    "non-HTTP answer".to_string()
                } else {
                    said.join(", ")
                }
            ))
        }
        Err(e) => LiveVerdict::Unavailable(format!("{target}: {e}")),
    })
}

/// The read-only port answered, but the kubelet's own sockets (matched through its fd
/// table) include no listener on that port: the answer is another process's.
fn answered_by_someone_else(l: &crate::model::live::Live) -> bool {
    let Some(port) = l
        .read_only_target
        .as_deref()
        .and_then(|t| t.parse::<std::net::SocketAddr>().ok())
        .map(|a| a.port())
    else {
        return false;
    };
    match l.listeners.as_ref() {
        Some(Ok(ls)) if ls.method == "fd" => !ls.sockets.iter().any(|s| s.port == port),
        _ => false,
    }
}

/// Live evidence for the healthz bind address: the kubelet's real listener on that port.
fn healthz_live(ctx: &Ctx, port: u16) -> Option<LiveVerdict> {
    let l = live(ctx)?;
    Some(match l.listeners.as_ref()? {
        Ok(ls) => {
            let on: Vec<&crate::model::live::Listener> =
                ls.sockets.iter().filter(|s| s.port == port).collect();
            if on.is_empty() {
                LiveVerdict::Neutral(format!("no kubelet listener on port {port}"))
            } else if let Some(bad) = on
                .iter()
                .find(|s| !crate::model::net::is_loopback(&s.address))
            {
                LiveVerdict::Insecure(format!("listens for healthz on {}:{port}", bad.address))
            } else {
                LiveVerdict::Secure(format!(
                    "listens for healthz on {}:{port} only",
                    on[0].address
                ))
            }
        }
        Err(e) => LiveVerdict::Unavailable(format!("listeners: {e}")),
    })
}

fn evaluate_read_only_port(ctx: &Ctx) -> Outcome {
    with_live(evaluate_read_only_port_config(ctx), read_only_live(ctx))
}

fn evaluate_healthz(ctx: &Ctx) -> Outcome {
    let config = evaluate_healthz_config(ctx);
    let port = ctx
        .setting("healthzPort")
        .known()
        .and_then(|s| s.value.as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0);
    match port {
        Some(p) => with_live(config, healthz_live(ctx, p)),
        None => config,
    }
}

fn evaluate_read_only_port_config(ctx: &Ctx) -> Outcome {
    decide(|| {
        let s = known(ctx, "readOnlyPort")?;
        let port = int_of(&s)?;
        let observed = port.to_string();
        let src = s.source.label();
        Ok(match port {
            0 => Outcome::pass(observed, src, because("the read-only port is disabled", &s)),
            // pkg/kubelet/server/server.go `ListenAndServeKubeletReadOnlyServer`: plain HTTP,
            // `NewServer` with nil auth: no authn, no authz.
            1..=65535 => Outcome::fail(
                observed,
                src,
                because(
                    format!("the read-only port {port} serves /pods, /stats, /metrics with no authentication (plain HTTP)"),
                    &s,
                ),
            ),
            _ => unknown_with(
                observed,
                src,
                because(
                    format!("readOnlyPort {port} is outside 0-65535: the kubelet refuses to start with it, so this is not what the running kubelet uses"),
                    &s,
                ),
            ),
        })
    })
}

fn evaluate_bind_address(ctx: &Ctx) -> Outcome {
    let allowed = &ctx.policy.expected.allowed_bind_addresses;
    let out = decide(|| {
        let s = known(ctx, "address")?;
        let raw = str_of(&s)?.trim().to_string();
        let src = s.source.label();
        let port = ctx
            .setting("port")
            .known()
            .and_then(|p| p.value.as_i64())
            .unwrap_or(10250);
        if raw.is_empty() {
            return Ok(Outcome::fail(
                "\"\"",
                src,
                because(
                    format!(
                        "empty address: the kubelet API (port {port}) listens on every interface"
                    ),
                    &s,
                ),
            ));
        }
        let Some(ip) = parse_ip(&raw) else {
            return Ok(Outcome::fail(
                raw.clone(),
                src,
                because(
                    format!("{raw:?} is not an IP address: the kubelet requires an IP"),
                    &s,
                ),
            ));
        };
        if ip.is_unspecified() {
            return Ok(Outcome::fail(
                raw.clone(),
                src,
                because(
                    format!("wildcard address: the kubelet API (port {port}) and any read-only port listen on every interface"),
                    &s,
                ),
            ));
        }
        if allowed.is_empty() {
            return Ok(Outcome::pass(
                raw.clone(),
                src,
                because(
                    format!("bound to the specific address {raw}; the policy allows any specific address"),
                    &s,
                ),
            ));
        }
        Ok(match allowed_match(allowed, ip) {
            Some(net) => Outcome::pass(
                raw.clone(),
                src,
                because(format!("{raw} is inside the allowed {net}"), &s),
            ),
            None => Outcome::fail(
                raw.clone(),
                src,
                because(
                    format!(
                        "{raw} is outside every allowed address ({})",
                        allowed.join(", ")
                    ),
                    &s,
                ),
            ),
        })
    });
    if allowed.is_empty() {
        out
    } else {
        out.with_expected(format!("inside {}", allowed.join(", ")))
    }
}

/// The first allowed address/CIDR that contains `ip`.
fn allowed_match(allowed: &[String], ip: IpAddr) -> Option<&str> {
    allowed
        .iter()
        .find(|a| parse_cidr(a).is_some_and(|net| cidr_contains(net, ip)))
        .map(String::as_str)
}

fn evaluate_healthz_config(ctx: &Ctx) -> Outcome {
    decide(|| {
        let ps = known(ctx, "healthzPort")?;
        let port = int_of(&ps)?;
        if port == 0 {
            return Ok(Outcome::pass(
                "healthzPort 0",
                ps.source.label(),
                because("healthz server disabled", &ps),
            ));
        }
        if !(1..=65535).contains(&port) {
            return Ok(unknown_with(
                port.to_string(),
                ps.source.label(),
                because(
                    format!("healthzPort {port} is outside 0-65535: the kubelet refuses to start with it"),
                    &ps,
                ),
            ));
        }
        let a = known(ctx, "healthzBindAddress")?;
        let raw = str_of(&a)?.trim().to_string();
        let src = a.source.label();
        let observed = if raw.contains(':') {
            format!("[{raw}]:{port}")
        } else {
            format!("{raw}:{port}")
        };
        if raw.is_empty() {
            return Ok(Outcome::fail(
                format!(":{port}"),
                src,
                because(
                    format!("empty healthzBindAddress: the plain-HTTP healthz server on port {port} listens on every interface"),
                    &a,
                ),
            ));
        }
        Ok(match parse_ip(&raw) {
            Some(ip) if ip.is_loopback() => Outcome::pass(
                observed,
                src,
                because("healthz (plain HTTP, unauthenticated) is reachable from the node only", &a),
            ),
            Some(_) => Outcome::fail(
                observed,
                src,
                because(
                    format!("healthz (plain HTTP, unauthenticated) listens on {raw}, reachable off the node (CVE-2019-11248 exposed pprof there)"),
                    &a,
                ),
            ),
            None => unknown_with(
                observed,
                src,
                because(
                    format!("{raw:?} is not an IP address; what it resolves to on the host was not checked"),
                    &a,
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
    fn read_only_port() {
        // --config mode default: 0.
        let o = eval("read-only-port-disabled", &snapshot_with(&[], Some("")));
        assert_status(&o, Status::Pass);
        assert_eq!((o.observed.as_str(), o.source.as_str()), ("0", "default"));

        // Flags only: the legacy default is 10255 (options.go `applyLegacyDefaults`).
        let o = eval("read-only-port-disabled", &snapshot_with(&[], None));
        assert_status(&o, Status::Fail);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("10255", "default")
        );
        assert!(o.reason.contains("flags-only"), "{}", o.reason);

        // In the file; the flag overrides it.
        let o = eval(
            "read-only-port-disabled",
            &snapshot_with(&[], Some("readOnlyPort: 10255\n")),
        );
        assert_status(&o, Status::Fail);
        assert_eq!(o.source, "config-file");
        assert!(
            o.reason.contains("/var/lib/kubelet/config.yaml"),
            "{}",
            o.reason
        );
        let o = eval(
            "read-only-port-disabled",
            &snapshot_with(&["--read-only-port=0"], Some("readOnlyPort: 10255\n")),
        );
        assert_status(&o, Status::Pass);
        assert_eq!(o.source, "flag");

        // k3s/RKE2: --config-dir without --config keeps the legacy base (server.go
        // `NewKubeletCommand`; k3s-io/k3s#12164).
        let o = eval(
            "read-only-port-disabled",
            &snapshot_with_dropins(
                &[],
                None,
                &[("00-defaults.conf", "authorization:\n  mode: Webhook\n")],
            ),
        );
        assert_status(&o, Status::Fail);
        assert_eq!(o.observed, "10255");

        // Undecidable: the config file does not parse.
        let o = eval(
            "read-only-port-disabled",
            &snapshot_with(&[], Some("readOnlyPort: [\n")),
        );
        assert_status(&o, Status::Unknown);
        let o = eval(
            "read-only-port-disabled",
            &snapshot_with(&["--read-only-port=70000"], None),
        );
        assert_status(&o, Status::Unknown);
        assert_eq!(o.observed, "70000");
    }

    #[test]
    fn bind_address() {
        let id = "api-bind-address-restricted";
        let o = eval(id, &snapshot_with(&[], Some("")));
        assert_status(&o, Status::Fail);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("0.0.0.0", "default")
        );
        assert!(o.reason.contains("every interface"));
        assert_status(
            &eval(id, &snapshot_with(&["--address=::"], None)),
            Status::Fail,
        );
        assert_status(
            &eval(id, &snapshot_with(&[], Some("address: \"\"\n"))),
            Status::Fail,
        );
        let o = eval(id, &snapshot_with(&[], Some("address: node-1.example\n")));
        assert_status(&o, Status::Fail);
        assert!(o.reason.contains("requires an IP"), "{}", o.reason);

        let s = snapshot_with(&[], Some("address: 10.1.2.3\n"));
        let o = eval(id, &s);
        assert_status(&o, Status::Pass);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("10.1.2.3", "config-file")
        );
        assert_eq!(o.expected, None);

        let p = policy("expected:\n  allowed_bind_addresses: [\"192.168.0.0/16\", \"fd00::/8\"]\n");
        let o = eval_with(id, &s, &p);
        assert_status(&o, Status::Fail);
        assert_eq!(
            o.expected.as_deref(),
            Some("inside 192.168.0.0/16, fd00::/8")
        );
        let o = eval_with(id, &snapshot_with(&["--address=192.168.7.1"], None), &p);
        assert_status(&o, Status::Pass);
        assert!(o.reason.contains("192.168.0.0/16"));
        assert_eq!(o.source, "flag");
        assert_status(
            &eval_with(id, &snapshot_with(&["--address=fd12::1"], None), &p),
            Status::Pass,
        );

        assert_status(
            &eval(id, &snapshot_with(&[], Some("address: [\n"))),
            Status::Unknown,
        );
    }

    #[test]
    fn healthz() {
        let id = "healthz-bind-localhost";
        let o = eval(id, &snapshot_with(&[], Some("")));
        assert_status(&o, Status::Pass);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("127.0.0.1:10248", "default")
        );
        let o = eval(
            id,
            &snapshot_with(
                &["--healthz-port=0", "--healthz-bind-address=0.0.0.0"],
                None,
            ),
        );
        assert_status(&o, Status::Pass);
        assert!(o.reason.contains("disabled"));
        assert_eq!(o.source, "flag");
        let o = eval(
            id,
            &snapshot_with(&[], Some("healthzBindAddress: 0.0.0.0\n")),
        );
        assert_status(&o, Status::Fail);
        assert_eq!(
            (o.observed.as_str(), o.source.as_str()),
            ("0.0.0.0:10248", "config-file")
        );
        assert_status(
            &eval(
                id,
                &snapshot_with(&["--healthz-bind-address=10.0.0.5"], None),
            ),
            Status::Fail,
        );
        // An empty IP flag is a no-op (pkg/util/flag IPVar.Set): the default 127.0.0.1
        // stays, as a real kubelet shows (scenario flag-empty-ip).
        assert_status(
            &eval(id, &snapshot_with(&["--healthz-bind-address="], None)),
            Status::Pass,
        );
        let o = eval(id, &snapshot_with(&["--healthz-bind-address=::1"], None));
        assert_status(&o, Status::Pass);
        assert_eq!(o.observed, "[::1]:10248");
        assert_status(
            &eval(
                id,
                &snapshot_with(&["--healthz-bind-address=127.0.0.2"], None),
            ),
            Status::Pass,
        );
        assert_status(
            &eval(
                id,
                &snapshot_with(&["--healthz-bind-address=localhost"], None),
            ),
            Status::Unknown,
        );
        assert_status(
            &eval(id, &snapshot_with(&["--healthz-port=x"], None)),
            Status::Unknown,
        );
    }
}
