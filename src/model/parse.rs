//! Parsing what the agent reads: one set of limits for every YAML document, and parse
//! errors that say *where* and *what kind*, never *what* the file holds.
//!
//! Files the agent parses may hold secrets (a kubeconfig's `token:` or
//! `client-key-data:`, a KubeletConfiguration's `staticPodURLHeader`), and a parse
//! error about them ends up in the `check` report, the `serve` log and the metrics'
//! reasons. serde-saphyr's `Display` renders a snippet of the source around the error
//! and serde's `invalid type`/`invalid value` messages quote the offending value; so no
//! parser error is ever shown as is: [`ParseFault`] keeps the line, the column and a
//! category ([`FaultKind`]) and nothing else.
//!
//! Every YAML parse goes through [`yaml`], whose [`yaml_options`] set serde-saphyr's
//! budget and alias-replay limits low enough that an alias/merge-key bomb fails in
//! microseconds instead of expanding (issue 13 item 10).

use std::fmt;

use serde::de::DeserializeOwned;

/// What kind of parse error, in words that never quote the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Malformed YAML/JSON. The detail is the parser's fixed description of the problem
    /// (e.g. "mapping values are not allowed in this context"), only for kinds whose
    /// description names no input.
    Syntax(Option<String>),
    /// A value of the wrong type or an invalid value; `expected` is what the target type
    /// wanted (from the agent's own types, e.g. "a boolean"), never what was found.
    WrongType {
        /// What the target type wanted; `None` when the parser's error does not say it
        /// without quoting the input (JSON type errors, unknown enum variants).
        expected: Option<String>,
    },
    /// The same key twice in a mapping.
    DuplicateKey,
    /// A key this document may not have (the name is left out: it is file content).
    UnknownField,
    /// A required key is missing (its name comes from the agent's own type).
    MissingField(&'static str),
    /// Over the parser's budget: too many aliases, anchors, merge keys, nodes, or too
    /// deeply nested (a "billion laughs" document).
    TooComplex(String),
    /// An alias that names no anchor.
    UnknownAnchor,
    /// More than one YAML document.
    MultipleDocuments,
    /// Not UTF-8, or an I/O error of the reader.
    Encoding,
    /// The input ended in the middle of a value.
    Truncated,
    /// Anything else the parser reports (its message is not shown).
    Other,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Syntax(Some(d)) => write!(f, "syntax error ({d})"),
            FaultKind::Syntax(None) => f.write_str("syntax error"),
            FaultKind::WrongType { expected: Some(e) } => {
                write!(f, "a value of the wrong type (expected {e})")
            }
            FaultKind::WrongType { expected: None } => f.write_str("a value of the wrong type"),
            FaultKind::DuplicateKey => f.write_str("duplicate key"),
            FaultKind::UnknownField => f.write_str("unknown key"),
            FaultKind::MissingField(name) => write!(f, "missing key `{name}`"),
            FaultKind::TooComplex(what) => write!(
                f,
                "document too complex for the parser's budget ({what}): refusing to expand it"
            ),
            FaultKind::UnknownAnchor => f.write_str("alias to an unknown anchor"),
            FaultKind::MultipleDocuments => f.write_str("more than one YAML document"),
            FaultKind::Encoding => f.write_str("not valid UTF-8 text"),
            FaultKind::Truncated => f.write_str("unexpected end of input"),
            FaultKind::Other => f.write_str("unparsable"),
        }
    }
}

/// A parse error safe to show: a category and a position, never the input's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseFault {
    /// What went wrong.
    pub kind: FaultKind,
    /// 1-based line, when the parser knows it.
    pub line: Option<u64>,
    /// 1-based column, when the parser knows it.
    pub column: Option<u64>,
}

impl fmt::Display for ParseFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, " at line {l} column {c}"),
            (Some(l), None) => write!(f, " at line {l}"),
            _ => Ok(()),
        }
    }
}

impl ParseFault {
    fn new(kind: FaultKind, line: Option<u64>, column: Option<u64>) -> Self {
        ParseFault { kind, line, column }
    }

