//! Which protocol versions and TLS 1.2 cipher suites a TLS server accepts.
//!
//! No TLS library still speaks TLS 1.0/1.1 or RSA key exchange, so this writes one
//! ClientHello by hand (RFC 5246 §7.4.1.2, RFC 8446 §4.1.2) and reads only as far as the
//! server's first answer: a ServerHello (RFC 5246 §7.4.1.3, RFC 8446 §4.1.3), an alert
//! (RFC 5246 §7.2) or a close. No handshake is completed, no key is derived: the key
//! share in a TLS 1.3 hello is random bytes, which a server accepts as an X25519 public
//! key and answers before anything would have to be proven.
//!
//! Cipher suites are named as the kubelet's `tlsCipherSuites` names them (Go's
//! `crypto/tls` constants, as accepted by `k8s.io/component-base/cli/flag`). They equal
//! the IANA names except for the two ECDHE CHACHA20 suites, which Go's constants spell
//! without `_SHA256` (the IANA names are accepted by the kubelet too; see
//! [`IANA_ALIASES`]).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::socket::{connect, within, Timeouts};
use crate::model::snapshot::{ProbeError, ProbeErrorKind, ProbeResult};
pub use crate::model::tls::TlsVersion;
use crate::model::tls::{IANA_TLS12_SUITES, TLS13_SUITES};

/// Whether the server at `addr` accepts a handshake at exactly `version`: one ClientHello
/// offering only that version; accepted iff the ServerHello (or a TLS 1.3
/// HelloRetryRequest) selects it. An alert or a close before any ServerHello is
/// `Ok(false)`.
pub async fn accepts_version(
    addr: SocketAddr,
    version: TlsVersion,
    sni: Option<&str>,
    timeouts: &Timeouts,
) -> ProbeResult<bool> {
    let timeouts = *timeouts;
    let suites: Vec<u16> = match version {
        TlsVersion::Tls13 => TLS13_SUITES.iter().map(|(id, _)| *id).collect(),
        TlsVersion::Tls12 => IANA_TLS12_SUITES.iter().map(|(id, _)| *id).collect(),
        TlsVersion::Tls10 | TlsVersion::Tls11 => IANA_TLS12_SUITES
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !tls12_only(*id))
            .collect(),
    };
    let hello = ClientHello::new(version, suites, sni)?;
    let what = format!("TLS {} probe of {addr}", version.as_config_name());
    Ok(
        match exchange(addr, &hello.encode(), timeouts, &what).await? {
            Answer::Hello(h) => h.selected_version() == version.wire(),
            Answer::Alert { .. } | Answer::Closed => false,
        },
    )
}

