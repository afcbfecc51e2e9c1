//! Completing a snapshot: after the host's files and processes (`observe`), the kubelet's
//! version, the live checks of its sockets, the API's view and the running configuration.
//! The same for `check` and `serve`; the caches it keeps live in [`Observer`].

use std::time::{Duration, Instant};

use crate::io::host::HostRoot;
use crate::model::snapshot::{ProbeRecord, Snapshot, VersionSource};
use crate::observe::cluster::{self, Cluster};
use crate::observe::live::{self, LiveOptions, ScanCache};
use crate::observe::running_config::{self, ConfigzCache, RunningConfigOptions};
use crate::observe::{self, version, ObserveOptions, Observer};

/// How the observation is completed with live evidence and the kubelet's version.
#[derive(Debug, Clone)]
pub struct EnrichOptions {
    /// When and how the kubelet's sockets are checked (`--live-probes`,
    /// `--probe-timeout`, `--kubelet-address`).
    pub live: LiveOptions,
    /// Run the kubelet's own binary with `--version` (live hosts only).
    pub version_exec: bool,
    /// Bound on that `--version` run (2 s by default); the child is killed after it.
    pub version_timeout: Duration,
    /// `--kubelet-version`: the version to use, whatever the binary says.
    pub version_override: Option<String>,
    /// `--read-running-config`, `--running-config-via-proxy`.
    pub running_config: RunningConfigOptions,
}

impl Default for EnrichOptions {
    fn default() -> Self {
        EnrichOptions {
            live: LiveOptions::default(),
            version_exec: false,
            version_timeout: Duration::from_secs(2),
            version_override: None,
            running_config: RunningConfigOptions::default(),
        }
    }
}

/// Complete a snapshot with the kubelet's version and the live checks. Runs on a blocking
/// thread and drives the async checks on `rt`; every check is bounded by its timeouts.
fn enrich(
    snapshot: &mut Snapshot,
    host: &HostRoot,
    opts: &EnrichOptions,
    cache: &mut ScanCache,
    rt: &tokio::runtime::Handle,
) {
    let live_host = live::enabled(host, &opts.live);
    let Some(kubelet) = snapshot.kubelet.as_ref() else {
        return;
    };
    let binary = kubelet.binary.clone();
    let mut records = Vec::new();
    let live_evidence = if live_host {
        Some(rt.block_on(live::check(snapshot, host, &opts.live, cache, &mut records)))
    } else {
        None
    };

    // Version: the override, else the binary's Go build information (read, never run),
    // else — opt-in, live hosts only, and only for a process that passes the identity
    // checks — the binary's `--version`, else kubernetes_build_info from an open read-only
    // port. (The Node's status is the last source, in evaluate/version/.)
    let start = Instant::now();
    let mut error: Option<String> = None;
    let process_key = (kubelet.pid, kubelet.start_time_ticks);
    let cached_version = cache
        .version
        .as_ref()
        .filter(|(k, _, _)| *k == process_key)
        .map(|(_, v, src)| (v.clone(), *src));
    let add = |error: &mut Option<String>, e: String| {
        *error = Some(match error.take() {
            Some(prev) => format!("{prev}; {e}"),
            None => e,
        });
    };
    let found: Option<(String, VersionSource)> = if let Some(v) = &opts.version_override {
        Some((v.clone(), VersionSource::Override))
    } else if cached_version.is_some() {
        cached_version
    } else {
        let procfs = live::is_live_proc(host.root());
        let mut found = None;
        match observe::buildinfo::for_process(host, kubelet.pid, &binary, procfs)
            .and_then(|bi| bi.kubernetes_version())
        {
            Ok(v) => found = Some((v, VersionSource::GoBuildInfo)),
            Err(e) => add(&mut error, format!("{binary} Go build information: {e}")),
        }
        if found.is_none() && opts.version_exec {
            let facts = observe::identity::HostFacts::read(host, procfs);
            let who = observe::process::ProcInfo {
                pid: kubelet.pid,
                argv: Vec::new(),
                exe: Some(binary.clone()),
                lossy: false,
            };
            let checks = observe::identity::assess(host, &facts, &who);
            if !live_host || !procfs {
                add(
                    &mut error,
                    "the kubelet's binary is only run on a live host (its /proc is not procfs)"
                        .to_string(),
                );
            } else if !checks.credible() {
                add(
                    &mut error,
                    format!(
                        "{binary} not run: it fails the identity checks ({})",
                        checks.failures.join("; ")
                    ),
                );
            } else {
                match rt.block_on(version::version_from_binary(
                    host.root(),
                    &binary,
                    opts.version_timeout,
                )) {
                    Ok(v) => found = Some((v, VersionSource::Binary)),
                    Err(e) => add(&mut error, format!("{binary} --version: {e}")),
                }
            }
        }
        if found.is_none() {
            if let Some(target) = live_evidence
                .as_ref()
                .filter(|l| matches!(&l.read_only, Some(Ok(a)) if a.healthz.is_some() || a.pods.is_some()))
                .and_then(|l| l.read_only_target.as_deref())
                .and_then(|t| t.parse::<std::net::SocketAddr>().ok())
            {
                match rt.block_on(live::http::http_get(target, "/metrics", &opts.live.timeouts)) {
                    Ok((200, body)) => match version::parse_build_info(&String::from_utf8_lossy(&body)) {
                        Some(v) => found = Some((v, VersionSource::MetricsBuildInfo)),
                        None => add(&mut error, format!("no kubernetes_build_info on {target}/metrics")),
                    },
                    Ok((code, _)) => add(&mut error, format!("{target}/metrics answered {code}")),
                    Err(e) => add(&mut error, format!("{target}/metrics: {e}")),
                }
            }
        }
        found
    };
    // On a host tree on disk nothing is run or checked: no version step to report.
    if opts.version_override.is_none() && live_host {
        records.push(ProbeRecord {
            name: "version",
            success: found.is_some(),
            duration: start.elapsed(),
            error: if found.is_some() { None } else { error.clone() },
        });
    }
    if let Some((v, src)) = found
        .as_ref()
        .filter(|(_, src)| *src != VersionSource::Override)
    {
        cache.version = Some((process_key, v.clone(), *src));
    }
    snapshot.probes.extend(records);
    snapshot.live = live_evidence;
    if let Some(k) = snapshot.kubelet.as_mut() {
        match found {
            Some((v, source)) => {
                k.version = Some(v);
                k.version_source = Some(source);
            }
            None => k.version_error = error,
        }
    }
}

