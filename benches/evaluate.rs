//! Performance of one evaluation cycle: observe + evaluate, the `/proc` scan, evaluate()
//! alone and the metrics rendering alone.
//!
//! Run with `cargo bench --bench evaluate` (see docs/performance.md for the figures).
//! Every host tree is built once in a tempdir, outside the timed loops:
//!
//! - `fixture`: a copy of `tests/fixtures/kubeadm-hardened` (symlinks preserved, the test
//!   harness's `links.txt` and `modes.txt` applied); an equivalent tree is synthesised
//!   when the fixture is absent;
//! - `procs1000`: the same host with 1,000 extra processes in `/proc` (containerd shims,
//!   pause containers, nginx workers, kernel threads, ...), each with a `cmdline`, an
//!   `exe` symlink (none for kernel threads) and a `stat`.
//!
//! Benchmarks (criterion ids):
//! - `full_evaluation/<tree>/discover`: `observe()` + `evaluate()`, no `--kubelet-pid`;
//! - `full_evaluation/<tree>/pinned`: the same with `ObserveOptions.kubelet_pid` set;
//! - `full_evaluation/<tree>/observer_{discover,pinned}`: the agent's steady state, a
//!   long-lived `Observer` whose discovery cache is warm;
//! - `process_scan/<tree>`: `process::scan` alone (what discovery costs), also on this
//!   machine's own `/proc` (`real_proc_<n>`), and `read_proc` of the kubelet;
//! - `parts/*`: the config and kubeconfig parsers, the PEM summary and `HostRoot` reads;
//! - `evaluate_only` and `render_only` on a prepared snapshot;
//! - `watch_check/{fixture,real_proc}`: the drift watch's per-second change check (with
//!   the allocation count of 10,000 checks printed before).
//!
//! Before the criterion runs, the bench prints the trees, a per-probe breakdown of the
//! steady state and quick medians; `BENCH_DESCRIBE=0` skips them (for `--profile-time`).
#![allow(unsafe_code)] // a counting global allocator measures allocations per evaluation

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::hint::black_box;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use kubelet_sentinel::evaluate::policy::Policy;
use kubelet_sentinel::evaluate::{self, summarize};
use kubelet_sentinel::io::host::HostRoot;
use kubelet_sentinel::model::cert as certs;
use kubelet_sentinel::model::kubelet_config::flags::Flags;
use kubelet_sentinel::model::kubelet_config::{effective, ConfigInput, EffectiveConfig};
use kubelet_sentinel::model::snapshot::Discovery;
use kubelet_sentinel::observe::watch::Watch;
use kubelet_sentinel::observe::{self, kubeconfig, process, ObserveOptions, Observer};
use kubelet_sentinel::publish::metrics::{render, MetricsInput};

/// Counts heap allocations while `COUNTING` is on (the watch check must not allocate in
/// its steady state). Off, it costs one relaxed load per allocation.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations (count, bytes) made by `f`.
fn allocations(f: impl FnOnce()) -> (u64, u64) {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    ALLOCATED_BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    (
        ALLOCATIONS.load(Ordering::SeqCst),
        ALLOCATED_BYTES.load(Ordering::SeqCst),
    )
}

