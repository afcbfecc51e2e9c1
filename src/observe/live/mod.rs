//! Live evidence: what the running kubelet's sockets do, next to what its files say.
//!
//! Targets come from the kubelet's real listeners (a wildcard listener is checked on
//! loopback: the DaemonSet runs with `hostNetwork`), or `--kubelet-address`. Checks of one
//! target run one at a time (never more than one in flight per target), each bounded by a
//! connect and an overall timeout; a target that stops answering ends its remaining checks
//! at once, so a silent peer cannot stall an evaluation.

pub mod handshake;
pub mod http;
pub mod socket;
pub mod tls_scan;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use self::socket::Timeouts;
use crate::io::host::HostRoot;
use crate::model::live::{Listeners, Live, LiveError, LiveErrorKind, LiveResult, ReadOnlyAnswer};
use crate::model::snapshot::{ProbeRecord, Snapshot, VersionSource};

use super::net;

/// When to check the kubelet's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMode {
    /// Check when `<host-root>/proc` is a real procfs (a live host); never for a host tree
    /// copied on disk (fixtures, the bundled example), whose processes do not exist here.
    Auto,
    /// Always check (`--live-probes on`), even for a host tree whose `/proc` is not a
    /// live procfs.
    On,
    /// Never check: [`Snapshot::live`] stays `None`, and the binary is not run for its
    /// version either.
    Off,
}

/// Options for the live checks.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// When the checks run at all (`--live-probes`).
    pub mode: LiveMode,
    /// Connect and overall bound of each single check (`--probe-timeout`, both).
    pub timeouts: Timeouts,
    /// Check this address instead of the one derived from the listeners.
    pub kubelet_address: Option<IpAddr>,
    /// Upper bound on all checks of one target together.
    pub target_budget: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            mode: LiveMode::Auto,
            timeouts: Timeouts::default(),
            kubelet_address: None,
            target_budget: Duration::from_secs(10),
        }
    }
}

/// How long protocol and cipher-suite scan results are reused for the same kubelet process
/// (same pid and start time: its TLS settings only change on restart). Each scan is ~30
/// connections that end after the ServerHello, which the kubelet may log as handshake
/// errors; repeating them every 30 s would be noise on every node.
pub const RESCAN_TLS_EVERY: Duration = Duration::from_secs(600);

/// Accepted/refused per protocol version or cipher suite.
type Scan = Vec<(String, bool)>;

/// A version remembered for one kubelet process: `((pid, start time), version, source)`.
pub type CachedVersion = ((i32, Option<u64>), String, VersionSource);

/// Scan results kept between evaluations.
#[derive(Debug, Default, Clone)]
pub struct ScanCache {
    key: Option<(i32, Option<u64>, SocketAddr)>,
    at: Option<Instant>,
    versions: Option<Scan>,
    suites: Option<Scan>,
    /// The version learnt from the running kubelet's binary or build_info, for the same
    /// process (pid and start time): the running binary cannot change under a live pid.
    pub version: Option<CachedVersion>,
}

impl ScanCache {
    fn fresh(&self, key: &(i32, Option<u64>, SocketAddr)) -> Option<(Scan, Scan)> {
        if self.key.as_ref() != Some(key) || self.at.is_none_or(|t| t.elapsed() > RESCAN_TLS_EVERY)
        {
            return None;
        }
        Some((self.versions.clone()?, self.suites.clone()?))
    }
}

/// `statfs` magic of procfs.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Whether `<root>/proc` is a mounted procfs (a live host, not a copied tree).
pub fn is_live_proc(root: &Path) -> bool {
    rustix::fs::statfs(root.join("proc")).is_ok_and(|s| {
        // `f_type`'s integer type differs between architectures.
        #[allow(clippy::unnecessary_cast, clippy::cast_lossless)]
        let magic = s.f_type as i64;
        magic == PROC_SUPER_MAGIC
    })
}

