//! Host access: every path on the observed host goes through [`HostRoot`].
//!
//! The agent runs in a container with the host's filesystem mounted at `--host-root`
//! (the DaemonSet uses `/host`). A host path such as `/var/lib/kubelet/config.yaml` must
//! resolve to the file the *host* would open, which means symlinks are resolved beneath
//! the root's descriptor: an absolute target is re-rooted, `..` never climbs above the root.
//! Nothing outside the root is ever opened, and every read is capped.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::model::file::{FileKind, FileMeta, Fingerprint, HostError, Stamp};

/// Cap on each PEM file the operator gives (certificates, keys, CA bundles).
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// Default cap on a single read (1 MiB).
pub const DEFAULT_MAX_READ: u64 = 1024 * 1024;

/// Initial buffer for files whose size is unknown (procfs reports 0).
const PSEUDO_READ_HINT: usize = 4096;

/// Linux's own limit on symlinks followed during one resolution (`MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// A host path prepared once for repeated checks ([`HostRoot::stamp`],
/// [`HostRoot::read_into`]): the path relative to the root as a C string, made once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedPath {
    host: String,
    rel: CString,
}

impl PreparedPath {
    /// `None` for a path with a NUL byte (it names nothing on the host).
    pub fn new(host_path: &str) -> Option<PreparedPath> {
        let rel = host_path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        Some(PreparedPath {
            host: host_path.to_string(),
            rel: CString::new(rel.as_bytes()).ok()?,
        })
    }

    /// The host path.
    pub fn as_str(&self) -> &str {
        &self.host
    }
}

