//! Host access: every path on the observed host goes through [`HostRoot`].
//!
//! The agent runs in a container with the host's filesystem mounted at `--host-root`
//! (the DaemonSet uses `/host`). A host path such as `/var/lib/kubelet/config.yaml` must
//! resolve to the file the *host* would open, which means symlinks are resolved beneath
//! the root's descriptor: an absolute target is re-rooted, `..` never climbs above the root.
//! Nothing outside the root is ever opened, and every read is capped.

mod walk;

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use self::walk::join_steps;
use crate::model::file::{FileKind, FileMeta, Fingerprint, HostError, Stamp};

/// Cap on each PEM file the operator gives (certificates, keys, CA bundles).
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// Default cap on a single read (1 MiB).
pub const DEFAULT_MAX_READ: u64 = 1024 * 1024;

/// Initial buffer for files whose size is unknown (procfs reports 0).
const PSEUDO_READ_HINT: usize = 4096;

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
    // The stat fields' integer types differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    Fingerprint {
        dev: st.st_dev as u64,
        inode: st.st_ino as u64,
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime_ns: (st.st_mtime as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::try_from(st.st_mtime_nsec).unwrap_or(0)),
        ctime_ns: (st.st_ctime as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::try_from(st.st_ctime_nsec).unwrap_or(0)),
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

    /// The root directory in the agent's own filesystem (`--host-root`, canonicalised once
    /// by [`HostRoot::new`]). Joining a host path onto it skips the in-root symlink
    /// resolution: do so only with a path [`HostRoot::resolve`] returned, or for `/proc`
    /// entries (`observe` reads `/proc/<pid>/exe` and `/proc/<pid>/root` this way).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cap on a single read, in bytes ([`DEFAULT_MAX_READ`] unless
    /// [`HostRoot::with_max_read`] changed it).
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
        let mut buf = Vec::with_capacity(usize::try_from(hint.min(limit + 1)).unwrap_or(0));
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
        // No reservation up to `limit`: the buffer grows to what the file holds (a
        // cmdline is a few hundred bytes; reserving its 128 KiB cap kept that much
        // allocated between evaluations).
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
    let mut buf =
        Vec::with_capacity(usize::try_from(meta.len().min(limit).saturating_add(1)).unwrap_or(0));
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

/// Test support: a FIFO at `path` (mode 0600), the file type every reader must refuse.
#[cfg(test)]
pub fn make_fifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

#[cfg(test)]
mod tests;
