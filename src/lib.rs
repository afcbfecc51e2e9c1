//! kubelet-sentinel: continuous, evidence-backed kubelet hardening checks.
//!
//! The layers, from the centre out (tests/layering.rs keeps the imports this way round):
//! - [`model`]: the kubelet as plain data and pure rules (snapshot, kubelet configuration,
//!   certificates, versions); no I/O, nothing crosses in.
//! - [`io`]: bounded, timed I/O primitives (the host under `--host-root`, the operator's
//!   files, the Kubernetes API client); paths and limits cross in, bytes and handles out.
//! - [`observe`]: the only producer of a [`model::snapshot::Snapshot`]: the host, the
//!   kubelet process, its files, live probes and the API, through [`io`].
//! - [`evaluate`]: pure judgement: a `Snapshot` and a `Policy` cross in, a
//!   `ControlResult` per control of the catalogue comes out.
//! - [`publish`]: everything that leaves the process: results and snapshots cross in;
//!   the metrics exposition, the `check` report, drift and its state dir, Events and the
//!   HTTP server go out.
//! - [`agent`]: the `serve` loop that wires observe → evaluate → publish on a timer and
//!   on every detected change.
//! - [`cli`]: the command line: flags cross in, the options of each layer and an exit
//!   code come out.

#![forbid(unsafe_code)]
// Every public item of the library says what it is (docs/architecture.md for the whole).
#![warn(missing_docs)]
// Outside tests, an unwrap or expect is a bug unless an invariant proves it cannot fail:
// such a place says so in an `allow` with its reason. (Test code may unwrap: clippy.toml.)
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod cli;
pub mod evaluate;
pub mod io;
pub mod model;
pub mod observe;
pub mod publish;
