//! A minimal HTTP/1.1 client over a raw `TcpStream` (std only, no extra dependencies)
//! and a free loopback port, for the tests that run the agent's `serve`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Bound on connecting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on each read of the response.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A free loopback port (bound, then released: a port taken before the caller binds it
/// again is the caller's retry).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// One response, the body read to the end of the connection (chunked bodies decoded).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` over a fresh connection (`Connection: close`, bounded), with an `Accept`
/// header when `accept` is given. A malformed response or a body that is not UTF-8 is an
/// error.
pub fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    let accept: Vec<String> = accept.map(|a| format!("Accept: {a}")).into_iter().collect();
    request(&mut s, &addr.to_string(), path, &accept)
}

/// `GET path` with `Host: host` over `stream` (a plain or a TLS connection, its timeouts
/// the caller's), with `Connection: close` and the `headers` lines (`Name: value`, no line
/// end), then the response read to the end of the connection. A peer that closes without
/// TLS close_notify after a complete response is not an error.
pub fn request(
    stream: &mut (impl Read + Write),
    host: &str,
    path: &str,
    headers: &[String],
) -> std::io::Result<Response> {
    let headers: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kubelet-sentinel-tests\r\n{headers}Connection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    parse_response(&raw)
}

/// Parse a raw HTTP/1.1 response (the body to the end, chunked bodies decoded).
pub fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8(body).map_err(std::io::Error::other)?,
    })
}

/// Decode a `Transfer-Encoding: chunked` body (chunk extensions ignored, trailers
/// dropped).
pub fn dechunk(mut raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = || std::io::Error::other("bad chunked body");
    let mut out = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = std::str::from_utf8(&raw[..end]).map_err(|_| bad())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        raw = &raw[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(raw.get(..size).ok_or_else(bad)?);
        raw = raw.get(size + 2..).ok_or_else(bad)?;
    }
}
