//! The kubelet's running configuration, read from its `/configz` (opt-in:
//! `--read-running-config`), to compare with what its files and flags say.
//!
//! The kubelet serves its effective, merged configuration (cmd/kubelet/app/server.go
//! `initConfigz`) at `GET /configz` as `{"kubeletconfig": {...}}` (debug handlers only),
//! and the API server proxies it at `/api/v1/nodes/<node>/proxy/configz`. The kubelet's
//! auth filter (pkg/kubelet/server/server.go `InstallAuthFilter`) answers 401 (token not
//! authenticated) or 403 (not authorized); with the `KubeletFineGrainedAuthz` gate
//! `/configz` is authorized as `nodes/configz`, falling back to `nodes/proxy`, without it
//! as `nodes/proxy` (pkg/kubelet/server/auth.go `GetRequestAttributes`).
//!
//! Two routes, least privilege first:
//!
//! 1. `nodes/configz`: `GET https://<kubelet serving address>/configz` on the kubelet's
//!    own port (the target the live checks found) with the agent's own bearer token;
//! 2. `nodes/proxy`, only with `--running-config-via-proxy`: through the API server's node
//!    proxy. `nodes/proxy` is effectively full control of every kubelet (exec into any pod
//!    through the kubelet API), so it is never used unless the operator allows it.
//!
//! Every request is bounded by a timeout and its body by [`MAX_CONFIGZ_BYTES`]. A
//! successful read is reused for the same kubelet process (pid and start time): a
//! running configuration only changes when the kubelet restarts.

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use serde_json::Value;

use crate::model::snapshot::{ConfigzRoute, ProbeRecord, RunningConfig, Snapshot};

use crate::model::live::Live;
use crate::observe::cluster::Cluster;
use crate::observe::live::socket::Timeouts;

/// Cap on a `/configz` body (a real one is ~5 KiB).
pub const MAX_CONFIGZ_BYTES: usize = 4 * 1024 * 1024;

use crate::model::kubelet_config::configz::parse_configz;
/// The flag that allows the `nodes/proxy` route.
pub const PROXY_FLAG: &str = "--running-config-via-proxy";

/// How the running configuration is read.
#[derive(Debug, Clone)]
pub struct RunningConfigOptions {
    /// `--read-running-config`.
    pub enabled: bool,
    /// `--running-config-via-proxy`: the `nodes/proxy` route may be used.
    pub via_proxy: bool,
    /// Bound on each request (connect included).
    pub timeout: Duration,
    /// `--kubelet-address` was given: the operator chose the kubelet's address, so the
    /// token may go there even when it is not matched to the kubelet's own socket.
    pub explicit_address: bool,
}

impl Default for RunningConfigOptions {
    fn default() -> Self {
        RunningConfigOptions {
            enabled: false,
            via_proxy: false,
            timeout: Duration::from_secs(3),
            explicit_address: false,
        }
    }
}

/// After a failed read, the next attempt waits this long (the failure is reported
/// meanwhile): a kubelet port or proxy that hangs costs its timeout once a minute, not at
/// every evaluation (every watch-triggered one included).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// A successful read, kept for its kubelet process; the last failure, kept for
/// [`RETRY_AFTER_FAILURE`].
#[derive(Debug, Default, Clone)]
pub struct ConfigzCache {
    last: Option<RunningConfig>,
    failed: Option<(RunningConfig, Instant)>,
}

/// Read the running configuration of the snapshot's kubelet, unless reading it is off or
/// there is no kubelet. Returns it with its observation step (`configz`).
pub async fn read(
    snapshot: &Snapshot,
    opts: &RunningConfigOptions,
    cluster: Option<&Cluster>,
    cache: &mut ConfigzCache,
) -> Option<(RunningConfig, ProbeRecord)> {
    read_at(snapshot, opts, cluster, cache, Instant::now()).await
}

