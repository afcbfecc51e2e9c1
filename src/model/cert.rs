//! X.509 parsing for the client CA, the kubelet's client certificate and its serving
//! certificate. Pure functions over PEM bytes.

use x509_parser::certificate::X509Certificate;

use crate::model::observed::{ObsError, ObsErrorKind};

/// The parts of an X.509 certificate the controls need.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CertSummary {
    /// The subject's distinguished name as x509-parser prints it
    /// (`CN=system:node:n1, O=system:nodes`).
    pub subject: String,
    /// The issuer's distinguished name, printed the same way.
    pub issuer: String,
    /// Common name of the subject.
    pub common_name: Option<String>,
    /// Organisations of the subject (Kubernetes groups).
    pub organizations: Vec<String>,
    /// The basic constraints extension says `CA:TRUE`.
    pub is_ca: bool,
    /// Subject alternative names (DNS names and IP addresses).
    pub sans: Vec<String>,
    /// Self-signed: the issuer is the subject and the signature verifies with the
    /// certificate's own public key.
    pub self_signed: bool,
    /// The first certificate of a file whose second one is the throwaway CA the kubelet
    /// generates with it when it has no serving certificate (`<host>@<time>` signed by
    /// `<host>-ca@<time>`): vouched for by nothing else. Only from files (PEM bundles).
    pub kubelet_generated: bool,
    /// Start of validity, Unix time in seconds.
    pub not_before: i64,
    /// End of validity, Unix time in seconds.
    pub not_after: i64,
    /// Number of certificates in the file.
    pub count: usize,
}

/// Parse the certificates of a PEM bundle as the kubelet does; summarise the first one.
///
/// The kubelet loads its client CA with k8s.io/apiserver
/// pkg/server/dynamiccertificates/dynamic_cafile_content.go `newCABundleAndVerifier` →
/// k8s.io/client-go/util/cert/pem.go `NewPoolFromBytes` → `ParseCertsPEM`: blocks are
/// found by Go's `encoding/pem.Decode` ([`pem_blocks`]: junk before, between and after
/// blocks is skipped, a malformed or unterminated block is skipped, so a trailing
/// partial block costs nothing); only `CERTIFICATE` blocks without headers count (a
/// private key in the same file, as in `kubelet-client-current.pem`, is skipped); a
/// `CERTIFICATE` block that does not parse is an error; no certificate at all is an error.
pub fn summarize_pem(bytes: &[u8]) -> Result<CertSummary, ObsError> {
    let invalid = |m: String| ObsError::new(ObsErrorKind::Invalid, m);
    let ders: Vec<Vec<u8>> = pem_blocks(bytes)
        .filter(|b| b.label == b"CERTIFICATE" && !b.has_headers)
        .map(|b| b.bytes)
        .collect();
    if ders.is_empty() {
        // cert.ParseCertsPEM's error, and ours.
        return Err(invalid(
            "no PEM CERTIFICATE block found (data does not contain any valid RSA or ECDSA certificates)"
                .to_string(),
        ));
    }
    let mut certs = Vec::with_capacity(ders.len());
    for (i, der) in ders.iter().enumerate() {
        // x509.ParseCertificate also refuses trailing data after the certificate.
        match x509_parser::parse_x509_certificate(der) {
            Ok((&[], c)) => certs.push(c),
            Ok(_) => {
                return Err(invalid(format!(
                    "bad certificate: PEM CERTIFICATE block {} has trailing data",
                    i + 1
                )))
            }
            Err(e) => {
                return Err(invalid(format!(
                    "bad certificate: PEM CERTIFICATE block {}: {e}",
                    i + 1
                )))
            }
        }
    }
    let leaf = &certs[0];
    let mut s = summarize_cert(leaf)?;
    s.count = certs.len();
    s.kubelet_generated = certs
        .get(1)
        .is_some_and(|ca| kubelet_generated_pair(leaf, ca));
    Ok(s)
}

