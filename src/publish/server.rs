//! The HTTP server: `/metrics`, `/healthz`, `/readyz` and an index page.
//!
//! Handlers never touch the host: the evaluation loop renders an [`Exposition`] and
//! [`AppState::publish`]es it; a scrape clones an `Arc` under a read lock and copies the
//! bytes of the negotiated format.
//!
//! Before the first evaluation has completed, `/metrics` answers 200 with the startup
//! exposition (only `kubelet_sentinel_build_info`, see
//! [`render_startup`](super::metrics::render_startup)). A 503 would make Prometheus
//! record `up == 0` and fire "target down" alerts for every agent that is merely starting;
//! serving zeros would fire "kubelet down"/"control failing" alerts. Absent series do
//! neither. `/readyz` is what reports "no evaluation yet" (503).
//!
//! With `--metrics-auth kubernetes` ([`super::auth`]), `/metrics` needs a bearer token
//! that the Kubernetes API authenticates and authorises; `/healthz`, `/readyz` and the
//! index stay open (they tell nothing about the node). With a TLS configuration,
//! [`serve_on`] speaks HTTPS only.
//!
//! The kubelet's probes go to a listener of their own ([`health_router`],
//! `--health-listen-address`, plain HTTP on loopback by default) that no metrics client
//! can starve. `/healthz` and `/readyz` stay on the metrics listener too: constant
//! answers that touch nothing, bounded like every request there, for whoever already
//! probes them.
//!
//! A scrape's body is the published exposition itself, shared (`Bytes::from_owner`), never
//! copied: a hundred clients that do not read their response hold no copy each.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{
    ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::auth::{Authenticator, Decision, Outcome};
use super::listener::{Limits, Transport};
use super::metrics::{Exposition, CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT};

/// State shared between the evaluation loop and the handlers.
#[derive(Debug)]
pub struct AppState {
    /// The latest evaluation's exposition (`None` until the first one).
    latest: RwLock<Option<Arc<Exposition>>>,
    /// Served until the first evaluation completes.
    startup: Arc<Exposition>,
    /// Set once an evaluation has completed.
    ready: AtomicBool,
}

impl AppState {
    /// A state serving `startup` until the first [`publish`](AppState::publish).
    pub fn new(startup: Exposition) -> AppState {
        AppState {
            latest: RwLock::new(None),
            startup: Arc::new(startup),
            ready: AtomicBool::new(false),
        }
    }

    /// Store an evaluation's exposition and mark the agent ready.
    pub fn publish(&self, exposition: Exposition) {
        let exposition = Arc::new(exposition);
        // A poisoned lock only means a panic happened while it was held; the slot holds
        // a plain `Option<Arc<_>>`, which cannot be left half-written.
        match self.latest.write() {
            Ok(mut slot) => *slot = Some(exposition),
            Err(poisoned) => *poisoned.into_inner() = Some(exposition),
        }
        self.ready.store(true, Ordering::Release);
    }

    /// What `/metrics` serves now.
    pub fn current(&self) -> Arc<Exposition> {
        let latest = match self.latest.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        latest.unwrap_or_else(|| Arc::clone(&self.startup))
    }

    /// Whether an evaluation has completed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Whether the client asked for OpenMetrics: an `application/openmetrics-text` media range
/// in `Accept` with a non-zero quality (Prometheus always sends it with a higher `q` than
/// `text/plain` when OpenMetrics scraping is on). Anything else, including no `Accept`,
/// `*/*` or a browser's header, gets the 0.0.4 text format.
pub fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut params = range.split(';').map(str::trim);
            let media = params.next().unwrap_or("");
            if !media.eq_ignore_ascii_case("application/openmetrics-text") {
                return false;
            }
            let q = params
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map(|(_, v)| v.trim().parse::<f32>().unwrap_or(1.0))
                .unwrap_or(1.0);
            q > 0.0
        })
}

/// What the handlers share: the expositions and, with `--metrics-auth kubernetes`, the
/// gate in front of `/metrics`.
#[derive(Debug, Clone)]
struct Served {
    state: Arc<AppState>,
    auth: Option<Arc<Authenticator>>,
}

fn refusal(status: StatusCode, body: &'static str) -> Response {
    let mut r = (
        status,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response();
    match status {
        StatusCode::UNAUTHORIZED => {
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kubelet-sentinel\""),
            );
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        _ => {}
    }
    r
}

async fn metrics(State(served): State<Served>, headers: HeaderMap) -> Response {
    if let Some(auth) = &served.auth {
        let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        match auth.check(header).await {
            Outcome::Decided(Decision::Allowed { .. }) => {}
            Outcome::Decided(Decision::Unauthenticated) => {
                return refusal(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized: a bearer token the Kubernetes API authenticates is required\n",
                )
            }
            Outcome::Decided(Decision::Forbidden { .. }) => {
                return refusal(
                    StatusCode::FORBIDDEN,
                    "Forbidden: this user may not get the non-resource URL /metrics\n",
                )
            }
            Outcome::Error(_) => return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: the Kubernetes API could not review the token; try again\n",
            ),
        }
    }
    let exposition = served.state.current();
    let (content_type, body) = if wants_openmetrics(&headers) {
        (
            CONTENT_TYPE_OPENMETRICS,
            Bytes::from_owner(Shared(exposition, Format::OpenMetrics)),
        )
    } else {
        (
            CONTENT_TYPE_TEXT,
            Bytes::from_owner(Shared(exposition, Format::Text)),
        )
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// Which text of an exposition a body is.
#[derive(Debug, Clone, Copy)]
enum Format {
    Text,
    OpenMetrics,
}

/// One text of a published exposition, as the body of a response without a copy.
struct Shared(Arc<Exposition>, Format);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        match self.1 {
            Format::Text => self.0.text.as_bytes(),
            Format::OpenMetrics => self.0.openmetrics.as_bytes(),
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(served): State<Served>) -> (StatusCode, &'static str) {
    if served.state.is_ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no evaluation has completed yet\n",
        )
    }
}

