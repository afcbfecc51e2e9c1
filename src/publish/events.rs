//! Optional Kubernetes Events on this node's Node object when a control regresses or
//! drifts (`serve --events`), so `kubectl describe node` and event exporters show them
//! next to the kubelet's own events.
//!
//! - Only *transitions* after the agent's first evaluation are announced (a control
//!   already drifted when the agent starts is in its metrics and logs, not re-announced at
//!   every restart); a regression takes precedence over a drift of the same control.
//! - Rate-limited: a token bucket ([`BURST`] events, one more every [`REFILL`]) for the
//!   whole agent, and at most one event per control and kind per [`PER_CONTROL`]. What
//!   the limit drops is counted in the log line of the next event that goes out.
//! - Posting never blocks an evaluation: a bounded queue to a background task; a full
//!   queue drops the event (logged). Each POST has a timeout; failures are logged, never
//!   retried (the metrics keep the state; events are a notification).
//! - Events are `core/v1` Events in the `default` namespace with `involvedObject` the
//!   Node (as the kubelet records its node's events), `type: Warning`, reasons
//!   `ControlRegressed` / `ControlDrifted`, `source.component: kubelet-sentinel`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::Api;

use crate::publish::drift::DriftReport;

/// Events the bucket holds.
pub const BURST: u32 = 10;
/// One token back every this long (at most 60 events an hour after the burst).
pub const REFILL: Duration = Duration::from_secs(60);
/// At most one event per control and kind this often.
pub const PER_CONTROL: Duration = Duration::from_secs(600);
/// Queued events beyond this are dropped.
pub const QUEUE: usize = 64;
/// The namespace node events live in.
pub const NAMESPACE: &str = "default";

/// What happened to a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The control passed in the baseline and now fails (Event reason `ControlRegressed`).
    Regressed,
    /// The control's observed value differs from the baseline's (Event reason
    /// `ControlDrifted`); a regression is announced as such instead.
    Drifted,
}

impl Kind {
    /// The Event's `reason`: `ControlRegressed` or `ControlDrifted`.
    pub fn reason(self) -> &'static str {
        match self {
            Kind::Regressed => "ControlRegressed",
            Kind::Drifted => "ControlDrifted",
        }
    }
}

/// One event to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The control's id.
    pub control: &'static str,
    /// Whether it regressed or drifted.
    pub kind: Kind,
    /// The Event's message for humans (the control's reason, or observed against
    /// baseline), clipped at 1000 bytes (then ending in `…`).
    pub message: String,
}

/// Finds transitions between evaluations (pure; kept in the evaluation loop's state).
#[derive(Debug, Default)]
pub struct Transitions {
    /// Per control: (drifted, regressed) at the previous evaluation. `None` before the
    /// first evaluation.
    previous: Option<BTreeMap<&'static str, (bool, bool)>>,
}

impl Transitions {
    /// The notices for controls that became regressed or drifted since the previous call.
    pub fn notices(
        &mut self,
        report: &DriftReport,
        results: &[crate::evaluate::ControlResult],
    ) -> Vec<Notice> {
        let mut out = Vec::new();
        if let Some(prev) = &self.previous {
            for (id, d) in &report.controls {
                let (was_drifted, was_regressed) = prev.get(id).copied().unwrap_or_default();
                // Only a transition looks anything else up.
                let result = || results.iter().find(|r| r.id == *id);
                if d.regressed && !was_regressed {
                    out.push(Notice {
                        control: id,
                        kind: Kind::Regressed,
                        message: clip(&format!(
                            "{id} regressed: it passed in the baseline and now fails: {}",
                            result().map_or("", |r| r.reason.as_str())
                        )),
                    });
                } else if d.drifted && !was_drifted {
                    let observed = result().map_or("", |r| r.observed.as_str());
                    let base = d.baseline_observed.as_deref().unwrap_or_default();
                    out.push(Notice {
                        control: id,
                        kind: Kind::Drifted,
                        message: clip(&format!(
                            "{id} drifted from the baseline: observed {observed:?}, baseline {base:?}"
                        )),
                    });
                }
            }
        }
        let now = report
            .controls
            .iter()
            .map(|(id, d)| (*id, (d.drifted, d.regressed)))
            .collect();
        self.previous = Some(now);
        out
    }
}

/// Events carry at most this much message (the API allows 1 KiB in the `note` of
/// events.k8s.io; core/v1 is laxer, but a short message is what humans read).
const MAX_MESSAGE: usize = 1000;

