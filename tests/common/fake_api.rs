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
//! Failure modes ([`Mode`]): an error status (401, 403, 500) with a `Status` body, a
//! server that never answers, and one that answers after a delay.

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

#[derive(Default)]
struct State {
    pods: Vec<Value>,
    namespaces: Vec<Value>,
    mode: Option<Mode>,
    /// Request lines (`GET /api/v1/pods?...`) in order.
    requests: Vec<String>,
    pod_watchers: Vec<Watcher>,
    ns_watchers: Vec<Watcher>,
    resource_version: u64,
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

/// `spec.nodeName=<node>` out of the query's `fieldSelector`.
fn node_selector(query: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let v = kv.strip_prefix("fieldSelector=")?;
        let v = v.replace("%3D", "=").replace("%3d", "=");
        v.strip_prefix("spec.nodeName=").map(str::to_string)
    })
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

    pub fn set_mode(&self, mode: Mode) {
        self.with(|s| s.mode = Some(mode));
    }

    pub fn set_pods(&self, pods: Vec<Value>) {
        self.with(|s| s.pods = pods);
    }

    pub fn set_namespaces(&self, namespaces: Vec<Value>) {
        self.with(|s| s.namespaces = namespaces);
    }

    /// The request lines seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }

    /// Send a watch event (`ADDED`, `MODIFIED`, `DELETED`) to every open watch of pods
    /// (`kind` = "pods") or namespaces, and apply it to the lists.
    pub fn push(&self, kind: &str, event: &str, mut object: Value) {
        self.with(|s| {
            s.resource_version += 1;
            object["metadata"]["resourceVersion"] = json!(s.resource_version.to_string());
            let name = object["metadata"]["name"].clone();
            let ns = object["metadata"]["namespace"].clone();
            let list = if kind == "pods" {
                &mut s.pods
            } else {
                &mut s.namespaces
            };
            list.retain(|o| !(o["metadata"]["name"] == name && o["metadata"]["namespace"] == ns));
            if event != "DELETED" {
                list.push(object.clone());
            }
            let watchers = if kind == "pods" {
                &mut s.pod_watchers
            } else {
                &mut s.ns_watchers
            };
            let line = json!({"type": event, "object": object});
            watchers.retain(|w| w.send(Some(line.clone())).is_ok());
        });
    }

    /// Break every open watch mid-stream (the connection is dropped without the final
    /// chunk: the client sees an incomplete body).
    pub fn disconnect(&self) {
        self.with(|s| {
            for w in s.pod_watchers.drain(..).chain(s.ns_watchers.drain(..)) {
                let _ = w.send(None);
            }
        });
    }

    /// How many watches are open now.
    pub fn open_watches(&self) -> usize {
        self.with(|s| {
            s.pod_watchers.retain(|w| !w.is_closed());
            s.ns_watchers.retain(|w| !w.is_closed());
            s.pod_watchers.len() + s.ns_watchers.len()
        })
    }
}

async fn handle(
    st: Arc<Mutex<State>>,
    req: Request<hyper::body::Incoming>,
) -> Response<BoxBody<Bytes, std::io::Error>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mode = {
        let mut s = st.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.requests
            .push(format!("{} {}?{}", req.method(), path, query));
        s.mode.unwrap_or(Mode::Normal)
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
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let (kind, list_kind) = match path.as_str() {
        "/api/v1/pods" => ("pods", "PodList"),
        "/api/v1/namespaces" => ("namespaces", "NamespaceList"),
        _ => {
            return full(
                404,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "the server could not find the requested resource",
                        "reason": "NotFound", "code": 404}),
            )
        }
    };
    let node = node_selector(&query);
    let keep = |o: &Value| match (&node, kind) {
        (Some(n), "pods") => o["spec"]["nodeName"] == json!(n),
        _ => true,
    };
    if !watch {
        let s = st.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let items: Vec<Value> = if kind == "pods" {
            &s.pods
        } else {
            &s.namespaces
        }
        .iter()
        .filter(|o| keep(o))
        .cloned()
        .collect();
        let body = json!({"kind": list_kind, "apiVersion": "v1",
            "metadata": {"resourceVersion": s.resource_version.to_string()}, "items": items});
        return full(200, &body);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Option<Value>>();
    {
        let mut s = st.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kind == "pods" {
            s.pod_watchers.push(tx);
        } else {
            s.ns_watchers.push(tx);
        }
    }
    let stream = futures_util::stream::unfold((rx, node), |(mut rx, node)| async move {
        loop {
            match rx.recv().await {
                // The sender is dropped (test over) or asked to break the stream.
                None | Some(None) => {
                    return Some((
                        Err(std::io::Error::other("watch broken by the fake API")),
                        (rx, node),
                    ))
                }
                Some(Some(line)) => {
                    if let Some(n) = &node {
                        if line["object"]["spec"]["nodeName"] != json!(n) {
                            continue;
                        }
                    }
                    let mut text = line.to_string();
                    text.push('\n');
                    return Some((Ok(Frame::data(Bytes::from(text))), (rx, node)));
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
