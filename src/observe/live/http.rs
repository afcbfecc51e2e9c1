//! Unauthenticated HTTP requests to the kubelet's ports: `GET path`, and the status.
//!
//! One HTTP/1.1 request per connection (hyper's client connection, no pool), no
//! credentials of any kind. The body is read up to [`MAX_BODY`] bytes, then dropped.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::handshake::handshake_unbounded;
use super::socket::{connect, until, Timeouts};
use crate::model::live::{LiveError, LiveErrorKind, LiveResult};

/// How much of a response body is read before the connection is dropped.
pub const MAX_BODY: usize = 64 * 1024;

/// `GET path` over TLS (any server certificate accepted, none presented): the status.
pub async fn https_get_status(
    addr: SocketAddr,
    sni: Option<&str>,
    path: &str,
    timeouts: &Timeouts,
) -> LiveResult<u16> {
    https_get(addr, sni, path, None, MAX_BODY, timeouts)
        .await
        .map(|a| a.status)
}

/// A response: the status and the body as far as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code of the response's status line.
    pub status: u16,
    /// At most the `max_body` asked for.
    pub body: Vec<u8>,
    /// The whole body arrived (not cut by the size cap, the deadline or an error).
    pub complete: bool,
}

/// `GET path` over TLS (any server certificate accepted, see
/// [`super::handshake`]), with `Authorization: Bearer <token>` when a token is given:
/// the status and the first `max_body` bytes of the body. Callers that send a token
/// decide that the peer may receive it (see `observe::running_config`).
pub async fn https_get(
    addr: SocketAddr,
    sni: Option<&str>,
    path: &str,
    bearer: Option<&str>,
    max_body: usize,
    timeouts: &Timeouts,
) -> LiveResult<Answer> {
    let timeouts = *timeouts;
    let deadline = Instant::now() + timeouts.overall;
    let host = host_header(addr, sni);
    let what = format!("GET https://{host}{path}");
    let request = request(path, &host, bearer, &what)?;
    let (_, tls) = until(
        deadline,
        timeouts,
        &what,
        handshake_unbounded(addr, sni, timeouts),
    )
    .await?;
    get_response(tls, request, &what, deadline, timeouts, max_body).await
}

/// `GET path` over plain HTTP: the status.
pub async fn http_get_status(addr: SocketAddr, path: &str, timeouts: &Timeouts) -> LiveResult<u16> {
    http_get(addr, path, timeouts)
        .await
        .map(|(status, _)| status)
}

/// `GET path` over plain HTTP: the status and the first [`MAX_BODY`] bytes of the body
/// (what arrived before the deadline).
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    timeouts: &Timeouts,
) -> LiveResult<(u16, Vec<u8>)> {
    let timeouts = *timeouts;
    let deadline = Instant::now() + timeouts.overall;
    let host = host_header(addr, None);
    let what = format!("GET http://{host}{path}");
    let request = request(path, &host, None, &what)?;
    let tcp = until(deadline, timeouts, &what, connect(addr, timeouts)).await?;
    get_response(tcp, request, &what, deadline, timeouts, MAX_BODY)
        .await
        .map(|a| (a.status, a.body))
}

/// `Host`: the SNI name when given (with the port), else the address.
fn host_header(addr: SocketAddr, sni: Option<&str>) -> String {
    match sni.filter(|s| !s.is_empty()) {
        Some(name) if name.parse::<std::net::Ipv6Addr>().is_ok() => {
            format!("[{name}]:{}", addr.port())
        }
        Some(name) => format!("{name}:{}", addr.port()),
        None => addr.to_string(),
    }
}

