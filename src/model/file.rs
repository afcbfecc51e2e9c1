//! Files as observed: their kind, ownership, mode and the fingerprint that tells one
//! version of a file from the next.

/// What kind of filesystem object a path names (after resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link: only seen when the final symlink is not followed
    /// ([`crate::io::host::HostRoot::symlink_metadata`]).
    Symlink,
    /// Anything else: a FIFO, socket, or character or block device.
    Other,
}

/// Metadata of a host file: what the 4.1 controls and the change detector need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileMeta {
    /// The host path asked for.
    pub path: String,
    /// The host path after symlink resolution (what the host really opens).
    pub resolved: String,
    /// What the path names (after resolution, unless the final symlink was not followed).
    pub kind: FileKind,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// Owning user id, numeric as the host's filesystem stores it (not mapped to a name).
    pub uid: u32,
    /// Owning group id, numeric as the host's filesystem stores it.
    pub gid: u32,
    /// Size in bytes (`st_size`).
    pub size: u64,
    /// Inode number (`st_ino`): a file replaced by rename or delete-and-recreate gets a
    /// new one.
    pub inode: u64,
    /// Id of the device holding the file (`st_dev`); with `inode` it names one file.
    pub dev: u64,
    /// Last modification of the content, in nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Last status change (content, mode, owner or link count), in nanoseconds since the
    /// Unix epoch; unlike `mtime` it cannot be set back by `touch`.
    pub ctime_ns: i128,
}

/// What identifies one version of a file: any edit (mtime, size, ctime), replacement by
/// rename or delete-and-recreate (inode), or re-pointed symlink (the target's inode)
/// changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// Device id (`st_dev`).
    pub dev: u64,
    /// Inode number (`st_ino`).
    pub inode: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status-change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i64,
}

/// The state of a watched path: a fingerprint, absent, or an error (errno).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stamp {
    /// The path names something (symlinks followed): its fingerprint.
    File(Fingerprint),
    /// Nothing at the path (`ENOENT`).
    Missing,
    /// The path could not be examined: the errno (e.g. `EACCES`, `ELOOP`, `ENOTDIR`;
    /// `EIO` when none is known; 0 in a drift baseline, which keeps no errno).
    Error(i32),
}

impl FileMeta {
    /// The fingerprint of this metadata.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            dev: self.dev,
            inode: self.inode,
            size: self.size,
            mtime_ns: i64::try_from(self.mtime_ns).unwrap_or(i64::MAX),
            ctime_ns: i64::try_from(self.ctime_ns).unwrap_or(i64::MAX),
        }
    }
}

/// Why a host path could not be read. Controls turn these into `unknown` with the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Nothing at the path, or at a directory on the way (`ENOENT`).
    #[error("{path}: not found")]
    NotFound {
        /// The path that failed: a host path (the one asked for, or the component the
        /// descriptor walk reached), or an operator's file outside the root.
        path: String,
    },
    /// The agent may not open or search it (`EACCES`/`EPERM`).
    #[error("{path}: permission denied")]
    PermissionDenied {
        /// The path that failed.
        path: String,
    },
    /// The file is larger than the read cap; it is refused, never truncated.
    #[error("{path}: larger than the {limit}-byte read limit")]
    TooLarge {
        /// The path that failed.
        path: String,
        /// The cap that was exceeded, in bytes.
        limit: u64,
    },
    /// The file was read but is not UTF-8 text.
    #[error("{path}: not valid UTF-8")]
    NotUtf8 {
        /// The path that failed.
        path: String,
    },
    /// Too many symbolic links while resolving (`ELOOP`, or more than 40 followed by the
    /// descriptor walk, the kernel's own limit).
    #[error("{path}: too many levels of symbolic links (loop)")]
    SymlinkLoop {
        /// The path that failed.
        path: String,
    },
    /// A component used as a directory is not one (`ENOTDIR`), or the host root itself
    /// is not a directory.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path that failed.
        path: String,
    },
    /// The path names a directory, FIFO, socket or device where a regular file is read.
    #[error("{path}: not a regular file")]
    NotAFile {
        /// The path that failed.
        path: String,
    },
    /// Any other I/O failure.
    #[error("{path}: {message}")]
    Io {
        /// The path that failed.
        path: String,
        /// The operating system's description of the failure.
        message: String,
    },
}

impl HostError {
    /// The failure an `io::Error` on `path` stands for.
    pub fn from_io(path: &str, e: &std::io::Error) -> Self {
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

    /// The same failure as an `std::io::Error` without the path (for error types that
    /// carry an `io::Error` next to the path already): the errno where there is one, else
    /// the reason in words.
    pub fn into_io_error(self) -> std::io::Error {
        use std::io::{Error, ErrorKind};
        match self {
            HostError::NotFound { .. } => Error::from_raw_os_error(libc::ENOENT),
            HostError::PermissionDenied { .. } => Error::from_raw_os_error(libc::EACCES),
            HostError::SymlinkLoop { .. } => Error::from_raw_os_error(libc::ELOOP),
            HostError::NotADirectory { .. } => Error::from_raw_os_error(libc::ENOTDIR),
            HostError::TooLarge { limit, .. } => Error::new(
                ErrorKind::FileTooLarge,
                format!("larger than the {limit}-byte read limit"),
            ),
            HostError::NotUtf8 { .. } => Error::new(ErrorKind::InvalidData, "not valid UTF-8"),
            HostError::NotAFile { .. } => Error::new(
                ErrorKind::InvalidInput,
                "not a regular file (a FIFO, device, socket or directory is never read)",
            ),
            HostError::Io { message, .. } => Error::other(message),
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