/// Whether live checks run for this host.
pub fn enabled(host: &HostRoot, opts: &LiveOptions) -> bool {
    match opts.mode {
        LiveMode::On => true,
        LiveMode::Off => false,
        LiveMode::Auto => is_live_proc(host.root()),
    }
}

/// A port from the effective configuration, if decidable.
fn int_setting(snapshot: &Snapshot, key: &str) -> Option<i64> {
    snapshot
        .kubelet
        .as_ref()?
        .config
        .get(key)
        .known()
        .and_then(|s| s.value.as_i64())
}

fn str_setting(snapshot: &Snapshot, key: &str) -> Option<String> {
    snapshot
        .kubelet
        .as_ref()?
        .config
        .get(key)
        .known()
        .and_then(|s| match &s.value {
            Value::String(v) => Some(v.clone()),
            _ => None,
        })
}

/// Where to reach a port: the kubelet's own listener on it (wildcard → loopback of the
/// same family), else the configured address (wildcard → 127.0.0.1).
pub fn target_for(
    listeners: Option<&Listeners>,
    port: u16,
    configured: Option<&str>,
    explicit: Option<IpAddr>,
) -> SocketAddr {
    if let Some(ip) = explicit {
        return SocketAddr::new(ip, port);
    }
    let from_listener = listeners.and_then(|l| {
        let on_port: Vec<&IpAddr> = l
            .sockets
            .iter()
            .filter(|s| s.port == port)
            .map(|s| &s.address)
            .collect();
        // Prefer an IPv4 listener, then any; wildcard becomes loopback.
        on_port
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| on_port.first())
            .map(|a| loopback_for(a))
    });
    let ip = from_listener.unwrap_or_else(|| {
        configured
            .and_then(|c| c.parse::<IpAddr>().ok())
            .map(|a| loopback_for(&a))
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    });
    SocketAddr::new(ip, port)
}

fn loopback_for(a: &IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => *other,
    }
}

fn skipped(why: &str) -> LiveError {
    LiveError::new(LiveErrorKind::Skipped, why)
}

/// A target stops being checked after a timeout or refusal: the rest are skipped.
fn stops_target(e: &LiveError) -> bool {
    matches!(e.kind, LiveErrorKind::Timeout | LiveErrorKind::Refused)
}

