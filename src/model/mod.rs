//! Model: the kubelet as plain data and pure rules. No I/O happens here: everything is a
//! value or a function of values, so the same rules serve the agent, the tests and the
//! documentation.
//!
//! - [`snapshot`]: what one observation of a node found (the input of every control);
//! - [`kubelet_config`]: the kubelet's settings, flags, defaults and loading rules (which
//!   file wins, how drop-ins merge, version by version), giving an effective configuration
//!   with the provenance of every value;
//! - [`observed`]: a value read from the host, or why it could not be (`Observed`);
//! - [`live`]: what the kubelet's own sockets answered (listeners, TLS, HTTP);
//! - [`cert`]: X.509 certificates as the controls see them;
//! - [`exposition`]: the Prometheus/OpenMetrics text format, read line by line (the
//!   kubelet's `/metrics`, and the agent's own exposition in the tests);
//! - [`label`]: Kubernetes label keys and values (the node pool of `node_info`);
//! - [`quantity`]: Kubernetes resource quantities (`100Mi`, `5%`);
//! - [`time`]: calendar days and UTC timestamps;
//! - [`fix`], [`flag_origin`]: a proposed fix, and where each kubelet flag comes from;
//! - [`systemd`]: unit files, drop-ins and environment files as systemd reads them;
//! - [`k3s`]: how k3s and RKE2 build the kubelet's command line;
//! - [`kube_proxy`]: the node's kube-proxy and its precedence rules (CIS 4.1.3/4.1.4/4.3.1);
//! - [`parse`]: the limits and redacted errors of every document the agent parses.

pub mod cert;
pub mod exposition;
pub mod file;
pub mod fix;
pub mod flag_origin;
pub mod k3s;
pub mod kube_proxy;
pub mod kubelet_config;
pub mod label;
pub mod live;
pub mod net;
pub mod observed;
pub mod parse;
pub mod quantity;
pub mod snapshot;
pub mod systemd;
#[cfg(test)]
pub mod testing;
pub mod time;
pub mod tls;
pub mod version;
