//! Directory walks as the kubelet and systemd do them: the `--config-dir` drop-ins
//! (Go's `filepath.WalkDir`) and the kubelet's systemd unit with its drop-ins.

use super::obs_err;
use crate::io::host::{host_join, HostRoot};
use crate::model::file::FileKind;
use crate::model::kubelet_config::loading;
use crate::model::snapshot::{FileObservation, FileRole};
use crate::model::systemd::UNIT_DIRS;
/// Limits on walking `--config-dir` (the kubelet has none; we must not hang on a
/// pathological tree).
const MAX_DROPIN_DEPTH: usize = 16;
const MAX_DROPIN_FILES: usize = 256;

/// The drop-ins found under `--config-dir`, in the order the kubelet applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropinWalk {
    /// Host paths of the drop-ins, in lexical walk order (the order they are merged);
    /// the `--config-dir` path itself when it is not a directory but is named `*.conf`.
    pub files: Vec<String>,
    /// Why the kubelet applies none of the directory's files, when that is not obvious.
    pub note: Option<String>,
}

/// Walk `--config-dir` like the kubelet's `mergeKubeletConfigurations` does with Go's
/// `filepath.WalkDir` (cmd/kubelet/app/server.go):
/// - the root is `lstat`ed: a symlink given *without* a trailing `/` is not followed, so
///   WalkDir visits only the link itself (applied only if its own name ends in `.conf`);
///   with a trailing `/` the link is resolved and walked;
/// - entries in lexical (byte) order, recursively; an entry that is a symlink to a
///   directory is not descended;
/// - a drop-in is every non-directory whose `filepath.Ext` is `.conf` (a file named
///   exactly `.conf` counts; `.CONF` and `.conf.bak` do not);
/// - past `MAX_DROPIN_FILES` files or `MAX_DROPIN_DEPTH` levels the agent stops and
///   says so: the merged configuration is then unknown, never judged from part of it.
pub fn walk_dropins(host: &HostRoot, dir: &str) -> Result<DropinWalk, String> {
    walk_dropins_recording(host, dir, &mut Vec::new())
}

/// [`walk_dropins`], also recording every directory walked (role `config_dir`) with its
/// metadata taken *before* its entries were listed, so that the drift watch sees a
/// drop-in added or removed after the listing.
pub fn walk_dropins_recording(
    host: &HostRoot,
    dir: &str,
    dirs: &mut Vec<FileObservation>,
) -> Result<DropinWalk, String> {
    let root = if dir.ends_with('/') {
        host.metadata(dir)
    } else {
        host.symlink_metadata(dir)
    }
    .map_err(|e| e.to_string())?;
    if root.kind != FileKind::Directory {
        dirs.push(FileObservation {
            role: FileRole::ConfigDir,
            path: dir.to_string(),
            meta: Ok(root.clone()),
        });
        let name = dir.rsplit('/').next().unwrap_or(dir);
        if loading::is_dropin_name(name) {
            return Ok(DropinWalk {
                files: vec![dir.to_string()],
                note: None,
            });
        }
        let what = if root.kind == FileKind::Symlink {
            "a symlink given without a trailing /, which the kubelet's filepath.WalkDir does not follow"
        } else {
            "not a directory"
        };
        return Ok(DropinWalk {
            files: Vec::new(),
            note: Some(format!(
                "--config-dir {dir} is {what}: the kubelet applies no drop-in from it"
            )),
        });
    }
    let mut out = Vec::new();
    walk(host, dir, 0, &mut out, dirs)?;
    Ok(DropinWalk {
        files: out,
        note: None,
    })
}

fn walk(
    host: &HostRoot,
    dir: &str,
    depth: usize,
    out: &mut Vec<String>,
    dirs: &mut Vec<FileObservation>,
) -> Result<(), String> {
    if depth > MAX_DROPIN_DEPTH {
        return Err(format!(
            "{dir} is more than {MAX_DROPIN_DEPTH} levels deep: the agent walks no deeper, so the merged configuration is not known"
        ));
    }
    dirs.push(FileObservation {
        role: FileRole::ConfigDir,
        path: dir.to_string(),
        meta: host.metadata(dir).map_err(obs_err),
    });
    for name in host.read_dir(dir).map_err(|e| e.to_string())? {
        let path = host_join(dir, &name);
        let meta = host.symlink_metadata(&path).map_err(|e| e.to_string())?;
        if meta.kind == FileKind::Directory {
            walk(host, &path, depth + 1, out, dirs)?;
        } else if loading::is_dropin_name(&name) {
            if out.len() >= MAX_DROPIN_FILES {
                return Err(format!(
                    "more than {MAX_DROPIN_FILES} drop-in files: the agent reads no more, so the merged configuration is not known"
                ));
            }
            out.push(path);
        }
    }
    Ok(())
}

/// The unit file and its drop-ins, as systemd would load them.
pub(super) fn unit_files(host: &HostRoot, unit: &str) -> Vec<FileObservation> {
    let mut out: Vec<FileObservation> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    // The unit file: the first directory in precedence order that has it.
    for dir in UNIT_DIRS {
        let p = host_join(dir, unit);
        if let Ok(meta) = host.metadata(&p) {
            if meta.kind == FileKind::File {
                seen.push(meta.resolved.clone());
                out.push(FileObservation {
                    role: FileRole::ServiceUnit,
                    path: p,
                    meta: Ok(meta),
                });
                break;
            }
        }
    }
    // Drop-ins from every directory (same resolved file counted once: /lib → /usr/lib).
    for dir in UNIT_DIRS {
        let d = host_join(dir, &format!("{unit}.d"));
        let Ok(dir_meta) = host.metadata(&d) else {
            continue;
        };
        let Ok(names) = host.read_dir(&d) else {
            continue;
        };
        out.push(FileObservation {
            role: FileRole::ServiceDropInDir,
            path: d.clone(),
            meta: Ok(dir_meta),
        });
        for name in names.into_iter().filter(|n| n.ends_with(".conf")) {
            let p = host_join(&d, &name);
            let meta = host.metadata(&p).map_err(obs_err);
            if let Ok(m) = &meta {
                if seen.contains(&m.resolved) {
                    continue;
                }
                seen.push(m.resolved.clone());
            }
            out.push(FileObservation {
                role: FileRole::ServiceDropIn,
                path: p,
                meta,
            });
        }
    }
    out
}
