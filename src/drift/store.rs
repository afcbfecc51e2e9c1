//! The agent's own state directory (`--state-dir`): the baseline and the last-seen state,
//! as JSON files written atomically.
//!
//! This is the only place the agent writes. A write goes to a new temporary file in the
//! same directory (`O_EXCL`, mode 0600), is fsynced, renamed over the target, and the
//! directory is fsynced: a crash at any moment leaves the old file or the new one, never
//! a torn one. A leftover temporary file (a crash between write and rename) is ignored by
//! readers and removed at the next start. A file that does not parse is moved aside
//! (`<name>.corrupt-<unix time>`), never deleted.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::host::Fingerprint;

/// The baseline's file name in the state dir.
pub const BASELINE_FILE: &str = "baseline.json";
/// The last-seen state (change detection across agent restarts).
pub const STATE_FILE: &str = "state.json";
/// Cap on reading a state file (a baseline is a few KiB).
const MAX_STATE_FILE: u64 = 4 * 1024 * 1024;
/// Marks a temporary file of ours: `.<name>.tmp-<pid>-<n>`.
const TMP_MARK: &str = ".tmp-";

/// Why the state dir could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_STATE_FILE} bytes")]
    TooLarge { path: String },
}

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What reading a state file found.
#[derive(Debug)]
pub enum Loaded<T> {
    Missing,
    Ok(T, Fingerprint),
    /// It exists but does not parse (or has another schema version): the reason.
    Corrupt(String),
    Unreadable(StoreError),
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

/// The default state dir of a plain run: `$STATE_DIRECTORY` (systemd), else
/// `$XDG_STATE_HOME/kubelet-sentinel`, else `~/.local/state/kubelet-sentinel`, else
/// `./state`. The DaemonSet passes `--state-dir /var/lib/kubelet-sentinel` (a hostPath).
pub fn default_state_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env("STATE_DIRECTORY") {
        return d;
    }
    if let Some(d) = env("XDG_STATE_HOME") {
        return d.join("kubelet-sentinel");
    }
    if let Some(h) = env("HOME") {
        return h.join(".local/state/kubelet-sentinel");
    }
    PathBuf::from("state")
}

