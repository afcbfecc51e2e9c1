//! Issue 13, items 1 and 13: the kubelet is identified by evidence, never by its name or
//! the lowest pid; no host binary is executed by default; a huge command line and a
//! `--config` without a value are reported as what they are.
//!
//! Host trees are built on disk (`proc/<pid>/{cmdline,stat,exe,ns/mnt}` and the files
//! they name) and observed through the library and the real `check` binary.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::agent::{agent_command, run_report};
use common::running_as_root;
use kubelet_sentinel::io::host::HostRoot;
use kubelet_sentinel::model::snapshot::{Discovery, Snapshot};
use kubelet_sentinel::observe::{buildinfo, observe, ObserveOptions};
use serde_json::Value;

const HOST_NS: &str = "mnt:[4026531840]";
const CONTAINER_NS: &str = "mnt:[4026532777]";
const CHECK_WAIT: Duration = Duration::from_secs(60);

/// A host tree on disk.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    /// A host with its init (pid 1, in the host's mount namespace).
    fn new() -> Tree {
        let t = Tree {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        fs::set_permissions(t.root(), fs::Permissions::from_mode(0o755)).expect("chmod root");
        t.process(1, 0, &["/sbin/init"], HOST_NS);
        t
    }

    fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn path(&self, host_path: &str) -> PathBuf {
        self.root().join(host_path.trim_start_matches('/'))
    }

    /// A process: cmdline, stat (with its parent), ns/mnt, and `exe` → argv[0] when that
    /// is absolute.
    fn process(&self, pid: i32, ppid: i32, argv: &[&str], mnt: &str) {
        let d = self.path(&format!("/proc/{pid}"));
        fs::create_dir_all(d.join("ns")).expect("proc dir");
        let mut cmd = Vec::new();
        for a in argv {
            cmd.extend_from_slice(a.as_bytes());
            cmd.push(0);
        }
        fs::write(d.join("cmdline"), cmd).expect("cmdline");
        let comm = argv
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .unwrap_or("x");
        fs::write(
            d.join("stat"),
            format!("{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {} 0 0 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0", 100 + pid),
        )
        .expect("stat");
        fs::write(d.join("comm"), format!("{comm}\n")).expect("comm");
        symlink(mnt, d.join("ns/mnt")).expect("ns/mnt");
        if let Some(exe) = argv.first().filter(|a| a.starts_with('/')) {
            symlink(exe, d.join("exe")).expect("exe link");
        }
    }

    /// A file in the tree with a mode (directories created 0755).
    fn file(&self, host_path: &str, content: &[u8], mode: u32) {
        let p = self.path(host_path);
        let parent = p.parent().expect("parent");
        fs::create_dir_all(parent).expect("dirs");
        let mut d = parent.to_path_buf();
        while d.starts_with(self.root()) && d != self.root() {
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod dir");
            d.pop();
        }
        fs::write(&p, content).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// The host's kubelet: pid 900, child of init, host mount namespace, root-owned binary.
    fn real_kubelet(&self) {
        self.file("/usr/bin/kubelet", b"stand-in binary", 0o755);
        self.process(900, 1, &["/usr/bin/kubelet", "--read-only-port=0"], HOST_NS);
    }

    fn observe(&self, opts: ObserveOptions) -> Snapshot {
        observe(&HostRoot::new(self.root()).expect("host root"), &opts)
    }

    fn check(&self, extra: &[&str]) -> Value {
        run_report(
            agent_command()
                .arg("check")
                .arg("--host-root")
                .arg(self.root())
                .args([
                    "--format",
                    "json",
                    "--fail-on",
                    "never",
                    "--log-level",
                    "warn",
                ])
                .args(extra),
            CHECK_WAIT,
        )
        .0
    }
}

fn found(s: &Snapshot) -> (i32, String, Vec<String>) {
    match &s.discovery {
        Discovery::Found {
            pid,
            note,
            evidence,
        } => (*pid, note.clone().unwrap_or_default(), evidence.clone()),
        other => panic!("expected a kubelet, got {other:?}"),
    }
}

fn unknown(s: &Snapshot) -> String {
    match &s.discovery {
        Discovery::Unknown { reason } => reason.clone(),
        other => panic!("expected an unknown kubelet, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Item 1: identity
// ---------------------------------------------------------------------------------------

/// A container's process named `kubelet` (lower pid than the real one, same binary path
/// as the host's) is in another mount namespace: set aside, named; the host's kubelet is
/// chosen. Alone, it makes the kubelet unknown, never found.
#[test]
fn item_1_spoofed_kubelet_in_a_container_mount_namespace_is_not_chosen() {
    let t = Tree::new();
    t.real_kubelet();
    t.process(
        50,
        1,
        &["/usr/bin/kubelet", "--anonymous-auth=false"],
        CONTAINER_NS,
    );
    let s = t.observe(ObserveOptions::default());
    let (pid, note, evidence) = found(&s);
    assert_eq!(pid, 900, "{note}");
    assert!(
        note.contains("pid 50 (not in the host's mount namespace (mnt:[4026532777]"),
        "{note}"
    );
    assert!(
        evidence
            .iter()
            .any(|e| e.contains("host's mount namespace")),
        "{evidence:?}"
    );
    assert_eq!(s.kubelet.as_ref().map(|k| k.pid), Some(900));

    // Without the host's kubelet: unknown, naming the spoof.
    fs::remove_dir_all(t.path("/proc/900")).expect("rm");
    let s = t.observe(ObserveOptions::default());
    let reason = unknown(&s);
    assert!(
        reason.contains("pid 50 (not in the host's mount namespace"),
        "{reason}"
    );
    assert!(s.kubelet.is_none());
}

/// An executable another user owns, one that is group-writable, one in a group-writable
/// directory: none is the kubelet.
#[test]
fn item_1_kubelet_binary_not_owned_by_the_trusted_owner_or_writable_is_not_chosen() {
    let t = Tree::new();
    t.real_kubelet();
    t.file("/home/dev/bin/kubelet", b"spoof", 0o775);
    t.process(61, 1, &["/home/dev/bin/kubelet"], HOST_NS);
    t.file("/opt/shared/kubelet", b"spoof", 0o755);
    fs::set_permissions(t.path("/opt/shared"), fs::Permissions::from_mode(0o777)).expect("chmod");
    t.process(62, 1, &["/opt/shared/kubelet"], HOST_NS);
    let chowned = running_as_root();
    if chowned {
        t.file("/home/eve/kubelet", b"spoof", 0o755);
        std::os::unix::fs::lchown(t.path("/home/eve/kubelet"), Some(1000), Some(1000))
            .expect("chown");
        t.process(63, 1, &["/home/eve/kubelet"], HOST_NS);
    } else {
        eprintln!(
            "notice: not running as root: the case of an executable owned by another uid is skipped (chown needs root); the mode cases still run"
        );
    }
    let s = t.observe(ObserveOptions::default());
    let (pid, note, _) = found(&s);
    assert_eq!(pid, 900, "{note}");
    assert!(
        note.contains("pid 61 (its executable /home/dev/bin/kubelet is writable by group or others (mode 775)"),
        "{note}"
    );
    assert!(
        note.contains("pid 62 (directory /opt/shared of its executable is writable by group or others (mode 777)"),
        "{note}"
    );
    if chowned {
        assert!(
            note.contains("pid 63 (its executable /home/eve/kubelet is owned by uid 1000"),
            "{note}"
        );
    }
}

/// A process whose parent chain ends without init (parent 0), or loops, is not the
/// kubelet.
#[test]
fn item_1_parent_chain_that_does_not_reach_init_is_not_chosen() {
    let t = Tree::new();
    t.real_kubelet();
    t.process(70, 0, &["/usr/bin/kubelet"], HOST_NS);
    t.process(80, 81, &["/usr/bin/kubelet"], HOST_NS);
    t.process(81, 80, &["/bin/sh"], HOST_NS);
    t.process(90, 4242, &["/usr/bin/kubelet"], HOST_NS);
    let s = t.observe(ObserveOptions::default());
    let (pid, note, evidence) = found(&s);
    assert_eq!(pid, 900, "{note}");
    assert!(
        note.contains("pid 70 (its parent chain ends at pid 70 without reaching init)"),
        "{note}"
    );
    assert!(
        note.contains("pid 80 (its parent chain loops at pid 80)"),
        "{note}"
    );
    assert!(
        note.contains("pid 90 (its parent chain breaks at pid 4242"),
        "{note}"
    );
    assert!(
        evidence.iter().any(|e| e.contains("900 → 1 reaches init")),
        "{evidence:?}"
    );
}

/// Two processes that pass every check: the agent cannot tell, so the kubelet is unknown
/// and both are named; never the lowest pid.
#[test]
fn item_1_two_credible_kubelets_make_it_unknown_naming_both() {
    let t = Tree::new();
    t.real_kubelet();
    t.file("/usr/local/bin/kubelet", b"another", 0o755);
    t.process(
        1200,
        1,
        &["/usr/local/bin/kubelet", "--anonymous-auth=true"],
        HOST_NS,
    );
    let s = t.observe(ObserveOptions::default());
    let reason = unknown(&s);
    assert!(
        reason.contains("2 credible kubelet candidates (pids 900, 1200)"),
        "{reason}"
    );
    assert!(s.kubelet.is_none());
    // The report says `unknown`, with the reason.
    let r = t.check(&[]);
    assert_eq!(r["kubelet"]["discovery"], "unknown", "{:#}", r["kubelet"]);
    assert!(
        r["kubelet"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("pids 900, 1200"),
        "{:#}",
        r["kubelet"]
    );

    // The operator's explicit choice stands, with its evidence reported.
    let s = t.observe(ObserveOptions {
        kubelet_pid: Some(1200),
        ..ObserveOptions::default()
    });
    let (pid, note, evidence) = found(&s);
    assert_eq!(pid, 1200);
    assert_eq!(note, "pinned with --kubelet-pid 1200");
    assert!(
        evidence
            .iter()
            .any(|e| e.contains("/usr/local/bin/kubelet")),
        "{evidence:?}"
    );
    // Pinning a process that fails the checks is allowed, and says so.
    t.process(55, 1, &["/usr/bin/kubelet"], CONTAINER_NS);
    let s = t.observe(ObserveOptions {
        kubelet_pid: Some(55),
        ..ObserveOptions::default()
    });
    let (pid, note, _) = found(&s);
    assert_eq!(pid, 55);
    assert!(
        note.contains("although it fails identity checks: not in the host's mount namespace"),
        "{note}"
    );
}

/// Socket evidence: of two otherwise credible candidates, the one that owns the listening
/// sockets is the kubelet; the other, whose fd table holds none, is set aside.
#[test]
fn item_1_the_owner_of_the_listening_sockets_is_the_kubelet() {
    let t = Tree::new();
    t.real_kubelet();
    t.file("/usr/local/bin/kubelet", b"another", 0o755);
    t.process(1200, 1, &["/usr/local/bin/kubelet"], HOST_NS);
    let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:280A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 424242 1 0000000000000000 100 0 0 10 0\n";
    for pid in [900, 1200] {
        t.file(&format!("/proc/{pid}/net/tcp"), tcp.as_bytes(), 0o644);
        fs::create_dir_all(t.path(&format!("/proc/{pid}/fd"))).expect("fd dir");
    }
    symlink("socket:[424242]", t.path("/proc/900/fd/7")).expect("fd link");
    symlink("pipe:[77]", t.path("/proc/1200/fd/3")).expect("fd link");
    let s = t.observe(ObserveOptions::default());
    let (pid, note, evidence) = found(&s);
    assert_eq!(pid, 900);
    assert_eq!(
        note,
        "not the kubelet: pid 1200 (owns no listening TCP socket while another candidate does)"
    );
    assert!(
        evidence
            .iter()
            .any(|e| e == "owns 1 listening TCP socket(s)"),
        "{evidence:?}"
    );
}

/// A fake kubelet binary that would leave a marker if anything ran it. Through the real
/// `check`, with default options and live probes forced on (the path that ran the binary
/// before), nothing is executed; `--version-exec=true` on a host tree on disk does not run
/// it either (its `/proc` is not procfs).
#[test]
fn item_1_nothing_is_executed_by_default() {
    let t = Tree::new();
    let outside = tempfile::tempdir().expect("tempdir");
    let marker = outside.path().join("executed");
    t.file(
        "/usr/bin/kubelet",
        format!(
            "#!/bin/sh\ntouch '{}'\necho 'Kubernetes v1.33.4'\n",
            marker.display()
        )
        .as_bytes(),
        0o755,
    );
    t.process(900, 1, &["/usr/bin/kubelet", "--read-only-port=0"], HOST_NS);
    // The script really would leave the marker (so its absence below means something).
    assert!(std::process::Command::new(t.path("/usr/bin/kubelet"))
        .status()
        .expect("run the script")
        .success());
    assert!(marker.exists());
    fs::remove_file(&marker).expect("rm marker");

    let r = t.check(&["--live-probes", "on"]);
    assert!(!marker.exists(), "the kubelet's binary was executed");
    let k = &r["kubelet"];
    assert_eq!(k["discovery"], "found", "{k:#}");
    assert!(k["version"].is_null(), "{k:#}");
    let err = k["version_error"].as_str().unwrap_or_default();
    assert!(
        err.contains("/usr/bin/kubelet Go build information: not an ELF executable"),
        "{k:#}"
    );
    assert!(!err.contains("--version"), "{k:#}");

    let r = t.check(&["--live-probes", "on", "--version-exec=true"]);
    assert!(!marker.exists(), "the kubelet's binary was executed");
    let err = r["kubelet"]["version_error"].as_str().unwrap_or_default();
    assert!(err.contains("only run on a live host"), "{err}");
}

/// On the live host (this machine's /proc), with exec opted in: a "kubelet" whose binary
/// sits in a world-writable directory fails the identity checks and is not run.
#[test]
fn item_1_opt_in_exec_refuses_a_binary_failing_the_identity_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
    let bin = dir.path().join("kubelet");
    fs::copy("/bin/sleep", &bin).expect("copy /bin/sleep");
    // Another test's fork may briefly hold the copy's write descriptor (ETXTBSY).
    let child = common::standin::retry_busy(Duration::from_secs(5), || {
        std::process::Command::new(&bin).arg("30").spawn()
    });
    let mut guard = common::process::Guard(child);
    let pid = guard.0.id();
    let (r, _) = run_report(
        agent_command()
            .args([
                "check",
                "--host-root",
                "/",
                "--kubelet-pid",
                &pid.to_string(),
            ])
            .args([
                "--format",
                "json",
                "--fail-on",
                "never",
                "--log-level",
                "warn",
            ])
            .args(["--live-probes", "on", "--version-exec=true"])
            .args(["--probe-timeout", "200ms"]),
        CHECK_WAIT,
    );
    let _ = guard.0.kill();
    let _ = guard.wait_timeout(Duration::from_secs(5));
    let k = &r["kubelet"];
    let err = k["version_error"].as_str().unwrap_or_default();
    assert!(
        err.contains("not run: it fails the identity checks"),
        "{k:#}"
    );
    let reason = if running_as_root() {
        "writable by group or others (mode 777)"
    } else {
        "is owned by uid"
    };
    assert!(err.contains(reason), "{k:#}");
    assert!(k["version"].is_null(), "{k:#}");
}

// ---------------------------------------------------------------------------------------
// Item 1: the version from the Go build information
// ---------------------------------------------------------------------------------------

/// A minimal ELF64 executable holding one `.go.buildinfo` section (the layout of
/// debug/buildinfo: section data at a 16-byte aligned offset).
fn elf_with_buildinfo(section: &[u8]) -> Vec<u8> {
    let shstrtab = b"\0.go.buildinfo\0.shstrtab\0";
    let data_off = 64u64;
    let str_off = data_off + section.len() as u64;
    let sh_off = (str_off + shstrtab.len() as u64).div_ceil(8) * 8;
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&2u16.to_le_bytes()); // e_type: EXEC
    out.extend_from_slice(&62u16.to_le_bytes()); // e_machine: x86-64
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    out.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    out.extend_from_slice(&sh_off.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    out.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&3u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&2u16.to_le_bytes()); // e_shstrndx
    assert_eq!(out.len(), 64);
    out.extend_from_slice(section);
    out.extend_from_slice(shstrtab);
    out.resize(usize::try_from(sh_off).unwrap(), 0);
    let sh =
        |out: &mut Vec<u8>, name: u32, ty: u32, flags: u64, off: u64, size: u64, align: u64| {
            out.extend_from_slice(&name.to_le_bytes());
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes()); // sh_addr
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes()); // sh_link
            out.extend_from_slice(&0u32.to_le_bytes()); // sh_info
            out.extend_from_slice(&align.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes()); // sh_entsize
        };
    sh(&mut out, 0, 0, 0, 0, 0, 0);
    sh(&mut out, 1, 1, 3, data_off, section.len() as u64, 16); // PROGBITS, WA
    sh(&mut out, 15, 3, 0, str_off, shstrtab.len() as u64, 1); // STRTAB
    out
}

/// The committed test vector: the `.go.buildinfo` section of a small Go program built by
/// go1.26.8 with Kubernetes' `-ldflags` (`-X 'k8s.io/component-base/version.gitVersion=v1.37.2'`
/// and the client-go twin), without -trimpath (see tests/data/buildinfo/README.md).
fn test_vector() -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/buildinfo/ldflags-v1.37.2.go.buildinfo"),
    )
    .expect("test vector")
}

