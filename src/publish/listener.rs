//! The accept loop of the agent's HTTP listeners, and what bounds a client on them.
//!
//! `axum::serve` gives no handle on any of this: it builds hyper-util's automatic
//! connection builder without a timer, so hyper's header-read timeout never runs
//! (axum-0.8 `src/serve/mod.rs`, `handle_connection`), reads headers into a buffer of up to
//! ~408 KiB (hyper `src/proto/h1/io.rs`, `DEFAULT_MAX_BUFFER_SIZE` = 8192 + 4096 × 100) and
//! accepts every connection. A client that trickled ~400 KiB of headers into each of ~317
//! connections took the agent past its 128 Mi limit. [`serve`] instead accepts each
//! connection itself and serves it with hyper's HTTP/1 connection builder, with [`Limits`]:
//!
//! - **header-read timeout**: hyper's `header_read_timeout` (`src/proto/h1/conn.rs`,
//!   `Conn::poll_read_head`) runs from the moment hyper starts waiting for a request head
//!   until the head is complete. It is started for the first request when the connection
//!   is served, and (since hyperium/hyper#3828) again as soon as a keep-alive connection
//!   goes idle after a response (`State::idle` sets `notify_read`): on a keep-alive
//!   connection it is therefore also the **idle timeout** — there is no separate one in
//!   hyper. Go's net/http has both (`Server.ReadHeaderTimeout`, `Server.IdleTimeout`,
//!   which falls back to the read timeout when zero: `net/http/server.go`,
//!   `Server.idleTimeout`); controller-runtime uses 32 s and 90 s
//!   (`pkg/internal/httpserver/server.go`, `New`). A scrape is one small request, so one
//!   bound serves both here.
//! - **header size**: hyper's `max_buf_size` and `max_header_size` (431 Request Header
//!   Fields Too Large beyond it, `src/proto/h1/role.rs`), like Go's `Server.MaxHeaderBytes`
//!   (1 MiB in controller-runtime; far less is needed for a scrape's headers, bearer token
//!   included).
//! - **connection caps**: at most [`Limits::max_connections_per_peer`] open connections
//!   from one source (an IPv4 address, or an IPv6 /64): one more is closed as soon as it
//!   is accepted, before any byte is read or any buffer allocated. At most
//!   [`Limits::max_connections`] in all: one more **sheds** the oldest connection that is
//!   not handling a request (silent, in its TLS handshake or request head, idle between
//!   requests), which is closed at once, and takes its place (`Admission::admit`). A
//!   scraper sends its request as soon as it is connected and is answered in milliseconds,
//!   so a flood of silent connections, from however many sources, sheds only itself. Go's
//!   `golang.org/x/net/netutil.LimitListener` blocks in `Accept` instead, which leaves the
//!   legitimate client in the kernel's backlog behind the flood.
//! - **TLS handshakes** run inside the connection's slot (so at most the connection cap
//!   of them at once), bounded by [`super::tls::HANDSHAKE_TIMEOUT`]; a connection in its
//!   handshake is not handling a request, so it is shed first: a silent connection costs
//!   the agent a socket and a few hundred bytes until the next one arrives, exactly what
//!   it costs the attacker.
//! - **connection lifetime**: after [`Limits::max_connection_age`] the connection is shut
//!   down gracefully (the request in flight is answered, then the connection closes) and
//!   after [`Limits::drain_timeout`] more it is dropped whatever it is doing (a client that
//!   never reads its response). The handlers never read a request body: hyper closes a
//!   connection whose body was left unread instead of draining it
//!   (`Conn::poll_drain_or_close_read`), so a body costs nothing either.
//!
//! Memory: what a connection can hold is its read buffer (≤ 2 × [`MAX_HEADER_BYTES`]: a
//! `BytesMut` grows by doubling), rustls' buffers on a TLS connection (received records up
//! to 16 KiB + 2 KiB, handshake messages up to 64 KiB, sent data up to rustls' default
//! 64 KiB limit), the response (shared with every other scrape, never copied: see
//! [`super::server`]), and its task: under [`PER_CONNECTION_BOUND`]. Open connections and
//! shed ones not closed yet are each at most [`Limits::max_connections`]: twice the cap
//! times that bound ([`Limits::memory_bound`]) is 24 MiB for the metrics listener (64
//! connections), 6 MiB for the health listener (16): with the agent's own 8-20 MiB, well
//! under its 128 Mi limit.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use super::tls::HANDSHAKE_TIMEOUT;

