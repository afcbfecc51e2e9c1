//! Bounded sockets for the live checks. Every network operation is bounded twice: the
//! TCP connect by [`Timeouts::connect`], the whole operation (connect included) by
//! [`Timeouts::overall`]. A peer that accepts and then says nothing ends in
//! [`LiveErrorKind::Timeout`], never in a hang.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::model::live::{LiveError, LiveErrorKind, LiveResult};

/// Bounds of one network operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Bound on establishing the TCP connection.
    pub connect: Duration,
    /// Bound on the whole operation, connect included.
    pub overall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(2),
            overall: Duration::from_secs(2),
        }
    }
}

/// Classify an I/O error of a live check: refused connections are evidence that nothing
/// listens, time-outs are "no answer", malformed data (rustls reports TLS failures and
/// alerts as `InvalidData`) and a peer that hangs up mid-exchange are protocol failures.
pub fn classify_io_error(e: &std::io::Error, context: &str) -> LiveError {
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionRefused => LiveErrorKind::Refused,
        K::TimedOut => LiveErrorKind::Timeout,
        K::InvalidData | K::UnexpectedEof => LiveErrorKind::Protocol,
        _ => LiveErrorKind::Io,
    };
    LiveError::new(kind, format!("{context}: {e}"))
}

/// Connect to `addr` within `timeouts.connect`.
pub(crate) async fn connect(addr: SocketAddr, timeouts: Timeouts) -> LiveResult<TcpStream> {
    match tokio::time::timeout(timeouts.connect, TcpStream::connect(addr)).await {
        Err(_) => Err(LiveError::new(
            LiveErrorKind::Timeout,
            format!(
                "connect to {addr}: no answer within {}",
                fmt_duration(timeouts.connect)
            ),
        )),
        Ok(Err(e)) => Err(classify_io_error(&e, &format!("connect to {addr}"))),
        Ok(Ok(s)) => {
            // Small request/answer exchanges: do not wait for Nagle.
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

/// Run `fut` within `timeouts.overall`.
pub(crate) async fn within<T>(
    timeouts: Timeouts,
    what: &str,
    fut: impl Future<Output = LiveResult<T>>,
) -> LiveResult<T> {
    let deadline = Instant::now() + timeouts.overall;
    until(deadline, timeouts, what, fut).await
}

/// Run `fut` until `deadline` (the end of the operation's `timeouts.overall`).
pub(crate) async fn until<T>(
    deadline: Instant,
    timeouts: Timeouts,
    what: &str,
    fut: impl Future<Output = LiveResult<T>>,
) -> LiveResult<T> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(LiveError::new(
            LiveErrorKind::Timeout,
            format!(
                "{what}: no answer within {}",
                fmt_duration(timeouts.overall)
            ),
        )),
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Local servers for the live-check tests (127.0.0.1 only).

    use std::net::SocketAddr;
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::net::TcpListener;

    /// A self-signed ECDSA P-256 certificate for `localhost` and 127.0.0.1, and its key.
    pub fn cert() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let ck = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        let key = PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
        (ck.cert.der().clone(), PrivateKeyDer::Pkcs8(key))
    }

    /// A rustls server configuration restricted to `versions`, `suites` and `groups`.
    pub fn server_config(
        versions: &[&'static rustls::SupportedProtocolVersion],
        suites: Option<Vec<rustls::SupportedCipherSuite>>,
        groups: Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
    ) -> Arc<rustls::ServerConfig> {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(s) = suites {
            provider.cipher_suites = s;
        }
        if let Some(g) = groups {
            provider.kx_groups = g;
        }
        let (cert, key) = cert();
        Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(versions)
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap(),
        )
    }

    /// A TLS server that completes handshakes (and then holds the connection briefly);
    /// failed handshakes end with rustls' alert, like a Go server's.
    pub async fn tls_server(config: Arc<rustls::ServerConfig>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        use tokio::io::AsyncReadExt;
                        let mut buf = [0u8; 64];
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(5),
                            tls.read(&mut buf),
                        )
                        .await;
                    }
                });
            }
        });
        addr
    }

    /// A server that accepts TCP connections and never sends a byte.
    pub async fn silent_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        addr
    }

    /// An address where nothing listens (a port bound and released).
    pub async fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        addr
    }

    /// A server that answers every connection with `bytes` and closes.
    pub async fn canned_server(bytes: &'static [u8]) -> SocketAddr {
        canned(bytes, true).await
    }

    /// A server that answers every connection with `bytes` and then stays silent.
    pub async fn stalling_server(bytes: &'static [u8]) -> SocketAddr {
        canned(bytes, false).await
    }

    async fn canned(bytes: &'static [u8], close: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 4096];
                    let _ = tcp.read(&mut buf).await;
                    let _ = tcp.write_all(bytes).await;
                    if close {
                        let _ = tcp.shutdown().await;
                    }
                    // Drain what the client still sends (a close is then a FIN, not a
                    // RST); hold the connection until the client goes.
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        tcp.read(&mut buf),
                    )
                    .await;
                });
            }
        });
        addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_classified() {
        use std::io::{Error, ErrorKind};
        let k = |kind| classify_io_error(&Error::from(kind), "x").kind;
        assert_eq!(k(ErrorKind::ConnectionRefused), LiveErrorKind::Refused);
        assert_eq!(k(ErrorKind::TimedOut), LiveErrorKind::Timeout);
        assert_eq!(k(ErrorKind::InvalidData), LiveErrorKind::Protocol);
        assert_eq!(k(ErrorKind::UnexpectedEof), LiveErrorKind::Protocol);
        assert_eq!(k(ErrorKind::ConnectionReset), LiveErrorKind::Io);
        assert_eq!(
            Timeouts::default(),
            Timeouts {
                connect: Duration::from_secs(2),
                overall: Duration::from_secs(2)
            }
        );
    }

    #[tokio::test]
    async fn connect_refused_and_overall_timeout() {
        let t = Timeouts {
            connect: Duration::from_millis(500),
            overall: Duration::from_millis(300),
        };
        let closed = testutil::closed_port().await;
        let e = connect(closed, t).await.unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Refused, "{e}");
        let start = std::time::Instant::now();
        let e = within(t, "wait", std::future::pending::<LiveResult<()>>())
            .await
            .unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Timeout);
        assert!(e.message.contains("300ms"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
