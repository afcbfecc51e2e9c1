//! The Kubernetes API, beside the evaluation: background watches on the pods of this node
//! and on the namespaces keep a plain-data copy that each evaluation takes (a read lock
//! and a clone: the evaluation never waits for the API).
//!
//! - [`client`]: the client (in-cluster service account or `--kubeconfig`);
//! - [`watch`]: list + watch of one collection, reconnecting with backoff;
//! - [`facts`]: API objects to the facts the Pod Security controls need.

pub mod client;
pub mod events;
pub mod facts;
pub mod reviews;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::Api;

pub use client::{ApiAccessMode, ClientError, Source};

use crate::model::snapshot::{
    AccessCheck, ApiSource, ClusterView, NamespaceFacts, NodeFacts, PodFacts, ProbeRecord,
};

/// Bound on a list and on opening a watch.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How the agent uses the API.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub mode: ApiAccessMode,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// Bound on a list and on opening a watch.
    pub request_timeout: Duration,
    /// `serve --events`: post an Event on the Node when a control regresses or drifts.
    pub events: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            mode: ApiAccessMode::Auto,
            kubeconfig: None,
            request_timeout: REQUEST_TIMEOUT,
            events: false,
        }
    }
}

/// Where the agent's own bearer token is (for `GET /configz` on the kubelet).
#[derive(Clone)]
pub enum TokenSource {
    /// A token written in the kubeconfig.
    Inline(secrecy::SecretString),
    /// A token file, re-read at each use: the in-cluster service-account token
    /// (`/var/run/secrets/kubernetes.io/serviceaccount/token`) rotates.
    File(PathBuf),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            TokenSource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

/// Cap on a token file (service-account tokens are ~1 KiB).
pub const MAX_TOKEN_BYTES: u64 = 64 * 1024;

impl TokenSource {
    /// The token of a client configuration, if it carries one.
    pub fn of(config: &kube::Config) -> Option<TokenSource> {
        let auth = &config.auth_info;
        if let Some(t) = &auth.token {
            return Some(TokenSource::Inline(t.clone()));
        }
        auth.token_file
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(|p| TokenSource::File(PathBuf::from(p)))
    }

    /// The token now (a file is read again, at most [`MAX_TOKEN_BYTES`]).
    pub fn read(&self) -> Result<String, String> {
        use secrecy::ExposeSecret;
        let token = match self {
            TokenSource::Inline(t) => t.expose_secret().to_string(),
            TokenSource::File(p) => {
                // A regular file, capped; a FIFO or device is refused, never read.
                let bytes = crate::host::read_operator_file(p, MAX_TOKEN_BYTES)
                    .map_err(|e| format!("token file {e}"))?;
                String::from_utf8(bytes)
                    .map_err(|_| format!("token file {}: not valid UTF-8", p.display()))?
            }
        };
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err("the token is empty".to_string());
        }
        Ok(token)
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
    events: Option<events::Sender>,
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
            events: None,
            tasks: Vec::new(),
        }
    }

    /// Decide the client from the options and start the watches on the current runtime.
    /// `--api-access=auto` turns a client that cannot be built into "no API access" (with
    /// the error, logged); `on` makes it an error.
    pub async fn connect(opts: &ClusterOptions, node: &str) -> Result<Cluster, ClientError> {
        let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty());
        let source = Source::decide(opts.mode, opts.kubeconfig.as_deref(), in_cluster)?;
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
            Ok(c) => {
                let cluster = Cluster::start(c, node, source.describe(), opts.request_timeout)
                    .with_token(token);
                Ok(if opts.events {
                    cluster.with_events(node, opts.request_timeout)
                } else {
                    cluster
                })
            }
            Err(e) if opts.mode == ApiAccessMode::Auto => {
                tracing::warn!(error = %e, "no Kubernetes API access: the cluster controls are unknown");
                Ok(Cluster::disabled(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// Start watching the pods of `node` and the namespaces with `client`.
    pub fn start(
        client: kube::Client,
        node: &str,
        how: String,
        request_timeout: Duration,
    ) -> Cluster {
        let pods = shared::<PodFacts>();
        let namespaces = shared::<NamespaceFacts>();
        let pod_task = tokio::spawn(watch::run(
            Api::<Pod>::all(client.clone()),
            watch::Spec {
                what: "pods",
                fields: Some(format!("spec.nodeName={node}")),
                request_timeout,
                facts: facts::pod_facts,
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
                facts: facts::namespace_facts,
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
                facts: facts::node_facts,
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
            events: None,
            tasks: vec![pod_task, ns_task, node_task, review_task],
        }
    }

    /// Post Events on the Node for regressions and drifts ([`events`]); nothing without
    /// API access.
    pub fn with_events(mut self, node: &str, timeout: Duration) -> Cluster {
        if let Some(client) = self.client.clone() {
            let (sender, task) = events::start(client, node.to_string(), timeout);
            self.events = Some(sender);
            self.tasks.push(task);
            tracing::info!(
                node,
                "posting Events on the Node when a control regresses or drifts"
            );
        }
        self
    }

    /// Queue notices for the events task (no-op unless events are on).
    pub fn notify(&self, notices: Vec<events::Notice>) {
        if let (Some(sender), false) = (&self.events, notices.is_empty()) {
            sender.send(notices);
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

/// Create `object` (a review, an event) and wait at most `timeout` for the answer: the
/// object the API returns, or one line saying why not (`<what>: no answer within 5s`,
/// `<what>: 403 Forbidden: ...`).
pub async fn create<K>(api: &Api<K>, object: &K, timeout: Duration, what: &str) -> Result<K, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match tokio::time::timeout(
        timeout,
        api.create(&kube::api::PostParams::default(), object),
    )
    .await
    {
        Err(_) => Err(format!(
            "{what}: no answer within {}s",
            timeout.as_secs_f64()
        )),
        Ok(Err(e)) => Err(format!("{what}: {}", watch::describe(&e))),
        Ok(Ok(created)) => Ok(created),
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
