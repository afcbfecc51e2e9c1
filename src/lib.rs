//! kubelet-sentinel: continuous, evidence-backed kubelet hardening checks.
//!
//! The pipeline is visible in the layout:
//! - [`observe`]: host I/O and probes under `--host-root` ([`host::HostRoot`]),
//! - [`snapshot`]: the plain data observed,
//! - [`evaluate`]: pure functions, the control catalogue as a table,
//! - [`publish`]: metrics exposition, the `check` report, the HTTP server,
//! - [`drift`]: the baseline, the per-second change watch and drift signals.

pub mod agent;
pub mod cli;
pub mod evaluate;
pub mod io;
pub mod model;
pub mod observe;
pub mod publish;