/// Which of `suites` the server at `addr` accepts for TLS 1.2: one ClientHello per suite
/// offering only that suite, accepted iff the ServerHello selects TLS 1.2 and it. At most
/// `concurrency` connections are open at once; each has its own `timeouts`. Any probe
/// that ends in an error makes the whole result that error: a partial list is never
/// reported as complete. The answer keeps the order of `suites`.
pub async fn accepted_tls12_suites(
    addr: SocketAddr,
    sni: Option<&str>,
    suites: &[(u16, &'static str)],
    timeouts: &Timeouts,
    concurrency: usize,
) -> ProbeResult<Vec<(String, bool)>> {
    let timeouts = *timeouts;
    let concurrency = concurrency.max(1);
    let sni: Option<String> = sni.map(str::to_string);
    let mut results: Vec<Option<bool>> = vec![None; suites.len()];
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0usize;
    loop {
        while next < suites.len() && tasks.len() < concurrency {
            let (id, name) = suites[next];
            let hello = ClientHello::new(TlsVersion::Tls12, vec![id], sni.as_deref())?;
            let i = next;
            tasks.spawn(async move {
                let what = format!("TLS 1.2 suite {name} probe of {addr}");
                let r = exchange(addr, &hello.encode(), timeouts, &what)
                    .await
                    .map(|a| match a {
                        Answer::Hello(h) => {
                            h.selected_version() == TlsVersion::Tls12.wire() && h.cipher_suite == id
                        }
                        Answer::Alert { .. } | Answer::Closed => false,
                    });
                (i, r)
            });
            next += 1;
        }
        match tasks.join_next().await {
            None => break,
            Some(Ok((i, Ok(accepted)))) => results[i] = Some(accepted),
            // Dropping `tasks` aborts the probes still running.
            Some(Ok((_, Err(e)))) => return Err(e),
            Some(Err(e)) => {
                return Err(ProbeError::new(
                    ProbeErrorKind::Io,
                    format!("cipher suite probe task failed: {e}"),
                ))
            }
        }
    }
    suites
        .iter()
        .zip(results)
        .map(|((_, name), r)| match r {
            Some(a) => Ok((name.to_string(), a)),
            None => Err(ProbeError::new(
                ProbeErrorKind::Io,
                format!("cipher suite {name} was not probed"),
            )),
        })
        .collect()
}

/// Suites defined only for TLS 1.2 (SHA-256/384 PRF, AEAD): not offered for 1.0/1.1.
fn tls12_only(id: u16) -> bool {
    matches!(
        id,
        0xc02b
            | 0xc02f
            | 0xc02c
            | 0xc030
            | 0xcca8
            | 0xcca9
            | 0xc023
            | 0xc027
            | 0xc024
            | 0xc028
            | 0x009c
            | 0x009d
            | 0x003c
            | 0x003d
    )
}

/// Connect, send `hello`, read until the server's first answer.
async fn exchange(
    addr: SocketAddr,
    hello: &[u8],
    timeouts: Timeouts,
    what: &str,
) -> ProbeResult<Answer> {
    within(timeouts, what, async {
        let mut tcp = connect(addr, timeouts).await?;
        tcp.write_all(hello).await.map_err(|e| {
            super::socket::classify_io_error(&e, &format!("{what}: sending ClientHello"))
        })?;
        let mut reader = HelloReader::default();
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp
                .read(&mut buf)
                .await
                .map_err(|e| super::socket::classify_io_error(&e, &format!("{what}: reading")))?;
            if n == 0 {
                return reader.finish().map_err(|e| protocol(what, &e));
            }
            if let Some(answer) = reader.feed(&buf[..n]).map_err(|e| protocol(what, &e))? {
                return Ok(answer);
            }
        }
    })
    .await
}

fn protocol(what: &str, e: &str) -> ProbeError {
    ProbeError::new(ProbeErrorKind::Protocol, format!("{what}: {e}"))
}

// ---- wire format -------------------------------------------------------------------

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;

const HANDSHAKE_HELLO_REQUEST: u8 = 0;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_SERVER_HELLO: u8 = 2;

const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_EXTENDED_MASTER_SECRET: u16 = 0x0017;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
const EXT_KEY_SHARE: u16 = 0x0033;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;

const GROUP_X25519: u16 = 0x001d;
/// x25519, secp256r1, secp384r1, secp521r1.
const GROUPS: &[u16] = &[GROUP_X25519, 0x0017, 0x0018, 0x0019];

/// ecdsa_secp256r1_sha256, ecdsa_secp384r1_sha384, ecdsa_secp521r1_sha512, ed25519,
/// rsa_pss_rsae_sha256/384/512, rsa_pkcs1_sha256/384/512, rsa_pkcs1_sha1, ecdsa_sha1.
const SIGNATURE_SCHEMES: &[u16] = &[
    0x0403, 0x0503, 0x0603, 0x0807, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0201, 0x0203,
];

/// The `random` of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
pub(crate) const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Largest record accepted (2^14 plaintext + 2048 expansion, RFC 5246 §6.2.3).
const MAX_RECORD: usize = 16384 + 2048;
/// Largest handshake message buffered while waiting for a ServerHello (a ServerHello
/// is at most ~65.6 KiB: 2+32+33+2+1+2+65535).
const MAX_HANDSHAKE: usize = 1 << 17;

/// A ClientHello to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientHello {
    pub version: TlsVersion,
    pub suites: Vec<u16>,
    /// A DNS name for `server_name`; IP literals are never sent (RFC 6066 §3).
    pub sni: Option<String>,
    pub random: [u8; 32],
    /// Empty for ≤1.2; 32 bytes for 1.3 (middlebox compatibility mode, RFC 8446 §D.4).
    pub session_id: Vec<u8>,
    /// X25519 key share for 1.3.
    pub key_share: [u8; 32],
}

