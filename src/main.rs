//! kubelet-sentinel: thin binary over the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kubelet_sentinel::cli::args::Cli::parse();
    match kubelet_sentinel::cli::run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(2)),
        Err(e) => {
            // Not `eprintln!`: it panics when stderr is broken.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "kubelet-sentinel: error: {}",
                kubelet_sentinel::cli::error_text(&e)
            );
            ExitCode::from(2)
        }
    }
}
