//! The agent: bind, then evaluate every `interval` and publish the exposition.
//!
//! Each evaluation (observe → evaluate → render) runs on the blocking pool, so host I/O
//! never stalls the HTTP server. An evaluation that panics is logged and skipped: the
//! previous exposition stays on `/metrics` (its `last_evaluation_timestamp` ages, which is
//! what staleness alerts watch) and the next tick tries again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use crate::evaluate::policy::Policy;
use crate::evaluate::{self, summarize, ControlResult};
use crate::io::host::HostRoot;
use crate::model::file::HostError;
use crate::model::snapshot::Snapshot;
use crate::observe::cluster::{self, Cluster, ClusterOptions};
use crate::observe::live::{self, LiveOptions, ScanCache};
use crate::observe::running_config::{self, ConfigzCache, RunningConfigOptions};
use crate::observe::watch::{OwnFile, Trigger, Watch};
use crate::observe::{self, version, ObserveOptions, Observer};
use crate::publish::auth::Authenticator;
use crate::publish::drift::{DriftOptions, Tracker};
use crate::publish::listener::Limits;
use crate::publish::metrics::{self, Exposition, MetricsInput};
use crate::publish::report::discovery_state;
use crate::publish::server::{self, AppState};
use crate::publish::tls::{ReloadingResolver, TlsError, TlsSource};

/// This build's version (`kubelet_sentinel_build_info{version}`).
pub const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");
/// This build's git revision (`kubelet_sentinel_build_info{revision}`), from `build.rs`.
pub const BUILD_REVISION: &str = match option_env!("KUBELET_SENTINEL_REVISION") {
    Some(r) => r,
    None => "unknown",
};

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Configuration of `serve`.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where the host's root filesystem is mounted.
    pub host_root: PathBuf,
    /// Node name for every series (default: the host's hostname).
    pub node_name: Option<String>,
    /// Pin the kubelet to this pid.
    pub kubelet_pid: Option<i32>,
    /// Time between evaluations (must be positive).
    pub interval: Duration,
    pub listen: SocketAddr,
    /// Where the health probes (`/healthz`, `/readyz`) are served, plain HTTP, apart from
    /// `/metrics` (`--health-listen-address`).
    pub health_listen: SocketAddr,
    pub policy: Policy,
    /// Cap on any single host file read, in bytes.
    pub max_read_bytes: u64,
    /// Live probes and version detection.
    pub enrich: EnrichOptions,
    /// The agent's own state dir (baseline, last-seen state).
    pub state_dir: PathBuf,
    /// `--baseline-from-policy`.
    pub baseline_from_policy: bool,
    /// Time between change checks (fingerprints of the files read, the kubelet process).
    pub watch_interval: Duration,
    /// The Kubernetes API (`--api-access`, `--kubeconfig`).
    pub cluster: ClusterOptions,
    /// HTTPS and authentication of `/metrics`.
    pub metrics: MetricsOptions,
}

/// How `/metrics` is protected (`--metrics-tls-*`, `--metrics-auth`).
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// HTTPS only, with this certificate; `None`: plain HTTP.
    pub tls: Option<TlsSource>,
    /// `--metrics-auth kubernetes`: TokenReview + SubjectAccessReview for every scrape.
    pub auth: bool,
    /// Bound on each review.
    pub auth_timeout: Duration,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            tls: None,
            auth: false,
            auth_timeout: crate::publish::auth::REVIEW_TIMEOUT,
        }
    }
}

