//! List, then watch, one API collection, forever: reconnecting with backoff and keeping a
//! plain-data copy of the objects in a shared [`ApiSource`] that evaluations read.
//!
//! States, as `ApiSource::health` shows them:
//! - `Err("waiting for the first list")` until the first list answers;
//! - `Ok(())` once listed and while the watch is connected (a watch the server ends after
//!   its `timeoutSeconds` is re-opened from the last resourceVersion: not a failure);
//! - `Err(<why>)` after a failed list, an error answer (401, 403, 500), a watch that
//!   disconnects mid-stream or a server that does not answer in time. The objects of the
//!   last list are kept (and said to be stale by the controls) and the collection is listed
//!   again after a backoff (1 s doubling to 30 s); a `410 Gone` (expired resourceVersion)
//!   lists again after 1 s, and a watch the server ends within 1 s of opening it is
//!   re-opened after 1 s: no tight loop against a misbehaving server.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;

use crate::io::kube::describe;
use crate::model::snapshot::ApiSource;

/// The server is asked to end each watch after this long (re-opened at once).
pub const WATCH_TIMEOUT_SECONDS: u32 = 290;
/// First and longest wait before listing again after a failure.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest wait before listing again: the wait doubles from [`BACKOFF_MIN`] after each
/// failure up to this, and is back to the minimum after a successful list.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A shared, watched collection.
pub type Shared<F> = Arc<RwLock<ApiSource<Vec<F>>>>;

/// How one collection is watched.
pub struct Spec<K, F> {
    /// For messages: `pods`, `namespaces`.
    pub what: &'static str,
    /// A field selector (`spec.nodeName=<node>`), if any.
    pub fields: Option<String>,
    /// Bound on a list and on opening a watch.
    pub request_timeout: Duration,
    /// Turns an API object into the plain facts kept (e.g. `facts::pod_facts`; a closure
    /// when the facts depend on options, as the Node's pool on `--node-pool-labels`).
    pub facts: Box<dyn Fn(&K) -> F + Send + Sync>,
    /// The facts' identity, `(namespace, name)` (namespace empty for cluster-scoped
    /// objects): a watch event replaces or removes the entry with the same key.
    pub key: fn(&F) -> (String, String),
}

/// Change a shared collection (also the identity reviews' results, `super::reviews`).
pub(super) fn update<F>(shared: &Shared<F>, f: impl FnOnce(&mut ApiSource<Vec<F>>)) {
    // A poisoned lock only means a reader panicked mid-copy: the data is still whole.
    let mut guard = shared
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut guard);
}

enum Outcome {
    /// List again after the backoff.
    Failed(String),
    /// List again at once (410 Gone: the resourceVersion expired).
    Relist,
}

/// Run forever (the task is aborted when the agent stops).
pub async fn run<K, F>(api: Api<K>, spec: Spec<K, F>, shared: Shared<F>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: Clone + Send + Sync + 'static,
{
    let mut backoff = BACKOFF_MIN;
    loop {
        match list_and_watch(&api, &spec, &shared, &mut backoff).await {
            // Not a failure, but never a tight loop against a server that keeps saying it.
            Outcome::Relist => tokio::time::sleep(BACKOFF_MIN).await,
            Outcome::Failed(why) => {
                tracing::debug!(collection = spec.what, error = %why, "API watch failing");
                update(&shared, |s| s.health = Err(why));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

async fn list_and_watch<K, F>(
    api: &Api<K>,
    spec: &Spec<K, F>,
    shared: &Shared<F>,
    backoff: &mut Duration,
) -> Outcome
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: Clone + Send + Sync + 'static,
{
    let what = spec.what;
    let timeout = spec.request_timeout;
    let mut lp = ListParams::default();
    if let Some(f) = &spec.fields {
        lp = lp.fields(f);
    }
    let start = Instant::now();
    let list = match tokio::time::timeout(timeout, api.list(&lp)).await {
        Err(_) => {
            update(shared, |s| s.duration = start.elapsed());
            return Outcome::Failed(format!(
                "list {what}: no answer within {}s",
                timeout.as_secs_f64()
            ));
        }
        Ok(Err(e)) => {
            update(shared, |s| s.duration = start.elapsed());
            return Outcome::Failed(format!("list {what}: {}", describe(&e)));
        }
        Ok(Ok(list)) => list,
    };
    let mut objects: BTreeMap<(String, String), F> = list
        .items
        .iter()
        .map(|o| {
            let f = (spec.facts)(o);
            ((spec.key)(&f), f)
        })
        .collect();
    let mut version = list.metadata.resource_version.clone().unwrap_or_default();
    let publish = |objects: &BTreeMap<(String, String), F>| {
        let data: Vec<F> = objects.values().cloned().collect();
        update(shared, |s| {
            s.data = Some(data);
            s.health = Ok(());
        });
    };
    update(shared, |s| s.duration = start.elapsed());
    publish(&objects);
    *backoff = BACKOFF_MIN;

    loop {
        let mut wp = WatchParams::default().timeout(WATCH_TIMEOUT_SECONDS);
        if let Some(f) = &spec.fields {
            wp = wp.fields(f);
        }
        let stream = match tokio::time::timeout(timeout, api.watch(&wp, &version)).await {
            Err(_) => {
                return Outcome::Failed(format!(
                    "watch {what}: no answer within {}s",
                    timeout.as_secs_f64()
                ))
            }
            Ok(Err(e)) => return Outcome::Failed(format!("watch {what}: {}", describe(&e))),
            Ok(Ok(s)) => s,
        };
        let mut stream = stream.boxed();
        let opened = Instant::now();
        // The client's read timeout bounds a silent connection; the server ends the watch
        // after WATCH_TIMEOUT_SECONDS.
        loop {
            match stream.try_next().await {
                Ok(None) => {
                    // The server ended the watch (its timeoutSeconds): re-open it from the
                    // last resourceVersion; one that ends at once is re-opened after a pause.
                    if opened.elapsed() < BACKOFF_MIN {
                        tokio::time::sleep(BACKOFF_MIN).await;
                    }
                    break;
                }
                Err(e) => {
                    return Outcome::Failed(format!("watch {what}: disconnected: {}", describe(&e)))
                }
                Ok(Some(event)) => {
                    match event {
                        WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                            if let Some(v) = o.meta().resource_version.clone() {
                                version = v;
                            }
                            let f = (spec.facts)(&o);
                            objects.insert((spec.key)(&f), f);
                        }
                        WatchEvent::Deleted(o) => {
                            if let Some(v) = o.meta().resource_version.clone() {
                                version = v;
                            }
                            let f = (spec.facts)(&o);
                            objects.remove(&(spec.key)(&f));
                        }
                        WatchEvent::Bookmark(b) => {
                            version = b.metadata.resource_version;
                            continue;
                        }
                        WatchEvent::Error(s) if s.code == 410 => return Outcome::Relist,
                        WatchEvent::Error(s) => {
                            return Outcome::Failed(format!(
                                "watch {what}: {}",
                                describe(&kube::Error::Api(s))
                            ))
                        }
                    }
                    publish(&objects);
                }
            }
        }
    }
}
