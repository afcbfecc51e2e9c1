//! Observe: host I/O under `--host-root`, producing a [`crate::snapshot::Snapshot`].

pub mod config;
pub mod flags;
pub mod settings;