impl Observer {
    /// Observe the host and complete the snapshot (the agent's evaluation): the discovery,
    /// the TLS scans, the kubelet's version and its running configuration are reused
    /// between calls while they are still valid.
    pub fn observe_complete(
        &mut self,
        opts: &EnrichOptions,
        cluster: Option<&Cluster>,
        rt: &tokio::runtime::Handle,
    ) -> Snapshot {
        let mut s = self.observe();
        complete(
            &mut s,
            &self.host,
            opts,
            &mut self.scans,
            &mut self.configz,
            cluster,
            rt,
        );
        s
    }
}

/// Observe the host once and complete the snapshot (`check`): nothing is reused.
pub fn observe_complete(
    host: &HostRoot,
    opts: &ObserveOptions,
    enrich_opts: &EnrichOptions,
    cluster: Option<&Cluster>,
    rt: &tokio::runtime::Handle,
) -> Snapshot {
    let mut s = observe::observe(host, opts);
    complete(
        &mut s,
        host,
        enrich_opts,
        &mut ScanCache::default(),
        &mut ConfigzCache::default(),
        cluster,
        rt,
    );
    s
}

/// Everything after the host's files and processes, the same for `check` and `serve`: the
/// version and live checks, the API's view, the running configuration (which needs both:
/// the kubelet's listeners and the API client); last, the kubelet's version is handed to
/// its configuration model ([`Snapshot::settle_kubelet_version`]).
fn complete(
    s: &mut Snapshot,
    host: &HostRoot,
    enrich_opts: &EnrichOptions,
    scans: &mut ScanCache,
    configz: &mut ConfigzCache,
    cluster: Option<&Cluster>,
    rt: &tokio::runtime::Handle,
) {
    enrich(s, host, enrich_opts, scans, rt);
    attach_cluster(s, cluster);
    // The Node's status is the last version source (evaluate/version/): when it names
    // the version, the version step has not failed (release binaries record no version in
    // their Go build information, and the read-only port is closed on a hardened node).
    if s.node_kubelet_version().is_some() {
        if let Some(p) = s
            .probes
            .iter_mut()
            .find(|p| p.name == "version" && !p.success)
        {
            p.success = true;
            p.error = None;
        }
    }
    attach_running_config(s, &enrich_opts.running_config, cluster, configz, rt);
    s.settle_kubelet_version();
}

/// Copy the API's view into the snapshot (a read lock and a clone: never waits for the
/// API), with its observation steps (`cluster::probe_records`).
fn attach_cluster(snapshot: &mut Snapshot, cluster: Option<&Cluster>) {
    if let Some(c) = cluster {
        let view = c.view();
        snapshot.probes.extend(cluster::probe_records(&view));
        snapshot.cluster = Some(view);
    }
}

/// Read the kubelet's running configuration (`--read-running-config`) into the snapshot,
/// with its observation step `configz`. Bounded by the request timeout of each route (a
/// few seconds); a successful read is reused for the same kubelet process.
fn attach_running_config(
    snapshot: &mut Snapshot,
    opts: &RunningConfigOptions,
    cluster: Option<&Cluster>,
    cache: &mut ConfigzCache,
    rt: &tokio::runtime::Handle,
) {
    if let Some((rc, record)) = rt.block_on(running_config::read(snapshot, opts, cluster, cache)) {
        snapshot.probes.push(record);
        snapshot.running_config = Some(rc);
    }
}