/// Cap on a request's head (request line and headers), in bytes: a scrape's headers,
/// bearer token (a service-account JWT: 1-2 KiB) included, take under 4 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// What one connection can hold at most (see the module): read buffer, rustls' buffers,
/// the task and hyper's state, rounded up.
pub const PER_CONNECTION_BOUND: usize = 192 * 1024;

/// Bounds on a listener's clients (see the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From waiting for a request head to having it whole; on a keep-alive connection
    /// also the longest idle time between requests.
    pub header_read_timeout: Duration,
    /// Cap on a request head, in bytes (at least 8192, hyper's minimum buffer).
    pub max_header_bytes: usize,
    /// Cap on open connections (TLS handshakes included).
    pub max_connections: usize,
    /// Cap on open connections from one source (IPv4 address, IPv6 /64).
    pub max_connections_per_peer: usize,
    /// After this, the connection is closed once its request in flight is answered.
    pub max_connection_age: Duration,
    /// After the graceful close began (age, shutdown), the connection is dropped.
    pub drain_timeout: Duration,
    /// Serve several requests on one connection.
    pub keep_alive: bool,
}

impl Limits {
    /// The metrics listener (`--listen-address`): Prometheus scrapers, typically one
    /// connection each, kept alive between scrapes (closed when idle for 10 s).
    pub const METRICS: Limits = Limits {
        header_read_timeout: Duration::from_secs(10),
        max_header_bytes: MAX_HEADER_BYTES,
        max_connections: 64,
        max_connections_per_peer: 16,
        max_connection_age: Duration::from_secs(60),
        drain_timeout: Duration::from_secs(30),
        keep_alive: true,
    };

    /// The health listener (`--health-listen-address`): the kubelet's probes, one request
    /// per connection (its prober disables keep-alive: kubernetes `pkg/probe/http/http.go`,
    /// `New`), answered at once.
    pub const HEALTH: Limits = Limits {
        header_read_timeout: Duration::from_secs(5),
        max_header_bytes: MAX_HEADER_BYTES,
        max_connections: 16,
        // No per-source cap: the kubelet's probes and anyone on the node come from the
        // same 127.0.0.1. At the cap, silent connections are shed for the probes.
        max_connections_per_peer: usize::MAX,
        max_connection_age: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(5),
        keep_alive: false,
    };

    /// What all of this listener's connections can hold at once, in bytes: the open ones
    /// and as many shed ones not closed yet.
    pub const fn memory_bound(&self) -> usize {
        2 * self.max_connections * PER_CONNECTION_BOUND
    }
}

/// How a listener's connections speak.
#[derive(Clone)]
pub enum Transport {
    /// Plain HTTP/1.1.
    Plain,
    /// HTTPS only, with this configuration.
    Tls(Arc<rustls::ServerConfig>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Plain => "Plain",
            Transport::Tls(_) => "Tls",
        })
    }
}

/// Who a connection counts against: an IPv4 address (IPv4-mapped IPv6 included) or an
/// IPv6 /64 (one host commonly holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeerKey {
    V4(u32),
    V6(u64),
}

