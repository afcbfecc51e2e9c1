//! The protocol (`tls-min-version`) and the TLS 1.2 cipher suites
//! (`tls-strong-cipher-suites`): from the configuration, confirmed or overruled by the
//! live scans of the serving port.

use crate::evaluate::by_version::{self, minor, Era, Minors};
use crate::evaluate::live_verdict::{live, with_live, LiveVerdict};
use crate::evaluate::outcome::{decide, unknown_with};
use crate::evaluate::setting::{because, known, list_of, str_of};
use crate::evaluate::{Ctx, Outcome, Status};
use crate::model::kubelet_config::loading::KUBELET_SUITES;
use crate::model::version::Minor;

/// The CIS 1.12 4.2.12 list (the embedded policy default; a test keeps them equal).
pub(super) const CIS_CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];

/// `VersionTLS1x` → 10..13.
fn tls_rank(v: &str) -> Option<u8> {
    match v {
        "VersionTLS10" => Some(10),
        "VersionTLS11" => Some(11),
        "VersionTLS12" => Some(12),
        "VersionTLS13" => Some(13),
        _ => None,
    }
}

fn tls_name(rank: u8) -> String {
    format!("VersionTLS{rank}")
}

/// The minimum TLS version the kubelet's server really accepts.
enum MinTls {
    /// Set to a version the kubelet knows.
    Explicit(u8),
    /// Set to something the kubelet does not accept.
    Invalid(String),
    /// Unset: the kubelet's own default, VersionTLS12.
    Default,
}

/// `tlsMinVersion` as the kubelet reads it. cmd/kubelet/app/server.go `InitializeTLS`
/// calls k8s.io/component-base/cli/flag `TLSVersion(kc.TLSMinVersion)`, which returns
/// `DefaultTLSVersion()` = `tls.VersionTLS12` for an empty name, one of `VersionTLS10` ..
/// `VersionTLS13`, or the error "unknown tls version" (the kubelet does not start), and
/// puts it in the server's `tls.Config.MinVersion`. The same in every supported kubelet
/// (checked in component-base v0.19.16 .. v0.37.2 and the kubelet's `InitializeTLS` of
/// v1.19.16 .. v1.37.2), so Go's own server default (TLS 1.0 before Go 1.22) never
/// applies: a kubelet with `tlsMinVersion` unset refuses TLS 1.0 and 1.1.
fn min_tls(raw: &str) -> MinTls {
    if raw.is_empty() {
        return MinTls::Default;
    }
    match tls_rank(raw) {
        Some(r) => MinTls::Explicit(r),
        None => MinTls::Invalid(raw.to_string()),
    }
}

/// Whether the effective `key` is explicitly an empty string/list (Go's default applies).
fn unset(ctx: &Ctx, key: &str) -> bool {
    ctx.setting(key).known().is_some_and(|s| match &s.value {
        serde_json::Value::String(v) => v.trim().is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        _ => false,
    })
}

/// Live evidence: which protocol versions the serving port accepts.
fn versions_live(ctx: &Ctx, want: u8) -> Option<LiveVerdict> {
    let l = live(ctx)?;
    Some(match l.tls_versions.as_ref()? {
        Ok(list) => {
            let accepted: Vec<&str> = list
                .iter()
                .filter(|(_, ok)| *ok)
                .map(|(v, _)| v.as_str())
                .collect();
            let below: Vec<&str> = accepted
                .iter()
                .copied()
                .filter(|v| tls_rank(v).is_some_and(|r| r < want))
                .collect();
            if accepted.is_empty() {
                LiveVerdict::Unavailable("the serving port accepted no TLS version offered".into())
            } else if below.is_empty() {
                LiveVerdict::Secure(format!("accepts only {}", accepted.join(", ")))
            } else {
                LiveVerdict::Insecure(format!("accepts {}", below.join(", ")))
            }
        }
        Err(e) => LiveVerdict::Unavailable(format!("protocol scan: {e}")),
    })
}

