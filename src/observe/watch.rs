//! The per-second change check (`--watch-interval`): cheap fingerprints of every file the
//! last evaluation read, and the kubelet's pid, start time and command line. Any
//! difference triggers a re-evaluation at once; the evaluation itself classifies what
//! changed (see `publish::drift::tracker::Tracker`).
//!
//! A check is one `openat2(O_PATH)` + `fstat` per file and two small reads of
//! `/proc/<pid>/{stat,cmdline}` into a reused buffer: no allocation in the steady state.
//! What a file is fingerprinted by: dev, inode, size, mtime, ctime, with symlinks followed
//! inside the host root, so an edit in place, a replace-by-rename, a delete-and-recreate
//! and a re-pointed symlink all change it. Directories of `--config-dir` and the unit's
//! `<unit>.d` are watched too (their mtime changes when an entry is added or removed).

use crate::io::host::{HostRoot, PreparedPath};

use crate::model::file::{Fingerprint, Stamp};
use crate::model::observed::ObsErrorKind;
use crate::model::snapshot::Snapshot;
use crate::observe::process::{self, start_time_from_stat, ProcessKind};

/// Cap on the watched `/proc/<pid>/cmdline` (the observer's own cap is larger; a longer
/// command line is compared on its first 128 KiB, and the interval catches the rest).
const CMDLINE_CAP: usize = 128 * 1024;
/// `/proc/<pid>/stat` is well under a page.
const STAT_CAP: usize = 4096;

/// What a check found changed first (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A watched file or directory changed: its fingerprint, or it appeared, vanished or
    /// became unreadable.
    File,
    /// The kubelet process is gone, restarted (another start time in
    /// `/proc/<pid>/stat`) or has another command line.
    Process,
    /// The agent's own drift baseline file no longer has the fingerprint the drift
    /// tracker expects (the one it last wrote or loaded): changed from outside.
    Baseline,
    /// No kubelet was known, and a kubelet-bearing process appeared (or one of the
    /// doubtful candidates went away).
    Appeared,
}

impl Trigger {
    /// The word logged as `trigger`: `file`, `process`, `baseline` or `appeared`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Trigger::File => "file",
            Trigger::Process => "process",
            Trigger::Baseline => "baseline",
            Trigger::Appeared => "appeared",
        }
    }
}

#[derive(Debug)]
struct ProcWatch {
    stat: PreparedPath,
    cmdline: PreparedPath,
    start: Option<u64>,
    /// The command line's bytes when the watch was armed.
    argv: Vec<u8>,
}

/// A file outside the host root checked beside it (the agent's own drift baseline, in its
/// state directory): how to fingerprint it now (`None`: absent or unreadable).
pub struct OwnFile(Box<dyn Fn() -> Option<Fingerprint> + Send>);

impl OwnFile {
    /// Watch the file `fingerprint` describes.
    pub fn new(fingerprint: impl Fn() -> Option<Fingerprint> + Send + 'static) -> OwnFile {
        OwnFile(Box::new(fingerprint))
    }
}

impl std::fmt::Debug for OwnFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnFile")
    }
}

/// The armed watch: what to check and the stamps to compare with.
#[derive(Debug, Default)]
pub struct Watch {
    files: Vec<(PreparedPath, Stamp)>,
    process: Option<ProcWatch>,
    /// Our own baseline file and the fingerprint we last loaded or wrote (a different one
    /// means `baseline accept` or a hand edit: reload).
    baseline: Option<(OwnFile, Option<Fingerprint>)>,
    /// Armed when the evaluation found no kubelet: `/proc` is rescanned at every check.
    seek: Option<Seek>,
    buf: Vec<u8>,
}

/// The search for a kubelet while none is known (it exited, is restarting, or was never
/// found): without it the watch would have nothing to watch until the next full
/// evaluation, and a restarted kubelet would go unjudged for a whole `--interval`.
///
/// A check lists `/proc` (one `getdents` pass) and reads the command line of new pids
/// only; a new kubelet-bearing process, or a candidate that went away, triggers an
/// evaluation, which decides whether it is the kubelet. Processes present when the watch
/// was armed were seen by that evaluation and do not trigger again (a spoofed or doubtful
/// candidate does not make the agent evaluate every second).
#[derive(Debug, Default)]
struct Seek {
    /// Every pid in `/proc` at the last check, ascending.
    pids: Vec<i32>,
    /// The kubelet-bearing processes (any kind but an API server) among them, ascending.
    candidates: Vec<i32>,
}

