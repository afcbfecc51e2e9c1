//! Command line: `serve` (the DaemonSet agent), `check` (one-shot report) and `baseline`.
//!
//! - [`args`]: the flags (clap), each with its environment twin,
//! - [`run`]: the runners that turn them into the options of observe, evaluate and publish,
//! - [`logging`]: logs to stderr that never stop the agent.

pub mod args;
pub mod logging;
pub mod run;

use crate::agent::AgentError;
use crate::evaluate::policy::PolicyError;
use crate::model::file::HostError;

/// Errors at the command-line boundary; every one means "could not run" (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("--host-root: {0}")]
    HostRoot(#[from] HostError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),
    #[error("baseline: {0}")]
    Baseline(String),
    #[error("Kubernetes API: {0}")]
    Cluster(#[from] crate::observe::cluster::ClientError),
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
