//! TLS on the stand-in's serving port.
//!
//! rustls does TLS 1.2 and 1.3 with AEAD ECDHE suites only, but tests need kubelets that
//! accept TLS 1.0/1.1 or weak TLS 1.2 suites (`TLS_RSA_WITH_AES_128_CBC_SHA`, ...). So
//! every connection's ClientHello is read first (and replayed into rustls afterwards):
//!
//! - the best version both sides allow is TLS 1.3, or TLS 1.2 with a suite rustls can do
//!   with this certificate: rustls handles the connection;
//! - an older version or a suite rustls cannot do, and the configuration allows it: a
//!   hand-written ServerHello (that version, that suite, null compression, fresh random)
//!   and the connection is closed. A scanner only reads the ServerHello;
//! - not allowed: a fatal alert (`protocol_version` 70 or `handshake_failure` 40).
//!
//! The configuration follows Go's crypto/tls as the kubelet (go1.24) uses it: an empty
//! `tlsMinVersion` means TLS 1.2 (component-base `TLSVersion("")` = `DefaultTLSVersion()`,
//! which every kubelet sets whatever Go's own server default), an empty
//! `tlsCipherSuites` means Go's default list, and TLS 1.3 suites are not configurable.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, SignatureAlgorithm, SupportedCipherSuite};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use kubelet_sentinel::model::time::Day;

pub const TLS10: u16 = 0x0301;
pub const TLS11: u16 = 0x0302;
pub const TLS12: u16 = 0x0303;
pub const TLS13: u16 = 0x0304;

const ALERT_HANDSHAKE_FAILURE: u8 = 40;
const ALERT_PROTOCOL_VERSION: u8 = 70;

/// Largest ClientHello we buffer (several records); bigger ones go to rustls unparsed.
const MAX_HELLO: usize = 64 * 1024;

/// A TLS cipher suite as Go names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub name: &'static str,
    pub id: u16,
    /// Usable only with TLS 1.2 (AEAD and SHA-256/384 suites), per Go's `suiteTLS12`.
    pub tls12_only: bool,
    /// ECDHE key exchange (the ServerHello carries `ec_point_formats` for these).
    pub ecdhe: bool,
    /// In Go's default list (go1.24: ECDHE AEAD and ECDHE CBC-SHA).
    pub go_default: bool,
}

const fn suite(name: &'static str, id: u16, tls12_only: bool, go_default: bool) -> Suite {
    Suite {
        name,
        id,
        tls12_only,
        ecdhe: matches!(id >> 8, 0xc0 | 0xcc),
        go_default,
    }
}

