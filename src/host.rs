//! Host access: every path on the observed host goes through [`HostRoot`].
//!
//! The agent runs in a container with the host's filesystem mounted at `--host-root`
//! (the DaemonSet uses `/host`). A host path such as `/var/lib/kubelet/config.yaml` must
//! resolve to the file the *host* would open, which means symlinks are resolved by us,
//! inside the root: an absolute target is re-rooted, `..` never climbs above the root.
//! Nothing outside the root is ever opened, and every read is capped.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Default cap on a single read (1 MiB).
pub const DEFAULT_MAX_READ: u64 = 1024 * 1024;

/// Linux's own limit on symlinks followed during one resolution (`MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// Why a host path could not be read. Controls turn these into `unknown` with the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: permission denied")]
    PermissionDenied { path: String },
    #[error("{path}: larger than the {limit}-byte read limit")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: not valid UTF-8")]
    NotUtf8 { path: String },
    #[error("{path}: too many levels of symbolic links (loop)")]
    SymlinkLoop { path: String },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: not a regular file")]
    NotAFile { path: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

impl HostError {
    fn from_io(path: &str, e: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        let path = path.to_string();
        match e.kind() {
            ErrorKind::NotFound => HostError::NotFound { path },
            ErrorKind::PermissionDenied => HostError::PermissionDenied { path },
            _ => match e.raw_os_error() {
                Some(libc::ELOOP) => HostError::SymlinkLoop { path },
                Some(libc::ENOTDIR) => HostError::NotADirectory { path },
                _ => HostError::Io {
                    path,
                    message: e.to_string(),
                },
            },
        }
    }

    /// A short, stable word for the kind of failure (used in logs and reasons).
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::NotFound { .. } => "not_found",
            HostError::PermissionDenied { .. } => "permission_denied",
            HostError::TooLarge { .. } => "too_large",
            HostError::NotUtf8 { .. } => "not_utf8",
            HostError::SymlinkLoop { .. } => "symlink_loop",
            HostError::NotADirectory { .. } => "not_a_directory",
            HostError::NotAFile { .. } => "not_a_file",
            HostError::Io { .. } => "io",
        }
    }
}

/// What kind of filesystem object a path names (after resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// Metadata of a host file: what the 4.1 controls and the change detector need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileMeta {
    /// The host path asked for.
    pub path: String,
    /// The host path after symlink resolution (what the host really opens).
    pub resolved: String,
    pub kind: FileKind,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub inode: u64,
    pub dev: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