/// Run the live checks against the kubelet of `snapshot` (which must have one) and record
/// each step in `records`.
pub async fn check(
    snapshot: &Snapshot,
    host: &HostRoot,
    opts: &LiveOptions,
    cache: &mut ScanCache,
    records: &mut Vec<ProbeRecord>,
) -> Live {
    let mut live = Live::default();
    let Some(kubelet) = snapshot.kubelet.as_ref() else {
        return live;
    };
    let port = int_setting(snapshot, "port")
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(10250);
    let ro_cfg = int_setting(snapshot, "readOnlyPort").and_then(|p| u16::try_from(p).ok());
    // The read-only port is checked even when the config says 0: a lie on disk is caught.
    let ro_port = ro_cfg.filter(|p| *p > 0).unwrap_or(10255);
    let healthz = int_setting(snapshot, "healthzPort")
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(10248);

    // Listeners (host I/O under /proc: quick, done here to keep one live section).
    let start = Instant::now();
    let listeners = net::kubelet_listeners(host, kubelet.pid, &[port, ro_port, healthz]);
    records.push(ProbeRecord {
        name: "listeners",
        success: listeners.is_ok(),
        duration: start.elapsed(),
        error: listeners.as_ref().err().cloned(),
    });
    let address = str_setting(snapshot, "address");
    let l_ref = listeners.as_ref().ok();
    let serving = target_for(l_ref, port, address.as_deref(), opts.kubelet_address);
    let read_only = target_for(l_ref, ro_port, address.as_deref(), opts.kubelet_address);
    live.listeners = Some(listeners.map_err(|e| {
        crate::model::observed::ObsError::new(crate::model::observed::ObsErrorKind::Unreadable, e)
    }));
    live.serving_target = Some(serving.to_string());
    live.read_only_target = Some(read_only.to_string());

    let t = opts.timeouts;
    let budget = opts.target_budget;
    let key = (kubelet.pid, kubelet.start_time_ticks, serving);
    let cached = cache.fresh(&key);
    let serving_fut = tokio::time::timeout(budget, check_serving(serving, t, cached));
    let ro_fut = tokio::time::timeout(budget, check_read_only(read_only, t));
    let (serving_res, ro_res) = tokio::join!(serving_fut, ro_fut);

    let over = |what: &str| {
        LiveError::new(
            LiveErrorKind::Timeout,
            format!("{what}: probes exceeded the {budget:?} budget"),
        )
    };
    match serving_res {
        Ok((s, recs)) => {
            if let (Ok(v), Ok(su)) = (&s.versions, &s.suites) {
                if cache.key.as_ref() != Some(&key)
                    || cache.at.is_none_or(|t| t.elapsed() > RESCAN_TLS_EVERY)
                {
                    let version = cache.version.take();
                    *cache = ScanCache {
                        key: Some(key),
                        at: Some(Instant::now()),
                        versions: Some(v.clone()),
                        suites: Some(su.clone()),
                        version,
                    };
                }
            }
            live.tls = Some(s.tls);
            live.tls_versions = Some(s.versions);
            live.tls12_suites = Some(s.suites);
            live.anonymous = Some(s.anonymous);
            records.extend(recs);
        }
        Err(_) => {
            let e = over(&serving.to_string());
            live.tls = Some(Err(e.clone()));
            live.tls_versions = Some(Err(e.clone()));
            live.tls12_suites = Some(Err(e.clone()));
            live.anonymous = Some(Err(e));
        }
    }
    match ro_res {
        Ok((r, rec)) => {
            live.read_only = Some(r);
            records.push(rec);
        }
        Err(_) => live.read_only = Some(Err(over(&read_only.to_string()))),
    }
    live
}

struct Serving {
    tls: LiveResult<crate::model::live::TlsHandshake>,
    versions: LiveResult<Vec<(String, bool)>>,
    suites: LiveResult<Vec<(String, bool)>>,
    anonymous: LiveResult<u16>,
}

fn record<T>(name: &'static str, start: Instant, r: &LiveResult<T>) -> ProbeRecord {
    ProbeRecord {
        name,
        success: r.is_ok(),
        duration: start.elapsed(),
        error: r.as_ref().err().map(|e| e.message.clone()),
    }
}