/// TLS 1.0–1.2 suites, in Go's server preference order (`cipherSuitesPreferenceOrder`).
pub const SUITES: &[Suite] = &[
    suite(
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02b,
        true,
        true,
    ),
    suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xc02f, true, true),
    suite(
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02c,
        true,
        true,
    ),
    suite("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xc030, true, true),
    suite(
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9,
        true,
        true,
    ),
    suite(
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca8,
        true,
        true,
    ),
    suite("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xc009, false, true),
    suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xc013, false, true),
    suite("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xc00a, false, true),
    suite("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xc014, false, true),
    suite("TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009c, true, false),
    suite("TLS_RSA_WITH_AES_256_GCM_SHA384", 0x009d, true, false),
    suite("TLS_RSA_WITH_AES_128_CBC_SHA", 0x002f, false, false),
    suite("TLS_RSA_WITH_AES_256_CBC_SHA", 0x0035, false, false),
    suite("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xc012, false, false),
    suite("TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x000a, false, false),
    suite(
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc023,
        true,
        false,
    ),
    suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xc027, true, false),
    suite("TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003c, true, false),
    suite("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", 0xc007, false, false),
    suite("TLS_ECDHE_RSA_WITH_RC4_128_SHA", 0xc011, false, false),
    suite("TLS_RSA_WITH_RC4_128_SHA", 0x0005, false, false),
];

/// TLS 1.3 suite names Go (and so `--tls-cipher-suites`) accepts; they have no effect.
const TLS13_NAMES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// A configured suite name: `Ok(Some(suite))`, `Ok(None)` for a TLS 1.3 name (ignored,
/// as Go does), `Err` for a name the kubelet would refuse.
pub fn suite_by_name(name: &str) -> Result<Option<&'static Suite>, String> {
    // Go also accepts the short ChaCha names.
    let canonical = match name {
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        other => other,
    };
    if TLS13_NAMES.contains(&canonical) {
        return Ok(None);
    }
    SUITES
        .iter()
        .find(|s| s.name == canonical)
        .map(Some)
        .ok_or_else(|| format!("unrecognized cipher suite {name:?} in tlsCipherSuites"))
}

/// `tlsMinVersion` as component-base's `cliflag.TLSVersion` reads it; empty = TLS 1.2
/// (`DefaultTLSVersion`).
pub fn parse_min_version(s: &str) -> Result<u16, String> {
    match s {
        "" => Ok(TLS12),
        "VersionTLS10" => Ok(TLS10),
        "VersionTLS11" => Ok(TLS11),
        "VersionTLS12" => Ok(TLS12),
        "VersionTLS13" => Ok(TLS13),
        other => Err(format!(
            "unknown tls version {other:?} in tlsMinVersion (want VersionTLS10..VersionTLS13)"
        )),
    }
}

/// The serving certificate chain and key.
pub struct ServingCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Where it came from, for the startup message.
    pub origin: String,
}

impl ServingCert {
    /// Load a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert: &str, key: &str) -> Result<ServingCert, String> {
        let cert_pem = std::fs::read(cert).map_err(|e| format!("tls cert file {cert}: {e}"))?;
        let key_pem = std::fs::read(key).map_err(|e| format!("tls private key file {key}: {e}"))?;
        ServingCert::from_pem(&cert_pem, &key_pem, format!("{cert} + {key}"))
    }

    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        origin: String,
    ) -> Result<ServingCert, String> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{origin}: bad certificate PEM: {e}"))?;
        if chain.is_empty() {
            return Err(format!("{origin}: no CERTIFICATE block"));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| format!("{origin}: bad private key PEM: {e}"))?;
        Ok(ServingCert { chain, key, origin })
    }

    /// A fresh self-signed ECDSA P-256 certificate: CN = hostname, SANs hostname,
    /// `localhost`, `127.0.0.1`; valid from today for one year. Also returns the PEM
    /// texts (certificate, key) so the caller can write them to the cert dir.
    pub fn self_signed(hostname: &str) -> Result<(ServingCert, String, String), String> {
        let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if !hostname.is_empty() && !sans.iter().any(|s| s == hostname) {
            sans.insert(0, hostname.to_string());
        }
        let mut params = rcgen::CertificateParams::new(sans.clone())
            .or_else(|_| rcgen::CertificateParams::new(sans[1..].to_vec()))
            .map_err(|e| format!("self-signed certificate: {e}"))?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, hostname);
        params.distinguished_name = dn;
        let (y, m, d) = today_utc();
        params.not_before = rcgen::date_time_ymd(y, m, d);
        params.not_after = rcgen::date_time_ymd(y + 1, m, d.min(28));
        let key = rcgen::KeyPair::generate().map_err(|e| format!("self-signed key: {e}"))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("self-signed certificate: {e}"))?;
        let serving = ServingCert {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            origin: format!("self-signed (CN={hostname})"),
        };
        Ok((serving, cert.pem(), key.serialize_pem()))
    }
}

/// Today's UTC date.
fn today_utc() -> (i32, u8, u8) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let day = Day::from_unix(secs);
    // Month and day are 1..=12 and 1..=31.
    let (m, d) = (day.month().unsigned_abs(), day.day().unsigned_abs());
    (i32::from(day.year()), m, d)
}

/// What the serving port does with a connection, decided from its ClientHello.
pub enum Decision {
    /// Hand the (replayed) connection to rustls.
    Rustls,
    /// Write these bytes (a ServerHello or an alert), then close.
    Reply(Vec<u8>),
    /// Close without a word.
    Close,
}

/// The serving port's TLS policy.
pub struct TlsPolicy {
    pub min_version: u16,
    /// Allowed TLS 1.0–1.2 suites (configured, or Go's defaults), in Go's preference order.
    pub allowed: Vec<&'static Suite>,
    /// The subset rustls negotiates itself with this certificate.
    pub rustls12: Vec<u16>,
    pub acceptor: tokio_rustls::TlsAcceptor,
    provider: Arc<CryptoProvider>,
}

