//! Command line: `serve` (the DaemonSet agent), `check` (one-shot report), `fix` (the
//! changes that make the failing controls pass) and `baseline`.
//!
//! - [`args`]: the flags (clap), each with its environment twin,
//! - [`run`](mod@run): the runners that turn them into the options of observe, evaluate and publish,
//! - [`logging`]: logs to stderr that never stop the agent,
//! - [`self::reference`]: docs/flags.md, generated from the flags.

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

/// Errors at the command-line boundary; every one means "could not run" (exit 2).
///
/// The crate's one convention for errors that wrap another: the message is whole — it
/// says its cause's message (`--host-root: /x: not found`) — and the cause is *not* also
/// returned by `source()`. A log line or a reason string made with `{e}` then says
/// everything, and a printer that walks the chain (`main`, anyhow's `{e:#}`, tracing's
/// error fields) prints each cause once. (The Rust API guidelines' rule: an error either
/// displays its source or returns it, never both.) The errors that reach `main` —
/// [`AgentError`], [`PolicyError`], [`HostError`], [`StoreError`], [`AcceptError`],
/// `ClientError`, `TlsError` — follow it; `tests` hold real ones to it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--host-root` cannot be opened as the host's root.
    #[error("--host-root: {0}")]
    HostRoot(HostError),
    /// The policy (`--policy`, layered over the embedded defaults) cannot be read or is
    /// invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// `serve` could not start or stopped on an error (see [`AgentError`]).
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The tokio runtime of `check` or `baseline` could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The report (or the baseline of `baseline show`) could not be rendered or written to
    /// stdout.
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),
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
    BaselineRead(StoreError),
    /// `baseline accept`: the new baseline could not be made or stored.
    #[error("baseline: {0}")]
    BaselineAccept(AcceptError),
    /// `check` or `baseline accept`: the Kubernetes API client could not be set up.
    #[error("Kubernetes API: {0}")]
    Cluster(crate::io::kube::ClientError),
    /// `check --benchmark`: the benchmark or the format asked for cannot be given.
    #[error("--benchmark: {0}")]
    Benchmark(String),
    /// `fix --out`: the directory cannot be used or written.
    #[error(transparent)]
    FixOut(#[from] crate::publish::fix::OutError),
}

/// What `main` prints for an error (after `kubelet-sentinel: error: `): its message, then
/// each cause its `source()` chain holds. With the convention of [`CliError`] the chain of
/// the crate's errors is empty, so each cause appears once.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: args::Cli) -> Result<i32, CliError> {
    logging::init_logging(&cli.log);
    // The process-wide rustls provider (the Kubernetes API client's TLS): ring, the only
    // one built in. Already installed (a second run in tests) is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match &cli.command {
        args::Command::Baseline(cmd) => run::baseline(cmd),
        args::Command::Check(a) => run::check(a),
        args::Command::Serve(a) => run::serve(a),
        args::Command::Fix(a) => run::fix(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convention: the message says the cause, and `source()` does not repeat it.
    fn printed_once(e: &CliError) -> String {
        assert!(
            std::error::Error::source(e).is_none(),
            "{e}: a cause in the message is not also a source()"
        );
        error_text(e)
    }

    #[test]
    fn real_errors_print_each_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = CliError::HostRoot(crate::io::host::HostRoot::new(&missing).unwrap_err());
        assert_eq!(
            printed_once(&e),
            format!("--host-root: {}: not found", missing.display())
        );

        let policy = missing.to_string_lossy().into_owned();
        let read = crate::io::host::read_operator_file(&missing, 1024);
        let Err(e) = crate::evaluate::policy::Policy::load(&policy, read) else {
            panic!("a missing policy file loads");
        };
        let e = CliError::from(e);
        let text = printed_once(&e);
        assert!(text.starts_with(&format!("policy {policy}: ")), "{text}");
        assert_eq!(text.matches(&policy).count(), 1, "{text}");

        // A port already taken: the bind error's text once.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = std::net::TcpListener::bind(addr).unwrap_err();
        let why = error.to_string();
        let e = CliError::Agent(AgentError::Bind { addr, error });
        let text = printed_once(&e);
        assert_eq!(text, format!("cannot listen on {addr}: {why}"));

        let store = crate::publish::drift::store::StateDir::new(dir.path().join("state"));
        std::fs::create_dir_all(store.path(crate::publish::drift::store::BASELINE_FILE)).unwrap();
        let e = match store.load::<crate::publish::drift::Baseline>(
            crate::publish::drift::store::BASELINE_FILE,
            |_| Ok(()),
        ) {
            crate::publish::drift::store::Loaded::Unreadable(e) => CliError::BaselineRead(e),
            crate::publish::drift::store::Loaded::Corrupt(why) => CliError::BaselineCorrupt {
                path: store.path(crate::publish::drift::store::BASELINE_FILE),
                why,
            },
            other => panic!("a directory as baseline.json: {other:?}"),
        };
        let text = printed_once(&e);
        assert_eq!(text.matches("baseline.json").count(), 1, "{text}");
    }

    #[test]
    fn a_foreign_chain_is_walked() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_text(&e), "outer: inner");
    }
}
