//! The fallback descriptor walk, where the kernel cannot resolve beneath the root
//! (`openat2` with `RESOLVE_IN_ROOT` missing): one `O_PATH` descriptor per component,
//! symlinks read from their own descriptor and re-rooted, `..` never above the root.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags};

use super::HostRoot;
use crate::model::file::HostError;

/// Linux's own limit on symlinks followed during one resolution (`MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// One component reached by the fallback walk: its `O_PATH` descriptor and its name.
pub(super) struct Step {
    pub(super) fd: OwnedFd,
    pub(super) name: String,
}

impl HostRoot {
    /// The descriptor walk (see the type's docs): the `O_PATH` descriptors of the
    /// directories leading to what `host_path` names, and of that object last (empty: the
    /// root itself).
    pub(super) fn walk(&self, host_path: &str, follow_last: bool) -> Result<Vec<Step>, HostError> {
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
    pub(super) fn reopen(
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
pub(super) fn join_steps(steps: &[Step]) -> String {
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