fn request(
    path: &str,
    host: &str,
    bearer: Option<&str>,
    what: &str,
) -> LiveResult<Request<Empty<Bytes>>> {
    if !path.starts_with('/') {
        return Err(LiveError::new(
            LiveErrorKind::Skipped,
            format!("{what}: the path must start with '/'"),
        ));
    }
    let mut builder = Request::get(path).header(hyper::header::HOST, host);
    if let Some(token) = bearer {
        let mut value =
            hyper::header::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                LiveError::new(
                    LiveErrorKind::Skipped,
                    format!("{what}: the token is not a valid header value"),
                )
            })?;
        // Never logged or shown by hyper's Debug output.
        value.set_sensitive(true);
        builder = builder.header(hyper::header::AUTHORIZATION, value);
    }
    builder
        .header(
            hyper::header::USER_AGENT,
            concat!("kubelet-sentinel/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::new())
        .map_err(|e| LiveError::new(LiveErrorKind::Skipped, format!("{what}: {e}")))
}

/// One request on an established connection, until `deadline`. Once the response head
/// has arrived the status is the answer: reading the body (at most `max_body`) is
/// cut short by the deadline, an error or the limit without changing it (`complete`
/// says whether it was).
async fn get_response<S>(
    io: S,
    request: Request<Empty<Bytes>>,
    what: &str,
    deadline: Instant,
    timeouts: Timeouts,
    max_body: usize,
) -> LiveResult<Answer>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| hyper_error(&e, what))?;
    let exchange = async {
        let response = until(deadline, timeouts, what, async {
            sender
                .send_request(request)
                .await
                .map_err(|e| hyper_error(&e, what))
        })
        .await?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut buf: Vec<u8> = Vec::new();
        let drain = async {
            loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(d) = frame.data_ref() {
                            let room = max_body - buf.len();
                            buf.extend_from_slice(&d[..d.len().min(room)]);
                            if d.len() > room {
                                return false;
                            }
                        }
                    }
                    Some(Err(_)) => return false,
                    None => return true,
                }
            }
        };
        let complete = tokio::time::timeout_at(deadline, drain)
            .await
            .unwrap_or(false);
        Ok(Answer {
            status,
            body: buf,
            complete,
        })
    };
    // The connection future drives the I/O; it is polled alongside the exchange and
    // dropped with it (no task outlives the check).
    tokio::pin!(conn);
    tokio::pin!(exchange);
    tokio::select! {
        biased;
        r = &mut exchange => r,
        c = &mut conn => {
            // The connection ended first (closed, or failed): the exchange now ends too
            // (bounded by the deadline), with the request's own error if there was no
            // response.
            match (exchange.await, c) {
                (Ok(answer), _) => Ok(answer),
                (Err(e), Ok(())) => Err(e),
                (Err(e), Err(_)) if e.kind == LiveErrorKind::Timeout => Err(e),
                (Err(_), Err(c)) => Err(hyper_error(&c, what)),
            }
        }
    }
}

