//! kubelet-sentinel: thin binary over the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cap_malloc_arenas();
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

/// One glibc malloc arena for the whole process, unless the operator set
/// `MALLOC_ARENA_MAX` (glibc reads it at its first allocation, and it is left to win).
///
/// glibc gives each thread that contends for the main arena an arena of its own (up to
/// 8 per core), and an arena keeps the pages its thread freed: the tokio workers, the
/// blocking pool and the `/proc` scan's threads each grew one of ~0.8 MiB that stayed
/// resident (docs/performance.md, "Where the memory goes"). The agent allocates little
/// (a peak of ~0.9 MiB of live heap during an evaluation with 1,000 processes, heaptrack)
/// and each thread keeps its own small-allocation cache (glibc's tcache), so one arena
/// costs no measurable throughput. The same as `MALLOC_ARENA_MAX=1` (glibc
/// `malloc/arena.c`, `arena_get2`; mallopt(3)); called before any other thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // mallopt(3): one libc call with constant arguments, before any thread
fn cap_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` takes two integers and touches only the allocator's
        // parameters; no other thread exists yet. Its result (1 on success) needs no
        // handling: on failure glibc's defaults stay.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn cap_malloc_arenas() {}
