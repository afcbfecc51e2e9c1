//! The real-kubelet recordings of `tests/kubelet-truth/` as the tests read them: the
//! scenarios, the recordings, and a scenario laid out as a host tree in which PID 4242 is the
//! recorded kubelet (shared by `tests/kubelet_truth.rs` and `tests/fix_truth.rs`).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use kubelet_sentinel::io::host::HostRoot;
use kubelet_sentinel::model::snapshot::Kubelet;
use kubelet_sentinel::observe::{observe, ObserveOptions};
use serde_json::Value;

/// The recorded kubelet's pid in a host tree.
pub const PID: i32 = 4242;
/// Where a scenario's files are laid out (`@ROOT@`).
pub const ROOT: &str = "/truth/root";
/// The harness dir (`@HARNESS@`).
pub const HARNESS: &str = "/truth/harness";

/// `tests/kubelet-truth` of this crate.
pub fn truth_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubelet-truth")
}

/// Every scenario's name, sorted.
pub fn scenario_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(truth_dir().join("scenarios"))
        .expect("scenarios dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every recording: (version, scenario, recording).
pub fn recordings() -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    let Ok(versions) = fs::read_dir(truth_dir().join("recorded")) else {
        return out;
    };
    let mut versions: Vec<PathBuf> = versions.map(|e| e.expect("entry").path()).collect();
    versions.sort();
    for vdir in versions {
        let version = vdir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = fs::read_dir(&vdir)
            .expect("version dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for f in files {
            let name = f.file_stem().unwrap().to_string_lossy().into_owned();
            let text = fs::read_to_string(&f).expect("read recording");
            let rec: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            out.push((version.clone(), name, rec));
        }
    }
    out
}

/// A JSON array's strings.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A recorded value with its placeholders replaced by this tree's paths.
pub fn placeholders(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(s)),
        Value::Array(a) => Value::Array(a.iter().map(placeholders).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), placeholders(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A text with its placeholders replaced by this tree's paths.
pub fn substitute(s: &str) -> String {
    s.replace("@ROOT@", ROOT).replace("@HARNESS@", HARNESS)
}

/// Copy a scenario's files (not its metadata) into `dst`, substituting the placeholders
/// in regular files as the recorder does, keeping symlinks as symlinks.
pub fn copy_scenario(src: &Path, dst: &Path, top: bool) {
    fs::create_dir_all(dst).expect("mkdir");
    let mut entries: Vec<_> = fs::read_dir(src)
        .expect("read scenario")
        .map(|e| e.expect("entry"))
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name();
        if top && ["args", "about", "env"].iter().any(|m| name == *m) {
            continue;
        }
        let from = e.path();
        let to = dst.join(&name);
        let meta = fs::symlink_metadata(&from).expect("lstat");
        if meta.file_type().is_symlink() {
            symlink(fs::read_link(&from).expect("readlink"), &to).expect("symlink");
        } else if meta.is_dir() {
            copy_scenario(&from, &to, false);
        } else {
            let bytes = fs::read(&from).expect("read");
            let bytes = match String::from_utf8(bytes) {
                Ok(text) => substitute(&text).into_bytes(),
                Err(e) => e.into_bytes(),
            };
            fs::write(&to, bytes).expect("write");
        }
    }
}

