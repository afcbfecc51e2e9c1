//! Test harness for the fixture host trees under `tests/fixtures/<name>/`.
//!
//! A fixture is a directory laid out like a host's filesystem (`proc/<pid>/cmdline`,
//! `etc/...`, `var/lib/kubelet/...`). Git keeps neither file modes (other than +x) nor
//! ownership nor sparse files, so a fixture carries small manifests next to its tree:
//!
//! - `modes.txt`: `0600 var/lib/kubelet/config.yaml` lines, applied with chmod;
//! - `owners.txt`: `1000:1000 path` lines, applied with chown when the test runs as root
//!   (otherwise every file belongs to the test user anyway, see [`Fixture::owners_applied`]);
//! - `sparse.txt`: `52428800 path` lines, files extended with `set_len` (a sparse 50 MiB
//!   file costs nothing in git or on disk);
//! - `decoys.txt`: `/tmp/...abs-path _decoys/file` lines: files written at an absolute path
//!   of *this* machine, where a symlink of the fixture would land if it were followed on the
//!   agent's own filesystem instead of inside the host root;
//! - `links.txt`: `proc/2210/cwd /etc/kubernetes` lines: symlinks created in the copy. A
//!   committed symlink to a directory such as `/` would be followed by tools that walk the
//!   repository (cargo's package scan does), so those live here instead.
//!
//! These manifests (and `_decoys/`) are not copied into the host tree.
//!
//! [`Fixture::observe`] runs the observation in a dedicated thread that first drops
//! CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its own effective capability set, so that
//! a mode-000 file is really unreadable when the tests run as root (as CI does).

#![allow(dead_code)]

pub mod agent;
pub mod fake_api;
pub mod http;
pub mod metrics;
pub mod netns;
pub mod process;
pub mod promql;
pub mod rules;
#[cfg(feature = "standin")]
pub mod standin;
pub mod tls;
pub mod truth;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use kubelet_sentinel::evaluate::policy::Policy;
use kubelet_sentinel::evaluate::{self, ControlResult, Status};
use kubelet_sentinel::io::host::HostRoot;
use kubelet_sentinel::model::snapshot::Snapshot;
use kubelet_sentinel::observe::{observe, ObserveOptions};

/// Top-level names in a fixture directory that are harness metadata, not host files.
const METADATA: &[&str] = &[
    "modes.txt",
    "owners.txt",
    "sparse.txt",
    "decoys.txt",
    "_decoys",
    // Where a fixture comes from (versions, upstream files it mirrors).
    "ABOUT.md",
];

/// `tests/fixtures` of this crate.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// The names of the fixture host trees under tests/fixtures (every directory but the
/// shared `pki` and the `kube-bench` data), sorted.
#[allow(dead_code)] // not every test binary that includes `common` lists the fixtures
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "pki" && n != "kube-bench")
        .collect();
    names.sort();
    names
}

/// Whether the test process runs as root (effective uid 0).
#[allow(unsafe_code)] // geteuid(2) has no preconditions
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A fixture copied to a private temporary directory, manifests applied.
pub struct Fixture {
    pub name: String,
    dir: tempfile::TempDir,
    /// True when `owners.txt` was applied (root only).
    pub owners_applied: bool,
}

impl Fixture {
    /// Copy `tests/fixtures/<name>` (symlinks preserved) and apply its manifests.
    pub fn load(name: &str) -> Fixture {
        Self::load_from(&fixtures_dir().join(name), name)
    }

    /// Copy any fixture-shaped directory (e.g. `examples/node`).
    pub fn load_from(src: &Path, name: &str) -> Fixture {
        assert!(
            src.is_dir(),
            "fixture {name}: {} is not a directory",
            src.display()
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("fixture-{}-", name.replace('/', "-")))
            .tempdir()
            .expect("create tempdir");
        let root = dir.path().join("root");
        fs::create_dir(&root).expect("create root");
        copy_tree(src, &root, true);
        let mut fx = Fixture {
            name: name.to_string(),
            dir,
            owners_applied: false,
        };
        fx.apply_links(src);
        fx.apply_sparse(src);
        fx.apply_decoys(src);
        fx.apply_owners(src);
        // Modes last: a mode-000 file must still be copied/extended first.
        fx.apply_modes(src);
        fx
    }

