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
}
