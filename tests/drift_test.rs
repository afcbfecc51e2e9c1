//! Drift end to end: the built agent (`serve`, `baseline show|accept`) against a copy of
//! the `kubeadm-hardened` fixture, edited while the agent runs.
//!
//! Every agent runs with `--interval 1h`, so any re-evaluation a test observes was
//! triggered by the change watch (`--watch-interval 200ms`; one test keeps the default
//! 1 s). Each test has its own fixture copy, state dir and port; the host tree is on disk,
//! so live probes are off and nothing is run.
//!
//! 1. an in-place edit that keeps a control passing: drift without regression;
//! 2. an in-place edit that fails a control: drift and regression, logged once;
//! 3. a replace-by-rename of the config file;
//! 4. a drop-in added to `--config-dir`;
//! 5. a kubelet restart with a new flag (the fixture's `/proc/<pid>/{cmdline,stat}`),
//!    then a restart as a new pid;
//! 6. `config_pending_restart`: an edit after the kubelet started, then a restart, then a
//!    start-read file removed while the same process runs;
//! 7. `baseline accept` while the agent runs: reloaded, drift back to 0; `baseline show`;
//! 8. an agent restart: the baseline survives, a change made while the agent was down is
//!    seen (and counted) at the first evaluation;
//! 9. a corrupt `baseline.json` is moved aside byte for byte and replaced;
//! 10. an unwritable state dir (below a regular file; mode 0555 without DAC capabilities):
//!     the agent keeps working from memory and counts the write errors;
//! 11. a crash between the temporary file and the rename (fault hook of the `standin`
//!     feature): the old baseline stays, the leftover is removed at the next start;
//!
//! and: a deleted baseline starts over; `--baseline-from-policy` moves an observed baseline
//! aside; a baseline of another node is moved aside; the stand-in kubelet as a real
//! process on this host's `/proc` (`--kubelet-pid`): an edit pending a restart, then a
//! real restart counted by the next agent; a baseline time read back exactly.
//!
//! Every process is killed and reaped by a drop guard; a failure prints the agent's log.
#![allow(unsafe_code)] // libc: the clock tick rate of the host and SIGTERM to the agent under test

mod common;

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::http::{free_port, get};
use common::process::Guard;
use kubelet_sentinel::model::exposition::{parse_line, samples, Line};
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_kubelet-sentinel");
const NODE: &str = "drift-node";
/// Bound on every wait (agent start-up, a change being seen).
const WAIT: Duration = Duration::from_secs(20);
const FAST_WATCH: &str = "200ms";
const CONFIG: &str = "/var/lib/kubelet/config.yaml";

// ---------------------------------------------------------------------------------------
// Time and files
// ---------------------------------------------------------------------------------------

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Sleep until the wall clock passes `t` (Unix seconds): for mtimes that must be later
/// than a given instant.
fn sleep_until(t: f64) {
    let left = t - now();
    if left > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(left));
    }
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// Replace a file atomically (temporary file in the same directory, then rename), so the
/// watch never sees it half written.
fn replace_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_file_name(format!(
        ".{}.drift-test-new",
        path.file_name().expect("file name").to_string_lossy()
    ));
    fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    if let Ok(m) = fs::metadata(path) {
        fs::set_permissions(&tmp, m.permissions()).expect("keep the mode");
    }
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename over {}: {e}", path.display()));
}

/// Edit a file in place (same inode): the new text is written over the old one in one
/// `write`, then the file is cut to its length, so no reader sees it empty.
fn edit_in_place(path: &Path, from: &str, to: &str) {
    let before = fs::metadata(path).expect("stat before the edit");
    let text = fs::read_to_string(path).expect("read before the edit");
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    let new = text.replacen(from, to, 1);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for an in-place edit");
    f.write_all(new.as_bytes()).expect("write in place");
    f.set_len(new.len() as u64).expect("cut to length");
    f.sync_all().expect("fsync");
    drop(f);
    let after = fs::metadata(path).expect("stat after the edit");
    assert_eq!(before.ino(), after.ino(), "the edit must keep the inode");
}

fn parse_json(path: &Path) -> Value {
    let text = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| {
        panic!(
            "{} is not JSON ({e}):\n{}",
            path.display(),
            String::from_utf8_lossy(&text)
        )
    })
}

/// Two Unix times are the same instant, exactly: times read back from JSON round-trip
/// (serde_json's `float_roundtrip`; see `the_baseline_timestamp_is_read_back_exactly`).
fn same_time(a: Option<f64>, b: Option<f64>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a == b)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------
// The host tree
// ---------------------------------------------------------------------------------------

/// One test's node: a fixture copy, its kubelet's pid, and a work dir (state, logs).
struct Node {
    fx: common::Fixture,
    work: tempfile::TempDir,
    pid: u32,
}

impl Node {
    fn new() -> Node {
        let fx = common::Fixture::load("kubeadm-hardened");
        let pid = fixture_kubelet_pid(&fx.root());
        let work = tempfile::Builder::new()
            .prefix("drift-test-")
            .tempdir()
            .expect("work dir");
        Node { fx, work, pid }
    }

    fn root(&self) -> PathBuf {
        self.fx.root()
    }

    fn path(&self, host_path: &str) -> PathBuf {
        self.fx.path(host_path)
    }

    fn work(&self) -> &Path {
        self.work.path()
    }

    /// The default state dir of this node's agents.
    fn state(&self) -> PathBuf {
        self.work().join("state")
    }

    fn proc_file(&self, name: &str) -> PathBuf {
        self.path(&format!("/proc/{}/{name}", self.pid))
    }