/// Live evidence: which TLS 1.2 suites the serving port accepts.
fn suites_live(ctx: &Ctx, allowed: &[String]) -> Option<LiveVerdict> {
    let l = live(ctx)?;
    Some(match l.tls12_suites.as_ref()? {
        Ok(list) => {
            let accepted: Vec<&str> = list
                .iter()
                .filter(|(_, ok)| *ok)
                .map(|(v, _)| v.as_str())
                .collect();
            let weak: Vec<&str> = accepted
                .iter()
                .copied()
                .filter(|c| !suite_allowed(allowed, c))
                .collect();
            if !weak.is_empty() {
                LiveVerdict::Insecure(format!("accepts {}", weak.join(", ")))
            } else if accepted.is_empty() {
                LiveVerdict::Secure("accepts no TLS 1.2 suite (TLS 1.3 only)".into())
            } else {
                LiveVerdict::Secure(format!("accepts only {}", accepted.join(", ")))
            }
        }
        Err(e) => LiveVerdict::Unavailable(format!("cipher suite scan: {e}")),
    })
}

/// When the setting is unset, the Go default is what the kubelet does: live evidence of
/// that behaviour decides on its own (there is no configured claim to disagree with).
fn live_decides(live: LiveVerdict, expected: String) -> Outcome {
    match live {
        LiveVerdict::Secure(e) => Outcome::pass(
            format!("\"\" (live: {e})"),
            "live",
            format!("unset (Go default); the running kubelet {e}"),
        ),
        LiveVerdict::Insecure(e) => Outcome::fail(
            format!("\"\" (live: {e})"),
            "live",
            format!("unset (Go default); the running kubelet {e}"),
        ),
        LiveVerdict::Neutral(e) | LiveVerdict::Unavailable(e) => {
            Outcome::unknown(format!("unset (Go default) and no live answer: {e}"))
        }
    }
    .with_expected(expected)
}

pub(super) fn evaluate_min_version(ctx: &Ctx) -> Outcome {
    let want = tls_rank(&ctx.policy.expected.tls_min_version).unwrap_or(12);
    let config = evaluate_min_version_config(ctx);
    // Unset is a decided configuration too (VersionTLS12, see `min_tls`): the live scan
    // confirms or contradicts it like any configured value.
    with_live(config, versions_live(ctx, want))
}

pub(super) fn evaluate_cipher_suites(ctx: &Ctx) -> Outcome {
    let config = evaluate_cipher_suites_config(ctx);
    let live = suites_live(ctx, &ctx.policy.expected.tls_cipher_suites);
    match live {
        Some(l) if unset(ctx, "tlsCipherSuites") => {
            let expected = config
                .expected
                .clone()
                .unwrap_or_else(|| "only the CIS 1.12 suites".to_string());
            live_decides(l, expected)
        }
        l => with_live(config, l),
    }
}

pub(super) fn evaluate_min_version_config(ctx: &Ctx) -> Outcome {
    let want_name = ctx.policy.expected.tls_min_version.clone();
    // The policy is validated at load; fall back to the default 1.2 defensively.
    let want = tls_rank(&want_name).unwrap_or(12);
    let out = decide(|| {
        let s = known(ctx, "tlsMinVersion")?;
        let raw = str_of(&s)?.trim().to_string();
        let src = s.source.label();
        Ok(match min_tls(&raw) {
            MinTls::Explicit(r) if r >= want => Outcome::pass(
                raw.clone(),
                src,
                because(format!("{raw} meets the minimum {want_name}"), &s),
            ),
            MinTls::Explicit(_) => Outcome::fail(
                raw.clone(),
                src,
                because(format!("{raw} is below the minimum {want_name}"), &s),
            ),
            MinTls::Invalid(v) => Outcome::fail(
                v.clone(),
                src,
                because(
                    format!("{v:?} is not a TLS version the kubelet accepts (VersionTLS10..VersionTLS13); it would refuse to start"),
                    &s,
                ),
            ),
            MinTls::Default => {
                let observed = format!("\"\" (kubelet default: {})", tls_name(12));
                let why = "tlsMinVersion unset: every kubelet sets VersionTLS12 (component-base DefaultTLSVersion), refusing TLS 1.0 and 1.1";
                if 12 >= want {
                    Outcome::pass(observed, src, because(format!("{why}, meeting {want_name}"), &s))
                } else {
                    Outcome::fail(observed, src, because(format!("{why}, below {want_name}"), &s))
                }
            }
        })
    });
    out.with_expected(format!("≥ {want_name}"))
}

