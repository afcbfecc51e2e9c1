//! kubelet-sentinel: thin binary over the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kubelet_sentinel::cli::args::Cli::parse();
    match kubelet_sentinel::cli::run(cli).map_err(anyhow::Error::from) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(2)),
        Err(e) => {
            // Not `eprintln!`: it panics when stderr is broken.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "kubelet-sentinel: error: {}",
                message(&e)
            );
            ExitCode::from(2)
        }
    }
}

/// The error and its causes. The crate's messages are whole (each includes its cause's, so
/// that a log line says everything): a cause is added only when the message so far does not
/// already say it, never twice (`{e:#}` would print `--host-root: /x: not found: /x: not
/// found`).
fn message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !msg.contains(&cause) {
            msg.push_str(": ");
            msg.push_str(&cause);
        }
    }
    msg
}