/// The fingerprint of an `fstat`/`statat` result.
pub fn fingerprint_of_stat(st: &rustix::fs::Stat) -> Fingerprint {
    #[allow(clippy::cast_sign_loss, clippy::unnecessary_cast)]
    Fingerprint {
        dev: st.st_dev as u64,
        inode: st.st_ino as u64,
        size: st.st_size as u64,
        mtime_ns: (st.st_mtime as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(st.st_mtime_nsec as i64),
        ctime_ns: (st.st_ctime as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(st.st_ctime_nsec as i64),
    }
}

fn stamp_of_error(e: &std::io::Error) -> Stamp {
    if e.kind() == std::io::ErrorKind::NotFound {
        Stamp::Missing
    } else {
        Stamp::Error(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

/// The observed host's filesystem, rooted at `--host-root`.
///
/// Every host path is resolved beneath the root's descriptor, never as a joined string
/// path. On Linux ≥ 5.6 each open is one `openat2(root, path, RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS)`: the kernel itself resolves symlinks inside the root (absolute
/// targets re-rooted, `..` clamped), atomically — the flags libpathrs's kernel resolver
/// uses (`src/resolvers/openat2.rs` in cyphar/libpathrs). Where `openat2` is unavailable
/// (old kernels, seccomp profiles that refuse it) the same rules are applied by a walk of
/// descriptors: each component is opened with `openat(dir, name, O_PATH | O_NOFOLLOW)`
/// relative to the descriptor of the directory before it, a symlink's target is read with
/// `readlinkat` on its own descriptor, and `..` returns to the descriptor already held for
/// the parent (it is never looked up), so a directory renamed or replaced by a symlink
/// during the walk can never lead outside the root. Directories are listed through the
/// descriptor so resolved (`getdents`), never by path.
#[derive(Debug, Clone)]
pub struct HostRoot {
    root: PathBuf,
    max_read: u64,
    /// `O_PATH` descriptor of the root: every resolution starts here.
    root_fd: Arc<OwnedFd>,
    /// The kernel resolves in-root paths for us (`openat2` works here).
    kernel: bool,
}

/// One component reached by the fallback walk: its `O_PATH` descriptor and its name.
struct Step {
    fd: OwnedFd,
    name: String,
}

impl HostRoot {
    /// A host rooted at `root` (must be an existing directory).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, HostError> {
        let root: PathBuf = root.into();
        let shown = root.display().to_string();
        let meta = std::fs::metadata(&root).map_err(|e| HostError::from_io(&shown, &e))?;
        if !meta.is_dir() {
            return Err(HostError::NotADirectory { path: shown });
        }
        // Canonicalise the root itself once: the root is the agent's own choice, so
        // following symlinks *to* it is fine; everything below it is resolved beneath it.
        let root = std::fs::canonicalize(&root).map_err(|e| HostError::from_io(&shown, &e))?;
        let root_fd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| HostError::from_io(&shown, &e.into()))?;
        // Does `openat2` work here (kernel ≥ 5.6, not refused by a seccomp profile)?
        let kernel = openat2(root_fd.as_fd(), c".", OFlags::PATH).is_ok();
        Ok(HostRoot {
            root,
            max_read: DEFAULT_MAX_READ,
            root_fd: Arc::new(root_fd),
            kernel,
        })
    }

    /// A host that never uses `openat2` (tests of the descriptor-walk fallback).
    pub fn without_kernel_resolution(mut self) -> Self {
        self.kernel = false;
        self
    }

    /// Whether the kernel resolves paths in the root (`openat2`).
    pub fn kernel_resolution(&self) -> bool {
        self.kernel
    }

    /// `openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`.
    /// `None` when the kernel path is not available.
    fn open_in_root(&self, host_path: &str, flags: OFlags) -> Option<Result<OwnedFd, HostError>> {
        if !self.kernel {
            return None;
        }
        let rel = host_path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        let Ok(c) = CString::new(rel.as_bytes()) else {
            return Some(Err(HostError::NotFound {
                path: host_path.to_string(),
            }));
        };
        Some(
            openat2(self.root_fd.as_fd(), &c, flags).map_err(|e| HostError::from_io(host_path, &e)),
        )
    }

    /// The host path an open descriptor names (from `/proc/self/fd`), relative to the root.
    fn host_path_of(&self, fd: &OwnedFd) -> Option<String> {
        let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        if self.root == Path::new("/") {
            return Some(target.to_string_lossy().into_owned());
        }
        let rel = target.strip_prefix(&self.root).ok()?;
        Some(format!("/{}", rel.to_string_lossy()))
    }

    /// Change the read cap (bytes).
    pub fn with_max_read(mut self, max_read: u64) -> Self {
        self.max_read = max_read;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn max_read(&self) -> u64 {
        self.max_read
    }

    /// Resolve a host path to the host path it really names, following every symlink
    /// inside the root. Returns the host-absolute path (always starting with `/`).
    ///
    /// `follow_last` = false resolves the parent directories but leaves a final symlink
    /// alone (like `lstat`).
    pub fn resolve(&self, host_path: &str, follow_last: bool) -> Result<String, HostError> {
        let steps = self.walk(host_path, follow_last)?;
        Ok(join_steps(&steps))
    }

    /// The descriptor walk (see the type's docs): the `O_PATH` descriptors of the
    /// directories leading to what `host_path` names, and of that object last (empty: the
    /// root itself).
    fn walk(&self, host_path: &str, follow_last: bool) -> Result<Vec<Step>, HostError> {
        // Components still to walk, in order (a stack, last element = next to walk).
        let mut pending: Vec<String> = Vec::new();
        push_components(&mut pending, host_path);
        let mut steps: Vec<Step> = Vec::new();
        let mut links = 0usize;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "." | "" => continue,
                ".." => {
                    // Never above the root: `/..` is `/` on the host too. The parent is the
                    // descriptor already held, never a lookup of `..`.
                    steps.pop();
                    continue;
                }
                _ => {}
            }
            let is_last = pending.is_empty();
            let dir = steps.last().map_or(self.root_fd.as_fd(), |s| s.fd.as_fd());
            let shown = || format!("{}/{comp}", join_steps(&steps).trim_end_matches('/'));
            let fd = rustix::fs::openat(
                dir,
                comp.as_str(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| HostError::from_io(&shown(), &e.into()))?;
            let st = rustix::fs::fstat(&fd).map_err(|e| HostError::from_io(&shown(), &e.into()))?;
            let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
            if kind == rustix::fs::FileType::Symlink && (follow_last || !is_last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(HostError::SymlinkLoop {
                        path: host_path.to_string(),
                    });
                }
                // The link's own descriptor: the target read is the one just examined.
                let target = rustix::fs::readlinkat(&fd, c"", Vec::new())
                    .map_err(|e| HostError::from_io(&shown(), &e.into()))?;
                let target = String::from_utf8_lossy(target.as_bytes()).into_owned();
                if target.starts_with('/') {
                    // An absolute target is re-rooted at the host root.
                    steps.clear();
                }
                push_components(&mut pending, &target);
                continue;
            }
            if !is_last && kind != rustix::fs::FileType::Directory {
                return Err(HostError::NotADirectory { path: shown() });
            }
            steps.push(Step { fd, name: comp });
        }
        Ok(steps)
    }

    /// Open what the walk reached for real access (`flags`): by its name in the directory
    /// descriptor before it, never following a symlink, and only when it is still the
    /// object the walk examined (same device and inode) — else it changed meanwhile and
    /// is refused. `regular_only` refuses anything but a regular file before opening it
    /// (a FIFO or device is never opened).
    fn reopen(
        &self,
        host_path: &str,
        steps: &[Step],
        flags: OFlags,
        regular_only: bool,
    ) -> Result<File, HostError> {
        let err = |e: rustix::io::Errno| HostError::from_io(host_path, &e.into());
        let (dir, name, walked) = match steps.split_last() {
            Some((last, rest)) => (
                rest.last().map_or(self.root_fd.as_fd(), |s| s.fd.as_fd()),
                last.name.as_str(),
                last.fd.as_fd(),
            ),
            None => (self.root_fd.as_fd(), ".", self.root_fd.as_fd()),
        };
        let want = rustix::fs::fstat(walked).map_err(err)?;
        if regular_only
            && rustix::fs::FileType::from_raw_mode(want.st_mode)
                != rustix::fs::FileType::RegularFile
        {
            return Err(HostError::NotAFile {
                path: host_path.to_string(),
            });
        }
        let fd = rustix::fs::openat(
            dir,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(err)?;
        let got = rustix::fs::fstat(&fd).map_err(err)?;
        if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino) {
            return Err(HostError::Io {
                path: host_path.to_string(),
                message: "replaced while being opened".to_string(),
            });
        }
        Ok(File::from(fd))
    }

    /// Open a host file for reading (non-blocking: a FIFO never blocks the open).
    fn open_for_read(&self, host_path: &str) -> Result<File, HostError> {
        match self.open_in_root(host_path, OFlags::PATH) {
            Some(fd) => reopen_regular(fd?).map_err(|e| match e {
                Reopen::NotAFile => HostError::NotAFile {
                    path: host_path.to_string(),
                },
                Reopen::Io(e) => HostError::from_io(host_path, &e),
            }),
            None => {
                let steps = self.walk(host_path, true)?;
                self.reopen(host_path, &steps, OFlags::RDONLY | OFlags::NONBLOCK, true)
            }
        }
    }

    /// Read a host file, capped at the read limit.
    pub fn read(&self, host_path: &str) -> Result<Vec<u8>, HostError> {
        self.read_capped(host_path, self.max_read)
    }

    /// Read a host file, capped at `limit` bytes.
    pub fn read_capped(&self, host_path: &str, limit: u64) -> Result<Vec<u8>, HostError> {
        let file = self.open_for_read(host_path)?;
        let meta = file
            .metadata()
            .map_err(|e| HostError::from_io(host_path, &e))?;
        if !meta.is_file() {
            // Directories, FIFOs, sockets and devices are never read: a FIFO would block
            // forever.
            return Err(HostError::NotAFile {
                path: host_path.to_string(),
            });
        }
        if meta.len() > limit {
            return Err(HostError::TooLarge {
                path: host_path.to_string(),
                limit,
            });
        }
        // /proc files report size 0, so the cap is enforced while reading too. Size the
        // buffer so that one read fills it and one more sees the end (procfs files: a
        // page); an empty Vec would make `read_to_end` start with small probing reads.
        let hint = if meta.len() == 0 {
            PSEUDO_READ_HINT as u64
        } else {
            meta.len() + 1
        };
        let mut buf = Vec::with_capacity(hint.min(limit + 1) as usize);
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| HostError::from_io(host_path, &e))?;
        if buf.len() as u64 > limit {
            return Err(HostError::TooLarge {
                path: host_path.to_string(),
                limit,
            });
        }
        Ok(buf)
    }

    /// Read a host file as UTF-8 text, capped at the read limit.
    pub fn read_to_string(&self, host_path: &str) -> Result<String, HostError> {
        let bytes = self.read(host_path)?;
        String::from_utf8(bytes).map_err(|_| HostError::NotUtf8 {
            path: host_path.to_string(),
        })
    }

    /// The identity stamp of the file a prepared host path names (symlinks followed inside
    /// the root): one `openat2(O_PATH)` and one `fstat`, no allocation on the kernel path.
    /// This is the per-second change check of the drift watch.
    pub fn stamp(&self, p: &PreparedPath) -> Stamp {
        if self.kernel {
            return match openat2(self.root_fd.as_fd(), &p.rel, OFlags::PATH) {
                Ok(fd) => match rustix::fs::fstat(&fd) {
                    Ok(st) => Stamp::File(fingerprint_of_stat(&st)),
                    Err(e) => stamp_of_error(&e.into()),
                },
                Err(e) => stamp_of_error(&e),
            };
        }
        match self.metadata(&p.host) {
            Ok(m) => Stamp::File(m.fingerprint()),
            Err(HostError::NotFound { .. }) => Stamp::Missing,
            Err(HostError::PermissionDenied { .. }) => Stamp::Error(libc::EACCES),
            Err(HostError::SymlinkLoop { .. }) => Stamp::Error(libc::ELOOP),
            Err(HostError::NotADirectory { .. }) => Stamp::Error(libc::ENOTDIR),
            Err(_) => Stamp::Error(libc::EIO),
        }
    }

    /// Read a small host file into `buf` (cleared first), at most `limit` bytes: the drift
    /// watch re-reads `/proc/<pid>/stat` and `cmdline` every second into one reused buffer.
    /// Only regular files are read (procfs files are). `false` when it cannot be read or
    /// is larger than `limit`.
    pub fn read_into(&self, p: &PreparedPath, buf: &mut Vec<u8>, limit: usize) -> bool {
        buf.clear();
        let file = if self.kernel {
            match openat2(self.root_fd.as_fd(), &p.rel, OFlags::PATH).map(reopen_regular) {
                Ok(Ok(f)) => f,
                _ => return false,
            }
        } else {
            match self.open_for_read(&p.host) {
                Ok(f) => f,
                Err(_) => return false,
            }
        };
        match file.metadata() {
            Ok(m) if m.is_file() => {}
            _ => return false,
        }
        if buf.capacity() < limit + 1 {
            buf.reserve(limit + 1);
        }
        matches!(file.take(limit as u64 + 1).read_to_end(buf), Ok(n) if n <= limit)
    }

    /// Metadata of the file a host path names, symlinks followed inside the root.
    pub fn metadata(&self, host_path: &str) -> Result<FileMeta, HostError> {
        self.meta(host_path, true)
    }

    /// Metadata of a host path without following a final symlink.
    pub fn symlink_metadata(&self, host_path: &str) -> Result<FileMeta, HostError> {
        self.meta(host_path, false)
    }

    fn meta(&self, host_path: &str, follow: bool) -> Result<FileMeta, HostError> {
        let flags = OFlags::PATH
            | if follow {
                OFlags::empty()
            } else {
                OFlags::NOFOLLOW
            };
        if let Some(fd) = self.open_in_root(host_path, flags) {
            let file = File::from(fd?);
            let m = file
                .metadata()
                .map_err(|e| HostError::from_io(host_path, &e))?;
            let fd: OwnedFd = file.into();
            if let Some(resolved) = self.host_path_of(&fd) {
                return Ok(Self::meta_from(host_path, resolved, &m));
            }
        }
        let mut steps = self.walk(host_path, follow)?;
        let resolved = join_steps(&steps);
        let fd = match steps.pop() {
            Some(s) => s.fd,
            None => self
                .root_fd
                .try_clone()
                .map_err(|e| HostError::from_io(host_path, &e))?,
        };
        let m = File::from(fd)
            .metadata()
            .map_err(|e| HostError::from_io(host_path, &e))?;
        Ok(Self::meta_from(host_path, resolved, &m))
    }

    fn meta_from(host_path: &str, resolved: String, m: &std::fs::Metadata) -> FileMeta {
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_dir() {
            FileKind::Directory
        } else if ft.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        FileMeta {
            path: host_path.to_string(),
            resolved,
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            inode: m.ino(),
            dev: m.dev(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }

    /// The names in a host directory, sorted bytewise (Go's lexical order). The directory
    /// is resolved beneath the root and listed through that descriptor: a directory
    /// renamed or swapped for a symlink meanwhile cannot make it list another one.
    pub fn read_dir(&self, host_path: &str) -> Result<Vec<String>, HostError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK;
        let fd: OwnedFd = match self.open_in_root(host_path, flags) {
            Some(fd) => fd?,
            None => {
                let steps = self.walk(host_path, true)?;
                self.reopen(host_path, &steps, flags, false)?.into()
            }
        };
        let err = |e: rustix::io::Errno| HostError::from_io(host_path, &e.into());
        let mut dir = rustix::fs::Dir::new(fd).map_err(err)?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(err)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            names.push(String::from_utf8_lossy(name).into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// The target of a symlink, as text, without following it (e.g. `/proc/<pid>/exe`).
    pub fn read_link(&self, host_path: &str) -> Result<String, HostError> {
        let link = match self.open_in_root(host_path, OFlags::PATH | OFlags::NOFOLLOW) {
            Some(fd) => fd?,
            None => match self.walk(host_path, false)?.pop() {
                Some(s) => s.fd,
                // The root itself is a directory, not a link.
                None => {
                    return Err(HostError::from_io(
                        host_path,
                        &std::io::Error::from_raw_os_error(libc::EINVAL),
                    ))
                }
            },
        };
        // An empty path reads the link the `O_PATH | O_NOFOLLOW` descriptor names (EINVAL
        // when it is not a symlink).
        let target = rustix::fs::readlinkat(&link, c"", Vec::with_capacity(256))
            .map_err(|e| HostError::from_io(host_path, &e.into()))?;
        Ok(String::from_utf8_lossy(target.as_bytes()).into_owned())
    }
}

/// Read a file the operator names on the command line (`--policy`, `--cve-feed`,
/// `--kubeconfig` and the files it names, `--metrics-tls-cert`/`--metrics-tls-key`, token
/// files), outside the host root: the one reader for all of them, each with its own cap: opened read-only and non-blocking (opening a FIFO returns at once instead of
/// waiting for a writer), then checked with `fstat` on the open descriptor to be a regular
/// file no larger than `limit` bytes, and read capped at `limit` (a file growing meanwhile
/// is refused, never truncated). Symlinks are followed: a ConfigMap mount is one.
pub fn read_operator_file(path: &Path, limit: u64) -> Result<Vec<u8>, HostError> {
    let shown = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| HostError::from_io(&shown, &e))?;
    let meta = file
        .metadata()
        .map_err(|e| HostError::from_io(&shown, &e))?;
    if !meta.is_file() {
        // Directories, FIFOs, sockets and devices are never read.
        return Err(HostError::NotAFile { path: shown });
    }
    if meta.len() > limit {
        return Err(HostError::TooLarge { path: shown, limit });
    }
    let mut buf = Vec::with_capacity(meta.len().min(limit).saturating_add(1) as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| HostError::from_io(&shown, &e))?;
    if buf.len() as u64 > limit {
        return Err(HostError::TooLarge { path: shown, limit });
    }
    Ok(buf)
}

/// `openat2(dirfd, path, flags | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`,
/// retried a few times on `EAGAIN` (the kernel's answer when a rename elsewhere raced a
/// `..` step; it never guesses).
fn openat2(dirfd: BorrowedFd<'_>, path: &CStr, flags: OFlags) -> std::io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            dirfd,
            path,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(rustix::io::Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r.map_err(std::io::Error::from),
        }
    }
}

/// Why an `O_PATH` descriptor was not reopened for reading.
enum Reopen {
    NotAFile,
    Io(std::io::Error),
}

/// Reopen an `O_PATH` descriptor for reading, only if it names a regular file: the type is
/// checked with `fstat` *before* anything is opened for reading, so a FIFO (opening it
/// would release a writer waiting for a reader) or a device with open-time side effects
/// (`/dev/watchdog` arms the watchdog on open) is never opened. The reopen goes through the
/// agent's own `/proc/self/fd/<n>`, which names the very object already resolved (no new
/// path resolution under the root); the file found must be the one checked (device and
/// inode). Without a procfs of its own (never in a container) every read fails with that
/// error: an honest `unknown`, never a read of an unchecked file.
fn reopen_regular(fd: OwnedFd) -> Result<File, Reopen> {
    let st = rustix::fs::fstat(&fd).map_err(|e| Reopen::Io(e.into()))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Reopen::NotAFile);
    }
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    // "/proc/self/fd/<n>\0" on the stack: the drift watch reads this way every second and
    // must not allocate.
    let mut magic = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    magic[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let mut n = u32::try_from(fd.as_raw_fd())
        .map_err(|_| Reopen::Io(std::io::Error::other("negative descriptor")))?;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..len].iter().rev().enumerate() {
        magic[prefix.len() + i] = *d;
    }
    let end = prefix.len() + len;
    let magic = CStr::from_bytes_with_nul(&magic[..=end])
        .map_err(|_| Reopen::Io(std::io::Error::other("descriptor path")))?;
    let file = rustix::fs::open(magic, flags, Mode::empty())
        .map(File::from)
        .map_err(|e| Reopen::Io(e.into()))?;
    let again = rustix::fs::fstat(&file).map_err(|e| Reopen::Io(e.into()))?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        return Err(Reopen::Io(std::io::Error::other(
            "replaced while it was being opened",
        )));
    }
    Ok(file)
}

