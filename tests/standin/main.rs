//! Test-support stand-in kubelet (placeholder; see tests/standin/README.md).
fn main() {}