async fn check_serving(
    addr: SocketAddr,
    t: Timeouts,
    cached: Option<(Scan, Scan)>,
) -> (Serving, Vec<ProbeRecord>) {
    let mut recs = Vec::new();
    let start = Instant::now();
    let tls = handshake::tls_handshake(addr, None, &t)
        .await
        .map(|(h, _stream)| h);
    recs.push(record("tls_handshake", start, &tls));
    let mut stop: Option<LiveError> = tls.as_ref().err().filter(|e| stops_target(e)).cloned();

    let (cached_versions, cached_suites) = match cached {
        Some((v, s)) => (Some(v), Some(s)),
        None => (None, None),
    };
    let start = Instant::now();
    let versions = match (&stop, cached_versions) {
        (Some(e), _) => Err(skipped(&format!(
            "serving port did not answer the handshake: {e}"
        ))),
        (None, Some(v)) => Ok(v),
        (None, None) => {
            let mut out = Vec::new();
            let mut err = None;
            for v in crate::model::tls::TlsVersion::ALL {
                match tls_scan::accepts_version(addr, v, None, &t).await {
                    Ok(ok) => out.push((v.as_config_name().to_string(), ok)),
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            match err {
                Some(e) => Err(e),
                None => Ok(out),
            }
        }
    };
    recs.push(record("tls_versions", start, &versions));
    if stop.is_none() {
        stop = versions.as_ref().err().filter(|e| stops_target(e)).cloned();
    }

    let start = Instant::now();
    let suites = match (&stop, cached_suites) {
        (Some(e), _) => Err(skipped(&format!("serving port stopped answering: {e}"))),
        (None, Some(s)) => Ok(s),
        (None, None) => {
            tls_scan::accepted_tls12_suites(addr, None, crate::model::tls::IANA_TLS12_SUITES, &t, 1)
                .await
        }
    };
    recs.push(record("tls12_suites", start, &suites));
    if stop.is_none() {
        stop = suites.as_ref().err().filter(|e| stops_target(e)).cloned();
    }

    let start = Instant::now();
    let anonymous = match &stop {
        Some(e) => Err(skipped(&format!("serving port stopped answering: {e}"))),
        None => http::https_get_status(addr, None, "/pods", &t).await,
    };
    recs.push(record("anonymous", start, &anonymous));
    (
        Serving {
            tls,
            versions,
            suites,
            anonymous,
        },
        recs,
    )
}

async fn check_read_only(
    addr: SocketAddr,
    t: Timeouts,
) -> (LiveResult<ReadOnlyAnswer>, ProbeRecord) {
    let start = Instant::now();
    let healthz = http::http_get_status(addr, "/healthz", &t).await;
    let result = match healthz {
        // Nothing listens: the port is closed. That is an answer, not an error.
        Err(e) if e.kind == LiveErrorKind::Refused => Ok(ReadOnlyAnswer {
            healthz: None,
            pods: None,
        }),
        Err(e) if e.kind == LiveErrorKind::Protocol => {
            // Something answered, but not HTTP: still an answer on that port.
            let pods = http::http_get_status(addr, "/pods", &t).await.ok();
            Ok(ReadOnlyAnswer {
                healthz: None,
                pods,
            })
        }
        Err(e) => Err(e),
        Ok(code) => {
            let pods = http::http_get_status(addr, "/pods", &t).await.ok();
            Ok(ReadOnlyAnswer {
                healthz: Some(code),
                pods,
            })
        }
    };
    let rec = record("read_only_port", start, &result);
    (result, rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::live::Listener;

    fn listeners(s: &[(&str, u16)]) -> Listeners {
        Listeners {
            method: "fd".into(),
            sockets: s
                .iter()
                .map(|(a, p)| Listener {
                    address: a.parse().unwrap(),
                    port: *p,
                })
                .collect(),
        }
    }

    #[test]
    fn targets() {
        let l = listeners(&[("::", 10250), ("127.0.0.1", 10248), ("10.0.0.5", 10255)]);
        assert_eq!(
            target_for(Some(&l), 10250, Some("0.0.0.0"), None).to_string(),
            "[::1]:10250"
        );
        assert_eq!(
            target_for(Some(&l), 10248, None, None).to_string(),
            "127.0.0.1:10248"
        );
        assert_eq!(
            target_for(Some(&l), 10255, None, None).to_string(),
            "10.0.0.5:10255"
        );
        // No listener on the port: configured address (wildcard → loopback).
        assert_eq!(
            target_for(Some(&l), 9999, Some("0.0.0.0"), None).to_string(),
            "127.0.0.1:9999"
        );
        assert_eq!(
            target_for(None, 10250, Some("192.168.1.4"), None).to_string(),
            "192.168.1.4:10250"
        );
        // --kubelet-address wins.
        assert_eq!(
            target_for(Some(&l), 10250, None, Some("10.1.1.1".parse().unwrap())).to_string(),
            "10.1.1.1:10250"
        );
    }

    #[test]
    fn live_proc_detection() {
        assert!(is_live_proc(Path::new("/")));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        assert!(!is_live_proc(dir.path()));
    }
}