/// One PEM block as Go's `encoding/pem.Decode` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The type from the `-----BEGIN <label>-----` line (e.g. `CERTIFICATE`), as bytes
    /// (Go's `Block.Type`).
    pub label: Vec<u8>,
    /// Whether it had `Key: Value` header lines (client-go skips such certificates).
    pub has_headers: bool,
    /// The base64 body decoded (DER for a certificate); empty for an empty block.
    pub bytes: Vec<u8>,
}

/// The blocks Go's `pem.Decode` finds, called in a loop as `ParseCertsPEM` and
/// `AppendCertsFromPEM` do: each call skips anything that is not a well-formed block.
pub fn pem_blocks(data: &[u8]) -> impl Iterator<Item = PemBlock> + '_ {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (block, next) = pem_decode(rest)?;
        rest = next;
        Some(block)
    })
}

const PEM_START: &[u8] = b"-----BEGIN ";
const PEM_END: &[u8] = b"\n-----END ";
const PEM_END_OF_LINE: &[u8] = b"-----";

/// Go's `getLine` (src/encoding/pem/pem.go): the line without its `\n`, `\r\n` and
/// trailing spaces/tabs, the rest, and the bytes consumed.
fn get_line(data: &[u8]) -> (&[u8], &[u8], usize) {
    let (mut i, j) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (i, i + 1),
        None => (data.len(), data.len()),
    };
    if j > i && i > 0 && data[i - 1] == b'\r' {
        i -= 1;
    }
    let mut line = &data[..i];
    while let [head @ .., b' ' | b'\t'] = line {
        line = head;
    }
    (line, &data[j..], j)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Go's base64.StdEncoding as `pem.Decode` uses it: padded, `\r`/`\n` ignored,
/// trailing bits not checked; spaces and tabs are removed first (`removeSpacesAndTabs`).
fn go_base64(data: &[u8]) -> Option<Vec<u8>> {
    let mut spec = data_encoding::Specification::new();
    spec.symbols
        .push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    spec.padding = Some('=');
    spec.ignore.push_str("\r\n");
    spec.check_trailing_bits = false;
    let enc = spec.encoding().ok()?;
    let cleaned: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| *b != b' ' && *b != b'\t')
        .collect();
    enc.decode(&cleaned).ok()
}

