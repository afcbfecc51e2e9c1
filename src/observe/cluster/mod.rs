//! The Kubernetes API, beside the evaluation: background watches on the pods of this node
//! and on the namespaces keep a plain-data copy that each evaluation takes (a read lock
//! and a clone: the evaluation never waits for the API).
//!
//! - [`client`]: the client (in-cluster service account or `--kubeconfig`);
//! - [`watch`]: list + watch of one collection, reconnecting with backoff;
//! - [`facts`]: API objects to the facts the Pod Security controls need.

pub mod facts;
pub mod reviews;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::Api;

use crate::io::kube as client;
use crate::io::kube::{ApiAccessMode, ClientError, ClientSource, TokenSource, REQUEST_TIMEOUT};

use crate::model::snapshot::{
    AccessCheck, ApiSource, ClusterView, NamespaceFacts, NodeFacts, PodFacts, ProbeRecord,
};

/// How the agent uses the API.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `--api-access`: auto, on or off.
    pub mode: ApiAccessMode,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// Bound on a list and on opening a watch.
    pub request_timeout: Duration,
    /// `serve --events`: post an Event on the Node when a control regresses or drifts.
    pub events: bool,
    /// `serve --node-pool-labels`: the Node labels whose value names its pool, first
    /// match wins (`kubelet_sentinel_node_info{node_pool}`).
    pub node_pool_labels: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            mode: ApiAccessMode::Auto,
            kubeconfig: None,
            request_timeout: REQUEST_TIMEOUT,
            events: false,
            node_pool_labels: crate::model::label::DEFAULT_POOL_LABELS
                .iter()
                .map(|l| (*l).to_string())
                .collect(),
        }
    }
}

