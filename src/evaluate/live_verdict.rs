//! Live evidence: what the kubelet's sockets said about a control, combined with the
//! configuration's verdict (agreement passes, insecure behaviour fails, no answer is
//! `unknown`).

use super::{Ctx, Outcome, Status};

/// What the kubelet's sockets said about a control.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveVerdict {
    /// The running kubelet behaves securely here.
    Secure(String),
    /// The running kubelet behaves insecurely here: a fail whatever the files say.
    Insecure(String),
    /// Live evidence exists but says nothing about this control.
    Neutral(String),
    /// The probe had no answer (timeout, error): the control cannot be confirmed.
    Unavailable(String),
}

/// Combine the configuration's verdict with live evidence (`None`: probes did not run,
/// e.g. a host tree on disk; the configuration's verdict stands alone).
///
/// A control passes only when configuration and live behaviour agree: insecure live
/// behaviour fails; secure behaviour with an insecure configuration fails too (the node
/// runs something other than its files say, e.g. a restart is pending); a probe without
/// an answer makes the control `unknown` — never a pass.
pub fn with_live(config: Outcome, live: Option<LiveVerdict>) -> Outcome {
    let Some(live) = live else {
        return config;
    };
    let cfg_desc = if config.observed.is_empty() {
        "configuration undecidable".to_string()
    } else {
        format!("configured {} ({})", config.observed, config.source)
    };
    let joined_source = |src: &str| {
        if src.is_empty() {
            "live".to_string()
        } else {
            format!("{src}+live")
        }
    };
    match live {
        LiveVerdict::Insecure(e) => Outcome {
            status: Status::Fail,
            observed: format!("live: {e}"),
            source: "live".to_string(),
            reason: format!("the running kubelet {e}; {cfg_desc}; {}", config.reason),
            expected: config.expected,
        },
        LiveVerdict::Secure(e) => match config.status {
            Status::Pass | Status::NotApplicable => Outcome {
                observed: format!("{}; live: {e}", config.observed),
                source: joined_source(&config.source),
                reason: format!("{}; confirmed live: {e}", config.reason),
                ..config
            },
            Status::Fail => Outcome {
                observed: format!("{}; live: {e}", config.observed),
                source: joined_source(&config.source),
                reason: format!(
                    "configuration and running kubelet disagree: live {e}, but {}; the files decide after the next restart",
                    config.reason
                ),
                ..config
            },
            Status::Unknown => Outcome {
                reason: format!("{}; live: {e}, but the configuration cannot confirm it", config.reason),
                ..config
            },
        },
        LiveVerdict::Neutral(e) => Outcome {
            reason: format!("{}; live: {e}", config.reason),
            ..config
        },
        LiveVerdict::Unavailable(e) => Outcome {
            status: Status::Unknown,
            reason: format!("live probe has no answer ({e}); {cfg_desc}: {}", config.reason),
            ..config
        },
    }
}

/// The live probes ran for this snapshot.
pub fn live<'a>(ctx: &Ctx<'a>) -> Option<&'a crate::model::live::Live> {
    ctx.snapshot.live.as_ref()
}
