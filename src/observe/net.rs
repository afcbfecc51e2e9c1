//! The kubelet's listening TCP sockets, from `/proc/<pid>/net/tcp{,6}` matched to the
//! socket inodes in `/proc/<pid>/fd`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::io::host::HostRoot;
use crate::model::live::{Listener, Listeners};

/// `net/tcp` files can be large on busy nodes (one line per socket).
const NET_TCP_CAP: u64 = 16 * 1024 * 1024;
/// Upper bound on fds examined (the kubelet holds a few hundred).
const MAX_FDS: usize = 65_536;
/// TCP state LISTEN in `net/tcp`.
const TCP_LISTEN: &str = "0A";

/// A listening socket from `net/tcp{,6}`, with its inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawListener {
    /// The local address (`0.0.0.0` or `::`: every address).
    pub address: IpAddr,
    /// The local TCP port.
    pub port: u16,
    /// The socket's inode (column 10 of the table), matched to the `socket:[N]` links in
    /// `/proc/<pid>/fd`.
    pub inode: u64,
}

/// Decode the hex `address:port` of `net/tcp` (IPv4: one 32-bit word in host byte
/// order) or `net/tcp6` (four such words). Only little-endian hosts are supported
/// (x86_64, arm64: every Kubernetes node architecture in practice).
pub fn decode_address(field: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = |hex: &str| -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(hex.len() / 2);
        for chunk in hex.as_bytes().chunks(8) {
            if chunk.len() != 8 {
                return None;
            }
            let w = u32::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
            out.extend_from_slice(&w.to_le_bytes());
        }
        Some(out)
    };
    let ip = match addr.len() {
        8 => {
            let b = words(addr)?;
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        32 => {
            let b = words(addr)?;
            let arr: [u8; 16] = b.try_into().ok()?;
            IpAddr::V6(Ipv6Addr::from(arr))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Parse a `net/tcp` or `net/tcp6` table and keep the LISTEN sockets.
pub fn parse_net_tcp(text: &str) -> Vec<RawListener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != TCP_LISTEN {
                return None;
            }
            let (address, port) = decode_address(f[1])?;
            let inode = f[9].parse().ok()?;
            Some(RawListener {
                address,
                port,
                inode,
            })
        })
        .collect()
}