/// The drift watch's per-second check (`observe::watch::Watch::check`): on the fixture tree,
/// and on this machine's real procfs with this bench process standing in for the kubelet
/// (the fixture's files, reached through `/`). Prints the allocations of 10,000 checks
/// after the first (the target is none: no allocation growth).
fn watch_benches(c: &mut Criterion, base: &Tree, describe_on: bool) {
    let snapshot = observe::observe(&base.host, &opts(Some(base.kubelet_pid)));
    let mut fixture_watch = Watch::arm(&base.host, &snapshot);

    // The same files through `/`, and our own process as the kubelet on the real /proc.
    let real = HostRoot::new("/").expect("root");
    let mut live = snapshot.clone();
    if let Some(k) = live.kubelet.as_mut() {
        let me = i32::try_from(std::process::id()).unwrap();
        k.pid = me;
        k.start_time_ticks = std::fs::read_to_string(format!("/proc/{me}/stat"))
            .ok()
            .and_then(|s| process::start_time_from_stat(&s));
        let root = base.host.root().to_path_buf();
        for f in &mut k.files {
            let abs = root.join(f.path.trim_start_matches('/'));
            f.path = abs.to_string_lossy().into_owned();
            f.meta = real.metadata(&f.path).map_err(Into::into);
        }
    }
    let mut live_watch = Watch::arm(&real, &live);

    for (name, w, host) in [
        ("fixture", &mut fixture_watch, &base.host),
        ("real_proc", &mut live_watch, &real),
    ] {
        assert_eq!(w.check(host), None, "{name}: a quiet host must not trigger");
        if describe_on {
            let (n, bytes) = allocations(|| {
                for _ in 0..10_000 {
                    black_box(w.check(host));
                }
            });
            let d = quick_median(|| {
                black_box(w.check(host));
            });
            eprintln!(
                "watch check ({name}): {} files + /proc/<pid>/{{stat,cmdline}}, median {:.1} µs; \
                 10,000 checks allocated {n} times ({bytes} bytes)",
                w.len(),
                d.as_secs_f64() * 1e6
            );
        }
        c.bench_function(&format!("watch_check/{name}"), |b| {
            b.iter(|| black_box(w.check(host)));
        });
    }
}

/// Number of extra processes in the `procs1000` tree.
const EXTRA_PROCS: usize = 1000;

/// Where the fixture lives in the repository.
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubeadm-hardened")
}

// ---------------------------------------------------------------------------------------
// Host trees
// ---------------------------------------------------------------------------------------

/// A host tree in a tempdir, with the kubelet's pid.
struct Tree {
    _dir: tempfile::TempDir,
    host: HostRoot,
    kubelet_pid: i32,
    processes: usize,
}

/// The test harness's manifests at the top of a fixture (not part of the host).
const HARNESS_FILES: &[&str] = &[
    "modes.txt",
    "owners.txt",
    "sparse.txt",
    "decoys.txt",
    "links.txt",
    "_decoys",
];

/// Copy a directory tree, recreating symlinks as symlinks (never followed).
fn copy_tree(src: &Path, dst: &Path, top: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        if top && HARNESS_FILES.iter().any(|m| entry.file_name() == *m) {
            continue;
        }
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let ft = entry.file_type()?;
        if ft.is_symlink() {
            symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_dir() {
            copy_tree(&from, &to, false)?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

/// Apply a `modes.txt` manifest (`<octal mode> <path relative to the tree>` per line,
/// `#` comments) to a copied tree: git only keeps the executable bit.
fn apply_modes(root: &Path, manifest: &str) -> std::io::Result<usize> {
    let mut applied = 0;
    for line in manifest.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(a), Some(b)) = (words.next(), words.next()) else {
            continue;
        };
        // Accept both `<mode> <path>` and `<path> <mode>`.
        let (mode, path) = match (u32::from_str_radix(a, 8), u32::from_str_radix(b, 8)) {
            (Ok(m), _) => (m, b),
            (_, Ok(m)) => (m, a),
            _ => continue,
        };
        let target = root.join(path.trim_start_matches('/'));
        if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.file_type().is_symlink()) {
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
            applied += 1;
        }
    }
    Ok(applied)
}

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>, mode: u32) {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, content).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn write_cmdline(root: &Path, pid: i32, argv: &[&str]) {
    let mut bytes = Vec::new();
    for a in argv {
        bytes.extend_from_slice(a.as_bytes());
        bytes.push(0);
    }
    write(root, &format!("proc/{pid}/cmdline"), bytes, 0o444);
}

