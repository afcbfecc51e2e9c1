//! End to end: the built binary serves the bundled example node, and what a scraper sees
//! is checked against golden files, by promtool and by hand.
//!
//! - Runs `kubelet-sentinel serve` on a free loopback port against a copy of
//!   `examples/node` (modes normalised, see [`copy_host_tree`]).
//! - Waits for `/readyz` (bounded), scrapes `/metrics` as Prometheus text 0.0.4 and as
//!   OpenMetrics, normalises the volatile values (timestamps, durations, build version and
//!   revision) and compares with `tests/golden/metrics.prom` and
//!   `tests/golden/metrics.openmetrics`. Regenerate them explicitly with
//!   `UPDATE_GOLDEN=1 cargo test --test e2e_serve`; otherwise a difference fails the test.
//! - Runs `promtool check metrics` on the 0.0.4 body when promtool is on PATH (CI installs
//!   Debian's `prometheus` package); without it the check fails when `CI` is set and is
//!   skipped with a notice otherwise.
//! - Checks `/healthz`, `/` and that SIGTERM stops the agent cleanly.
//!
//! The golden files are recorded as root (as CI runs). File ownership in the copied tree
//! is the test user's, so when not running as root the status series of the `*-ownership`
//! controls are left out of the comparison (with a notice).
//!
//! Only std is used for HTTP (a raw `GET` over `TcpStream`, [`common::http`]): no extra
//! dependencies.
#![allow(unsafe_code)] // libc: the effective uid and SIGTERM to the agent under test

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::http::{dechunk, free_port, get};
use common::process::Guard;
use kubelet_sentinel::model::exposition::{parse_line, Line};

const BIN: &str = env!("CARGO_BIN_EXE_kubelet-sentinel");
const NODE: &str = "e2e-node";
const OPENMETRICS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------------------
// The host tree
// ---------------------------------------------------------------------------------------

/// Top-level manifests of a host tree (the `tests/fixtures` conventions): not host files.
const MANIFESTS: &[&str] = &["modes.txt", "links.txt"];

/// `first rest` lines of a manifest, comments and blank lines skipped.
fn manifest(src: &Path, name: &str) -> Vec<(String, String)> {
    let Ok(text) = fs::read_to_string(src.join(name)) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (a, b) = l
                .split_once(char::is_whitespace)
                .unwrap_or_else(|| panic!("{name}: malformed line {l:?}"));
            (a.to_string(), b.trim().to_string())
        })
        .collect()
}

/// Copy a host tree (symlinks preserved, not followed). Git records only 0644/0755, and
/// a checkout adds the user's umask: group/other write bits are cleared so that the
/// result is the same under umask 022 and 002. The manifests the fixtures under
/// `tests/fixtures` use are honoured: `links.txt` (`link-path target`: symlinks kept out
/// of git) and `modes.txt` (`0600 path`), applied after the copy.
fn copy_host_tree(src: &Path, dst: &Path) {
    fn walk(src: &Path, dst: &Path, top: bool) {
        fs::create_dir_all(dst).unwrap();
        let mut entries: Vec<_> = fs::read_dir(src).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            if top && MANIFESTS.iter().any(|m| e.file_name() == *m) {
                continue;
            }
            let from = e.path();
            let to = dst.join(e.file_name());
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                symlink(fs::read_link(&from).unwrap(), &to).unwrap();
            } else if ft.is_dir() {
                walk(&from, &to, false);
                let mode = fs::metadata(&from).unwrap().permissions().mode() & 0o7755;
                fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
            } else if ft.is_file() {
                fs::copy(&from, &to).unwrap();
                let mode = fs::metadata(&from).unwrap().permissions().mode() & 0o7755;
                fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
            }
        }
    }
    walk(src, dst, true);
    for (link, target) in manifest(src, "links.txt") {
        let at = dst.join(&link);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        symlink(&target, &at).unwrap_or_else(|e| panic!("links.txt: {link} -> {target}: {e}"));
    }
    for (mode, path) in manifest(src, "modes.txt") {
        let bits = u32::from_str_radix(&mode, 8).unwrap();
        fs::set_permissions(dst.join(&path), fs::Permissions::from_mode(bits))
            .unwrap_or_else(|e| panic!("modes.txt: chmod {mode} {path}: {e}"));
    }
}

