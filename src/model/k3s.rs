//! k3s and RKE2: how they build the kubelet's command line and configuration
//! (k3s-io/k3s `pkg/daemons/agent`, `pkg/util/args.go`, `pkg/configfilearg`; rancher/rke2).
//! Pure rules over what `observe::k3s` read.
//!
//! The kubelet k3s runs (in-process; RKE2: a child process) is built in
//! `startKubelet` (pkg/daemons/agent/agent.go):
//! 1. k3s's own arguments: `kubeletArgs` (< 1.32) or `kubeletArgsAndConfig`
//!    (pkg/daemons/agent/agent_linux.go, ≥ 1.32: most settings moved into the drop-in
//!    `<data-dir>/agent/etc/kubelet.conf.d/00-k3s-defaults.conf`, `--config-dir` names the
//!    directory) — [`kubelet_defaults`];
//! 2. the `kubelet-arg` options, from `config.yaml`, its `config.yaml.d/*.yaml` drop-ins
//!    (pkg/configfilearg/parser.go `readConfigFile`) — [`merge_config`] — then the command
//!    line (the config file's flags are inserted right after the subcommand, so command
//!    line entries come last);
//! 3. `GetArgs(argsMap, extraArgs)` (pkg/util/args.go; pkg/daemons/config/types.go up to
//!    1.32.3, same semantics) — [`get_args`]: a user `key=v` replaces k3s's value,
//!    `key+=v` appends, `key-=v` prepends; the output is sorted by key.
//!
//! Commits read (upstream k3s hashes, pinned by rancher/rke2 go.mod): `37830fe170fa`
//! (1.30), `68fbd1a6b543` (1.32.0), `b9b449ef3c22` (1.32.4), `469d009fb2b4` (main);
//! the change to drop-ins is `6381ae93e7cb` (first in v1.32.0), `--read-only-port=0` as a
//! flag again is k3s-io/k3s#12164 (`097b63e588e3`/`045bb9b9926c`, v1.33.0 / v1.32.4).

use std::collections::BTreeMap;

use crate::model::fix::FlagChange;
use crate::model::flag_origin::{FlagOrigin, OriginHow};
use crate::model::kubelet_config::flags::Flags;

/// The product that runs the kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    /// k3s: the kubelet runs inside the `k3s server`/`k3s agent` process.
    K3s,
    /// RKE2: a separate kubelet process started by `rke2 server`/`rke2 agent`.
    Rke2,
}

impl Product {
    /// `k3s` or `rke2`, as in paths (`/etc/rancher/<name>/config.yaml`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Product::K3s => "k3s",
            Product::Rke2 => "rke2",
        }
    }

    /// The default config file (pkg/cli/cmds `ConfigFlag`: `/etc/rancher/<program>/config.yaml`).
    pub fn default_config_file(&self) -> String {
        format!("/etc/rancher/{}/config.yaml", self.as_str())
    }

    /// The default data dir (pkg/datadir `DefaultDataDir`, root: `/var/lib/rancher/<program>`).
    pub fn default_data_dir(&self) -> String {
        format!("/var/lib/rancher/{}", self.as_str())
    }

    /// The environment variable prefix (`K3S_`, `RKE2_`): `<PREFIX>CONFIG_FILE`,
    /// `<PREFIX>DATA_DIR`, `<PREFIX>NODE_NAME`.
    pub fn env_prefix(&self) -> &'static str {
        match self {
            Product::K3s => "K3S_",
            Product::Rke2 => "RKE2_",
        }
    }
}

/// What is known about a kubelet run by k3s or RKE2.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct K3sKubelet {
    /// k3s or RKE2.
    pub product: Product,
    /// The k3s/RKE2 config file (`/etc/rancher/k3s/config.yaml`, or `--config` /
    /// `K3S_CONFIG_FILE`); its `.d` directory holds the drop-ins.
    pub config_file: String,
    /// Where each kubelet flag came from (k3s default, config.yaml, --kubelet-arg).
    pub origins: Vec<FlagOrigin>,
    /// k3s runs kube-proxy in the same process (RKE2: a static pod): what k3s gives it.
    pub kube_proxy: Option<K3sKubeProxy>,
    /// The release the rules were applied for (`v1.32.4+k3s1`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Settings of the observation that were assumed or could not be told, in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What [`args_with_dropin`] needs to rebuild the kubelet's arguments; `None` when the
    /// k3s configuration could not be read. Holds file texts: never serialised.
    #[serde(skip)]
    pub rebuild: Option<Rebuild>,
}

