//! Files as observed: their kind, ownership, mode and the fingerprint that tells one
//! version of a file from the next.

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

/// What identifies one version of a file: any edit (mtime, size, ctime), replacement by
/// rename or delete-and-recreate (inode), or re-pointed symlink (the target's inode)
/// changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    pub dev: u64,
    pub inode: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// The state of a watched path: a fingerprint, absent, or an error (errno).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stamp {
    File(Fingerprint),
    Missing,
    Error(i32),
}

impl FileMeta {
    /// The fingerprint of this metadata.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            dev: self.dev,
            inode: self.inode,
            size: self.size,
            mtime_ns: self.mtime_ns as i64,
            ctime_ns: self.ctime_ns as i64,
        }
    }
}

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