/// The socket inode a `/proc/<pid>/fd/<n>` link names (`socket:[12345]`).
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every LISTEN socket in the process's network namespace.
pub fn namespace_listeners(host: &HostRoot, pid: i32) -> Result<Vec<RawListener>, String> {
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for file in ["tcp", "tcp6"] {
        match host.read_capped(&format!("/proc/{pid}/net/{file}"), NET_TCP_CAP) {
            Ok(bytes) => all.extend(parse_net_tcp(&String::from_utf8_lossy(&bytes))),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.len() == 2 {
        return Err(errors.join("; "));
    }
    Ok(all)
}

/// The socket inodes in a process's fd table; `None` when the table cannot be read (the
/// directory, or every one of its links).
fn socket_inodes(host: &HostRoot, pid: i32) -> Option<BTreeSet<u64>> {
    let fd_dir = format!("/proc/{pid}/fd");
    let names = host.read_dir(&fd_dir).ok()?;
    let mut inodes = BTreeSet::new();
    let mut readable = 0usize;
    for n in names.iter().take(MAX_FDS) {
        if let Ok(link) = host.read_link(&format!("{fd_dir}/{n}")) {
            readable += 1;
            if let Some(i) = socket_inode(&link) {
                inodes.insert(i);
            }
        }
    }
    (readable > 0).then_some(inodes)
}

/// The listening TCP sockets a process owns (in its fd table); `None` when that cannot be
/// told (fd table unreadable, no `net/tcp{,6}`): no socket evidence either way.
pub fn owned_listeners(host: &HostRoot, pid: i32) -> Option<Vec<RawListener>> {
    let inodes = socket_inodes(host, pid)?;
    let in_ns = namespace_listeners(host, pid).ok()?;
    Some(
        in_ns
            .into_iter()
            .filter(|l| inodes.contains(&l.inode))
            .collect(),
    )
}

/// The kubelet's listeners. Preferred: sockets whose inode is in its fd table. When the
/// fd table cannot be read — the directory, or every one of its links (the kernel's ptrace
/// access check lists the directory but refuses each `readlink` to an agent without
/// CAP_SYS_PTRACE, and AppArmor may do the same) — every listener of its network namespace
/// on `ports`.
pub fn kubelet_listeners(host: &HostRoot, pid: i32, ports: &[u16]) -> Result<Listeners, String> {
    let in_ns = namespace_listeners(host, pid)?;
    let (method, chosen): (&str, Vec<&RawListener>) = match socket_inodes(host, pid) {
        Some(inodes) => (
            "fd",
            in_ns.iter().filter(|l| inodes.contains(&l.inode)).collect(),
        ),
        None => (
            "netns",
            in_ns.iter().filter(|l| ports.contains(&l.port)).collect(),
        ),
    };
    let mut sockets: Vec<Listener> = chosen
        .into_iter()
        .map(|l| Listener {
            address: l.address,
            port: l.port,
        })
        .collect();
    sockets.sort();
    sockets.dedup();
    Ok(Listeners {
        method: method.to_string(),
        sockets,
    })
}

/// Whether an address is a wildcard (`0.0.0.0`, `::`).
pub fn is_wildcard(ip: &IpAddr) -> bool {
    ip.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::net::is_loopback;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2738 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 00000000:2816 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31338 1 0000000000000000 100 0 0 10 0
   2: 0100007F:2738 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 40000 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:280A 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31339 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:280B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31340 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:280C 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31341 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn ipv4_listeners() {
        let l = parse_net_tcp(TCP);
        assert_eq!(l.len(), 2, "established socket excluded");
        assert_eq!(l[0].address, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(l[0].port, 10040);
        assert_eq!(l[0].inode, 31337);
        assert_eq!(l[1].address, "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(l[1].port, 10262);
    }

    #[test]
    fn ipv6_wildcard_loopback_and_mapped() {
        let l = parse_net_tcp(TCP6);
        assert_eq!(l[0].address, "::".parse::<IpAddr>().unwrap());
        assert_eq!(l[0].port, 10250);
        assert_eq!(l[1].address, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(l[2].address, "::ffff:127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(is_loopback(&l[2].address));
        assert!(is_wildcard(&l[0].address));
    }

    #[test]
    fn garbage_is_skipped() {
        assert!(parse_net_tcp("header\n0: zz:yy 00 0A\nnonsense").is_empty());
        assert_eq!(decode_address("0100007F"), None);
        assert_eq!(decode_address("0100007:0050"), None);
        assert_eq!(socket_inode("socket:[42]"), Some(42));
        assert_eq!(socket_inode("pipe:[42]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    /// A host tree whose kubelet has an fd table of unreadable links (regular files stand
    /// in for links `readlink` refuses) falls back to the namespace's listeners on the
    /// configured ports, instead of reporting none.
    #[test]
    fn unreadable_fd_links_fall_back_to_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("proc/77");
        std::fs::create_dir_all(p.join("fd")).unwrap();
        std::fs::create_dir_all(p.join("net")).unwrap();
        for fd in ["0", "1", "7"] {
            std::fs::write(p.join("fd").join(fd), b"").unwrap();
        }
        std::fs::write(p.join("net/tcp"), TCP).unwrap();
        std::fs::write(p.join("net/tcp6"), TCP6).unwrap();
        let host = HostRoot::new(dir.path()).unwrap();
        let found = kubelet_listeners(&host, 77, &[10250]).unwrap();
        assert_eq!(found.method, "netns");
        assert_eq!(
            found.sockets,
            vec![Listener {
                address: "::".parse().unwrap(),
                port: 10250
            }]
        );
        // One readable socket link: the fd table decides (and 10250 is not in it).
        std::fs::remove_file(p.join("fd/7")).unwrap();
        std::os::unix::fs::symlink("socket:[31337]", p.join("fd/7")).unwrap();
        let found = kubelet_listeners(&host, 77, &[10250]).unwrap();
        assert_eq!(found.method, "fd");
        assert_eq!(found.sockets.len(), 1);
        assert_eq!(found.sockets[0].port, 10040);
    }

    #[test]
    fn this_process_listener_is_found_via_fd() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let host = HostRoot::new("/").unwrap();
        let pid = i32::try_from(std::process::id()).unwrap();
        let found = kubelet_listeners(&host, pid, &[]).unwrap();
        assert_eq!(found.method, "fd");
        assert!(
            found
                .sockets
                .iter()
                .any(|s| s.port == port && is_loopback(&s.address)),
            "{found:?}"
        );
    }
}