async fn read_at(
    snapshot: &Snapshot,
    opts: &RunningConfigOptions,
    cluster: Option<&Cluster>,
    cache: &mut ConfigzCache,
    now: Instant,
) -> Option<(RunningConfig, ProbeRecord)> {
    if !opts.enabled {
        return None;
    }
    let kubelet = snapshot.kubelet.as_ref()?;
    let process = (kubelet.pid, kubelet.start_time_ticks);
    let start = Instant::now();
    if let Some(hit) = cache.last.as_ref().filter(|c| c.process == process) {
        let rc = hit.clone();
        return Some((rc, record(start, &Ok(()))));
    }
    if let Some((rc, _)) = cache.failed.as_ref().filter(|(c, at)| {
        c.process == process && now.saturating_duration_since(*at) < RETRY_AFTER_FAILURE
    }) {
        let outcome = rc.config.as_ref().map(|_| ()).map_err(Clone::clone);
        return Some((rc.clone(), record(start, &outcome)));
    }
    let (via, config) = fetch(snapshot, opts, cluster).await;
    let rc = RunningConfig {
        via,
        config,
        process,
    };
    if rc.config.is_ok() {
        cache.last = Some(rc.clone());
        cache.failed = None;
    } else {
        cache.failed = Some((rc.clone(), now));
    }
    let outcome = rc.config.as_ref().map(|_| ()).map_err(Clone::clone);
    Some((rc, record(start, &outcome)))
}

fn record(start: Instant, r: &Result<(), String>) -> ProbeRecord {
    ProbeRecord {
        name: "configz",
        success: r.is_ok(),
        duration: start.elapsed(),
        error: r.as_ref().err().cloned(),
    }
}

/// Try the routes in order of privilege.
async fn fetch(
    snapshot: &Snapshot,
    opts: &RunningConfigOptions,
    cluster: Option<&Cluster>,
) -> (ConfigzRoute, Result<Value, String>) {
    let direct = from_kubelet(snapshot.live.as_ref(), opts, cluster).await;
    let direct_err = match direct {
        Ok(v) => return (ConfigzRoute::Kubelet, Ok(v)),
        Err(e) => e,
    };
    if !opts.via_proxy {
        return (
            ConfigzRoute::Kubelet,
            Err(format!(
                "{}: {direct_err} (the nodes/proxy route is not allowed: {PROXY_FLAG})",
                ConfigzRoute::Kubelet.as_str()
            )),
        );
    }
    match from_api_proxy(&snapshot.node, opts, cluster).await {
        Ok(v) => (ConfigzRoute::ApiProxy, Ok(v)),
        Err(e) => (
            ConfigzRoute::ApiProxy,
            Err(format!(
                "{}: {direct_err}; {}: {e}",
                ConfigzRoute::Kubelet.as_str(),
                ConfigzRoute::ApiProxy.as_str()
            )),
        ),
    }
}

/// One line of an error body, at most 200 characters.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {line}")
    }
}

