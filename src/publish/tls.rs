//! HTTPS for `/metrics` (`--metrics-tls-cert/--metrics-tls-key`, `--metrics-tls-self-signed`).
//!
//! rustls with the ring provider, TLS 1.2 and 1.3, no client certificate, ALPN
//! `http/1.1` (the server speaks HTTP/1.1 only).
//!
//! The certificate and key given as files are **reloaded when they change** (cert-manager
//! or a projected Secret rotating them): [`ReloadingResolver`] checks, at most every
//! [`RELOAD_CHECK_INTERVAL`] and only when a handshake asks for the certificate, the SHA-256
//! of both files' contents; when it changed, the new pair is parsed and, if its key
//! matches its certificate, swapped in. A pair that does not load (half-written, garbage,
//! key of another certificate) is logged and the previous pair keeps serving; the next
//! change of the files is tried again. A pair that does not load at start is a start error.
//!
//! The files are the agent's own (its pod's volumes), read with
//! `host::read_operator_file` (regular files only, never blocking on a FIFO) and capped
//! at [`MAX_PEM_BYTES`].

use crate::io::host::MAX_PEM_BYTES;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often, at most, a handshake re-reads the files to see whether they changed.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Bound on a client's TLS handshake (Go's net/http bounds it by the shortest of the
/// server's read, read-header and write timeouts: `net/http/server.go`,
/// `Server.tlsHandshakeTimeout`). A handshake on a datacenter network takes milliseconds;
/// a silent connection holds its slot this long at most (see [`super::listener`], whose
/// connection caps also bound the handshakes in progress).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files: a certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or
    /// SEC1), reloaded when they change.
    Files {
        /// The PEM certificate chain, leaf first (`--metrics-tls-cert`).
        cert: PathBuf,
        /// The PEM private key of the leaf (`--metrics-tls-key`).
        key: PathBuf,
    },
    /// A self-signed certificate made in memory at start (for these names), new at every
    /// start and never written anywhere.
    SelfSigned {
        /// The certificate's DNS subject alternative names (the node name when it is a
        /// DNS name, `localhost`, `kubelet-sentinel`).
        names: Vec<String>,
    },
}

/// Why a certificate and key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read (missing, unreadable, not a regular file).
    #[error("{path}: {error}")]
    Read {
        /// The certificate or key file.
        path: PathBuf,
        /// The read error.
        error: std::io::Error,
    },
    /// A file is larger than [`MAX_PEM_BYTES`].
    #[error("{path}: larger than {MAX_PEM_BYTES} bytes")]
    TooLarge {
        /// The certificate or key file.
        path: PathBuf,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{path}: no PEM certificate in it")]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The certificate file's PEM is malformed.
    #[error("{path}: {why}")]
    Pem {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong, redacted (never a line of the file).
        why: String,
    },
    /// The key file holds no usable PEM private key.
    #[error("{path}: no PEM private key in it ({why})")]
    NoKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong, redacted (never a line of the file).
        why: String,
    },
    /// The key is not the private key of the chain's leaf certificate (or rustls cannot
    /// use it).
    #[error("the key {key} does not fit the certificate {cert}: {error}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        error: rustls::Error,
    },
    /// rcgen could not make the self-signed certificate (`--metrics-tls-self-signed`).
    #[error("self-signed certificate: {0}")]
    SelfSigned(rcgen::Error),
    /// rustls-pki-types' `PrivateKeyDer::try_from` says why in a static string.
    #[error("self-signed certificate: {0}")]
    SelfSignedKey(&'static str),
    /// rustls refused the server configuration (TLS 1.2 and 1.3 with the ring provider).
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
    /// The blocking task that loads the pair did not finish (it panicked or was cancelled).
    #[error("TLS configuration: {0}")]
    Task(tokio::task::JoinError),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read a file of at most [`MAX_PEM_BYTES`] ([`crate::io::host::read_operator_file`]: a
/// regular file only, opened non-blocking, so a FIFO or device is refused, never read).
fn read_capped(path: &Path) -> Result<Vec<u8>, TlsError> {
    crate::io::host::read_operator_file(path, MAX_PEM_BYTES).map_err(|e| match e {
        crate::model::file::HostError::TooLarge { .. } => TlsError::TooLarge {
            path: path.to_path_buf(),
        },
        e => TlsError::Read {
            path: path.to_path_buf(),
            error: e.into_io_error(),
        },
    })
}

/// Parse a PEM certificate chain and key into a [`CertifiedKey`] whose key matches its
/// leaf certificate.
pub fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_path.to_path_buf(),
            // Redacted: rustls' PEM errors quote a line of the file.
            why: crate::model::parse::pem_fault(&e).to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::NoKey {
        path: key_path.to_path_buf(),
        // Redacted: rustls' PEM errors quote a line of the (key) file.
        why: crate::model::parse::pem_fault(&e).to_string(),
    })?;
    certified(chain, key, cert_path, key_path)
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let ck = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| TlsError::Mismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        error: e,
    })?;
    // `from_der` lets "cannot tell" pass; a serving pair must be known to match.
    ck.keys_match().map_err(|e| TlsError::Mismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        error: e,
    })?;
    Ok(ck)
}

