//! X.509 parsing for the client CA, the kubelet's client certificate and its serving
//! certificate. Pure functions over PEM bytes.

use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;

use crate::snapshot::{CertSummary, ObsError, ObsErrorKind};

/// Parse every `CERTIFICATE` block of a PEM bundle; summarise the first one.
/// A bundle may also hold a private key (`kubelet-client-current.pem`); it is skipped.
pub fn summarize_pem(bytes: &[u8]) -> Result<CertSummary, ObsError> {
    let mut blocks: Vec<Pem> = Vec::new();
    for pem in Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| ObsError::new(ObsErrorKind::Invalid, format!("bad PEM: {e}")))?;
        if pem.label == "CERTIFICATE" {
            blocks.push(pem);
        }
    }
    let Some(first) = blocks.first() else {
        return Err(ObsError::new(
            ObsErrorKind::Invalid,
            "no PEM CERTIFICATE block found",
        ));
    };
    let leaf = first
        .parse_x509()
        .map_err(|e| ObsError::new(ObsErrorKind::Invalid, format!("bad certificate: {e}")))?;
    let mut s = summarize_cert(&leaf)?;
    s.count = blocks.len();
    s.kubelet_generated = blocks
        .get(1)
        .and_then(|b| b.parse_x509().ok())
        .is_some_and(|ca| kubelet_generated_pair(&leaf, &ca));
    Ok(s)
}

/// Whether the certificate is self-signed: its issuer is its subject and its signature
/// verifies with its own public key (an algorithm `ring` cannot check counts as not).
fn self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw() && cert.verify_signature(None).is_ok()
}

/// Whether `leaf` followed by `ca` is the pair the kubelet makes for itself when it has no
/// serving certificate (cmd/kubelet/app/server.go `InitializeTLS` →
/// k8s.io/client-go/util/cert `GenerateSelfSignedCertKey`, the same in v0.19 .. v0.37): a
/// throwaway self-signed CA `CN=<host>-ca@<unix time>` and a leaf `CN=<host>@<unix time>`
/// it signed, written to `<cert-dir>/kubelet.crt` leaf first. Nothing else vouches for the
/// leaf, so clients cannot verify it any more than a self-signed certificate.
fn kubelet_generated_pair(leaf: &X509Certificate<'_>, ca: &X509Certificate<'_>) -> bool {
    let cn = |c: &X509Certificate<'_>| -> Option<String> {
        c.subject()
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok().map(str::to_string))
    };
    let (Some(leaf_cn), Some(ca_cn)) = (cn(leaf), cn(ca)) else {
        return false;
    };
    let stamped = |name: &str| -> Option<String> {
        let (host, time) = name.rsplit_once('@')?;
        (!time.is_empty() && time.bytes().all(|b| b.is_ascii_digit())).then(|| host.to_string())
    };
    let (Some(leaf_host), Some(ca_host)) = (stamped(&leaf_cn), stamped(&ca_cn)) else {
        return false;
    };
    ca_host.strip_suffix("-ca") == Some(leaf_host.as_str())
        && leaf.issuer().as_raw() == ca.subject().as_raw()
        && self_signed(ca)
        && leaf.verify_signature(Some(ca.public_key())).is_ok()
}

/// Summarise one DER-encoded certificate (e.g. the leaf a TLS peer presented).
/// `count` is 1; a caller that saw a chain sets it.
pub fn summarize_der(der: &[u8]) -> Result<CertSummary, ObsError> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| ObsError::new(ObsErrorKind::Invalid, format!("bad certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(ObsError::new(
            ObsErrorKind::Invalid,
            format!("{} trailing bytes after the certificate", rest.len()),
        ));
    }
    summarize_cert(&cert)
}

fn summarize_cert(cert: &X509Certificate<'_>) -> Result<CertSummary, ObsError> {
    let subject = cert.subject();
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok().map(str::to_string));
    let organizations: Vec<String> = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => sans.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        sans.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let summary = CertSummary {
        sans,
        self_signed: self_signed(cert),
        kubelet_generated: false,
        subject: subject.to_string(),
        issuer: cert.issuer().to_string(),
        common_name,
        organizations,
        is_ca: cert.is_ca(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        count: 1,
    };
    Ok(summary)
}