/// kube-proxy as k3s runs it in-process (pkg/daemons/agent `kubeProxyArgs`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct K3sKubeProxy {
    /// The arguments k3s builds (`key=value`, no dashes), user `kube-proxy-arg` applied.
    pub args: Vec<String>,
    /// Where each argument came from.
    pub origins: Vec<FlagOrigin>,
    /// Why k3s runs no kube-proxy here (`disable-kube-proxy: true` in config.yaml, ...),
    /// with the evidence; `None` when it runs one.
    pub disabled: Option<String>,
}

// ------------------------------------------------------------------ version

/// A k3s/RKE2 release as far as the kubelet's arguments depend on it: `(1, 32, 4)` for
/// `v1.32.4+k3s1`.
pub type Release = (u32, u32, u32);

/// How k3s hands the kubelet its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Before v1.32: everything as flags (`kubeletArgs`).
    Flags,
    /// From v1.32: `--config-dir=<data-dir>/agent/etc/kubelet.conf.d` with k3s's
    /// `00-<program>-defaults.conf` (`kubeletArgsAndConfig`, k3s `6381ae93e7cb`).
    ConfigDir,
}

/// The scheme a release uses.
pub fn scheme_for(release: Release) -> Scheme {
    if (release.0, release.1) >= (1, 32) {
        Scheme::ConfigDir
    } else {
        Scheme::Flags
    }
}

/// Whether k3s passes `--read-only-port=0`. Before 1.32: yes (`kubeletArgs`). 1.32.0–1.32.3:
/// no — the field `ReadOnlyPort: 0` of the drop-in is dropped when marshalled (omitempty)
/// and the kubelet, without `--config`, keeps the flags-only default 10255
/// (k3s-io/k3s#12164, rancher/rke2#8094). From 1.32.4 and 1.33.0 the flag is back
/// (agent_linux.go `kubeletArgsAndConfig`, "note: KubeletConfiguration will omit this
/// field ..."). `None` when the release is unknown and the drop-in scheme is in use.
pub fn passes_read_only_port(release: Option<Release>, scheme: Scheme) -> Option<bool> {
    match (release, scheme) {
        (_, Scheme::Flags) => Some(true),
        (Some((1, 32, p)), Scheme::ConfigDir) => Some(p >= 4),
        (Some(_), Scheme::ConfigDir) => Some(true),
        (None, Scheme::ConfigDir) => None,
    }
}

/// The release in a version string (`v1.32.4+k3s1`, `v1.33.4+rke2r1`, `v1.33.4-rke2r1`).
pub fn parse_release(s: &str) -> Option<Release> {
    let s = s.trim().strip_prefix('v')?;
    let core: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut it = core.split('.').map(|p| p.parse::<u32>().ok());
    let r = (it.next()??, it.next()??, it.next()??);
    (r.0 == 1).then_some(r)
}

// ------------------------------------------------------------------ config.yaml(.d)

/// One value of a k3s option and where it is written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OptValue {
    /// The value as a string (`convert.ToString`).
    pub value: String,
    /// The host path of the file, or `command line`.
    pub file: String,
    /// The 1-based line (0 when unknown).
    pub line: usize,
}

/// The merged k3s config files: the option values in effect, with where each is written
/// (pkg/configfilearg/parser.go `readConfigFile`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct K3sConfig {
    /// Option → its values (a list option has several; a scalar one).
    pub options: BTreeMap<String, Vec<OptValue>>,
    /// The files read, in order.
    pub files: Vec<String>,
    /// Files that could not be used (k3s itself refuses to start with such a file); never
    /// the file's content.
    pub errors: Vec<String>,
}

impl K3sConfig {
    /// Every value of a list option (`kubelet-arg`), in order.
    pub fn list(&self, key: &str) -> &[OptValue] {
        self.options.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The value of a scalar option (the last one written).
    pub fn scalar(&self, key: &str) -> Option<&OptValue> {
        self.options.get(key).and_then(|v| v.last())
    }

    /// A boolean option (`protect-kernel-defaults: true`), Go's `strconv.ParseBool`.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.scalar(key)
            .and_then(|v| crate::model::kubelet_config::flags::parse_go_bool(&v.value))
    }
}

/// A file's text, read by `observe`. Its `Debug` shows the path and the size only: a k3s
/// config file often holds `token:`.
#[derive(Clone, PartialEq, Eq)]
pub struct FileText {
    /// Host path.
    pub path: String,
    /// Content, or why it could not be read.
    pub text: Result<String, String>,
}

impl std::fmt::Debug for FileText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match &self.text {
            Ok(t) => format!("{} bytes", t.len()),
            Err(e) => format!("error: {e}"),
        };
        f.debug_struct("FileText")
            .field("path", &self.path)
            .field("text", &text)
            .finish()
    }
}