    /// The host root (what `--host-root` would be).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A path inside the root.
    pub fn path(&self, host_path: &str) -> PathBuf {
        self.root().join(host_path.trim_start_matches('/'))
    }

    pub fn host(&self) -> HostRoot {
        HostRoot::new(self.root()).expect("host root")
    }

    /// Observe the fixture with default options, without DAC-bypassing capabilities.
    pub fn observe(&self) -> Snapshot {
        self.observe_with(ObserveOptions::default())
    }

    pub fn observe_with(&self, opts: ObserveOptions) -> Snapshot {
        let host = self.host();
        std::thread::scope(|s| {
            s.spawn(|| {
                drop_dac_capabilities();
                observe(&host, &opts)
            })
            .join()
            .expect("observation thread panicked")
        })
    }

    /// Observe and evaluate with the embedded default policy.
    pub fn evaluate(&self) -> Results {
        let snap = self.observe();
        let results = evaluate::evaluate(&snap, &Policy::embedded());
        Results {
            fixture: self.name.clone(),
            snapshot: snap,
            results,
        }
    }

    fn manifest(src: &Path, file: &str) -> Vec<(String, String)> {
        let p = src.join(file);
        let Ok(text) = fs::read_to_string(&p) else {
            return Vec::new();
        };
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (a, b) = l
                    .split_once(char::is_whitespace)
                    .unwrap_or_else(|| panic!("{}: malformed line {l:?}", p.display()));
                (a.to_string(), b.trim().to_string())
            })
            .collect()
    }

    fn apply_modes(&self, src: &Path) {
        for (mode, path) in Self::manifest(src, "modes.txt") {
            let bits = u32::from_str_radix(&mode, 8)
                .unwrap_or_else(|_| panic!("{}: bad mode {mode}", self.name));
            let target = self.root().join(&path);
            fs::set_permissions(&target, fs::Permissions::from_mode(bits))
                .unwrap_or_else(|e| panic!("{}: chmod {mode} {path}: {e}", self.name));
        }
    }

    fn apply_links(&self, src: &Path) {
        for (link, target) in Self::manifest(src, "links.txt") {
            let at = self.root().join(&link);
            fs::create_dir_all(at.parent().expect("parent")).expect("link dir");
            symlink(&target, &at)
                .unwrap_or_else(|e| panic!("{}: ln -s {target} {link}: {e}", self.name));
        }
    }

    fn apply_sparse(&self, src: &Path) {
        for (size, path) in Self::manifest(src, "sparse.txt") {
            let size: u64 = size.parse().expect("sparse size");
            let f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(self.root().join(&path))
                .unwrap_or_else(|e| panic!("{}: open {path}: {e}", self.name));
            f.set_len(size).expect("set_len");
        }
    }

    fn apply_owners(&mut self, src: &Path) {
        let owners = Self::manifest(src, "owners.txt");
        if owners.is_empty() {
            return;
        }
        if !running_as_root() {
            eprintln!(
                "notice: fixture {}: not running as root, owners.txt not applied (ownership assertions are skipped)",
                self.name
            );
            return;
        }
        for (ids, path) in owners {
            let (uid, gid) = ids.split_once(':').expect("uid:gid");
            let target = self.root().join(&path);
            std::os::unix::fs::lchown(
                &target,
                Some(uid.parse().expect("uid")),
                Some(gid.parse().expect("gid")),
            )
            .unwrap_or_else(|e| panic!("{}: chown {ids} {path}: {e}", self.name));
        }
        self.owners_applied = true;
    }

    fn apply_decoys(&self, src: &Path) {
        for (abs, rel) in Self::manifest(src, "decoys.txt") {
            assert!(abs.starts_with("/tmp/"), "decoys only under /tmp: {abs}");
            let content = fs::read(src.join(&rel)).expect("decoy source");
            let abs = PathBuf::from(abs);
            // Already there (another run, possibly as another user): nothing to do.
            if fs::read(&abs).is_ok_and(|existing| existing == content) {
                continue;
            }
            fs::create_dir_all(abs.parent().expect("parent")).expect("decoy dir");
            // Several test processes may write the same decoy: write-then-rename.
            let tmp = abs.with_extension(format!("tmp{}", std::process::id()));
            fs::write(&tmp, &content).expect("write decoy");
            fs::rename(&tmp, &abs).expect("rename decoy");
        }
    }
}