impl PeerKey {
    fn of(ip: IpAddr) -> PeerKey {
        match ip {
            IpAddr::V4(v4) => PeerKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => PeerKey::V4(u32::from(v4)),
                None => PeerKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// An open connection as the caps see it: whether a request of it is being handled, and
/// the signal that sheds it.
#[derive(Debug, Default)]
struct Conn {
    /// Requests being handled now (from the handler's call to its response).
    busy: AtomicUsize,
    /// Set once the connection was chosen to be shed.
    shed: AtomicBool,
    /// Wakes the connection's task to drop it.
    shed_now: Notify,
}

/// What the caps track, under one lock.
#[derive(Debug, Default)]
struct Open {
    per_peer: HashMap<PeerKey, usize>,
    /// Open connections (not shed) in the order they were accepted.
    conns: BTreeMap<u64, Arc<Conn>>,
    /// Connections shed but not closed yet (woken to close at once).
    shedding: usize,
    next_id: u64,
}

/// The connection caps: a slot per open connection (see [`Admission::admit`]).
#[derive(Debug)]
struct Admission {
    /// One permit per slot, open or shed: [`Admission::all_closed`] waits for them all.
    slots: Arc<Semaphore>,
    open: Mutex<Open>,
    /// Told when a shed connection has closed.
    shed_closed: Notify,
    max_total: usize,
    max_per_peer: usize,
}

/// An open connection's place under the caps, given back on drop.
#[derive(Debug)]
struct Slot {
    admission: Arc<Admission>,
    peer: PeerKey,
    id: u64,
    conn: Arc<Conn>,
    _permit: OwnedSemaphorePermit,
}

impl Admission {
    fn new(limits: &Limits) -> Arc<Admission> {
        Arc::new(Admission {
            slots: Arc::new(Semaphore::new(2 * limits.max_connections)),
            open: Mutex::new(Open::default()),
            shed_closed: Notify::new(),
            max_total: limits.max_connections,
            max_per_peer: limits.max_connections_per_peer,
        })
    }

    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        // Counters and a map, each updated in one statement: a panic elsewhere while the
        // lock was held cannot leave them half-written.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Let in a connection from `ip`, or `None` (close it at once).
    ///
    /// Beyond the per-source cap: refused. Beyond the total cap: the oldest connection
    /// that is not handling a request (a silent one, one still in its TLS handshake or its
    /// request head, an idle keep-alive) is shed — woken to close at once — and the new
    /// one takes its place. A client that sends its request when connected is answered in
    /// milliseconds and is not shed meanwhile; a flood of silent connections from many
    /// sources sheds itself. Refused when nothing can be shed (every connection busy) or
    /// as many connections are being shed as can be open.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let peer = PeerKey::of(ip);
        let mut open = self.open();
        if open.per_peer.get(&peer).copied().unwrap_or(0) >= self.max_per_peer {
            return None;
        }
        if open.conns.len() >= self.max_total {
            if open.shedding >= self.max_total {
                return None;
            }
            let (&id, victim) = open.conns.iter().find(|(_, c)| {
                c.busy.load(Ordering::Acquire) == 0 && !c.shed.load(Ordering::Acquire)
            })?;
            victim.shed.store(true, Ordering::Release);
            // `notify_one` keeps the wake-up when its task is not waiting yet.
            victim.shed_now.notify_one();
            open.conns.remove(&id);
            open.shedding += 1;
        }
        let permit = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        *open.per_peer.entry(peer).or_insert(0) += 1;
        let id = open.next_id;
        open.next_id += 1;
        let conn = Arc::new(Conn::default());
        open.conns.insert(id, Arc::clone(&conn));
        Some(Slot {
            admission: Arc::clone(self),
            peer,
            id,
            conn,
            _permit: permit,
        })
    }

    /// Whether as many connections are being shed as can be open: then the accept loop
    /// waits for them to close before it accepts another (the rest wait in the kernel's
    /// backlog, in order) rather than refusing it.
    fn saturated(&self) -> bool {
        let open = self.open();
        open.conns.len() >= self.max_total && open.shedding >= self.max_total
    }

    /// Resolves when no connection is open any more.
    async fn all_closed(&self) {
        let all = u32::try_from(2 * self.max_total).unwrap_or(u32::MAX);
        // The semaphore is never closed: `acquire_many` only fails when it is.
        let _ = self.slots.acquire_many(all).await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.admission.open();
        if self.conn.shed.load(Ordering::Acquire) {
            open.shedding = open.shedding.saturating_sub(1);
            self.admission.shed_closed.notify_one();
        } else {
            open.conns.remove(&self.id);
        }
        if let Some(count) = open.per_peer.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.per_peer.remove(&self.peer);
            }
        }
    }
}

