//! X.509 parsing for the client CA, the kubelet's client certificate and its serving
//! certificate. Pure functions over PEM bytes.

use x509_parser::pem::Pem;

use crate::snapshot::{CertSummary, ObsError, ObsErrorKind};

/// Parse every `CERTIFICATE` block of a PEM bundle; summarise the first one.
/// A bundle may also hold a private key (`kubelet-client-current.pem`); it is skipped.
pub fn summarize_pem(bytes: &[u8]) -> Result<CertSummary, ObsError> {
    let mut first: Option<CertSummary> = None;
    let mut count = 0usize;
    for pem in Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| ObsError::new(ObsErrorKind::Invalid, format!("bad PEM: {e}")))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        count += 1;
        if first.is_none() {
            first = Some(summarize_pem_block(&pem)?);
        }
    }
    match first {
        Some(mut s) => {
            s.count = count;
            Ok(s)
        }
        None => Err(ObsError::new(
            ObsErrorKind::Invalid,
            "no PEM CERTIFICATE block found",
        )),
    }
}

fn summarize_pem_block(pem: &Pem) -> Result<CertSummary, ObsError> {
    let cert = pem
        .parse_x509()
        .map_err(|e| ObsError::new(ObsErrorKind::Invalid, format!("bad certificate: {e}")))?;
    summarize_cert(&cert)
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

fn summarize_cert(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<CertSummary, ObsError> {
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
    let self_signed = cert.subject().as_raw() == cert.issuer().as_raw();
    let summary = CertSummary {
        sans,
        self_signed,
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
mod tests {
    use super::*;

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