/// Copy a tree, preserving symlinks as symlinks; `top` skips the harness metadata.
fn copy_tree(src: &Path, dst: &Path, top: bool) {
    let mut entries: Vec<_> = fs::read_dir(src)
        .unwrap_or_else(|e| panic!("read {}: {e}", src.display()))
        .map(|e| e.expect("dir entry"))
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        if top && METADATA.iter().any(|m| name == *m) {
            continue;
        }
        let from = entry.path();
        let to = dst.join(&name);
        let meta = fs::symlink_metadata(&from).expect("lstat");
        if meta.file_type().is_symlink() {
            symlink(fs::read_link(&from).expect("readlink"), &to).expect("symlink");
        } else if meta.is_dir() {
            fs::create_dir(&to).expect("mkdir");
            copy_tree(&from, &to, false);
        } else {
            fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
    }
}

// ---------------------------------------------------------------------- capabilities

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Clear CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in the calling thread's capability sets
/// that `clear` picks (capget, mask, capset). No allocation, no lock, no panic: usable in
/// `pre_exec`.
#[allow(unsafe_code)] // capget(2)/capset(2) on this thread: no safe wrapper in the dependencies
fn clear_dac(clear: fn(&mut CapData, u32)) -> std::io::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid, correctly sized (version 3 uses two data
    // structs) and live for the duration of the calls.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    clear(
        &mut data[0],
        !((1u32 << CAP_DAC_OVERRIDE) | (1u32 << CAP_DAC_READ_SEARCH)),
    );
    header.pid = 0;
    // SAFETY: as above.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the calling thread's effective set.
/// Capabilities are per-thread on Linux and the raw syscall (unlike glibc's setuid family)
/// is not broadcast to other threads, so only this thread loses them.
pub fn drop_dac_capabilities() {
    if let Err(e) = clear_dac(|d, mask| d.effective &= mask) {
        panic!("capget/capset failed: {e}");
    }
}