/// A port of Go's `encoding/pem.Decode` (src/encoding/pem/pem.go, the version that finds
/// the first END line and then the last BEGIN line before it): the next well-formed
/// block and the input after it, or `None` when there is none. Malformed candidates
/// (no `-----` at the end of the BEGIN line, an END of another type, bad base64, text
/// after the END line) are skipped, never an error.
// Go's index arithmetic is signed and this keeps it: every index is a position in a
// PEM file of at most 1 MiB (`io::host::MAX_PEM_BYTES`), far inside `isize`, and an
// index is used as a length only where it is known to be positive.
#[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)] // see above
fn pem_decode(data: &[u8]) -> Option<(PemBlock, &[u8])> {
    let mut rest = data;
    let mut end_trailer_index: isize = 0;
    loop {
        // Go slices rest[endTrailerIndex:]; outside the input there is no block.
        rest = rest.get(usize::try_from(end_trailer_index).ok()?..)?;
        let mut end_index = find(rest, PEM_END)? as isize;
        end_trailer_index = end_index + PEM_END.len() as isize;
        let Some(begin_index) = rfind(&rest[..end_index as usize], PEM_START) else {
            continue;
        };
        if begin_index > 0 && rest[begin_index - 1] != b'\n' {
            continue;
        }
        let skip = begin_index + PEM_START.len();
        rest = &rest[skip..];
        end_index -= skip as isize;
        end_trailer_index -= skip as isize;

        let (type_line, after, consumed) = get_line(rest);
        rest = after;
        let Some(label) = type_line.strip_suffix(PEM_END_OF_LINE) else {
            continue;
        };
        end_index -= consumed as isize;
        end_trailer_index -= consumed as isize;

        let mut has_headers = false;
        loop {
            if rest.is_empty() {
                return None;
            }
            let (line, next, consumed) = get_line(rest);
            if !line.contains(&b':') {
                break;
            }
            has_headers = true;
            rest = next;
            end_index -= consumed as isize;
            end_trailer_index -= consumed as isize;
        }
        // With headers, a newline must separate them from the END line.
        if has_headers && end_index < 0 {
            continue;
        }
        let Some(end_trailer) = usize::try_from(end_trailer_index)
            .ok()
            .and_then(|i| rest.get(i..))
        else {
            continue;
        };
        let trailer_len = label.len() + PEM_END_OF_LINE.len();
        if end_trailer.len() < trailer_len {
            continue;
        }
        let (trailer, rest_of_end_line) = end_trailer.split_at(trailer_len);
        if !trailer.starts_with(label) || !trailer.ends_with(PEM_END_OF_LINE) {
            continue;
        }
        // The END line must end with only whitespace.
        if !get_line(rest_of_end_line).0.is_empty() {
            continue;
        }
        let bytes = if end_index > 0 {
            match go_base64(&rest[..end_index as usize]) {
                Some(b) => b,
                None => continue,
            }
        } else {
            Vec::new()
        };
        // -1: an empty block's END may have matched without its leading newline.
        let after_end = usize::try_from(end_index + PEM_END.len() as isize - 1).ok()?;
        let (_, next, _) = get_line(rest.get(after_end..)?);
        return Some((
            PemBlock {
                label: label.to_vec(),
                has_headers,
                bytes,
            },
            next,
        ));
    }
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

    fn ca_pem(cn: &str) -> String {
        let key = KeyPair::generate().unwrap();
        params(cn, true).self_signed(&key).unwrap().pem()
    }

    /// Issue 13 item 11: Go's pem.Decode loop (client-go `ParseCertsPEM`) uses every
    /// well-formed CERTIFICATE block and skips junk and a trailing partial block.
    #[test]
    fn a_bundle_with_junk_or_a_partial_block_keeps_its_good_certificates() {
        let a = ca_pem("ca-a");
        let b = ca_pem("ca-b");
        let partial = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n";
        for (bundle, count) in [
            (format!("{a}{partial}"), 1),
            (format!("# comment\n{a}garbage between\n{b}"), 2),
            (format!("{a}-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n{b}"), 2),
            (format!("{a}-----BEGIN CERTIFICATE-----\nAAAA\n-----END OTHER-----\n"), 1),
            (format!("{a}\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 1),
            // A certificate block with headers is skipped, as in ParseCertsPEM.
            (format!("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----\n{a}"), 1),
            (a.replace('\n', "\r\n"), 1),
        ] {
            let s = summarize_pem(bundle.as_bytes()).unwrap_or_else(|e| panic!("{bundle}: {e:?}"));
            assert_eq!(s.count, count, "{bundle}");
            assert_eq!(s.common_name.as_deref(), Some("ca-a"), "{bundle}");
            assert!(s.is_ca);
        }
    }

    #[test]
    fn a_bundle_without_a_usable_certificate_is_invalid_with_a_reason() {
        for junk in [
            "".to_string(),
            "just text\n".to_string(),
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n".to_string(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_string(),
        ] {
            let e = summarize_pem(junk.as_bytes()).unwrap_err();
            assert_eq!(e.kind, ObsErrorKind::Invalid);
            assert!(
                e.message.contains("no PEM CERTIFICATE block"),
                "{}",
                e.message
            );
        }
        // A well-formed CERTIFICATE block that is not a certificate: client-go refuses
        // the whole bundle ("return certs, err"), so do we.
        let a = ca_pem("ca-a");
        let e = summarize_pem(
            format!("{a}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").as_bytes(),
        )
        .unwrap_err();
        assert!(e.message.contains("block 2"), "{}", e.message);
    }

    proptest::proptest! {
        /// Inputs made of PEM's own pieces, so that BEGIN/END lines, headers and
        /// base64 meet in every order.
        #[test]
        fn pem_decoding_never_panics(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "-----BEGIN ", "-----END ", "CERTIFICATE", "-----", "\n", "\r\n", "K: v",
                "QUJD", "=", " ", "\t", "x",
            ]), 0..60)) {
            let data = parts.concat();
            let n = pem_blocks(data.as_bytes()).count();
            proptest::prop_assert!(n <= data.len());
        }
    }
}