impl Seek {
    fn arm(host: &HostRoot) -> Seek {
        let mut seek = Seek::default();
        // Unlistable now: every pid seen later is new, and triggers once.
        if let Ok(pids) = process::list_pids(host) {
            seek.candidates = pids
                .iter()
                .copied()
                .filter(|p| bears_kubelet(host, *p))
                .collect();
            seek.pids = pids;
        }
        seek
    }

    fn check(&mut self, host: &HostRoot) -> Option<Trigger> {
        let Ok(pids) = process::list_pids(host) else {
            return None;
        };
        let before = self.candidates.len();
        self.candidates.retain(|c| pids.binary_search(c).is_ok());
        let gone = self.candidates.len() != before;
        let mut appeared = false;
        for p in pids.iter().filter(|p| self.pids.binary_search(p).is_err()) {
            if bears_kubelet(host, *p) {
                appeared = true;
                self.candidates.push(*p);
            }
        }
        self.candidates.sort_unstable();
        self.pids = pids;
        (gone || appeared).then_some(Trigger::Appeared)
    }
}

/// Whether a process's command line names a kubelet (or k3s, which carries one).
fn bears_kubelet(host: &HostRoot, pid: i32) -> bool {
    process::read_proc(host, pid)
        .map(|info| {
            matches!(
                process::classify(&info.argv, info.exe.as_deref()),
                Some(k) if k != ProcessKind::ApiServer
            )
        })
        .unwrap_or(false)
}

impl Watch {
    /// Arm a watch from an evaluation's snapshot. Files use the metadata the observation
    /// took (so a change between observation and arming is still seen); files that could
    /// not be examined are stamped now.
    pub fn arm(host: &HostRoot, snapshot: &Snapshot) -> Watch {
        let mut w = Watch::default();
        let Some(k) = snapshot.kubelet.as_ref() else {
            w.seek = Some(Seek::arm(host));
            return w;
        };
        for f in &k.files {
            let Some(p) = PreparedPath::new(&f.path) else {
                continue;
            };
            if w.files.iter().any(|(q, _)| *q == p) {
                continue;
            }
            let stamp = match &f.meta {
                Ok(m) => Stamp::File(m.fingerprint()),
                Err(e) if e.kind == ObsErrorKind::NotFound => Stamp::Missing,
                Err(_) => host.stamp(&p),
            };
            w.files.push((p, stamp));
        }
        let pid = k.pid;
        if let (Some(stat), Some(cmdline)) = (
            PreparedPath::new(&format!("/proc/{pid}/stat")),
            PreparedPath::new(&format!("/proc/{pid}/cmdline")),
        ) {
            let mut argv = Vec::new();
            // Unreadable now: an empty command line, which a readable one will differ from.
            host.read_into(&cmdline, &mut argv, CMDLINE_CAP);
            w.process = Some(ProcWatch {
                stat,
                cmdline,
                start: k.start_time_ticks,
                argv,
            });
        }
        w
    }

    /// Also watch our own baseline file, expected to have this fingerprint.
    pub fn with_baseline(mut self, file: OwnFile, expected: Option<Fingerprint>) -> Watch {
        self.baseline = Some((file, expected));
        self
    }

