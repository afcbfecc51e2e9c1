//! The agent: bind, then evaluate every `interval` and publish the exposition. It only
//! wires the layers: observe produces the complete snapshot (`observe::enrich`), evaluate
//! judges it, publish renders and serves it; the loop is in `agent/evaluation.rs`.
//!
//! Each evaluation (observe → evaluate → render) runs on the blocking pool, so host I/O
//! never stalls the HTTP server. An evaluation that panics is logged and skipped: the
//! previous exposition stays on `/metrics` (its `last_evaluation_timestamp` ages, which is
//! what staleness alerts watch) and the next tick tries again.

mod evaluation;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::evaluation::{cycle, evaluation_loop, Carried};
use crate::evaluate::policy::Policy;
use crate::evaluate::{self, ControlResult};
use crate::io::host::HostRoot;
use crate::io::kube::ClientError;
use crate::model::file::HostError;
use crate::model::snapshot::Snapshot;
use crate::observe::cluster::{Cluster, ClusterOptions};
use crate::observe::enrich::{self, EnrichOptions};
use crate::observe::{self, ObserveOptions};
use crate::publish::auth::Authenticator;
use crate::publish::drift::tracker::DriftOptions;
use crate::publish::listener::Limits;
use crate::publish::metrics::{self, Exposition, ExpositionOptions};
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
    /// Where `/metrics` is served (`--listen-address`); HTTPS when [`MetricsOptions::tls`]
    /// is set.
    pub listen: SocketAddr,
    /// Where the health probes (`/healthz`, `/readyz`) are served, plain HTTP, apart from
    /// `/metrics` (`--health-listen-address`).
    pub health_listen: SocketAddr,
    /// The policy the controls are judged by (the embedded defaults, with `--policy`
    /// layered over them), loaded once at start.
    pub policy: Policy,
    /// Cap on any single host file read, in bytes.
    pub max_read_bytes: u64,
    /// Live checks and version detection.
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

/// How `/metrics` is protected (`--metrics-tls-*`, `--metrics-auth`) and which control
/// series it carries (`--metrics-control-states`, `--metrics-control-info`).
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// HTTPS only, with this certificate; `None`: plain HTTP.
    pub tls: Option<TlsSource>,
    /// `--metrics-auth kubernetes`: TokenReview + SubjectAccessReview for every scrape.
    pub auth: bool,
    /// Bound on each review.
    pub auth_timeout: Duration,
    /// Which control series the page carries.
    pub exposition: ExpositionOptions,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            tls: None,
            auth: false,
            auth_timeout: crate::publish::auth::REVIEW_TIMEOUT,
            exposition: ExpositionOptions::default(),
        }
    }
}

/// Why the agent could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// `host_root` cannot be opened as the host's root.
    #[error("--host-root: {0}")]
    HostRoot(HostError),
    /// A listener (`/metrics` or the health probes') could not bind its address.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The bind error.
        error: std::io::Error,
    },
    /// `interval` or `watch_interval` is zero.
    #[error("the evaluation and watch intervals must be positive")]
    ZeroInterval,
    /// A server (`/metrics` or health) failed, or did not shut down cleanly.
    #[error("HTTP server failed: {0}")]
    Server(std::io::Error),
    /// A server's task panicked or was cancelled.
    #[error("HTTP server task failed: {0}")]
    ServerTask(tokio::task::JoinError),
    /// A server, or the evaluation loop, ended without a shutdown signal.
    #[error("HTTP server stopped unexpectedly")]
    ServerStopped,
    /// The Kubernetes API client could not be set up (e.g. `--api-access on` without usable
    /// credentials).
    #[error("Kubernetes API: {0}")]
    Cluster(ClientError),
    /// The `/metrics` certificate or key could not be loaded, or the self-signed one made.
    #[error("metrics TLS: {0}")]
    Tls(TlsError),
    /// `--metrics-auth kubernetes` without API access; the string says why there is none.
    #[error("--metrics-auth=kubernetes needs the Kubernetes API to review scrape tokens, and there is none: {0} (run in a cluster with a service account, give --kubeconfig, or use --metrics-auth=none)")]
    MetricsAuthWithoutApi(String),
}

/// Observe the host and evaluate the controls once (used by `check`; `serve` does the same
/// through a long-lived [`Observer`](crate::observe::Observer) whose discovery cache survives between evaluations).
/// The duration covers observation and evaluation.
pub fn evaluate_once(
    host: &HostRoot,
    opts: &ObserveOptions,
    policy: &Policy,
) -> (Snapshot, Vec<ControlResult>, Duration) {
    evaluate_with(|| observe::observe(host, opts), policy)
}

/// `check`: observe, complete with version and live checks and the API's view (when
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
        || enrich::observe_complete(host, opts, enrich_opts, cluster, rt),
        policy,
    )
}

fn evaluate_with(
    observe: impl FnOnce() -> Snapshot,
    policy: &Policy,
) -> (Snapshot, Vec<ControlResult>, Duration) {
    let start = Instant::now();
    let snapshot = observe();
    let results = evaluate::evaluate(&snapshot, policy);
    (snapshot, results, start.elapsed())
}

/// Run the agent until SIGTERM/SIGINT: bind, then evaluate every `interval` and serve the
/// latest exposition.
pub async fn run_serve(cfg: AgentConfig) -> Result<(), AgentError> {
    if cfg.interval.is_zero() || cfg.watch_interval.is_zero() {
        return Err(AgentError::ZeroInterval);
    }
    let host = HostRoot::new(&cfg.host_root)
        .map_err(AgentError::HostRoot)?
        .with_max_read(cfg.max_read_bytes);
    // A certificate that does not load is a start error (before anything else starts).
    let tls = match &cfg.metrics.tls {
        Some(source) => {
            let src = source.clone();
            let resolver = tokio::task::spawn_blocking(move || ReloadingResolver::new(&src))
                .await
                .map_err(TlsError::Task)
                .and_then(|r| r)
                .map_err(AgentError::Tls)?;
            Some(crate::publish::tls::server_config(Arc::new(resolver)).map_err(AgentError::Tls)?)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|error| AgentError::Bind {
            addr: cfg.listen,
            error,
        })?;
    let local = listener.local_addr().unwrap_or(cfg.listen);
    let health_listener = tokio::net::TcpListener::bind(cfg.health_listen)
        .await
        .map_err(|error| AgentError::Bind {
            addr: cfg.health_listen,
            error,
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
        Some(node) => Cluster::connect(&cfg.cluster, node)
            .await
            .map_err(AgentError::Cluster)?,
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
    let exposition = cfg.metrics.exposition;
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
                exposition,
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
mod tests;
