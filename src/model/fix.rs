//! A proposed fix as plain data: the changes `kubelet-sentinel fix` would make to a node,
//! shared by the planner (`evaluate::fix`), the in-memory proof and the writer
//! (`publish::fix`). Nothing here touches the host.

/// One change to the kubelet's command line, as the planner decides it. Where on the node
/// the change is made (a unit file, an environment file, an args file, a k3s config
/// drop-in) is decided separately, from the flag's origin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FlagChange {
    /// Remove every occurrence of the flag (its value then comes from the files).
    Remove {
        /// Normalised flag name without dashes (`read-only-port`).
        flag: String,
    },
    /// Make the flag's effective value `value` (replace the occurrences, or add one).
    Set {
        /// Normalised flag name without dashes (`read-only-port`).
        flag: String,
        /// The value as written after `=` (`0`, `false`, `Webhook`).
        value: String,
    },
}

impl FlagChange {
    /// The flag the change is about.
    pub fn flag(&self) -> &str {
        match self {
            FlagChange::Remove { flag } | FlagChange::Set { flag, .. } => flag,
        }
    }
}

/// A file the fix creates or rewrites, as complete text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileEdit {
    /// The host path (absolute, as seen from the host: never under `--host-root`).
    pub path: String,
    /// The current text, `None` when the fix creates the file. Never serialised: a
    /// flag file may hold secrets next to the flags (e.g. a join token).
    #[serde(skip)]
    pub before: Option<String>,
    /// The new text.
    #[serde(skip)]
    pub after: String,
    /// The mode to create the file with (`0o600`).
    pub mode: u32,
    /// The controls this edit is for.
    pub controls: Vec<String>,
    /// What the edit does, in one line (`drop-in for --config-dir`, `remove --read-only-port
    /// from KUBELET_KUBEADM_ARGS`).
    pub what: String,
    /// What must happen for the kubelet to use it (`systemctl daemon-reload`, a restart).
    pub then: Vec<String>,
}

/// A change of a file's mode or owner (`chmod`/`chown`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModeChange {
    /// The host path.
    pub path: String,
    /// The new permission bits (`0o600`), when they change.
    pub mode: Option<u32>,
    /// The new owner `(uid, gid)`, when it changes.
    pub owner: Option<(u32, u32)>,
    /// The controls this change is for.
    pub controls: Vec<String>,
}

/// The kernel settings the kubelet checks with `protectKernelDefaults: true`, as paths
/// under `/proc/sys` and the values it requires (compared with `==`: a larger value fails
/// too). pkg/kubelet/cm/container_manager_linux.go `setupKernelTunables`, values from
/// k8s.io/component-helpers/node/util/sysctl (`VMOvercommitMemoryAlways`,
/// `VMPanicOnOOMInvokeOOMKiller`, `KernelPanicRebootTimeout`, `KernelPanicOnOopsAlways`,
/// `RootMaxKeysSetting`, `RootMaxBytesSetting` = 25 × root_maxkeys); the same six since
/// the keys were added (kubernetes#43005) in every version the project models.
pub const KERNEL_TUNABLES: &[(&str, i64)] = &[
    ("vm/overcommit_memory", 1),
    ("vm/panic_on_oom", 0),
    ("kernel/panic", 10),
    ("kernel/panic_on_oops", 1),
    ("kernel/keys/root_maxkeys", 1_000_000),
    ("kernel/keys/root_maxbytes", 25_000_000),
];

// Where flags are written and how k3s builds its kubelet's arguments: the fix's callers
// name them through `model::fix`.
pub use crate::model::flag_origin::{edit_flags, FlagSources};
pub use crate::model::k3s::args_with_dropin;