/// A self-signed certificate for `names` (subject alternative names), made in memory.
pub fn self_signed(names: &[String]) -> Result<CertifiedKey, TlsError> {
    let made = rcgen::generate_simple_self_signed(names.to_vec()).map_err(TlsError::SelfSigned)?;
    let chain = vec![made.cert.der().clone()];
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(TlsError::SelfSignedKey)?;
    certified(
        chain,
        key,
        Path::new("(self-signed)"),
        Path::new("(self-signed)"),
    )
}

/// SHA-256 over both files' contents: what "changed" means for a reload.
fn fingerprint(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&(cert.len() as u64).to_be_bytes());
    ctx.update(cert);
    ctx.update(key);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

struct Reload {
    cert: PathBuf,
    key: PathBuf,
    /// Fingerprint of the files last tried (loaded or refused): unchanged files are not
    /// parsed again.
    last: [u8; 32],
    checked: Instant,
    /// The last failure's text, logged once per distinct failure.
    last_error: Option<String>,
}

/// Serves the current pair; with files, reloads them when they change (see the module).
pub struct ReloadingResolver {
    current: std::sync::RwLock<Arc<CertifiedKey>>,
    reload: Option<Mutex<Reload>>,
    check_interval: Duration,
}

impl std::fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingResolver")
            .field("reloads", &self.reload.is_some())
            .finish()
    }
}

impl ReloadingResolver {
    /// Load the pair from `source` (an error here is a start error).
    pub fn new(source: &TlsSource) -> Result<ReloadingResolver, TlsError> {
        Self::with_interval(source, RELOAD_CHECK_INTERVAL)
    }

    /// [`ReloadingResolver::new`] with another check interval (tests).
    pub fn with_interval(
        source: &TlsSource,
        check_interval: Duration,
    ) -> Result<ReloadingResolver, TlsError> {
        match source {
            TlsSource::SelfSigned { names } => Ok(ReloadingResolver {
                current: std::sync::RwLock::new(Arc::new(self_signed(names)?)),
                reload: None,
                check_interval,
            }),
            TlsSource::Files { cert, key } => {
                let cert_pem = read_capped(cert)?;
                let key_pem = read_capped(key)?;
                let ck = parse_pair(&cert_pem, &key_pem, cert, key)?;
                Ok(ReloadingResolver {
                    current: std::sync::RwLock::new(Arc::new(ck)),
                    reload: Some(Mutex::new(Reload {
                        cert: cert.clone(),
                        key: key.clone(),
                        last: fingerprint(&cert_pem, &key_pem),
                        checked: Instant::now(),
                        last_error: None,
                    })),
                    check_interval,
                })
            }
        }
    }

    /// The pair served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Re-read the files if the check interval has passed; swap in a changed pair that
    /// loads. Returns whether a new pair was swapped in.
    pub fn maybe_reload(&self) -> bool {
        let Some(reload) = &self.reload else {
            return false;
        };
        // A handshake that finds another one checking does not wait for it.
        let Ok(mut r) = reload.try_lock() else {
            return false;
        };
        if r.checked.elapsed() < self.check_interval {
            return false;
        }
        r.checked = Instant::now();
        let read = read_capped(&r.cert).and_then(|c| Ok((c, read_capped(&r.key)?)));
        let (cert_pem, key_pem) = match read {
            Ok(pair) => pair,
            Err(e) => {
                let text = e.to_string();
                if r.last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "metrics TLS: cannot read the certificate or key; the previous pair keeps serving");
                    r.last_error = Some(text);
                }
                return false;
            }
        };
        let fp = fingerprint(&cert_pem, &key_pem);
        if fp == r.last {
            return false;
        }
        r.last = fp;
        match parse_pair(&cert_pem, &key_pem, &r.cert, &r.key) {
            Ok(ck) => {
                let ck = Arc::new(ck);
                match self.current.write() {
                    Ok(mut c) => *c = ck,
                    Err(poisoned) => *poisoned.into_inner() = ck,
                }
                r.last_error = None;
                tracing::info!(cert = %r.cert.display(), "metrics TLS: certificate reloaded");
                true
            }
            Err(e) => {
                let text = e.to_string();
                tracing::warn!(error = %text, "metrics TLS: the changed certificate or key does not load; the previous pair keeps serving");
                r.last_error = Some(text);
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.maybe_reload();
        Some(self.current())
    }
}