/// The version is read from the binary's build information, through `check`: source
/// `buildinfo`, nothing run.
#[test]
fn item_1_version_comes_from_the_go_build_information() {
    let section = test_vector();
    let bi = buildinfo::parse_section(&section).expect("parse the vector");
    assert_eq!(bi.go_version, "go1.26.8");
    assert_eq!(bi.path.as_deref(), Some("example.com/tiny"));
    assert_eq!(bi.kubernetes_version().as_deref(), Ok("v1.37.2"));

    let t = Tree::new();
    t.file("/usr/bin/kubelet", &elf_with_buildinfo(&section), 0o755);
    t.process(900, 1, &["/usr/bin/kubelet", "--read-only-port=0"], HOST_NS);
    let r = t.check(&[]);
    let k = &r["kubelet"];
    assert_eq!(
        (k["version"].as_str(), k["version_source"].as_str()),
        (Some("v1.37.2"), Some("buildinfo")),
        "{k:#}"
    );

    // Malformed build information is refused with a reason, never guessed.
    let mut broken = section.clone();
    broken.truncate(60);
    t.file("/usr/bin/kubelet", &elf_with_buildinfo(&broken), 0o755);
    let r = t.check(&[]);
    let k = &r["kubelet"];
    assert!(k["version"].is_null(), "{k:#}");
    assert!(
        k["version_error"]
            .as_str()
            .unwrap_or_default()
            .contains("malformed ELF: bad module information string"),
        "{k:#}"
    );
}