/// For `pre_exec` (after fork, before exec: no allocation, no lock, no panic): take
/// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH away from the process *across exec*. Dropping
/// them from the effective set alone (like [`drop_dac_capabilities`]) is undone by
/// `execve` as root, which recomputes the sets from the bounding set: so they leave the
/// bounding set (needs CAP_SETPCAP) and the inheritable, permitted and effective sets.
#[allow(unsafe_code)] // prctl(2) on this process, before exec
pub fn drop_dac_across_exec() -> std::io::Result<()> {
    for cap in [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH] {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(cap),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    clear_dac(|d, mask| {
        d.effective &= mask;
        d.permitted &= mask;
        d.inheritable &= mask;
    })
}

// --------------------------------------------------------------------------- results

/// The evaluation of one fixture, with lookups by control id.
pub struct Results {
    pub fixture: String,
    pub snapshot: Snapshot,
    pub results: Vec<ControlResult>,
}

impl Results {
    pub fn get(&self, id: &str) -> &ControlResult {
        self.results
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{}: control {id} was not evaluated", self.fixture))
    }

    pub fn status(&self, id: &str) -> Status {
        self.get(id).status
    }

    /// Assert one control's status, printing the whole result on failure.
    pub fn expect(&self, id: &str, status: Status) -> &ControlResult {
        let r = self.get(id);
        assert_eq!(
            r.status, status,
            "{}: {id}: expected {status:?}, got {:?}\n  observed={:?} source={:?}\n  reason={:?}",
            self.fixture, r.status, r.observed, r.source, r.reason
        );
        r
    }

    /// Assert status, observed value and source.
    pub fn expect_full(
        &self,
        id: &str,
        status: Status,
        observed: &str,
        source: &str,
    ) -> &ControlResult {
        let r = self.expect(id, status);
        assert_eq!(
            as_if_root(&r.observed),
            observed,
            "{}: {id}: observed (reason: {})",
            self.fixture,
            r.reason
        );
        assert_eq!(
            r.source, source,
            "{}: {id}: source (reason: {})",
            self.fixture, r.reason
        );
        r
    }

    /// Assert that the reason mentions `needle` (case-insensitive).
    pub fn expect_reason(&self, id: &str, needle: &str) -> &ControlResult {
        let r = self.get(id);
        assert!(
            r.reason.to_lowercase().contains(&needle.to_lowercase()),
            "{}: {id}: reason {:?} does not mention {needle:?}",
            self.fixture,
            r.reason
        );
        r
    }

    /// Status of every control, by id.
    pub fn table(&self) -> BTreeMap<&'static str, Status> {
        self.results.iter().map(|r| (r.id, r.status)).collect()
    }
}

/// The ownership controls observe `0:0 /path` (items joined by `; `); when the tests do not
/// run as root the copied files belong to the test user, so `uid:gid` of this process is
/// shown as `0:0` (the ownership verdicts themselves are only asserted as root).
#[allow(unsafe_code)] // geteuid(2)/getegid(2) have no preconditions
pub fn as_if_root(observed: &str) -> String {
    if running_as_root() {
        return observed.to_string();
    }
    // SAFETY: getegid/geteuid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mine = format!("{uid}:{gid} ");
    observed
        .split("; ")
        .map(|item| match item.strip_prefix(&mine) {
            Some(rest) => format!("0:0 {rest}"),
            None => item.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Controls whose verdict is about file ownership: meaningful only when the tests run as
/// root (otherwise every copied file belongs to the test user).
pub const OWNERSHIP_CONTROLS: &[&str] = &[
    "config-file-ownership",
    "kubeconfig-ownership",
    "kube-proxy-kubeconfig-ownership",
    "client-ca-ownership",
    "service-file-ownership",
];

/// Compare a full expectation table with the results: every catalogue control must have an
/// expectation, and every expectation must match. Ownership controls are checked only as
/// root; otherwise a notice is printed. Reports all mismatches at once.
pub fn assert_table(res: &Results, expected: &[(&str, Status)]) {
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (id, _) in expected {
        assert!(seen.insert(*id), "{}: {id} listed twice", res.fixture);
    }
    for c in evaluate::catalogue() {
        if !seen.contains(c.id) {
            problems.push(format!(
                "{}: no expectation (got {:?})",
                c.id,
                res.status(c.id)
            ));
        }
    }
    let root = running_as_root();
    let mut skipped = Vec::new();
    for (id, want) in expected {
        if evaluate::control(id).is_none() {
            problems.push(format!("{id}: not in the catalogue"));
            continue;
        }
        if OWNERSHIP_CONTROLS.contains(id) && !root {
            skipped.push(*id);
            continue;
        }
        let r = res.get(id);
        if r.status != *want {
            problems.push(format!(
                "{id}: expected {want:?}, got {:?} (observed={:?}, source={:?}, reason={:?})",
                r.status, r.observed, r.source, r.reason
            ));
        }
    }
    if !skipped.is_empty() {
        eprintln!(
            "notice: {}: not running as root, ownership assertions skipped: {}",
            res.fixture,
            skipped.join(", ")
        );
    }
    assert!(
        problems.is_empty(),
        "fixture {}: {} mismatch(es):\n  {}",
        res.fixture,
        problems.len(),
        problems.join("\n  ")
    );
}