    /// Redact a serde-saphyr error: keep its position and category.
    pub fn from_yaml(e: &serde_saphyr::Error) -> ParseFault {
        use serde_saphyr::Error as E;
        let e = unwrap_yaml(e);
        let (line, column) = match e.location() {
            // serde-saphyr uses line 0 for "no position".
            Some(l) if l.line() > 0 => (Some(l.line()), Some(l.column())),
            _ => (None, None),
        };
        let kind = match e {
            E::ExternalMessage { source, .. } => match source.as_ref() {
                serde_saphyr::ExternalMessageSource::Parser(scan) => scan_kind(scan.kind()),
                _ => FaultKind::Other,
            },
            E::Message { .. } | E::HookError { .. } => FaultKind::Syntax(None),
            E::Eof { .. } | E::UnexpectedSequenceEnd { .. } | E::UnexpectedMappingEnd { .. } => {
                FaultKind::Truncated
            }
            E::SerdeInvalidType { expected, .. } | E::SerdeInvalidValue { expected, .. } => {
                FaultKind::WrongType {
                    expected: Some(expected.clone()),
                }
            }
            E::SerdeInvalidLength { expected, .. } => FaultKind::WrongType {
                expected: Some(expected.clone()),
            },
            E::InvalidBooleanStrict { .. } => FaultKind::WrongType {
                expected: Some("a boolean: true or false".to_string()),
            },
            E::InvalidScalar { ty, .. } => FaultKind::WrongType {
                expected: Some((*ty).to_string()),
            },
            E::NullIntoString { .. } => FaultKind::WrongType {
                expected: Some("a string".to_string()),
            },
            E::NonFiniteFloat { .. }
            | E::QuotingRequired { .. }
            | E::InvalidCharNull { .. }
            | E::InvalidCharNotSingleScalar { .. }
            | E::UnexpectedValueForUnit { .. }
            | E::TaggedScalarCannotDeserializeIntoString { .. }
            | E::SerdeUnknownVariant { .. } => FaultKind::WrongType { expected: None },
            E::SerdeUnknownField { .. } => FaultKind::UnknownField,
            E::SerdeMissingField { field, .. } => FaultKind::MissingField(field),
            E::DuplicateMappingKey { .. } => FaultKind::DuplicateKey,
            E::Budget { breach, .. } => FaultKind::TooComplex(budget_breach(breach)),
            E::AliasReplayLimitExceeded { .. }
            | E::AliasReplayCounterOverflow { .. }
            | E::AliasExpansionLimitExceeded { .. }
            | E::AliasReplayStackDepthExceeded { .. } => {
                FaultKind::TooComplex("alias replay limit".to_string())
            }
            E::UnknownAnchor { .. } => FaultKind::UnknownAnchor,
            E::MultipleDocuments { .. } => FaultKind::MultipleDocuments,
            E::InvalidUtf8Input | E::IOError { .. } => FaultKind::Encoding,
            E::IndentationError { .. } | E::ContainerEndMismatch { .. } => {
                FaultKind::Syntax(Some("bad indentation".to_string()))
            }
            _ => FaultKind::Other,
        };
        ParseFault::new(kind, line, column)
    }

    /// Redact a serde_json error. Its syntax messages name no input, but its `invalid
    /// type: string "…"` data errors quote the value: only the category is kept.
    pub fn from_json(e: &serde_json::Error) -> ParseFault {
        use serde_json::error::Category;
        let kind = match e.classify() {
            Category::Syntax => FaultKind::Syntax(None),
            Category::Data => FaultKind::WrongType { expected: None },
            Category::Eof => FaultKind::Truncated,
            Category::Io => FaultKind::Encoding,
        };
        let line = (e.line() > 0).then_some(e.line() as u64);
        let column = line.map(|_| e.column() as u64);
        ParseFault::new(kind, line, column)
    }
}

/// The error under serde-saphyr's snippet and alias wrappers.
fn unwrap_yaml(e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    match e {
        serde_saphyr::Error::WithSnippet { error, .. } => unwrap_yaml(error),
        serde_saphyr::Error::AliasError { error, .. } => unwrap_yaml(error),
        other => other,
    }
}

/// The scanner's description when it is a fixed phrase; the kinds that embed input (a
/// character, a custom message, a decoding message) lose their detail.
fn scan_kind(kind: &serde_saphyr::granit_parser::ErrorKind) -> FaultKind {
    use serde_saphyr::granit_parser::ErrorKind as K;
    match kind {
        K::UnexpectedCharacter { .. } | K::Custom(_) => FaultKind::Syntax(None),
        K::InputIo { .. } | K::InputDecoding { .. } => FaultKind::Encoding,
        K::InputByteLimitExceeded { .. } | K::RecursionLimitExceeded => {
            FaultKind::TooComplex("size or nesting limit".to_string())
        }
        K::UnknownAnchor => FaultKind::UnknownAnchor,
        K::MultipleDocumentsUnsupported => FaultKind::MultipleDocuments,
        other => FaultKind::Syntax(Some(other.to_string())),
    }
}

