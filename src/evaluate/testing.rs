//! Test support: the model's snapshot builders, and one control judged on a snapshot.

pub use crate::model::testing::*;

use crate::evaluate::policy::Policy;
use crate::evaluate::{control, Ctx, Outcome, Status};
use crate::model::snapshot::Snapshot;

/// A user policy layered on the defaults.
pub fn policy(yaml: &str) -> Policy {
    Policy::from_yaml("test-policy.yaml", yaml).expect("test policy is valid")
}

/// Evaluate one control with the default policy.
pub fn eval(id: &str, snapshot: &Snapshot) -> Outcome {
    eval_with(id, snapshot, &Policy::embedded())
}

/// Evaluate one control with a policy.
pub fn eval_with(id: &str, snapshot: &Snapshot, policy: &Policy) -> Outcome {
    let c = control(id).unwrap_or_else(|| panic!("no control {id}"));
    let ctx = Ctx { snapshot, policy };
    if c.needs == crate::evaluate::Needs::Api {
        if let Some(o) = crate::evaluate::cluster_view::api_gate(&ctx) {
            return o;
        }
    }
    (c.evaluate)(&ctx)
}

/// Assert a status, printing the outcome when it differs.
#[track_caller]
pub fn assert_status(o: &Outcome, status: Status) {
    assert_eq!(o.status, status, "{o:#?}");
    assert!(!o.reason.is_empty(), "every outcome needs a reason: {o:#?}");
}
