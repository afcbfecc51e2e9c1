//! The agent's own state directory (`--state-dir`): the baseline and the last-seen state,
//! as JSON files written atomically.
//!
//! This is the only place the agent writes. The directory is opened once, by the path
//! the operator gave (symlinks in that path are the operator's choice and followed), the
//! first time it exists; from then on every state file is reached relative to that
//! descriptor, never by a path: opened with `O_NOFOLLOW | O_NONBLOCK` and checked with
//! `fstat` to be a regular file before it is read (capped), so a symlink planted in the
//! directory is never followed out of it and a FIFO or device never blocks the agent.
//! If the directory itself is later renamed or replaced (by a symlink or another
//! directory), the agent keeps using the directory it opened: nothing is ever written
//! through the replacement.
//!
//! A write goes to a new temporary file in the same directory (`O_EXCL | O_NOFOLLOW`, mode
//! 0600), is fsynced, renamed over the target within the directory (`renameat` on the
//! same descriptor), and the directory is fsynced: a crash at any moment leaves the old
//! file or the new one, never a torn one. A leftover temporary file (a crash between write
//! and rename) is ignored by readers and removed at the next start. A file that does not
//! parse — or is not a regular file (a symlink, a FIFO, a device) — is moved aside
//! (`<name>.corrupt-<unix time>`; the rename moves the entry itself, never what a symlink
//! points to), never deleted.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::model::file::Fingerprint;

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
    /// A state file (or the directory) could not be opened, read or written.
    #[error("{path}: {error}")]
    Io {
        /// The state file or directory.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A state file is larger than the 4 MiB cap; it is refused, not read.
    #[error("{path}: larger than {MAX_STATE_FILE} bytes")]
    TooLarge {
        /// The state file.
        path: String,
    },
}

fn io_err(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        error,
    }
}

fn errno(path: &Path, e: rustix::io::Errno) -> StoreError {
    io_err(path, e.into())
}

/// What reading a state file found.
#[derive(Debug)]
pub enum Loaded<T> {
    /// No such file (nothing stored yet).
    Missing,
    /// The parsed contents, and the fingerprint of the file they were read from (to tell
    /// later whether it changed).
    Ok(T, Fingerprint),
    /// It exists but does not parse (or has another schema version, or is not a regular
    /// file): the reason.
    Corrupt(String),
    /// It exists but could not be read (see [`StoreError`]).
    Unreadable(StoreError),
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
    /// The directory's descriptor, opened once (shared by clones: the drift watch).
    fd: Arc<OnceLock<OwnedFd>>,
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

/// What kind of non-regular file a state file name holds (for the refusal's reason).
fn kind_word(kind: FileType) -> &'static str {
    match kind {
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Directory => "a directory",
        _ => "not a regular file",
    }
}

