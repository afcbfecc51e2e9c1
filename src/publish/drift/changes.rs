//! What was last seen of the kubelet, and the pure classification of a change between two
//! sightings: the configuration, the command line, the process (a restart), the files the
//! evaluation reads; and which start-read files changed after the kubelet started.

use std::collections::BTreeMap;

use crate::model::file::Stamp;
use crate::model::observed::ObsErrorKind;
use crate::model::snapshot::{FileRole, Kubelet};

use super::baseline;

/// A start-read file changed within this many seconds after the kubelet started may have
/// been read by it: only later changes count as pending a restart.
pub const PENDING_GRACE_SECS: f64 = 1.0;

/// Files the kubelet (or systemd, for its unit) reads once at start: a change after the
/// start means the running kubelet no longer matches the disk. Not the kubeconfig (the
/// kubelet itself writes it after TLS bootstrap) and not certificates (rotated and
/// reloaded while it runs).
const START_READ: &[FileRole] = &[
    FileRole::ConfigFile,
    FileRole::DropIn,
    FileRole::ServiceUnit,
    FileRole::ServiceDropIn,
    FileRole::ArgsFile,
];

/// Counts of detected changes, by kind (`kubelet_sentinel_config_changes_total{kind}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    /// The effective configuration (any setting's value or source).
    pub config: u64,
    /// The kubelet's command line.
    pub command_line: u64,
    /// The kubelet process (new pid or start time).
    pub restart: u64,
    /// A file the evaluation reads (edited, replaced, added, removed, re-linked).
    pub file: u64,
}

impl Changes {
    /// `(kind, count)` in a stable order.
    pub fn kinds(&self) -> [(&'static str, u64); 4] {
        [
            ("config", self.config),
            ("command_line", self.command_line),
            ("restart", self.restart),
            ("file", self.file),
        ]
    }

    /// Count a change, once per kind; the kinds it has, in a stable order.
    pub(super) fn count(&mut self, change: &SeenChange) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if change.config {
            self.config += 1;
            kinds.push("config");
        }
        if change.command_line {
            self.command_line += 1;
            kinds.push("command_line");
        }
        if change.restart {
            self.restart += 1;
            kinds.push("restart");
        }
        if !change.files.is_empty() {
            self.file += 1;
            kinds.push("file");
        }
        kinds
    }
}

/// Start-read files modified after the kubelet started (see `START_READ`); `None` when
/// the start time is unknown.
pub fn modified_since_start(k: &Kubelet) -> Option<Vec<String>> {
    let started = k.started_at?;
    Some(
        k.files
            .iter()
            .filter(|f| START_READ.contains(&f.role))
            .filter_map(|f| {
                let m = f.meta.as_ref().ok()?;
                let mtime = m.mtime_ns as f64 / 1e9;
                (mtime > started + PENDING_GRACE_SECS).then(|| f.path.clone())
            })
            .collect(),
    )
}

/// What was last seen of the kubelet (persisted, so changes made while the agent was down
/// are counted at its next start).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Seen {
    pub(super) pid: i32,
    start_time_ticks: Option<u64>,
    command_line_hash: String,
    config_hash: String,
    /// `<role>:<path>` → stamp.
    files: BTreeMap<String, Stamp>,
}

impl Seen {
    pub(super) fn of(k: &Kubelet) -> Seen {
        Seen {
            pid: k.pid,
            start_time_ticks: k.start_time_ticks,
            command_line_hash: baseline::command_line_hash(&k.argv),
            config_hash: baseline::config_hash(k),
            files: k
                .files
                .iter()
                .map(|f| {
                    let stamp = match &f.meta {
                        Ok(m) => Stamp::File(m.fingerprint()),
                        Err(e) if e.kind == ObsErrorKind::NotFound => Stamp::Missing,
                        Err(_) => Stamp::Error(0),
                    };
                    (format!("{}:{}", f.role.as_str(), f.path), stamp)
                })
                .collect(),
        }
    }

    fn same_process(&self, other: &Seen) -> bool {
        self.pid == other.pid && self.start_time_ticks == other.start_time_ticks
    }

    /// What changed from `prev` to this sighting.
    pub(super) fn change_from<'a>(&'a self, prev: &'a Seen) -> SeenChange<'a> {
        let seen = self;
        let files: Vec<&str> = seen
            .files
            .iter()
            .filter(|(f, s)| prev.files.get(*f) != Some(*s))
            .map(|(f, _)| f.as_str())
            .chain(
                prev.files
                    .keys()
                    .filter(|f| !seen.files.contains_key(*f))
                    .map(String::as_str),
            )
            .collect();
        let start_read_gone = prev
            .files
            .iter()
            .filter(|(key, stamp)| {
                let gone = !matches!(seen.files.get(*key), Some(Stamp::File(_)));
                let start_read = START_READ
                    .iter()
                    .any(|r| key.starts_with(&format!("{}:", r.as_str())));
                matches!(stamp, Stamp::File(_)) && gone && start_read
            })
            .filter_map(|(key, _)| key.split_once(':').map(|(_, path)| path))
            .collect();
        SeenChange {
            restart: !prev.same_process(seen),
            command_line: prev.command_line_hash != seen.command_line_hash,
            config: prev.config_hash != seen.config_hash,
            files,
            start_read_gone,
        }
    }
}

/// A change between two sightings of the kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SeenChange<'a> {
    /// A new process (pid or start time).
    pub(super) restart: bool,
    pub(super) command_line: bool,
    pub(super) config: bool,
    /// `<role>:<path>` of each file changed, added or removed.
    pub(super) files: Vec<&'a str>,
    /// Paths of start-read files that were there before and are gone now (they matter
    /// while the same process runs: it still runs them).
    pub(super) start_read_gone: Vec<&'a str>,
}