/// The observed host's filesystem, rooted at `--host-root`.
#[derive(Debug, Clone)]
pub struct HostRoot {
    root: PathBuf,
    max_read: u64,
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
        // following symlinks *to* it is fine; everything below it is resolved by us.
        let root = std::fs::canonicalize(&root).map_err(|e| HostError::from_io(&shown, &e))?;
        Ok(HostRoot {
            root,
            max_read: DEFAULT_MAX_READ,
        })
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
        // Components still to walk, in order (a stack, last element = next to walk).
        let mut pending: Vec<String> = Vec::new();
        push_components(&mut pending, host_path);
        let mut resolved: Vec<String> = Vec::new();
        let mut links = 0usize;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "." | "" => continue,
                ".." => {
                    // Never above the root: `/..` is `/` on the host too.
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            let is_last = pending.is_empty();
            let mut candidate = resolved.clone();
            candidate.push(comp.clone());
            let real = self.real_path_of(&candidate);
            let meta = match std::fs::symlink_metadata(&real) {
                Ok(m) => m,
                Err(e) => return Err(HostError::from_io(&join_host(&candidate), &e)),
            };
            if meta.file_type().is_symlink() && (follow_last || !is_last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(HostError::SymlinkLoop {
                        path: host_path.to_string(),
                    });
                }
                let target = std::fs::read_link(&real)
                    .map_err(|e| HostError::from_io(&join_host(&candidate), &e))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    // An absolute target is re-rooted at the host root.
                    resolved.clear();
                }
                push_components(&mut pending, &target);
                continue;
            }
            if !is_last && !meta.is_dir() {
                return Err(HostError::NotADirectory {
                    path: join_host(&candidate),
                });
            }
            resolved = candidate;
        }
        Ok(join_host(&resolved))
    }

    /// The path on the agent's own filesystem for an already-resolved host path.
    fn real_path_of(&self, comps: &[String]) -> PathBuf {
        let mut p = self.root.clone();
        for c in comps {
            p.push(c);
        }
        p
    }

    fn real_path(&self, resolved_host_path: &str) -> PathBuf {
        let mut p = self.root.clone();
        for c in resolved_host_path.split('/').filter(|c| !c.is_empty()) {
            p.push(c);
        }
        p
    }

    /// Open a resolved host path for reading, refusing a final symlink (the path was
    /// resolved by us; a symlink appearing now is a race and is not followed).
    fn open_resolved(&self, host_path: &str, resolved: &str) -> Result<File, HostError> {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(self.real_path(resolved))
            .map_err(|e| HostError::from_io(host_path, &e))
    }

    /// Read a host file, capped at the read limit.
    pub fn read(&self, host_path: &str) -> Result<Vec<u8>, HostError> {
        self.read_capped(host_path, self.max_read)
    }

    /// Read a host file, capped at `limit` bytes.
    pub fn read_capped(&self, host_path: &str, limit: u64) -> Result<Vec<u8>, HostError> {
        let resolved = self.resolve(host_path, true)?;
        let file = self.open_resolved(host_path, &resolved)?;
        let meta = file
            .metadata()
            .map_err(|e| HostError::from_io(host_path, &e))?;
        if meta.is_dir() {
            return Err(HostError::NotAFile {
                path: host_path.to_string(),
            });
        }
        if !meta.is_file() {
            // FIFOs, sockets and devices are never read: a FIFO would block forever.
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
        // /proc files report size 0, so the cap is enforced while reading too.
        let mut buf = Vec::with_capacity(meta.len().min(limit) as usize);
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

    /// Metadata of the file a host path names, symlinks followed inside the root.
    pub fn metadata(&self, host_path: &str) -> Result<FileMeta, HostError> {
        let resolved = self.resolve(host_path, true)?;
        self.meta_of(host_path, resolved)
    }

    /// Metadata of a host path without following a final symlink.
    pub fn symlink_metadata(&self, host_path: &str) -> Result<FileMeta, HostError> {
        let resolved = self.resolve(host_path, false)?;
        self.meta_of(host_path, resolved)
    }

    fn meta_of(&self, host_path: &str, resolved: String) -> Result<FileMeta, HostError> {
        let m = std::fs::symlink_metadata(self.real_path(&resolved))
            .map_err(|e| HostError::from_io(host_path, &e))?;
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
        Ok(FileMeta {
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
        })
    }

    /// The names in a host directory, sorted bytewise (Go's lexical order).
    pub fn read_dir(&self, host_path: &str) -> Result<Vec<String>, HostError> {
        let resolved = self.resolve(host_path, true)?;
        let rd = std::fs::read_dir(self.real_path(&resolved))
            .map_err(|e| HostError::from_io(host_path, &e))?;
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| HostError::from_io(host_path, &e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// The target of a symlink, as text, without following it (e.g. `/proc/<pid>/exe`).
    pub fn read_link(&self, host_path: &str) -> Result<String, HostError> {
        let resolved = self.resolve(host_path, false)?;
        let target = std::fs::read_link(self.real_path(&resolved))
            .map_err(|e| HostError::from_io(host_path, &e))?;
        Ok(target.to_string_lossy().into_owned())
    }
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

fn join_host(comps: &[String]) -> String {
    if comps.is_empty() {
        "/".to_string()
    } else {
        let mut s = String::new();
        for c in comps {
            s.push('/');
            s.push_str(c);
        }
        s
    }
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
        assert_eq!(host.read("/etc/kubernetes/cfg").unwrap(), b"inside");
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
    }

    #[test]
    fn loop_is_reported() {
        let (dir, host) = tree();
        symlink("/etc/b", dir.path().join("etc/a")).unwrap();
        symlink("/etc/a", dir.path().join("etc/b")).unwrap();
        assert!(matches!(
            host.read("/etc/a"),
            Err(HostError::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn cap_is_enforced() {
        let (dir, host) = tree();
        std::fs::write(dir.path().join("etc/big"), vec![b'a'; 2048]).unwrap();
        let host = host.with_max_read(1024);
        assert!(matches!(
            host.read("/etc/big"),
            Err(HostError::TooLarge { limit: 1024, .. })
        ));
    }

    #[test]
    fn missing_and_not_utf8() {
        let (dir, host) = tree();
        assert!(matches!(
            host.read("/nope"),
            Err(HostError::NotFound { .. })
        ));
        std::fs::write(dir.path().join("etc/bin"), [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            host.read_to_string("/etc/bin"),
            Err(HostError::NotUtf8 { .. })
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