/// Route 1: the kubelet's own port, with the agent's own token.
///
/// The kubelet's serving certificate is inspected, not verified (the same client as the
/// live checks, `observe::live::handshake`): it is self-signed on most clusters (kubeadm without
/// `serverTLSBootstrap` writes `/var/lib/kubelet/pki/kubelet.crt`), so verifying it
/// against the cluster CA would fail exactly where the check is wanted. What protects the
/// token instead is where it goes: only to a serving address that is one of the kubelet
/// process's own listening sockets on this node (matched by the live checks through
/// `/proc/<pid>/fd` or its network namespace; a wildcard listener is reached on loopback),
/// or to the address the operator named with `--kubelet-address`. A process that could
/// answer there in the kubelet's place already controls the node. The token is the
/// agent's own service-account token (it cannot do more than the agent's RBAC allows).
async fn from_kubelet(
    live: Option<&Live>,
    opts: &RunningConfigOptions,
    cluster: Option<&Cluster>,
) -> Result<Value, String> {
    let Some(cluster) = cluster else {
        return Err("no API access: the agent has no token to send".to_string());
    };
    let token = match (cluster.token(), cluster.access()) {
        (Some(t), _) => t.read()?,
        (None, Err(why)) => return Err(format!("no API access ({why}): no token to send")),
        (None, Ok(how)) => {
            return Err(format!(
                "the agent's credentials ({how}) carry no bearer token to send to the kubelet"
            ))
        }
    };
    let Some(live) = live else {
        return Err(
            "the kubelet's port is not probed (live probes off, or a host tree on disk)"
                .to_string(),
        );
    };
    let target = live
        .serving_target
        .as_deref()
        .and_then(|t| t.parse::<std::net::SocketAddr>().ok())
        .ok_or_else(|| "no serving address of the kubelet".to_string())?;
    let own_socket = match &live.listeners {
        Some(Ok(l)) => l.sockets.iter().any(|s| s.port == target.port()),
        _ => false,
    };
    if !own_socket && !opts.explicit_address {
        return Err(format!(
            "{target} is not one of the kubelet's own listening sockets: the token is not sent there (set --kubelet-address to choose the address)"
        ));
    }
    let t = Timeouts {
        connect: opts.timeout,
        overall: opts.timeout,
    };
    let answer = crate::observe::live::http::https_get(
        target,
        None,
        "/configz",
        Some(&token),
        MAX_CONFIGZ_BYTES,
        &t,
    )
    .await
    .map_err(|e| e.message)?;
    match answer.status {
        200 if !answer.complete => Err(format!(
            "GET https://{target}/configz: the body was cut short (larger than {MAX_CONFIGZ_BYTES} bytes, or too slow)"
        )),
        200 => parse_configz(&answer.body),
        401 => Err(format!(
            "GET https://{target}/configz: 401 Unauthorized: the kubelet did not authenticate the agent's token (authentication.webhook.enabled must be true){}",
            snippet(&answer.body)
        )),
        403 => Err(format!(
            "GET https://{target}/configz: 403 Forbidden: the agent's service account needs `get` on `nodes/configz` (kubelets with the KubeletFineGrainedAuthz gate) or on `nodes/proxy` (the kubelet's fallback){}",
            snippet(&answer.body)
        )),
        404 => Err(format!(
            "GET https://{target}/configz: 404: the kubelet does not serve /configz (enableDebuggingHandlers: false?)"
        )),
        code => Err(format!(
            "GET https://{target}/configz: {code}{}",
            snippet(&answer.body)
        )),
    }
}

