//! A fake Kubernetes API server for the tests: plain HTTP on 127.0.0.1 (kube accepts an
//! `http://` server in a kubeconfig), a bearer token, and the few endpoints the agent
//! uses, answered with JSON shaped like the real API's (Kubernetes API reference:
//! `PodList`, `NamespaceList`, watch events as JSON lines, `Status` for errors):
//!
//! - `GET /api/v1/pods?fieldSelector=spec.nodeName%3D<node>`: the pods of that node;
//! - `GET /api/v1/namespaces`;
//! - either with `watch=true`: a chunked stream of `{"type":"ADDED","object":…}` lines,
//!   fed by [`FakeApi::push`], held open until the test ends or [`FakeApi::disconnect`].
//!
//! - `GET /api/v1/nodes?fieldSelector=metadata.name%3D<node>` (list and watch) and
//!   `GET /api/v1/nodes/<node>`; `GET /api/v1/nodes/<node>/proxy/configz`;
//! - `POST /apis/authorization.k8s.io/v1/subjectaccessreviews` (allowed when a pattern
//!   given to [`FakeApi::allow`] is a subset of the review's spec), `POST
//!   /apis/authentication.k8s.io/v1/tokenreviews` (tokens from [`FakeApi::add_token`]),
//!   `POST .../events` (recorded).
//!
//! Failure modes ([`Mode`]), for every path or for a path prefix: an error status (401,
//! 403, 500) with a `Status` body, a server that never answers, and one that answers after
//! a delay.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Request, Response};
use serde_json::{json, Value};

/// The token the fake accepts (anything else: 401).
pub const TOKEN: &str = "fake-token-3f9a";

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Every request gets this status with a `Status` body.
    Status(u16),
    /// Every request is accepted and never answered.
    Hang,
    /// Every request is answered normally after this long.
    Delay(Duration),
}

type Watcher = tokio::sync::mpsc::UnboundedSender<Option<Value>>;

/// The watchable collections: `pods`, `namespaces`, `nodes`.
const KINDS: [(&str, &str, &str); 3] = [
    ("pods", "/api/v1/pods", "PodList"),
    ("namespaces", "/api/v1/namespaces", "NamespaceList"),
    ("nodes", "/api/v1/nodes", "NodeList"),
];

#[derive(Default)]
struct State {
    /// Objects per collection (`pods`, `namespaces`, `nodes`).
    objects: std::collections::BTreeMap<&'static str, Vec<Value>>,
    watchers: std::collections::BTreeMap<&'static str, Vec<Watcher>>,
    mode: Option<Mode>,
    /// Modes for paths starting with a prefix (first match wins), before `mode`.
    path_modes: Vec<(String, Mode)>,
    /// Request lines (`GET /api/v1/pods?...`) in order.
    requests: Vec<String>,
    resource_version: u64,
    /// SubjectAccessReview specs that are allowed: a review is allowed when some pattern
    /// is a subset of its `spec` (objects compared key by key, other values equal).
    allowed: Vec<(Value, String)>,
    /// Every SubjectAccessReview `spec` received, in order.
    reviews: Vec<Value>,
    /// Bearer tokens a TokenReview authenticates, with the user info it returns.
    tokens: Vec<(String, Value)>,
    /// Every TokenReview received.
    token_reviews: Vec<Value>,
    /// `/configz` bodies served at `/api/v1/nodes/<node>/proxy/configz`.
    configz: std::collections::BTreeMap<String, Value>,
    /// Events created (`POST .../events`), with the path they were posted to.
    events: Vec<(String, Value)>,
}

/// A running fake API server (its own thread and runtime; stops with the test process).
pub struct FakeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

fn status_body(code: u16) -> Value {
    let (reason, message) = match code {
        401 => ("Unauthorized", "Unauthorized".to_string()),
        403 => (
            "Forbidden",
            "pods is forbidden: User \"system:serviceaccount:kubelet-sentinel:kubelet-sentinel\" cannot list resource \"pods\" in API group \"\" at the cluster scope".to_string(),
        ),
        404 => (
            "NotFound",
            "the server could not find the requested resource".to_string(),
        ),
        410 => ("Expired", "too old resource version".to_string()),
        _ => ("InternalError", "Internal error occurred: etcdserver: request timed out".to_string()),
    };
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn full(code: u16, body: &Value) -> Response<BoxBody<Bytes, std::io::Error>> {
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// `<field>=<value>` out of the query's `fieldSelector` (`spec.nodeName`, `metadata.name`).
fn field_selector(query: &str) -> Option<(String, String)> {
    query.split('&').find_map(|kv| {
        let v = kv.strip_prefix("fieldSelector=")?;
        let v = v.replace("%3D", "=").replace("%3d", "=");
        let (f, val) = v.split_once('=')?;
        Some((f.to_string(), val.to_string()))
    })
}

/// Whether `object` matches a field selector.
fn selected(object: &Value, sel: &Option<(String, String)>) -> bool {
    match sel {
        None => true,
        Some((field, value)) => {
            let mut v = object;
            for part in field.split('.') {
                v = &v[part];
            }
            v == &json!(value)
        }
    }
}

/// Whether `pattern` is a subset of `value`.
fn subset(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Object(p), Value::Object(v)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| subset(pv, vv))),
        _ => pattern == value,
    }
}