/// Push the components of `path` onto the stack so that the first component is popped first.
fn push_components(stack: &mut Vec<String>, path: &str) {
    let comps: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    for c in comps.into_iter().rev() {
        stack.push(c);
    }
}

/// The host path the walk reached (`/` for the root itself).
fn join_steps(steps: &[Step]) -> String {
    if steps.is_empty() {
        return "/".to_string();
    }
    let mut s = String::new();
    for step in steps {
        s.push('/');
        s.push_str(&step.name);
    }
    s
}

/// Join a possibly relative host path onto a base directory (host paths, no I/O).
pub fn host_join(base_dir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else if base_dir.ends_with('/') {
        format!("{base_dir}{path}")
    } else {
        format!("{base_dir}/{path}")
    }
}

/// The directory part of a host path.
pub fn host_dirname(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => path[..i].to_string(),
        None => ".".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc/kubernetes")).unwrap();
        std::fs::create_dir_all(r.join("var/lib/kubelet")).unwrap();
        std::fs::write(r.join("var/lib/kubelet/config.yaml"), "inside").unwrap();
        let host = HostRoot::new(r).unwrap();
        (dir, host)
    }

    /// Both resolvers: the kernel's (openat2) and the userspace fallback.
    fn both(host: &HostRoot) -> [HostRoot; 2] {
        [host.clone(), host.clone().without_kernel_resolution()]
    }

    #[test]
    fn kernel_resolution_is_available_here() {
        let (_dir, host) = tree();
        assert!(
            host.kernel_resolution(),
            "openat2 should work on this kernel"
        );
    }

    #[test]
    fn absolute_symlink_is_rerooted() {
        let (dir, host) = tree();
        symlink(
            "/var/lib/kubelet/config.yaml",
            dir.path().join("etc/kubernetes/cfg"),
        )
        .unwrap();
        assert_eq!(
            host.resolve("/etc/kubernetes/cfg", true).unwrap(),
            "/var/lib/kubelet/config.yaml"
        );
        for h in both(&host) {
            assert_eq!(h.read("/etc/kubernetes/cfg").unwrap(), b"inside");
            let m = h.metadata("/etc/kubernetes/cfg").unwrap();
            assert_eq!(m.resolved, "/var/lib/kubelet/config.yaml");
            assert_eq!(m.kind, FileKind::File);
            let l = h.symlink_metadata("/etc/kubernetes/cfg").unwrap();
            assert_eq!(l.kind, FileKind::Symlink);
            assert_eq!(
                h.read_link("/etc/kubernetes/cfg").unwrap(),
                "/var/lib/kubelet/config.yaml"
            );
        }
    }

    #[test]
    fn dotdot_never_climbs_above_root() {
        let (dir, host) = tree();
        symlink(
            "../../../../../../var/lib/kubelet/config.yaml",
            dir.path().join("etc/kubernetes/up"),
        )
        .unwrap();
        assert_eq!(
            host.resolve("/etc/kubernetes/up", true).unwrap(),
            "/var/lib/kubelet/config.yaml"
        );
        assert_eq!(
            host.resolve("/../../var/lib/kubelet/config.yaml", true)
                .unwrap(),
            "/var/lib/kubelet/config.yaml"
        );
        // A file outside the root with the same path must never be read.
        for h in both(&host) {
            assert_eq!(h.read("/etc/kubernetes/up").unwrap(), b"inside");
            assert_eq!(
                h.metadata("/etc/kubernetes/up").unwrap().resolved,
                "/var/lib/kubelet/config.yaml"
            );
        }
    }

    #[test]
    fn loop_is_reported() {
        let (dir, host) = tree();
        symlink("/etc/b", dir.path().join("etc/a")).unwrap();
        symlink("/etc/a", dir.path().join("etc/b")).unwrap();
        for h in both(&host) {
            assert!(matches!(
                h.read("/etc/a"),
                Err(HostError::SymlinkLoop { .. })
            ));
            assert!(matches!(
                h.metadata("/etc/a"),
                Err(HostError::SymlinkLoop { .. })
            ));
        }
    }

    #[test]
    fn cap_is_enforced() {
        let (dir, host) = tree();
        std::fs::write(dir.path().join("etc/big"), vec![b'a'; 2048]).unwrap();
        for h in both(&host.with_max_read(1024)) {
            assert!(matches!(
                h.read("/etc/big"),
                Err(HostError::TooLarge { limit: 1024, .. })
            ));
        }
    }

    #[test]
    fn missing_and_not_utf8() {
        let (dir, host) = tree();
        std::fs::write(dir.path().join("etc/bin"), [0xff, 0xfe, 0x00]).unwrap();
        for h in both(&host) {
            assert!(matches!(h.read("/nope"), Err(HostError::NotFound { .. })));
            assert!(matches!(
                h.metadata("/nope/x"),
                Err(HostError::NotFound { .. })
            ));
            assert!(matches!(
                h.read_to_string("/etc/bin"),
                Err(HostError::NotUtf8 { .. })
            ));
            assert!(matches!(h.read("/etc"), Err(HostError::NotAFile { .. })));
        }
    }

    #[test]
    fn operator_files_are_regular_capped_and_never_block() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("feed.json");
        std::fs::write(&file, b"{}").unwrap();
        assert_eq!(read_operator_file(&file, 2).unwrap(), b"{}");
        // One byte over the cap, by its size or while reading.
        assert!(matches!(
            read_operator_file(&file, 1),
            Err(HostError::TooLarge { limit: 1, .. })
        ));
        // A symlink to it is followed (a ConfigMap mount is one).
        let link = dir.path().join("link.json");
        symlink(&file, &link).unwrap();
        assert_eq!(read_operator_file(&link, 10).unwrap(), b"{}");
        // A directory and a FIFO (no writer: a blocking open would hang) are refused.
        assert!(matches!(
            read_operator_file(dir.path(), 10),
            Err(HostError::NotAFile { .. })
        ));
        let fifo = dir.path().join("fifo");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_operator_file(&fifo, 10),
            Err(HostError::NotAFile { .. })
        ));
        assert!(matches!(
            read_operator_file(&dir.path().join("missing"), 10),
            Err(HostError::NotFound { .. })
        ));
    }

    #[test]
    fn host_join_and_dirname() {
        assert_eq!(
            host_join("/etc/kubernetes", "pki/ca.crt"),
            "/etc/kubernetes/pki/ca.crt"
        );
        assert_eq!(host_join("/etc", "/abs"), "/abs");
        assert_eq!(
            host_dirname("/etc/kubernetes/kubelet.conf"),
            "/etc/kubernetes"
        );
        assert_eq!(host_dirname("/kubelet.conf"), "/");
    }
}