/// Real kubelets built from upstream (tests/kubelet-truth/build-kubelet.sh: -trimpath, so
/// no -ldflags recorded; built as a module dependency, so the main module has the release
/// version). Used when present; the suite does not need them.
#[test]
fn item_1_buildinfo_of_real_kubelets_when_present() {
    let cache = Path::new("/var/cache/kubelet-sentinel/kubelets");
    let mut seen = 0;
    for v in ["v1.30.14", "v1.35.4", "v1.36.3", "v1.37.2"] {
        let bin = cache.join(v).join("kubelet");
        let Ok(file) = fs::File::open(&bin) else {
            continue;
        };
        let start = Instant::now();
        let bi = buildinfo::read_file(file).expect("read build information");
        let took = start.elapsed();
        assert_eq!(bi.kubernetes_version().as_deref(), Ok(v), "{bi:?}");
        assert_eq!(bi.setting("-trimpath"), Some("true"));
        assert_eq!(bi.setting("-ldflags"), None);
        eprintln!(
            "timing: build information of {} read in {:.1} ms",
            bin.display(),
            took.as_secs_f64() * 1000.0
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
        seen += 1;
    }
    if seen == 0 {
        eprintln!(
            "notice: no kubelet under {} (build-kubelet.sh not run): skipped",
            cache.display()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Item 13: misleading reasons
// ---------------------------------------------------------------------------------------

/// A kubelet whose command line exceeds the 256 KiB cap is named with that reason, not
/// reported as "no kubelet".
#[test]
fn item_13_oversized_command_line_is_named_not_missing() {
    let t = Tree::new();
    t.file("/usr/bin/kubelet", b"stand-in binary", 0o755);
    t.process(900, 1, &["/usr/bin/kubelet"], HOST_NS);
    let mut cmd = b"/usr/bin/kubelet\0".to_vec();
    let filler = format!("--node-labels={}\0", "a=b,".repeat(1024));
    while cmd.len() <= 300 * 1024 {
        cmd.extend_from_slice(filler.as_bytes());
    }
    fs::write(t.path("/proc/900/cmdline"), &cmd).expect("huge cmdline");
    let s = t.observe(ObserveOptions::default());
    let reason = unknown(&s);
    assert!(
        reason.contains("kubelet pid 900: its command line is larger than 256 KiB"),
        "{reason}"
    );
    // Pinned: the same reason.
    let s = t.observe(ObserveOptions {
        kubelet_pid: Some(900),
        ..ObserveOptions::default()
    });
    match &s.discovery {
        Discovery::Failed { reason } => {
            assert!(reason.contains("larger than 256 KiB"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// `--config` last with no value: the kubelet refuses it ("flag needs an argument"), and
/// so does the agent: no file `/true` is looked for.
#[test]
fn item_13_config_flag_without_value_says_so() {
    let t = Tree::new();
    t.file("/usr/bin/kubelet", b"stand-in binary", 0o755);
    t.process(
        900,
        1,
        &["/usr/bin/kubelet", "--read-only-port=0", "--config"],
        HOST_NS,
    );
    let r = t.check(&[]);
    let text = r.to_string();
    assert!(!text.contains("/true"), "{text}");
    let c = common::agent::control(&r, "anonymous-auth-disabled");
    assert!(
        c["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("flag needs an argument: --config"),
        "{c:#}"
    );

    // `--config --v=2`: the kubelet's flag library takes `--v=2` as the path; the agent
    // says so instead of a bare "not found".
    t.process(901, 1, &["/usr/bin/kubelet", "--config", "--v=2"], HOST_NS);
    let s = t.observe(ObserveOptions {
        kubelet_pid: Some(901),
        ..ObserveOptions::default()
    });
    let k = s.kubelet.expect("kubelet");
    let errors = k.config.errors.join("; ");
    assert!(
        errors.contains("--config has no value of its own: the kubelet's flag parsing takes the next argument \"--v=2\" as its value"),
        "{errors}"
    );
}
