//! Records the git revision for `kubelet_sentinel_build_info{revision}`.
use std::process::Command;

fn main() {
    let rev = std::env::var("KUBELET_SENTINEL_REVISION")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=KUBELET_SENTINEL_REVISION={rev}");
    println!("cargo:rerun-if-env-changed=KUBELET_SENTINEL_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    pack_relative_relocations();
}

/// A static glibc build (the image's: `-C target-feature=+crt-static`, Dockerfile) packs its
/// relative relocations (`-z pack-relative-relocs`, DT_RELR: GNU ld >= 2.38, glibc >= 2.36,
/// both in the Debian 12 build image). The binary is position-independent (ASLR) and
/// relocates itself at start, reading every relocation: as RELA entries that is ~420 KiB
/// of the file kept resident for the process's life; packed, a few KiB
/// (docs/performance.md, "Where the memory goes"). Only when the glibc linked in (the build
/// host's: a native build) is 2.36 or later: an older static glibc would not apply packed
/// relocations and the binary would crash at start. Dynamically linked builds are left as
/// they are: there the format would need glibc >= 2.36 wherever the binary runs.
fn pack_relative_relocations() {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let static_glibc = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static");
    if static_glibc && var("HOST") == var("TARGET") && host_glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// `getconf GNU_LIBC_VERSION` (`glibc 2.36`) is at least `major.minor`; false when unknown.
fn host_glibc_at_least(major: u32, minor: u32) -> bool {
    let Some(out) = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .filter(|o| o.status.success())
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .trim()
        .strip_prefix("glibc ")
        .unwrap_or_default()
        .split('.')
        .map(|p| p.parse::<u32>().ok());
    match (version.next().flatten(), version.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}
