//! The deployment artefacts match the binary they deploy: every flag that `manifests/` and
//! the Helm chart pass to the container, as an arg or as its env twin, exists (and parses)
//! in this crate's command line, every environment variable is a flag's twin (or is
//! substituted into the args or another variable), the image tag and chart versions are
//! the crate's version, the port is the default port, and the pod keeps the security
//! properties the README promises. The settings travel in the pod's environment, not in
//! its args, so that `kubectl exec <pod> -- /kubelet-sentinel check` (or `baseline
//! accept`) runs with exactly the agent's settings: the args are `serve` alone.
//!
//! The chart part reads what `scripts/check-deploy.sh` rendered with the real `helm` into
//! `target/deploy/chart-*.yaml`; without those files (helm not run yet) it is skipped with
//! a note, and the chart's `values.yaml` and `Chart.yaml` are still checked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use kubelet_sentinel::cli::args::{Cli, DEFAULT_HEALTH_PORT, DEFAULT_PORT};
use kubelet_sentinel::evaluate::policy::Policy;
use serde_json::Value;

const IMAGE_REPOSITORY: &str = "ghcr.io/kubelet-sentinel/kubelet-sentinel";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const JOB: &str = "kubelet-sentinel";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_docs(what: &str, text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("{what}: not YAML: {e}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml_doc(rel: &str) -> Value {
    let mut docs = yaml_docs(rel, &read(rel));
    assert_eq!(docs.len(), 1, "{rel}: expected one YAML document");
    docs.remove(0)
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

fn name(v: &Value) -> String {
    format!(
        "{}/{}",
        kind(v),
        v["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    s.as_str()
                        .unwrap_or_else(|| panic!("not a string: {s}"))
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The command line's flags: long name -> (takes a value, env twin), from the root command
/// (global flags) and `serve`.
struct Flags {
    cmd: clap::Command,
}

impl Flags {
    fn new() -> Flags {
        let mut cmd = Cli::command();
        cmd.build();
        Flags { cmd }
    }

    fn serve(&self) -> &clap::Command {
        self.cmd
            .find_subcommand("serve")
            .expect("the binary has a `serve` subcommand")
    }

    fn args(&self) -> impl Iterator<Item = &clap::Arg> {
        self.cmd.get_arguments().chain(self.serve().get_arguments())
    }

    fn find(&self, long: &str) -> Option<&clap::Arg> {
        self.args().find(|a| a.get_long() == Some(long))
    }

    fn env_twins(&self) -> BTreeSet<String> {
        self.args()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }
}

/// `$(NAME)` references (Kubernetes' dependent environment variables) in a string.
fn var_refs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("$(") {
        let after = &rest[i + 2..];
        let Some(j) = after.find(')') else { break };
        out.push(after[..j].to_string());
        rest = &after[j + 1..];
    }
    out
}

/// `s` with each `$(NAME)` for which `value` knows a value replaced by it, as the kubelet
/// expands args and env values; unknown references are left as they are.
fn expand(s: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = s.to_string();
    for r in var_refs(s) {
        if let Some(v) = value(&r) {
            out = out.replace(&format!("$({r})"), &v);
        }
    }
    out
}

/// A plausible value for a variable only known at run time (downward API).
fn sample(var: &str) -> String {
    if var.ends_with("_IP") {
        "10.0.0.1"
    } else {
        "x"
    }
    .to_string()
}

/// One container's configuration as the binary sees it: the flags in its args, and its
/// environment with `$(VAR)`s expanded the way the kubelet does.
struct Config {
    what: String,
    /// Flags given in the args (after `serve`): long name -> value (None for a bare flag).
    from_args: Vec<(String, Option<String>)>,
    /// Env entries in order: name -> value after `$(VAR)` expansion (None: `valueFrom`,
    /// known only at run time).
    env: Vec<(String, Option<String>)>,
    /// Variables referenced by `$(...)` in the args or in another env value.
    referenced: BTreeSet<String>,
}

/// How a container protects `/metrics` (issue 6): HTTPS, and `--metrics-auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Protection {
    tls: bool,
    auth: bool,
}

impl Config {
    fn protection(&self, flags: &Flags) -> Protection {
        let self_signed = self
            .setting(flags, "metrics-tls-self-signed")
            .is_some_and(|v| v == "true");
        let files = self.setting(flags, "metrics-tls-cert").is_some();
        Protection {
            tls: self_signed || files,
            auth: self.setting(flags, "metrics-auth").as_deref() == Some("kubernetes"),
        }
    }
}

impl Config {
    /// The env twin of `--long`, if the container sets it: its expanded value (None when
    /// it comes from `valueFrom`).
    fn env_twin(&self, flags: &Flags, long: &str) -> Option<Option<String>> {
        let twin = flags.find(long)?.get_env()?.to_string_lossy().into_owned();
        self.env
            .iter()
            .find(|(n, _)| *n == twin)
            .map(|(_, v)| v.clone())
    }

    /// What `--long` is set to: the `--long=value` (or `--long value`) arg, else the literal
    /// value of the flag's env twin (after `$(VAR)` substitution); args win over env, as in
    /// clap. `$(VAR)`s of variables known only at run time are left in.
    fn setting(&self, flags: &Flags, long: &str) -> Option<String> {
        if let Some((_, v)) = self.from_args.iter().find(|(l, _)| l == long) {
            let v = v.as_deref().unwrap_or("true");
            return Some(expand(v, |r| self.literal(r)));
        }
        self.env_twin(flags, long).flatten()
    }

    /// `setting`, or a panic naming both ways of passing it.
    fn required(&self, flags: &Flags, long: &str) -> String {
        self.setting(flags, long).unwrap_or_else(|| {
            let twin = flags
                .find(long)
                .and_then(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            panic!(
                "{}: --{long}=... (or its env twin {twin}, with a literal value) is passed",
                self.what
            )
        })
    }

    /// The literal value of an env variable of the container (any position: args see all).
    fn literal(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    }
}

/// Checks one agent DaemonSet (from `what`): flags, env, image, port, security. Returns the
/// container's configuration.
fn check_daemonset(what: &str, ds: &Value, flags: &Flags) -> Config {
    if let Some(v) = ds["metadata"]["labels"]["app.kubernetes.io/version"].as_str() {
        assert_eq!(v, VERSION, "{what}: app.kubernetes.io/version label");
    }
    let pod = &ds["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{what}: one container");
    let c = &containers[0];

    // Image: the crate's version (a digest-pinned image is checked by the repository).
    let image = c["image"].as_str().expect("image");
    if !image.contains('@') {
        assert_eq!(
            image,
            format!("{IMAGE_REPOSITORY}:{VERSION}"),
            "{what}: the image tag must be the crate's version"
        );
    }

    // Env, in order: a `$(VAR)` in a value expands only variables defined earlier in the
    // list (later or unknown ones stay literal text), so each must be one.
    let mut referenced = BTreeSet::new();
    let mut env: Vec<(String, Option<String>)> = Vec::new();
    for e in c["env"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let n = e["name"].as_str().expect("env name").to_string();
        assert!(
            env.iter().all(|(m, _)| *m != n),
            "{what}: env {n} is set twice"
        );
        let value = match e["value"].as_str() {
            Some(v) => {
                for r in var_refs(v) {
                    assert!(
                        env.iter().any(|(m, _)| *m == r),
                        "{what}: env {n} uses $({r}), which is not defined before it in env \
                         (Kubernetes would leave it unexpanded)"
                    );
                    referenced.insert(r);
                }
                Some(expand(v, |r| {
                    env.iter()
                        .find(|(m, _)| m == r)
                        .and_then(|(_, v)| v.clone())
                }))
            }
            None => {
                assert!(
                    e["valueFrom"].is_object(),
                    "{what}: env {n} has neither value nor valueFrom"
                );
                None
            }
        };
        env.push((n, value));
    }
    let env_names: Vec<String> = env.iter().map(|(n, _)| n.clone()).collect();

    // Args: `serve`, then only flags that exist; values substituted as the kubelet would.
    let args = strs(&c["args"]);
    assert_eq!(
        args.first().map(String::as_str),
        Some("serve"),
        "{what}: the args start with the subcommand (the image's ENTRYPOINT is the binary)"
    );
    let mut arg_refs = BTreeSet::new();
    let mut from_args = Vec::new();
    let mut i = 1;
    let mut seen_flags = BTreeSet::new();
    while i < args.len() {
        let arg = &args[i];
        let flag = arg
            .strip_prefix("--")
            .unwrap_or_else(|| panic!("{what}: `{arg}` is not a --flag"));
        let (long, inline_value) = match flag.split_once('=') {
            Some((l, v)) => (l, Some(v)),
            None => (flag, None),
        };
        let def = flags.find(long).unwrap_or_else(|| {
            panic!("{what}: --{long} is not a flag of `kubelet-sentinel serve`")
        });
        assert!(
            seen_flags.insert(long.to_string()),
            "{what}: --{long} given twice"
        );
        let takes_value = def.get_action().takes_values();
        let value = match inline_value {
            Some(v) => Some(v.to_string()),
            None if takes_value && def.get_num_args().is_none_or(|n| n.min_values() > 0) => {
                i += 1;
                Some(
                    args.get(i)
                        .unwrap_or_else(|| panic!("{what}: --{long} needs a value"))
                        .clone(),
                )
            }
            None => None,
        };
        if let Some(v) = &value {
            arg_refs.extend(var_refs(v));
        }
        from_args.push((long.to_string(), value));
        i += 1;
    }
    for r in &arg_refs {
        assert!(
            env_names.contains(r),
            "{what}: $({r}) is used in args but not defined in env"
        );
    }
    referenced.extend(arg_refs);
    let config = Config {
        what: what.to_string(),
        from_args,
        env,
        referenced,
    };

    // The whole configuration parses: the args with $(VAR)s expanded (plausible values for
    // those known only at run time), then every env twin with a literal value as its flag
    // would be (args win over env).
    let run_time = |s: &str| expand(&expand(s, |r| config.literal(r)), |r| Some(sample(r)));
    let substituted = args.iter().map(|a| run_time(a));
    let from_env: Vec<String> = config
        .env
        .iter()
        .filter_map(|(n, value)| {
            let value = value.as_deref()?;
            let def = flags
                .args()
                .find(|a| a.get_env().is_some_and(|v| v == n.as_str()))?;
            let long = def.get_long()?;
            (!seen_flags.contains(long)).then(|| format!("--{long}={}", run_time(value)))
        })
        .collect();
    let argv = std::iter::once("kubelet-sentinel".to_string())
        .chain(substituted)
        .chain(from_env);
    if let Err(e) = Cli::command().try_get_matches_from(argv) {
        panic!("{what}: the container's args (and literal env twins) do not parse: {e}");
    }

    // Env: every variable is a flag's twin, or only feeds a $(VAR) in the args or in
    // another variable.
    let twins = flags.env_twins();
    for n in &env_names {
        assert!(
            twins.contains(n) || config.referenced.contains(n),
            "{what}: env {n} is neither a flag's env twin ({twins:?}) nor used in args or \
             another env value"
        );
    }
    let node_name = c["env"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "NODE_NAME"))
        .unwrap_or_else(|| panic!("{what}: NODE_NAME is set from the downward API"));
    assert_eq!(
        node_name["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName",
        "{what}: NODE_NAME"
    );

    // Port and probes.
    let ports = c["ports"].as_array().expect("ports");
    let metrics = ports
        .iter()
        .find(|p| p["name"] == "metrics")
        .unwrap_or_else(|| panic!("{what}: a container port named metrics"));
    let listen = config.required(flags, "listen-address");
    let listen_port: u64 = listen
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("{what}: --listen-address={listen} has a port"));
    assert_eq!(
        metrics["containerPort"].as_u64(),
        Some(listen_port),
        "{what}: containerPort = the listen port"
    );
    // The probes go to the health listener (plain HTTP, no token), which no metrics client
    // can starve: the port named health is --health-listen-address's, and the probe's
    // host is its address unless it listens on every interface (the kubelet probes from
    // the host's network namespace: with hostNetwork, 127.0.0.1 is the agent's loopback).
    let health_listen = config.required(flags, "health-listen-address");
    let (health_host, health_port) = health_listen
        .rsplit_once(':')
        .and_then(|(h, p)| {
            Some((
                h.trim_matches(['[', ']']).to_string(),
                p.parse::<u64>().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("{what}: --health-listen-address={health_listen} has a port"));
    let health = ports
        .iter()
        .find(|p| p["name"] == "health")
        .unwrap_or_else(|| panic!("{what}: a container port named health"));
    assert_eq!(
        health["containerPort"].as_u64(),
        Some(health_port),
        "{what}: the health containerPort = the health listen port"
    );
    assert_ne!(health_port, listen_port, "{what}: two listeners, two ports");
    // The startup probe waits for the first evaluation (/readyz) before liveness and
    // readiness start (the kubelet holds them back until it succeeds).
    for (probe, path) in [
        ("startupProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{what}: {probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "health", "{what}: {probe}");
        let scheme = c[probe]["httpGet"]["scheme"].as_str().unwrap_or("HTTP");
        assert_eq!(
            scheme, "HTTP",
            "{what}: {probe}: the health listener is plain HTTP"
        );
        let host = c[probe]["httpGet"]["host"].as_str();
        if matches!(health_host.as_str(), "0.0.0.0" | "::") {
            assert_eq!(
                host, None,
                "{what}: {probe}: the pod's IP (every interface)"
            );
        } else {
            assert_eq!(
                host,
                Some(health_host.as_str()),
                "{what}: {probe}: host = the health listener's address"
            );
        }
        assert!(
            c[probe]["httpGet"]["httpHeaders"].is_null(),
            "{what}: {probe}: /healthz and /readyz need no token"
        );
    }
    // Both certificate files or neither, and not with a self-signed certificate.
    let cert = config.setting(flags, "metrics-tls-cert");
    let key = config.setting(flags, "metrics-tls-key");
    assert_eq!(
        cert.is_some(),
        key.is_some(),
        "{what}: --metrics-tls-cert and --metrics-tls-key go together"
    );

    // What docs/safety.md and the brief promise.
    assert_eq!(pod["hostPID"], true, "{what}: hostPID");
    assert_eq!(pod["hostNetwork"], true, "{what}: hostNetwork");
    assert_eq!(
        pod["dnsPolicy"], "ClusterFirstWithHostNet",
        "{what}: dnsPolicy"
    );
    // The API token is mounted exactly when the agent is told to use the API (the Pod
    // Security controls): `--api-access` on with a token, off without one.
    let api_access = c["env"]
        .as_array()
        .and_then(|env| {
            env.iter()
                .find(|e| e["name"] == "KUBELET_SENTINEL_API_ACCESS")
        })
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("{what}: KUBELET_SENTINEL_API_ACCESS is set"));
    assert!(
        matches!(api_access, "on" | "off"),
        "{what}: --api-access is explicit (on or off), not auto: {api_access}"
    );
    assert_eq!(
        pod["automountServiceAccountToken"],
        api_access == "on",
        "{what}: the API token is mounted iff --api-access=on"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
    assert_ne!(sc["privileged"], true, "{what}");
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"], "{what}");
    let added: BTreeSet<String> = strs(&sc["capabilities"]["add"]).into_iter().collect();
    assert_eq!(
        added,
        BTreeSet::from(["SYS_PTRACE".to_string(), "DAC_READ_SEARCH".to_string()]),
        "{what}: only the capabilities the README justifies"
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{what}");

    // --host-root is the read-only mount of the host's /, --state-dir the hostPath state.
    let mounts = c["volumeMounts"].as_array().expect("volumeMounts");
    let volumes = pod["volumes"].as_array().expect("volumes");
    let mount_at = |path: &str| {
        let m = mounts
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("{what}: nothing mounted at {path}"));
        let v = volumes
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap_or_else(|| panic!("{what}: no volume {}", m["name"]));
        (m.clone(), v.clone())
    };
    let (m, v) = mount_at(&config.required(flags, "host-root"));
    assert_eq!(m["readOnly"], true, "{what}: the host is mounted read-only");
    assert_eq!(m["mountPropagation"], "HostToContainer", "{what}");
    assert_eq!(v["hostPath"]["path"], "/", "{what}: the host's root");
    let state_dir = config.required(flags, "state-dir");
    let (m, v) = mount_at(&state_dir);
    assert_ne!(m["readOnly"], true, "{what}: the state dir is writable");
    assert_eq!(
        v["hostPath"]["path"],
        state_dir.as_str(),
        "{what}: state dir"
    );
    assert_eq!(v["hostPath"]["type"], "DirectoryOrCreate", "{what}");
    // --metrics-auth=kubernetes reviews tokens with the API: it needs the API.
    let protection = config.protection(flags);
    if protection.auth {
        assert_eq!(
            api_access, "on",
            "{what}: --metrics-auth=kubernetes needs --api-access=on"
        );
    }
    // A certificate from files: a whole Secret mounted read-only (no subPath, which would
    // never see a rotation), both files in it.
    if let (Some(cert), Some(key)) = (&cert, &key) {
        let dir = Path::new(cert).parent().expect("cert dir");
        assert_eq!(
            Path::new(key).parent(),
            Some(dir),
            "{what}: cert and key in one mount"
        );
        let (m, v) = mount_at(dir.to_str().expect("utf-8 path"));
        assert_eq!(m["readOnly"], true, "{what}: the TLS Secret is read-only");
        assert!(
            m["subPath"].is_null(),
            "{what}: no subPath for the TLS Secret"
        );
        assert!(
            v["secret"]["secretName"].is_string(),
            "{what}: the TLS files come from a Secret"
        );
    }
    if let Some(policy) = config.setting(flags, "policy") {
        let dir = Path::new(&policy)
            .parent()
            .expect("policy dir")
            .to_str()
            .unwrap()
            .to_string();
        let (m, v) = mount_at(&dir);
        assert_eq!(
            m["readOnly"], true,
            "{what}: the policy is mounted read-only"
        );
        assert!(
            v["configMap"]["name"].is_string(),
            "{what}: policy ConfigMap"
        );
    }
    // --cve-feed: a file in a read-only ConfigMap mount (the chart's cveFeed.configMap).
    if let Some(feed) = config.setting(flags, "cve-feed") {
        let dir = Path::new(&feed)
            .parent()
            .expect("CVE feed dir")
            .to_str()
            .unwrap()
            .to_string();
        let (m, v) = mount_at(&dir);
        assert_eq!(
            m["readOnly"], true,
            "{what}: the CVE feed is mounted read-only"
        );
        assert!(
            v["configMap"]["name"].is_string(),
            "{what}: the CVE feed comes from a ConfigMap"
        );
    }
    config
}

/// Both monitors must make the scrape's job label `kubelet-sentinel`: the alert rules and
/// dashboards select on it. They scrape with the scheme the agent speaks and, with
/// `--metrics-auth=kubernetes`, send a bearer token.
fn check_monitor(what: &str, m: &Value, p: Protection) {
    let endpoints = match kind(m) {
        "ServiceMonitor" => &m["spec"]["endpoints"],
        "PodMonitor" => &m["spec"]["podMetricsEndpoints"],
        k => panic!("{what}: not a monitor: {k}"),
    };
    let endpoints = endpoints.as_array().expect("endpoints");
    assert!(!endpoints.is_empty(), "{what}: no endpoints");
    for e in endpoints {
        assert_eq!(
            e["port"], "metrics",
            "{what}: scrape the port named metrics"
        );
        let pins_job = e["relabelings"].as_array().is_some_and(|r| {
            r.iter().any(|r| {
                r["targetLabel"] == "job"
                    && r["replacement"] == JOB
                    && (r["action"].is_null() || r["action"] == "replace")
            })
        });
        let job_label = m["spec"]["jobLabel"].is_string();
        assert!(
            pins_job || job_label,
            "{what}: {} does not set job=\"{JOB}\"",
            name(m)
        );
        let scheme = e["scheme"].as_str().unwrap_or("http");
        assert_eq!(
            scheme,
            if p.tls { "https" } else { "http" },
            "{what}: the scrape scheme vs the agent's TLS ({p:?})"
        );
        if p.tls {
            assert!(
                e["tlsConfig"].is_object(),
                "{what}: HTTPS scrape without tlsConfig"
            );
        }
        let sends_token = e["bearerTokenFile"].is_string()
            || (e["authorization"]["credentials"]["name"].is_string()
                && e["authorization"]["type"].as_str().unwrap_or("Bearer") == "Bearer")
            || e["bearerTokenSecret"]["name"].is_string();
        assert_eq!(
            sends_token, p.auth,
            "{what}: a bearer token is sent iff --metrics-auth=kubernetes ({p:?})"
        );
    }
}

#[test]
fn manifests_daemonset_passes_only_flags_the_binary_has() {
    let flags = Flags::new();
    let ds = yaml_doc("manifests/daemonset.yaml");
    assert_eq!(kind(&ds), "DaemonSet");
    // Every setting is in the pod's environment, none in the args: `kubectl exec <pod> --
    // /kubelet-sentinel check` (or `baseline accept`, `baseline show`) reads the env, not
    // the agent's args, and must run with exactly the agent's settings.
    assert_eq!(
        strs(&ds["spec"]["template"]["spec"]["containers"][0]["args"]),
        ["serve"],
        "manifests/daemonset.yaml: no flag other than the subcommand `serve` in args (pass \
         settings as their KUBELET_SENTINEL_* env twins, which kubectl exec sees)"
    );
    let config = check_daemonset("manifests/daemonset.yaml", &ds, &flags);
    let c = &ds["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["ports"][0]["containerPort"].as_u64(),
        Some(u64::from(DEFAULT_PORT)),
        "manifests: the default port"
    );
    assert_eq!(
        config.setting(&flags, "listen-address"),
        Some(format!("0.0.0.0:{DEFAULT_PORT}")),
        "manifests: listen on the default port"
    );
    assert_eq!(
        config.protection(&flags),
        Protection {
            tls: true,
            auth: true
        },
        "manifests: the default install protects /metrics (HTTPS, --metrics-auth=kubernetes)"
    );
    assert_eq!(
        config.setting(&flags, "health-listen-address"),
        Some(format!("127.0.0.1:{DEFAULT_HEALTH_PORT}")),
        "manifests: the health probes on loopback, the default port"
    );
    for long in [
        "host-root",
        "state-dir",
        "listen-address",
        "health-listen-address",
        "log-format",
        "api-access",
        "metrics-auth",
        "metrics-tls-self-signed",
    ] {
        assert!(
            matches!(config.env_twin(&flags, long), Some(Some(_))),
            "manifests/daemonset.yaml: --{long} is set by its env twin"
        );
    }
}

/// The settings the chart manages itself, each passed as the flag's env twin.
const CHART_SETTINGS: [&str; 11] = [
    "api-access",
    "host-root",
    "state-dir",
    "listen-address",
    "health-listen-address",
    "log-format",
    "log-level",
    "policy",
    "baseline-from-policy",
    "read-running-config",
    "running-config-via-proxy",
];

#[test]
fn manifests_kustomization_lists_every_object_and_monitors_set_the_job() {
    let k = yaml_doc("manifests/kustomization.yaml");
    assert_eq!(k["namespace"], "kubelet-sentinel");
    let resources: BTreeSet<String> = strs(&k["resources"]).into_iter().collect();
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("manifests")).unwrap() {
        let entry = entry.unwrap();
        let n = entry.file_name().to_string_lossy().into_owned();
        if n.ends_with(".yaml") && n != "kustomization.yaml" {
            files.insert(n);
        }
    }
    // prometheusrule.yaml is generated by another script; it must be listed either way.
    files.insert("prometheusrule.yaml".to_string());
    assert_eq!(
        resources, files,
        "manifests/kustomization.yaml resources vs the YAML files next to it"
    );

    let flags = Flags::new();
    let protection = check_daemonset("manifests", &yaml_doc("manifests/daemonset.yaml"), &flags)
        .protection(&flags);
    check_monitor(
        "manifests/servicemonitor.yaml",
        &yaml_doc("manifests/servicemonitor.yaml"),
        protection,
    );
    let pm = yaml_doc("manifests/podmonitor/podmonitor.yaml");
    check_monitor("manifests/podmonitor/podmonitor.yaml", &pm, protection);
    // The PodMonitor's token Secret, its service account and their right to /metrics.
    let component = yaml_doc("manifests/podmonitor/kustomization.yaml");
    assert!(strs(&component["resources"]).contains(&"scraper.yaml".to_string()));
    let scraper = yaml_docs(
        "manifests/podmonitor/scraper.yaml",
        &read("manifests/podmonitor/scraper.yaml"),
    );
    let secret = scraper
        .iter()
        .find(|d| kind(d) == "Secret")
        .expect("scraper.yaml: a token Secret");
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    let pm_ep = &pm["spec"]["podMetricsEndpoints"][0];
    assert_eq!(
        secret["metadata"]["name"],
        pm_ep["authorization"]["credentials"]["name"]
    );
    assert_eq!(secret["metadata"]["namespace"], pm["metadata"]["namespace"]);
    let sa_name = &secret["metadata"]["annotations"]["kubernetes.io/service-account.name"];
    assert!(scraper
        .iter()
        .any(|d| kind(d) == "ServiceAccount" && &d["metadata"]["name"] == sa_name));
    let mut all_rbac = yaml_docs("manifests/rbac.yaml", &read("manifests/rbac.yaml"));
    all_rbac.extend(scraper.iter().cloned());
    assert!(
        readers_of_metrics(&all_rbac).contains(&(
            sa_name.as_str().unwrap_or("").to_string(),
            "kubelet-sentinel".to_string()
        )),
        "the PodMonitor's service account may get /metrics"
    );
    let svc = yaml_doc("manifests/service.yaml");
    assert_eq!(svc["spec"]["clusterIP"], "None", "headless Service");
    assert_eq!(svc["spec"]["ports"][0]["name"], "metrics");
    assert_eq!(
        svc["spec"]["ports"][0]["port"].as_u64(),
        Some(u64::from(DEFAULT_PORT))
    );
    let np = yaml_doc("manifests/networkpolicy.yaml");
    assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], "metrics");
    assert_eq!(
        np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
            ["kubernetes.io/metadata.name"],
        "monitoring"
    );
    // The API token and exactly the RBAC the Pod Security controls use.
    let sa = yaml_doc("manifests/serviceaccount.yaml");
    assert_eq!(sa["automountServiceAccountToken"], true);
    let rbac = yaml_docs("manifests/rbac.yaml", &read("manifests/rbac.yaml"));
    check_rbac(
        "manifests/rbac.yaml",
        &rbac,
        "kubelet-sentinel",
        Some("kubelet-sentinel"),
        &optional_rules(OptionalFeatures {
            metrics_auth: protection.auth,
            ..Default::default()
        }),
    );
    // Prometheus's service account (kube-prometheus; the NetworkPolicy's namespace) may
    // read /metrics: the ServiceMonitor sends its token.
    assert!(readers_of_metrics(&rbac)
        .contains(&("prometheus-k8s".to_string(), "monitoring".to_string())));
}

/// The optional features' components (docs/running-config.md, events): each adds
/// exactly one rule to the agent's ClusterRole and sets the env twin of its flag to
/// `true`; the base manifests grant none of them and turn none on.
#[test]
fn optional_components_add_exactly_their_rule_and_env_twin() {
    let flags = Flags::new();
    for (dir, resource, verb, long) in [
        (
            "running-config",
            "nodes/configz",
            "get",
            "read-running-config",
        ),
        (
            "running-config-via-proxy",
            "nodes/proxy",
            "get",
            "running-config-via-proxy",
        ),
        ("events", "events", "create", "events"),
    ] {
        let what = format!("manifests/{dir}/kustomization.yaml");
        let k = yaml_doc(&what);
        assert_eq!(k["kind"], "Component", "{what}");
        let patches = k["patches"].as_array().expect("patches");
        assert_eq!(patches.len(), 2, "{what}: the rule and the env twin");
        let mut rules = Vec::new();
        let mut env = Vec::new();
        for p in patches {
            let body: Value = serde_saphyr::from_str(p["patch"].as_str().expect("patch"))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            if p["target"]["kind"] == "ClusterRole" {
                assert_eq!(p["target"]["name"], "kubelet-sentinel", "{what}");
                for op in body.as_array().expect("a JSON6902 patch") {
                    assert_eq!(op["op"], "add", "{what}");
                    assert_eq!(op["path"], "/rules/-", "{what}");
                    rules.push((
                        strs(&op["value"]["apiGroups"]),
                        strs(&op["value"]["resources"]),
                        strs(&op["value"]["verbs"]),
                    ));
                }
            } else {
                assert_eq!(body["kind"], "DaemonSet", "{what}");
                for c in body["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .expect("containers")
                {
                    for e in c["env"].as_array().expect("env") {
                        env.push((
                            e["name"].as_str().unwrap_or_default().to_string(),
                            e["value"].as_str().unwrap_or_default().to_string(),
                        ));
                    }
                }
            }
        }
        assert_eq!(
            rules,
            [(
                vec![String::new()],
                vec![resource.to_string()],
                vec![verb.to_string()]
            )],
            "{what}: exactly {verb} on {resource}"
        );
        let twin = flags
            .find(long)
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| panic!("--{long} has no env twin"));
        assert_eq!(env, [(twin, "true".to_string())], "{what}");
    }
    // The base grants neither, and its DaemonSet does not turn the feature on.
    let rbac = read("manifests/rbac.yaml");
    let docs = yaml_docs("manifests/rbac.yaml", &rbac);
    let role = docs
        .iter()
        .find(|d| kind(d) == "ClusterRole")
        .expect("ClusterRole");
    assert!(
        !role["rules"].to_string().contains("nodes/"),
        "manifests/rbac.yaml grants a node subresource"
    );
    assert!(
        rbac.contains("BEGIN running configuration") && rbac.contains("END running configuration"),
        "manifests/rbac.yaml: the delimited running-configuration block"
    );
    assert!(
        !role["rules"].to_string().contains("\"events\""),
        "manifests/rbac.yaml grants events"
    );
    let ds = read("manifests/daemonset.yaml");
    assert!(!ds.contains("KUBELET_SENTINEL_READ_RUNNING_CONFIG"));
    assert!(!ds.contains("KUBELET_SENTINEL_EVENTS"));
}

/// A rule: (apiGroups, resources, verbs).
type Rule = (Vec<String>, Vec<String>, Vec<String>);

fn rule(group: &str, resource: &str, verbs: &[&str]) -> Rule {
    (
        vec![group.to_string()],
        vec![resource.to_string()],
        verbs.iter().map(std::string::ToString::to_string).collect(),
    )
}

/// Which optional features a rendering turns on.
#[derive(Debug, Default, Clone, Copy)]
struct OptionalFeatures {
    events: bool,
    metrics_auth: bool,
    /// --read-running-config: get on nodes/configz.
    running_config: bool,
    /// --running-config-via-proxy: get on nodes/proxy.
    nodes_proxy: bool,
}

/// The rules of optional features, each with whether it must be rendered.
fn optional_rules(on: OptionalFeatures) -> Vec<(Rule, bool)> {
    vec![
        (rule("", "events", &["create"]), on.events),
        (
            rule("authentication.k8s.io", "tokenreviews", &["create"]),
            on.metrics_auth,
        ),
        (rule("", "nodes/configz", &["get"]), on.running_config),
        (rule("", "nodes/proxy", &["get"]), on.nodes_proxy),
    ]
}

/// The service accounts (name, namespace) bound to a ClusterRole that grants `get` on the
/// non-resource URL /metrics.
fn readers_of_metrics(docs: &[Value]) -> BTreeSet<(String, String)> {
    let readers: BTreeSet<String> = docs
        .iter()
        .filter(|d| kind(d) == "ClusterRole")
        .filter(|d| {
            d["rules"].as_array().is_some_and(|rs| {
                rs.iter().any(|r| {
                    strs(&r["nonResourceURLs"]).contains(&"/metrics".to_string())
                        && strs(&r["verbs"]).contains(&"get".to_string())
                })
            })
        })
        .filter_map(|d| d["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    docs.iter()
        .filter(|d| kind(d) == "ClusterRoleBinding")
        .filter(|b| {
            b["roleRef"]["name"]
                .as_str()
                .is_some_and(|n| readers.contains(n))
        })
        .flat_map(|b| b["subjects"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["kind"] == "ServiceAccount")
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_string(),
                s["namespace"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The agent's RBAC: the ClusterRole bound to the agent's ServiceAccount has exactly
/// get/list/watch on pods, namespaces and nodes (core group) and create on
/// subjectaccessreviews, plus each optional feature's rule exactly when it is on (events;
/// tokenreviews with `--metrics-auth=kubernetes`; nodes/configz and nodes/proxy for the
/// running configuration). The only other ClusterRole is the
/// metrics reader (get on /metrics, with the metrics auth only).
fn check_rbac(
    what: &str,
    docs: &[Value],
    sa: &str,
    sa_namespace: Option<&str>,
    optional: &[(Rule, bool)],
) {
    let bindings: Vec<&Value> = docs
        .iter()
        .filter(|d| kind(d) == "ClusterRoleBinding")
        .filter(|b| {
            b["subjects"].as_array().is_some_and(|ss| {
                ss.iter().any(|s| {
                    s["kind"] == "ServiceAccount"
                        && s["name"] == sa
                        && sa_namespace.is_none_or(|ns| s["namespace"] == ns)
                })
            })
        })
        .collect();
    assert_eq!(
        bindings.len(),
        1,
        "{what}: one ClusterRoleBinding for the agent's service account"
    );
    let b = bindings[0];
    assert_eq!(b["roleRef"]["kind"], "ClusterRole", "{what}");
    let role_name = b["roleRef"]["name"].as_str().expect("roleRef name");
    let role = docs
        .iter()
        .find(|d| kind(d) == "ClusterRole" && d["metadata"]["name"] == role_name)
        .unwrap_or_else(|| panic!("{what}: no ClusterRole {role_name}"));
    let mut rules: Vec<(Vec<String>, Vec<String>, Vec<String>)> = role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                strs(&r["apiGroups"]),
                strs(&r["resources"]),
                strs(&r["verbs"]),
            )
        })
        .collect();
    rules.sort();
    let read = ["get", "list", "watch"];
    let mut want = vec![
        rule("", "namespaces", &read),
        rule("", "nodes", &read),
        rule("", "pods", &read),
        rule("authorization.k8s.io", "subjectaccessreviews", &["create"]),
    ];
    want.extend(
        optional
            .iter()
            .filter(|(_, on)| *on)
            .map(|(r, _)| r.clone()),
    );
    want.sort();
    assert_eq!(
        rules, want,
        "{what}: read-only pods, namespaces and nodes, subjectaccessreviews, and each optional feature's rule exactly when it is on"
    );
    // Other ClusterRoles: only the metrics reader, only with the metrics auth.
    let metrics_auth = optional
        .iter()
        .any(|((_, resources, _), on)| *on && resources.iter().any(|r| r == "tokenreviews"));
    let others: Vec<&Value> = docs
        .iter()
        .filter(|d| kind(d) == "ClusterRole" && d["metadata"]["name"] != role_name)
        .collect();
    if metrics_auth {
        assert_eq!(others.len(), 1, "{what}: the metrics reader ClusterRole");
        assert_eq!(
            others[0]["rules"],
            serde_json::json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
            "{what}: the metrics reader may get /metrics, nothing else"
        );
        assert!(
            !readers_of_metrics(docs).is_empty(),
            "{what}: someone may read /metrics"
        );
    } else {
        assert!(
            others.is_empty(),
            "{what}: no other ClusterRole without --metrics-auth=kubernetes"
        );
    }
}

#[test]
fn chart_versions_and_defaults_match_the_crate() {
    let chart = yaml_doc("charts/kubelet-sentinel/Chart.yaml");
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["version"], VERSION, "Chart.yaml version");
    assert_eq!(chart["appVersion"], VERSION, "Chart.yaml appVersion");
    let values = yaml_doc("charts/kubelet-sentinel/values.yaml");
    assert_eq!(values["image"]["repository"], IMAGE_REPOSITORY);
    assert_eq!(
        values["listen"]["port"].as_u64(),
        Some(u64::from(DEFAULT_PORT)),
        "values.yaml listen.port"
    );
    assert_eq!(
        values["health"]["port"].as_u64(),
        Some(u64::from(DEFAULT_HEALTH_PORT)),
        "values.yaml health.port"
    );
    assert_eq!(
        values["health"]["address"], "127.0.0.1",
        "values.yaml health.address: the probes on loopback by default"
    );
    assert_eq!(
        values["baselineFromPolicy"], false,
        "values.yaml baselineFromPolicy: off by default"
    );
    let flags = Flags::new();
    for a in strs(&values["extraArgs"]) {
        let long = a
            .trim_start_matches("--")
            .split('=')
            .next()
            .unwrap()
            .to_string();
        assert!(
            flags.find(&long).is_some(),
            "values.yaml extraArgs: --{long}"
        );
    }
}

/// Files rendered by scripts/check-deploy.sh with the real helm.
fn rendered_charts() -> Vec<PathBuf> {
    let dir = root().join("target/deploy");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("chart-") && n.ends_with(".yaml"))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn rendered_chart_passes_only_flags_the_binary_has() {
    let files = rendered_charts();
    if files.is_empty() {
        println!(
            "note: no target/deploy/chart-*.yaml (run scripts/check-deploy.sh to render the \
             chart with helm); the rendered chart was not checked"
        );
        return;
    }
    let flags = Flags::new();
    let mut daemonsets = 0;
    let mut policies = 0;
    let mut rbac_without_auth = 0;
    for file in &files {
        let what = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(file).unwrap();
        let docs = yaml_docs(&what, &text);
        println!("{what}: {} objects", docs.len());
        let ds: Vec<&Value> = docs.iter().filter(|d| kind(d) == "DaemonSet").collect();
        assert_eq!(ds.len(), 1, "{what}: one DaemonSet");
        let ds_what = format!("{what} {}", name(ds[0]));
        let config = check_daemonset(&ds_what, ds[0], &flags);
        daemonsets += 1;
        // The chart's own settings are env twins (seen by kubectl exec), never args; args
        // are `serve` and the values' extraArgs.
        let has_policy = docs
            .iter()
            .any(|d| kind(d) == "ConfigMap" && d["data"].get("policy.yaml").is_some());
        for long in CHART_SETTINGS {
            assert!(
                config.from_args.iter().all(|(l, _)| l != long),
                "{ds_what}: --{long} is passed in args; the chart sets it as its env twin"
            );
            let expected = long != "policy" || has_policy;
            assert_eq!(
                matches!(config.env_twin(&flags, long), Some(Some(_))),
                expected,
                "{ds_what}: --{long}'s env twin set (with a literal value) = {expected}"
            );
        }
        // apiAccess: the RBAC is rendered exactly when the agent uses the API.
        let has_rbac = docs
            .iter()
            .any(|d| matches!(kind(d), "ClusterRole" | "ClusterRoleBinding"));
        let api = config.setting(&flags, "api-access");
        assert_eq!(
            api.as_deref(),
            Some(if has_rbac { "on" } else { "off" }),
            "{ds_what}: --api-access follows apiAccess.enabled (RBAC rendered: {has_rbac})"
        );
        let protection = config.protection(&flags);
        // runningConfig: nodes/configz exactly when the agent reads /configz, nodes/proxy
        // exactly when it may use the API server's node proxy.
        let reads = config.setting(&flags, "read-running-config").as_deref() == Some("true");
        let proxy = config
            .setting(&flags, "running-config-via-proxy")
            .as_deref()
            == Some("true");
        assert!(
            !proxy || reads,
            "{ds_what}: the proxy route without reading"
        );
        assert!(
            !reads || has_rbac,
            "{ds_what}: reading /configz without RBAC"
        );
        let want_running =
            what.ends_with("chart-all-on.yaml") || what.ends_with("chart-running-config.yaml");
        assert_eq!(reads, want_running, "{ds_what}: runningConfig.enabled");
        assert_eq!(
            proxy,
            what.ends_with("chart-all-on.yaml"),
            "{ds_what}: runningConfig.allowNodesProxy"
        );
        if has_rbac {
            let sa = ds[0]["spec"]["template"]["spec"]["serviceAccountName"]
                .as_str()
                .expect("serviceAccountName");
            let events = config.setting(&flags, "events").as_deref() == Some("true");
            check_rbac(
                &what,
                &docs,
                sa,
                None,
                &optional_rules(OptionalFeatures {
                    events,
                    metrics_auth: protection.auth,
                    running_config: reads,
                    nodes_proxy: proxy,
                }),
            );
            if !protection.auth {
                rbac_without_auth += 1;
            }
        }
        // The chart's defaults protect /metrics.
        if what.ends_with("chart-rendered.yaml") {
            assert_eq!(
                protection,
                Protection {
                    tls: true,
                    auth: true
                },
                "{what}: the default install protects /metrics"
            );
        }
        // The PodMonitor's token Secret is rendered beside it.
        for m in docs.iter().filter(|d| kind(d) == "PodMonitor") {
            if let Some(secret) =
                m["spec"]["podMetricsEndpoints"][0]["authorization"]["credentials"]["name"].as_str()
            {
                assert!(
                    docs.iter()
                        .any(|d| kind(d) == "Secret" && d["metadata"]["name"] == secret),
                    "{what}: the PodMonitor's token Secret {secret} is rendered"
                );
            }
        }
        let from_policy = config.setting(&flags, "baseline-from-policy");
        let want = if what.ends_with("chart-all-on.yaml") {
            "true"
        } else {
            "false"
        };
        assert_eq!(
            from_policy.as_deref(),
            Some(want),
            "{ds_what}: baselineFromPolicy"
        );
        for m in docs
            .iter()
            .filter(|d| matches!(kind(d), "ServiceMonitor" | "PodMonitor"))
        {
            check_monitor(&format!("{what} {}", name(m)), m, protection);
        }
        // The policy ConfigMap the agent gets as --policy is a valid policy.
        for cm in docs
            .iter()
            .filter(|d| kind(d) == "ConfigMap" && d["data"].get("policy.yaml").is_some())
        {
            let text = cm["data"]["policy.yaml"].as_str().expect("policy text");
            if let Err(e) = Policy::from_yaml("policy.yaml", text) {
                panic!("{what} {}: the policy does not load: {e}", name(cm));
            }
            policies += 1;
        }
    }
    // The chart was rendered with RBAC but without the metrics auth at least once, so
    // "the review rules only with --metrics-auth=kubernetes" was checked both ways.
    assert!(
        rbac_without_auth > 0,
        "no rendered chart with apiAccess on and metrics.auth=none"
    );
    println!("checked {daemonsets} rendered DaemonSets, {policies} rendered policies");
}

/// The PrometheusRule that kustomize renders from manifests/ and the one the chart renders
/// with its default values (no extraAlertLabels) carry every rule group of the single source,
/// alerts/kubelet-sentinel.rules.yaml, rule for rule: the recording rules and fleet alerts
/// appended at the end of the file included (the chart's template ranges over the groups).
#[test]
fn rendered_prometheusrules_hold_every_rule_group_of_the_source() {
    let rendered: Vec<PathBuf> = ["chart-rendered.yaml", "kustomize.yaml"]
        .iter()
        .map(|f| root().join("target/deploy").join(f))
        .filter(|p| p.is_file())
        .collect();
    if rendered.is_empty() {
        println!(
            "note: no target/deploy/ (run scripts/check-deploy.sh); the rendered \
             PrometheusRules were not checked"
        );
        return;
    }
    let source = yaml_doc("alerts/kubelet-sentinel.rules.yaml");
    let groups = source["groups"].as_array().expect("groups");
    assert!(
        groups
            .iter()
            .any(|g| g["name"] == "kubelet-sentinel.fleet.rules"),
        "the source has no fleet recording rules"
    );
    for path in rendered {
        let what = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
        let rules: Vec<Value> = yaml_docs(&what, &text)
            .into_iter()
            .filter(|d| kind(d) == "PrometheusRule")
            .collect();
        assert_eq!(rules.len(), 1, "{what}: one PrometheusRule");
        assert_eq!(
            rules[0]["spec"]["groups"].as_array().expect("spec.groups"),
            groups,
            "{what}: its PrometheusRule's groups differ from the source's"
        );
    }
}
