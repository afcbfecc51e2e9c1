//! Addresses as the kubelet's settings write them: IPs, CIDRs, loopback.

use std::net::IpAddr;

/// Parse `10.0.0.0/8`, `::1/128` or a bare address (a host route).
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.trim().parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((ip, len))
}

/// Whether `ip` is inside `cidr` (v4-mapped IPv6 addresses are compared as IPv4).
pub fn cidr_contains(cidr: (IpAddr, u8), ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (cidr.0, ip) {
        (IpAddr::V4(net), IpAddr::V4(a)) => {
            let len = u32::from(cidr.1);
            if len == 0 {
                return true;
            }
            let mask = u32::MAX << (32 - len);
            (u32::from(net) & mask) == (u32::from(a) & mask)
        }
        (IpAddr::V6(net), IpAddr::V6(a)) => {
            let len = u32::from(cidr.1);
            if len == 0 {
                return true;
            }
            let mask = u128::MAX << (128 - len);
            (u128::from(net) & mask) == (u128::from(a) & mask)
        }
        _ => false,
    }
}

/// Parse an IP address as the kubelet would (`net.ParseIP`); IPv4-mapped IPv6 addresses
/// are returned as IPv4 so loopback/unspecified checks see what the socket sees.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    })
}

/// Whether an address only reaches this host (127.0.0.0/8, `::1`, v4-mapped loopback).
pub fn is_loopback(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6
                    .to_ipv4_mapped()
                    .map(|v| v.is_loopback())
                    .unwrap_or(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let net = parse_cidr("10.0.0.0/8").unwrap();
        assert!(cidr_contains(net, "10.1.2.3".parse().unwrap()));
        assert!(!cidr_contains(net, "11.0.0.1".parse().unwrap()));
        assert!(cidr_contains(net, "::ffff:10.0.0.1".parse().unwrap()));
        let host = parse_cidr("192.168.1.5").unwrap();
        assert!(cidr_contains(host, "192.168.1.5".parse().unwrap()));
        assert!(!cidr_contains(host, "192.168.1.6".parse().unwrap()));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("nope").is_none());
        let v6 = parse_cidr("fd00::/8").unwrap();
        assert!(cidr_contains(v6, "fd12::1".parse().unwrap()));
    }

    #[test]
    fn ips() {
        assert_eq!(
            parse_ip("::ffff:127.0.0.1"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert!(parse_ip("::").unwrap().is_unspecified());
        assert_eq!(parse_ip("localhost"), None);
    }
}
