//! Command line: `serve` (the DaemonSet agent), `check` (one-shot report) and `baseline`.
//!
//! - [`args`]: the flags (clap), each with its environment twin,
//! - [`run`](mod@run): the runners that turn them into the options of observe, evaluate and publish,
//! - [`logging`]: logs to stderr that never stop the agent,
//! - [`reference`]: docs/flags.md, generated from the flags.

pub mod args;
pub mod logging;
pub mod reference;
pub mod run;

use std::path::PathBuf;

use crate::agent::AgentError;
use crate::evaluate::policy::PolicyError;
use crate::model::file::HostError;
use crate::publish::drift::store::StoreError;
use crate::publish::drift::AcceptError;

/// Errors at the command-line boundary; every one means "could not run" (exit 2). Each
/// message is whole (it includes its cause's), and the cause stays reachable as its
/// `source()`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--host-root` cannot be opened as the host's root.
    #[error("--host-root: {0}")]
    HostRoot(#[from] HostError),
    /// The policy (`--policy`, layered over the embedded defaults) cannot be read or is
    /// invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// `serve` could not start or stopped on an error (see [`AgentError`]).
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The tokio runtime of `check` or `baseline` could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The report (or the baseline of `baseline show`) could not be rendered or written to
    /// stdout.
    #[error("cannot write the report: {0}")]
    Output(#[source] std::io::Error),
    /// `baseline show`: the stored baseline exists but cannot be used (`why`: the store's
    /// reason, such as a parse error or "a FIFO: refused, not read").
    #[error("baseline: {}: cannot be used: {why}", path.display())]
    BaselineCorrupt {
        /// The baseline file in the state dir.
        path: PathBuf,
        /// Why the store refused it.
        why: String,
    },
    /// `baseline show`: the stored baseline could not be read (I/O error, refused file).
    #[error("baseline: {0}")]
    BaselineRead(#[source] StoreError),
    /// `baseline accept`: the new baseline could not be made or stored.
    #[error("baseline: {0}")]
    BaselineAccept(#[from] AcceptError),
    /// `check` or `baseline accept`: the Kubernetes API client could not be set up.
    #[error("Kubernetes API: {0}")]
    Cluster(#[from] crate::io::kube::ClientError),
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: args::Cli) -> Result<i32, CliError> {
    logging::init_logging(&cli.global);
    // The process-wide rustls provider (the Kubernetes API client's TLS): ring, the only
    // one built in. Already installed (a second run in tests) is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (host, policy, opts) = run::load_common(&cli.global)?;
    if cli.global.running_config_via_proxy && !cli.global.read_running_config {
        tracing::warn!(
            "--running-config-via-proxy has no effect without --read-running-config: the running configuration is not read"
        );
    }
    match &cli.command {
        args::Command::Baseline(cmd) => run::baseline(cmd, &cli.global, &host, &policy, &opts),
        args::Command::Check(a) => run::check(a, &cli.global, &host, &policy, &opts),
        args::Command::Serve(a) => run::serve(a, &cli.global, policy, &opts),
    }
}