/// The example node, or any fixture tree when it is missing.
fn example_node() -> PathBuf {
    let example = manifest_dir().join("examples").join("node");
    if example.join("proc").is_dir() {
        return example;
    }
    let fixtures = manifest_dir().join("tests").join("fixtures");
    let mut candidates: Vec<PathBuf> = fs::read_dir(&fixtures)
        .map(|d| {
            d.filter_map(std::result::Result::ok)
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates
        .into_iter()
        .find(|p| p.join("proc").is_dir())
        .unwrap_or_else(|| panic!("neither examples/node nor a tests/fixtures/*/proc tree exists"))
}

// ---------------------------------------------------------------------------------------
// The agent process
// ---------------------------------------------------------------------------------------

/// Kills the agent on every path out of the test (panics included).
struct Agent {
    child: Guard,
    addr: SocketAddr,
    log: PathBuf,
}

impl Agent {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.wait_timeout(timeout)
    }
}

/// Start `serve` and wait until `/readyz` answers 200. A port taken between choosing and
/// binding it is retried with another one.
fn start_agent(host_root: &Path, work: &Path, extra: &[&str]) -> Agent {
    let mut last_log = String::new();
    for attempt in 0..3 {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let log = work.join(format!("agent-{attempt}.log"));
        let log_file = fs::File::create(&log).unwrap();
        let mut cmd = common::agent::agent_command();
        let child = cmd
            .arg("serve")
            .arg("--host-root")
            .arg(host_root)
            .arg("--listen-address")
            .arg(addr.to_string())
            .arg("--node-name")
            .arg(NODE)
            .arg("--interval")
            .arg("30s")
            .arg("--state-dir")
            .arg(work.join("state"))
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let mut agent = Agent {
            child: Guard(child),
            addr,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = agent.child.try_wait().unwrap() {
                last_log = agent.log();
                eprintln!("agent exited early ({status}) on {addr}:\n{last_log}");
                break;
            }
            if let Ok(r) = get(addr, "/readyz", None) {
                if r.status == 200 {
                    return agent;
                }
            }
            assert!(
                Instant::now() < deadline,
                "agent not ready within 20s:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("the agent did not start:\n{last_log}");
}

// ---------------------------------------------------------------------------------------
// Normalisation and comparison
// ---------------------------------------------------------------------------------------

/// Replace what changes from run to run: sample values of timestamps and durations, and
/// the build version and revision labels (checked before they are replaced).
fn normalise(body: &str) -> String {
    const VOLATILE_VALUES: &[(&str, &str)] = &[
        (
            "kubelet_sentinel_last_evaluation_timestamp_seconds",
            "<timestamp>",
        ),
        ("kubelet_sentinel_evaluation_duration_seconds", "<duration>"),
        ("kubelet_sentinel_baseline_timestamp_seconds", "<timestamp>"),
        ("kubelet_sentinel_probe_duration_seconds", "<duration>"),
    ];
    let mut out = String::with_capacity(body.len());
    for line in body.lines() {
        let sample = match parse_line(line) {
            Ok(Line::Sample(s)) => s,
            Ok(_) => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            Err(e) => panic!("{e}: {line}"),
        };
        let mut line = line.to_string();
        if let Some((_, placeholder)) = VOLATILE_VALUES.iter().find(|(n, _)| *n == sample.name) {
            assert!(sample.value.is_finite() && sample.value >= 0.0, "{line}");
            line = format!("{} {placeholder}", sample.series);
        }
        if sample.name == "kubelet_sentinel_build_info" {
            let version = env!("CARGO_PKG_VERSION");
            assert_eq!(sample.label("version"), Some(version), "{line}");
            let revision = sample.label("revision").unwrap_or_default();
            assert!(!revision.is_empty(), "empty revision: {line}");
            line = line
                .replace(&format!("version=\"{version}\""), "version=\"<version>\"")
                .replace(
                    &format!("revision=\"{revision}\""),
                    "revision=\"<revision>\"",
                );
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Without root, the copied files belong to the test user: drop the ownership controls'
/// status series from a comparison.
fn without_ownership_status(body: &str) -> String {
    body.lines()
        .filter(|l| {
            !(l.starts_with("kubelet_sentinel_control_status{") && l.contains("-ownership\""))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Compare with a golden file, or rewrite it under `UPDATE_GOLDEN=1`.
fn check_golden(name: &str, actual: &str) {
    let path = manifest_dir().join("tests").join("golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0") {
        assert!(
            running_as_root(),
            "record golden files as root (like CI), or the *-ownership controls differ"
        );
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        eprintln!("UPDATE_GOLDEN: wrote {}", path.display());
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nrecord it with: UPDATE_GOLDEN=1 cargo test --test e2e_serve",
            path.display()
        )
    });
    let (expected, actual) = if running_as_root() {
        (expected, actual.to_string())
    } else {
        eprintln!(
            "notice: not running as root; {name}: the *-ownership controls' status is not compared"
        );
        (
            without_ownership_status(&expected),
            without_ownership_status(actual),
        )
    };
    if expected != actual {
        let exp: BTreeSet<&str> = expected.lines().collect();
        let act: BTreeSet<&str> = actual.lines().collect();
        let mut report = String::new();
        for l in expected.lines().filter(|l| !act.contains(l)).take(40) {
            report.push_str(&format!("- {l}\n"));
        }
        for l in actual.lines().filter(|l| !exp.contains(l)).take(40) {
            report.push_str(&format!("+ {l}\n"));
        }
        if report.is_empty() {
            report.push_str("(same lines, different order)\n");
        }
        panic!(
            "{name} differs from {} (- golden, + scraped):\n{report}\nIf the change is intended: UPDATE_GOLDEN=1 cargo test --test e2e_serve",
            path.display()
        );
    }
}

/// The sample lines (`name{labels} value`) as written, comments skipped; a malformed line
/// fails the test.
fn samples(body: &str) -> Vec<String> {
    body.lines()
        .filter(|l| match parse_line(l) {
            Ok(line) => matches!(line, Line::Sample(_)),
            Err(e) => panic!("{e}: {l}"),
        })
        .map(str::to_string)
        .collect()
}

fn promtool_check(body: &str) {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "promtool is not on PATH and CI is set (install Debian's `prometheus` package)"
                );
            }
            eprintln!(
                "notice: promtool not found; skipping `promtool check metrics` (apt-get install -y prometheus)"
            );
            return;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

#[test]
fn serve_example_node() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    copy_host_tree(&example_node(), &root);
    let mut agent = start_agent(&root, work.path(), &[]);
    let addr = agent.addr;

    // Liveness, readiness, index.
    let healthz = get(addr, "/healthz", None).unwrap();
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok\n"));
    assert_eq!(get(addr, "/readyz", None).unwrap().status, 200);
    let index = get(addr, "/", None).unwrap();
    assert_eq!(index.status, 200);
    assert!(index.body.contains("/metrics"));

    // Prometheus text 0.0.4 for anything that does not ask for OpenMetrics (curl: `*/*`).
    let text = get(addr, "/metrics", Some("*/*")).unwrap();
    assert_eq!(text.status, 200);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!text.body.contains("# EOF") && !text.body.contains("# UNIT"));
    assert!(
        text.body
            .contains(&format!("kubelet_sentinel_kubelet_up{{node=\"{NODE}\"}} 1")),
        "the example node has a readable kubelet:\n{}",
        agent.log()
    );

    // OpenMetrics, with the header Prometheus sends.
    let om = get(addr, "/metrics", Some(OPENMETRICS_ACCEPT)).unwrap();
    assert_eq!(om.status, 200);
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.body.ends_with("# EOF\n"));
    assert_eq!(om.body.matches("# EOF").count(), 1);

    // Both formats come from the same evaluation: the same samples.
    assert_eq!(
        samples(&text.body),
        samples(om.body.trim_end_matches("# EOF\n"))
    );

    // Issue 16's default page: one status series per control, no control_info, node_info
    // with an empty pool (no API access), at most 150 series.
    let page = samples(&text.body);
    let count = |name: &str| {
        page.iter()
            .filter(|s| s.starts_with(&format!("{name}{{")))
            .count()
    };
    let controls = kubelet_sentinel::evaluate::catalogue().len();
    assert_eq!(count("kubelet_sentinel_control_status"), controls);
    assert_eq!(count("kubelet_sentinel_control_info"), 0);
    assert!(text.body.contains(&format!(
        "kubelet_sentinel_node_info{{node=\"{NODE}\",node_pool=\"\"}} 1\n"
    )));
    assert!(page.len() <= 150, "{} series", page.len());

    promtool_check(&text.body);
    check_golden("metrics.prom", &normalise(&text.body));
    check_golden("metrics.openmetrics", &normalise(&om.body));

    // SIGTERM: graceful shutdown, exit status 0.
    let pid = i32::try_from(agent.child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = agent
        .wait_timeout(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("agent still running 15s after SIGTERM:\n{}", agent.log()));
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        agent.log()
    );
    let log = agent.log();
    assert!(
        log.contains(&format!("http://{addr}/metrics")),
        "the agent logs the URL to open:\n{log}"
    );
}

/// `--metrics-control-states=all --metrics-control-info --metrics-probe-durations`: the
/// full StateSet (every status, the current one 1), the catalogue metadata and one
/// duration per probe (none on the default page), the same active statuses as the default
/// page, and promtool still happy.
#[test]
fn serve_example_node_with_every_control_series() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    copy_host_tree(&example_node(), &root);
    let flags = [
        "--metrics-control-states=all",
        "--metrics-control-info",
        "--metrics-probe-durations",
    ];
    fs::create_dir_all(work.path().join("full")).unwrap();
    fs::create_dir_all(work.path().join("default")).unwrap();
    let full_agent = start_agent(&root, &work.path().join("full"), &flags);
    let default_agent = start_agent(&root, &work.path().join("default"), &[]);
    let full = get(full_agent.addr, "/metrics", Some("*/*")).unwrap().body;
    let default = get(default_agent.addr, "/metrics", Some("*/*"))
        .unwrap()
        .body;
    promtool_check(&full);
    let controls = kubelet_sentinel::evaluate::catalogue().len();
    let status = |body: &str, value: Option<f64>| -> Vec<String> {
        let mut v: Vec<String> = kubelet_sentinel::model::exposition::samples(body)
            .filter(|s| s.name == "kubelet_sentinel_control_status")
            .filter(|s| value.is_none_or(|v| s.value == v))
            .map(|s| s.series.to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(status(&full, None).len(), 4 * controls);
    assert_eq!(status(&full, Some(1.0)).len(), controls);
    assert_eq!(status(&full, Some(1.0)), status(&default, None));
    let info = kubelet_sentinel::model::exposition::samples(&full)
        .filter(|s| s.name == "kubelet_sentinel_control_info")
        .count();
    assert_eq!(info, controls);
    let durations = |body: &str| {
        kubelet_sentinel::model::exposition::samples(body)
            .filter(|s| s.name == "kubelet_sentinel_probe_duration_seconds")
            .count()
    };
    let successes = kubelet_sentinel::model::exposition::samples(&full)
        .filter(|s| s.name == "kubelet_sentinel_probe_success")
        .count();
    assert!(successes > 0);
    assert_eq!(durations(&full), successes);
    assert_eq!(durations(&default), 0);
}

#[test]
fn normalise_replaces_only_volatile_values() {
    let body = format!(
        "# HELP kubelet_sentinel_evaluation_duration_seconds x.\n\
         kubelet_sentinel_evaluation_duration_seconds{{node=\"n\"}} 0.0123\n\
         kubelet_sentinel_last_evaluation_timestamp_seconds{{node=\"n\"}} 1.7e9\n\
         kubelet_sentinel_build_info{{node=\"n\",version=\"{}\",revision=\"abc123\"}} 1\n\
         kubelet_sentinel_kubelet_up{{node=\"n\"}} 1.0\n",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        normalise(&body),
        "# HELP kubelet_sentinel_evaluation_duration_seconds x.\n\
         kubelet_sentinel_evaluation_duration_seconds{node=\"n\"} <duration>\n\
         kubelet_sentinel_last_evaluation_timestamp_seconds{node=\"n\"} <timestamp>\n\
         kubelet_sentinel_build_info{node=\"n\",version=\"<version>\",revision=\"<revision>\"} 1\n\
         kubelet_sentinel_kubelet_up{node=\"n\"} 1.0\n"
    );
    assert_eq!(
        dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").unwrap(),
        b"hello world"
    );
}