/// How the observation is completed with live evidence and the kubelet's version.
#[derive(Debug, Clone)]
pub struct EnrichOptions {
    pub live: LiveOptions,
    /// Run the kubelet's own binary with `--version` (live hosts only).
    pub version_exec: bool,
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

/// Complete a snapshot with the kubelet's version and the live probes. Runs on a blocking
/// thread and drives the async probes on `rt`; every probe is bounded by its timeouts.
pub fn enrich(
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
        Some(rt.block_on(live::probe(snapshot, host, &opts.live, cache, &mut records)))
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
    let found: Option<(String, &'static str)> = if let Some(v) = &opts.version_override {
        Some((v.clone(), "override"))
    } else if cached_version.is_some() {
        cached_version
    } else {
        let procfs = live::is_live_proc(host.root());
        let mut found = None;
        match observe::buildinfo::for_process(host, kubelet.pid, &binary, procfs)
            .and_then(|bi| bi.kubernetes_version())
        {
            Ok(v) => found = Some((v, "buildinfo")),
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
                    Ok(v) => found = Some((v, "binary")),
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
                match rt.block_on(crate::observe::live::http::http_get(target, "/metrics", &opts.live.timeouts)) {
                    Ok((200, body)) => match version::parse_build_info(&String::from_utf8_lossy(&body)) {
                        Some(v) => found = Some((v, "build_info")),
                        None => add(&mut error, format!("no kubernetes_build_info on {target}/metrics")),
                    },
                    Ok((code, _)) => add(&mut error, format!("{target}/metrics answered {code}")),
                    Err(e) => add(&mut error, format!("{target}/metrics: {e}")),
                }
            }
        }
        found
    };
    // On a host tree on disk nothing is run or probed: no version step to report.
    if opts.version_override.is_none() && live_host {
        records.push(crate::model::snapshot::ProbeRecord {
            name: "version",
            success: found.is_some(),
            duration: start.elapsed(),
            error: if found.is_some() { None } else { error.clone() },
        });
    }
    if let Some((v, src)) = found.as_ref().filter(|(_, src)| *src != "override") {
        cache.version = Some((process_key, v.clone(), src));
    }
    snapshot.probes.extend(records);
    snapshot.live = live_evidence;
    if let Some(k) = snapshot.kubelet.as_mut() {
        match found {
            Some((v, source)) => {
                k.version = Some(v);
                k.version_source = Some(source.to_string());
            }
            None => k.version_error = error,
        }
    }
}

