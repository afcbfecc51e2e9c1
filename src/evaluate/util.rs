//! Helpers shared by the control families.

use std::net::IpAddr;

use serde_json::Value;

use super::{Ctx, Outcome};
use crate::observe::config::{Lookup, Setting};

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

/// Render a JSON value for humans: strings bare, lists comma-joined, maps `k=v`.
pub fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(render).collect::<Vec<_>>().join(","),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}={}", render(v)))
            .collect::<Vec<_>>()
            .join(","),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The source column for a setting: `flag`, `config-file`, `drop-in:<file>`, `default`.
pub fn source_label(s: &Setting) -> String {
    s.source.label()
}

/// A reason suffix describing where a value came from, with any note.
pub fn provenance(s: &Setting) -> String {
    match &s.note {
        Some(n) => format!("{}; {n}", s.source.describe()),
        None => s.source.describe(),
    }
}

/// Evaluate with an effective setting; an undecidable setting is `unknown` with its reason.
pub fn with_setting(ctx: &Ctx, key: &str, f: impl FnOnce(&Setting) -> Outcome) -> Outcome {
    match ctx.setting(key) {
        Lookup::Known(s) => f(&s),
        Lookup::Unknown { reason } => Outcome::unknown(reason),
    }
}

/// Format a file mode as four octal digits.
pub fn mode_str(mode: u32) -> String {
    format!("{mode:04o}")
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
    fn rendering() {
        assert_eq!(render(&serde_json::json!("x")), "x");
        assert_eq!(render(&serde_json::json!(["a", "b"])), "a,b");
        assert_eq!(render(&serde_json::json!({"cpu": "1"})), "cpu=1");
        assert_eq!(render(&serde_json::json!(10255)), "10255");
    }
}