fn write_stat(root: &Path, pid: i32, comm: &str, start: u64) {
    let stat = format!(
        "{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 1000 0 0 0 50 60 0 0 20 0 12 0 {start} \
         1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    );
    write(root, &format!("proc/{pid}/stat"), stat, 0o444);
}

/// A kubeadm control-plane node, used only when the fixture is not in the tree yet.
fn synthesise_kubeadm(root: &Path) {
    write(root, "etc/hostname", "k8s-cp-01\n", 0o644);
    let kubelet = [
        "/usr/bin/kubelet",
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
        "--config=/var/lib/kubelet/config.yaml",
        "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
        "--pod-infra-container-image=registry.k8s.io/pause:3.10",
    ];
    write_cmdline(root, 1234, &kubelet);
    symlink("/usr/bin/kubelet", root.join("proc/1234/exe")).expect("symlink");
    write_stat(root, 1234, "kubelet", 2_500);
    write(
        root,
        "proc/1234/cgroup",
        "0::/system.slice/kubelet.service\n",
        0o444,
    );
    write_cmdline(
        root,
        2345,
        &[
            "kube-apiserver",
            "--advertise-address=10.0.0.10",
            "--authorization-mode=Node,RBAC",
            "--audit-log-path=/var/log/kubernetes/audit.log",
            "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
            "--client-ca-file=/etc/kubernetes/pki/ca.crt",
            "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
        ],
    );
    symlink("/usr/local/bin/kube-apiserver", root.join("proc/2345/exe")).expect("symlink");
    write_stat(root, 2345, "kube-apiserver", 3_100);
    write_cmdline(root, 1, &["/sbin/init"]);
    write(
        root,
        "var/lib/kubelet/config.yaml",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\n    cacheTTL: 0s\n\
         \x20 x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\n\
         authorization:\n  mode: Webhook\n  webhook:\n    cacheAuthorizedTTL: 0s\n    cacheUnauthorizedTTL: 0s\n\
         readOnlyPort: 0\nprotectKernelDefaults: true\nmakeIPTablesUtilChains: true\n\
         eventRecordQPS: 5\nrotateCertificates: true\nserverTLSBootstrap: true\n\
         tlsMinVersion: VersionTLS12\n\
         tlsCipherSuites:\n- TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n\
         podPidsLimit: 4096\nseccompDefault: true\ncgroupDriver: systemd\n\
         staticPodPath: /etc/kubernetes/manifests\n",
        0o600,
    );
    write(
        root,
        "usr/lib/systemd/system/kubelet.service",
        "[Unit]\nDescription=kubelet\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\n",
        0o600,
    );
    write(
        root,
        "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "[Service]\nEnvironment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"\n",
        0o600,
    );
    // Certificates: openssl when it is there, otherwise unparsable placeholders (the
    // observation then records an error, which costs less than x509 parsing).
    let pki = root.join("etc/kubernetes/pki");
    std::fs::create_dir_all(&pki).expect("mkdir");
    let ok = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
        ])
        .args(["-subj", "/CN=kubernetes", "-keyout"])
        .arg(pki.join("ca.key"))
        .arg("-out")
        .arg(pki.join("ca.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        write(
            root,
            "etc/kubernetes/pki/ca.crt",
            "not a certificate\n",
            0o644,
        );
    }
    let ca = std::fs::read_to_string(pki.join("ca.crt")).expect("ca");
    let b64 = data_encoding::BASE64.encode(ca.as_bytes());
    write(
        root,
        "etc/kubernetes/kubelet.conf",
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {b64}\n    server: https://10.0.0.10:6443\n  name: kubernetes\n\
             contexts:\n- context:\n    cluster: kubernetes\n    user: system:node:k8s-cp-01\n  name: system:node:k8s-cp-01@kubernetes\n\
             current-context: system:node:k8s-cp-01@kubernetes\nusers:\n- name: system:node:k8s-cp-01\n  user:\n    client-certificate-data: {b64}\n"
        ),
        0o600,
    );
    write(
        root,
        "var/lib/kubelet/pki/kubelet-server-2025-01-14-09-31-07.pem",
        &ca,
        0o600,
    );
    symlink(
        "/var/lib/kubelet/pki/kubelet-server-2025-01-14-09-31-07.pem",
        root.join("var/lib/kubelet/pki/kubelet-server-current.pem"),
    )
    .expect("symlink");
}