impl TlsPolicy {
    /// Build the policy and the rustls configuration. `configured` are the
    /// `tlsCipherSuites` names (empty = Go's defaults).
    pub fn new(min_version: u16, configured: &[String], cert: ServingCert) -> Result<Self, String> {
        let mut wanted: Vec<u16> = Vec::new();
        for name in configured {
            if let Some(s) = suite_by_name(name)? {
                wanted.push(s.id);
            }
        }
        let allowed: Vec<&'static Suite> = SUITES
            .iter()
            .filter(|s| {
                if configured.is_empty() {
                    s.go_default
                } else {
                    wanted.contains(&s.id)
                }
            })
            .collect();
        let base = rustls::crypto::ring::default_provider();
        let signing = base
            .key_provider
            .load_private_key(cert.key.clone_key())
            .map_err(|e| format!("{}: unusable private key: {e}", cert.origin))?;
        let key_alg: SignatureAlgorithm = signing.algorithm();
        let tls12_on = min_version <= TLS12;
        let suites: Vec<SupportedCipherSuite> = base
            .cipher_suites
            .iter()
            .filter(|s| match s {
                SupportedCipherSuite::Tls13(_) => true,
                SupportedCipherSuite::Tls12(_) => {
                    tls12_on && allowed.iter().any(|a| a.id == u16::from(s.suite()))
                }
            })
            .copied()
            .collect();
        let rustls12: Vec<u16> = suites
            .iter()
            .filter(|s| {
                matches!(s, SupportedCipherSuite::Tls12(_))
                    && s.usable_for_signature_algorithm(key_alg)
            })
            .map(|s| u16::from(s.suite()))
            .collect();
        let mut versions: Vec<&'static rustls::SupportedProtocolVersion> =
            vec![&rustls::version::TLS13];
        if suites
            .iter()
            .any(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
        {
            versions.push(&rustls::version::TLS12);
        }
        let provider = Arc::new(CryptoProvider {
            cipher_suites: suites,
            ..base
        });
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_single_cert(cert.chain, cert.key)
            .map_err(|e| format!("{}: {e}", cert.origin))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsPolicy {
            min_version,
            allowed,
            rustls12,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            provider,
        })
    }

    /// Decide what to do with a parsed ClientHello.
    pub fn decide(&self, hello: &ClientHello) -> Decision {
        let best = hello
            .versions
            .iter()
            .copied()
            .filter(|v| (self.min_version..=TLS13).contains(v) && *v >= TLS10)
            .max();
        let alert_version = hello.record_version.clamp(TLS10, TLS12);
        let Some(version) = best else {
            return Decision::Reply(alert(alert_version, ALERT_PROTOCOL_VERSION));
        };
        if version == TLS13 {
            return Decision::Rustls;
        }
        if version == TLS12 && hello.suites.iter().any(|s| self.rustls12.contains(s)) {
            return Decision::Rustls;
        }
        let pick = self
            .allowed
            .iter()
            .find(|s| hello.suites.contains(&s.id) && (version == TLS12 || !s.tls12_only));
        match pick {
            Some(s) => {
                let mut random = [0u8; 32];
                if self.provider.secure_random.fill(&mut random).is_err() {
                    return Decision::Close;
                }
                // RFC 8446 §4.1.3 downgrade sentinel: a TLS 1.3 server negotiating less.
                random[24..31].copy_from_slice(b"DOWNGRD");
                random[31] = u8::from(version == TLS12);
                Decision::Reply(server_hello(version, s, hello, &random))
            }
            None => Decision::Reply(alert(version, ALERT_HANDSHAKE_FAILURE)),
        }
    }
}

/// One TLS record.
#[allow(clippy::cast_possible_truncation)] // records of a handshake message or an alert: far below 2^16 bytes
fn record(content_type: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(content_type);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A fatal alert record.
pub fn alert(version: u16, description: u8) -> Vec<u8> {
    record(0x15, version, &[2, description])
}

/// A ServerHello record (no Certificate etc. follows: the connection is closed).
#[allow(clippy::cast_possible_truncation)] // a ServerHello of under a hundred bytes
fn server_hello(version: u16, suite: &Suite, hello: &ClientHello, random: &[u8; 32]) -> Vec<u8> {
    let mut body = Vec::with_capacity(80);
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(random);
    body.push(0); // empty session id
    body.extend_from_slice(&suite.id.to_be_bytes());
    body.push(0); // null compression
    let mut ext = Vec::new();
    if hello.secure_renegotiation {
        ext.extend_from_slice(&[0xff, 0x01, 0x00, 0x01, 0x00]);
    }
    if hello.extended_master_secret {
        ext.extend_from_slice(&[0x00, 0x17, 0x00, 0x00]);
    }
    if suite.ecdhe && hello.ec_point_formats {
        ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    }
    if !ext.is_empty() {
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
    }
    let mut hs = Vec::with_capacity(4 + body.len());
    hs.push(2); // server_hello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    record(0x16, version, &hs)
}

/// What the serving port needs from a ClientHello.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub record_version: u16,
    /// Versions offered (`supported_versions`, else every version up to
    /// `legacy_version`), GREASE removed.
    pub versions: Vec<u16>,
    pub suites: Vec<u16>,
    pub secure_renegotiation: bool,
    pub extended_master_secret: bool,
    pub ec_point_formats: bool,
}