/// A host tree in which PID 4242 is the recorded kubelet: its command line (the harness's
/// arguments, then the scenario's), its working directory (the scenario root, as the
/// recorder ran it) and the scenario's files.
pub fn host_tree(scenario: &str, rec: &Value) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("truth-{scenario}-"))
        .tempdir()
        .expect("tempdir");
    let root = dir.path();
    copy_scenario(
        &truth_dir().join("scenarios").join(scenario),
        &root.join(ROOT.trim_start_matches('/')),
        true,
    );
    let harness = root.join(HARNESS.trim_start_matches('/'));
    fs::create_dir_all(&harness).expect("harness dir");
    let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pki");
    for (from, to) in [
        ("ca.crt", "ca.crt"),
        ("serving.crt", "serving.crt"),
        ("serving.key", "serving.key"),
    ] {
        fs::copy(pki.join(from), harness.join(to)).expect("copy pki");
    }
    let mut argv = vec!["/usr/bin/kubelet".to_string()];
    argv.extend(strings(&rec["harness_args"]).iter().map(|a| substitute(a)));
    argv.extend(strings(&rec["args"]).iter().map(|a| substitute(a)));
    let proc1 = root.join("proc/1");
    fs::create_dir_all(&proc1).expect("proc/1");
    fs::write(proc1.join("cmdline"), "/sbin/init\0").expect("cmdline");
    fs::write(
        proc1.join("stat"),
        "1 (systemd) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0\n",
    )
    .expect("stat");
    let proc = root.join(format!("proc/{PID}"));
    fs::create_dir_all(&proc).expect("proc dir");
    let mut cmdline = argv.join("\0");
    cmdline.push('\0');
    fs::write(proc.join("cmdline"), cmdline).expect("cmdline");
    fs::write(
        proc.join("stat"),
        format!(
            "{PID} (kubelet) S 1 {PID} {PID} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 19 0 1461 0 0\n"
        ),
    )
    .expect("stat");
    fs::write(proc.join("cgroup"), "0::/system.slice/kubelet.service\n").expect("cgroup");
    symlink("/usr/bin/kubelet", proc.join("exe")).expect("exe");
    symlink(ROOT, proc.join("cwd")).expect("cwd");
    fs::create_dir_all(root.join("usr/bin")).expect("usr/bin");
    fs::write(root.join("usr/bin/kubelet"), "").expect("kubelet binary");
    dir
}

/// The kubelet the agent observes in the scenario's host tree (kept alive by the dir).
pub fn observe_kubelet(scenario: &str, rec: &Value) -> (Kubelet, tempfile::TempDir) {
    let dir = host_tree(scenario, rec);
    let host = HostRoot::new(dir.path()).expect("host root");
    let snap = observe(
        &host,
        &ObserveOptions {
            kubelet_pid: Some(PID),
            ..ObserveOptions::default()
        },
    );
    let k = snap
        .kubelet
        .unwrap_or_else(|| panic!("{scenario}: no kubelet observed: {:?}", snap.discovery));
    (k, dir)
}

/// The harness's kubeconfig in a host tree (`@HARNESS@/kubeconfig`, as `record.sh` writes it:
/// the fake API server and a client certificate), so that what depends on the kubelet's API
/// credentials (`fix`'s precondition for webhook authentication and authorization) sees
/// what the recorded kubelet had. The certificate is a fixture's node certificate (the
/// recording's own is made fresh each run).
pub fn add_harness_kubeconfig(root: &Path) {
    let harness = root.join(HARNESS.trim_start_matches('/'));
    fs::create_dir_all(&harness).expect("harness dir");
    let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pki");
    for (from, to) in [
        ("node-demo-worker-1.crt", "kubelet-client.crt"),
        ("node-demo-worker-1.key", "kubelet-client.key"),
    ] {
        fs::copy(pki.join(from), harness.join(to)).expect("copy pki");
    }
    fs::write(
        harness.join("kubeconfig"),
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: truth
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: {HARNESS}/ca.crt
users:
- name: kubelet
  user:
    client-certificate: {HARNESS}/kubelet-client.crt
    client-key: {HARNESS}/kubelet-client.key
contexts:
- name: truth
  context: {{cluster: truth, user: kubelet}}
current-context: truth
"
        ),
    )
    .expect("kubeconfig");
}

/// The kernel settings `record.sh` gives the host before recording (the kubelet's own
/// values, pkg/kubelet/cm/container_manager_linux.go `setupKernelTunables`), under the host
/// tree's `/proc/sys`: what `fix` checks before it writes `protectKernelDefaults: true`.
pub fn add_kernel_tunables(root: &Path) {
    for (path, value) in [
        ("vm/overcommit_memory", "1"),
        ("vm/panic_on_oom", "0"),
        ("kernel/panic", "10"),
        ("kernel/panic_on_oops", "1"),
        ("kernel/keys/root_maxkeys", "1000000"),
        ("kernel/keys/root_maxbytes", "25000000"),
    ] {
        let at = root.join("proc/sys").join(path);
        fs::create_dir_all(at.parent().expect("parent")).expect("proc/sys dir");
        fs::write(at, format!("{value}\n")).expect("sysctl");
    }
}