/// `convert.ToString` of a YAML scalar (wrangler data/convert): strings as they are,
/// numbers and booleans printed.
fn to_go_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The 1-based line of the `n`-th item (0-based) of the list under top-level `key` (or
/// `key+`) in `text`; the key's own line when the items cannot be told apart (flow style).
fn item_lines(text: &str, key: &str) -> (usize, Vec<usize>) {
    let mut key_line = 0;
    let mut items = Vec::new();
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let top =
            !line.starts_with([' ', '\t']) && !trimmed.is_empty() && !trimmed.starts_with('#');
        if top && !trimmed.starts_with('-') {
            let k = trimmed
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\'']);
            inside = k == key || k.strip_suffix('+') == Some(key);
            if inside {
                key_line = i + 1;
                items.clear();
            }
            continue;
        }
        if inside && trimmed.starts_with('-') {
            items.push(i + 1);
        }
    }
    (key_line, items)
}

/// Merge `config.yaml` and its `.d` drop-ins, in the order given (the file, then the
/// drop-ins by name: `dotDFiles`, `*.yaml`/`*.yml`): for each top-level key a later file
/// replaces the value, `key+:` appends to the list so far (`toSlice`). A file that cannot
/// be read or parsed is an error (k3s refuses to start with it).
pub fn merge_config(files: &[FileText]) -> K3sConfig {
    let mut out = K3sConfig::default();
    for f in files {
        out.files.push(f.path.clone());
        let text = match &f.text {
            Ok(t) => t,
            Err(e) => {
                out.errors.push(format!("{}: {e}", f.path));
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let doc: serde_json::Value = match crate::model::parse::yaml(text) {
            Ok(v) => v,
            Err(e) => {
                out.errors.push(format!("{}: invalid YAML: {e}", f.path));
                continue;
            }
        };
        let map = match doc {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => continue,
            _ => {
                out.errors
                    .push(format!("{}: not a mapping at the top level", f.path));
                continue;
            }
        };
        for (raw_key, v) in map {
            let append = raw_key.ends_with('+');
            let key = raw_key.trim_end_matches('+').to_string();
            let (key_line, lines) = item_lines(text, &key);
            let values: Vec<OptValue> = match &v {
                serde_json::Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| OptValue {
                        value: to_go_string(item),
                        file: f.path.clone(),
                        line: lines.get(i).copied().unwrap_or(key_line),
                    })
                    .collect(),
                scalar => {
                    let s = to_go_string(scalar);
                    // toSlice: an empty non-string scalar appends nothing.
                    if append && s.trim().is_empty() && !scalar.is_string() {
                        Vec::new()
                    } else {
                        vec![OptValue {
                            value: s,
                            file: f.path.clone(),
                            line: key_line,
                        }]
                    }
                }
            };
            let entry = out.options.entry(key).or_default();
            if append {
                entry.extend(values);
            } else {
                *entry = values;
            }
        }
    }
    out
}

// ------------------------------------------------------------------ command line

/// The words of the effective `ExecStart=` of a systemd unit's text and its drop-ins (in
/// load order), read with systemd's rules (`model::systemd`: continuation lines, comments,
/// an empty assignment resets, quoting and escapes, the `-@+!:` prefixes), each with the
/// 1-based line of the file it is on. `$VAR` is not expanded: k3s's installer writes the
/// flags literally (install.sh `create_systemd_service_file`). `None` when the unit has no
/// `ExecStart=` or systemd would refuse it.
pub fn exec_start_words(units: &[(String, String)]) -> Option<(String, Vec<(String, usize)>)> {
    let service = crate::model::systemd::load_service("", units);
    if !service.errors.is_empty() {
        return None;
    }
    let exec = service.exec?;
    let text = units
        .iter()
        .find(|(path, _)| *path == exec.file)
        .map_or("", |(_, t)| t.as_str());
    let words: Vec<(String, usize)> = exec
        .tokens
        .iter()
        .skip(exec.argv0)
        .map(|t| (t.text.clone(), exec.assignment.line_of(text, t.raw.start)))
        .collect();
    (!words.is_empty()).then(|| (exec.file.clone(), words))
}

/// The k3s/rke2 command line as the unit gives it: the subcommand and the options after
/// it, each with its line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommandLine {
    /// The unit file the `ExecStart=` is in.
    pub file: String,
    /// `server` or `agent`.
    pub subcommand: String,
    /// Option → its values, in order (`kubelet-arg`, `config`, `data-dir`, ...).
    pub options: BTreeMap<String, Vec<OptValue>>,
}

