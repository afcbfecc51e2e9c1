//! Test-support stand-in kubelet (placeholder; see support/standin-kubelet/README.md).
fn main() {}