/// Names only kubelets from 1.23 accept (see [`KUBELET_SUITES`]).
const CHACHA_SHA256_NAMES: &[&str] = &[
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// The first kubelet minor that accepts [`CHACHA_SHA256_NAMES`].
const CHACHA_SHA256_FROM: Minor = minor(1, 23);

/// The IANA number of a suite name the kubelet accepts.
fn kubelet_suite_id(name: &str) -> Option<u16> {
    KUBELET_SUITES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, id)| *id)
}

/// A TLS 1.3 suite (0x13xx): never chosen through `tlsCipherSuites`.
fn is_tls13(id: u16) -> bool {
    id >> 8 == 0x13
}

/// The number of a suite named by the kubelet, the policy or the live scan (which uses
/// Go's legacy ChaCha20 names and IANA's for suites Go lacks).
fn suite_id(name: &str) -> Option<u16> {
    kubelet_suite_id(name).or_else(|| {
        crate::model::tls::IANA_TLS12_SUITES
            .iter()
            .chain(crate::model::tls::TLS13_SUITES)
            .find(|(_, n)| *n == name)
            .map(|(id, _)| *id)
    })
}

/// Whether `name` is one of the allowed suites, by number (either ChaCha20 spelling).
fn suite_allowed(allowed: &[String], name: &str) -> bool {
    match suite_id(name) {
        Some(id) => allowed.iter().any(|a| suite_id(a) == Some(id)),
        None => allowed.iter().any(|a| a == name),
    }
}

const TLS13_FIXED: &str =
    "TLS 1.3 suites are not configurable (Go's are fixed, all AEAD): only TLS 1.2 suites are judged";

/// A non-empty `tlsCipherSuites` for a kubelet that accepts every name in it.
fn judge_suite_list(
    suites: &[String],
    allowed: &[String],
    min13: bool,
    observed: &str,
    src: &str,
) -> Outcome {
    let tls13: Vec<&str> = suites
        .iter()
        .map(String::as_str)
        .filter(|n| kubelet_suite_id(n).is_some_and(is_tls13))
        .collect();
    let tls12: Vec<&str> = suites
        .iter()
        .map(String::as_str)
        .filter(|n| !tls13.contains(n))
        .collect();
    let outside: Vec<&str> = tls12
        .iter()
        .copied()
        .filter(|n| !suite_allowed(allowed, n))
        .collect();
    let ignored = if tls13.is_empty() {
        String::new()
    } else {
        format!(" ({} ignored: {TLS13_FIXED})", tls13.join(", "))
    };
    if min13 {
        // InitializeTLS: "Warning: TLS 1.3 cipher suites are not configurable, ignoring
        // --tls-cipher-suites".
        let unused = if outside.is_empty() {
            String::new()
        } else {
            format!(
                "; the list names {} for TLS 1.2, used only if the minimum is lowered",
                outside.join(", ")
            )
        };
        return Outcome::pass(
            observed,
            src,
            format!("tlsMinVersion is VersionTLS13: no TLS 1.2 suite is ever negotiated and {TLS13_FIXED}{unused}"),
        );
    }
    if !outside.is_empty() {
        // e.g. EKS AL2's TLS_RSA_WITH_AES_{128,256}_GCM_*: no forward secrecy, allowed by
        // CIS 1.10/1.11 but not by 1.12.
        return Outcome::fail(
            observed,
            src,
            format!(
                "weak or unlisted TLS 1.2 suites allowed: {}{ignored}",
                outside.join(", ")
            ),
        );
    }
    if tls12.is_empty() {
        return Outcome::pass(
            observed,
            src,
            format!("no TLS 1.2 suite is enabled, so TLS 1.2 clients cannot connect{ignored}"),
        );
    }
    Outcome::pass(
        observed,
        src,
        format!(
            "all {} TLS 1.2 suites are in the allowed list{ignored}",
            tls12.len()
        ),
    )
}