impl ClientHello {
    /// A hello with fresh random values.
    pub fn new(version: TlsVersion, suites: Vec<u16>, sni: Option<&str>) -> ProbeResult<Self> {
        let mut bytes = [0u8; 96];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut bytes)
            .map_err(|_| {
                ProbeError::new(ProbeErrorKind::Io, "no random bytes for a ClientHello")
            })?;
        let mut random = [0u8; 32];
        let mut key_share = [0u8; 32];
        random.copy_from_slice(&bytes[..32]);
        key_share.copy_from_slice(&bytes[64..]);
        let session_id = if version == TlsVersion::Tls13 {
            bytes[32..64].to_vec()
        } else {
            Vec::new()
        };
        Ok(ClientHello {
            version,
            suites,
            sni: sni
                .filter(|s| !s.is_empty() && s.parse::<std::net::IpAddr>().is_err())
                .map(str::to_string),
            random,
            session_id,
            key_share,
        })
    }

    /// The whole record: header, handshake header, ClientHello.
    pub fn encode(&self) -> Vec<u8> {
        let tls13 = self.version == TlsVersion::Tls13;
        let mut body = Vec::with_capacity(512);
        // legacy_version: 0x0303 for 1.3 (the real offer is in supported_versions).
        put_u16(
            &mut body,
            if tls13 {
                TlsVersion::Tls12.wire()
            } else {
                self.version.wire()
            },
        );
        body.extend_from_slice(&self.random);
        put_vec8(&mut body, &self.session_id);
        let mut suites = Vec::with_capacity(self.suites.len() * 2);
        for s in &self.suites {
            put_u16(&mut suites, *s);
        }
        put_vec16(&mut body, &suites);
        put_vec8(&mut body, &[0]); // compression: null only

        let mut exts = Vec::new();
        if let Some(name) = &self.sni {
            let mut entry = vec![0u8]; // host_name
            put_vec16(&mut entry, name.as_bytes());
            let mut list = Vec::new();
            put_vec16(&mut list, &entry);
            put_ext(&mut exts, EXT_SERVER_NAME, &list);
        }
        let mut groups = Vec::new();
        for g in GROUPS {
            put_u16(&mut groups, *g);
        }
        let mut data = Vec::new();
        put_vec16(&mut data, &groups);
        put_ext(&mut exts, EXT_SUPPORTED_GROUPS, &data);
        if !tls13 {
            put_ext(&mut exts, EXT_EC_POINT_FORMATS, &[1, 0]); // uncompressed
        }
        if self.version >= TlsVersion::Tls12 {
            let mut schemes = Vec::new();
            for s in SIGNATURE_SCHEMES {
                put_u16(&mut schemes, *s);
            }
            let mut data = Vec::new();
            put_vec16(&mut data, &schemes);
            put_ext(&mut exts, EXT_SIGNATURE_ALGORITHMS, &data);
        }
        if tls13 {
            put_ext(&mut exts, EXT_SUPPORTED_VERSIONS, &[2, 0x03, 0x04]);
            let mut share = Vec::new();
            put_u16(&mut share, GROUP_X25519);
            put_vec16(&mut share, &self.key_share);
            let mut data = Vec::new();
            put_vec16(&mut data, &share);
            put_ext(&mut exts, EXT_KEY_SHARE, &data);
        } else {
            put_ext(&mut exts, EXT_EXTENDED_MASTER_SECRET, &[]);
            put_ext(&mut exts, EXT_RENEGOTIATION_INFO, &[0]); // empty renegotiated_connection
        }
        put_vec16(&mut body, &exts);

        let mut hs = Vec::with_capacity(body.len() + 4);
        hs.push(HANDSHAKE_CLIENT_HELLO);
        put_u24(&mut hs, body.len());
        hs.extend_from_slice(&body);

        // Record version: the offered version for ≤1.2; 0x0301 for 1.3's initial hello
        // (RFC 8446 §5.1 allows it, and it is what Go and OpenSSL send).
        let record_version = if tls13 { 0x0301 } else { self.version.wire() };
        let mut rec = Vec::with_capacity(hs.len() + 5);
        rec.push(CONTENT_HANDSHAKE);
        put_u16(&mut rec, record_version);
        put_u16(&mut rec, hs.len() as u16);
        rec.extend_from_slice(&hs);
        rec
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u24(out: &mut Vec<u8>, v: usize) {
    let b = (v as u32).to_be_bytes();
    out.extend_from_slice(&b[1..]);
}

fn put_vec8(out: &mut Vec<u8>, v: &[u8]) {
    out.push(v.len() as u8);
    out.extend_from_slice(v);
}

fn put_vec16(out: &mut Vec<u8>, v: &[u8]) {
    put_u16(out, v.len() as u16);
    out.extend_from_slice(v);
}

fn put_ext(out: &mut Vec<u8>, typ: u16, data: &[u8]) {
    put_u16(out, typ);
    put_vec16(out, data);
}

/// The fields of a ServerHello that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerHello {
    /// `server_version` / `legacy_version`.
    pub legacy_version: u16,
    /// The `supported_versions` extension (TLS 1.3).
    pub supported_version: Option<u16>,
    pub cipher_suite: u16,
    /// A HelloRetryRequest (TLS 1.3: the server wants another key share).
    pub hello_retry: bool,
}

impl ServerHello {
    /// The version the server chose.
    pub fn selected_version(&self) -> u16 {
        self.supported_version.unwrap_or(self.legacy_version)
    }
}

/// The server's first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Hello(ServerHello),
    /// A fatal alert, or close_notify (level 1 = warning, 2 = fatal).
    Alert {
        level: u8,
        description: u8,
    },
    /// The server closed the connection cleanly without answering.
    Closed,
}

