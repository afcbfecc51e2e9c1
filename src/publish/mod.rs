//! Publish: what leaves the process.
//!
//! - [`metrics`]: the Prometheus / OpenMetrics exposition, rendered once per evaluation,
//! - [`report`]: the `check` command's report, rendered by [`report::json`],
//!   [`report::junit`] (JUnit XML) and [`report::table`] (the terminal),
//! - [`server`]: the HTTP server that serves the latest exposition,
//! - [`listener`]: its accept loop and the bounds on its clients (timeouts, caps),
//! - [`tls`]: HTTPS for it, with certificates reloaded when their files change,
//! - [`auth`]: `--metrics-auth kubernetes` (TokenReview + SubjectAccessReview),
//! - [`controls_doc`]: docs/controls.md, generated from the catalogue.

pub mod auth;
pub mod controls_doc;
pub mod drift;
pub mod events;
pub mod fix;
pub mod listener;
pub mod metrics;
pub mod report;
pub mod server;
pub mod tls;