fn budget_breach(b: &serde_saphyr::budget::BudgetBreach) -> String {
    // The breach's Debug is its variant and counters (numbers), e.g. `Aliases { aliases: 1001 }`.
    let s = format!("{b:?}");
    let name: String = s.chars().take_while(char::is_ascii_alphanumeric).collect();
    if name.is_empty() {
        return "budget".to_string();
    }
    if name.ends_with("Depth") {
        return "nested too deeply".to_string();
    }
    // `RecordedAnchorEvents` → "too many recorded anchor events".
    let mut words = String::from("too many");
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// The limits of every YAML parse. The documents the agent reads are small and plain: a
/// KubeletConfiguration, its drop-ins, a kubeconfig, the policy, the CVE/release tables
/// (a few hundred nodes, rarely an anchor). serde-saphyr's defaults (1 M replayed alias
/// events, 10 000 merge keys, 250 000 nodes) let a nested alias/merge document cost
/// 1–2 s of CPU per read; these limits stop it after at most a millisecond of work (release build)
/// while leaving two orders of magnitude above any real file.
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            // The readers cap files at a few MiB; this is a second fence.
            max_reader_input_bytes: Some(16 * 1024 * 1024),
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_recorded_anchor_events: 1_000,
            max_recorded_anchor_bytes: 1024 * 1024,
            max_depth: 64,
            max_documents: 1,
            max_nodes: 100_000,
            max_total_scalar_bytes: 16 * 1024 * 1024,
            max_merge_keys: 256,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 1_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
        // No rendered snippets: they would carry file content into error strings.
        with_snippet: false,
    }
}

/// Parse one YAML document with the agent's limits ([`yaml_options`]); the error is
/// redacted.
pub fn yaml<T: DeserializeOwned>(text: &str) -> Result<T, ParseFault> {
    serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| ParseFault::from_yaml(&e))
}

/// [`yaml`] for text that holds no secret (the embedded tables, the operator's policy):
/// the same limits, no rendered snippet, but serde-saphyr's own message (which may quote
/// a value or name an unknown key).
pub fn yaml_unredacted<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, yaml_options())
}

/// [`yaml_unredacted`] with YAML 1.2 booleans only (`true`/`false`/`True`/`TRUE`..., not
/// `yes`/`on`), recording the path of the key that failed
/// (`controls.anonymous-auth-disabled.enabled`): for the operator's policy.
pub fn yaml_strict<T: DeserializeOwned>(
    text: &str,
) -> Result<T, (Box<serde_saphyr::Error>, Option<String>)> {
    let mut options = yaml_options();
    options.strict_booleans = true;
    let mut path: Option<String> = None;
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            // serde_path_to_error writes `?` for a segment it cannot name.
            let p = e.path().to_string();
            let p = p.trim_end_matches(".?").trim_end_matches('?');
            if !p.is_empty() && p != "." {
                path = Some(p.to_string());
            }
            e.into_inner()
        })
    });
    result.map_err(|e| (Box::new(e), path))
}

/// Redact a rustls PEM error: `IllegalSectionStart`/`MissingSectionEnd` quote a line of
/// the file (a key file's, possibly).
pub fn pem_fault(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as P;
    match e {
        P::MissingSectionEnd { .. } => "a PEM section without its END line",
        P::IllegalSectionStart { .. } => "a malformed PEM BEGIN line",
        P::Base64Decode(_) => "a PEM section that is not valid base64",
        P::Io(_) => "an I/O error while reading PEM",
        P::NoItemsFound => "no PEM section of the expected kind",
        P::SectionTooLarge => "a PEM section over the size limit",
        _ => "malformed PEM",
    }
}