/// Short option names of `k3s server`/`agent` (pkg/cli/cmds) that matter here.
fn long_name(name: &str) -> &str {
    match name {
        "c" => "config",
        "d" => "data-dir",
        "i" => "node-ip",
        other => other,
    }
}

/// Options that take no value (urfave/cli `BoolFlag`) among those read here.
fn is_bool_option(name: &str) -> bool {
    matches!(
        name,
        "protect-kernel-defaults"
            | "disable-kube-proxy"
            | "disable-agent"
            | "with-node-id"
            | "disable-cloud-controller"
            | "rootless"
            | "debug"
    )
}

/// Parse the k3s/rke2 argv after the program (`server --kubelet-arg=a=b ...`).
pub fn parse_command_line(file: &str, words: &[(String, usize)]) -> Option<CommandLine> {
    let mut it = words.iter().skip(1).peekable();
    let (sub, _) = it.next()?;
    if sub != "server" && sub != "agent" {
        return None;
    }
    let mut out = CommandLine {
        file: file.to_string(),
        subcommand: sub.clone(),
        options: BTreeMap::new(),
    };
    while let Some((w, line)) = it.next() {
        let Some(stripped) = w.strip_prefix("--").or_else(|| w.strip_prefix('-')) else {
            continue;
        };
        let (name, value) = match stripped.split_once('=') {
            Some((n, v)) => (long_name(n).to_string(), v.to_string()),
            None => {
                let n = long_name(stripped).to_string();
                if is_bool_option(&n) {
                    (n, "true".to_string())
                } else {
                    match it.next() {
                        Some((v, _)) => (n, v.clone()),
                        None => (n, String::new()),
                    }
                }
            }
        };
        out.options.entry(name).or_default().push(OptValue {
            value,
            file: file.to_string(),
            line: *line,
        });
    }
    Some(out)
}

// ------------------------------------------------------------------ settings

/// The k3s options that decide the kubelet's arguments, resolved as urfave/cli does:
/// command line, then config files, then the environment, then the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// k3s or RKE2.
    pub product: Product,
    /// `server` or `agent`.
    pub subcommand: String,
    /// The release, when known.
    pub release: Option<Release>,
    /// How k3s passes the settings (from the release, or from the files seen).
    pub scheme: Scheme,
    /// `--data-dir` (the agent's files are under `<data-dir>/agent`).
    pub data_dir: String,
    /// The node name k3s registers (`--node-name`, `K3S_NODE_NAME`, else the host name).
    pub node_name: Option<String>,
    /// `--node-ip`, when configured (else k3s detects one at start).
    pub node_ip: Option<String>,
    /// `--protect-kernel-defaults` (also RKE2 `profile: cis`).
    pub protect_kernel_defaults: bool,
    /// `--node-label` entries.
    pub node_labels: Vec<String>,
    /// `--disable-cloud-controller` (no `--cloud-provider=external`).
    pub disable_ccm: bool,
    /// `--disable-kube-proxy`.
    pub disable_kube_proxy: bool,
    /// `kubelet-arg` entries: config files first, then the command line.
    pub kubelet_args: Vec<(OptValue, OriginHow)>,
    /// `kube-proxy-arg` entries: config files first, then the command line.
    pub kube_proxy_args: Vec<(OptValue, OriginHow)>,
}

/// One argument k3s sets itself: `key`, its value (`None`: detected at start, unknown
/// here) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultArg {
    /// Flag name without dashes.
    pub key: String,
    /// The value, when it can be known from the files.
    pub value: Option<String>,
}

fn d(key: &str, value: impl Into<String>) -> DefaultArg {
    DefaultArg {
        key: key.to_string(),
        value: Some(value.into()),
    }
}

