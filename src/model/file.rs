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
        #[allow(clippy::cast_possible_truncation)]
        Fingerprint {
            dev: self.dev,
            inode: self.inode,
            size: self.size,
            mtime_ns: self.mtime_ns as i64,
            ctime_ns: self.ctime_ns as i64,
        }
    }
}