/// Counts a request of a connection as being handled while it lives.
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: &Arc<Conn>) -> Busy {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(conn))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serve `router` on `listener` until `shutdown` resolves; then stop accepting, close
/// every connection gracefully (its request in flight is answered) and return once all
/// are closed (each within [`Limits::drain_timeout`]).
pub async fn serve(
    listener: TcpListener,
    transport: Transport,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let admission = Admission::new(&limits);
    let acceptor = match &transport {
        Transport::Plain => None,
        Transport::Tls(config) => Some(tokio_rustls::TlsAcceptor::from(Arc::clone(config))),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        if admission.saturated() {
            tokio::select! {
                () = &mut shutdown => break,
                () = admission.shed_closed.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            continue;
        }
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: do not spin.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(admitted) = admission.admit(peer.ip()) else {
            tracing::debug!(%peer, "connection cap reached: connection closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, stop, acceptor) = (router.clone(), stop_rx.clone(), acceptor.clone());
        tokio::spawn(async move {
            let slot = admitted;
            let conn = Arc::clone(&slot.conn);
            let _slot = slot;
            // Shed: dropped at once, whatever it was doing (it was doing nothing).
            let shed = conn.shed_now.notified();
            let serve = async {
                match acceptor {
                    None => {
                        serve_connection(TokioIo::new(stream), router, &limits, &conn, stop).await;
                    }
                    Some(acceptor) => {
                        if let Some(tls) = handshake(acceptor, stream, peer, stop.clone()).await {
                            serve_connection(TokioIo::new(tls), router, &limits, &conn, stop).await;
                        }
                    }
                }
            };
            tokio::select! {
                () = serve => {}
                () = shed => tracing::debug!(%peer, "connection cap reached: idle connection shed"),
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    admission.all_closed().await;
    Ok(())
}

/// The TLS handshake of `stream`, bounded by [`HANDSHAKE_TIMEOUT`]; `None` (the
/// connection closed) when it fails, takes too long or the server stops.
async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    tokio::select! {
        done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match done {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                None
            }
        },
        _ = stop.wait_for(|stopped| *stopped) => None,
    }
}

/// A 503 for a request the server could not route (never happens: the router's error
/// type is `Infallible`; kept so that no `unwrap` is needed).
fn unavailable() -> Response {
    let mut r = Response::new(Body::from("Service Unavailable\n"));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serve HTTP/1.1 on one connection with `limits`, until the client goes, a limit closes
/// it or `stop` turns true (then gracefully).
async fn serve_connection<I>(
    io: I,
    router: Router,
    limits: &Limits,
    conn_state: &Arc<Conn>,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let tower = TowerToHyperService::new(router.into_service::<Incoming>());
    let conn_state = Arc::clone(conn_state);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let busy = Busy::new(&conn_state);
        let call = hyper::service::Service::call(&tower, req);
        async move {
            let _busy = busy;
            Ok::<_, std::convert::Infallible>(call.await.unwrap_or_else(|_| unavailable()))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_header_size(limits.max_header_bytes)
        .keep_alive(limits.keep_alive);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let age = tokio::time::sleep(limits.max_connection_age);
    tokio::pin!(age);
    let mut draining: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection closed");
                }
                return;
            }
            () = &mut age, if draining.is_none() => {
                conn.as_mut().graceful_shutdown();
                draining = Some(Box::pin(tokio::time::sleep(limits.drain_timeout)));
            }
            _ = stop.wait_for(|stopped| *stopped), if draining.is_none() => {
                conn.as_mut().graceful_shutdown();
                draining = Some(Box::pin(tokio::time::sleep(limits.drain_timeout)));
            }
            () = async {
                match draining.as_mut() {
                    Some(d) => d.as_mut().await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::debug!("connection still busy after the drain timeout: dropped");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn peers_are_counted_by_address_and_ipv6_prefix() {
        let a = Admission::new(&Limits {
            max_connections: 3,
            max_connections_per_peer: 2,
            ..Limits::METRICS
        });
        let one = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let s1 = a.admit(one).unwrap();
        let s2 = a.admit(one).unwrap();
        assert!(a.admit(one).is_none(), "per-peer cap");
        // The same address written as IPv4-mapped IPv6 is the same peer.
        assert!(a
            .admit(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()))
            .is_none());
        let v6a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let s3 = a.admit(IpAddr::V6(v6a)).unwrap();
        let s4 = a.admit(IpAddr::V6(v6b)).unwrap();
        assert!(
            a.admit(IpAddr::V6(v6a)).is_none(),
            "per-peer cap of the /64"
        );
        drop((s1, s2, s3, s4));
        assert!(a.open().per_peer.is_empty(), "counters are removed at zero");
        assert!(a.open().conns.is_empty());
        assert_eq!(a.open().shedding, 0);
        assert_eq!(a.slots.available_permits(), 6);
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_is_shed() {
        let a = Admission::new(&Limits {
            max_connections: 2,
            max_connections_per_peer: 10,
            ..Limits::METRICS
        });
        let ip = |n| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
        let busy = a.admit(ip(1)).unwrap();
        let idle = a.admit(ip(2)).unwrap();
        let handling = Busy::new(&busy.conn);
        // Full: the new one sheds the oldest connection not handling a request.
        let third = a.admit(ip(3)).expect("admitted by shedding");
        assert!(idle.conn.shed.load(Ordering::Acquire));
        assert!(!busy.conn.shed.load(Ordering::Acquire));
        tokio::time::timeout(Duration::from_secs(1), idle.conn.shed_now.notified())
            .await
            .expect("the shed connection is told at once");
        let counts = {
            let open = a.open();
            (open.conns.len(), open.shedding)
        };
        assert_eq!(counts, (2, 1));
        // Nothing idle to shed but the newest; it goes, then nothing is left.
        let fourth = a.admit(ip(4)).expect("sheds the third (idle)");
        assert!(third.conn.shed.load(Ordering::Acquire));
        drop(handling);
        assert!(
            a.admit(ip(5)).is_none(),
            "as many being shed as can be open"
        );
        drop((idle, third));
        assert_eq!(a.open().shedding, 0);
        let fifth = a.admit(ip(5)).expect("sheds the busy one, idle now");
        assert!(busy.conn.shed.load(Ordering::Acquire));
        drop((busy, fourth, fifth));
        assert!(a.open().per_peer.is_empty() && a.open().conns.is_empty());
        assert_eq!(a.slots.available_permits(), 4);
    }

    #[tokio::test]
    async fn busy_connections_are_never_shed() {
        let a = Admission::new(&Limits {
            max_connections: 1,
            max_connections_per_peer: 10,
            ..Limits::METRICS
        });
        let one = a.admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))).unwrap();
        let _handling = Busy::new(&one.conn);
        assert!(a.admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))).is_none());
        assert!(!one.conn.shed.load(Ordering::Acquire));
    }

    #[test]
    fn the_memory_bounds_fit_the_pod_limit() {
        let pod_limit = 128 * 1024 * 1024;
        let both = Limits::METRICS.memory_bound() + Limits::HEALTH.memory_bound();
        assert!(both <= pod_limit / 4, "{both} bytes of connections");
        assert_eq!(Limits::METRICS.memory_bound(), 24 * 1024 * 1024);
    }
}