    /// Number of watched files (and directories).
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Nothing at all to check: no file, no kubelet process, and no kubelet sought.
    /// Unlike [`Watch::len`], which counts files only.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.process.is_none() && self.seek.is_none()
    }

    /// Whether the watch is looking for a kubelet (none was known when it was armed).
    pub fn seeking(&self) -> bool {
        self.seek.is_some()
    }

    /// Check everything once; the first difference found, if any.
    pub fn check(&mut self, host: &HostRoot) -> Option<Trigger> {
        if let Some(seek) = self.seek.as_mut() {
            if let Some(t) = seek.check(host) {
                return Some(t);
            }
        }
        if let Some(p) = &self.process {
            if !host.read_into(&p.stat, &mut self.buf, STAT_CAP) {
                return Some(Trigger::Process);
            }
            let start = std::str::from_utf8(&self.buf)
                .ok()
                .and_then(start_time_from_stat);
            if start != p.start {
                return Some(Trigger::Process);
            }
            if !host.read_into(&p.cmdline, &mut self.buf, CMDLINE_CAP) || self.buf != p.argv {
                return Some(Trigger::Process);
            }
        }
        for (path, stamp) in &self.files {
            if host.stamp(path) != *stamp {
                return Some(Trigger::File);
            }
        }
        if let Some((file, expected)) = &self.baseline {
            if (file.0)() != *expected {
                return Some(Trigger::Baseline);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{self, ObserveOptions};

    fn write_host(root: &std::path::Path, argv: &[&str], start: u64) {
        let p = root.join("proc/4242");
        std::fs::create_dir_all(&p).unwrap();
        let mut cmd = Vec::new();
        for a in argv {
            cmd.extend_from_slice(a.as_bytes());
            cmd.push(0);
        }
        std::fs::write(p.join("cmdline"), cmd).unwrap();
        let mut fields = vec!["0"; 50];
        let start = start.to_string();
        fields[18] = &start;
        std::fs::write(
            p.join("stat"),
            format!("4242 (kubelet) S {}\n", fields.join(" ")),
        )
        .unwrap();
    }

    fn setup() -> (tempfile::TempDir, HostRoot, Snapshot) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/kubelet.d")).unwrap();
        std::fs::write(
            root.join("etc/config.yaml"),
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 0\n",
        )
        .unwrap();
        write_host(
            root,
            &[
                "/usr/bin/kubelet",
                "--config=/etc/config.yaml",
                "--config-dir=/etc/kubelet.d",
            ],
            500,
        );
        let host = HostRoot::new(root).unwrap();
        let opts = ObserveOptions {
            node_name: Some("n".into()),
            kubelet_pid: Some(4242),
        };
        let snap = observe::observe(&host, &opts);
        assert!(snap.kubelet.is_some(), "{:?}", snap.discovery);
        assert_eq!(snap.kubelet.as_ref().unwrap().start_time_ticks, Some(500));
        (dir, host, snap)
    }

    #[test]
    fn quiet_host_no_trigger() {
        let (_d, host, snap) = setup();
        let mut w = Watch::arm(&host, &snap);
        assert!(w.len() >= 2, "config file and config dir are watched");
        assert_eq!(w.check(&host), None);
        assert_eq!(w.check(&host), None);
    }

    #[test]
    fn edits_renames_recreations_and_dropins_trigger() {
        type Edit = fn(&std::path::Path);
        let edits: &[(&str, Edit)] = &[
            ("append", |r| {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(r.join("etc/config.yaml"))
                    .unwrap();
                writeln!(f, "# edited").unwrap();
            }),
            ("replace by rename", |r| {
                std::fs::write(r.join("etc/.config.yaml.new"), "readOnlyPort: 0\n").unwrap();
                std::fs::rename(r.join("etc/.config.yaml.new"), r.join("etc/config.yaml")).unwrap();
            }),
            ("delete", |r| {
                std::fs::remove_file(r.join("etc/config.yaml")).unwrap();
            }),
            ("chmod", |r| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    r.join("etc/config.yaml"),
                    std::fs::Permissions::from_mode(0o666),
                )
                .unwrap();
            }),
            ("drop-in added", |r| {
                std::fs::write(r.join("etc/kubelet.d/10-x.conf"), "{}").unwrap();
            }),
            ("restart", |r| {
                write_host(
                    r,
                    &[
                        "/usr/bin/kubelet",
                        "--config=/etc/config.yaml",
                        "--config-dir=/etc/kubelet.d",
                    ],
                    900,
                );
            }),
            ("command line", |r| {
                write_host(r, &["/usr/bin/kubelet", "--config=/etc/config.yaml"], 500);
            }),
        ];
        for (what, edit) in edits {
            let (d, host, snap) = setup();
            let mut w = Watch::arm(&host, &snap);
            assert_eq!(w.check(&host), None, "{what}");
            // Coarse-timestamp filesystems: make sure mtime/ctime can move.
            std::thread::sleep(std::time::Duration::from_millis(20));
            edit(d.path());
            assert!(w.check(&host).is_some(), "{what} was not seen");
        }
    }

    #[test]
    fn a_repointed_symlink_triggers() {
        let (d, _host, _) = setup();
        let r = d.path();
        std::fs::write(r.join("etc/a.yaml"), "readOnlyPort: 0\n").unwrap();
        std::fs::write(r.join("etc/b.yaml"), "readOnlyPort: 0\n").unwrap();
        std::fs::remove_file(r.join("etc/config.yaml")).unwrap();
        std::os::unix::fs::symlink("a.yaml", r.join("etc/config.yaml")).unwrap();
        let host = HostRoot::new(r).unwrap();
        let snap = observe::observe(
            &host,
            &ObserveOptions {
                node_name: Some("n".into()),
                kubelet_pid: Some(4242),
            },
        );
        let mut w = Watch::arm(&host, &snap);
        assert_eq!(w.check(&host), None);
        std::fs::remove_file(r.join("etc/config.yaml")).unwrap();
        std::os::unix::fs::symlink("/etc/b.yaml", r.join("etc/config.yaml")).unwrap();
        assert_eq!(w.check(&host), Some(Trigger::File));
    }

    #[test]
    fn the_baseline_file_is_watched() {
        let (d, host, snap) = setup();
        let b = d.path().join("baseline.json");
        std::fs::write(&b, "{}").unwrap();
        let fingerprint = {
            let b = b.clone();
            move || {
                rustix::fs::lstat(&b)
                    .ok()
                    .map(|st| crate::io::host::fingerprint_of_stat(&st))
            }
        };
        let fp = fingerprint();
        let mut w = Watch::arm(&host, &snap).with_baseline(OwnFile::new(fingerprint), fp);
        assert_eq!(w.check(&host), None);
        std::fs::remove_file(&b).unwrap();
        assert_eq!(w.check(&host), Some(Trigger::Baseline));
    }

    #[test]
    fn without_a_kubelet_proc_is_rescanned_at_every_check() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("proc/1")).unwrap();
        std::fs::write(root.join("proc/1/cmdline"), b"/sbin/init\0").unwrap();
        let host = HostRoot::new(root).unwrap();
        let observe_now = || {
            observe::observe(
                &host,
                &ObserveOptions {
                    node_name: Some("n".into()),
                    kubelet_pid: None,
                },
            )
        };
        let snap = observe_now();
        assert!(snap.kubelet.is_none());
        let mut w = Watch::arm(&host, &snap);
        assert!(w.seeking() && !w.is_empty());
        assert_eq!(w.check(&host), None, "nothing new");

        // Another process that is not a kubelet: no evaluation.
        std::fs::create_dir_all(root.join("proc/77")).unwrap();
        std::fs::write(root.join("proc/77/cmdline"), b"sleep\0infinity\0").unwrap();
        assert_eq!(w.check(&host), None);

        // The kubelet comes back (a restart under a new pid): seen at the next check, once.
        write_host(
            root,
            &["/usr/bin/kubelet", "--config=/etc/config.yaml"],
            900,
        );
        assert_eq!(w.check(&host), Some(Trigger::Appeared));
        assert_eq!(w.check(&host), None, "already seen");

        // A candidate present when the watch was armed does not trigger at every check
        // (a spoofed or doubtful one would otherwise cost an evaluation a second) ...
        let mut w = Watch::arm(&host, &snap);
        assert_eq!(w.check(&host), None);
        assert_eq!(w.check(&host), None);
        // ... but its going away does: the evaluation may now find the real one.
        std::fs::remove_dir_all(root.join("proc/4242")).unwrap();
        assert_eq!(w.check(&host), Some(Trigger::Appeared));
        assert_eq!(w.check(&host), None);
    }

    #[test]
    fn a_known_kubelet_is_not_searched_for() {
        let (_d, host, snap) = setup();
        let w = Watch::arm(&host, &snap);
        assert!(!w.seeking());
    }
}