/// A node name as the API server accepts it (a DNS subdomain): safe in a path.
fn valid_node_name(node: &str) -> bool {
    !node.is_empty()
        && node.len() <= 253
        && node
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Route 2: the API server's node proxy (`nodes/proxy`).
async fn from_api_proxy(
    node: &str,
    opts: &RunningConfigOptions,
    cluster: Option<&Cluster>,
) -> Result<Value, String> {
    let client = match cluster {
        Some(c) => match (c.client(), c.access()) {
            (Some(client), _) => client,
            (None, Err(why)) => return Err(format!("no API access ({why})")),
            (None, Ok(_)) => return Err("no API client".to_string()),
        },
        None => return Err("no API access".to_string()),
    };
    if !valid_node_name(node) {
        return Err(format!("{node:?} is not a valid node name"));
    }
    let path = format!("/api/v1/nodes/{node}/proxy/configz");
    let request = hyper::Request::get(&path)
        .body(kube::client::Body::from(Vec::new()))
        .map_err(|e| format!("GET {path}: {e}"))?;
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let over = || format!("GET {path}: no answer within {:?}", opts.timeout);
    let response = tokio::time::timeout_at(deadline, client.send(request))
        .await
        .map_err(|_| over())?
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("GET {path}: {e}"))?;
            if let Some(d) = frame.data_ref() {
                if buf.len() + d.len() > MAX_CONFIGZ_BYTES {
                    return Err(format!(
                        "GET {path}: the body is larger than {MAX_CONFIGZ_BYTES} bytes"
                    ));
                }
                buf.extend_from_slice(d);
            }
        }
        Ok(())
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| over())??;
    match status {
        200 => parse_configz(&buf),
        401 => Err(format!(
            "GET {path}: 401 Unauthorized: the API server did not authenticate the agent{}",
            snippet(&buf)
        )),
        403 => Err(format!(
            "GET {path}: 403 Forbidden: the agent's service account needs `get` on `nodes/proxy`{}",
            snippet(&buf)
        )),
        code => Err(format!("GET {path}: {code}{}", snippet(&buf))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::io::kube::TokenSource;
    use crate::model::live::{Listener, Listeners};

    fn live(listening: &[u16], target: &str) -> Live {
        Live {
            listeners: Some(Ok(Listeners {
                method: "fd".into(),
                sockets: listening
                    .iter()
                    .map(|p| Listener {
                        address: "127.0.0.1".parse().unwrap(),
                        port: *p,
                    })
                    .collect(),
            })),
            serving_target: Some(target.into()),
            ..Live::default()
        }
    }

    fn with_token() -> Cluster {
        Cluster::disabled("test").with_token(Some(TokenSource::Inline("t0k3n".into())))
    }

    #[tokio::test]
    async fn the_token_goes_only_to_the_kubelets_own_socket() {
        let opts = RunningConfigOptions {
            enabled: true,
            ..RunningConfigOptions::default()
        };
        let c = with_token();
        // No listener of the kubelet on the target's port: the token is not sent.
        let e = from_kubelet(Some(&live(&[10250], "127.0.0.1:9")), &opts, Some(&c))
            .await
            .unwrap_err();
        assert!(e.contains("not one of the kubelet's own"), "{e}");
        // Unless the operator named the address.
        let explicit = RunningConfigOptions {
            explicit_address: true,
            timeout: Duration::from_millis(500),
            ..opts.clone()
        };
        let e = from_kubelet(Some(&live(&[10250], "127.0.0.1:9")), &explicit, Some(&c))
            .await
            .unwrap_err();
        assert!(!e.contains("not one of the kubelet's own"), "{e}");
        // No live checks, no token, no API access at all.
        let e = from_kubelet(None, &opts, Some(&c)).await.unwrap_err();
        assert!(e.contains("not probed"), "{e}");
        let e = from_kubelet(Some(&live(&[10250], "127.0.0.1:10250")), &opts, None)
            .await
            .unwrap_err();
        assert!(e.contains("no API access"), "{e}");
        let none = Cluster::disabled("--api-access=off");
        let e = from_kubelet(Some(&live(&[10250], "127.0.0.1:10250")), &opts, Some(&none))
            .await
            .unwrap_err();
        assert!(e.contains("--api-access=off"), "{e}");
    }

    #[tokio::test]
    async fn the_proxy_route_is_only_tried_when_allowed() {
        let snap = crate::model::testing::snapshot_with(&[], None);
        let c = with_token();
        let opts = RunningConfigOptions {
            enabled: true,
            ..RunningConfigOptions::default()
        };
        let (via, r) = fetch(&snap, &opts, Some(&c)).await;
        assert_eq!(via, ConfigzRoute::Kubelet);
        assert!(r.unwrap_err().contains(PROXY_FLAG));
        let proxy = RunningConfigOptions {
            via_proxy: true,
            ..opts
        };
        let (via, r) = fetch(&snap, &proxy, Some(&c)).await;
        assert_eq!(via, ConfigzRoute::ApiProxy);
        let e = r.unwrap_err();
        assert!(
            e.starts_with("nodes/configz: ") && e.contains("; nodes/proxy: no API access (test)"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn off_or_no_kubelet_reads_nothing() {
        let mut snap = crate::model::testing::snapshot_with(&[], None);
        let mut cache = ConfigzCache::default();
        let off = RunningConfigOptions::default();
        assert!(read(&snap, &off, None, &mut cache).await.is_none());
        snap.kubelet = None;
        let on = RunningConfigOptions {
            enabled: true,
            ..off
        };
        assert!(read(&snap, &on, None, &mut cache).await.is_none());
    }

    #[tokio::test]
    async fn a_successful_read_is_reused_for_the_same_process_only() {
        let snap = crate::model::testing::snapshot_with(&[], None);
        let k = snap.kubelet.as_ref().unwrap();
        let mut cache = ConfigzCache {
            last: Some(RunningConfig {
                via: ConfigzRoute::ApiProxy,
                config: Ok(serde_json::json!({"readOnlyPort": 0})),
                process: (k.pid, k.start_time_ticks),
            }),
            failed: None,
        };
        let on = RunningConfigOptions {
            enabled: true,
            ..RunningConfigOptions::default()
        };
        let (rc, rec) = read(&snap, &on, None, &mut cache).await.unwrap();
        assert!(rc.config.is_ok() && rec.success && rec.name == "configz");
        // Another process (a restart): read again (and fail here: no API access).
        let mut other = snap.clone();
        other.kubelet.as_mut().unwrap().pid += 1;
        let (rc, rec) = read(&other, &on, None, &mut cache).await.unwrap();
        assert!(rc.config.is_err() && !rec.success);
        assert!(rec.error.unwrap().contains("no API access"));
    }

    #[tokio::test]
    async fn a_failure_is_reported_without_retrying_for_a_minute() {
        let snap = crate::model::testing::snapshot_with(&[], None);
        let k = snap.kubelet.as_ref().unwrap();
        let t0 = Instant::now();
        let mut cache = ConfigzCache {
            last: None,
            failed: Some((
                RunningConfig {
                    via: ConfigzRoute::Kubelet,
                    config: Err("nodes/configz: no answer within 3s".into()),
                    process: (k.pid, k.start_time_ticks),
                },
                t0,
            )),
        };
        let on = RunningConfigOptions {
            enabled: true,
            ..RunningConfigOptions::default()
        };
        // Within the minute: the stored failure, not a new attempt.
        let (rc, rec) = read_at(&snap, &on, None, &mut cache, t0 + Duration::from_secs(59))
            .await
            .unwrap();
        assert_eq!(rc.config.unwrap_err(), "nodes/configz: no answer within 3s");
        assert!(!rec.success);
        // After it: a new attempt (which fails here for its own reason, and is stored).
        let later = t0 + RETRY_AFTER_FAILURE;
        let (rc, _) = read_at(&snap, &on, None, &mut cache, later).await.unwrap();
        let e = rc.config.unwrap_err();
        assert_ne!(e, "nodes/configz: no answer within 3s");
        assert_eq!(cache.failed.as_ref().map(|(_, at)| *at), Some(later));
        // Another kubelet process is tried at once.
        let mut other = snap.clone();
        other.kubelet.as_mut().unwrap().pid += 1;
        let (rc, _) = read_at(&other, &on, None, &mut cache, later).await.unwrap();
        assert_eq!(rc.process.0, k.pid + 1);
    }

    #[test]
    fn configz_bodies() {
        assert_eq!(
            parse_configz(br#"{"kubeletconfig":{"readOnlyPort":0}}"#).unwrap(),
            serde_json::json!({"readOnlyPort": 0})
        );
        assert!(parse_configz(b"").is_err());
        assert!(parse_configz(b"{").is_err());
        assert!(parse_configz(br#"{"kubeletconfig":[1]}"#).is_err());
        assert!(parse_configz(br#"{"other":{}}"#).is_err());
        assert!(parse_configz(b"\xff\xfe").is_err());
    }

    #[test]
    fn node_names() {
        assert!(valid_node_name("node-1.example.com"));
        assert!(!valid_node_name("node/../x"));
        assert!(!valid_node_name("Node"));
        assert!(!valid_node_name(""));
    }

    #[test]
    fn error_snippets_are_one_short_line() {
        assert_eq!(snippet(b""), "");
        assert_eq!(snippet(b"Forbidden\n (user=x)"), ": Forbidden (user=x)");
        assert_eq!(snippet(&[b'a'; 500]).len(), 202);
    }

    #[test]
    fn token_files_are_capped_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "abc\n").unwrap();
        let src = crate::io::kube::TokenSource::File(p.clone());
        assert_eq!(src.read().unwrap(), "abc");
        std::fs::write(&p, vec![b'x'; 70 * 1024]).unwrap();
        assert!(src.read().unwrap_err().contains("larger than"));
        std::fs::write(&p, "  \n").unwrap();
        assert!(src.read().is_err());
        assert!(
            crate::io::kube::TokenSource::File(dir.path().join("missing"))
                .read()
                .is_err()
        );
    }
}