/// Redact a kube kubeconfig error (the agent's own `--kubeconfig`): its `Parse` variant
/// renders a snippet of the file, the base64/PEM ones describe inline credentials.
pub fn kubeconfig_fault(e: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as K;
    match e {
        K::Parse(y) => format!("invalid YAML: {}", ParseFault::from_yaml(y)),
        K::LoadCertificateAuthority(_) => "failed to load the certificate authority".to_string(),
        K::LoadClientCertificate(_) => "failed to load the client certificate".to_string(),
        K::LoadClientKey(_) => "failed to load the client key".to_string(),
        K::ParseCertificates(_) => "failed to parse the PEM certificates".to_string(),
        K::ParseClusterUrl(_) => "the cluster URL does not parse".to_string(),
        K::ParseProxyUrl(_) => "the proxy URL does not parse".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn yaml_errors_carry_no_content() {
        let secret = "SECRET-MARKER-8c1f";
        for text in [
            format!("users:\n- name: u\n  user:\n    token: {secret}\n   bad: [\n"),
            format!("token: \"{secret}\n"),
            format!("a: {secret}\na: 2\n"),
            format!("client-key-data: {secret}: x: y\n"),
            format!("k: {secret}\n---\nk: 2\n"),
            format!("k: *{secret}\n"),
            format!("k: !!int {secret}\n"),
        ] {
            let e = yaml::<Value>(&text).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(
                e.line.is_some() || matches!(e.kind, FaultKind::Other),
                "{shown}"
            );
        }
    }

    #[test]
    fn typed_errors_name_what_was_expected_not_what_was_found() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)] // only deserialised: the test is about the error
        struct T {
            enabled: bool,
        }
        let e = yaml::<T>("enabled: SECRET-MARKER\n").unwrap_err();
        let shown = e.to_string();
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("line 1"), "{shown}");
        let e = ParseFault::from_json(
            &serde_json::from_str::<T>(r#"{"enabled": "SECRET-MARKER"}"#).unwrap_err(),
        );
        assert!(!e.to_string().contains("SECRET"), "{e}");
        assert_eq!(e.kind, FaultKind::WrongType { expected: None });
    }

    #[test]
    fn strict_yaml_names_the_key_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)] // only deserialised: the test is about the error
        struct Inner {
            enabled: bool,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)] // only deserialised: the test is about the error
        struct T {
            controls: std::collections::BTreeMap<String, Inner>,
        }
        let (e, path) = yaml_strict::<T>("controls:\n  a-b:\n    enabled: yes\n").unwrap_err();
        assert_eq!(path.as_deref(), Some("controls.a-b.enabled"), "{e}");
        assert_eq!(ParseFault::from_yaml(&e).line, Some(3));
        assert!(yaml_strict::<T>("controls:\n  a-b:\n    enabled: true\n").is_ok());
    }
}

#[cfg(test)]
mod bomb {
    use super::*;
    use serde_json::Value;

    /// A billion-laughs document: each level is a sequence of ten aliases to the previous.
    pub fn laughs(levels: usize) -> String {
        let mut s = String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for i in 1..levels {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        s
    }

    /// Merge keys nested: each level merges the previous mapping several times over.
    pub fn merges(levels: usize) -> String {
        let mut s =
            String::from("m0: &m0 {k0: v, k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v}\n");
        for i in 1..levels {
            let p = i - 1;
            s.push_str(&format!(
                "m{i}: &m{i}\n  <<: [*m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}]\n  x{i}: [*m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}]\n"
            ));
        }
        s
    }

    /// The bombs fail with the budget's error (the proof), and promptly: the best of three
    /// tries under 400 ms (about a millisecond in release, a few in debug on an idle
    /// machine; serde-saphyr's defaults take 0.8–2 s in debug on the same documents). The
    /// bound is wide because the suite runs beside Go and Rust builds on 2 cores.
    #[test]
    fn alias_and_merge_bombs_fail_fast_with_the_budget_error() {
        for doc in [laughs(9), merges(8)] {
            let mut best = std::time::Duration::MAX;
            for _ in 0..3 {
                let t = std::time::Instant::now();
                let e = yaml::<Value>(&doc).unwrap_err();
                best = best.min(t.elapsed());
                assert!(matches!(e.kind, FaultKind::TooComplex(_)), "{e}");
            }
            assert!(best < std::time::Duration::from_millis(400), "{best:?}");
        }
        // A document that uses anchors within reason (110 scalars through aliases) parses.
        let ok: Value = yaml(&laughs(2)).unwrap();
        assert_eq!(ok["a1"][9].as_array().map(Vec::len), Some(10));
    }
}