/// Incremental reader of the server's first flight: feed it bytes as they arrive.
#[derive(Debug, Default)]
pub(crate) struct HelloReader {
    /// Bytes not yet forming a whole record.
    buf: Vec<u8>,
    /// Handshake bytes not yet forming a whole message (messages may span records).
    hs: Vec<u8>,
}

impl HelloReader {
    /// Feed received bytes; `Some` once the first answer is complete.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Answer>, String> {
        self.buf.extend_from_slice(data);
        loop {
            if self.buf.len() < 5 {
                // Reject non-TLS bytes as soon as the first one is seen.
                if let Some(&t) = self.buf.first() {
                    check_content_type(t)?;
                }
                return Ok(None);
            }
            let typ = self.buf[0];
            check_content_type(typ)?;
            if self.buf[1] != 3 {
                return Err(format!(
                    "bad record version {:02x}{:02x}",
                    self.buf[1], self.buf[2]
                ));
            }
            let len = usize::from(u16::from_be_bytes([self.buf[3], self.buf[4]]));
            if len > MAX_RECORD {
                return Err(format!("record of {len} bytes exceeds the TLS limit"));
            }
            if self.buf.len() < 5 + len {
                return Ok(None);
            }
            let payload: Vec<u8> = self.buf[5..5 + len].to_vec();
            self.buf.drain(..5 + len);
            match typ {
                CONTENT_ALERT => {
                    if payload.len() != 2 {
                        return Err(format!("alert record of {} bytes", payload.len()));
                    }
                    let (level, description) = (payload[0], payload[1]);
                    // A warning other than close_notify (e.g. unrecognized_name, RFC 6066
                    // §3) does not end the handshake.
                    if level == 1 && description != 0 {
                        continue;
                    }
                    return Ok(Some(Answer::Alert { level, description }));
                }
                CONTENT_HANDSHAKE => {
                    self.hs.extend_from_slice(&payload);
                    if let Some(hello) = self.next_hello()? {
                        return Ok(Some(Answer::Hello(hello)));
                    }
                }
                CONTENT_CHANGE_CIPHER_SPEC => {
                    return Err("ChangeCipherSpec before the ServerHello".to_string())
                }
                _ => return Err("application data before the ServerHello".to_string()),
            }
        }
    }

    /// The peer closed: a clean close, unless it cut a record or message short.
    pub fn finish(&self) -> Result<Answer, String> {
        if self.buf.is_empty() && self.hs.is_empty() {
            Ok(Answer::Closed)
        } else {
            Err("connection closed in the middle of a record".to_string())
        }
    }

    fn next_hello(&mut self) -> Result<Option<ServerHello>, String> {
        loop {
            if self.hs.len() < 4 {
                return Ok(None);
            }
            let typ = self.hs[0];
            let len = usize::from(self.hs[1]) << 16
                | usize::from(self.hs[2]) << 8
                | usize::from(self.hs[3]);
            if len > MAX_HANDSHAKE {
                return Err(format!("handshake message of {len} bytes"));
            }
            if self.hs.len() < 4 + len {
                return Ok(None);
            }
            if typ == HANDSHAKE_HELLO_REQUEST && len == 0 {
                // May be sent at any time and ignored (RFC 5246 §7.4.1.1).
                self.hs.drain(..4);
                continue;
            }
            if typ != HANDSHAKE_SERVER_HELLO {
                return Err(format!("expected a ServerHello, got handshake type {typ}"));
            }
            return parse_server_hello(&self.hs[4..4 + len]).map(Some);
        }
    }
}

fn check_content_type(t: u8) -> Result<(), String> {
    match t {
        CONTENT_CHANGE_CIPHER_SPEC
        | CONTENT_ALERT
        | CONTENT_HANDSHAKE
        | CONTENT_APPLICATION_DATA => Ok(()),
        _ => Err(format!("not a TLS record (content type 0x{t:02x})")),
    }
}