    fn cmdline(&self) -> Vec<String> {
        fs::read(self.proc_file("cmdline"))
            .expect("read cmdline")
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    fn set_cmdline(&self, argv: &[String]) {
        let mut raw = Vec::new();
        for a in argv {
            raw.extend_from_slice(a.as_bytes());
            raw.push(0);
        }
        replace_file(&self.proc_file("cmdline"), &raw);
    }

    fn add_flag(&self, flag: &str) {
        let mut argv = self.cmdline();
        argv.push(flag.to_string());
        self.set_cmdline(&argv);
    }

    /// Field 22 of `/proc/<pid>/stat` (clock ticks after boot).
    fn start_ticks(&self) -> u64 {
        let text = fs::read_to_string(self.proc_file("stat")).expect("read stat");
        let after = &text[text.rfind(')').expect("comm") + 1..];
        after
            .split_whitespace()
            .nth(19)
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no start time in {text:?}"))
    }

    /// Rewrite field 22 of `/proc/<pid>/stat`: the kubelet restarted (same pid).
    fn set_start_ticks(&self, ticks: u64) {
        let path = self.proc_file("stat");
        let text = fs::read_to_string(&path).expect("read stat");
        let cut = text.rfind(')').expect("comm") + 1;
        let mut fields: Vec<String> = text[cut..].split_whitespace().map(String::from).collect();
        fields[19] = ticks.to_string();
        replace_file(
            &path,
            format!("{} {}\n", &text[..cut], fields.join(" ")).as_bytes(),
        );
        assert_eq!(self.start_ticks(), ticks);
    }

    /// The kubelet restarts as a new process: its `/proc/<pid>` moves to `/proc/<new>`
    /// (one rename) with a later start time.
    fn move_pid(&mut self, new: u32) {
        let ticks = self.start_ticks() + 5_000;
        let stat = self.proc_file("stat");
        let text = fs::read_to_string(&stat).expect("read stat");
        let rest = &text[text.find(' ').expect("pid field")..];
        replace_file(&stat, format!("{new}{rest}").as_bytes());
        self.set_start_ticks(ticks);
        let from = self.path(&format!("/proc/{}", self.pid));
        let to = self.path(&format!("/proc/{new}"));
        assert!(!to.exists(), "{} exists", to.display());
        fs::rename(&from, &to).expect("move the kubelet's /proc entry");
        self.pid = new;
    }

    /// Give the host a `/proc/stat` (boot time) and the kubelet a start time, so that
    /// the kubelet started at `started_at` (Unix seconds, to the clock tick).
    fn set_started_at(&self, btime: u64, started_at: f64) {
        let stat = self.path("/proc/stat");
        if !stat.exists() {
            replace_file(
                &stat,
                format!(
                    "cpu  1 0 1 100 0 0 0 0 0 0\ncpu0 1 0 1 100 0 0 0 0 0 0\nctxt 1000\nbtime {btime}\nprocesses 2000\nprocs_running 1\nprocs_blocked 0\n"
                )
                .as_bytes(),
            );
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let ticks = ((started_at - btime as f64) * clock_ticks_per_second() as f64).round() as u64;
        self.set_start_ticks(ticks);
    }

    /// `serve` on this node with the default state dir and the fast watch.
    fn agent(&self) -> Agent {
        self.serve().start()
    }

    fn serve(&self) -> AgentSpec {
        AgentSpec {
            root: self.root(),
            state: self.state(),
            work: self.work().to_path_buf(),
            watch: Some(FAST_WATCH),
            drop_dac: false,
            extra: Vec::new(),
        }
    }
}

/// The fixture's kubelet: the `proc/<pid>` whose command line starts with
/// `/usr/bin/kubelet`.
fn fixture_kubelet_pid(root: &Path) -> u32 {
    let mut found = Vec::new();
    for e in fs::read_dir(root.join("proc")).expect("proc dir") {
        let e = e.expect("proc entry");
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let argv0 = fs::read(e.path().join("cmdline"))
            .ok()
            .and_then(|b| b.split(|c| *c == 0).next().map(<[u8]>::to_vec))
            .unwrap_or_default();
        if argv0 == b"/usr/bin/kubelet" {
            found.push(pid);
        }
    }
    assert_eq!(found.len(), 1, "one kubelet in the fixture: {found:?}");
    found[0]
}

// ---------------------------------------------------------------------------------------
// The agent
// ---------------------------------------------------------------------------------------

/// The agent's command with no `KUBELET_SENTINEL_*`/`NODE_NAME` from the test's
/// environment (they would change its flags).
fn sentinel() -> Command {
    let mut cmd = common::agent::agent_command();
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

/// `baseline accept` on a node; panics unless it succeeds.
fn accept(root: &Path, state: &Path, node: &str) -> String {
    let out = sentinel()
        .arg("baseline")
        .arg("accept")
        .arg("--host-root")
        .arg(root)
        .arg("--state-dir")
        .arg(state)
        .args(["--node-name", node])
        .args(["--live-probes", "off", "--log-format", "json"])
        .output()
        .expect("run baseline accept");
    assert!(
        out.status.success(),
        "baseline accept: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `baseline show`: exit code and stdout.
fn show(state: &Path) -> (Option<i32>, String) {
    let out = sentinel()
        .args(["baseline", "show", "--state-dir"])
        .arg(state)
        .output()
        .expect("run baseline show");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The effective capability set of a running process.
fn effective_caps(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff line")
        .trim();
    u64::from_str_radix(hex, 16).expect("CapEff is hex")
}

/// How to start `serve`.
struct AgentSpec {
    root: PathBuf,
    state: PathBuf,
    /// Where the logs go.
    work: PathBuf,
    /// `--watch-interval` (`None`: the default, 1 s).
    watch: Option<&'static str>,
    /// Start it without DAC-bypassing capabilities (root only).
    drop_dac: bool,
    /// More arguments.
    extra: Vec<OsString>,
}

impl AgentSpec {
    fn state(mut self, state: PathBuf) -> AgentSpec {
        self.state = state;
        self
    }

    fn default_watch(mut self) -> AgentSpec {
        self.watch = None;
        self
    }

    fn arg(mut self, a: impl Into<OsString>) -> AgentSpec {
        self.extra.push(a.into());
        self
    }

    fn without_dac(mut self) -> AgentSpec {
        self.drop_dac = true;
        self
    }

    fn args(&self, addr: SocketAddr) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "serve".into(),
            "--host-root".into(),
            self.root.clone().into(),
            "--state-dir".into(),
            self.state.clone().into(),
            "--node-name".into(),
            NODE.into(),
            "--listen-address".into(),
            addr.to_string().into(),
            "--interval".into(),
            "1h".into(),
            "--live-probes".into(),
            "off".into(),
            "--log-format".into(),
            "json".into(),
        ];
        if let Some(w) = self.watch {
            a.push("--watch-interval".into());
            a.push(w.into());
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// Start `serve` and wait until `/readyz` answers 200 (the first evaluation is
    /// published). A port taken between choosing and binding it is retried.
    fn start(self) -> Agent {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let mut last_log = String::new();
        for _ in 0..3 {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let log = self.work.join(format!("agent-{n}.log"));
            let file = fs::File::create(&log).expect("create the agent log");
            let mut cmd = sentinel();
            cmd.args(self.args(addr))
                .stdout(Stdio::from(file.try_clone().expect("dup log")))
                .stderr(Stdio::from(file));
            if self.drop_dac {
                // SAFETY: the closure only makes raw syscalls (no allocation, no lock).
                unsafe {
                    cmd.pre_exec(common::drop_dac_across_exec);
                }
            }
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {AGENT}: {e}"));
            let mut agent = Agent {
                child: Guard(child),
                addr,
                log,
            };
            let deadline = Instant::now() + WAIT;
            loop {
                if let Some(status) = agent.child.try_wait().expect("try_wait") {
                    last_log = agent.log();
                    if last_log.contains("cannot listen") {
                        break; // port taken: another one
                    }
                    panic!("the agent exited early ({status}):\n{last_log}");
                }
                if get(addr, "/readyz", Some("text/plain")).is_ok_and(|r| r.status == 200) {
                    return agent;
                }
                assert!(
                    Instant::now() < deadline,
                    "the agent was not ready within {WAIT:?}:\n{}",
                    agent.log()
                );
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("the agent did not start:\n{last_log}");
    }
}

/// A running agent; killed (and reaped) on drop.
struct Agent {
    child: Guard,
    addr: SocketAddr,
    log: PathBuf,
}

impl Agent {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The agent's JSON log records with this message.
    fn logged(&self, message: &str) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"] == message)
            .collect()
    }

    fn metrics(&self) -> Metrics {
        match get(self.addr, "/metrics", Some("text/plain")) {
            Ok(r) if r.status == 200 => Metrics(r.body),
            Ok(r) => panic!("/metrics answered {}: {}\n{}", r.status, r.body, self.log()),
            Err(e) => panic!("/metrics: {e}\nagent log:\n{}", self.log()),
        }
    }

    /// Poll `/metrics` until `ok` holds (bounded by [`WAIT`]).
    fn wait_for(&self, what: &str, ok: impl Fn(&Metrics) -> bool) -> Metrics {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.metrics();
            if ok(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not seen within {WAIT:?}\nlast scrape (drift families):\n{}\nagent log:\n{}",
                m.drift_lines(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A failure message with the scrape and the log.
    fn context(&self, m: &Metrics) -> String {
        format!(
            "\nscrape (drift families):\n{}\nagent log:\n{}",
            m.drift_lines(),
            self.log()
        )
    }

    /// SIGTERM, and wait for a clean exit.
    fn stop(mut self) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own, not yet reaped child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + WAIT;
        let status: ExitStatus = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "the agent still runs {WAIT:?} after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "exit after SIGTERM: {status}\n{}",
            self.log()
        );
    }
}

// ---------------------------------------------------------------------------------------
// The exposition
// ---------------------------------------------------------------------------------------

/// One scrape (Prometheus text 0.0.4).
struct Metrics(String);

impl Metrics {
    /// The value of the sample `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        common::metrics::sample(&self.0, name, labels)
    }

    fn node(&self, name: &str) -> Option<f64> {
        self.get(name, &[("node", NODE)])
    }

    /// The `kind` of a control's drift series (`changed` or `regressed`); `None` while it
    /// matches its baseline (the series is absent). Never more than one per control.
    fn drift(&self, control: &str) -> Option<String> {
        let kinds: Vec<(String, f64)> = samples(&self.0)
            .filter(|s| {
                s.name == "kubelet_sentinel_control_drift"
                    && s.has_labels(&[("node", NODE), ("control", control)])
            })
            .map(|s| (s.label("kind").unwrap_or("").to_string(), s.value))
            .collect();
        assert!(kinds.len() <= 1, "{control}: {kinds:?}");
        kinds.into_iter().next().map(|(kind, value)| {
            assert_eq!(value, 1.0, "{control}: a drift series is 1");
            assert!(kind == "changed" || kind == "regressed", "kind {kind:?}");
            kind
        })
    }

    fn changes(&self, kind: &str) -> Option<f64> {
        self.get(
            "kubelet_sentinel_config_changes_total",
            &[("node", NODE), ("kind", kind)],
        )
    }

    fn config_drift(&self) -> Option<f64> {
        self.node("kubelet_sentinel_config_drift")
    }

    fn pending_restart(&self) -> Option<f64> {
        self.node("kubelet_sentinel_config_pending_restart")
    }

    fn baseline_timestamp(&self) -> Option<f64> {
        self.node("kubelet_sentinel_baseline_timestamp_seconds")
    }

    fn baseline_origin(&self, origin: &str) -> Option<f64> {
        self.get(
            "kubelet_sentinel_baseline_info",
            &[("node", NODE), ("origin", origin)],
        )
    }

    /// The status whose series is 1 for a control.
    fn status(&self, control: &str) -> Option<String> {
        ["pass", "fail", "unknown", "not_applicable"]
            .into_iter()
            .find(|s| {
                self.get(
                    "kubelet_sentinel_control_status",
                    &[("node", NODE), ("control", control), ("status", s)],
                ) == Some(1.0)
            })
            .map(String::from)
    }

    /// The samples of the drift families and of the failing controls (for messages).
    fn drift_lines(&self) -> String {
        const FAMILIES: &[&str] = &[
            "kubelet_sentinel_control_drift",
            "kubelet_sentinel_config_",
            "kubelet_sentinel_baseline",
            "kubelet_sentinel_last_change",
            "kubelet_sentinel_state_write",
            "kubelet_sentinel_kubelet_up",
            "kubelet_sentinel_kubelet_info",
        ];
        self.0
            .lines()
            .filter(|l| match parse_line(l) {
                Ok(Line::Sample(s)) => {
                    FAMILIES.iter().any(|f| s.name.starts_with(f))
                        && !(s.name.starts_with("kubelet_sentinel_control_") && s.value == 0.0)
                        || (s.name == "kubelet_sentinel_control_status"
                            && s.label("status") == Some("fail")
                            && s.value == 1.0)
                }
                _ => false,
            })
            .map(|l| format!("  {l}\n"))
            .collect()
    }
}

/// Before any change: no drift anywhere, no change counted.
fn assert_quiet(agent: &Agent, m: &Metrics) {
    let ctx = agent.context(m);
    assert_eq!(m.node("kubelet_sentinel_kubelet_up"), Some(1.0), "{ctx}");
    assert_eq!(m.config_drift(), Some(0.0), "{ctx}");
    for kind in ["config", "command_line", "restart", "file"] {
        assert_eq!(m.changes(kind), Some(0.0), "changes {kind}{ctx}");
    }
    assert!(
        m.node("kubelet_sentinel_last_change_timestamp_seconds")
            .is_none(),
        "no change yet{ctx}"
    );
    let drifted: Vec<&str> =
        m.0.lines()
            .filter(|l| l.starts_with("kubelet_sentinel_control_drift{"))
            .collect();
    assert!(
        drifted.is_empty(),
        "drift before any change: {drifted:?}{ctx}"
    );
    assert_eq!(m.baseline_origin("first_observation"), Some(1.0), "{ctx}");
    assert_eq!(
        m.node("kubelet_sentinel_state_write_errors_total"),
        Some(0.0),
        "{ctx}"
    );
    assert_eq!(
        m.node("kubelet_sentinel_baseline_corrupt_total"),
        Some(0.0),
        "{ctx}"
    );
}

// ---------------------------------------------------------------------------------------
// 1–5: changes are seen
// ---------------------------------------------------------------------------------------

/// 1. An in-place edit that keeps the control passing drifts without regressing; seen
///    with the default 1 s watch interval within a few seconds.
#[test]
fn an_edit_that_keeps_passing_drifts_without_regressing() {
    let node = Node::new();
    let agent = node.serve().default_watch().start();
    let m = agent.metrics();
    assert_quiet(&agent, &m);
    let id = "pod-pids-limit-set";
    assert_eq!(m.drift(id), None, "{}", agent.context(&m));
    let baseline_ts = m.baseline_timestamp().expect("baseline timestamp");
    assert!(node.state().join("baseline.json").is_file());
    assert!(node.state().join("state.json").is_file());

    let edited = Instant::now();
    edit_in_place(
        &node.path(CONFIG),
        "podPidsLimit: 4096",
        "podPidsLimit: 2048",
    );
    let m = agent.wait_for("the edit (drift)", |m| m.drift(id).is_some());
    let latency = edited.elapsed();
    let ctx = agent.context(&m);
    assert!(
        latency < Duration::from_secs(8),
        "the default 1 s watch took {latency:?}{ctx}"
    );
    assert_eq!(m.drift(id).as_deref(), Some("changed"), "{ctx}");
    assert_eq!(m.status(id).as_deref(), Some("pass"), "{ctx}");
    assert_eq!(m.config_drift(), Some(1.0), "{ctx}");
    assert!(m.changes("config") >= Some(1.0), "{ctx}");
    assert!(m.changes("file") >= Some(1.0), "{ctx}");
    assert_eq!(m.changes("restart"), Some(0.0), "{ctx}");
    assert_eq!(m.changes("command_line"), Some(0.0), "{ctx}");
    let last = m
        .node("kubelet_sentinel_last_change_timestamp_seconds")
        .unwrap_or_else(|| panic!("no last change timestamp{ctx}"));
    assert!(last >= baseline_ts, "{last} < {baseline_ts}{ctx}");
    assert_eq!(
        m.baseline_timestamp(),
        Some(baseline_ts),
        "same baseline{ctx}"
    );
    // Nothing else moved.
    assert_eq!(m.drift("read-only-port-disabled"), None, "{ctx}");
    eprintln!("timing: edit seen with the default watch interval after {latency:?}");
}

/// Issue 13, item 15: a `chmod` is a permission change, not an ownership one: only the
/// permission control drifts (each control observes only what it judges), and a `chown`
/// only the ownership control.
#[test]
fn item_15_a_chmod_is_no_ownership_drift() {
    let node = Node::new();
    let agent = node.agent();
    let m = agent.metrics();
    assert_quiet(&agent, &m);
    let config = node.path(CONFIG);
    let mode = fs::metadata(&config).expect("config").permissions().mode() & 0o777;
    let stricter = if mode == 0o400 { 0o600 } else { 0o400 };
    fs::set_permissions(&config, fs::Permissions::from_mode(stricter)).expect("chmod");
    let m = agent.wait_for("the chmod (permission drift)", |m| {
        m.drift("config-file-permissions").as_deref() == Some("changed")
    });
    let ctx = agent.context(&m);
    assert_eq!(m.drift("config-file-ownership"), None, "{ctx}");

    // A chown (to the same uid, another gid) is ownership drift and no permission drift
    // beyond the chmod's (root only: chown needs CAP_CHOWN).
    if common::running_as_root() {
        let meta = fs::metadata(&config).expect("config");
        std::os::unix::fs::chown(&config, Some(meta.uid()), Some(meta.gid() + 1)).expect("chown");
        let m = agent.wait_for("the chown (ownership drift)", |m| {
            m.drift("config-file-ownership").is_some()
        });
        let ctx = agent.context(&m);
        assert_eq!(m.drift("kubeconfig-ownership"), None, "{ctx}");
    } else {
        eprintln!("item_15: not root, the chown half is skipped (CI runs as root)");
    }
}

/// 2. An in-place edit that fails a control: drift and regression, and the change is
///    logged once, structured.
#[test]
fn an_edit_that_fails_a_control_regresses() {
    let node = Node::new();
    let agent = node.agent();
    assert_quiet(&agent, &agent.metrics());
    let id = "read-only-port-disabled";

    edit_in_place(&node.path(CONFIG), "readOnlyPort: 0", "readOnlyPort: 10255");
    let m = agent.wait_for("the regression", |m| {
        m.drift(id).as_deref() == Some("regressed")
    });
    let ctx = agent.context(&m);
    assert_eq!(m.drift(id).as_deref(), Some("regressed"), "{ctx}");
    assert_eq!(m.status(id).as_deref(), Some("fail"), "{ctx}");
    assert_eq!(m.config_drift(), Some(1.0), "{ctx}");
    assert!(m.changes("config") >= Some(1.0), "{ctx}");
    assert!(m.changes("file") >= Some(1.0), "{ctx}");
    assert!(
        m.node("kubelet_sentinel_last_change_timestamp_seconds")
            .is_some(),
        "{ctx}"
    );

    // Logged once: `control changed` with the old and new value and status.
    let changed: Vec<Value> = agent
        .logged("control changed")
        .into_iter()
        .filter(|v| v["fields"]["control"] == id)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:#?}{ctx}");
    let f = &changed[0]["fields"];
    assert_eq!(f["old_value"], "0", "{f:#}");
    assert_eq!(f["new_value"], "10255", "{f:#}");
    assert_eq!(f["old_status"], "pass", "{f:#}");
    assert_eq!(f["new_status"], "fail", "{f:#}");
    assert_eq!(f["source"], "config-file", "{f:#}");
    assert_eq!(f["drifted"], true, "{f:#}");
    assert_eq!(f["regressed"], true, "{f:#}");
    let detected = agent.logged("kubelet change detected");
    assert!(!detected.is_empty(), "{ctx}");
    let kinds = detected[0]["fields"]["kinds"].to_string();
    assert!(
        kinds.contains("config") && kinds.contains("file"),
        "{kinds}"
    );
    assert!(
        detected[0]["fields"]["files"].to_string().contains(CONFIG),
        "{:#}",
        detected[0]
    );
}

/// 3. The config file replaced by a rename (a new inode, as editors and config managers
///    do): seen; the file's own metadata controls do not drift (same mode).
#[test]
fn a_replace_by_rename_is_seen() {
    let node = Node::new();
    let agent = node.agent();
    assert_quiet(&agent, &agent.metrics());
    let path = node.path(CONFIG);
    let inode = fs::metadata(&path).expect("stat").ino();
    let text = fs::read_to_string(&path).expect("read config");
    replace_file(
        &path,
        text.replace("podPidsLimit: 4096", "podPidsLimit: 1024")
            .as_bytes(),
    );
    assert_ne!(
        fs::metadata(&path).expect("stat").ino(),
        inode,
        "a new inode"
    );
    let id = "pod-pids-limit-set";
    let m = agent.wait_for("the renamed file (drift)", |m| m.drift(id).is_some());
    let ctx = agent.context(&m);
    assert_eq!(m.drift(id).as_deref(), Some("changed"), "{ctx}");
    assert_eq!(m.config_drift(), Some(1.0), "{ctx}");
    assert!(m.changes("config") >= Some(1.0), "{ctx}");
    assert!(m.changes("file") >= Some(1.0), "{ctx}");
    assert_eq!(
        m.drift("config-file-permissions"),
        None,
        "the mode was kept{ctx}"
    );
}

/// 4. A drop-in added to `--config-dir` (the fixture's kubelet gets the flag before the
///    agent starts): seen through the directory's change.
#[test]
fn a_drop_in_added_to_the_config_dir_is_seen() {
    let node = Node::new();
    let dir = "/etc/kubernetes/kubelet.conf.d";
    fs::create_dir_all(node.path(dir)).expect("create the config dir");
    node.add_flag(&format!("--config-dir={dir}"));
    let agent = node.agent();
    let m = agent.metrics();
    assert_quiet(&agent, &m);
    assert_eq!(
        m.get(
            "kubelet_sentinel_kubelet_info",
            &[("node", NODE), ("config_dir", dir)]
        ),
        Some(1.0),
        "the agent sees --config-dir{}",
        agent.context(&m)
    );
    let id = "anonymous-auth-disabled";
    assert_eq!(m.drift(id), None, "{}", agent.context(&m));

    // Written aside (not *.conf), then renamed into place: never read half written.
    let tmp = node.path(&format!("{dir}/.50-x.partial"));
    fs::write(
        &tmp,
        r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","authentication":{"anonymous":{"enabled":true}}}"#,
    )
    .expect("write the drop-in");
    fs::rename(&tmp, node.path(&format!("{dir}/50-x.conf"))).expect("rename the drop-in");

    let m = agent.wait_for("the drop-in (regression)", |m| {
        m.drift(id).as_deref() == Some("regressed")
    });
    let ctx = agent.context(&m);
    assert_eq!(m.drift(id).as_deref(), Some("regressed"), "{ctx}");
    assert_eq!(m.status(id).as_deref(), Some("fail"), "{ctx}");
    assert_eq!(m.config_drift(), Some(1.0), "{ctx}");
    assert!(m.changes("config") >= Some(1.0), "{ctx}");
    assert!(m.changes("file") >= Some(1.0), "{ctx}");
    // The merge patch changed only what it set.
    assert_eq!(m.drift("authorization-mode-webhook"), None, "{ctx}");
}

/// 5. The kubelet restarts with a new flag (same pid, new start time, new command line):
///    a restart and a command-line change are counted and the control regresses.
#[test]
fn a_restart_with_a_new_flag_is_counted_and_regresses() {
    let mut node = Node::new();
    let agent = node.agent();
    assert_quiet(&agent, &agent.metrics());
    let id = "read-only-port-disabled";

    let ticks = node.start_ticks();
    node.add_flag("--read-only-port=10255");
    node.set_start_ticks(ticks + 12_345);
    let m = agent.wait_for("the restart (regression and restart counted)", |m| {
        m.drift(id).as_deref() == Some("regressed") && m.changes("restart") >= Some(1.0)
    });
    let ctx = agent.context(&m);
    assert_eq!(m.drift(id).as_deref(), Some("regressed"), "{ctx}");
    assert_eq!(m.status(id).as_deref(), Some("fail"), "{ctx}");
    assert!(m.changes("command_line") >= Some(1.0), "{ctx}");
    assert!(
        m.changes("config") >= Some(1.0),
        "a flag is part of the configuration{ctx}"
    );
    assert_eq!(m.config_drift(), Some(1.0), "{ctx}");
    // No file changed; the host has no /proc/stat, so the start time is unknown.
    assert_eq!(m.changes("file"), Some(0.0), "{ctx}");
    assert_eq!(m.pending_restart(), None, "{ctx}");
    let changed: Vec<Value> = agent
        .logged("control changed")
        .into_iter()
        .filter(|v| v["fields"]["control"] == id)
        .collect();
    assert_eq!(
        changed.last().map(|v| v["fields"]["source"].clone()),
        Some(Value::from("flag")),
        "{changed:#?}"
    );

    // Another restart, as a new process (new pid): found again, counted again.
    let restarts = m.changes("restart").expect("restart counter");
    let old_pid = node.pid;
    node.move_pid(old_pid + 1000);
    let m = agent.wait_for("the restart as a new pid", |m| {
        m.changes("restart") > Some(restarts)
    });
    let ctx = agent.context(&m);
    assert_eq!(m.node("kubelet_sentinel_kubelet_up"), Some(1.0), "{ctx}");
    assert_eq!(m.drift(id).as_deref(), Some("regressed"), "{ctx}");
    let detected = agent.logged("kubelet change detected");
    let last = detected.last().expect("a change was logged");
    assert_eq!(last["fields"]["pid"], node.pid, "{last:#}");
    assert_eq!(last["fields"]["previous_pid"], old_pid, "{last:#}");
}

/// Issue 13, item 14: a kubelet that goes away and comes back under a new pid is
/// evaluated within 2 s with the default 1 s watch, not at the next full evaluation (1 h
/// here). While no kubelet is known the watch rescans `/proc` at every tick.
#[test]
fn item_14_a_restarted_kubelet_is_evaluated_within_two_seconds() {
    let mut node = Node::new();
    let agent = node.serve().default_watch().start();
    assert_eq!(
        agent.metrics().node("kubelet_sentinel_kubelet_up"),
        Some(1.0)
    );

    // The kubelet exits: its /proc entry goes away (kept aside for the restart).
    let aside = node.work().join("proc-aside");
    fs::rename(node.path(&format!("/proc/{}", node.pid)), &aside).expect("move /proc/<pid> aside");
    agent.wait_for("the kubelet gone", |m| {
        m.node("kubelet_sentinel_kubelet_up") == Some(0.0)
    });
    // Let the watch re-arm after that evaluation, then stay away for a few ticks.
    std::thread::sleep(Duration::from_millis(2500));

    // It comes back as a new process.
    let new = node.pid + 777;
    let to = node.path(&format!("/proc/{new}"));
    fs::rename(&aside, &to).expect("the kubelet restarts");
    let back = Instant::now();
    node.pid = new;
    let m = agent.wait_for("the restarted kubelet", |m| {
        m.node("kubelet_sentinel_kubelet_up") == Some(1.0)
    });
    let took = back.elapsed();
    let ctx = agent.context(&m);
    assert!(
        took < Duration::from_secs(2),
        "the restarted kubelet was evaluated after {took:?}, not within 2 s{ctx}"
    );
}

// ---------------------------------------------------------------------------------------
// 6: pending restart
// ---------------------------------------------------------------------------------------

/// 6. With a known start time: an edit made after the kubelet started is pending a
///    restart; a restart clears it; a start-read file removed while the same process
///    runs is pending again.
#[test]
fn an_edit_without_a_restart_is_pending_until_the_kubelet_restarts() {
    let node = Node::new();
    // Every file was copied before now; the kubelet "started" half a second ago, so
    // nothing on disk is newer than its start + 1 s.
    let t0 = now();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let btime = t0 as u64 - 1000;
    node.set_started_at(btime, t0 - 0.5);
    let started = btime as f64 + node.start_ticks() as f64 / clock_ticks_per_second() as f64;
    let agent = node.agent();
    let m = agent.metrics();
    assert_quiet(&agent, &m);
    assert_eq!(m.pending_restart(), Some(0.0), "{}", agent.context(&m));

    // An edit more than 1 s after the start: the running kubelet does not have it.
    sleep_until(started + 1.3);
    edit_in_place(
        &node.path(CONFIG),
        "podPidsLimit: 4096",
        "podPidsLimit: 2048",
    );
    let m = agent.wait_for("pending restart after the edit", |m| {
        m.pending_restart() == Some(1.0)
    });
    let ctx = agent.context(&m);
    assert_eq!(
        m.drift("pod-pids-limit-set").as_deref(),
        Some("changed"),
        "{ctx}"
    );
    assert_eq!(m.changes("restart"), Some(0.0), "{ctx}");

    // The kubelet restarts (a start time after the edit): nothing pending.
    let edited_at = fs::metadata(node.path(CONFIG)).expect("stat").mtime();
    let restarted = now();
    assert!(restarted >= edited_at as f64);
    node.set_started_at(btime, restarted);
    let m = agent.wait_for("no pending restart after the restart", |m| {
        m.pending_restart() == Some(0.0)
    });
    let ctx = agent.context(&m);
    assert!(m.changes("restart") >= Some(1.0), "{ctx}");
    assert_eq!(m.changes("command_line"), Some(0.0), "{ctx}");
    // Still drifted from the baseline: the restart applied the edit.
    assert_eq!(
        m.drift("pod-pids-limit-set").as_deref(),
        Some("changed"),
        "{ctx}"
    );

    // A unit drop-in (read at start) removed while this process runs: pending again.
    let started = btime as f64 + node.start_ticks() as f64 / clock_ticks_per_second() as f64;
    sleep_until(started + 1.3);
    fs::remove_file(node.path("/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"))
        .expect("remove the unit drop-in");
    let m = agent.wait_for("pending restart after a start-read file vanished", |m| {
        m.pending_restart() == Some(1.0)
    });
    assert!(m.changes("file") >= Some(2.0), "{}", agent.context(&m));
}

// ---------------------------------------------------------------------------------------
// 7–11: the baseline's life cycle
// ---------------------------------------------------------------------------------------

/// 7. `baseline accept` while the agent runs: the agent reloads it, the accepted state is
///    the new reference; `baseline show` prints it.
#[test]
fn an_accepted_baseline_is_reloaded_by_the_running_agent() {
    let node = Node::new();
    let agent = node.agent();
    let m = agent.metrics();
    assert_quiet(&agent, &m);
    let first_ts = m.baseline_timestamp().expect("baseline timestamp");
    let (code, text) = show(&node.state());
    assert_eq!(code, Some(0), "baseline show: {text}");
    let shown: Value = serde_json::from_str(&text).expect("baseline show prints JSON");
    assert_eq!(shown["origin"], "first_observation", "{shown:#}");
    assert_eq!(shown["node"], NODE, "{shown:#}");

    let id = "read-only-port-disabled";
    edit_in_place(&node.path(CONFIG), "readOnlyPort: 0", "readOnlyPort: 10255");
    agent.wait_for("the regression", |m| {
        m.drift(id).as_deref() == Some("regressed")
    });

    let out = accept(&node.root(), &node.state(), NODE);
    assert!(out.contains("accepted"), "{out}");
    let m = agent.wait_for("the accepted baseline reloaded", |m| {
        m.baseline_origin("accepted") == Some(1.0)
    });
    let ctx = agent.context(&m);
    assert_eq!(m.baseline_origin("first_observation"), None, "{ctx}");
    assert_eq!(m.drift(id), None, "{ctx}");
    assert_eq!(m.status(id).as_deref(), Some("fail"), "still failing{ctx}");
    assert_eq!(m.config_drift(), Some(0.0), "{ctx}");
    let ts = m.baseline_timestamp().expect("baseline timestamp");
    assert!(ts > first_ts, "{ts} <= {first_ts}{ctx}");

    let (code, text) = show(&node.state());
    assert_eq!(code, Some(0), "baseline show: {text}");
    let shown: Value = serde_json::from_str(&text).expect("baseline show prints JSON");
    assert_eq!(shown["origin"], "accepted", "{shown:#}");
    assert!(
        same_time(shown["created_at"].as_f64(), Some(ts)),
        "{ts}: {shown:#}"
    );
    assert_eq!(shown["controls"][id]["observed"], "10255", "{shown:#}");
    assert_eq!(shown["controls"][id]["status"], "fail", "{shown:#}");
    // The agent did not rewrite what it reloaded.
    let on_disk = parse_json(&node.state().join("baseline.json"));
    assert_eq!(on_disk["origin"], "accepted");
    assert!(
        same_time(on_disk["created_at"].as_f64(), Some(ts)),
        "{ts}: {on_disk:#}"
    );
}

/// `baseline show` without a baseline: exit 1.
#[test]
fn baseline_show_without_a_baseline_exits_1() {
    let work = tempfile::tempdir().expect("tempdir");
    let (code, text) = show(&work.path().join("state"));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.is_empty(), "{text}");
}

/// 8. The agent restarts: the baseline survives (same timestamp), and a change made
///    while it was down is drift (and a counted change) at its first evaluation.
#[test]
fn the_baseline_survives_an_agent_restart() {
    let node = Node::new();
    let agent = node.agent();
    assert_quiet(&agent, &agent.metrics());
    edit_in_place(
        &node.path(CONFIG),
        "podPidsLimit: 4096",
        "podPidsLimit: 2048",
    );
    let m = agent.wait_for("the first edit", |m| {
        m.drift("pod-pids-limit-set").as_deref() == Some("changed")
    });
    let baseline_ts = m.baseline_timestamp().expect("baseline timestamp");
    agent.stop();

    // While the agent is down: the read-only port opens.
    edit_in_place(&node.path(CONFIG), "readOnlyPort: 0", "readOnlyPort: 10255");
    let agent = node.agent();
    // The first evaluation (/readyz answered): no wait.
    let m = agent.metrics();
    let ctx = agent.context(&m);
    assert!(
        same_time(m.baseline_timestamp(), Some(baseline_ts)),
        "the baseline survived (was {baseline_ts}){ctx}"
    );
    assert_eq!(m.baseline_origin("first_observation"), Some(1.0), "{ctx}");
    assert_eq!(
        m.drift("read-only-port-disabled").as_deref(),
        Some("regressed"),
        "{ctx}"
    );
    assert_eq!(
        m.drift("pod-pids-limit-set").as_deref(),
        Some("changed"),
        "{ctx}"
    );
    assert_eq!(m.config_drift(), Some(1.0), "{ctx}");
    // The change made while it was down is counted against state.json.
    assert_eq!(m.changes("config"), Some(1.0), "{ctx}");
    assert_eq!(m.changes("file"), Some(1.0), "{ctx}");
    assert!(
        m.node("kubelet_sentinel_last_change_timestamp_seconds")
            .is_some(),
        "{ctx}"
    );
    // Logged at the first evaluation as differing from the baseline.
    let differs: Vec<Value> = agent
        .logged("control differs from the baseline")
        .into_iter()
        .filter(|v| v["fields"]["control"] == "read-only-port-disabled")
        .collect();
    assert_eq!(differs.len(), 1, "{}", agent.log());
    assert_eq!(agent.logged("baseline taken").len(), 0, "{}", agent.log());
}

/// 9. A `baseline.json` that does not parse: moved aside byte for byte, counted, and a
///    new baseline taken.
#[test]
fn a_corrupt_baseline_is_kept_aside_and_replaced() {
    let node = Node::new();
    let state = node.state();
    fs::create_dir_all(&state).expect("state dir");
    let garbage: &[u8] = b"{\"schema_version\": 1, \"node\": \"drift-node\", \"cre\x00\xff garbage";
    fs::write(state.join("baseline.json"), garbage).expect("write garbage");

    let agent = node.agent();
    let m = agent.metrics();
    let ctx = agent.context(&m);
    assert_eq!(
        m.node("kubelet_sentinel_baseline_corrupt_total"),
        Some(1.0),
        "{ctx}"
    );
    assert_eq!(m.baseline_origin("first_observation"), Some(1.0), "{ctx}");
    assert_eq!(
        m.node("kubelet_sentinel_state_write_errors_total"),
        Some(0.0),
        "{ctx}"
    );
    assert_eq!(m.drift("read-only-port-disabled"), None, "{ctx}");

    let kept: Vec<String> = names_in(&state)
        .into_iter()
        .filter(|n| n.starts_with("baseline.json.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "{:?}", names_in(&state));
    assert_eq!(
        fs::read(state.join(&kept[0])).expect("read the kept file"),
        garbage,
        "the corrupt file is kept byte for byte"
    );
    let stamp: f64 = kept[0]["baseline.json.corrupt-".len()..]
        .parse()
        .unwrap_or_else(|_| panic!("{}: a unix time", kept[0]));
    assert!((stamp - now()).abs() < 120.0, "{}", kept[0]);
    let b = parse_json(&state.join("baseline.json"));
    assert_eq!(b["origin"], "first_observation", "{b:#}");
    assert_eq!(b["node"], NODE, "{b:#}");
    assert!(
        same_time(b["created_at"].as_f64(), m.baseline_timestamp()),
        "{b:#}{ctx}"
    );
}

/// 10a. A state dir that cannot be created by anyone (below a regular file): the agent
///      serves, counts the write errors, and drift works from memory.
#[test]
fn a_state_dir_below_a_file_keeps_drift_in_memory() {
    let node = Node::new();
    let file = node.work().join("a-file");
    fs::write(&file, b"not a directory").expect("write");
    let state = file.join("state");
    let agent = node.serve().state(state.clone()).start();
    unwritable_state_dir_keeps_working(&node, &agent, &state, || {
        fs::remove_file(&file).expect("remove the file in the way");
    });
}

/// 10b. A read-only (0555) state dir. As root, the agent runs without CAP_DAC_OVERRIDE and
///      CAP_DAC_READ_SEARCH (or the mode would not stop it).
#[test]
fn a_read_only_state_dir_keeps_drift_in_memory() {
    let node = Node::new();
    let state = node.state();
    fs::create_dir_all(&state).expect("state dir");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o555)).expect("chmod 0555");
    let root = common::running_as_root();
    // Dropping capabilities across exec takes CAP_SETPCAP (containers have it by default).
    const CAP_SETPCAP: u32 = 8;
    if root && effective_caps(std::process::id()) & (1u64 << CAP_SETPCAP) == 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "root without CAP_SETPCAP: the agent cannot be started without DAC capabilities"
        );
        eprintln!("notice: root without CAP_SETPCAP: read-only state dir test skipped");
        return;
    }
    let spec = if root {
        node.serve().without_dac()
    } else {
        node.serve()
    };
    let agent = spec.start();
    if root {
        let caps = effective_caps(agent.child.id());
        let dac = (1u64 << common::CAP_DAC_OVERRIDE) | (1u64 << common::CAP_DAC_READ_SEARCH);
        assert_eq!(
            caps & dac,
            0,
            "the agent kept DAC capabilities: CapEff {caps:x}"
        );
    }
    unwritable_state_dir_keeps_working(&node, &agent, &state, || {
        assert!(
            names_in(&state).is_empty(),
            "nothing written: {:?}",
            names_in(&state)
        );
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).expect("chmod back");
    });
}

/// The agent serves from memory while nothing can be written, and persists the in-memory
/// baseline once `make_writable` has made the state dir writable again (at the next
/// evaluation, here triggered by another edit).
fn unwritable_state_dir_keeps_working(
    node: &Node,
    agent: &Agent,
    state: &Path,
    make_writable: impl FnOnce(),
) {
    let m = agent.metrics();
    let ctx = agent.context(&m);
    assert!(
        m.node("kubelet_sentinel_state_write_errors_total") >= Some(1.0),
        "{ctx}"
    );
    assert_eq!(m.node("kubelet_sentinel_kubelet_up"), Some(1.0), "{ctx}");
    assert_eq!(
        m.baseline_origin("first_observation"),
        Some(1.0),
        "in memory{ctx}"
    );
    assert_eq!(m.drift("read-only-port-disabled"), None, "{ctx}");
    assert!(
        agent.log().contains("cannot write to the state dir"),
        "logged{ctx}"
    );
    let baseline_ts = m.baseline_timestamp();

    edit_in_place(&node.path(CONFIG), "readOnlyPort: 0", "readOnlyPort: 10255");
    let m = agent.wait_for("drift with an unwritable state dir", |m| {
        m.drift("read-only-port-disabled").as_deref() == Some("regressed")
    });
    let ctx = agent.context(&m);

    assert_eq!(
        m.baseline_timestamp(),
        baseline_ts,
        "the same in-memory baseline{ctx}"
    );
    assert!(m.changes("config") >= Some(1.0), "{ctx}");
    assert!(
        m.node("kubelet_sentinel_state_write_errors_total") >= Some(2.0),
        "the next write failed too{ctx}"
    );
    // Logged once, not at every failed write.
    assert_eq!(
        agent.log().matches("cannot write to the state dir").count(),
        1,
        "{ctx}"
    );
    assert!(!state.join("baseline.json").exists());

    // Writable again: the next evaluation writes the baseline kept in memory.
    make_writable();
    edit_in_place(
        &node.path(CONFIG),
        "podPidsLimit: 4096",
        "podPidsLimit: 2048",
    );
    let m = agent.wait_for("the next evaluation", |m| {
        m.drift("pod-pids-limit-set").as_deref() == Some("changed")
    });
    let ctx = agent.context(&m);
    assert!(
        state.join("baseline.json").is_file(),
        "written once writable: {:?}{ctx}",
        fs::read_dir(state).map(std::iter::Iterator::count)
    );
    let b = parse_json(&state.join("baseline.json"));
    assert!(
        same_time(b["created_at"].as_f64(), baseline_ts),
        "the in-memory baseline: {b:#}{ctx}"
    );
    assert_eq!(b["origin"], "first_observation");
    assert!(state.join("state.json").is_file(), "{ctx}");
    assert!(
        !agent.logged("the state dir is writable again").is_empty(),
        "{ctx}"
    );
    // Reloading its own write is not a reload: still the same baseline, still drifted.
    assert_eq!(m.baseline_timestamp(), baseline_ts, "{ctx}");
    assert_eq!(
        m.drift("read-only-port-disabled").as_deref(),
        Some("regressed"),
        "{ctx}"
    );
}

/// Deleting `baseline.json` while the agent runs starts over: a new baseline from the
/// current state, no drift.
#[test]
fn deleting_the_baseline_starts_over() {
    let node = Node::new();
    let agent = node.agent();
    assert_quiet(&agent, &agent.metrics());
    let id = "read-only-port-disabled";
    edit_in_place(&node.path(CONFIG), "readOnlyPort: 0", "readOnlyPort: 10255");
    let m = agent.wait_for("the regression", |m| {
        m.drift(id).as_deref() == Some("regressed")
    });
    let first_ts = m.baseline_timestamp().expect("baseline timestamp");

    fs::remove_file(node.state().join("baseline.json")).expect("delete the baseline");
    let m = agent.wait_for("a new baseline", |m| {
        m.baseline_timestamp().is_some_and(|t| t != first_ts)
    });
    let ctx = agent.context(&m);
    assert!(m.baseline_timestamp() > Some(first_ts), "{ctx}");
    assert_eq!(m.baseline_origin("first_observation"), Some(1.0), "{ctx}");
    assert_eq!(m.drift(id), None, "{ctx}");
    assert_eq!(m.config_drift(), Some(0.0), "{ctx}");
    let b = parse_json(&node.state().join("baseline.json"));
    assert!(
        same_time(b["created_at"].as_f64(), m.baseline_timestamp()),
        "{b:#}{ctx}"
    );
    assert_eq!(b["controls"][id]["observed"], "10255", "{b:#}");
}

/// `--baseline-from-policy` on a state dir holding an observed baseline: that one is
/// moved aside (`.replaced-*`, kept) and the policy is the reference (fail = drift).
#[test]
fn a_policy_baseline_replaces_an_observed_one() {
    let node = Node::new();
    let agent = node.agent();
    let m = agent.metrics();
    assert_quiet(&agent, &m);
    let observed_ts = m.baseline_timestamp().expect("baseline timestamp");
    agent.stop();

    edit_in_place(&node.path(CONFIG), "readOnlyPort: 0", "readOnlyPort: 10255");
    let agent = node.serve().arg("--baseline-from-policy").start();
    let m = agent.metrics();
    let ctx = agent.context(&m);
    assert_eq!(m.baseline_origin("policy"), Some(1.0), "{ctx}");
    assert_ne!(m.baseline_timestamp(), Some(observed_ts), "{ctx}");
    assert_eq!(
        m.drift("read-only-port-disabled").as_deref(),
        Some("regressed"),
        "{ctx}"
    );
    assert_eq!(
        m.drift("pod-pids-limit-set"),
        None,
        "a passing control is on the standard{ctx}"
    );
    let state = node.state();
    let replaced: Vec<String> = names_in(&state)
        .into_iter()
        .filter(|n| n.starts_with("baseline.json.replaced-"))
        .collect();
    assert_eq!(replaced.len(), 1, "{:?}", names_in(&state));
    let old = parse_json(&state.join(&replaced[0]));
    assert_eq!(old["origin"], "first_observation", "{old:#}");
    assert!(
        same_time(old["created_at"].as_f64(), Some(observed_ts)),
        "{old:#}"
    );
    assert_eq!(parse_json(&state.join("baseline.json"))["origin"], "policy");
}

/// A baseline of another node (a state dir copied between nodes) is moved aside
/// (`.foreign-*`, kept), not compared with.
#[test]
fn a_foreign_baseline_is_moved_aside() {
    let node = Node::new();
    accept(&node.root(), &node.state(), "another-node");
    let foreign = parse_json(&node.state().join("baseline.json"));
    assert_eq!(foreign["node"], "another-node");
    let agent = node.agent();
    let m = agent.metrics();
    assert_quiet(&agent, &m);
    assert_ne!(m.baseline_timestamp(), foreign["created_at"].as_f64());
    let state = node.state();
    let moved: Vec<String> = names_in(&state)
        .into_iter()
        .filter(|n| n.starts_with("baseline.json.foreign-"))
        .collect();
    assert_eq!(moved.len(), 1, "{:?}", names_in(&state));
    assert_eq!(parse_json(&state.join(&moved[0])), foreign);
    assert_eq!(parse_json(&state.join("baseline.json"))["node"], NODE);
}

/// 11. A crash between writing the temporary file and renaming it: the old baseline is
///     intact, the leftover is ignored and then removed by the next agent.
#[cfg(feature = "standin")]
#[test]
fn a_crash_during_a_baseline_write_keeps_the_old_baseline() {
    let node = Node::new();
    let state = node.state();
    accept(&node.root(), &state, NODE);
    let old = parse_json(&state.join("baseline.json"));
    let old_ts = old["created_at"].as_f64().expect("created_at");
    assert_eq!(old["origin"], "accepted");

    let marker = node.work().join("paused-before-rename");
    let stderr = fs::File::create(node.work().join("accept.log")).expect("log");
    let mut accept_run = Guard(
        sentinel()
            .arg("baseline")
            .arg("accept")
            .arg("--host-root")
            .arg(node.root())
            .arg("--state-dir")
            .arg(&state)
            .args(["--node-name", NODE, "--live-probes", "off"])
            .env("KUBELET_SENTINEL_FAULT_PAUSE_BEFORE_RENAME", &marker)
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("run baseline accept"),
    );
    // The hook creates the marker, then writes the temporary file's path into it.
    let written = || fs::read(&marker).is_ok_and(|b| !b.is_empty());
    let deadline = Instant::now() + WAIT;
    while !written() {
        if let Some(status) = accept_run.0.try_wait().expect("try_wait") {
            panic!(
                "baseline accept ended ({status}) without pausing: is the fault hook built (--features standin)?\n{}",
                fs::read_to_string(node.work().join("accept.log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no pause within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The marker is written right before the sleep: kill it there (SIGKILL, a crash).
    // The marker is read after the kill: the write that began is complete by then.
    accept_run.0.kill().expect("SIGKILL");
    accept_run.0.wait().expect("reap");

    let tmp_path = PathBuf::from(fs::read_to_string(&marker).expect("read marker"));
    let leftovers: Vec<String> = names_in(&state)
        .into_iter()
        .filter(|n| n.starts_with(".baseline.json.tmp-"))
        .collect();
    assert_eq!(leftovers.len(), 1, "{:?}", names_in(&state));
    assert_eq!(state.join(&leftovers[0]), tmp_path);
    // The old baseline is intact; the temporary one is complete (fsynced) but not it.
    let after = parse_json(&state.join("baseline.json"));
    assert_eq!(after, old, "baseline.json is still the old one");
    let new = parse_json(&tmp_path);
    assert_ne!(new["created_at"].as_f64(), Some(old_ts));
    let (code, text) = show(&state);
    assert_eq!(code, Some(0));
    let shown: Value = serde_json::from_str(&text).expect("JSON");
    assert!(
        same_time(shown["created_at"].as_f64(), Some(old_ts)),
        "{shown:#}"
    );

    // The next agent loads the old baseline and removes the leftover.
    let agent = node.agent();
    let m = agent.metrics();
    let ctx = agent.context(&m);
    assert!(
        same_time(m.baseline_timestamp(), Some(old_ts)),
        "{old_ts}{ctx}"
    );
    assert_eq!(m.baseline_origin("accepted"), Some(1.0), "{ctx}");
    assert_eq!(
        m.node("kubelet_sentinel_baseline_corrupt_total"),
        Some(0.0),
        "{ctx}"
    );
    assert!(
        !tmp_path.exists(),
        "the leftover was removed: {:?}{ctx}",
        names_in(&state)
    );
    assert!(
        !agent
            .logged("removed temporary files of an interrupted write")
            .is_empty(),
        "{ctx}"
    );
    assert_eq!(m.drift("read-only-port-disabled"), None, "{ctx}");
}

/// Regression: serde_json's default float parser is not exact; without its
/// `float_roundtrip` feature about one timestamp in eight was read back one ulp (~2.4e-7 s)
/// off, so `kubelet_sentinel_baseline_timestamp_seconds` changed when the agent restarted
/// or reloaded a baseline, and `baseline show` printed another number than the file holds.
#[test]
fn the_baseline_timestamp_is_read_back_exactly() {
    let node = Node::new();
    accept(&node.root(), &node.state(), NODE);
    let path = node.state().join("baseline.json");
    let text = fs::read_to_string(&path).expect("read baseline");
    // A time that serde_json's default parser reads as 1795725400.823939.
    let exact = "1795725400.8239393";
    let key = "\"created_at\": ";
    let start = text.find(key).expect("created_at") + key.len();
    let end = start
        + text[start..]
            .find([',', '\n'])
            .expect("end of the created_at number");
    fs::write(&path, format!("{}{exact}{}", &text[..start], &text[end..])).expect("write");
    let want: f64 = exact.parse().expect("a float");

    let (code, shown) = show(&node.state());
    assert_eq!(code, Some(0), "{shown}");
    let shown_line = shown
        .lines()
        .find(|l| l.contains(key))
        .unwrap_or_default()
        .trim()
        .to_string();
    let agent = node.agent();
    let m = agent.metrics();
    let reported = m.baseline_timestamp();
    assert!(
        shown.contains(&format!("{key}{exact}")) && reported == Some(want),
        "baseline.json says {exact}; `baseline show` prints {shown_line:?}; the agent reports \
         kubelet_sentinel_baseline_timestamp_seconds {reported:?}"
    );
}

// ---------------------------------------------------------------------------------------
// A real process: the stand-in kubelet
// ---------------------------------------------------------------------------------------

#[cfg(feature = "standin")]
const STANDIN: &str = env!("CARGO_BIN_EXE_kubelet");

/// The stand-in's configuration: loopback listeners on free ports, hardened.
#[cfg(feature = "standin")]
fn write_standin_config(path: &Path, pod_pids_limit: &str) {
    use std::net::TcpListener;

    let ls: Vec<TcpListener> = (0..2)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind"))
        .collect();
    let port = |i: usize| ls[i].local_addr().expect("local addr").port();
    fs::write(
        path,
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
             address: 127.0.0.1\nport: {}\nhealthzBindAddress: 127.0.0.1\nhealthzPort: {}\n\
             readOnlyPort: 0\npodPidsLimit: {pod_pids_limit}\n\
             authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\n\
             authorization:\n  mode: Webhook\n",
            port(0),
            port(1)
        ),
    )
    .expect("write the stand-in's config");
}

/// Start the stand-in with `--config=<config>` and wait until it listens. The command
/// line is the same at every start (same ready-file path).
#[cfg(feature = "standin")]
fn start_standin(dir: &Path, config: &Path) -> Guard {
    let ready = dir.join("standin-ready.json");
    let _ = fs::remove_file(&ready);
    let log_path = dir.join("standin.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("stand-in log");
    let mut g = Guard(
        Command::new(STANDIN)
            .arg(format!("--config={}", config.display()))
            .arg("--standin-ready-file")
            .arg(&ready)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the stand-in kubelet"),
    );
    let deadline = Instant::now() + WAIT;
    while !ready.exists() {
        if let Some(status) = g.0.try_wait().expect("try_wait") {
            panic!(
                "the stand-in exited ({status}):\n{}",
                fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "the stand-in is not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    g
}

/// A live process's start (Unix seconds), as the agent computes it from this host's
/// `/proc/stat` and `/proc/<pid>/stat`.
#[cfg(feature = "standin")]
fn process_start(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after = &stat[stat.rfind(')').expect("comm") + 1..];
    let ticks: u64 = after
        .split_whitespace()
        .nth(19)
        .and_then(|t| t.parse().ok())
        .expect("start time");
    let btime: u64 = fs::read_to_string("/proc/stat")
        .expect("read /proc/stat")
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .expect("btime");
    #[allow(clippy::cast_precision_loss)]
    let start = btime as f64 + ticks as f64 / clock_ticks_per_second() as f64;
    start
}

/// The stand-in kubelet as a real process, on this host's `/proc` (the agent pinned to
/// it with `--kubelet-pid`): its config edited while it runs is pending a restart; after
/// a real restart (new process) a new agent counts the restart from `state.json`, nothing
/// is pending, and the edit is still drift against the surviving baseline.
#[cfg(feature = "standin")]
#[test]
fn a_real_kubelet_edited_then_restarted() {
    let work = tempfile::Builder::new()
        .prefix("drift-test-standin-")
        .tempdir()
        .expect("work dir");
    let config = work.path().join("config.yaml");
    write_standin_config(&config, "2048");
    let first = start_standin(work.path(), &config);
    let pid1 = first.0.id();
    let spec = |pid: u32| AgentSpec {
        root: PathBuf::from("/"),
        state: work.path().join("state"),
        work: work.path().to_path_buf(),
        watch: Some(FAST_WATCH),
        drop_dac: false,
        extra: vec!["--kubelet-pid".into(), pid.to_string().into()],
    };
    let id = "pod-pids-limit-set";
    let agent = spec(pid1).start();
    let m = agent.metrics();
    let ctx = agent.context(&m);
    assert_eq!(m.node("kubelet_sentinel_kubelet_up"), Some(1.0), "{ctx}");
    assert_eq!(
        m.get(
            "kubelet_sentinel_kubelet_info",
            &[("node", NODE), ("config_file", &config.to_string_lossy())]
        ),
        Some(1.0),
        "{ctx}"
    );
    assert_eq!(
        m.pending_restart(),
        Some(0.0),
        "a live host: start time known{ctx}"
    );
    assert_eq!(m.drift(id), None, "{ctx}");
    assert_eq!(m.baseline_origin("first_observation"), Some(1.0), "{ctx}");

    sleep_until(process_start(pid1) + 1.3);
    edit_in_place(&config, "podPidsLimit: 2048", "podPidsLimit: 1024");
    let m = agent.wait_for("pending restart after the edit", |m| {
        m.pending_restart() == Some(1.0) && m.drift(id).is_some()
    });
    let baseline_ts = m.baseline_timestamp().expect("baseline timestamp");
    assert_eq!(
        m.drift(id).as_deref(),
        Some("changed"),
        "{}",
        agent.context(&m)
    );
    agent.stop();

    // A real restart: a new process reads the edited file.
    drop(first);
    let second = start_standin(work.path(), &config);
    let pid2 = second.0.id();
    assert_ne!(pid1, pid2);
    let agent = spec(pid2).start();
    let m = agent.metrics();
    let ctx = agent.context(&m);
    assert_eq!(m.node("kubelet_sentinel_kubelet_up"), Some(1.0), "{ctx}");
    assert_eq!(
        m.changes("restart"),
        Some(1.0),
        "counted from state.json{ctx}"
    );
    assert_eq!(
        m.changes("command_line"),
        Some(0.0),
        "same command line{ctx}"
    );
    assert_eq!(
        m.pending_restart(),
        Some(0.0),
        "the new process has the edit{ctx}"
    );
    assert_eq!(m.drift(id).as_deref(), Some("changed"), "{ctx}");
    assert!(
        same_time(m.baseline_timestamp(), Some(baseline_ts)),
        "the baseline survived (was {baseline_ts}){ctx}"
    );
    drop(second);
}