/// A small deterministic generator (splitmix64): the same tree on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }
}

/// One fake process: argv, `exe` target (None: kernel thread) and `comm`.
fn fake_process(rng: &mut Rng) -> (Vec<String>, Option<&'static str>, &'static str) {
    let v = |xs: &[&str]| {
        xs.iter()
            .map(std::string::ToString::to_string)
            .collect::<Vec<_>>()
    };
    match rng.next() % 20 {
        // A shim per pod sandbox: the most common process on a busy node.
        0..=4 => {
            let id = rng.hex(64);
            let mut argv = v(&[
                "/usr/bin/containerd-shim-runc-v2",
                "-namespace",
                "k8s.io",
                "-id",
            ]);
            argv.push(id);
            argv.extend(v(&["-address", "/run/containerd/containerd.sock"]));
            (
                argv,
                Some("/usr/bin/containerd-shim-runc-v2"),
                "containerd-shim",
            )
        }
        5..=8 => (v(&["/pause"]), Some("/pause"), "pause"),
        9..=10 => (
            v(&["nginx: worker process"]),
            Some("/usr/sbin/nginx"),
            "nginx",
        ),
        11 => (
            v(&["nginx: master process /usr/sbin/nginx -g daemon off;"]),
            Some("/usr/sbin/nginx"),
            "nginx",
        ),
        // Kernel threads: empty cmdline, no readable exe.
        12..=14 => (Vec::new(), None, "kworker/u4:2"),
        15 => (
            v(&[
                "/usr/local/bin/kube-proxy",
                "--config=/var/lib/kube-proxy/config.conf",
                "--hostname-override=k8s-cp-01",
            ]),
            Some("/usr/local/bin/kube-proxy"),
            "kube-proxy",
        ),
        16 => (
            v(&["/coredns", "-conf", "/etc/coredns/Corefile"]),
            Some("/coredns"),
            "coredns",
        ),
        17 => (
            v(&[
                "java",
                "-Xms512m",
                "-Xmx2g",
                "-XX:+UseG1GC",
                "-Dspring.profiles.active=prod",
                "-Djava.security.egd=file:/dev/./urandom",
                "-jar",
                "/app/service.jar",
            ]),
            Some("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"),
            "java",
        ),
        18 => (
            v(&["/bin/sh", "-c", "while true; do sleep 3600; done"]),
            Some("/bin/dash"),
            "sh",
        ),
        _ => (
            v(&[
                "/usr/local/bin/python3",
                "-m",
                "gunicorn",
                "app:app",
                "--workers",
                "4",
                "--bind",
                "0.0.0.0:8080",
            ]),
            Some("/usr/local/bin/python3.12"),
            "gunicorn",
        ),
    }
}

/// Add `n` fake processes to `<root>/proc`, with pids not already present.
fn add_fake_processes(root: &Path, n: usize) {
    let taken: BTreeSet<i32> = std::fs::read_dir(root.join("proc"))
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut rng = Rng(0x6b75_6265_6c65_7421);
    let mut pid: i32 = 400;
    let mut added = 0;
    while added < n {
        pid += 1 + (rng.next() % 37) as i32;
        if taken.contains(&pid) {
            continue;
        }
        let (argv, exe, comm) = fake_process(&mut rng);
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        write_cmdline(root, pid, &words);
        if let Some(exe) = exe {
            symlink(exe, root.join(format!("proc/{pid}/exe"))).expect("symlink");
        }
        write_stat(root, pid, comm, 10_000 + u64::try_from(pid).unwrap());
        added += 1;
    }
}