impl StateDir {
    /// The state dir at `dir`; nothing is opened until it is used.
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir {
            dir: dir.into(),
            fd: Arc::new(OnceLock::new()),
        }
    }

    /// The directory's path.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the state file `name` in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory's descriptor: opened the first time it exists, then kept. `None`
    /// while it does not exist.
    fn dir_fd(&self) -> Result<Option<BorrowedFd<'_>>, StoreError> {
        if let Some(fd) = self.fd.get() {
            return Ok(Some(fd.as_fd()));
        }
        let fd = match rustix::fs::open(
            &self.dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(errno(&self.dir, e)),
        };
        // Another thread may have opened it first: theirs is kept, this one dropped.
        Ok(Some(self.fd.get_or_init(|| fd).as_fd()))
    }

    /// The fingerprint of a state file (`lstat`: a symlink is not followed). `None` when
    /// absent or the directory cannot be opened.
    pub fn fingerprint(&self, name: &str) -> Option<Fingerprint> {
        let dir = self.dir_fd().ok()??;
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        Some(crate::io::host::fingerprint_of_stat(&st))
    }

    /// Read and parse a JSON state file. `check_version` rejects a parsed value of
    /// another schema (it is then treated like a corrupt file). A name that is not a
    /// regular file (a symlink, a FIFO, a device, a directory) is refused unread, as
    /// corrupt.
    pub fn load<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        check_version: impl Fn(&T) -> Result<(), String>,
    ) -> Loaded<T> {
        let path = self.path(name);
        let dir = match self.dir_fd() {
            Ok(Some(dir)) => dir,
            Ok(None) => return Loaded::Missing,
            Err(e) => return Loaded::Unreadable(e),
        };
        // Non-blocking: opening a FIFO returns at once instead of waiting for a writer;
        // O_NOFOLLOW: a symlink fails with ELOOP and is never followed.
        let fd = match rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Loaded::Missing,
            Err(rustix::io::Errno::LOOP) => {
                return Loaded::Corrupt(format!(
                    "{}: refused, state files are never followed out of the state dir",
                    kind_word(FileType::Symlink)
                ))
            }
            Err(e) => return Loaded::Unreadable(errno(&path, e)),
        };
        let st = match rustix::fs::fstat(&fd) {
            Ok(st) => st,
            Err(e) => return Loaded::Unreadable(errno(&path, e)),
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Loaded::Corrupt(format!("{}: refused, not read", kind_word(kind)));
        }
        let fp = crate::io::host::fingerprint_of_stat(&st);
        if fp.size > MAX_STATE_FILE {
            return Loaded::Corrupt(format!("larger than {MAX_STATE_FILE} bytes"));
        }
        let mut buf = Vec::with_capacity(usize::try_from(fp.size.saturating_add(1)).unwrap_or(0));
        if let Err(e) = File::from(fd)
            .take(MAX_STATE_FILE + 1)
            .read_to_end(&mut buf)
        {
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
    /// keeping it: a rename within the directory, of the entry itself (a symlink is moved,
    /// never followed). Returns the new path.
    pub fn quarantine(&self, name: &str, label: &str, now: f64) -> Result<PathBuf, StoreError> {
        let from = self.path(name);
        let dir = self.existing_dir_fd()?;
        let stamp = crate::model::time::whole_seconds(now);
        for n in 0..100 {
            let to = if n == 0 {
                format!("{name}.{label}-{stamp}")
            } else {
                format!("{name}.{label}-{stamp}-{n}")
            };
            match rustix::fs::statat(dir, to.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(_) => continue,
                Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(errno(&self.path(&to), e)),
            }
            rustix::fs::renameat(dir, name, dir, to.as_str()).map_err(|e| errno(&from, e))?;
            self.fsync_dir(dir)?;
            return Ok(self.path(&to));
        }
        Err(io_err(
            &from,
            std::io::Error::other("too many quarantined copies with this timestamp"),
        ))
    }

    /// The directory's descriptor, an error when it does not exist.
    fn existing_dir_fd(&self) -> Result<BorrowedFd<'_>, StoreError> {
        self.dir_fd()?.ok_or_else(|| {
            io_err(
                &self.dir,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })
    }

    fn fsync_dir(&self, dir: BorrowedFd<'_>) -> Result<(), StoreError> {
        rustix::fs::fsync(dir).map_err(|e| errno(&self.dir, e))
    }

    /// Write `bytes` to `name` atomically (see the module docs). Creates the directory
    /// (mode 0700) if needed. Returns the new file's fingerprint.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<Fingerprint, StoreError> {
        let dir = match self.dir_fd()? {
            Some(dir) => dir,
            None => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .map_err(|e| io_err(&self.dir, e))?;
                self.existing_dir_fd()?
            }
        };
        let target = self.path(name);
        let (tmp_name, mut tmp) = self.create_temp(dir, name)?;
        let tmp_path = self.path(&tmp_name);
        let result = (|| {
            tmp.write_all(bytes).map_err(|e| io_err(&tmp_path, e))?;
            tmp.sync_all().map_err(|e| io_err(&tmp_path, e))?;
            drop(tmp);
            fault_pause_before_rename(&tmp_path);
            // Replaces whatever entry `name` is (a planted symlink included) without
            // following it.
            rustix::fs::renameat(dir, tmp_name.as_str(), dir, name)
                .map_err(|e| errno(&target, e))?;
            self.fsync_dir(dir)
        })();
        if let Err(e) = result {
            // Ours, in our own directory: never leave a partial temporary behind.
            let _ = rustix::fs::unlinkat(dir, tmp_name.as_str(), AtFlags::empty());
            return Err(e);
        }
        self.fingerprint(name).ok_or_else(|| {
            io_err(
                &target,
                std::io::Error::other("written but cannot be examined"),
            )
        })
    }

    fn create_temp(&self, dir: BorrowedFd<'_>, name: &str) -> Result<(String, File), StoreError> {
        let pid = std::process::id();
        let mut last = None;
        for n in 0..100u32 {
            let tmp = format!(".{name}{TMP_MARK}{pid}-{n}");
            match rustix::fs::openat(
                dir,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => return Ok((tmp, File::from(fd))),
                Err(rustix::io::Errno::EXIST) => last = Some(tmp),
                Err(e) => return Err(errno(&self.path(&tmp), e)),
            }
        }
        let p = self.path(last.as_deref().unwrap_or(name));
        Err(io_err(
            &p,
            std::io::Error::other("no free temporary file name"),
        ))
    }

    /// Make the directory private (0700) when it exists with wider permissions (a
    /// `hostPath` of type `DirectoryOrCreate` is made 0755): the baseline tells which
    /// controls fail on this node. Returns the old mode when it changed it.
    pub fn restrict_permissions(&self) -> Result<Option<u32>, StoreError> {
        let Some(dir) = self.dir_fd()? else {
            return Ok(None);
        };
        let st = rustix::fs::fstat(dir).map_err(|e| errno(&self.dir, e))?;
        let mode = st.st_mode & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(None);
        }
        rustix::fs::fchmod(dir, Mode::from_raw_mode(mode & 0o7700))
            .map_err(|e| errno(&self.dir, e))?;
        Ok(Some(mode))
    }

    /// Remove temporary files left by an interrupted write (ours only: `.<name>.tmp-*`,
    /// regular files, unlinked relative to the directory's descriptor). Returns how many
    /// were removed.
    pub fn clean_temporaries(&self) -> usize {
        let Ok(Some(dir)) = self.dir_fd() else {
            return 0;
        };
        let Ok(mut entries) = rustix::fs::Dir::read_from(dir) else {
            return 0;
        };
        let mut ours: Vec<std::ffi::CString> = Vec::new();
        while let Some(Ok(e)) = entries.read() {
            let name = e.file_name();
            let text = name.to_string_lossy();
            if [BASELINE_FILE, STATE_FILE]
                .iter()
                .any(|f| text.starts_with(&format!(".{f}{TMP_MARK}")))
            {
                ours.push(name.to_owned());
            }
        }
        let mut removed = 0;
        for name in &ours {
            let name: &CStr = name;
            let regular = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile);
            if regular && rustix::fs::unlinkat(dir, name, AtFlags::empty()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// The fingerprint of a file by path, not following a final symlink (tests, and files
/// outside a [`StateDir`]).
pub fn fingerprint_of(path: &Path) -> Option<Fingerprint> {
    let m = std::fs::symlink_metadata(path).ok()?;
    Some(Fingerprint {
        dev: m.dev(),
        inode: m.ino(),
        size: m.size(),
        mtime_ns: m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
        ctime_ns: m.ctime().saturating_mul(1_000_000_000) + m.ctime_nsec(),
    })
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
