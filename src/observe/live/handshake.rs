//! A full TLS handshake with the serving port (rustls, *ring* provider, TLS 1.2/1.3):
//! what a modern client negotiates and which certificate the kubelet presents.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, ProtocolVersion, SignatureScheme};
use tokio::net::TcpStream;

use super::socket::{classify_io_error, connect, within, Timeouts};
use crate::model::cert::summarize_der;
use crate::model::live::{LiveError, LiveErrorKind, LiveResult, TlsHandshake};

/// An established TLS connection to the checked server.
pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Accepts whatever certificate the server presents.
///
/// The check inspects the serving certificate, it does not trust it: the kubelet's
/// certificate is commonly self-signed (`/var/lib/kubelet/pki/kubelet.crt`) or signed by
/// a cluster CA this agent does not hold, and its SANs need not name the address checked.
/// Rejecting it would hide exactly the evidence we want (which certificate, which
/// version, which suite). Nothing secret is sent over this connection: no client
/// certificate, no token, only unauthenticated requests.
///
/// The handshake signatures are still verified against the presented certificate with the
/// provider's algorithms, so a peer must hold the key of the certificate it shows: the
/// summary describes the certificate of the server we actually talked to.
#[derive(Debug)]
struct InspectOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for InspectOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The client configuration of every live-check handshake: *ring*, TLS 1.3 and 1.2, any
/// certificate (see [`InspectOnly`]), no client certificate.
pub(crate) fn client_config() -> LiveResult<Arc<rustls::ClientConfig>> {
    let provider = rustls::crypto::ring::default_provider();
    let algorithms = provider.signature_verification_algorithms;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| LiveError::new(LiveErrorKind::Io, format!("TLS client setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(InspectOnly { algorithms }))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name rustls is given: `sni` when it is a DNS name (sent as SNI), else the
/// address (IP names are never sent as SNI).
fn server_name(addr: SocketAddr, sni: Option<&str>) -> ServerName<'static> {
    sni.filter(|s| !s.is_empty())
        .and_then(|s| ServerName::try_from(s.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
}

/// Handshake with `addr` within `timeouts`; what was negotiated, and the stream.
pub async fn tls_handshake(
    addr: SocketAddr,
    sni: Option<&str>,
    timeouts: &Timeouts,
) -> LiveResult<(TlsHandshake, TlsStream)> {
    within(
        *timeouts,
        &format!("TLS handshake with {addr}"),
        handshake_unbounded(addr, sni, *timeouts),
    )
    .await
}

/// The handshake; the caller bounds it by the overall timeout.
pub(crate) async fn handshake_unbounded(
    addr: SocketAddr,
    sni: Option<&str>,
    timeouts: Timeouts,
) -> LiveResult<(TlsHandshake, TlsStream)> {
    let connector = tokio_rustls::TlsConnector::from(client_config()?);
    let tcp = connect(addr, timeouts).await?;
    let stream = connector
        .connect(server_name(addr, sni), tcp)
        .await
        .map_err(|e| {
            let mut err = classify_io_error(&e, &format!("TLS handshake with {addr}"));
            // The peer hung up or reset mid-handshake: it does not speak TLS as we do.
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ) {
                err.kind = LiveErrorKind::Protocol;
            }
            err
        })?;
    let summary = describe(stream.get_ref().1);
    Ok((summary, stream))
}

/// What a finished handshake negotiated.
fn describe(conn: &rustls::ClientConnection) -> TlsHandshake {
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "VersionTLS13".to_string(),
        Some(ProtocolVersion::TLSv1_2) => "VersionTLS12".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    let cipher = match conn.negotiated_cipher_suite() {
        Some(s) => {
            let id = u16::from(s.suite());
            crate::model::tls::suite_name(id)
                .map(str::to_string)
                .unwrap_or_else(|| format!("0x{id:04x}"))
        }
        None => "unknown".to_string(),
    };
    let cert = conn.peer_certificates().and_then(|chain| {
        let leaf = chain.first()?;
        match summarize_der(leaf.as_ref()) {
            Ok(mut s) => {
                s.count = chain.len();
                Some(s)
            }
            Err(e) => {
                tracing::debug!(error = %e, "peer certificate could not be parsed");
                None
            }
        }
    });
    TlsHandshake {
        version,
        cipher,
        cert,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::live::socket::testutil;
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;

    fn t() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(2),
            overall: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn tls13_handshake_reports_version_suite_and_certificate() {
        use rustls::crypto::ring::cipher_suite as cs;
        let config = testutil::server_config(
            &[&rustls::version::TLS13],
            Some(vec![cs::TLS13_CHACHA20_POLY1305_SHA256]),
            None,
        );
        let addr = testutil::tls_server(config).await;
        let (hs, mut stream) = tls_handshake(addr, Some("localhost"), &t()).await.unwrap();
        assert_eq!(hs.version, "VersionTLS13");
        assert_eq!(hs.cipher, "TLS_CHACHA20_POLY1305_SHA256");
        let cert = hs.cert.unwrap();
        assert!(cert.self_signed);
        assert_eq!(cert.count, 1);
        assert_eq!(cert.sans, vec!["localhost", "127.0.0.1"]);
        // The stream is usable.
        stream.write_all(b"x").await.unwrap();
        // No SNI (None, or an IP literal) works too.
        let (hs, _) = tls_handshake(addr, None, &t()).await.unwrap();
        assert_eq!(hs.version, "VersionTLS13");
        let (hs, _) = tls_handshake(addr, Some("127.0.0.1"), &t()).await.unwrap();
        assert_eq!(hs.version, "VersionTLS13");
    }

    #[tokio::test]
    async fn tls12_handshake_uses_go_names() {
        use rustls::crypto::ring::cipher_suite as cs;
        let config = testutil::server_config(
            &[&rustls::version::TLS12],
            Some(vec![cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]),
            None,
        );
        let addr = testutil::tls_server(config).await;
        let (hs, _) = tls_handshake(addr, Some("kubelet.example"), &t())
            .await
            .unwrap();
        assert_eq!(hs.version, "VersionTLS12");
        assert_eq!(hs.cipher, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305");
        assert!(hs.cert.is_some());
    }

    #[tokio::test]
    async fn failures_are_classified() {
        let quick = Timeouts {
            connect: Duration::from_millis(500),
            overall: Duration::from_millis(400),
        };
        let silent = testutil::silent_server().await;
        let start = Instant::now();
        let e = tls_handshake(silent, None, &quick).await.unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Timeout, "{e}");
        assert!(start.elapsed() < Duration::from_secs(2));

        let e = tls_handshake(testutil::closed_port().await, None, &quick)
            .await
            .unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Refused, "{e}");

        let http = testutil::canned_server(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        let e = tls_handshake(http, None, &quick).await.unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Protocol, "{e}");

        let closer = testutil::canned_server(b"").await;
        let e = tls_handshake(closer, None, &quick).await.unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Protocol, "{e}");

        // A fatal handshake_failure alert instead of a ServerHello.
        let alert = testutil::canned_server(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]).await;
        let e = tls_handshake(alert, None, &quick).await.unwrap_err();
        assert_eq!(e.kind, LiveErrorKind::Protocol, "{e}");
        assert!(e.message.contains("HandshakeFailure"), "{e}");
    }

    /// A server presenting one certificate but signing with another key: any certificate
    /// is accepted, but the handshake signature is still checked, so this fails.
    #[tokio::test]
    async fn handshake_signatures_are_verified() {
        let (cert_a, _) = testutil::cert();
        let (_, key_b) = testutil::cert();
        let provider = rustls::crypto::ring::default_provider();
        let signer = provider.key_provider.load_private_key(key_b).unwrap();
        let certified = rustls::sign::CertifiedKey::new(vec![cert_a], signer);
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                certified.clone(),
            )));
            let addr = testutil::tls_server(Arc::new(config)).await;
            let e = tls_handshake(addr, None, &t()).await.unwrap_err();
            assert_eq!(e.kind, LiveErrorKind::Protocol, "{version:?}: {e}");
        }
    }

    #[test]
    fn any_certificate_is_accepted_for_inspection() {
        let v = InspectOnly {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        };
        assert!(!v.supported_verify_schemes().is_empty());
        assert!(v
            .verify_server_cert(
                &CertificateDer::from(vec![1, 2, 3]),
                &[],
                &ServerName::try_from("x").unwrap(),
                &[],
                UnixTime::now(),
            )
            .is_ok());
        assert!(summarize_der(&[1, 2, 3]).is_err());
        let (cert, _) = testutil::cert();
        assert_eq!(summarize_der(cert.as_ref()).unwrap().count, 1);
    }
}