pub(super) fn evaluate_cipher_suites_config(ctx: &Ctx) -> Outcome {
    let allowed = &ctx.policy.expected.tls_cipher_suites;
    let out = decide(|| {
        let s = known(ctx, "tlsCipherSuites")?;
        let suites = list_of(&s)?;
        let src = s.source.label();
        // VersionTLS13 as the floor leaves no TLS 1.2 suite in use.
        let min13 = known(ctx, "tlsMinVersion")
            .and_then(|m| Ok(matches!(min_tls(str_of(&m)?.trim()), MinTls::Explicit(13))));
        if !suites.is_empty() {
            let observed = suites.join(",");
            let unknown: Vec<&str> = suites
                .iter()
                .map(String::as_str)
                .filter(|n| kubelet_suite_id(n).is_none())
                .collect();
            if !unknown.is_empty() {
                return Ok(Outcome::fail(
                    observed,
                    src,
                    because(
                        format!(
                            "{} is not a cipher suite name the kubelet knows (component-base TLSCipherSuites: \"not supported or doesn't exist\"): the kubelet refuses to start",
                            unknown.join(", ")
                        ),
                        &s,
                    ),
                ));
            }
            let judged = match &min13 {
                Ok(min13) => judge_suite_list(&suites, allowed, *min13, &observed, &src),
                Err(why) => {
                    let j = judge_suite_list(&suites, allowed, false, &observed, &src);
                    if j.status == Status::Fail {
                        unknown_with(
                            observed.clone(),
                            src.clone(),
                            format!("{}; but tlsMinVersion cannot be decided ({why}), and VersionTLS13 would leave the TLS 1.2 suites unused", j.reason),
                        )
                    } else {
                        j
                    }
                }
            };
            let new_names: Vec<&str> = suites
                .iter()
                .map(String::as_str)
                .filter(|n| CHACHA_SHA256_NAMES.contains(n))
                .collect();
            let mut out = if new_names.is_empty() {
                judged
            } else {
                let refused = Outcome::fail(
                    observed.clone(),
                    src.clone(),
                    format!(
                        "{} is unknown to component-base before v0.23 (it knows only the legacy spelling without _SHA256): the kubelet refuses to start",
                        new_names.join(", ")
                    ),
                );
                by_version::judge(
                    ctx,
                    vec![
                        Era::new(Minors::up_to(minor(1, 22)), refused),
                        Era::new(Minors::from(CHACHA_SHA256_FROM), judged),
                    ],
                    &observed,
                    &src,
                )
            };
            out.reason = because(&out.reason, &s);
            return Ok(out);
        }
        // Unset: Go's default suites. Only a TLS 1.3 floor makes them irrelevant.
        let m = known(ctx, "tlsMinVersion")?;
        Ok(if min13? {
            Outcome::pass(
                "[] (Go default)",
                m.source.label(),
                because(
                    format!(
                        "tlsCipherSuites unset and tlsMinVersion is VersionTLS13: {TLS13_FIXED}"
                    ),
                    &m,
                ),
            )
        } else {
            Outcome::fail(
                "[] (Go default)",
                src,
                because(
                    "unset: Go's default TLS 1.2 suites include CBC-mode suites outside the CIS list; kube-bench also fails an unset list",
                    &s,
                ),
            )
        })
    });
    let is_cis = allowed.len() == CIS_CIPHER_SUITES.len()
        && CIS_CIPHER_SUITES
            .iter()
            .all(|c| allowed.iter().any(|a| a == c));
    if is_cis {
        out
    } else {
        out.with_expected(format!("only: {}", allowed.join(",")))
    }
}