/// The kubelet arguments k3s sets itself (`argsMap`; agent_linux.go `kubeletArgs` < 1.32,
/// `kubeletArgsAndConfig` ≥ 1.32), for the settings the files decide. Values detected at
/// start (node IP, containerd socket, cgroups) are listed with `None`. `read-only-port` is
/// left out when [`passes_read_only_port`] cannot tell.
pub fn kubelet_defaults(o: &Options) -> Vec<DefaultArg> {
    let agent = format!("{}/agent", o.data_dir.trim_end_matches('/'));
    let mut out = vec![d("kubeconfig", format!("{agent}/kubelet.kubeconfig"))];
    if passes_read_only_port(o.release, o.scheme) == Some(true) {
        out.push(d("read-only-port", "0"));
    }
    if let Some(n) = &o.node_name {
        out.push(d("hostname-override", n.clone()));
    }
    if !o.disable_ccm {
        out.push(d("cloud-provider", "external"));
    }
    out.push(DefaultArg {
        key: "node-ip".to_string(),
        value: o.node_ip.clone(),
    });
    out.push(DefaultArg {
        key: "containerd".to_string(),
        value: None,
    });
    out.push(DefaultArg {
        key: "runtime-cgroups".to_string(),
        value: None,
    });
    out.push(d("node-labels", o.node_labels.join(",")));
    match o.scheme {
        Scheme::ConfigDir => {
            out.push(d("config-dir", format!("{agent}/etc/kubelet.conf.d")));
        }
        Scheme::Flags => {
            out.extend([
                d("healthz-bind-address", "127.0.0.1"),
                d("cluster-domain", "cluster.local"),
                d("eviction-hard", "imagefs.available<5%,nodefs.available<5%"),
                d(
                    "eviction-minimum-reclaim",
                    "imagefs.available=10%,nodefs.available=10%",
                ),
                d("fail-swap-on", "false"),
                d("authentication-token-webhook", "true"),
                d("anonymous-auth", "false"),
                d("authorization-mode", "Webhook"),
                d("client-ca-file", format!("{agent}/client-ca.crt")),
                d("tls-cert-file", format!("{agent}/serving-kubelet.crt")),
                d(
                    "tls-private-key-file",
                    format!("{agent}/serving-kubelet.key"),
                ),
                d("pod-manifest-path", format!("{agent}/pod-manifests")),
                d("serialize-image-pulls", "false"),
            ]);
            if o.protect_kernel_defaults {
                out.push(d("protect-kernel-defaults", "true"));
            }
        }
    }
    out
}

/// One argument of the kubelet argv k3s builds, with its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltArg {
    /// Flag name without dashes.
    pub key: String,
    /// The value (`None`: k3s detects it at start).
    pub value: Option<String>,
    /// Where it comes from.
    pub origin: FlagOrigin,
}

/// `GetArgs(initialArgs, extraArgs)` (k3s pkg/util/args.go): a user `key=v` replaces k3s's
/// value (every earlier user value is kept: repeated flags), `key+=v` emits k3s's value,
/// the earlier user values, then `v`; `key-=v` emits `v`, k3s's value, then the earlier
/// user values. Keys are sorted; repeated keys keep their order. A user argument without
/// `=` has the value `true`.
pub fn get_args(initial: &[BuiltArg], extra: &[(OptValue, OriginHow)]) -> Vec<BuiltArg> {
    let mut initial: BTreeMap<String, BuiltArg> =
        initial.iter().map(|a| (a.key.clone(), a.clone())).collect();
    let mut multi: BTreeMap<String, Vec<BuiltArg>> = BTreeMap::new();
    for (opt, how) in extra {
        let unsplit = opt.value.strip_prefix("--").unwrap_or(&opt.value);
        let (arg, value) = match unsplit.split_once('=') {
            Some((a, v)) => (a, v.to_string()),
            None => (unsplit, "true".to_string()),
        };
        let cleaned = arg.trim_end_matches(['-', '+']).to_string();
        let user = BuiltArg {
            key: cleaned.clone(),
            value: Some(value.clone()),
            origin: FlagOrigin {
                flag: cleaned.clone(),
                value,
                file: opt.file.clone(),
                line: opt.line,
                how: how.clone(),
            },
        };
        let init = initial.remove(&cleaned);
        let existing = multi.remove(&cleaned).unwrap_or_default();
        let mut new = Vec::new();
        if arg.ends_with('+') {
            new.extend(init);
            new.extend(existing);
            new.push(user);
        } else if arg.ends_with('-') {
            new.push(user);
            new.extend(init);
            new.extend(existing);
        } else {
            new.extend(existing);
            new.push(user);
        }
        multi.insert(cleaned, new);
    }
    for (k, v) in initial {
        multi.insert(k, vec![v]);
    }
    multi.into_values().flatten().collect()
}

/// k3s's own arguments as [`BuiltArg`]s (origin [`OriginHow::K3sDefault`]).
pub fn default_args(defaults: &[DefaultArg]) -> Vec<BuiltArg> {
    defaults
        .iter()
        .map(|a| BuiltArg {
            key: a.key.clone(),
            value: a.value.clone(),
            origin: FlagOrigin {
                flag: a.key.clone(),
                value: a.value.clone().unwrap_or_default(),
                file: String::new(),
                line: 0,
                how: OriginHow::K3sDefault,
            },
        })
        .collect()
}

