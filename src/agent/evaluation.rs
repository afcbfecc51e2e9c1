//! The evaluation loop: one cycle (observe → evaluate → publish) every interval, or at once
//! when the per-second change watch sees a change; the state carried between cycles.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::{evaluate_with, BUILD_REVISION, BUILD_VERSION};
use crate::evaluate::policy::Policy;
use crate::evaluate::{self, summarize, ControlResult};
use crate::io::host::HostRoot;
use crate::model::snapshot::Snapshot;
use crate::observe::cluster::Cluster;
use crate::observe::enrich::EnrichOptions;
use crate::observe::watch::{OwnFile, Trigger, Watch};
use crate::observe::{ObserveOptions, Observer};
use crate::publish::drift::tracker::{DriftOptions, Tracker};
use crate::publish::metrics::{self, Exposition, ExpositionOptions, MetricsInput};
use crate::publish::report::discovery_state;
use crate::publish::server::AppState;

/// What one evaluation cycle produced.
pub(super) struct Cycle {
    pub(super) exposition: Exposition,
    pub(super) snapshot: Snapshot,
    pub(super) results: Vec<ControlResult>,
    pub(super) duration: Duration,
}

/// State carried between evaluations: the observer (with its discovery, TLS scan and
/// running-configuration caches), the drift tracker and the armed change watch.
pub(super) struct Carried {
    observer: Observer,
    pub(super) tracker: Tracker,
    watch: Watch,
    /// Drift and regression transitions, for `--events`.
    transitions: crate::publish::events::Transitions,
}

impl Carried {
    /// Fresh state (opening the state dir reads the stored baseline: blocking I/O).
    pub(super) fn new(host: HostRoot, opts: ObserveOptions, drift: DriftOptions) -> Carried {
        Carried {
            observer: Observer::new(host, opts),
            tracker: Tracker::open(drift, now_unix()),
            watch: Watch::default(),
            transitions: Default::default(),
        }
    }

    /// The per-second change check.
    pub(super) fn check_watch(&mut self) -> Option<Trigger> {
        self.watch.check(self.observer.host())
    }
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One cycle: observe (completed), evaluate and render (blocking: host I/O; the live checks
/// run on the runtime through `rt`).
pub(super) fn cycle(
    carried: &mut Carried,
    policy: &Policy,
    enrich_opts: &EnrichOptions,
    cluster: Option<&Cluster>,
    events: Option<&crate::publish::events::Poster>,
    exposition: ExpositionOptions,
    rt: &tokio::runtime::Handle,
) -> Cycle {
    let (snapshot, results, duration) = evaluate_with(
        || carried.observer.observe_complete(enrich_opts, cluster, rt),
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
    let (baseline_fingerprint, baseline_fp) = carried.tracker.baseline_watch();
    carried.watch = Watch::arm(carried.observer.host(), &snapshot)
        .with_baseline(OwnFile::new(baseline_fingerprint), baseline_fp);
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
        options: exposition,
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
pub(super) fn log_probe_changes(
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

pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
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
pub(super) async fn evaluation_loop<S, I, F, W>(
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
                    duration_ms = millis(c.duration),
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
                            tracing::info!("kubelet found again");
                        }
                        None => {}
                    }
                    last_no_kubelet = no_kubelet;
                }
                log_probe_changes(&mut failing_probes, &c.snapshot.probes);
                if c.duration > interval {
                    tracing::warn!(
                        duration_ms = millis(c.duration),
                        interval_ms = millis(interval),
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

/// A duration in whole milliseconds for a log field (saturating: no log outlives `u64`).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
