//! The proof: the plan applied in memory to a copy of the snapshot (the drop-in merged
//! at its walk position, the command line changed, the modes and owners changed, the new
//! file recorded as `0600 root:root`), and every control evaluated again.

use super::{Built, FixOptions, Route, NEW_FILE_MODE};
use crate::evaluate::policy::Policy;
use crate::evaluate::{evaluate, ControlResult};
use crate::model::file::{FileKind, FileMeta};
use crate::model::fix::{args_with_dropin, FlagChange};
use crate::model::k3s::fix_config_dropin;
use crate::model::kubelet_config::flags::Flags;
use crate::model::kubelet_config::ConfigInput;
use crate::model::snapshot::{FileObservation, FileRole, Snapshot};

/// The snapshot without the live evidence and the running configuration, which describe
/// the kubelet as it runs now: after a restart they are gathered again.
pub(super) fn without_live(snapshot: &Snapshot) -> Snapshot {
    let mut s = snapshot.clone();
    s.live = None;
    s.running_config = None;
    s
}

/// Apply the built changes to a copy of the snapshot and evaluate every control.
pub(super) fn prove(
    snapshot: &Snapshot,
    b: &Built,
    route: &Route,
    opts: &FixOptions,
    policy: &Policy,
) -> Vec<ControlResult> {
    let mut s = without_live(snapshot);
    if let Some(k) = s.kubelet.as_mut() {
        let flags = match (route, &k.k3s) {
            (Route::K3s(_), Some(k3s)) if !b.k3s_args.is_empty() => {
                let text = fix_config_dropin(&b.k3s_args);
                let stem = opts
                    .dropin_name
                    .strip_suffix(".conf")
                    .unwrap_or(&opts.dropin_name);
                match args_with_dropin(k3s, &format!("{stem}.yaml"), &text) {
                    // The kubelet's arguments (anything before the first flag, such as a
                    // program name, is not one).
                    Ok(argv) => {
                        let start = argv
                            .iter()
                            .position(|a| a.starts_with('-'))
                            .unwrap_or(argv.len());
                        // k3s's own model still sees the unit's `--kubelet-arg`s the fix
                        // removes; without them, the config.yaml.d value is the last.
                        let removed: Vec<FlagChange> = b
                            .k3s_args
                            .iter()
                            .filter_map(|(a, _)| a.split_once('='))
                            .filter(|(f, _)| b.k3s_cli_removed.iter().any(|r| r == f))
                            .map(|(f, v)| FlagChange::Set {
                                flag: f.to_string(),
                                value: v.to_string(),
                            })
                            .collect();
                        Flags::parse(&argv[start..]).with_changes(&removed)
                    }
                    // Without k3s's merge rules: a kubelet-arg+ value is the last on the
                    // kubelet's command line, so it wins like a set flag.
                    Err(_) => {
                        let sets: Vec<FlagChange> = b
                            .k3s_args
                            .iter()
                            .filter_map(|(a, _)| {
                                a.split_once('=').map(|(f, v)| FlagChange::Set {
                                    flag: f.to_string(),
                                    value: v.to_string(),
                                })
                            })
                            .collect();
                        k.flags.with_changes(&sets)
                    }
                }
            }
            _ => {
                let changes: Vec<FlagChange> =
                    b.flag_changes.iter().map(|(c, _)| c.clone()).collect();
                k.flags.with_changes(&changes)
            }
        };
        let extra = b.dropin.as_ref().map(|d| ConfigInput {
            path: d.path.clone(),
            text: Ok(d.text.clone()),
        });
        k.config = k.config.rebuilt_with(flags.clone(), extra);
        k.flags = flags;
        if let Some(d) = &b.dropin {
            if !k.files.iter().any(|f| f.path == d.path) {
                k.files.push(new_file(FileRole::DropIn, &d.path));
            }
        }
    }
    for f in s.files_mut() {
        let path = f.path.clone();
        let Ok(meta) = f.meta.as_mut() else { continue };
        // By the file itself (symlinks resolved), or as the observation names it.
        if let Some(m) = b
            .modes
            .iter()
            .find(|m| m.path == meta.resolved || m.path == path)
        {
            if let Some(mode) = m.mode {
                meta.mode = mode;
            }
            if let Some((u, g)) = m.owner {
                meta.uid = u;
                meta.gid = g;
            }
        }
    }
    evaluate(&s, policy)
}

/// A file the fix creates, as `apply.sh` installs it (0600 root:root).
fn new_file(role: FileRole, path: &str) -> FileObservation {
    FileObservation {
        role,
        path: path.to_string(),
        meta: Ok(FileMeta {
            path: path.to_string(),
            resolved: path.to_string(),
            kind: FileKind::File,
            mode: NEW_FILE_MODE,
            uid: 0,
            gid: 0,
            size: 0,
            inode: 0,
            dev: 0,
            mtime_ns: 0,
            ctime_ns: 0,
        }),
    }
}
