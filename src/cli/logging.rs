//! Logging to stderr, where a failed write never stops the agent.

use super::args::{LogArgs, LogFormat};

/// Standard error for the logs, where a failed write is dropped: a closed or full stderr
/// (the reader of a pipe gone, `EPIPE`) must never bring the agent down. tracing's own
/// report of a failed write (`log_internal_errors`) is an `eprintln!`, which panics when
/// stderr is broken (tracing-subscriber `src/fmt/fmt_layer.rs`, `Layer::on_event`): it is
/// turned off in [`init_logging`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Lost, not retried: the agent's work goes on whether or not its log is read.
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Set up logging to stderr (see [`LossyStderr`]).
pub fn init_logging(global: &LogArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false)
        .with_writer(|| LossyStderr);
    // A second initialisation (tests) is harmless: ignore the error.
    let _ = match global.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