/// Classify a hyper error: the underlying I/O error if there is one, else a protocol
/// error (unparsable response, connection closed before a response).
fn hyper_error(e: &hyper::Error, what: &str) -> LiveError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            let mut err = super::socket::classify_io_error(io, what);
            err.message = format!("{what}: {e}: {io}");
            return err;
        }
        source = s.source();
    }
    LiveError::new(LiveErrorKind::Protocol, format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::live::socket::testutil;
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::time::Duration;

    use http_body_util::Full;
    use hyper::{Response, StatusCode};
    use tokio::net::TcpListener;

    fn t() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(2),
            overall: Duration::from_secs(5),
        }
    }

    /// A kubelet-like handler: `/pods` 401, `/healthz` 200 `ok`, `/big` 1 MiB, else 404.
    /// The request's Host header is echoed in `x-host`.
    async fn handle(
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (status, body) = match req.uri().path() {
            "/pods" => (
                StatusCode::UNAUTHORIZED,
                Bytes::from_static(b"Unauthorized"),
            ),
            "/healthz" => (StatusCode::OK, Bytes::from_static(b"ok")),
            "/big" => (StatusCode::OK, Bytes::from(vec![b'x'; 1 << 20])),
            "/host" => (StatusCode::OK, Bytes::from(host.clone())),
            "/auth" => (
                StatusCode::OK,
                Bytes::from(
                    req.headers()
                        .get(hyper::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("none")
                        .to_string(),
                ),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                Bytes::from_static(b"404 page not found"),
            ),
        };
        let mut resp = Response::new(Full::new(body));
        *resp.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(&host) {
            resp.headers_mut().insert("x-host", v);
        }
        Ok(resp)
    }

    async fn http_server(tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(handle);
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            if let Ok(s) = acceptor.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(s), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        addr
    }

    fn tls_config() -> Arc<rustls::ServerConfig> {
        testutil::server_config(
            &[&rustls::version::TLS13, &rustls::version::TLS12],
            None,
            None,
        )
    }

    #[tokio::test]
    async fn https_get_sends_the_bearer_token_and_caps_the_body() {
        let addr = http_server(Some(tls_config())).await;
        let a = https_get(addr, None, "/auth", Some("s3cret"), 1024, &t())
            .await
            .unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), a.complete),
            (200, &b"Bearer s3cret"[..], true)
        );
        let a = https_get(addr, None, "/auth", None, 1024, &t())
            .await
            .unwrap();
        assert_eq!(a.body, b"none");
        // Over the cap: cut at the cap, and said so.
        let a = https_get(addr, None, "/big", None, 1000, &t())
            .await
            .unwrap();
        assert_eq!((a.status, a.body.len(), a.complete), (200, 1000, false));
        // A token that cannot be a header value is refused before connecting.
        assert!(https_get(addr, None, "/auth", Some("a\nb"), 1024, &t())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn https_statuses() {
        let addr = http_server(Some(tls_config())).await;
        assert_eq!(
            https_get_status(addr, None, "/pods", &t()).await.unwrap(),
            401
        );
        assert_eq!(
            https_get_status(addr, Some("localhost"), "/healthz", &t())
                .await
                .unwrap(),
            200
        );
        assert_eq!(
            https_get_status(addr, None, "/nope", &t()).await.unwrap(),
            404
        );
        // A large body is not read to the end.
        let start = Instant::now();
        assert_eq!(
            https_get_status(addr, None, "/big", &t()).await.unwrap(),
            200
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        // Plain HTTP to a TLS port: rustls answers with an alert, not HTTP.
        let e = http_get_status(addr, "/pods", &t()).await.unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Protocol, "{e}");
    }

    #[tokio::test]
    async fn http_statuses() {
        let addr = http_server(None).await;
        assert_eq!(http_get_status(addr, "/healthz", &t()).await.unwrap(), 200);
        assert_eq!(http_get_status(addr, "/pods", &t()).await.unwrap(), 401);
        assert_eq!(http_get_status(addr, "/big", &t()).await.unwrap(), 200);
        // TLS to a plain-HTTP port: the server's 400 is not TLS.
        let e = https_get_status(addr, None, "/pods", &t())
            .await
            .unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Protocol, "{e}");
        // A path that is not origin-form is refused before any I/O.
        let e = http_get_status(addr, "pods", &t()).await.unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Skipped, "{e}");
    }

    #[test]
    fn host_headers() {
        let v4: SocketAddr = "127.0.0.1:10250".parse().unwrap();
        let v6: SocketAddr = "[::1]:10255".parse().unwrap();
        assert_eq!(host_header(v4, None), "127.0.0.1:10250");
        assert_eq!(host_header(v6, None), "[::1]:10255");
        assert_eq!(host_header(v4, Some("node-1")), "node-1:10250");
        assert_eq!(host_header(v6, Some("::1")), "[::1]:10255");
        assert_eq!(host_header(v4, Some("")), "127.0.0.1:10250");
    }

    #[tokio::test]
    async fn failures_are_classified() {
        let quick = Timeouts {
            connect: Duration::from_millis(500),
            overall: Duration::from_millis(400),
        };
        let silent = testutil::silent_server().await;
        for https in [false, true] {
            let start = Instant::now();
            let e = if https {
                https_get_status(silent, None, "/pods", &quick).await
            } else {
                http_get_status(silent, "/pods", &quick).await
            }
            .unwrap_err();
            assert_eq!(e.kind, LiveErrorKind::Timeout, "{e}");
            assert!(start.elapsed() < Duration::from_secs(2));
        }
        let closed = testutil::closed_port().await;
        let e = http_get_status(closed, "/healthz", &quick)
            .await
            .unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Refused, "{e}");
        let e = https_get_status(closed, None, "/healthz", &quick)
            .await
            .unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Refused, "{e}");
        // Not HTTP at all, and a close without an answer.
        let junk = testutil::canned_server(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        let e = http_get_status(junk, "/healthz", &quick).await.unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Protocol, "{e}");
        let closer = testutil::canned_server(b"").await;
        let e = http_get_status(closer, "/healthz", &quick)
            .await
            .unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Protocol, "{e}");
        // Headers that never end: no status, a timeout.
        let stall = testutil::stalling_server(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n").await;
        let start = Instant::now();
        let e = http_get_status(stall, "/healthz", &quick)
            .await
            .unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Timeout, "{e}");
        assert!(start.elapsed() < Duration::from_secs(2));
        // A status, then a body that stalls: the status is the answer, at the deadline.
        let stall =
            testutil::stalling_server(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nabc")
                .await;
        let start = Instant::now();
        assert_eq!(http_get_status(stall, "/pods", &quick).await.unwrap(), 403);
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