fn clip(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The agent-wide and per-control limits, on an explicit clock (tests drive it).
#[derive(Debug)]
pub struct Limiter {
    tokens: f64,
    last: Duration,
    per_control: BTreeMap<(&'static str, Kind), Duration>,
    /// Dropped since the last event that went out.
    pub dropped: u64,
}

impl Limiter {
    /// A limiter with a full bucket ([`BURST`] events), its clock starting at `now`.
    pub fn new(now: Duration) -> Limiter {
        Limiter {
            tokens: f64::from(BURST),
            last: now,
            per_control: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// Whether `n` may go out at `now` (monotonic time since any fixed origin).
    pub fn admit(&mut self, n: &Notice, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last);
        self.last = now;
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() / REFILL.as_secs_f64()).min(f64::from(BURST));
        let key = (n.control, n.kind);
        let recent = self
            .per_control
            .get(&key)
            .is_some_and(|t| now.saturating_sub(*t) < PER_CONTROL);
        if recent || self.tokens < 1.0 {
            self.dropped += 1;
            return false;
        }
        self.tokens -= 1.0;
        self.per_control.insert(key, now);
        // Forget entries that can no longer limit anything (bounded by the control count
        // anyway).
        self.per_control
            .retain(|_, t| now.saturating_sub(*t) < PER_CONTROL);
        true
    }
}

/// The Event for a notice, at `unix_nanos` (nanoseconds since the Unix epoch).
pub fn event(n: &Notice, node: &str, unix_nanos: u128) -> Event {
    // Whole seconds: core/v1 Event timestamps are RFC 3339 seconds.
    let secs = i64::try_from(unix_nanos / 1_000_000_000).unwrap_or(0);
    let time = Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap_or_default());
    Event {
        metadata: ObjectMeta {
            // client-go's recorder names events `<object>.<unique hex>`.
            name: Some(format!("{node}.{unix_nanos:x}")),
            namespace: Some(NAMESPACE.to_string()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Node".to_string()),
            name: Some(node.to_string()),
            // The kubelet refers to its Node by name in the UID field too.
            uid: Some(node.to_string()),
            ..ObjectReference::default()
        },
        reason: Some(n.kind.reason().to_string()),
        message: Some(n.message.clone()),
        type_: Some("Warning".to_string()),
        source: Some(EventSource {
            component: Some("kubelet-sentinel".to_string()),
            host: Some(node.to_string()),
        }),
        reporting_component: Some("kubelet-sentinel".to_string()),
        reporting_instance: Some(node.to_string()),
        first_timestamp: Some(time.clone()),
        last_timestamp: Some(time),
        count: Some(1),
        ..Event::default()
    }
}

/// Now, in nanoseconds since the Unix epoch.
fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The posting task and its queue. Dropping it stops the task.
pub struct Poster {
    queue: tokio::sync::mpsc::Sender<Notice>,
    task: tokio::task::JoinHandle<()>,
}

impl Poster {
    /// Queue notices for the posting task; a full queue drops them (logged).
    pub fn notify(&self, notices: Vec<Notice>) {
        for n in notices {
            if let Err(e) = self.queue.try_send(n) {
                tracing::warn!(error = %e, "event queue full: event dropped");
            }
        }
    }
}

impl Drop for Poster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start the posting task on the current runtime.
pub fn start(client: kube::Client, node: String, timeout: Duration) -> Poster {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Notice>(QUEUE);
    let task = tokio::spawn(async move {
        let api: Api<Event> = Api::namespaced(client, NAMESPACE);
        let origin = tokio::time::Instant::now();
        let mut limiter = Limiter::new(Duration::ZERO);
        while let Some(n) = rx.recv().await {
            if !limiter.admit(&n, origin.elapsed()) {
                tracing::debug!(
                    control = n.control,
                    reason = n.kind.reason(),
                    "event rate-limited"
                );
                continue;
            }
            let dropped = std::mem::take(&mut limiter.dropped);
            let ev = event(&n, &node, unix_nanos());
            match crate::io::kube::create(&api, &ev, timeout, "Event").await {
                Ok(_) => tracing::info!(
                    control = n.control,
                    reason = n.kind.reason(),
                    rate_limited_before = dropped,
                    "event posted on the Node"
                ),
                Err(error) => tracing::warn!(
                    control = n.control,
                    %error,
                    "event could not be posted"
                ),
            }
        }
    });
    Poster { queue: tx, task }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(control: &'static str, kind: Kind) -> Notice {
        Notice {
            control,
            kind,
            message: String::new(),
        }
    }

    #[test]
    fn only_transitions_after_the_first_evaluation_are_notices() {
        use crate::evaluate::{ControlResult, Severity, Status};
        use crate::publish::drift::ControlDrift;
        let drift = |drifted, regressed| ControlDrift {
            drifted,
            regressed,
            baseline_status: Status::Pass,
            baseline_observed: Some("false".into()),
        };
        let report = |a: ControlDrift, b: ControlDrift| DriftReport {
            controls: vec![("anonymous-auth-disabled", a), ("tls-min-version", b)],
            ..DriftReport::default()
        };
        let result = |id: &'static str, observed: &str| ControlResult {
            id,
            title: "",
            family: "",
            severity: Severity::High,
            cis: None,
            practice: "",
            status: Status::Fail,
            observed: observed.into(),
            expected: String::new(),
            source: String::new(),
            reason: format!("{id} reason"),
            remediation: "",
        };
        let results = [
            result("anonymous-auth-disabled", "true"),
            result("tls-min-version", "VersionTLS10"),
        ];
        let mut t = Transitions::default();
        // Already drifted and regressed at the first evaluation: not announced.
        let first = t.notices(&report(drift(true, true), drift(false, false)), &results);
        assert!(first.is_empty(), "{first:?}");
        // The second control drifts, then regresses (the regression is a new notice);
        // the first one, unchanged, says nothing.
        let n = t.notices(&report(drift(true, true), drift(true, false)), &results);
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(
            (n[0].control, n[0].kind),
            ("tls-min-version", Kind::Drifted)
        );
        assert_eq!(
            n[0].message,
            "tls-min-version drifted from the baseline: observed \"VersionTLS10\", baseline \"false\""
        );
        let n = t.notices(&report(drift(true, true), drift(true, true)), &results);
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(
            (n[0].control, n[0].kind),
            ("tls-min-version", Kind::Regressed)
        );
        assert_eq!(
            n[0].message,
            "tls-min-version regressed: it passed in the baseline and now fails: tls-min-version reason"
        );
        // Steady: nothing; back to clean then drifted again: announced again.
        assert!(t
            .notices(&report(drift(true, true), drift(true, true)), &results)
            .is_empty());
        assert!(t
            .notices(&report(drift(true, true), drift(false, false)), &results)
            .is_empty());
        let n = t.notices(&report(drift(true, true), drift(true, false)), &results);
        assert_eq!(
            (n[0].control, n[0].kind),
            ("tls-min-version", Kind::Drifted)
        );
    }

    #[test]
    fn the_limiter_bounds_bursts_and_repeats() {
        let mut l = Limiter::new(Duration::ZERO);
        let t = |s: u64| Duration::from_secs(s);
        // One control: once per PER_CONTROL and kind.
        assert!(l.admit(&notice("a", Kind::Drifted), t(0)));
        assert!(!l.admit(&notice("a", Kind::Drifted), t(1)));
        assert!(l.admit(&notice("a", Kind::Regressed), t(1)));
        assert!(l.admit(&notice("a", Kind::Drifted), t(601)));
        // The bucket: BURST at once, then one per REFILL.
        let mut l = Limiter::new(Duration::ZERO);
        let ids: Vec<&'static str> = vec![
            "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11",
        ];
        let admitted = ids
            .iter()
            .filter(|id| l.admit(&notice(id, Kind::Drifted), t(5)))
            .count();
        assert_eq!(admitted, BURST as usize);
        assert_eq!(l.dropped, 2);
        assert!(!l.admit(&notice("x", Kind::Drifted), t(30)));
        assert!(l.admit(&notice("y", Kind::Drifted), t(66)));
        assert!(!l.admit(&notice("z", Kind::Drifted), t(67)));
    }

    #[test]
    fn events_point_at_the_node() {
        let n = Notice {
            control: "anonymous-auth-disabled",
            kind: Kind::Regressed,
            message: "anonymous-auth-disabled regressed".into(),
        };
        let v = serde_json::to_value(event(&n, "node-1", 1_767_225_600_123_456_789)).unwrap();
        assert_eq!(v["involvedObject"]["kind"], "Node");
        assert_eq!(v["involvedObject"]["name"], "node-1");
        assert_eq!(v["metadata"]["namespace"], "default");
        assert!(v["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("node-1."));
        assert_eq!(v["reason"], "ControlRegressed");
        assert_eq!(v["type"], "Warning");
        assert_eq!(v["source"]["component"], "kubelet-sentinel");
        assert_eq!(v["firstTimestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(v["lastTimestamp"], "2026-01-01T00:00:00Z");
        let long = "é".repeat(800);
        assert!(clip(&long).len() <= MAX_MESSAGE + "…".len());
    }
}