/// Build a host tree: the fixture (or its stand-in) plus `extra` processes.
fn tree(extra: usize) -> Tree {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("host");
    let fixture = fixture_dir();
    if fixture.is_dir() {
        copy_tree(&fixture, &root, true).expect("copy fixture");
        // `links.txt`: `<link> <target>` symlinks kept out of the repository.
        if let Ok(links) = std::fs::read_to_string(fixture.join("links.txt")) {
            for (link, target) in links
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_once(char::is_whitespace))
            {
                let at = root.join(link);
                if let Some(parent) = at.parent() {
                    std::fs::create_dir_all(parent).expect("mkdir");
                }
                symlink(target.trim(), &at).expect("links.txt symlink");
            }
        }
        if let Ok(manifest) = std::fs::read_to_string(fixture.join("modes.txt")) {
            apply_modes(&root, &manifest).expect("apply modes.txt");
        }
    } else {
        synthesise_kubeadm(&root);
    }
    add_fake_processes(&root, extra);
    let host = HostRoot::new(&root).expect("host root");
    let scan = process::scan(&host).expect("scan");
    let kubelet_pid = scan
        .kubelets
        .first()
        .map(|(p, _)| p.pid)
        .expect("the fixture has a kubelet");
    let processes = process::list_pids(&host).expect("pids").len();
    Tree {
        _dir: dir,
        host,
        kubelet_pid,
        processes,
    }
}

/// One full evaluation, as the agent does it for a one-shot `check`.
fn full_evaluation(host: &HostRoot, opts: &ObserveOptions, policy: &Policy) -> usize {
    let snapshot = observe::observe(host, opts);
    evaluate::evaluate(&snapshot, policy).len()
}

fn opts(pid: Option<i32>) -> ObserveOptions {
    ObserveOptions {
        node_name: None,
        kubelet_pid: pid,
    }
}

/// Print what the trees hold and a quick median per scenario (criterion's figures are
/// the reference; these lines make the bench output self-describing).
fn describe(trees: &[(&str, &Tree)], policy: &Policy) {
    let source = if fixture_dir().is_dir() {
        "tests/fixtures/kubeadm-hardened (copied)"
    } else {
        "synthesised kubeadm tree (fixture absent)"
    };
    eprintln!("host tree: {source}");
    for (name, t) in trees {
        let snap = observe::observe(&t.host, &opts(None));
        let results = evaluate::evaluate(&snap, policy);
        let s = summarize(&results);
        let pid = match snap.discovery {
            Discovery::Found { pid, .. } => pid.to_string(),
            ref other => format!("{other:?}"),
        };
        eprintln!(
            "  {name}: {} processes, kubelet pid {pid} (pinned pid {}), apiserver: {}, {} controls \
             (pass {} fail {} unknown {} n/a {})",
            t.processes,
            t.kubelet_pid,
            snap.apiserver.as_ref().map(|a| a.pid.to_string()).unwrap_or_else(|| "none".into()),
            results.len(),
            s.pass,
            s.fail,
            s.unknown,
            s.not_applicable,
        );
        let first: Vec<String> = snap
            .probes
            .iter()
            .map(|p| {
                format!(
                    "{} {:.1}{}",
                    p.name,
                    p.duration.as_secs_f64() * 1e6,
                    if p.success { "" } else { " (FAILED)" }
                )
            })
            .collect();
        eprintln!("    first observation (µs): {}", first.join(", "));
        probe_breakdown(t, None, 200);
        probe_breakdown(t, Some(t.kubelet_pid), 200);
    }
}