/// RKE2's arguments before k3s's (rke2 pkg/executor/staticpod/staticpod.go
/// `(*StaticPodConfig).Kubelet`, pkg/podexecutor up to v1.33): they come first, so a later
/// flag of the same name wins.
pub fn rke2_prefix() -> Vec<BuiltArg> {
    default_args(&[
        d("volume-plugin-dir", "/var/lib/kubelet/volumeplugins"),
        d("file-check-frequency", "5s"),
        d("sync-frequency", "30s"),
    ])
}

/// `extractConfigArgs` (pkg/daemons/agent/agent.go, ≥ 1.32): `config=` and `config-dir=`
/// user arguments are removed from the kubelet's arguments (the files are copied into the
/// drop-in directory as `10-cli-config.conf` / `20-cli-config-dir/`). Returns the
/// remaining arguments and the removed ones.
pub fn extract_config_args(
    extra: &[(OptValue, OriginHow)],
    scheme: Scheme,
) -> (Vec<(OptValue, OriginHow)>, Vec<OptValue>) {
    if scheme == Scheme::Flags {
        return (extra.to_vec(), Vec::new());
    }
    let mut keep = Vec::new();
    let mut removed = Vec::new();
    for (o, how) in extra {
        let unsplit = o.value.strip_prefix("--").unwrap_or(&o.value);
        let name = unsplit.split_once('=').map(|(n, _)| n).unwrap_or(unsplit);
        if name == "config" || name == "config-dir" {
            removed.push(o.clone());
        } else {
            keep.push((o.clone(), how.clone()));
        }
    }
    (keep, removed)
}

/// The kubelet arguments k3s builds for these options, each with its origin, in the order
/// of the kubelet's command line (RKE2's fixed prefix first).
pub fn kubelet_args(o: &Options) -> Vec<BuiltArg> {
    let (extra, _) = extract_config_args(&o.kubelet_args, o.scheme);
    let built = get_args(&default_args(&kubelet_defaults(o)), &extra);
    match o.product {
        Product::K3s => built,
        Product::Rke2 => {
            let mut v = rke2_prefix();
            v.extend(built);
            v
        }
    }
}

/// The argv (`--key=value`) of built arguments, leaving out those whose value is not known.
pub fn argv(args: &[BuiltArg]) -> Vec<String> {
    args.iter()
        .filter_map(|a| a.value.as_ref().map(|v| format!("--{}={v}", a.key)))
        .collect()
}

/// The origins of the built arguments whose value is known.
pub fn origins(args: &[BuiltArg]) -> Vec<FlagOrigin> {
    args.iter()
        .filter(|a| a.value.is_some())
        .map(|a| a.origin.clone())
        .collect()
}

/// The kube-proxy arguments k3s builds in-process (agent_linux.go `kubeProxyArgs`, same in
/// 1.28 → main) with the user's `kube-proxy-arg` through `GetArgs`. `None` when
/// `disable-kube-proxy` is set (k3s then starts no kube-proxy: pkg/agent/run.go).
pub fn kube_proxy_args(o: &Options) -> K3sKubeProxy {
    let agent = format!("{}/agent", o.data_dir.trim_end_matches('/'));
    let v6 = o.node_ip.as_deref().is_some_and(|ip| ip.contains(':'));
    let mut defaults = vec![
        d("proxy-mode", "iptables"),
        d("healthz-bind-address", if v6 { "::1" } else { "127.0.0.1" }),
        d("kubeconfig", format!("{agent}/kubeproxy.kubeconfig")),
        DefaultArg {
            key: "cluster-cidr".to_string(),
            value: None,
        },
        d("conntrack-max-per-core", "0"),
        d("conntrack-tcp-timeout-established", "0s"),
        d("conntrack-tcp-timeout-close-wait", "0s"),
    ];
    if let Some(n) = &o.node_name {
        defaults.push(d("hostname-override", n.clone()));
    }
    let built = get_args(&default_args(&defaults), &o.kube_proxy_args);
    K3sKubeProxy {
        args: built
            .iter()
            .filter_map(|a| a.value.as_ref().map(|v| format!("{}={v}", a.key)))
            .collect(),
        origins: origins(&built),
        disabled: o
            .disable_kube_proxy
            .then(|| "disable-kube-proxy is set: k3s starts no kube-proxy".to_string()),
    }
}

/// What the node says outside k3s's own files.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFacts<'a> {
    /// `K3S_*`/`RKE2_*` variables of the unit's environment (only those k3s reads here).
    pub env: Option<&'a BTreeMap<String, String>>,
    /// The host name (`/etc/hostname`).
    pub hostname: Option<&'a str>,
    /// `/etc/rancher/node/id` (for `--with-node-id`).
    pub node_id: Option<&'a str>,
}