/// The fingerprint of a file outside the host root (our own state files).
pub fn fingerprint_of(path: &Path) -> Option<Fingerprint> {
    let m = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        dev: m.dev(),
        inode: m.ino(),
        size: m.size(),
        mtime_ns: m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
        ctime_ns: m.ctime().saturating_mul(1_000_000_000) + m.ctime_nsec(),
    })
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Read and parse a JSON state file. `check_version` rejects a parsed value of
    /// another schema (it is then treated like a corrupt file).
    pub fn load<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        check_version: impl Fn(&T) -> Result<(), String>,
    ) -> Loaded<T> {
        let path = self.path(name);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
            Err(e) => return Loaded::Unreadable(io_err(&path, e)),
        };
        let fp = match file.metadata() {
            Ok(m) if m.is_file() => Fingerprint {
                dev: m.dev(),
                inode: m.ino(),
                size: m.size(),
                mtime_ns: m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
                ctime_ns: m.ctime().saturating_mul(1_000_000_000) + m.ctime_nsec(),
            },
            Ok(_) => return Loaded::Corrupt("not a regular file".to_string()),
            Err(e) => return Loaded::Unreadable(io_err(&path, e)),
        };
        let mut buf = Vec::new();
        if let Err(e) = (&mut file).take(MAX_STATE_FILE + 1).read_to_end(&mut buf) {
            return Loaded::Unreadable(io_err(&path, e));
        }
        if buf.len() as u64 > MAX_STATE_FILE {
            return Loaded::Corrupt(format!("larger than {MAX_STATE_FILE} bytes"));
        }
        match serde_json::from_slice::<T>(&buf) {
            Ok(v) => match check_version(&v) {
                Ok(()) => Loaded::Ok(v, fp),
                Err(why) => Loaded::Corrupt(why),
            },
            Err(e) => Loaded::Corrupt(e.to_string()),
        }
    }

    /// Move a file aside (`<name>.<label>-<unix time>[-n]`, label e.g. `corrupt`),
    /// keeping it. Returns the new path.
    pub fn quarantine(&self, name: &str, label: &str, now: f64) -> Result<PathBuf, StoreError> {
        let from = self.path(name);
        #[allow(clippy::cast_possible_truncation)]
        let stamp = now as i64;
        for n in 0..100 {
            let to = if n == 0 {
                self.path(&format!("{name}.{label}-{stamp}"))
            } else {
                self.path(&format!("{name}.{label}-{stamp}-{n}"))
            };
            if to.exists() {
                continue;
            }
            std::fs::rename(&from, &to).map_err(|e| io_err(&from, e))?;
            fsync_dir(&self.dir)?;
            return Ok(to);
        }
        Err(io_err(
            &from,
            std::io::Error::other("too many quarantined copies with this timestamp"),
        ))
    }

    /// Write `bytes` to `name` atomically (see the module docs). Creates the directory
    /// (mode 0700) if needed. Returns the new file's fingerprint.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<Fingerprint, StoreError> {
        if !self.dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| io_err(&self.dir, e))?;
        }
        let target = self.path(name);
        let (tmp_path, mut tmp) = self.create_temp(name)?;
        let result = (|| {
            tmp.write_all(bytes).map_err(|e| io_err(&tmp_path, e))?;
            tmp.sync_all().map_err(|e| io_err(&tmp_path, e))?;
            drop(tmp);
            fault_pause_before_rename(&tmp_path);
            std::fs::rename(&tmp_path, &target).map_err(|e| io_err(&target, e))?;
            fsync_dir(&self.dir)
        })();
        if let Err(e) = result {
            // Ours, in our own directory: never leave a partial temporary behind.
            let _ = std::fs::remove_file(&tmp_path);
            return Err(e);
        }
        fingerprint_of(&target).ok_or_else(|| {
            io_err(
                &target,
                std::io::Error::other("written but cannot be examined"),
            )
        })
    }

    fn create_temp(&self, name: &str) -> Result<(PathBuf, File), StoreError> {
        let pid = std::process::id();
        let mut last = None;
        for n in 0..100u32 {
            let p = self.path(&format!(".{name}{TMP_MARK}{pid}-{n}"));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&p)
            {
                Ok(f) => return Ok((p, f)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(p),
                Err(e) => return Err(io_err(&p, e)),
            }
        }
        let p = last.unwrap_or_else(|| self.path(name));
        Err(io_err(
            &p,
            std::io::Error::other("no free temporary file name"),
        ))
    }

    /// Make the directory private (0700) when it exists with wider permissions (a
    /// `hostPath` of type `DirectoryOrCreate` is made 0755): the baseline tells which
    /// controls fail on this node. Returns the old mode when it changed it.
    pub fn restrict_permissions(&self) -> Result<Option<u32>, StoreError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(&self.dir) {
            Ok(m) if m.is_dir() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&self.dir, e)),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(None);
        }
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(mode & 0o7700))
            .map_err(|e| io_err(&self.dir, e))?;
        Ok(Some(mode))
    }

    /// Remove temporary files left by an interrupted write (ours only: `.<name>.tmp-*`).
    /// Returns how many were removed.
    pub fn clean_temporaries(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let ours = [BASELINE_FILE, STATE_FILE]
                .iter()
                .any(|f| name.starts_with(&format!(".{f}{TMP_MARK}")));
            if ours
                && e.file_type().map(|t| t.is_file()).unwrap_or(false)
                && std::fs::remove_file(e.path()).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }
}

fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Fault injection for the crash-safety test (test-support builds only): with
/// `KUBELET_SENTINEL_FAULT_PAUSE_BEFORE_RENAME=<marker path>`, a write that has fsynced its
/// temporary file creates the marker and sleeps, so the test can kill the process
/// between write and rename.
#[cfg(feature = "standin")]
fn fault_pause_before_rename(tmp: &Path) {
    if let Some(marker) = std::env::var_os("KUBELET_SENTINEL_FAULT_PAUSE_BEFORE_RENAME") {
        let _ = std::fs::write(&marker, tmp.as_os_str().as_encoded_bytes());
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

#[cfg(not(feature = "standin"))]
fn fault_pause_before_rename(_tmp: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Doc {
        v: u32,
        text: String,
    }

    fn v1(d: &Doc) -> Result<(), String> {
        if d.v == 1 {
            Ok(())
        } else {
            Err(format!("schema version {} is not supported", d.v))
        }
    }

    #[test]
    fn writes_atomically_and_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path().join("nested/state"));
        let doc = Doc {
            v: 1,
            text: "hello".into(),
        };
        let fp = dir
            .write_atomic("x.json", &serde_json::to_vec(&doc).unwrap())
            .unwrap();
        match dir.load::<Doc>("x.json", v1) {
            Loaded::Ok(d, f) => {
                assert_eq!(d, doc);
                assert_eq!(f, fp);
            }
            other => panic!("{other:?}"),
        }
        // Created 0700, the file 0600; no temporary left.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.dir()), 0o700);
        assert_eq!(mode(&dir.path("x.json")), 0o600);
        let names: Vec<String> = std::fs::read_dir(dir.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["x.json".to_string()]);
        // A rewrite is a new file (new inode): watchers see it.
        let fp2 = dir
            .write_atomic("x.json", b"{\"v\":1,\"text\":\"b\"}")
            .unwrap();
        assert_ne!(fp.inode, fp2.inode);
    }

    #[test]
    fn missing_corrupt_and_foreign_schema() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        assert!(matches!(dir.load::<Doc>("x.json", v1), Loaded::Missing));
        std::fs::write(dir.path("x.json"), b"{\"v\":1,\"te").unwrap();
        assert!(matches!(dir.load::<Doc>("x.json", v1), Loaded::Corrupt(_)));
        std::fs::write(dir.path("x.json"), b"{\"v\":2,\"text\":\"\"}").unwrap();
        match dir.load::<Doc>("x.json", v1) {
            Loaded::Corrupt(why) => assert!(why.contains("schema version 2"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Quarantine keeps the bytes under a new name, twice in the same second too.
        let a = dir.quarantine("x.json", "corrupt", 1000.0).unwrap();
        assert!(a.ends_with("x.json.corrupt-1000"));
        assert_eq!(std::fs::read(&a).unwrap(), b"{\"v\":2,\"text\":\"\"}");
        std::fs::write(dir.path("x.json"), b"junk").unwrap();
        let b = dir.quarantine("x.json", "corrupt", 1000.0).unwrap();
        assert!(b.ends_with("x.json.corrupt-1000-1"));
        assert!(!dir.path("x.json").exists());
    }

    #[test]
    fn a_wide_open_dir_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("state");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = StateDir::new(&d);
        assert_eq!(dir.restrict_permissions().unwrap(), Some(0o755));
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777,
            0o700
        );
        assert_eq!(dir.restrict_permissions().unwrap(), None);
        assert_eq!(
            StateDir::new(tmp.path().join("absent"))
                .restrict_permissions()
                .unwrap(),
            None
        );
    }

    #[test]
    fn temporaries_are_ignored_then_cleaned() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        dir.write_atomic(BASELINE_FILE, b"{\"v\":1,\"text\":\"old\"}")
            .unwrap();
        // A crash between write and rename leaves this behind.
        let leftover = dir.path(&format!(".{BASELINE_FILE}{TMP_MARK}999-0"));
        std::fs::write(&leftover, b"{\"v\":1,\"text\":\"new\"}").unwrap();
        let other = dir.path("unrelated.tmp-1");
        std::fs::write(&other, b"keep me").unwrap();
        match dir.load::<Doc>(BASELINE_FILE, v1) {
            Loaded::Ok(d, _) => assert_eq!(d.text, "old"),
            other => panic!("{other:?}"),
        }
        assert_eq!(dir.clean_temporaries(), 1);
        assert!(!leftover.exists());
        assert!(other.exists(), "only our own temporaries are removed");
    }

    #[test]
    fn an_unwritable_dir_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        // A state dir below a regular file cannot be created by anyone, root included.
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let dir = StateDir::new(file.join("state"));
        assert!(dir.write_atomic("x.json", b"{}").is_err());
        assert!(matches!(
            dir.load::<Doc>("x.json", v1),
            Loaded::Unreadable(_)
        ));
    }
}
