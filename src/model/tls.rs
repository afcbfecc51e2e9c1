//! TLS as the kubelet's configuration names it: protocol versions and the cipher suites
//! (Go's names, and IANA's where they differ).

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.0 (`VersionTLS10`, wire 0x0301).
    Tls10,
    /// TLS 1.1 (`VersionTLS11`, wire 0x0302).
    Tls11,
    /// TLS 1.2 (`VersionTLS12`, wire 0x0303).
    Tls12,
    /// TLS 1.3 (`VersionTLS13`, wire 0x0304).
    Tls13,
}

impl TlsVersion {
    /// Every version, oldest first.
    pub const ALL: [TlsVersion; 4] = [
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    /// The name the kubelet's configuration uses (`tlsMinVersion`): `VersionTLS12`.
    pub fn as_config_name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "VersionTLS10",
            TlsVersion::Tls11 => "VersionTLS11",
            TlsVersion::Tls12 => "VersionTLS12",
            TlsVersion::Tls13 => "VersionTLS13",
        }
    }

    /// The protocol version on the wire (`ProtocolVersion`): 0x0301..0x0304.
    pub fn wire(self) -> u16 {
        match self {
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }

    /// The version with this wire value.
    pub fn from_wire(v: u16) -> Option<TlsVersion> {
        TlsVersion::ALL.into_iter().find(|t| t.wire() == v)
    }
}

/// TLS 1.0–1.2 cipher suites probed by default: every suite Go's `crypto/tls` can
/// negotiate (`CipherSuites()` and `InsecureCipherSuites()`), plus the common legacy
/// ECDHE/RSA suites other servers still offer. Names: Go's, else IANA's.
pub const IANA_TLS12_SUITES: &[(u16, &str)] = &[
    // ECDHE AEAD (the CIS 4.2.12 list).
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"),
    (0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"),
    // ECDHE CBC.
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    // ECDHE 3DES and RC4.
    (0xc008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"),
    (0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    // RSA key exchange.
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
];

/// TLS 1.3 suites (same name in Go and IANA).
pub const TLS13_SUITES: &[(u16, &str)] = &[
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
];

/// Names in [`IANA_TLS12_SUITES`] that differ from the IANA registry: (Go name, IANA name).
pub const IANA_ALIASES: &[(&str, &str)] = &[
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// The name of a cipher suite (Go's spelling where Go has one), if known.
pub fn suite_name(id: u16) -> Option<&'static str> {
    IANA_TLS12_SUITES
        .iter()
        .chain(TLS13_SUITES)
        .find(|(i, _)| *i == id)
        .map(|(_, n)| *n)
}

/// The IANA registry name of a suite named by [`suite_name`] (identity for most).
pub fn iana_name(name: &str) -> &str {
    IANA_ALIASES
        .iter()
        .find(|(go, _)| *go == name)
        .map(|(_, iana)| *iana)
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert_eq!(TlsVersion::Tls13.as_config_name(), "VersionTLS13");
        assert_eq!(TlsVersion::Tls10.wire(), 0x0301);
        assert_eq!(TlsVersion::from_wire(0x0303), Some(TlsVersion::Tls12));
        assert_eq!(
            suite_name(0xcca8),
            Some("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305")
        );
        assert_eq!(
            iana_name("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        );
        assert_eq!(
            iana_name("TLS_RSA_WITH_AES_128_GCM_SHA256"),
            "TLS_RSA_WITH_AES_128_GCM_SHA256"
        );
        assert_eq!(suite_name(0x1301), Some("TLS_AES_128_GCM_SHA256"));
        // No duplicate ids or names.
        let mut ids: Vec<u16> = IANA_TLS12_SUITES.iter().map(|s| s.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), IANA_TLS12_SUITES.len());
    }
}