/// Resolve the options from the command line, the merged config files and the
/// environment (urfave/cli: command line > config file > environment > default; the
/// config file's values are command line flags inserted after the subcommand, so for a
/// list option both count: config first).
pub fn resolve_options(
    product: Product,
    cli: &CommandLine,
    config: &K3sConfig,
    host: &HostFacts<'_>,
    release: Option<Release>,
    scheme: Scheme,
) -> Options {
    let scalar = |key: &str| -> Option<String> {
        cli.options
            .get(key)
            .and_then(|v| v.last())
            .or_else(|| config.scalar(key))
            .map(|v| v.value.clone())
    };
    let boolean = |key: &str| -> bool {
        scalar(key)
            .and_then(|v| crate::model::kubelet_config::flags::parse_go_bool(&v))
            .unwrap_or(false)
    };
    let (env, hostname, node_id) = (host.env, host.hostname, host.node_id);
    let env_get = |name: &str| {
        env?.get(&format!("{}{name}", product.env_prefix()))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let list = |key: &str| -> Vec<(OptValue, OriginHow)> {
        config
            .list(key)
            .iter()
            .map(|v| (v.clone(), OriginHow::K3sConfigArg))
            .chain(
                cli.options
                    .get(key)
                    .into_iter()
                    .flatten()
                    .map(|v| (v.clone(), OriginHow::K3sCommandLine)),
            )
            .collect()
    };
    let data_dir = scalar("data-dir")
        .or_else(|| env_get("DATA_DIR"))
        .unwrap_or_else(|| product.default_data_dir());
    // pkg/util/net.go `GetHostnameAndIPs`: the node name (else the host name) is
    // lowercased; `--with-node-id` appends `-<id>` of `/etc/rancher/node/id`
    // (pkg/agent/config/config.go `ensureNodeID`): unknown without that file.
    let name = scalar("node-name")
        .or_else(|| env_get("NODE_NAME"))
        .or_else(|| hostname.map(str::to_string))
        .map(|n| n.to_lowercase());
    let node_name = if boolean("with-node-id") {
        name.zip(node_id).map(|(n, id)| format!("{n}-{id}"))
    } else {
        name
    };
    let mut node_labels: Vec<String> = config
        .list("node-label")
        .iter()
        .map(|v| v.value.clone())
        .collect();
    node_labels.extend(
        cli.options
            .get("node-label")
            .into_iter()
            .flatten()
            .map(|v| v.value.clone()),
    );
    // RKE2 `profile: cis` sets protect-kernel-defaults (pkg/cli/cmds/profile_linux.go).
    let cis = product == Product::Rke2
        && scalar("profile").is_some_and(|p| p == "cis" || p.starts_with("cis-"));
    Options {
        product,
        subcommand: cli.subcommand.clone(),
        release,
        scheme,
        data_dir,
        node_name,
        node_ip: scalar("node-ip"),
        protect_kernel_defaults: boolean("protect-kernel-defaults") || cis,
        node_labels,
        disable_ccm: boolean("disable-cloud-controller"),
        disable_kube_proxy: boolean("disable-kube-proxy"),
        kubelet_args: list("kubelet-arg"),
        kube_proxy_args: list("kube-proxy-arg"),
    }
}

/// Read `VAR=value` assignments of an environment file (systemd.exec(5)
/// `EnvironmentFile=`) for the variables in `wanted` only; quotes removed. Values are
/// never logged (the file holds `K3S_TOKEN`).
pub fn env_file_values(text: &str, wanted: &[&str], into: &mut BTreeMap<String, String>) {
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if !wanted.contains(&k) {
            continue;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v);
        into.insert(k.to_string(), v.to_string());
    }
}

// ------------------------------------------------------------------ fix

/// The text of a k3s/RKE2 `config.yaml.d` drop-in that adds `args` (`key=value`, without
/// dashes) to the kubelet's arguments with `kubelet-arg+:` (a plain `kubelet-arg:` would
/// replace the list of every earlier file). `args` pairs each argument with the controls it
/// is for, named in a comment. Values are written as YAML double-quoted strings (so
/// `true`/`0` stay strings, as `convert.ToString` would make them anyway).
pub fn fix_config_dropin(args: &[(String, Vec<String>)]) -> String {
    let mut out = String::from(
        "# Written by kubelet-sentinel fix: appended to the kubelet's arguments (kubelet-arg+),\n# after those of config.yaml and earlier config.yaml.d files.\nkubelet-arg+:\n",
    );
    for (arg, controls) in args {
        let quoted = serde_json::to_string(arg).unwrap_or_else(|_| format!("\"{arg}\""));
        out.push_str(&format!("  # {}\n  - {quoted}\n", controls.join(", ")));
    }
    out
}