/// What the first bytes of a connection were.
pub enum Peeked {
    Hello(ClientHello),
    /// A plain HTTP request sent to the TLS port.
    Http,
    /// Not something we understand: rustls will answer it.
    Other,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

fn is_grease(v: u16) -> bool {
    (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff)
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .filter(|v| !is_grease(*v))
        .collect()
}

/// Parse a ClientHello handshake message (with its 4-byte header).
pub fn parse_client_hello(hs: &[u8], record_version: u16) -> Option<ClientHello> {
    let mut c = Cursor { buf: hs, pos: 0 };
    if c.u8()? != 1 {
        return None;
    }
    let len = c.u24()?;
    let body = c.take(len)?;
    let mut c = Cursor { buf: body, pos: 0 };
    let legacy_version = c.u16()?;
    c.take(32)?;
    c.vec8()?;
    let suites_raw = c.vec16()?;
    let suites = u16s(suites_raw);
    c.vec8()?;
    let mut hello = ClientHello {
        record_version,
        suites,
        secure_renegotiation: u16s(suites_raw).contains(&0x00ff),
        ..ClientHello::default()
    };
    let mut supported_versions: Option<Vec<u16>> = None;
    if c.remaining() >= 2 {
        let exts = c.vec16()?;
        let mut e = Cursor { buf: exts, pos: 0 };
        while e.remaining() > 0 {
            let ty = e.u16()?;
            let data = e.vec16()?;
            match ty {
                0x002b => {
                    let mut d = Cursor { buf: data, pos: 0 };
                    supported_versions = Some(u16s(d.vec8()?));
                }
                0xff01 => hello.secure_renegotiation = true,
                0x0017 => hello.extended_master_secret = true,
                0x000b => hello.ec_point_formats = true,
                _ => {}
            }
        }
    }
    hello.versions = match supported_versions.filter(|v| !v.is_empty()) {
        Some(v) => v,
        None => (0x0300..=legacy_version.min(TLS12)).collect(),
    };
    Some(hello)
}

/// Go's `looksLikeHTTP` on the first record header.
fn looks_like_http(hdr: &[u8]) -> bool {
    matches!(hdr, b"GET /" | b"HEAD " | b"POST " | b"PUT /" | b"OPTIO")
}

/// Read a connection's first TLS handshake message (over as many records as it takes),
/// returning every byte read (to replay into rustls) and what it was.
pub async fn read_client_hello<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<(Vec<u8>, Peeked)> {
    let mut raw = Vec::with_capacity(1024);
    let mut hdr = [0u8; 5];
    s.read_exact(&mut hdr).await?;
    raw.extend_from_slice(&hdr);
    if hdr[0] != 0x16 {
        let kind = if looks_like_http(&hdr) {
            Peeked::Http
        } else {
            Peeked::Other
        };
        return Ok((raw, kind));
    }
    let record_version = u16::from_be_bytes([hdr[1], hdr[2]]);
    let mut handshake: Vec<u8> = Vec::new();
    loop {
        let len = usize::from(u16::from_be_bytes([hdr[3], hdr[4]]));
        if len == 0 || len > 16_384 + 2_048 || raw.len() + len > MAX_HELLO {
            return Ok((raw, Peeked::Other));
        }
        let start = raw.len();
        raw.resize(start + len, 0);
        s.read_exact(&mut raw[start..]).await?;
        handshake.extend_from_slice(&raw[start..]);
        if handshake.len() >= 4 {
            let want = 4
                + ((usize::from(handshake[1]) << 16)
                    | (usize::from(handshake[2]) << 8)
                    | usize::from(handshake[3]));
            if handshake.len() >= want {
                let peeked = match parse_client_hello(&handshake[..want], record_version) {
                    Some(h) => Peeked::Hello(h),
                    None => Peeked::Other,
                };
                return Ok((raw, peeked));
            }
            if want > MAX_HELLO {
                return Ok((raw, Peeked::Other));
            }
        }
        s.read_exact(&mut hdr).await?;
        raw.extend_from_slice(&hdr);
        if hdr[0] != 0x16 {
            return Ok((raw, Peeked::Other));
        }
    }
}

/// A stream that first yields bytes already read from `inner`, then `inner` itself.
pub struct Replay<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Replay<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Replay {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.pos);
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
