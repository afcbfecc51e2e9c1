use super::wire::*;
use super::*;
use crate::observe::live::socket::testutil;
use std::time::{Duration, Instant};

fn fixed_hello(version: TlsVersion, suites: Vec<u16>, sni: Option<&str>) -> ClientHello {
    let mut h = ClientHello::new(version, suites, sni).unwrap();
    h.random = [0xaa; 32];
    h.key_share = [0xbb; 32];
    if version == TlsVersion::Tls13 {
        h.session_id = vec![0xcc; 32];
    }
    h
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn tls12_single_suite_hello_is_byte_exact() {
    let got = fixed_hello(TlsVersion::Tls12, vec![0xc02f], Some("node-1")).encode();
    let mut want = hex("16 0303 0079"); // record: handshake, TLS 1.2, 121 bytes
    want.extend(hex("01 000075")); // ClientHello, 117 bytes
    want.extend(hex("0303"));
    want.extend([0xaa; 32]);
    want.extend(hex("00")); // no session id
    want.extend(hex("0002 c02f")); // one suite
    want.extend(hex("01 00")); // null compression
    want.extend(hex("004a")); // 74 bytes of extensions
    want.extend(hex("0000 000b 0009 00 0006 6e6f64652d31")); // server_name node-1
    want.extend(hex("000a 000a 0008 001d 0017 0018 0019")); // supported_groups
    want.extend(hex("000b 0002 01 00")); // ec_point_formats
    want.extend(hex(
        "000d 001a 0018 0403 0503 0603 0807 0804 0805 0806 0401 0501 0601 0201 0203",
    ));
    want.extend(hex("0017 0000")); // extended_master_secret
    want.extend(hex("ff01 0001 00")); // renegotiation_info
    assert_eq!(got, want);
}

#[test]
fn tls13_hello_is_byte_exact() {
    let got = fixed_hello(
        TlsVersion::Tls13,
        TLS13_SUITES.iter().map(|s| s.0).collect(),
        None,
    )
    .encode();
    let mut want = hex("16 0301 00b0"); // initial-hello record version 0x0301, 176 bytes
    want.extend(hex("01 0000ac")); // ClientHello, 172 bytes
    want.extend(hex("0303")); // legacy_version
    want.extend([0xaa; 32]);
    want.extend(hex("20"));
    want.extend([0xcc; 32]);
    want.extend(hex("0006 1301 1302 1303"));
    want.extend(hex("01 00"));
    want.extend(hex("005d")); // 93 bytes of extensions
    want.extend(hex("000a 000a 0008 001d 0017 0018 0019"));
    want.extend(hex(
        "000d 001a 0018 0403 0503 0603 0807 0804 0805 0806 0401 0501 0601 0201 0203",
    ));
    want.extend(hex("002b 0003 02 0304")); // supported_versions: 1.3 only
    want.extend(hex("0033 0026 0024 001d 0020"));
    want.extend([0xbb; 32]);
    assert_eq!(got, want);
}

#[test]
fn old_versions_offer_no_tls12_suites_and_no_signature_algorithms() {
    let suites: Vec<u16> = IANA_TLS12_SUITES
        .iter()
        .map(|s| s.0)
        .filter(|id| !tls12_only(*id))
        .collect();
    assert!(suites.contains(&0xc013) && suites.contains(&0x000a));
    assert!(!suites.contains(&0xc02f) && !suites.contains(&0xcca8));
    let got = fixed_hello(TlsVersion::Tls10, suites, Some("10.0.0.1")).encode();
    assert_eq!(&got[..3], &[0x16, 0x03, 0x01]);
    assert_eq!(&got[9..11], &[0x03, 0x01]); // client_version
                                            // No server_name for an IP literal; no signature_algorithms before 1.2.
    assert!(!got.windows(8).any(|w| w == b"10.0.0.1"));
    assert_eq!(
        parse_client_hello_exts(&got),
        vec![
            EXT_SUPPORTED_GROUPS,
            EXT_EC_POINT_FORMATS,
            EXT_EXTENDED_MASTER_SECRET,
            EXT_RENEGOTIATION_INFO
        ]
    );
}

/// Extension types of an encoded ClientHello record.
fn parse_client_hello_exts(rec: &[u8]) -> Vec<u16> {
    let mut c = Cursor(&rec[9..]);
    c.take(2 + 32, "").unwrap();
    let sid = c.u8("").unwrap() as usize;
    c.take(sid, "").unwrap();
    let n = c.u16("").unwrap() as usize;
    c.take(n, "").unwrap();
    let n = c.u8("").unwrap() as usize;
    c.take(n, "").unwrap();
    let n = c.u16("").unwrap() as usize;
    let mut e = Cursor(c.take(n, "").unwrap());
    assert!(c.0.is_empty());
    let mut out = Vec::new();
    while !e.0.is_empty() {
        out.push(e.u16("").unwrap());
        let l = e.u16("").unwrap() as usize;
        e.take(l, "").unwrap();
    }
    out
}

/// A ServerHello handshake message (header included).
fn server_hello(version: u16, random: [u8; 32], suite: u16, exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    put_u16(&mut body, version);
    body.extend_from_slice(&random);
    put_vec8(&mut body, &[7; 32]);
    put_u16(&mut body, suite);
    body.push(0);
    if !exts.is_empty() {
        let mut e = Vec::new();
        for (t, d) in exts {
            put_ext(&mut e, *t, d);
        }
        put_vec16(&mut body, &e);
    }
    let mut hs = vec![HANDSHAKE_SERVER_HELLO];
    put_u24(&mut hs, body.len());
    hs.extend(body);
    hs
}

fn record(typ: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![typ, 3, 3];
    put_u16(&mut r, u16::try_from(payload.len()).unwrap());
    r.extend_from_slice(payload);
    r
}

fn read_all(bytes: &[u8]) -> Result<Answer, String> {
    let mut r = HelloReader::default();
    match r.feed(bytes)? {
        Some(a) => Ok(a),
        None => r.finish(),
    }
}

#[test]
fn reads_tls12_server_hello_and_following_records() {
    let mut bytes = record(
        CONTENT_HANDSHAKE,
        &server_hello(
            0x0303,
            [1; 32],
            0xc02f,
            &[(EXT_RENEGOTIATION_INFO, vec![0])],
        ),
    );
    // The Certificate that follows in the same read does not matter.
    bytes.extend(record(CONTENT_HANDSHAKE, &[11, 0, 0, 3, 0, 0, 0]));
    let a = read_all(&bytes).unwrap();
    assert_eq!(
        a,
        Answer::Hello(ServerHello {
            legacy_version: 0x0303,
            supported_version: None,
            cipher_suite: 0xc02f,
            hello_retry: false
        })
    );
    // TLS 1.0 server without extensions.
    let a = read_all(&record(
        CONTENT_HANDSHAKE,
        &server_hello(0x0301, [1; 32], 0x002f, &[]),
    ));
    match a.unwrap() {
        Answer::Hello(h) => assert_eq!(h.selected_version(), 0x0301),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_tls13_server_hello_and_hello_retry_request() {
    let sh = server_hello(
        0x0303,
        [9; 32],
        0x1301,
        &[
            (EXT_KEY_SHARE, vec![0; 36]),
            (EXT_SUPPORTED_VERSIONS, vec![3, 4]),
        ],
    );
    match read_all(&record(CONTENT_HANDSHAKE, &sh)).unwrap() {
        Answer::Hello(h) => {
            assert_eq!(h.selected_version(), 0x0304);
            assert!(!h.hello_retry);
        }
        other => panic!("{other:?}"),
    }
    let hrr = server_hello(
        0x0303,
        HRR_RANDOM,
        0x1302,
        &[
            (EXT_SUPPORTED_VERSIONS, vec![3, 4]),
            (EXT_KEY_SHARE, vec![0, 0x17]),
        ],
    );
    match read_all(&record(CONTENT_HANDSHAKE, &hrr)).unwrap() {
        Answer::Hello(h) => {
            assert_eq!(h.selected_version(), 0x0304);
            assert!(h.hello_retry);
            assert_eq!(h.cipher_suite, 0x1302);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_alerts_closes_and_split_records() {
    // Fatal protocol_version alert.
    assert_eq!(
        read_all(&hex("15 0303 0002 02 46")).unwrap(),
        Answer::Alert {
            level: 2,
            description: 70
        }
    );
    // Warning unrecognized_name is skipped; the handshake_failure after it counts.
    assert_eq!(
        read_all(&hex("15 0303 0002 01 70  15 0303 0002 02 28")).unwrap(),
        Answer::Alert {
            level: 2,
            description: 40
        }
    );
    // close_notify, then a clean close.
    assert_eq!(
        read_all(&hex("15 0303 0002 01 00")).unwrap(),
        Answer::Alert {
            level: 1,
            description: 0
        }
    );
    assert_eq!(read_all(&[]).unwrap(), Answer::Closed);
    // Cut short.
    assert!(read_all(&hex("16 0303 0010 02")).is_err());

    // A ServerHello split byte by byte, and one split across two records.
    let sh = server_hello(0x0303, [1; 32], 0xc030, &[]);
    let rec = record(CONTENT_HANDSHAKE, &sh);
    let mut r = HelloReader::default();
    let mut got = None;
    for b in &rec {
        assert!(got.is_none());
        got = r.feed(&[*b]).unwrap();
    }
    assert!(matches!(got, Some(Answer::Hello(h)) if h.cipher_suite == 0xc030));
    let mut two = record(CONTENT_HANDSHAKE, &sh[..10]);
    two.extend(record(CONTENT_HANDSHAKE, &sh[10..]));
    assert!(matches!(read_all(&two).unwrap(), Answer::Hello(h) if h.cipher_suite == 0xc030));
    // A HelloRequest before it is ignored.
    let mut hr = record(CONTENT_HANDSHAKE, &[0, 0, 0, 0]);
    hr.extend(rec);
    assert!(matches!(read_all(&hr).unwrap(), Answer::Hello(_)));
}

#[test]
fn garbage_is_a_protocol_error() {
    assert!(read_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").is_err());
    // Rejected on the first byte, without waiting for more.
    assert!(HelloReader::default().feed(b"H").is_err());
    assert!(read_all(&hex("16 0200 0001 00")).is_err()); // SSL 2-ish version
    assert!(read_all(&hex("16 0303 ffff")).is_err()); // oversized record
    assert!(read_all(&hex("17 0303 0001 00")).is_err()); // application data
    assert!(read_all(&hex("14 0303 0001 01")).is_err()); // CCS first
    assert!(read_all(&record(CONTENT_HANDSHAKE, &[11, 0, 0, 0])).is_err()); // not a hello
    assert!(read_all(&record(CONTENT_HANDSHAKE, &[2, 0, 0, 3, 3, 3, 0])).is_err()); // short
    assert!(read_all(&hex("15 0303 0003 02 28 00")).is_err()); // odd alert
    let mut sh = server_hello(
        0x0303,
        [1; 32],
        0xc02f,
        &[(EXT_SUPPORTED_VERSIONS, vec![3])],
    );
    assert!(read_all(&record(CONTENT_HANDSHAKE, &sh)).is_err());
    sh = server_hello(0x0303, [1; 32], 0xc02f, &[]);
    sh.push(0); // trailing byte inside the message
    sh[3] += 1;
    assert!(read_all(&record(CONTENT_HANDSHAKE, &sh)).is_err());
}

proptest::proptest! {
    #[test]
    fn reader_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
                           cuts in proptest::collection::vec(0usize..600, 0..8)) {
        let mut r = HelloReader::default();
        let mut cuts = cuts;
        cuts.push(data.len());
        cuts.sort_unstable();
        let mut start = 0;
        for c in cuts {
            let c = c.min(data.len());
            if c < start { continue; }
            match r.feed(&data[start..c]) {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => break,
            }
            start = c;
        }
        let _ = r.finish();
    }

    #[test]
    fn structured_hellos_never_panic(version in 0u16..0x0400, suite in proptest::num::u16::ANY,
                                     ext in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
                                     cut in 0usize..200) {
        let mut sh = server_hello(version, [3; 32], suite, &[(EXT_SUPPORTED_VERSIONS, ext)]);
        let cut = cut.min(sh.len());
        sh.truncate(cut.max(4));
        let _ = read_all(&record(CONTENT_HANDSHAKE, &sh));
    }

    #[test]
    fn chunking_does_not_change_the_answer(split in 1usize..60) {
        let sh = server_hello(0x0303, [5; 32], 0x1303, &[(EXT_SUPPORTED_VERSIONS, vec![3, 4])]);
        let rec = record(CONTENT_HANDSHAKE, &sh);
        let mut r = HelloReader::default();
        let mut answer = None;
        for chunk in rec.chunks(split) {
            if let Some(a) = r.feed(chunk).unwrap() { answer = Some(a); }
        }
        proptest::prop_assert_eq!(answer, Some(read_all(&rec).unwrap()));
    }
}

// ---- against real servers on 127.0.0.1 ------------------------------------------

fn t() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        overall: Duration::from_secs(5),
    }
}

async fn versions(addr: SocketAddr) -> Vec<(TlsVersion, bool)> {
    let mut out = Vec::new();
    for v in TlsVersion::ALL {
        out.push((
            v,
            accepts_version(addr, v, Some("localhost"), &t())
                .await
                .unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn tls13_only_server() {
    let addr = testutil::tls_server(testutil::server_config(
        &[&rustls::version::TLS13],
        None,
        None,
    ))
    .await;
    use TlsVersion::*;
    assert_eq!(
        versions(addr).await,
        vec![
            (Tls10, false),
            (Tls11, false),
            (Tls12, false),
            (Tls13, true)
        ]
    );
    let suites = accepted_tls12_suites(addr, None, IANA_TLS12_SUITES, &t(), 4)
        .await
        .unwrap();
    assert_eq!(suites.len(), IANA_TLS12_SUITES.len());
    assert!(suites.iter().all(|(_, a)| !a), "{suites:?}");
}

#[tokio::test]
async fn tls12_only_server_with_given_suites() {
    use rustls::crypto::ring::cipher_suite as cs;
    let config = testutil::server_config(
        &[&rustls::version::TLS12],
        Some(vec![
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            // Offered by the server but unusable with its ECDSA certificate.
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ]),
        None,
    );
    let addr = testutil::tls_server(config).await;
    use TlsVersion::*;
    assert_eq!(
        versions(addr).await,
        vec![
            (Tls10, false),
            (Tls11, false),
            (Tls12, true),
            (Tls13, false)
        ]
    );
    // Refusals are the server's fatal alerts, not closes or errors. (rustls answers a
    // TLS 1.0 hello with handshake_failure: without signature_algorithms it finds no
    // usable certificate before it looks at the version; Go says protocol_version.)
    for (v, suites, alert) in [
        (Tls10, vec![0xc009], 40),
        (Tls13, vec![0x1301], 70), // protocol_version
        (Tls12, vec![0xc02f], 40), // handshake_failure: no common suite
    ] {
        let hello = ClientHello::new(v, suites, None).unwrap().encode();
        assert_eq!(
            exchange(addr, &hello, t(), "x").await.unwrap(),
            Answer::Alert {
                level: 2,
                description: alert
            },
            "{v:?}"
        );
    }
    let suites = accepted_tls12_suites(addr, Some("localhost"), IANA_TLS12_SUITES, &t(), 3)
        .await
        .unwrap();
    let names: Vec<&str> = suites.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = IANA_TLS12_SUITES.iter().map(|s| s.1).collect();
    assert_eq!(names, want, "order is the input's");
    let accepted: Vec<&str> = suites
        .iter()
        .filter(|(_, a)| *a)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        accepted,
        vec![
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        ]
    );
}

#[tokio::test]
async fn hello_retry_request_counts_as_accepted() {
    // The server only does P-256: our X25519 key share gets a HelloRetryRequest.
    let config = testutil::server_config(
        &[&rustls::version::TLS13],
        None,
        Some(vec![rustls::crypto::ring::kx_group::SECP256R1]),
    );
    let addr = testutil::tls_server(config).await;
    let hello = ClientHello::new(TlsVersion::Tls13, vec![0x1301], None).unwrap();
    match exchange(addr, &hello.encode(), t(), "hrr").await.unwrap() {
        Answer::Hello(h) => assert!(h.hello_retry, "{h:?}"),
        other => panic!("{other:?}"),
    }
    assert!(accepts_version(addr, TlsVersion::Tls13, None, &t())
        .await
        .unwrap());
}

#[tokio::test]
async fn silent_refused_and_non_tls_peers() {
    let quick = Timeouts {
        connect: Duration::from_millis(500),
        overall: Duration::from_millis(400),
    };
    let silent = testutil::silent_server().await;
    let start = Instant::now();
    let e = accepts_version(silent, TlsVersion::Tls12, None, &quick)
        .await
        .unwrap_err();
    assert_eq!(e.kind, LiveErrorKind::Timeout, "{e}");
    assert!(start.elapsed() < Duration::from_secs(2));
    // One silent suite attempt fails the whole scan.
    let start = Instant::now();
    let e = accepted_tls12_suites(silent, None, IANA_TLS12_SUITES, &quick, 4)
        .await
        .unwrap_err();
    assert_eq!(e.kind, LiveErrorKind::Timeout, "{e}");
    assert!(start.elapsed() < Duration::from_secs(3));

    let closed = testutil::closed_port().await;
    let e = accepts_version(closed, TlsVersion::Tls13, None, &quick)
        .await
        .unwrap_err();
    assert_eq!(e.kind, LiveErrorKind::Refused, "{e}");
    let e = accepted_tls12_suites(closed, None, &IANA_TLS12_SUITES[..2], &quick, 1)
        .await
        .unwrap_err();
    assert_eq!(e.kind, LiveErrorKind::Refused, "{e}");

    let http = testutil::canned_server(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    let e = accepts_version(http, TlsVersion::Tls12, None, &quick)
        .await
        .unwrap_err();
    assert_eq!(e.kind, LiveErrorKind::Protocol, "{e}");

    let closer = testutil::canned_server(b"").await;
    assert!(!accepts_version(closer, TlsVersion::Tls12, None, &quick)
        .await
        .unwrap());
}