/// The state [`args_with_dropin`] rebuilds the kubelet's arguments from: the options as
/// observed, with the config files' texts (so one can be added).
#[derive(Debug, Clone, PartialEq)]
pub struct Rebuild {
    /// The options without the config files' `kubelet-arg`/`kube-proxy-arg` (command line,
    /// environment and defaults applied).
    pub options: Options,
    /// The command line's `kubelet-arg` entries.
    pub cli_kubelet_args: Vec<OptValue>,
    /// The config file (`config.yaml`), whose `.d` directory a drop-in goes to.
    pub config_file: String,
    /// config.yaml and its drop-ins as read, in k3s's order.
    pub config_files: Vec<FileText>,
}

impl Rebuild {
    /// The kubelet arguments for these config files (plus `extra` at its sorted place).
    pub fn build(&self, extra: Option<&FileText>) -> Result<Vec<BuiltArg>, String> {
        let mut files = self.config_files.clone();
        if let Some(x) = extra {
            let dir = format!("{}.d/", self.config_file_base());
            if !x.path.starts_with(&dir) {
                return Err(format!("{} is not in {dir}", x.path));
            }
            files.retain(|f| f.path != x.path);
            // The main file first, then the drop-ins by name (os.ReadDir order).
            let pos = files
                .iter()
                .position(|f| f.path.starts_with(&dir) && f.path.as_str() > x.path.as_str())
                .unwrap_or(files.len());
            files.insert(pos, x.clone());
        }
        let merged = merge_config(&files);
        if !merged.errors.is_empty() {
            return Err(merged.errors.join("; "));
        }
        let mut o = self.options.clone();
        o.kubelet_args = merged
            .list("kubelet-arg")
            .iter()
            .map(|v| (v.clone(), OriginHow::K3sConfigArg))
            .chain(
                self.cli_kubelet_args
                    .iter()
                    .map(|v| (v.clone(), OriginHow::K3sCommandLine)),
            )
            .collect();
        Ok(kubelet_args(&o))
    }

    fn config_file_base(&self) -> String {
        self.config_file.clone()
    }
}

/// The kubelet argv (without the program) k3s would build with an extra
/// `config.yaml.d/<name>` file holding `text` — the proof that a [`fix_config_dropin`]
/// realises the intended flag changes. `Err` when the kubelet is not run by k3s/RKE2 as
/// observed (no rebuild state) or a file does not parse.
pub fn args_with_dropin(k: &K3sKubelet, name: &str, text: &str) -> Result<Vec<String>, String> {
    let r = k
        .rebuild
        .as_ref()
        .ok_or_else(|| "the k3s configuration was not fully read".to_string())?;
    if name.contains('/') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
        return Err(format!(
            "{name}: a config.yaml.d drop-in is a *.yaml or *.yml file name"
        ));
    }
    let path = format!("{}.d/{name}", k.config_file);
    let extra = FileText {
        path,
        text: Ok(text.to_string()),
    };
    Ok(argv(&r.build(Some(&extra))?))
}

/// The changes an argv does not realise: a `Set` whose flag's last value differs, a
/// `Remove` whose flag is still there. Used with [`args_with_dropin`] to prove a k3s fix.
pub fn unrealised(argv: &[String], changes: &[FlagChange]) -> Vec<FlagChange> {
    let flags = Flags::parse(argv);
    changes
        .iter()
        .filter(|c| match c {
            FlagChange::Set { flag, value } => flags.last(flag) != Some(value.as_str()),
            FlagChange::Remove { flag } => flags.has(flag),
        })
        .cloned()
        .collect()
}

/// The `--kubelet-arg` entries of the k3s/rke2 command line (the unit's `ExecStart=`) that
/// set `flag`: no config file can beat them, so a fix must remove them from the unit.
pub fn command_line_conflicts<'a>(k: &'a K3sKubelet, flag: &str) -> Vec<&'a FlagOrigin> {
    k.origins
        .iter()
        .filter(|o| o.flag == flag && o.how == OriginHow::K3sCommandLine)
        .collect()
}

/// The effective value (last wins) of `flag` in an argv of `--key=value` words.
pub fn last_value(argv: &[String], flag: &str) -> Option<String> {
    Flags::parse(argv).last(flag).map(str::to_string)
}

#[cfg(test)]
mod tests;