/// Bounds-checked reads over a byte slice.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("ServerHello truncated in {what}"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Parse a ServerHello body (after the 4-byte handshake header).
pub(crate) fn parse_server_hello(body: &[u8]) -> Result<ServerHello, String> {
    let mut c = Cursor(body);
    let legacy_version = c.u16("server_version")?;
    let random = c.take(32, "random")?;
    let sid_len = usize::from(c.u8("session_id")?);
    if sid_len > 32 {
        return Err(format!("session_id of {sid_len} bytes"));
    }
    c.take(sid_len, "session_id")?;
    let cipher_suite = c.u16("cipher_suite")?;
    c.u8("compression_method")?;
    let mut supported_version = None;
    if !c.0.is_empty() {
        let ext_len = usize::from(c.u16("extensions")?);
        let mut exts = Cursor(c.take(ext_len, "extensions")?);
        while !exts.0.is_empty() {
            let typ = exts.u16("extension type")?;
            let len = usize::from(exts.u16("extension length")?);
            let data = exts.take(len, "extension data")?;
            if typ == EXT_SUPPORTED_VERSIONS {
                if data.len() != 2 {
                    return Err(format!("supported_versions of {} bytes", data.len()));
                }
                supported_version = Some(u16::from_be_bytes([data[0], data[1]]));
            }
        }
        if !c.0.is_empty() {
            return Err("bytes after the ServerHello extensions".to_string());
        }
    }
    Ok(ServerHello {
        legacy_version,
        supported_version,
        cipher_suite,
        hello_retry: random == HRR_RANDOM,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::live::socket::testutil;
    use std::time::{Duration, Instant};

    fn fixed_hello(version: TlsVersion, suites: Vec<u16>, sni: Option<&str>) -> ClientHello {
        let mut h = ClientHello::new(version, suites, sni).unwrap();
        h.random = [0xaa; 32];
        h.key_share = [0xbb; 32];
        if version == TlsVersion::Tls13 {
            h.session_id = vec![0xcc; 32];
        }
        h
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn tls12_single_suite_hello_is_byte_exact() {
        let got = fixed_hello(TlsVersion::Tls12, vec![0xc02f], Some("node-1")).encode();
        let mut want = hex("16 0303 0079"); // record: handshake, TLS 1.2, 121 bytes
        want.extend(hex("01 000075")); // ClientHello, 117 bytes
        want.extend(hex("0303"));
        want.extend([0xaa; 32]);
        want.extend(hex("00")); // no session id
        want.extend(hex("0002 c02f")); // one suite
        want.extend(hex("01 00")); // null compression
        want.extend(hex("004a")); // 74 bytes of extensions
        want.extend(hex("0000 000b 0009 00 0006 6e6f64652d31")); // server_name node-1
        want.extend(hex("000a 000a 0008 001d 0017 0018 0019")); // supported_groups
        want.extend(hex("000b 0002 01 00")); // ec_point_formats
        want.extend(hex(
            "000d 001a 0018 0403 0503 0603 0807 0804 0805 0806 0401 0501 0601 0201 0203",
        ));
        want.extend(hex("0017 0000")); // extended_master_secret
        want.extend(hex("ff01 0001 00")); // renegotiation_info
        assert_eq!(got, want);
    }

    #[test]
    fn tls13_hello_is_byte_exact() {
        let got = fixed_hello(
            TlsVersion::Tls13,
            TLS13_SUITES.iter().map(|s| s.0).collect(),
            None,
        )
        .encode();
        let mut want = hex("16 0301 00b0"); // initial-hello record version 0x0301, 176 bytes
        want.extend(hex("01 0000ac")); // ClientHello, 172 bytes
        want.extend(hex("0303")); // legacy_version
        want.extend([0xaa; 32]);
        want.extend(hex("20"));
        want.extend([0xcc; 32]);
        want.extend(hex("0006 1301 1302 1303"));
        want.extend(hex("01 00"));
        want.extend(hex("005d")); // 93 bytes of extensions
        want.extend(hex("000a 000a 0008 001d 0017 0018 0019"));
        want.extend(hex(
            "000d 001a 0018 0403 0503 0603 0807 0804 0805 0806 0401 0501 0601 0201 0203",
        ));
        want.extend(hex("002b 0003 02 0304")); // supported_versions: 1.3 only
        want.extend(hex("0033 0026 0024 001d 0020"));
        want.extend([0xbb; 32]);
        assert_eq!(got, want);
    }

    #[test]
    fn old_versions_offer_no_tls12_suites_and_no_signature_algorithms() {
        let suites: Vec<u16> = IANA_TLS12_SUITES
            .iter()
            .map(|s| s.0)
            .filter(|id| !tls12_only(*id))
            .collect();
        assert!(suites.contains(&0xc013) && suites.contains(&0x000a));
        assert!(!suites.contains(&0xc02f) && !suites.contains(&0xcca8));
        let got = fixed_hello(TlsVersion::Tls10, suites, Some("10.0.0.1")).encode();
        assert_eq!(&got[..3], &[0x16, 0x03, 0x01]);
        assert_eq!(&got[9..11], &[0x03, 0x01]); // client_version
                                                // No server_name for an IP literal; no signature_algorithms before 1.2.
        assert!(!got.windows(8).any(|w| w == b"10.0.0.1"));
        assert_eq!(
            parse_client_hello_exts(&got),
            vec![
                EXT_SUPPORTED_GROUPS,
                EXT_EC_POINT_FORMATS,
                EXT_EXTENDED_MASTER_SECRET,
                EXT_RENEGOTIATION_INFO
            ]
        );
    }

    /// Extension types of an encoded ClientHello record.
    fn parse_client_hello_exts(rec: &[u8]) -> Vec<u16> {
        let mut c = Cursor(&rec[9..]);
        c.take(2 + 32, "").unwrap();
        let sid = c.u8("").unwrap() as usize;
        c.take(sid, "").unwrap();
        let n = c.u16("").unwrap() as usize;
        c.take(n, "").unwrap();
        let n = c.u8("").unwrap() as usize;
        c.take(n, "").unwrap();
        let n = c.u16("").unwrap() as usize;
        let mut e = Cursor(c.take(n, "").unwrap());
        assert!(c.0.is_empty());
        let mut out = Vec::new();
        while !e.0.is_empty() {
            out.push(e.u16("").unwrap());
            let l = e.u16("").unwrap() as usize;
            e.take(l, "").unwrap();
        }
        out
    }

    /// A ServerHello handshake message (header included).
    fn server_hello(
        version: u16,
        random: [u8; 32],
        suite: u16,
        exts: &[(u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut body = Vec::new();
        put_u16(&mut body, version);
        body.extend_from_slice(&random);
        put_vec8(&mut body, &[7; 32]);
        put_u16(&mut body, suite);
        body.push(0);
        if !exts.is_empty() {
            let mut e = Vec::new();
            for (t, d) in exts {
                put_ext(&mut e, *t, d);
            }
            put_vec16(&mut body, &e);
        }
        let mut hs = vec![HANDSHAKE_SERVER_HELLO];
        put_u24(&mut hs, body.len());
        hs.extend(body);
        hs
    }

    fn record(typ: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![typ, 3, 3];
        put_u16(&mut r, payload.len() as u16);
        r.extend_from_slice(payload);
        r
    }

    fn read_all(bytes: &[u8]) -> Result<Answer, String> {
        let mut r = HelloReader::default();
        match r.feed(bytes)? {
            Some(a) => Ok(a),
            None => r.finish(),
        }
    }

    #[test]
    fn reads_tls12_server_hello_and_following_records() {
        let mut bytes = record(
            CONTENT_HANDSHAKE,
            &server_hello(
                0x0303,
                [1; 32],
                0xc02f,
                &[(EXT_RENEGOTIATION_INFO, vec![0])],
            ),
        );
        // The Certificate that follows in the same read does not matter.
        bytes.extend(record(CONTENT_HANDSHAKE, &[11, 0, 0, 3, 0, 0, 0]));
        let a = read_all(&bytes).unwrap();
        assert_eq!(
            a,
            Answer::Hello(ServerHello {
                legacy_version: 0x0303,
                supported_version: None,
                cipher_suite: 0xc02f,
                hello_retry: false
            })
        );
        // TLS 1.0 server without extensions.
        let a = read_all(&record(
            CONTENT_HANDSHAKE,
            &server_hello(0x0301, [1; 32], 0x002f, &[]),
        ));
        match a.unwrap() {
            Answer::Hello(h) => assert_eq!(h.selected_version(), 0x0301),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_tls13_server_hello_and_hello_retry_request() {
        let sh = server_hello(
            0x0303,
            [9; 32],
            0x1301,
            &[
                (EXT_KEY_SHARE, vec![0; 36]),
                (EXT_SUPPORTED_VERSIONS, vec![3, 4]),
            ],
        );
        match read_all(&record(CONTENT_HANDSHAKE, &sh)).unwrap() {
            Answer::Hello(h) => {
                assert_eq!(h.selected_version(), 0x0304);
                assert!(!h.hello_retry);
            }
            other => panic!("{other:?}"),
        }
        let hrr = server_hello(
            0x0303,
            HRR_RANDOM,
            0x1302,
            &[
                (EXT_SUPPORTED_VERSIONS, vec![3, 4]),
                (EXT_KEY_SHARE, vec![0, 0x17]),
            ],
        );
        match read_all(&record(CONTENT_HANDSHAKE, &hrr)).unwrap() {
            Answer::Hello(h) => {
                assert_eq!(h.selected_version(), 0x0304);
                assert!(h.hello_retry);
                assert_eq!(h.cipher_suite, 0x1302);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_alerts_closes_and_split_records() {
        // Fatal protocol_version alert.
        assert_eq!(
            read_all(&hex("15 0303 0002 02 46")).unwrap(),
            Answer::Alert {
                level: 2,
                description: 70
            }
        );
        // Warning unrecognized_name is skipped; the handshake_failure after it counts.
        assert_eq!(
            read_all(&hex("15 0303 0002 01 70  15 0303 0002 02 28")).unwrap(),
            Answer::Alert {
                level: 2,
                description: 40
            }
        );
        // close_notify, then a clean close.
        assert_eq!(
            read_all(&hex("15 0303 0002 01 00")).unwrap(),
            Answer::Alert {
                level: 1,
                description: 0
            }
        );
        assert_eq!(read_all(&[]).unwrap(), Answer::Closed);
        // Cut short.
        assert!(read_all(&hex("16 0303 0010 02")).is_err());

        // A ServerHello split byte by byte, and one split across two records.
        let sh = server_hello(0x0303, [1; 32], 0xc030, &[]);
        let rec = record(CONTENT_HANDSHAKE, &sh);
        let mut r = HelloReader::default();
        let mut got = None;
        for b in &rec {
            assert!(got.is_none());
            got = r.feed(&[*b]).unwrap();
        }
        assert!(matches!(got, Some(Answer::Hello(h)) if h.cipher_suite == 0xc030));
        let mut two = record(CONTENT_HANDSHAKE, &sh[..10]);
        two.extend(record(CONTENT_HANDSHAKE, &sh[10..]));
        assert!(matches!(read_all(&two).unwrap(), Answer::Hello(h) if h.cipher_suite == 0xc030));
        // A HelloRequest before it is ignored.
        let mut hr = record(CONTENT_HANDSHAKE, &[0, 0, 0, 0]);
        hr.extend(rec);
        assert!(matches!(read_all(&hr).unwrap(), Answer::Hello(_)));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        assert!(read_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").is_err());
        // Rejected on the first byte, without waiting for more.
        assert!(HelloReader::default().feed(b"H").is_err());
        assert!(read_all(&hex("16 0200 0001 00")).is_err()); // SSL 2-ish version
        assert!(read_all(&hex("16 0303 ffff")).is_err()); // oversized record
        assert!(read_all(&hex("17 0303 0001 00")).is_err()); // application data
        assert!(read_all(&hex("14 0303 0001 01")).is_err()); // CCS first
        assert!(read_all(&record(CONTENT_HANDSHAKE, &[11, 0, 0, 0])).is_err()); // not a hello
        assert!(read_all(&record(CONTENT_HANDSHAKE, &[2, 0, 0, 3, 3, 3, 0])).is_err()); // short
        assert!(read_all(&hex("15 0303 0003 02 28 00")).is_err()); // odd alert
        let mut sh = server_hello(
            0x0303,
            [1; 32],
            0xc02f,
            &[(EXT_SUPPORTED_VERSIONS, vec![3])],
        );
        assert!(read_all(&record(CONTENT_HANDSHAKE, &sh)).is_err());
        sh = server_hello(0x0303, [1; 32], 0xc02f, &[]);
        sh.push(0); // trailing byte inside the message
        sh[3] += 1;
        assert!(read_all(&record(CONTENT_HANDSHAKE, &sh)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn reader_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
                               cuts in proptest::collection::vec(0usize..600, 0..8)) {
            let mut r = HelloReader::default();
            let mut cuts = cuts;
            cuts.push(data.len());
            cuts.sort_unstable();
            let mut start = 0;
            for c in cuts {
                let c = c.min(data.len());
                if c < start { continue; }
                match r.feed(&data[start..c]) {
                    Ok(None) => {}
                    Ok(Some(_)) | Err(_) => break,
                }
                start = c;
            }
            let _ = r.finish();
        }

        #[test]
        fn structured_hellos_never_panic(version in 0u16..0x0400, suite in proptest::num::u16::ANY,
                                         ext in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
                                         cut in 0usize..200) {
            let mut sh = server_hello(version, [3; 32], suite, &[(EXT_SUPPORTED_VERSIONS, ext)]);
            let cut = cut.min(sh.len());
            sh.truncate(cut.max(4));
            let _ = read_all(&record(CONTENT_HANDSHAKE, &sh));
        }

        #[test]
        fn chunking_does_not_change_the_answer(split in 1usize..60) {
            let sh = server_hello(0x0303, [5; 32], 0x1303, &[(EXT_SUPPORTED_VERSIONS, vec![3, 4])]);
            let rec = record(CONTENT_HANDSHAKE, &sh);
            let mut r = HelloReader::default();
            let mut answer = None;
            for chunk in rec.chunks(split) {
                if let Some(a) = r.feed(chunk).unwrap() { answer = Some(a); }
            }
            proptest::prop_assert_eq!(answer, Some(read_all(&rec).unwrap()));
        }
    }

    // ---- against real servers on 127.0.0.1 ------------------------------------------

    fn t() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(2),
            overall: Duration::from_secs(5),
        }
    }

    async fn versions(addr: SocketAddr) -> Vec<(TlsVersion, bool)> {
        let mut out = Vec::new();
        for v in TlsVersion::ALL {
            out.push((
                v,
                accepts_version(addr, v, Some("localhost"), &t())
                    .await
                    .unwrap(),
            ));
        }
        out
    }

    #[tokio::test]
    async fn tls13_only_server() {
        let addr = testutil::tls_server(testutil::server_config(
            &[&rustls::version::TLS13],
            None,
            None,
        ))
        .await;
        use TlsVersion::*;
        assert_eq!(
            versions(addr).await,
            vec![
                (Tls10, false),
                (Tls11, false),
                (Tls12, false),
                (Tls13, true)
            ]
        );
        let suites = accepted_tls12_suites(addr, None, IANA_TLS12_SUITES, &t(), 4)
            .await
            .unwrap();
        assert_eq!(suites.len(), IANA_TLS12_SUITES.len());
        assert!(suites.iter().all(|(_, a)| !a), "{suites:?}");
    }

    #[tokio::test]
    async fn tls12_only_server_with_given_suites() {
        use rustls::crypto::ring::cipher_suite as cs;
        let config = testutil::server_config(
            &[&rustls::version::TLS12],
            Some(vec![
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                // Offered by the server but unusable with its ECDSA certificate.
                cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ]),
            None,
        );
        let addr = testutil::tls_server(config).await;
        use TlsVersion::*;
        assert_eq!(
            versions(addr).await,
            vec![
                (Tls10, false),
                (Tls11, false),
                (Tls12, true),
                (Tls13, false)
            ]
        );
        // Refusals are the server's fatal alerts, not closes or errors. (rustls answers a
        // TLS 1.0 hello with handshake_failure: without signature_algorithms it finds no
        // usable certificate before it looks at the version; Go says protocol_version.)
        for (v, suites, alert) in [
            (Tls10, vec![0xc009], 40),
            (Tls13, vec![0x1301], 70), // protocol_version
            (Tls12, vec![0xc02f], 40), // handshake_failure: no common suite
        ] {
            let hello = ClientHello::new(v, suites, None).unwrap().encode();
            assert_eq!(
                exchange(addr, &hello, t(), "x").await.unwrap(),
                Answer::Alert {
                    level: 2,
                    description: alert
                },
                "{v:?}"
            );
        }
        let suites = accepted_tls12_suites(addr, Some("localhost"), IANA_TLS12_SUITES, &t(), 3)
            .await
            .unwrap();
        let names: Vec<&str> = suites.iter().map(|(n, _)| n.as_str()).collect();
        let want: Vec<&str> = IANA_TLS12_SUITES.iter().map(|s| s.1).collect();
        assert_eq!(names, want, "order is the input's");
        let accepted: Vec<&str> = suites
            .iter()
            .filter(|(_, a)| *a)
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            accepted,
            vec![
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
            ]
        );
    }

    #[tokio::test]
    async fn hello_retry_request_counts_as_accepted() {
        // The server only does P-256: our X25519 key share gets a HelloRetryRequest.
        let config = testutil::server_config(
            &[&rustls::version::TLS13],
            None,
            Some(vec![rustls::crypto::ring::kx_group::SECP256R1]),
        );
        let addr = testutil::tls_server(config).await;
        let hello = ClientHello::new(TlsVersion::Tls13, vec![0x1301], None).unwrap();
        match exchange(addr, &hello.encode(), t(), "hrr").await.unwrap() {
            Answer::Hello(h) => assert!(h.hello_retry, "{h:?}"),
            other => panic!("{other:?}"),
        }
        assert!(accepts_version(addr, TlsVersion::Tls13, None, &t())
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn silent_refused_and_non_tls_peers() {
        let quick = Timeouts {
            connect: Duration::from_millis(500),
            overall: Duration::from_millis(400),
        };
        let silent = testutil::silent_server().await;
        let start = Instant::now();
        let e = accepts_version(silent, TlsVersion::Tls12, None, &quick)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ProbeErrorKind::Timeout, "{e}");
        assert!(start.elapsed() < Duration::from_secs(2));
        // One silent suite probe fails the whole scan.
        let start = Instant::now();
        let e = accepted_tls12_suites(silent, None, IANA_TLS12_SUITES, &quick, 4)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ProbeErrorKind::Timeout, "{e}");
        assert!(start.elapsed() < Duration::from_secs(3));

        let closed = testutil::closed_port().await;
        let e = accepts_version(closed, TlsVersion::Tls13, None, &quick)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ProbeErrorKind::Refused, "{e}");
        let e = accepted_tls12_suites(closed, None, &IANA_TLS12_SUITES[..2], &quick, 1)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ProbeErrorKind::Refused, "{e}");

        let http = testutil::canned_server(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        let e = accepts_version(http, TlsVersion::Tls12, None, &quick)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ProbeErrorKind::Protocol, "{e}");

        let closer = testutil::canned_server(b"").await;
        assert!(!accepts_version(closer, TlsVersion::Tls12, None, &quick)
            .await
            .unwrap());
    }
}