impl FakeApi {
    /// Start on a free port.
    pub fn start() -> FakeApi {
        let state = Arc::new(Mutex::new(State {
            resource_version: 1000,
            ..State::default()
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("fake API runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the fake API");
                tx.send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let st = Arc::clone(&st);
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let st = Arc::clone(&st);
                            async move { Ok::<_, Infallible>(handle(st, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fake API address");
        FakeApi { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for the fake (written to `path`).
    pub fn write_kubeconfig(&self, path: &std::path::Path) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: sentinel\n  user:\n    token: {TOKEN}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: sentinel\ncurrent-context: fake\n",
            self.url()
        );
        std::fs::write(path, text).expect("write kubeconfig");
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut s)
    }

    /// How every request is answered (after any [`FakeApi::set_path_mode`] match).
    pub fn set_mode(&self, mode: Mode) {
        self.with(|s| s.mode = Some(mode));
    }

    /// How requests whose path starts with `prefix` are answered (e.g. only the
    /// SubjectAccessReviews fail: `/apis/authorization.k8s.io/`). `Mode::Normal` undoes it.
    pub fn set_path_mode(&self, prefix: &str, mode: Mode) {
        self.with(|s| {
            s.path_modes.retain(|(p, _)| p != prefix);
            if mode != Mode::Normal {
                s.path_modes.push((prefix.to_string(), mode));
            }
        });
    }

    fn set(&self, kind: &'static str, objects: Vec<Value>) {
        self.with(|s| {
            s.objects.insert(kind, objects);
        });
    }

    pub fn set_pods(&self, pods: Vec<Value>) {
        self.set("pods", pods);
    }

    pub fn set_namespaces(&self, namespaces: Vec<Value>) {
        self.set("namespaces", namespaces);
    }

    pub fn set_nodes(&self, nodes: Vec<Value>) {
        self.set("nodes", nodes);
    }

    /// Allow the SubjectAccessReviews whose `spec` contains `pattern`, e.g.
    /// `{"user": "system:node:node-1", "resourceAttributes": {"resource": "secrets"}}`,
    /// with RBAC's reason (`RBAC: allowed by ClusterRoleBinding "fake" ...`). Everything
    /// not allowed is denied.
    pub fn allow(&self, pattern: Value) {
        self.allow_with_reason(
            pattern,
            "RBAC: allowed by ClusterRoleBinding \"fake\" of ClusterRole \"fake\" to Group \"system:nodes\"",
        );
    }

    /// Allow with `reason` (the Node authorizer's allows carry none: `""`).
    pub fn allow_with_reason(&self, pattern: Value, reason: &str) {
        self.with(|s| s.allowed.push((pattern, reason.to_string())));
    }

    /// Forget every [`FakeApi::allow`].
    pub fn deny_all(&self) {
        self.with(|s| s.allowed.clear());
    }

    /// The `spec` of every SubjectAccessReview received.
    pub fn reviews(&self) -> Vec<Value> {
        self.with(|s| s.reviews.clone())
    }

    /// A bearer token that TokenReviews authenticate as `username` in `groups`.
    pub fn add_token(&self, token: &str, username: &str, groups: &[&str]) {
        let user = json!({"username": username, "uid": format!("uid-{username}"),
            "groups": groups});
        self.with(|s| s.tokens.push((token.to_string(), user)));
    }

    /// Every TokenReview received.
    pub fn token_reviews(&self) -> Vec<Value> {
        self.with(|s| s.token_reviews.clone())
    }

    /// Serve `body` at `/api/v1/nodes/<node>/proxy/configz`.
    pub fn set_configz(&self, node: &str, body: Value) {
        self.with(|s| {
            s.configz.insert(node.to_string(), body);
        });
    }

    /// The events created so far: (the path posted to, the object).
    pub fn events(&self) -> Vec<(String, Value)> {
        self.with(|s| s.events.clone())
    }

    /// The request lines seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }

    /// Send a watch event (`ADDED`, `MODIFIED`, `DELETED`) to every open watch of `kind`
    /// (`pods`, `namespaces`, `nodes`), and apply it to the lists.
    pub fn push(&self, kind: &str, event: &str, mut object: Value) {
        let Some(&(kind, _, _)) = KINDS.iter().find(|(k, _, _)| *k == kind) else {
            panic!("no collection {kind}");
        };
        self.with(|s| {
            s.resource_version += 1;
            object["metadata"]["resourceVersion"] = json!(s.resource_version.to_string());
            let name = object["metadata"]["name"].clone();
            let ns = object["metadata"]["namespace"].clone();
            let list = s.objects.entry(kind).or_default();
            list.retain(|o| !(o["metadata"]["name"] == name && o["metadata"]["namespace"] == ns));
            if event != "DELETED" {
                list.push(object.clone());
            }
            let line = json!({"type": event, "object": object});
            s.watchers
                .entry(kind)
                .or_default()
                .retain(|w| w.send(Some(line.clone())).is_ok());
        });
    }

    /// Break every open watch mid-stream (the connection is dropped without the final
    /// chunk: the client sees an incomplete body).
    pub fn disconnect(&self) {
        self.with(|s| {
            for w in s.watchers.values_mut().flat_map(|w| w.drain(..)) {
                let _ = w.send(None);
            }
        });
    }

    /// How many watches are open now.
    pub fn open_watches(&self) -> usize {
        self.with(|s| {
            s.watchers
                .values_mut()
                .map(|w| {
                    w.retain(|w| !w.is_closed());
                    w.len()
                })
                .sum()
        })
    }
}

/// Read a request body, at most 1 MiB.
async fn body_json(req: Request<hyper::body::Incoming>) -> Option<Value> {
    let limited = http_body_util::Limited::new(req.into_body(), 1 << 20);
    let bytes = limited.collect().await.ok()?.to_bytes();
    serde_json::from_slice(&bytes).ok()
}

async fn handle(
    st: Arc<Mutex<State>>,
    req: Request<hyper::body::Incoming>,
) -> Response<BoxBody<Bytes, std::io::Error>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mode = {
        let mut s = st.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.requests.push(format!("{method} {path}?{query}"));
        s.path_modes
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .map(|(_, m)| *m)
            .or(s.mode)
            .unwrap_or(Mode::Normal)
    };
    match mode {
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Mode::Delay(d) => tokio::time::sleep(d).await,
        Mode::Status(code) => return full(code, &status_body(code)),
        Mode::Normal => {}
    }
    if auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return full(401, &status_body(401));
    }
    let lock = || st.lock().unwrap_or_else(std::sync::PoisonError::into_inner);

    // POST: reviews and events.
    if method == hyper::Method::POST {
        let Some(body) = body_json(req).await else {
            return full(400, &status_body(400));
        };
        match path.as_str() {
            "/apis/authorization.k8s.io/v1/subjectaccessreviews" => {
                let spec = body["spec"].clone();
                let mut s = lock();
                let allowed = s
                    .allowed
                    .iter()
                    .find(|(p, _)| subset(p, &spec))
                    .map(|(_, why)| why.clone());
                s.reviews.push(spec.clone());
                let mut status = json!({"allowed": allowed.is_some()});
                if let Some(why) = allowed.filter(|w| !w.is_empty()) {
                    status["reason"] = json!(why);
                }
                return full(
                    201,
                    &json!({"kind": "SubjectAccessReview",
                        "apiVersion": "authorization.k8s.io/v1",
                        "metadata": {"creationTimestamp": null}, "spec": spec, "status": status}),
                );
            }
            "/apis/authentication.k8s.io/v1/tokenreviews" => {
                let token = body["spec"]["token"].as_str().unwrap_or("").to_string();
                let mut s = lock();
                s.token_reviews.push(body.clone());
                let status = match s.tokens.iter().find(|(t, _)| *t == token) {
                    Some((_, user)) => json!({"authenticated": true, "user": user,
                        "audiences": ["https://kubernetes.default.svc.cluster.local"]}),
                    None => json!({"authenticated": false,
                        "error": "[invalid bearer token, token lookup failed]"}),
                };
                return full(
                    201,
                    &json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                        "metadata": {"creationTimestamp": null},
                        "spec": {"token": token}, "status": status}),
                );
            }
            p if p.ends_with("/events") => {
                let mut created = body.clone();
                let mut s = lock();
                s.resource_version += 1;
                created["metadata"]["resourceVersion"] = json!(s.resource_version.to_string());
                s.events.push((p.to_string(), body));
                return full(201, &created);
            }
            _ => return full(404, &status_body(404)),
        }
    }

    // GET /api/v1/nodes/<node>/proxy/configz and /api/v1/nodes/<node>.
    if let Some(rest) = path.strip_prefix("/api/v1/nodes/") {
        let s = lock();
        if let Some(node) = rest.strip_suffix("/proxy/configz") {
            return match s.configz.get(node) {
                Some(body) => full(200, body),
                None => full(404, &status_body(404)),
            };
        }
        let found = s
            .objects
            .get("nodes")
            .into_iter()
            .flatten()
            .find(|o| o["metadata"]["name"] == json!(rest))
            .cloned();
        return match found {
            Some(node) => full(200, &node),
            None => full(404, &status_body(404)),
        };
    }

    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let Some(&(kind, _, list_kind)) = KINDS.iter().find(|(_, p, _)| *p == path) else {
        return full(404, &status_body(404));
    };
    let sel = field_selector(&query);
    if !watch {
        let s = lock();
        let items: Vec<Value> = s
            .objects
            .get(kind)
            .into_iter()
            .flatten()
            .filter(|o| selected(o, &sel))
            .cloned()
            .collect();
        let body = json!({"kind": list_kind, "apiVersion": "v1",
            "metadata": {"resourceVersion": s.resource_version.to_string()}, "items": items});
        return full(200, &body);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Option<Value>>();
    lock().watchers.entry(kind).or_default().push(tx);
    let stream = futures_util::stream::unfold((rx, sel), |(mut rx, sel)| async move {
        loop {
            match rx.recv().await {
                // The sender is dropped (test over) or asked to break the stream.
                None | Some(None) => {
                    return Some((
                        Err(std::io::Error::other("watch broken by the fake API")),
                        (rx, sel),
                    ))
                }
                Some(Some(line)) => {
                    if !selected(&line["object"], &sel) {
                        continue;
                    }
                    let mut text = line.to_string();
                    text.push('\n');
                    return Some((Ok(Frame::data(Bytes::from(text))), (rx, sel)));
                }
            }
        }
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

// ------------------------------------------------------------- realistic objects

/// A namespace as the API returns it, with an optional Pod Security enforce level.
pub fn namespace(name: &str, enforce: Option<&str>) -> Value {
    let mut labels = json!({"kubernetes.io/metadata.name": name});
    if let Some(level) = enforce {
        labels["pod-security.kubernetes.io/enforce"] = json!(level);
        labels["pod-security.kubernetes.io/enforce-version"] = json!("latest");
    }
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "uid": format!("uid-ns-{name}"), "resourceVersion": "412",
            "creationTimestamp": "2025-03-02T09:14:11Z", "labels": labels},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"}
    })
}

/// A running pod of a DaemonSet on `node`; `patch` is merged into its `spec`.
pub fn pod(ns: &str, name: &str, node: &str, spec_patch: Value) -> Value {
    let mut spec = json!({
        "nodeName": node,
        "serviceAccountName": "default",
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "terminationGracePeriodSeconds": 30,
        "containers": [{
            "name": "main", "image": "registry.k8s.io/pause:3.10",
            "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File"
        }],
        "volumes": [{"name": "kube-api-access-x2f9k", "projected": {"defaultMode": 420,
            "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}]
    });
    if let (Some(s), Some(p)) = (spec.as_object_mut(), spec_patch.as_object()) {
        for (k, v) in p {
            s.insert(k.clone(), v.clone());
        }
    }
    let owner = name.rsplit_once('-').map(|(o, _)| o).unwrap_or(name);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-pod-{name}"),
            "resourceVersion": "9001", "creationTimestamp": "2025-03-02T09:20:00Z",
            "labels": {"app": owner},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": owner,
                "uid": format!("uid-ds-{owner}"), "controller": true, "blockOwnerDeletion": true}]},
        "spec": spec,
        "status": {"phase": "Running", "hostIP": "10.0.0.11", "podIP": "10.244.1.7",
            "conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": "2025-03-02T09:20:05Z"}],
            "qosClass": "Burstable", "startTime": "2025-03-02T09:20:00Z"}
    })
}

/// A Node as the API returns it, with its kubelet's version.
pub fn node(name: &str, kubelet_version: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-node-{name}"), "resourceVersion": "5120",
            "creationTimestamp": "2025-03-02T09:10:00Z",
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64"}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.11"},
                {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": "2025-03-02T10:00:00Z",
                "lastTransitionTime": "2025-03-02T09:11:00Z"}],
            "nodeInfo": {"machineID": "3c5c0c2b9e7e4d3f", "systemUUID": "ec2a1b2c",
                "bootID": "a4c1d2e3", "kernelVersion": "6.8.0-1021-aws",
                "osImage": "Ubuntu 24.04.1 LTS", "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": kubelet_version, "kubeProxyVersion": kubelet_version,
                "operatingSystem": "linux", "architecture": "amd64"}
        }
    })
}
