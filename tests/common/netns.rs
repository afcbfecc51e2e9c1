//! A network namespace of the test's own, so that what a test starts cannot meet a real
//! kubelet (or anything else) listening on this machine's loopback.
//!
//! The agent probes some ports by their fixed defaults whatever the test configures: the
//! read-only port is probed at 10255 even when the config says 0 (a lie on disk is
//! caught: src/observe/live/mod.rs `check`). On a node or a laptop that runs a kubelet,
//! that port answers. In a fresh network namespace only the test's own processes listen.
//!
//! `unshare(CLONE_NEWNET)` moves the *calling thread* only (namespaces are per task on
//! Linux, unshare(2)); the processes that thread spawns afterwards inherit it, and so do
//! the sockets it opens. Every test runs on a thread of its own, so one test's namespace
//! never leaks into another's. It needs CAP_SYS_ADMIN (CI runs the tests as root); without
//! it the test stays in the machine's namespace and must cope (see [`isolate`]).

use std::sync::Once;

/// Move the calling thread into a new network namespace with its loopback up. `Err` (with
/// why) when that is not possible, e.g. without CAP_SYS_ADMIN; the thread is then
/// unchanged. Prints a notice once per test binary on failure.
pub fn isolate() -> Result<(), String> {
    let r = unshare_with_loopback();
    if let Err(e) = &r {
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            eprintln!(
                "notice: no network namespace of the test's own ({e}); the tests use this machine's loopback, where fixed default ports may be taken"
            );
        });
    }
    r
}

#[allow(unsafe_code)] // unshare(2) and the SIOC[GS]IFFLAGS ioctls: no safe wrapper in the dependencies
fn unshare_with_loopback() -> Result<(), String> {
    // SAFETY: unshare takes a flag word only; it changes this thread's namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        ));
    }
    // A new namespace has `lo`, down: bring it up (what `ip link set lo up` does).
    // SAFETY: socket(2) with constant arguments; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = libc::c_char::from_ne_bytes([*s]);
    }
    let up = libc::c_short::try_from(libc::IFF_UP).expect("IFF_UP is a short flag");
    // SAFETY: fd is a socket, req a valid ifreq naming an interface, both live for the
    // calls; SIOCGIFFLAGS fills ifru_flags, SIOCSIFFLAGS reads it.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) != 0 {
            Err(format!(
                "SIOCGIFFLAGS lo: {}",
                std::io::Error::last_os_error()
            ))
        } else {
            req.ifr_ifru.ifru_flags |= up;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) != 0 {
                Err(format!(
                    "SIOCSIFFLAGS lo: {}",
                    std::io::Error::last_os_error()
                ))
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: fd was opened above and is not used after this.
    unsafe { libc::close(fd) };
    result
}

/// Whether something accepts TCP connections on `127.0.0.1:port` in the calling thread's
/// network namespace.
pub fn taken(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)),
        std::time::Duration::from_millis(500),
    )
    .is_ok()
}
