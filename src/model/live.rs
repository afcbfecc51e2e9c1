//! Live evidence: what the kubelet's own sockets answered (listeners, TLS, HTTP), next
//! to what its files say.

use super::cert::CertSummary;
use super::observed::Observed;

/// What the kubelet's sockets said. Every check has a connect and an overall timeout; a
/// check that could not answer is an `Err` with its reason, never a guess.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Live {
    /// The kubelet's listening TCP sockets.
    pub listeners: Option<Observed<Listeners>>,
    /// Address checked for the serving port (e.g. `127.0.0.1:10250`).
    pub serving_target: Option<String>,
    /// A TLS handshake on the serving port (any certificate accepted: we inspect).
    pub tls: Option<LiveResult<TlsHandshake>>,
    /// Which protocol versions the serving port accepts (`VersionTLS10`..`VersionTLS13`).
    pub tls_versions: Option<LiveResult<Vec<(String, bool)>>>,
    /// Which TLS 1.2 cipher suites (IANA names) the serving port accepts.
    pub tls12_suites: Option<LiveResult<Vec<(String, bool)>>>,
    /// `GET /pods` on the serving port without credentials: the HTTP status.
    pub anonymous: Option<LiveResult<u16>>,
    /// The read-only port checked (`address:port`), and what it answered.
    pub read_only_target: Option<String>,
    /// What the read-only port (plain HTTP) answered to `GET /healthz` and `GET /pods`;
    /// both statuses `None` when the connection was refused (the port is closed).
    pub read_only: Option<LiveResult<ReadOnlyAnswer>>,
}

/// Answers of the plain-HTTP read-only port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReadOnlyAnswer {
    /// HTTP status of `GET /healthz`, `None` when that request got no HTTP answer.
    pub healthz: Option<u16>,
    /// HTTP status of `GET /pods`.
    pub pods: Option<u16>,
}

/// Why a live check of the kubelet's sockets has no answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveError {
    /// The kind of failure: a refused connection is evidence (nothing listens), the
    /// others are not.
    pub kind: LiveErrorKind,
    /// What happened, for humans (the target and the error).
    pub message: String,
}

/// What kind of failure a live check met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveErrorKind {
    /// Connection refused: nothing listens there (evidence that a port is closed).
    Refused,
    /// No answer within the timeout (connect or overall).
    Timeout,
    /// The peer answered but not with what the protocol expects.
    Protocol,
    /// Any other I/O error.
    Io,
    /// The check was not run (e.g. no target could be derived).
    Skipped,
}

impl LiveError {
    /// An error of `kind` with its message.
    pub fn new(kind: LiveErrorKind, message: impl Into<String>) -> Self {
        LiveError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A live check's result.
pub type LiveResult<T> = Result<T, LiveError>;

/// A listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Listener {
    /// The local address it is bound to (`0.0.0.0` or `::`: every address).
    pub address: std::net::IpAddr,
    /// The local TCP port.
    pub port: u16,
}

/// The kubelet's listeners and how they were matched to the process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listeners {
    /// `fd` (socket inodes in `/proc/<pid>/fd` matched to `net/tcp{,6}`) or `netns`
    /// (fd table unreadable: every listener in its network namespace on the configured
    /// ports).
    pub method: String,
    /// The listening sockets, sorted and without duplicates.
    pub sockets: Vec<Listener>,
}

/// The result of a TLS handshake with the serving port.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TlsHandshake {
    /// Negotiated protocol, as the kubelet's config names it (`VersionTLS13`).
    pub version: String,
    /// Negotiated cipher suite (IANA name).
    pub cipher: String,
    /// The serving certificate.
    pub cert: Option<CertSummary>,
}