/// Decode standard base64 (kubeconfig `*-data` fields), tolerating whitespace.
pub fn decode_base64(s: &str) -> Result<Vec<u8>, ObsError> {
    let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    data_encoding::BASE64
        .decode(cleaned.as_bytes())
        .map_err(|e| ObsError::new(ObsErrorKind::Invalid, format!("bad base64: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    fn params(cn: &str, ca: bool) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        p
    }

    /// A leaf `leaf_cn` signed by a new self-signed CA `ca_cn`: (leaf PEM, CA PEM).
    fn issued(leaf_cn: &str, ca_cn: &str) -> (String, String) {
        let ca_key = KeyPair::generate().unwrap();
        let ca_params = params(ca_cn, true);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = params(leaf_cn, false)
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        (leaf.pem(), ca.pem())
    }

    #[test]
    fn self_signed_means_signed_by_its_own_key() {
        // ECDSA (rcgen) and RSA (the openssl-made fixture, CN=node@1736846400).
        let ec = rcgen::generate_simple_self_signed(vec!["node-1".to_string()]).unwrap();
        let s = summarize_pem(ec.cert.pem().as_bytes()).unwrap();
        assert!(s.self_signed && !s.kubelet_generated);
        let rsa = include_bytes!("../../tests/fixtures/pki/selfsigned.crt");
        assert!(summarize_pem(rsa).unwrap().self_signed);

        // Issued by a CA (bundled or not): not self-signed.
        let (leaf, ca) = issued("kubelet-serving", "kubernetes");
        let s = summarize_pem(leaf.as_bytes()).unwrap();
        assert!(!s.self_signed && !s.kubelet_generated);
        let s = summarize_pem(format!("{leaf}{ca}").as_bytes()).unwrap();
        assert!(!s.self_signed && !s.kubelet_generated);
        assert_eq!(s.count, 2);
        let serving = include_bytes!("../../tests/fixtures/pki/serving.crt");
        assert!(!summarize_pem(serving).unwrap().self_signed);

        // Issuer equal to the subject is not enough: the CA's key signed this one.
        let (leaf, _) = issued("kubernetes", "kubernetes");
        let s = summarize_pem(leaf.as_bytes()).unwrap();
        assert_eq!(s.subject, s.issuer);
        assert!(!s.self_signed);
    }

    #[test]
    fn the_kubelets_generated_pair_is_recognised() {
        // client-go/util/cert GenerateSelfSignedCertKey: <host>@<time> signed by
        // <host>-ca@<time>, leaf first.
        let (leaf, ca) = issued("node-1@1736846400", "node-1-ca@1736846400");
        let s = summarize_pem(format!("{leaf}{ca}").as_bytes()).unwrap();
        assert!(s.kubelet_generated && !s.self_signed);
        // Without the CA in the file, or with other names, nothing says so.
        assert!(!summarize_pem(leaf.as_bytes()).unwrap().kubelet_generated);
        let (leaf, ca) = issued("node-1", "node-1-ca");
        assert!(
            !summarize_pem(format!("{leaf}{ca}").as_bytes())
                .unwrap()
                .kubelet_generated
        );
        let (leaf, ca) = issued("node-2@1736846400", "node-1-ca@1736846400");
        assert!(
            !summarize_pem(format!("{leaf}{ca}").as_bytes())
                .unwrap()
                .kubelet_generated
        );
        // The names alone are not enough: the CA must have signed the leaf.
        let (leaf, _) = issued("node-1@1736846400", "node-1-ca@1736846400");
        let (_, other_ca) = issued("x", "node-1-ca@1736846400");
        assert!(
            !summarize_pem(format!("{leaf}{other_ca}").as_bytes())
                .unwrap()
                .kubelet_generated
        );
    }

    #[test]
    fn garbage_is_invalid_not_a_panic() {
        assert_eq!(
            summarize_pem(b"not a pem").unwrap_err().kind,
            ObsErrorKind::Invalid
        );
        assert_eq!(
            summarize_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .unwrap_err()
                .kind,
            ObsErrorKind::Invalid
        );
        assert!(decode_base64("!!!").is_err());
        assert_eq!(decode_base64("aGk=\n").unwrap(), b"hi");
    }
}