/// Why the agent could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("--host-root: {0}")]
    HostRoot(#[from] HostError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the evaluation and watch intervals must be positive")]
    ZeroInterval,
    #[error("HTTP server failed: {0}")]
    Server(#[source] std::io::Error),
    #[error("HTTP server task failed: {0}")]
    ServerTask(#[source] tokio::task::JoinError),
    #[error("HTTP server stopped unexpectedly")]
    ServerStopped,
    #[error("Kubernetes API: {0}")]
    Cluster(#[from] cluster::ClientError),
    #[error("metrics TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("--metrics-auth=kubernetes needs the Kubernetes API to review scrape tokens, and there is none: {0} (run in a cluster with a service account, give --kubeconfig, or use --metrics-auth=none)")]
    MetricsAuthWithoutApi(String),
}

/// Observe the host and evaluate the controls once (used by `check`; `serve` does the same
/// through a long-lived [`Observer`] whose discovery cache survives between evaluations).
/// The duration covers observation and evaluation.
pub fn evaluate_once(
    host: &HostRoot,
    opts: &ObserveOptions,
    policy: &Policy,
) -> (Snapshot, Vec<ControlResult>, Duration) {
    evaluate_with(|| observe::observe(host, opts), policy)
}

/// `check`: observe, enrich with version and live probes and the API's view (when
/// `cluster` is given), evaluate.
pub fn check_once(
    host: &HostRoot,
    opts: &ObserveOptions,
    enrich_opts: &EnrichOptions,
    policy: &Policy,
    cluster: Option<&Cluster>,
    rt: &tokio::runtime::Handle,
) -> (Snapshot, Vec<ControlResult>, Duration) {
    evaluate_with(
        || {
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
        },
        policy,
    )
}

/// Everything after the host's files and processes, the same for `check` and `serve`: the
/// version and live probes, the API's view, the running configuration (which needs both:
/// the kubelet's listeners and the API client).
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

fn evaluate_with(
    observe: impl FnOnce() -> Snapshot,
    policy: &Policy,
) -> (Snapshot, Vec<ControlResult>, Duration) {
    let start = Instant::now();
    let mut snapshot = observe();
    snapshot.settle_kubelet_version();
    let results = evaluate::evaluate(&snapshot, policy);
    (snapshot, results, start.elapsed())
}

/// What one evaluation cycle produced.
struct Cycle {
    exposition: Exposition,
    snapshot: Snapshot,
    results: Vec<ControlResult>,
    duration: Duration,
}

/// State carried between evaluations: the discovery cache, the TLS scan cache, the drift
/// tracker and the armed change watch.
pub struct Carried {
    observer: Observer,
    scans: ScanCache,
    configz: ConfigzCache,
    tracker: Tracker,
    watch: Watch,
    /// Drift and regression transitions, for `--events`.
    transitions: crate::publish::events::Transitions,
}

impl Carried {
    /// Fresh state (opening the state dir reads the stored baseline: blocking I/O).
    pub fn new(host: HostRoot, opts: ObserveOptions, drift: DriftOptions) -> Carried {
        Carried {
            observer: Observer::new(host, opts),
            scans: ScanCache::default(),
            configz: ConfigzCache::default(),
            tracker: Tracker::open(drift, now_unix()),
            watch: Watch::default(),
            transitions: Default::default(),
        }
    }

    /// The per-second change check.
    pub fn check_watch(&mut self) -> Option<Trigger> {
        self.watch.check(self.observer.host())
    }
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One cycle: observe, enrich, evaluate and render (blocking: host I/O; the live probes
/// run on the runtime through `rt`).
fn cycle(
    carried: &mut Carried,
    policy: &Policy,
    enrich_opts: &EnrichOptions,
    cluster: Option<&Cluster>,
    events: Option<&crate::publish::events::Poster>,
    rt: &tokio::runtime::Handle,
) -> Cycle {
    let (snapshot, results, duration) = evaluate_with(
        || {
            let mut s = carried.observer.observe();
            complete(
                &mut s,
                carried.observer.host(),
                enrich_opts,
                &mut carried.scans,
                &mut carried.configz,
                cluster,
                rt,
            );
            s
        },
        policy,
    );
    let risky_pods = evaluate::pod_security::risky_pod_series(&snapshot, policy);
    let drift = carried
        .tracker
        .update(&snapshot, &results, snapshot.taken_at);
    let notices = carried.transitions.notices(&drift, &results);
    if let Some(e) = events {
        e.notify(notices);
    }
    let (baseline_path, baseline_fp) = carried.tracker.baseline_watch();
    carried.watch = Watch::arm(carried.observer.host(), &snapshot).with_baseline(
        OwnFile::new(move || baseline_path.fingerprint()),
        baseline_fp,
    );
    let exposition = metrics::render(&MetricsInput {
        node: &snapshot.node,
        snapshot: &snapshot,
        results: &results,
        evaluation_duration: duration,
        evaluated_at: snapshot.taken_at,
        build_version: BUILD_VERSION,
        build_revision: BUILD_REVISION,
        drift: Some(&drift),
        risky_pods: &risky_pods,
    });
    Cycle {
        exposition,
        snapshot,
        results,
        duration,
    }
}

/// Log an observation step when it starts failing (with why) and when it recovers, not
/// at every evaluation.
fn log_probe_changes(
    failing: &mut std::collections::BTreeMap<&'static str, String>,
    probes: &[crate::model::snapshot::ProbeRecord],
) {
    for p in probes {
        match (p.success, failing.contains_key(p.name)) {
            (false, false) => {
                let error = p.error.clone().unwrap_or_default();
                tracing::warn!(probe = p.name, %error, "observation step failing");
                failing.insert(p.name, error);
            }
            (true, true) => {
                tracing::info!(probe = p.name, "observation step recovered");
                failing.remove(p.name);
            }
            _ => {}
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

/// Evaluate forever, publishing each exposition into `state`. `step` runs on the blocking
/// pool with a state made by `init` (the [`Carried`] observer and drift tracker); the
/// state travels into each task and back. After a panic it is gone, and the next cycle
/// starts from a fresh one (for the observer: an empty discovery cache, i.e. a full scan;
/// for the tracker: the baseline re-read from the state dir).
///
/// Full evaluations run every `interval`. Every `watch_interval`, `watch` (cheap: file
/// fingerprints and the kubelet process) runs between them; when it reports a change,
/// an evaluation runs at once and the next full one is due `interval` later.
async fn evaluation_loop<S, I, F, W>(
    interval: Duration,
    watch_interval: Duration,
    state: Arc<AppState>,
    init: I,
    step: F,
    watch: W,
) where
    S: Send + 'static,
    I: Fn() -> S + Send + Sync + 'static,
    F: Fn(&mut S) -> Cycle + Send + Sync + 'static,
    W: Fn(&mut S) -> Option<Trigger> + Send + Sync + 'static,
{
    let (init, step, watch) = (Arc::new(init), Arc::new(step), Arc::new(watch));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut watch_ticker = tokio::time::interval(watch_interval);
    watch_ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut carried: Option<S> = None;
    let mut last_no_kubelet: Option<String> = None;
    let mut failing_probes: std::collections::BTreeMap<&'static str, String> = Default::default();
    loop {
        let full = tokio::select! {
            _ = ticker.tick() => true,
            _ = watch_ticker.tick(), if carried.is_some() => false,
        };
        if !full {
            let Some(mut st) = carried.take() else {
                continue;
            };
            let w = Arc::clone(&watch);
            match tokio::task::spawn_blocking(move || {
                let t = w(&mut st);
                (st, t)
            })
            .await
            {
                Ok((st, trigger)) => {
                    carried = Some(st);
                    match trigger {
                        None => continue,
                        Some(t) => {
                            tracing::debug!(trigger = t.as_str(), "change seen: evaluating now");
                            ticker.reset();
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "the change check failed; its state is rebuilt at the next evaluation");
                    continue;
                }
            }
        }
        let st = carried.take();
        let (step, init) = (Arc::clone(&step), Arc::clone(&init));
        let job = tokio::task::spawn_blocking(move || {
            let mut st = st.unwrap_or_else(|| init());
            let c = step(&mut st);
            (st, c)
        });
        match job.await {
            Ok((st, c)) => {
                carried = Some(st);
                state.publish(c.exposition);
                let s = summarize(&c.results);
                let k = &c.snapshot.kubelet;
                tracing::info!(
                    node = %c.snapshot.node,
                    kubelet = discovery_state(&c.snapshot.discovery),
                    kubelet_pid = k.as_ref().map(|k| k.pid),
                    pass = s.pass,
                    fail = s.fail,
                    unknown = s.unknown,
                    not_applicable = s.not_applicable,
                    duration_ms = c.duration.as_millis() as u64,
                    "evaluation complete"
                );
                // Say it when it changes, not every interval.
                let no_kubelet = c.snapshot.no_kubelet_reason();
                if no_kubelet != last_no_kubelet {
                    match &no_kubelet {
                        Some(reason) => tracing::warn!(
                            %reason,
                            "no usable kubelet: the kubelet's controls are unknown"
                        ),
                        None if last_no_kubelet.is_some() => {
                            tracing::info!("kubelet found again")
                        }
                        None => {}
                    }
                    last_no_kubelet = no_kubelet;
                }
                log_probe_changes(&mut failing_probes, &c.snapshot.probes);
                if c.duration > interval {
                    tracing::warn!(
                        duration_ms = c.duration.as_millis() as u64,
                        interval_ms = interval.as_millis() as u64,
                        "evaluation took longer than the interval"
                    );
                }
            }
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                tracing::error!(
                    panic = panic_message(payload.as_ref()),
                    "evaluation panicked; /metrics keeps the previous evaluation"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "evaluation did not complete; /metrics keeps the previous evaluation");
            }
        }
    }
}

/// Run the agent until SIGTERM/SIGINT: bind, then evaluate every `interval` and serve the
/// latest exposition.
pub async fn run_serve(cfg: AgentConfig) -> Result<(), AgentError> {
    if cfg.interval.is_zero() || cfg.watch_interval.is_zero() {
        return Err(AgentError::ZeroInterval);
    }
    let host = HostRoot::new(&cfg.host_root)?.with_max_read(cfg.max_read_bytes);
    // A certificate that does not load is a start error (before anything else starts).
    let tls = match &cfg.metrics.tls {
        Some(source) => {
            let src = source.clone();
            let resolver = tokio::task::spawn_blocking(move || ReloadingResolver::new(&src))
                .await
                .map_err(|e| TlsError::Config(e.to_string()))??;
            Some(crate::publish::tls::server_config(Arc::new(resolver))?)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| AgentError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(cfg.listen);
    let health_listener = tokio::net::TcpListener::bind(cfg.health_listen)
        .await
        .map_err(|source| AgentError::Bind {
            addr: cfg.health_listen,
            source,
        })?;
    let health_local = health_listener.local_addr().unwrap_or(cfg.health_listen);

    // Until the first evaluation: build_info only (see `publish::server`). Resolving the
    // node name reads the host's hostname, so it goes to the blocking pool too.
    let node = {
        let (h, n) = (host.clone(), cfg.node_name.clone());
        match tokio::task::spawn_blocking(move || observe::node_name(&h, n.as_deref())).await {
            Ok(node) => Some(node),
            Err(e) => {
                tracing::warn!(error = %e, "cannot resolve the node name before the first evaluation");
                None
            }
        }
    };
    let startup = match &node {
        Some(node) => metrics::render_startup(node, BUILD_VERSION, BUILD_REVISION),
        None => Exposition::empty(),
    };
    // The API watches run beside the evaluations from now on; each evaluation copies what
    // they know. Without a node name the pods of this node cannot be selected.
    let cluster = Arc::new(match &node {
        Some(node) => Cluster::connect(&cfg.cluster, node).await?,
        None => Cluster::disabled("the node name is unknown"),
    });
    let events = match (&node, cluster.client()) {
        (Some(node), Some(client)) if cfg.cluster.events => {
            tracing::info!(
                node,
                "posting Events on the Node when a control regresses or drifts"
            );
            Some(crate::publish::events::start(
                client,
                node.clone(),
                cfg.cluster.request_timeout,
            ))
        }
        _ if cfg.cluster.events => {
            tracing::warn!(
                reason = cluster.no_access_reason().unwrap_or("no API client"),
                "--events needs API access: no events will be posted"
            );
            None
        }
        _ => None,
    };
    let auth = if cfg.metrics.auth {
        match cluster.client() {
            Some(client) => Some(Arc::new(Authenticator::new(
                client,
                cfg.metrics.auth_timeout,
            ))),
            None => {
                return Err(AgentError::MetricsAuthWithoutApi(
                    cluster
                        .no_access_reason()
                        .unwrap_or("no API client")
                        .to_string(),
                ))
            }
        }
    } else {
        None
    };
    let state = Arc::new(AppState::new(startup));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    if auth.is_some() && tls.is_none() {
        tracing::warn!(
            "--metrics-auth=kubernetes without TLS: scrapers' bearer tokens travel in clear \
             (add --metrics-tls-self-signed or --metrics-tls-cert/--metrics-tls-key)"
        );
    }
    let mut server = tokio::spawn(server::serve_on(
        listener,
        tls.clone(),
        server::router(Arc::clone(&state), auth.clone()),
        Limits::METRICS,
        stop(stop_rx.clone()),
    ));
    let mut health = tokio::spawn(server::serve_on(
        health_listener,
        None,
        server::health_router(Arc::clone(&state)),
        Limits::HEALTH,
        stop(stop_rx),
    ));
    tracing::info!(
        address = %health_local,
        "health probes: http://{health_local}/healthz and /readyz"
    );
    tracing::info!(
        address = %local,
        version = BUILD_VERSION,
        revision = BUILD_REVISION,
        interval_s = cfg.interval.as_secs_f64(),
        metrics_auth = if auth.is_some() { "kubernetes" } else { "none" },
        "listening: open {scheme}://{local}/metrics"
    );

    let opts = ObserveOptions {
        node_name: cfg.node_name.clone(),
        kubelet_pid: cfg.kubelet_pid,
    };
    let policy = cfg.policy;
    let enrich_opts = cfg.enrich;
    let drift = DriftOptions {
        state_dir: cfg.state_dir.clone(),
        from_policy: cfg.baseline_from_policy,
        agent_version: BUILD_VERSION.to_string(),
    };
    tracing::info!(
        state_dir = %cfg.state_dir.display(),
        watch_interval_s = cfg.watch_interval.as_secs_f64(),
        baseline_from_policy = cfg.baseline_from_policy,
        "drift detection"
    );
    let rt = tokio::runtime::Handle::current();
    let evaluations = evaluation_loop(
        cfg.interval,
        cfg.watch_interval,
        Arc::clone(&state),
        move || Carried::new(host.clone(), opts.clone(), drift.clone()),
        move |carried: &mut Carried| {
            cycle(
                carried,
                &policy,
                &enrich_opts,
                Some(&*cluster),
                events.as_ref(),
                &rt,
            )
        },
        Carried::check_watch,
    );

    tokio::select! {
        signal = server::shutdown_signal() => {
            tracing::info!(signal, "shutting down");
        }
        res = &mut server => {
            health.abort();
            return match res {
                Ok(Ok(())) => Err(AgentError::ServerStopped),
                Ok(Err(e)) => Err(AgentError::Server(e)),
                Err(e) => Err(AgentError::ServerTask(e)),
            };
        }
        res = &mut health => {
            server.abort();
            return match res {
                Ok(Ok(())) => Err(AgentError::ServerStopped),
                Ok(Err(e)) => Err(AgentError::Server(e)),
                Err(e) => Err(AgentError::ServerTask(e)),
            };
        }
        () = evaluations => {
            // The loop never ends; treat it like a server stop if it ever does.
            return Err(AgentError::ServerStopped);
        }
    }

    // Stop accepting, let in-flight scrapes finish (bounded).
    let _ = stop_tx.send(true);
    let both = async {
        let (m, h) = tokio::join!(&mut server, &mut health);
        // The metrics server's outcome, else the health server's.
        match (m, h) {
            (Ok(Ok(())), h) => h,
            (m, _) => m,
        }
    };
    match tokio::time::timeout(SHUTDOWN_GRACE, both).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(AgentError::Server(e)),
        Ok(Err(e)) => Err(AgentError::ServerTask(e)),
        Err(_) => {
            tracing::warn!(
                grace_s = SHUTDOWN_GRACE.as_secs(),
                "connections still open after the grace period; exiting"
            );
            server.abort();
            health.abort();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluate_once_on_an_empty_host() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostRoot::new(dir.path()).unwrap();
        let opts = ObserveOptions {
            node_name: Some("node-x".into()),
            kubelet_pid: None,
        };
        let (snapshot, results, _) = evaluate_once(&host, &opts, &Policy::embedded());
        assert_eq!(snapshot.node, "node-x");
        assert!(snapshot.kubelet.is_none());
        let state_dir = tempfile::tempdir().unwrap();
        let mut carried = Carried::new(
            host,
            opts,
            DriftOptions {
                state_dir: state_dir.path().to_path_buf(),
                from_policy: false,
                agent_version: "test".into(),
            },
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let c = cycle(
            &mut carried,
            &Policy::embedded(),
            &EnrichOptions::default(),
            None,
            None,
            rt.handle(),
        );
        assert!(c
            .exposition
            .text
            .contains("kubelet_sentinel_kubelet_up{node=\"node-x\"} 0"));
        assert_eq!(c.results.len(), results.len());
        // No kubelet: no baseline is taken, nothing written but nothing to compare either.
        assert!(carried.tracker.baseline().is_none());
        assert!(!c.exposition.text.contains("kubelet_sentinel_control_drift"));
        assert!(c
            .exposition
            .text
            .contains("kubelet_sentinel_config_changes_total{node=\"node-x\",kind=\"restart\"} 0"));
        assert_eq!(carried.check_watch(), None);
    }

    fn fake_cycle(tag: &str) -> Cycle {
        let snapshot = Snapshot {
            node: "n".into(),
            taken_at: 0.0,
            discovery: crate::model::snapshot::Discovery::NotFound {
                reason: "none".into(),
            },
            kubelet: None,
            apiserver: None,
            probes: Vec::new(),
            live: None,
            cluster: None,
            running_config: None,
        };
        Cycle {
            exposition: Exposition {
                text: tag.to_string(),
                openmetrics: format!("{tag}\n# EOF\n"),
            },
            snapshot,
            results: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_evaluation_keeps_the_previous_exposition() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Mutex;
        let state = Arc::new(AppState::new(Exposition::empty()));
        let inits = Arc::new(AtomicUsize::new(0));
        // (call number, what /metrics served when the call started)
        let seen: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
        let (st, i, sn) = (Arc::clone(&state), Arc::clone(&inits), Arc::clone(&seen));
        let calls = AtomicUsize::new(0);
        let lp = tokio::spawn(evaluation_loop(
            Duration::from_millis(5),
            Duration::from_secs(3600),
            Arc::clone(&state),
            move || i.fetch_add(1, Ordering::SeqCst),
            move |_: &mut usize| {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                sn.lock().unwrap().push((n, st.current().text.clone()));
                if n == 2 {
                    panic!("injected");
                }
                // From the third call on, keep publishing "cycle3": the poll below must not
                // be able to miss it when cycles outpace it (5 ms interval on a busy machine).
                fake_cycle(&format!("cycle{}", n.min(3)))
            },
            |_: &mut usize| None,
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while state.current().text != "cycle3" {
            assert!(Instant::now() < deadline, "no third cycle");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lp.abort();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[0], (1, String::new()));
        assert_eq!(seen[1], (2, "cycle1".to_string()));
        // After the panic, /metrics still served cycle 1, and the loop went on.
        assert_eq!(seen[2], (3, "cycle1".to_string()));
        assert!(state.is_ready());
        // The carried state was lost with the panic and made afresh once.
        assert_eq!(inits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_seen_by_the_watch_evaluates_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let state = Arc::new(AppState::new(Exposition::empty()));
        let cycles = Arc::new(AtomicUsize::new(0));
        let watches = Arc::new(AtomicUsize::new(0));
        let (c, w) = (Arc::clone(&cycles), Arc::clone(&watches));
        // Full evaluations hourly; the watch reports a change at its third check only.
        let lp = tokio::spawn(evaluation_loop(
            Duration::from_secs(3600),
            Duration::from_millis(10),
            Arc::clone(&state),
            || 0usize,
            move |_: &mut usize| {
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                fake_cycle(&format!("cycle{n}"))
            },
            move |_: &mut usize| {
                (w.fetch_add(1, Ordering::SeqCst) + 1 == 3).then_some(Trigger::File)
            },
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while state.current().text != "cycle2" {
            assert!(
                Instant::now() < deadline,
                "the change did not trigger an evaluation"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Let the watch run on: no further change, no further evaluation.
        while watches.load(Ordering::SeqCst) < 8 {
            assert!(Instant::now() < deadline, "the watch stopped");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lp.abort();
        assert_eq!(cycles.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn probe_failures_are_tracked_from_start_to_recovery() {
        use crate::model::snapshot::ProbeRecord;
        let rec = |success: bool| ProbeRecord {
            name: "config",
            success,
            duration: Duration::ZERO,
            error: (!success).then(|| "config.yaml: permission denied".to_string()),
        };
        let mut failing = std::collections::BTreeMap::new();
        log_probe_changes(&mut failing, &[rec(true)]);
        assert!(failing.is_empty());
        log_probe_changes(&mut failing, &[rec(false)]);
        assert_eq!(
            failing.get("config").map(String::as_str),
            Some("config.yaml: permission denied")
        );
        log_probe_changes(&mut failing, &[rec(false)]);
        assert_eq!(failing.len(), 1);
        log_probe_changes(&mut failing, &[rec(true)]);
        assert!(failing.is_empty());
    }

    #[test]
    fn panic_messages() {
        let p: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_message(p.as_ref()), "boom");
        let p: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_message(p.as_ref()), "bang");
        let p: Box<dyn std::any::Any + Send> = Box::new(1u8);
        assert_eq!(panic_message(p.as_ref()), "non-string panic payload");
    }

    #[tokio::test]
    async fn zero_interval_is_rejected() {
        let cfg = AgentConfig {
            host_root: PathBuf::from("/"),
            node_name: None,
            kubelet_pid: None,
            interval: Duration::ZERO,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            health_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            policy: Policy::embedded(),
            max_read_bytes: 1024,
            enrich: EnrichOptions::default(),
            state_dir: PathBuf::from("/nonexistent"),
            baseline_from_policy: false,
            watch_interval: Duration::from_secs(1),
            cluster: ClusterOptions::default(),
            metrics: MetricsOptions::default(),
        };
        assert!(matches!(
            run_serve(cfg).await,
            Err(AgentError::ZeroInterval)
        ));
    }
}
