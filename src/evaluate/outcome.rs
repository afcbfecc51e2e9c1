//! Evaluations that may find their input undecidable: an `Err(reason)` becomes an
//! `unknown` outcome, so a control can combine several inputs with `?`.

use super::{Ctx, Outcome, Status};
use crate::model::snapshot::Kubelet;

/// Run an evaluation that may find its input undecidable: `Err(reason)` becomes
/// `unknown` with that reason. Lets a control combine several settings with `?`.
pub fn decide(f: impl FnOnce() -> Result<Outcome, String>) -> Outcome {
    f().unwrap_or_else(Outcome::unknown)
}

/// An `unknown` that still shows what was observed and where it came from.
pub fn unknown_with(
    observed: impl Into<String>,
    source: impl Into<String>,
    reason: impl Into<String>,
) -> Outcome {
    Outcome::new(Status::Unknown, observed, source, reason)
}

/// The kubelet under evaluation (always present for `Needs::Kubelet` controls).
pub fn kubelet<'a>(ctx: &Ctx<'a>) -> Result<&'a Kubelet, String> {
    ctx.kubelet().ok_or_else(|| "no kubelet".to_string())
}
