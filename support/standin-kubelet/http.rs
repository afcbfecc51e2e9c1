//! The stand-in's HTTP answers on its three ports (reference §2.4).
//!
//! - serving port (TLS): the kubelet's auth filter, then `/pods`, `/healthz`, `/metrics`,
//!   and `/configz` for a token given with `--standin-token`;
//! - read-only port (plain HTTP, no auth): `/healthz`, `/pods`, `/metrics`, and 405 for
//!   the debug paths;
//! - healthz port (plain HTTP): `/healthz`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

const POD_LIST: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"#;

/// Paths the read-only port refuses (`Debug endpoints are disabled.`).
const DEBUG_PREFIXES: &[&str] = &[
    "/run/",
    "/exec/",
    "/attach/",
    "/portForward/",
    "/containerLogs/",
    "/runningpods/",
    "/debug/pprof",
    "/logs",
];

/// `authorization.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authz {
    AlwaysAllow,
    /// The stand-in has no apiserver: its "webhook" denies `system:anonymous`.
    Webhook,
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Serving,
    ReadOnly,
    Healthz,
}

/// What the handlers need to know.
#[derive(Debug)]
pub struct Server {
    pub version: String,
    pub anonymous: bool,
    pub webhook_authn: bool,
    pub authz: Authz,
    /// `{"kubeletconfig": {...}}` for `/configz`.
    pub configz: String,
    /// Bearer tokens that are authenticated and authorized (`--standin-token`).
    pub tokens: Vec<String>,
    /// Bearer tokens that are authenticated but refused (`--standin-refuse-token`).
    pub refused_tokens: Vec<String>,
}

type Resp = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    respond(status, "text/plain; charset=utf-8", body)
}

/// `kubernetes_build_info` as component-base renders it.
pub fn metrics_body(version: &str) -> String {
    let (major, minor) = major_minor(version);
    format!(
        "# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.\n\
         # TYPE kubernetes_build_info gauge\n\
         kubernetes_build_info{{build_date=\"\",compiler=\"gc\",git_commit=\"0\",git_tree_state=\"clean\",git_version=\"{version}\",go_version=\"go1.24\",major=\"{major}\",minor=\"{minor}\",platform=\"linux/amd64\"}} 1\n"
    )
}

/// `v1.31.4+k3s1` → (`1`, `31`); anything else → (`1`, `31`).
pub fn major_minor(version: &str) -> (String, String) {
    let v = version.trim_start_matches('v');
    let mut parts = v.split('.');
    let digits = |s: Option<&str>| -> Option<String> {
        let d: String = s?.chars().take_while(char::is_ascii_digit).collect();
        (!d.is_empty()).then_some(d)
    };
    match (digits(parts.next()), digits(parts.next())) {
        (Some(major), Some(minor)) => (major, minor),
        _ => ("1".to_string(), "31".to_string()),
    }
}

/// The authorization subresource of a path (pkg/kubelet/server/auth.go).
fn subresource(path: &str) -> &'static str {
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if under("/stats") {
        "stats"
    } else if under("/metrics") {
        "metrics"
    } else if under("/logs") {
        "log"
    } else if under("/spec") {
        "spec"
    } else if under("/checkpoint") {
        "checkpoint"
    } else {
        "proxy"
    }
}

fn verb(method: &Method) -> &'static str {
    match *method {
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "get",
    }
}

impl Server {
    /// Answer one request that arrived on `port`.
    pub fn answer(
        &self,
        port: Port,
        method: &Method,
        path: &str,
        has_credentials: bool,
        bearer: Option<&str>,
    ) -> Resp {
        match port {
            Port::Healthz => {
                if path == "/healthz" {
                    text(StatusCode::OK, "ok")
                } else {
                    text(StatusCode::NOT_FOUND, "404 page not found\n")
                }
            }
            Port::ReadOnly => {
                if DEBUG_PREFIXES.iter().any(|p| path.starts_with(p)) {
                    return text(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "Debug endpoints are disabled.\n",
                    );
                }
                // Reference §2.4: `/configz` is not served on the read-only port.
                if path == "/configz" {
                    return text(StatusCode::NOT_FOUND, "404 page not found\n");
                }
                self.route(method, path)
            }
            Port::Serving => {
                // Tokens the stand-in was told about: as if the apiserver's TokenReview
                // authenticated them and its SubjectAccessReview answered.
                if let Some(t) = bearer {
                    if self.tokens.iter().any(|k| k == t) {
                        return self.route(method, path);
                    }
                    if self.refused_tokens.iter().any(|k| k == t) {
                        let sub = if path == "/configz" {
                            "configz"
                        } else {
                            subresource(path)
                        };
                        return text(
                            StatusCode::FORBIDDEN,
                            format!(
                                "Forbidden (user=system:serviceaccount:kubelet-sentinel:kubelet-sentinel, verb={}, resource=nodes, subresource={sub})",
                                verb(method)
                            ),
                        );
                    }
                }
                // Authentication: a bearer token needs the apiserver's TokenReview, which
                // the stand-in does not have; without a token the user is anonymous.
                if (has_credentials && self.webhook_authn) || !self.anonymous {
                    return text(StatusCode::UNAUTHORIZED, "Unauthorized");
                }
                if self.authz == Authz::Webhook {
                    return text(
                        StatusCode::FORBIDDEN,
                        format!(
                            "Forbidden (user=system:anonymous, verb={}, resource=nodes, subresource={})",
                            verb(method),
                            subresource(path)
                        ),
                    );
                }
                self.route(method, path)
            }
        }
    }

    fn route(&self, method: &Method, path: &str) -> Resp {
        let known = matches!(
            path,
            "/healthz" | "/pods" | "/pods/" | "/metrics" | "/configz"
        );
        if !known {
            return text(StatusCode::NOT_FOUND, "404 page not found\n");
        }
        if *method != Method::GET && *method != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        }
        match path {
            "/healthz" => text(StatusCode::OK, "ok"),
            "/metrics" => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics_body(&self.version),
            ),
            "/configz" => respond(StatusCode::OK, "application/json", self.configz.clone()),
            _ => respond(StatusCode::OK, "application/json", POD_LIST),
        }
    }
}

/// Serve HTTP/1.1 on one connection until the client is done (or stalls).
pub async fn serve<S>(io: S, server: Arc<Server>, port: Port)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let server = server.clone();
        async move {
            let has_credentials = req.headers().contains_key(AUTHORIZATION);
            let bearer = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            let resp = server.answer(
                port,
                req.method(),
                req.uri().path(),
                has_credentials,
                bearer,
            );
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = conn.await {
        if !e.is_incomplete_message() && !e.is_timeout() {
            eprintln!("standin-kubelet: {port:?} connection: {e}");
        }
    }
}
