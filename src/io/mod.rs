//! I/O primitives, bounded and timed, shared by the two layers that touch the world:
//! `observe` (which reads the host, the kubelet and the API) and `publish` (which serves
//! `/metrics`, writes the agent's state and posts Events).
//!
//! - [`host`]: every path of the observed host, resolved beneath `--host-root` by the
//!   kernel; the operator's own files (policy, feed, kubeconfig, certificates), read with a
//!   cap after a type check;
//! - [`kube`]: the Kubernetes API client (in-cluster or `--kubeconfig`), the agent's
//!   bearer token, and one timed `create`.

pub mod host;
pub mod kube;