/// The server's TLS configuration: TLS 1.2+, no client certificate, HTTP/1.1.
pub fn server_config(
    resolver: Arc<ReloadingResolver>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str]) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(
            names
                .iter()
                .map(std::string::ToString::to_string)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    fn files(dir: &Path, cert: &str, key: &str) -> TlsSource {
        std::fs::write(dir.join("tls.crt"), cert).unwrap();
        std::fs::write(dir.join("tls.key"), key).unwrap();
        TlsSource::Files {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        }
    }

    #[test]
    fn a_bad_pair_at_start_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, k1) = pair(&["a"]);
        let (_, k2) = pair(&["b"]);
        assert!(matches!(
            ReloadingResolver::new(&files(dir.path(), &c1, &k2)),
            Err(TlsError::Mismatch { .. })
        ));
        assert!(matches!(
            ReloadingResolver::new(&files(dir.path(), "garbage", &k1)),
            Err(TlsError::NoCertificate { .. })
        ));
        assert!(matches!(
            ReloadingResolver::new(&files(dir.path(), &c1, "garbage")),
            Err(TlsError::NoKey { .. })
        ));
        let missing = TlsSource::Files {
            cert: dir.path().join("nope.crt"),
            key: dir.path().join("nope.key"),
        };
        assert!(matches!(
            ReloadingResolver::new(&missing),
            Err(TlsError::Read { .. })
        ));
        std::fs::write(
            dir.path().join("big.crt"),
            vec![b'a'; usize::try_from(MAX_PEM_BYTES).unwrap() + 1],
        )
        .unwrap();
        let big = TlsSource::Files {
            cert: dir.path().join("big.crt"),
            key: dir.path().join("tls.key"),
        };
        assert!(matches!(
            ReloadingResolver::new(&big),
            Err(TlsError::TooLarge { .. })
        ));
        assert!(ReloadingResolver::new(&files(dir.path(), &c1, &k1)).is_ok());
    }

    #[test]
    fn changed_files_are_reloaded_and_bad_ones_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, k1) = pair(&["one"]);
        let src = files(dir.path(), &c1, &k1);
        let r = ReloadingResolver::with_interval(&src, Duration::ZERO).unwrap();
        let first = r.current().cert[0].clone();
        assert!(!r.maybe_reload(), "unchanged files are not a reload");

        let (c2, k2) = pair(&["two"]);
        files(dir.path(), &c2, &k2);
        assert!(r.maybe_reload());
        let second = r.current().cert[0].clone();
        assert_ne!(first, second);

        // Half a rotation (new cert, old key): refused, the previous pair serves.
        let (c3, k3) = pair(&["three"]);
        std::fs::write(dir.path().join("tls.crt"), &c3).unwrap();
        assert!(!r.maybe_reload());
        assert_eq!(r.current().cert[0], second);
        // The key follows: now it loads.
        std::fs::write(dir.path().join("tls.key"), &k3).unwrap();
        assert!(r.maybe_reload());
        let third = r.current().cert[0].clone();
        assert_ne!(third, second);

        // Garbage, then deleted files: the last good pair keeps serving.
        files(dir.path(), "garbage", "garbage");
        assert!(!r.maybe_reload());
        std::fs::remove_file(dir.path().join("tls.crt")).unwrap();
        assert!(!r.maybe_reload());
        assert_eq!(r.current().cert[0], third);
    }

    #[test]
    fn reload_checks_are_rate_limited() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, k1) = pair(&["one"]);
        let src = files(dir.path(), &c1, &k1);
        let r = ReloadingResolver::with_interval(&src, Duration::from_secs(3600)).unwrap();
        let (c2, k2) = pair(&["two"]);
        files(dir.path(), &c2, &k2);
        assert!(!r.maybe_reload(), "checked before the interval passed");
    }

    #[test]
    fn self_signed_pairs_load() {
        let r = ReloadingResolver::new(&TlsSource::SelfSigned {
            names: vec!["node-1".into(), "localhost".into()],
        })
        .unwrap();
        assert_eq!(r.current().cert.len(), 1);
        assert!(!r.maybe_reload());
        assert!(server_config(Arc::new(r)).is_ok());
    }
}
