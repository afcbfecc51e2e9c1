//! The TLS wire format the scans need: a ClientHello written by hand (RFC 5246 §7.4.1.2,
//! RFC 8446 §4.1.2) and an incremental reader of the server's first answer (ServerHello,
//! alert or close), with the bounds on what it buffers.

use crate::model::live::{LiveError, LiveErrorKind, LiveResult};
use crate::model::tls::TlsVersion;

pub(super) const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
pub(super) const CONTENT_ALERT: u8 = 21;
pub(super) const CONTENT_HANDSHAKE: u8 = 22;
pub(super) const CONTENT_APPLICATION_DATA: u8 = 23;

pub(super) const HANDSHAKE_HELLO_REQUEST: u8 = 0;
pub(super) const HANDSHAKE_CLIENT_HELLO: u8 = 1;
pub(super) const HANDSHAKE_SERVER_HELLO: u8 = 2;

pub(super) const EXT_SERVER_NAME: u16 = 0x0000;
pub(super) const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
pub(super) const EXT_EC_POINT_FORMATS: u16 = 0x000b;
pub(super) const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
pub(super) const EXT_EXTENDED_MASTER_SECRET: u16 = 0x0017;
pub(super) const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
pub(super) const EXT_KEY_SHARE: u16 = 0x0033;
pub(super) const EXT_RENEGOTIATION_INFO: u16 = 0xff01;

pub(super) const GROUP_X25519: u16 = 0x001d;
/// x25519, secp256r1, secp384r1, secp521r1.
pub(super) const GROUPS: &[u16] = &[GROUP_X25519, 0x0017, 0x0018, 0x0019];

/// ecdsa_secp256r1_sha256, ecdsa_secp384r1_sha384, ecdsa_secp521r1_sha512, ed25519,
/// rsa_pss_rsae_sha256/384/512, rsa_pkcs1_sha256/384/512, rsa_pkcs1_sha1, ecdsa_sha1.
pub(super) const SIGNATURE_SCHEMES: &[u16] = &[
    0x0403, 0x0503, 0x0603, 0x0807, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0201, 0x0203,
];

/// The `random` of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
pub(super) const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Largest record accepted (2^14 plaintext + 2048 expansion, RFC 5246 §6.2.3).
pub(super) const MAX_RECORD: usize = 16384 + 2048;
/// Largest handshake message buffered while waiting for a ServerHello (a ServerHello
/// is at most ~65.6 KiB: 2+32+33+2+1+2+65535).
pub(super) const MAX_HANDSHAKE: usize = 1 << 17;

/// A ClientHello to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClientHello {
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
    pub fn new(version: TlsVersion, suites: Vec<u16>, sni: Option<&str>) -> LiveResult<Self> {
        let mut bytes = [0u8; 96];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut bytes)
            .map_err(|_| LiveError::new(LiveErrorKind::Io, "no random bytes for a ClientHello"))?;
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
        put_u16(&mut rec, u16::try_from(hs.len()).unwrap_or(u16::MAX));
        rec.extend_from_slice(&hs);
        rec
    }
}

pub(super) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

// The encoders below write lengths of the ClientHello this module builds: a handful of
// extensions and at most a few hundred cipher suites, far below each field's maximum.
#[allow(clippy::cast_possible_truncation)] // bounded by construction (above)
pub(super) fn put_u24(out: &mut Vec<u8>, v: usize) {
    let b = (v as u32).to_be_bytes();
    out.extend_from_slice(&b[1..]);
}

#[allow(clippy::cast_possible_truncation)] // bounded by construction (above)
pub(super) fn put_vec8(out: &mut Vec<u8>, v: &[u8]) {
    out.push(v.len() as u8);
    out.extend_from_slice(v);
}

#[allow(clippy::cast_possible_truncation)] // bounded by construction (above)
pub(super) fn put_vec16(out: &mut Vec<u8>, v: &[u8]) {
    put_u16(out, v.len() as u16);
    out.extend_from_slice(v);
}

pub(super) fn put_ext(out: &mut Vec<u8>, typ: u16, data: &[u8]) {
    put_u16(out, typ);
    put_vec16(out, data);
}

/// The fields of a ServerHello that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerHello {
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
pub(super) enum Answer {
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
pub(super) struct HelloReader {
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

pub(super) fn check_content_type(t: u8) -> Result<(), String> {
    match t {
        CONTENT_CHANGE_CIPHER_SPEC
        | CONTENT_ALERT
        | CONTENT_HANDSHAKE
        | CONTENT_APPLICATION_DATA => Ok(()),
        _ => Err(format!("not a TLS record (content type 0x{t:02x})")),
    }
}

/// Bounds-checked reads over a byte slice.
pub(super) struct Cursor<'a>(pub(super) &'a [u8]);

impl<'a> Cursor<'a> {
    pub(super) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("ServerHello truncated in {what}"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(super) fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    pub(super) fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Parse a ServerHello body (after the 4-byte handshake header).
pub(super) fn parse_server_hello(body: &[u8]) -> Result<ServerHello, String> {
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