/// Mean duration of each observation probe over `n` observations by a warm `Observer`
/// (the agent's steady state): where an evaluation's time goes.
fn probe_breakdown(t: &Tree, pid: Option<i32>, n: u32) {
    let mut observer = Observer::new(t.host.clone(), opts(pid));
    let _ = observer.observe();
    let mut totals: Vec<(&'static str, Duration)> = Vec::new();
    let mut whole = Duration::ZERO;
    for _ in 0..n {
        let start = Instant::now();
        let snap = observer.observe();
        whole += start.elapsed();
        for p in &snap.probes {
            match totals.iter_mut().find(|(name, _)| *name == p.name) {
                Some((_, d)) => *d += p.duration,
                None => totals.push((p.name, p.duration)),
            }
        }
    }
    let line: Vec<String> = totals
        .iter()
        .map(|(name, d)| format!("{name} {:.1}", d.as_secs_f64() * 1e6 / f64::from(n)))
        .collect();
    eprintln!(
        "    steady state ({}), mean of {n}: observe {:.1} µs = {} (µs)",
        if pid.is_some() {
            "pinned"
        } else {
            "discovered"
        },
        whole.as_secs_f64() * 1e6 / f64::from(n),
        line.join(", ")
    );
}

fn quick_median(mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..51)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------------------

fn benches(c: &mut Criterion) {
    let policy = Policy::embedded();
    let base = tree(0);
    let busy = tree(EXTRA_PROCS);
    // `BENCH_DESCRIBE=0` skips the description and the quick medians (for profiling one
    // benchmark with `--profile-time`).
    let describe_on = std::env::var("BENCH_DESCRIBE").map_or(true, |v| v != "0");
    if describe_on {
        describe(&[("fixture", &base), ("procs1000", &busy)], &policy);
    }

    {
        let mut g = c.benchmark_group("full_evaluation");
        for (name, t) in [("fixture", &base), ("procs1000", &busy)] {
            g.bench_function(format!("{name}/discover"), |b| {
                b.iter(|| black_box(full_evaluation(&t.host, &opts(None), &policy)));
            });
            g.bench_function(format!("{name}/pinned"), |b| {
                b.iter(|| {
                    black_box(full_evaluation(
                        &t.host,
                        &opts(Some(t.kubelet_pid)),
                        &policy,
                    ))
                });
            });
            // The agent's steady state: one Observer, its discovery cache warm.
            for (mode, pid) in [
                ("observer_discover", None),
                ("observer_pinned", Some(t.kubelet_pid)),
            ] {
                let mut observer = Observer::new(t.host.clone(), opts(pid));
                let _ = observer.observe();
                g.bench_function(format!("{name}/{mode}"), |b| {
                    b.iter(|| {
                        let snap = observer.observe();
                        black_box(evaluate::evaluate(&snap, &policy).len())
                    });
                });
            }
        }
        g.finish();
    }

    {
        let mut g = c.benchmark_group("process_scan");
        for (name, t) in [("fixture", &base), ("procs1000", &busy)] {
            g.bench_function(name, |b| {
                b.iter(|| black_box(process::scan(&t.host).map(|s| s.kubelets.len())));
            });
        }
        // This machine's own procfs, for the cost of a real /proc (fewer processes).
        if let Ok(real) = HostRoot::new("/") {
            let n = process::list_pids(&real).map(|p| p.len()).unwrap_or(0);
            eprintln!("real /proc of this machine: {n} processes");
            g.bench_function(format!("real_proc_{n}"), |b| {
                b.iter(|| black_box(process::scan(&real).map(|s| s.kubelets.len())));
            });
        }
        g.bench_function("read_proc_kubelet", |b| {
            b.iter(|| {
                black_box(process::read_proc(&busy.host, busy.kubelet_pid).map(|p| p.argv.len()))
            });
        });
        g.finish();
    }

    // Where the steady-state observation spends its time: the parsers and the
    // symlink-resolving file access, on the fixture's own files.
    {
        let mut g = c.benchmark_group("parts");
        let host = &base.host;
        let config_text = host
            .read_to_string("/var/lib/kubelet/config.yaml")
            .expect("config.yaml");
        let kubeconfig_text = host
            .read_to_string("/etc/kubernetes/kubelet.conf")
            .expect("kubelet.conf");
        let ca_pem = host.read("/etc/kubernetes/pki/ca.crt").expect("ca.crt");
        let kubelet = process::read_proc(host, base.kubelet_pid).expect("kubelet");
        let flags = Flags::parse(kubelet.argv.get(1..).unwrap_or(&[]));
        g.bench_function("parse_config_yaml", |b| {
            b.iter(|| black_box(effective::parse_document(&config_text).is_ok()));
        });
        g.bench_function("effective_config_build", |b| {
            b.iter(|| {
                let main = ConfigInput {
                    path: "/var/lib/kubelet/config.yaml".to_string(),
                    text: Ok(config_text.clone()),
                };
                black_box(EffectiveConfig::build(
                    flags.clone(),
                    Some(main),
                    None,
                    Vec::new(),
                    None,
                ))
            });
        });
        g.bench_function("parse_kubeconfig", |b| {
            b.iter(|| {
                black_box(kubeconfig::parse_credential(&kubeconfig_text, "/etc/kubernetes").is_ok())
            });
        });
        g.bench_function("summarize_ca_pem", |b| {
            b.iter(|| black_box(certs::summarize_pem(&ca_pem).is_ok()));
        });
        g.bench_function("host_metadata_config_yaml", |b| {
            b.iter(|| black_box(host.metadata("/var/lib/kubelet/config.yaml").is_ok()));
        });
        g.bench_function("host_read_config_yaml", |b| {
            b.iter(|| black_box(host.read("/var/lib/kubelet/config.yaml").map(|v| v.len())));
        });
        g.bench_function("std_read_config_yaml", |b| {
            let real = host.root().join("var/lib/kubelet/config.yaml");
            b.iter(|| black_box(std::fs::read(&real).map(|v| v.len())));
        });
        g.finish();
    }

    let snapshot = observe::observe(&base.host, &opts(None));
    c.bench_function("evaluate_only", |b| {
        b.iter(|| black_box(evaluate::evaluate(&snapshot, &policy)));
    });

    let results = evaluate::evaluate(&snapshot, &policy);
    let input = MetricsInput {
        node: &snapshot.node,
        snapshot: &snapshot,
        results: &results,
        evaluation_duration: Duration::from_micros(900),
        evaluated_at: snapshot.taken_at,
        build_version: env!("CARGO_PKG_VERSION"),
        build_revision: "bench",
        drift: None,
        risky_pods: &[],
        options: Default::default(),
    };
    let exposition = render(&input);
    if describe_on {
        eprintln!(
            "exposition: {} bytes (text 0.0.4), {} bytes (OpenMetrics), {} lines",
            exposition.text.len(),
            exposition.openmetrics.len(),
            exposition.text.lines().count()
        );
    }
    c.bench_function("render_only", |b| b.iter(|| black_box(render(&input))));

    watch_benches(c, &base, describe_on);

    if !describe_on {
        return;
    }
    // A one-line summary per scenario, independent of criterion's statistics.
    eprintln!("quick medians (51 runs each):");
    for (name, t) in [("fixture", &base), ("procs1000", &busy)] {
        let d = quick_median(|| {
            black_box(full_evaluation(&t.host, &opts(None), &policy));
        });
        let p = quick_median(|| {
            black_box(full_evaluation(
                &t.host,
                &opts(Some(t.kubelet_pid)),
                &policy,
            ));
        });
        let s = quick_median(|| {
            black_box(process::scan(&t.host).map(|s| s.kubelets.len()).ok());
        });
        eprintln!(
            "  {name}: discover {:.3} ms, pinned {:.3} ms, process::scan {:.3} ms",
            d.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            s.as_secs_f64() * 1e3
        );
    }
}

criterion_group! {
    name = evaluation;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(evaluation);
