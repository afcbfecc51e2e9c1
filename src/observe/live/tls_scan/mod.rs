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
//! [`IANA_ALIASES`](crate::model::tls::IANA_ALIASES)).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod wire;

use self::wire::{Answer, ClientHello, HelloReader};
use super::socket::{connect, within, Timeouts};
use crate::model::live::{LiveError, LiveErrorKind, LiveResult};
use crate::model::tls::TlsVersion;
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
) -> LiveResult<bool> {
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
/// `concurrency` connections are open at once; each has its own `timeouts`. Any attempt
/// that ends in an error makes the whole result that error: a partial list is never
/// reported as complete. The answer keeps the order of `suites`.
pub async fn accepted_tls12_suites(
    addr: SocketAddr,
    sni: Option<&str>,
    suites: &[(u16, &'static str)],
    timeouts: &Timeouts,
    concurrency: usize,
) -> LiveResult<Vec<(String, bool)>> {
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
            // Dropping `tasks` aborts the attempts still running.
            Some(Ok((_, Err(e)))) => return Err(e),
            Some(Err(e)) => {
                return Err(LiveError::new(
                    LiveErrorKind::Io,
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
            None => Err(LiveError::new(
                LiveErrorKind::Io,
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
) -> LiveResult<Answer> {
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

fn protocol(what: &str, e: &str) -> LiveError {
    LiveError::new(LiveErrorKind::Protocol, format!("{what}: {e}"))
}

#[cfg(test)]
mod tests;