/// The running watches and their shared state. Dropping it stops the watches.
pub struct Cluster {
    access: Result<String, String>,
    /// The client the watches use (none without API access): also what `--metrics-auth
    /// kubernetes` reviews scrape tokens with.
    client: Option<kube::Client>,
    /// The agent's own bearer token, when its configuration has one (for the kubelet's
    /// `/configz`).
    token: Option<TokenSource>,
    pods: watch::Shared<PodFacts>,
    namespaces: watch::Shared<NamespaceFacts>,
    node: watch::Shared<NodeFacts>,
    identity: reviews::Shared,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn shared<F>() -> watch::Shared<F> {
    Arc::new(std::sync::RwLock::new(ApiSource::default()))
}

fn copy<F: Clone>(s: &watch::Shared<F>) -> ApiSource<Vec<F>> {
    s.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

impl Cluster {
    /// No API access, with the reason the controls give.
    pub fn disabled(reason: impl Into<String>) -> Cluster {
        Cluster {
            access: Err(reason.into()),
            client: None,
            token: None,
            pods: shared(),
            namespaces: shared(),
            node: shared(),
            identity: shared(),
            tasks: Vec::new(),
        }
    }

    /// Decide the client from the options and start the watches on the current runtime.
    /// `--api-access=auto` turns a client that cannot be built into "no API access" (with
    /// the error, logged); `on` makes it an error.
    pub async fn connect(opts: &ClusterOptions, node: &str) -> Result<Cluster, ClientError> {
        let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty());
        let source = ClientSource::decide(opts.mode, opts.kubeconfig.as_deref(), in_cluster)?;
        let mut token = None;
        let built = match client::config(&source).await {
            Ok(None) => {
                if opts.events {
                    tracing::warn!(reason = %source.describe(), "--events needs API access: no events will be posted");
                }
                return Ok(Cluster::disabled(source.describe()));
            }
            Ok(Some(config)) => {
                token = TokenSource::of(&config);
                client::client(config)
            }
            Err(e) => Err(e),
        };
        match built {
            Ok(c) => Ok(Cluster::start(
                c,
                node,
                source.describe(),
                opts.request_timeout,
                opts.node_pool_labels.clone(),
            )
            .with_token(token)),
            Err(e) if opts.mode == ApiAccessMode::Auto => {
                tracing::warn!(error = %e, "no Kubernetes API access: the cluster controls are unknown");
                Ok(Cluster::disabled(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// Start watching the pods of `node`, the namespaces and the Node with `client`; the
    /// Node's pool is the value of the first of `pool_labels` it carries.
    pub fn start(
        client: kube::Client,
        node: &str,
        how: String,
        request_timeout: Duration,
        pool_labels: Vec<String>,
    ) -> Cluster {
        let pods = shared::<PodFacts>();
        let namespaces = shared::<NamespaceFacts>();
        let pod_task = tokio::spawn(watch::run(
            Api::<Pod>::all(client.clone()),
            watch::Spec {
                what: "pods",
                fields: Some(format!("spec.nodeName={node}")),
                request_timeout,
                facts: Box::new(facts::pod_facts),
                key: |p: &PodFacts| (p.namespace.clone(), p.name.clone()),
            },
            Arc::clone(&pods),
        ));
        let ns_task = tokio::spawn(watch::run(
            Api::<Namespace>::all(client.clone()),
            watch::Spec {
                what: "namespaces",
                fields: None,
                request_timeout,
                facts: Box::new(facts::namespace_facts),
                key: |n: &NamespaceFacts| (String::new(), n.name.clone()),
            },
            Arc::clone(&namespaces),
        ));
        let node_facts = shared::<NodeFacts>();
        let node_task = tokio::spawn(watch::run(
            Api::<Node>::all(client.clone()),
            watch::Spec {
                what: "node",
                fields: Some(format!("metadata.name={node}")),
                request_timeout,
                facts: Box::new(move |n: &Node| facts::node_facts(n, &pool_labels)),
                key: |n: &NodeFacts| (String::new(), n.name.clone()),
            },
            Arc::clone(&node_facts),
        ));
        let identity = shared::<AccessCheck>();
        let review_task = tokio::spawn(reviews::run(
            Api::<SubjectAccessReview>::all(client.clone()),
            node.to_string(),
            request_timeout,
            Arc::clone(&identity),
        ));
        tracing::info!(access = %how, node, "watching the pods of this node, the namespaces and the node; reviewing the kubelet identity's access");
        Cluster {
            access: Ok(how),
            client: Some(client),
            token: None,
            pods,
            namespaces,
            node: node_facts,
            identity,
            tasks: vec![pod_task, ns_task, node_task, review_task],
        }
    }

    /// The API client, when the agent has API access (for requests beside the watches:
    /// events, reviews of scrapers' tokens).
    pub fn client(&self) -> Option<kube::Client> {
        self.client.clone()
    }

    /// Why there is no API access (`None` when there is).
    pub fn no_access_reason(&self) -> Option<&str> {
        self.access.as_ref().err().map(String::as_str)
    }

    /// Use this bearer token for the kubelet's `/configz`.
    pub fn with_token(mut self, token: Option<TokenSource>) -> Cluster {
        self.token = token;
        self
    }

    /// The agent's own bearer token source, when it has one.
    pub fn token(&self) -> Option<&TokenSource> {
        self.token.as_ref()
    }

    /// How the agent reaches the API, or why it does not.
    pub fn access(&self) -> &Result<String, String> {
        &self.access
    }

    /// A plain-data copy of what the watches know now.
    pub fn view(&self) -> ClusterView {
        match &self.access {
            Err(why) => ClusterView::no_access(why.clone()),
            Ok(how) => ClusterView {
                access: Ok(how.clone()),
                pods: copy(&self.pods),
                namespaces: copy(&self.namespaces),
                node: copy(&self.node),
                identity: copy(&self.identity),
            },
        }
    }

    /// Wait until both collections are listed or have failed once, at most `timeout`
    /// (`check`: one answer, not a wait for a recovery).
    pub async fn wait_synced(&self, timeout: Duration) {
        if self.access.is_err() {
            return;
        }
        fn answered<T>(s: &ApiSource<T>) -> bool {
            s.data.is_some() || s.health != ApiSource::<T>::default().health
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let v = self.view();
            if answered(&v.pods)
                && answered(&v.namespaces)
                && answered(&v.node)
                && answered(&v.identity)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The observation steps of the API watches (`api_pods`, `api_namespaces`, `api_node`)
/// and reviews (`api_identity_reviews`): success while listed and connected, or while the
/// last round of reviews was answered. None when there is no API access.
pub fn probe_records(view: &ClusterView) -> Vec<ProbeRecord> {
    if view.access.is_err() {
        return Vec::new();
    }
    let rec = |name: &'static str, health: &Result<(), String>, duration: Duration| ProbeRecord {
        name,
        success: health.is_ok(),
        duration,
        error: health.as_ref().err().cloned(),
    };
    vec![
        rec("api_pods", &view.pods.health, view.pods.duration),
        rec(
            "api_namespaces",
            &view.namespaces.health,
            view.namespaces.duration,
        ),
        rec("api_node", &view.node.health, view.node.duration),
        rec(
            "api_identity_reviews",
            &view.identity.health,
            view.identity.duration,
        ),
    ]
}