const INDEX: &str = "<!DOCTYPE html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>kubelet-sentinel</title></head>
<body>
<h1>kubelet-sentinel</h1>
<p>Kubelet hardening checks for this node.</p>
<ul>
<li><a href=\"metrics\">/metrics</a>: Prometheus / OpenMetrics exposition</li>
<li><a href=\"healthz\">/healthz</a>: liveness</li>
<li><a href=\"readyz\">/readyz</a>: readiness (after the first evaluation)</li>
</ul>
</body>
</html>
";

async fn index() -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        INDEX,
    )
        .into_response()
}

/// The routes, `/metrics` behind `auth` when given.
pub fn router(state: Arc<AppState>, auth: Option<Arc<Authenticator>>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Served { state, auth })
}

/// The health probes alone (`--health-listen-address`): `/healthz` and `/readyz`, on a
/// listener of their own that no metrics client can starve (as controller-runtime serves
/// them on `Options.HealthProbeBindAddress`, apart from its metrics server:
/// `pkg/manager/manager.go`).
pub fn health_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Served { state, auth: None })
}

/// Serve `router` on `listener` (plain TCP or, with `tls`, HTTPS only) with `limits` (see
/// [`super::listener`]) until `shutdown` resolves; then stop accepting, let in-flight
/// requests finish and return (see [`shutdown_signal`]).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let transport = match tls {
        Some(config) => Transport::Tls(config),
        None => Transport::Plain,
    };
    super::listener::serve(listener, transport, router, limits, shutdown).await
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or SIGINT (ctrl-c) and names the
/// signal. A handler that cannot be installed is logged and never fires (it must not turn
/// into an immediate shutdown).
pub async fn shutdown_signal() -> &'static str {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "SIGINT",
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGINT");
                std::future::pending().await
            }
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
                "SIGTERM"
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<&'static str>();
    tokio::select! {
        s = interrupt => s,
        s = terminate => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn exposition(tag: &str) -> Exposition {
        Exposition {
            text: format!("# HELP x {tag}\n# TYPE x gauge\nx 1\n"),
            openmetrics: format!("# HELP x {tag}\n# TYPE x gauge\nx 1\n# EOF\n"),
        }
    }

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn negotiation() {
        assert!(!wants_openmetrics(&HeaderMap::new()));
        assert!(!wants_openmetrics(&headers("*/*")));
        assert!(!wants_openmetrics(&headers("text/plain;version=0.0.4;q=1")));
        assert!(!wants_openmetrics(&headers(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        // Prometheus 2.x and 3.x scrape headers.
        assert!(wants_openmetrics(&headers(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(wants_openmetrics(&headers(
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        )));
        assert!(wants_openmetrics(&headers("Application/OpenMetrics-Text")));
        assert!(!wants_openmetrics(&headers(
            "application/openmetrics-text;q=0"
        )));
    }

    #[test]
    fn state_serves_startup_then_latest() {
        let state = AppState::new(exposition("startup"));
        assert!(!state.is_ready());
        assert!(state.current().text.contains("startup"));
        state.publish(exposition("first"));
        assert!(state.is_ready());
        assert!(state.current().text.contains("first"));
    }

    /// A raw HTTP/1.1 GET returning (status, headers, body).
    fn get(addr: std::net::SocketAddr, path: &str, accept: Option<&str>) -> (u16, String, String) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let accept = accept
            .map(|a| format!("Accept: {a}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: test\r\n{accept}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routes_and_graceful_shutdown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(AppState::new(exposition("startup")));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_on(
            listener,
            None,
            router(Arc::clone(&state), None),
            Limits::METRICS,
            async move {
                let _ = rx.await;
            },
        ));

        let st = Arc::clone(&state);
        tokio::task::spawn_blocking(move || {
            let (code, head, body) = get(addr, "/metrics", None);
            assert_eq!(code, 200);
            assert!(head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"));
            assert!(body.contains("startup") && !body.contains("# EOF"));

            assert_eq!(get(addr, "/readyz", None).0, 503);
            st.publish(exposition("latest"));
            assert_eq!(get(addr, "/readyz", None).0, 200);

            let (code, head, body) = get(
                addr,
                "/metrics",
                Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
            );
            assert_eq!(code, 200);
            assert!(head.contains(
                "content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"
            ));
            assert!(body.contains("latest") && body.ends_with("# EOF\n"));

            let (code, _, body) = get(addr, "/healthz", None);
            assert_eq!((code, body.as_str()), (200, "ok\n"));
            let (code, head, body) = get(addr, "/", None);
            assert_eq!(code, 200);
            assert!(head.contains("text/html"));
            assert!(body.contains("href=\"metrics\""));
            assert_eq!(get(addr, "/nope", None).0, 404);
        })
        .await
        .unwrap();

        tx.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
