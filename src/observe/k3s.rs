//! k3s and RKE2 on the host: the files their kubelet's arguments are built from (the
//! unit's `ExecStart=`, its environment files, `/etc/rancher/<program>/config.yaml` and
//! `config.yaml.d/`), read through [`HostRoot`] with size caps; the rules are in
//! model/k3s.rs.
//!
//! k3s rewrites its process title (pkg/cli/server/server.go `run`,
//! pkg/cli/agent/agent.go `Run`: `proctitle.SetProcTitle(os.Args[0] + " server")`, through
//! erikdubbelboer/gspt, which wipes the original argv), so `/proc/<pid>/cmdline` holds no
//! flag: they are rebuilt from root-owned files only — a pod cannot forge them. Nothing
//! read here (env files hold `K3S_TOKEN`, config.yaml often `token:`) goes into an error,
//! a log or the snapshot, except the kubelet-relevant values k3s turns into flags.

use std::collections::BTreeMap;

use super::process::{self, ProcInfo};
use crate::io::host::{host_join, HostRoot};
use crate::model::flag_origin::{FlagOrigin, OriginHow};
use crate::model::k3s::{self as rules, FileText, K3sKubelet, Product, Release, Scheme};
use crate::model::snapshot::{FileObservation, FileRole};

/// The most of a k3s config file, env file or unit read.
const TEXT_CAP: u64 = 1024 * 1024;
/// The most `config.yaml.d` entries read.
const MAX_DROPINS: usize = 256;

/// What the observation of a k3s/RKE2 kubelet gives `observe::kubelet`.
pub(super) struct Observed {
    /// The kubelet's arguments (without the program), rebuilt (k3s) or as read (RKE2).
    pub args: Vec<String>,
    /// What k3s/RKE2 is doing.
    pub k3s: K3sKubelet,
    /// Flags whose presence cannot be told, with why (see `EffectiveConfig::undecided_flags`).
    pub undecided: BTreeMap<String, String>,
}

fn read_text(host: &HostRoot, path: &str) -> Result<String, String> {
    host.read_capped(path, TEXT_CAP)
        .map_err(|e| e.to_string())
        .and_then(|b| String::from_utf8(b).map_err(|_| format!("{path}: not UTF-8")))
}

/// The unit (from the process's cgroup), its files' texts in systemd's order, and the
/// `EnvironmentFile=`/`Environment=` values of the variables k3s reads.
fn unit_and_env(
    host: &HostRoot,
    pid: i32,
    product: Product,
    unit_files: &[FileObservation],
) -> (Vec<(String, String)>, BTreeMap<String, String>) {
    let unit = process::read_small(host, pid, "cgroup")
        .ok()
        .and_then(|s| process::unit_from_cgroup(&s));
    let mut texts = Vec::new();
    for f in unit_files
        .iter()
        .filter(|f| matches!(f.role, FileRole::ServiceUnit | FileRole::ServiceDropIn))
    {
        if let Ok(t) = read_text(host, &f.path) {
            texts.push((f.path.clone(), t));
        }
    }
    let p = product.env_prefix();
    let wanted_owned = [
        format!("{p}CONFIG_FILE"),
        format!("{p}DATA_DIR"),
        format!("{p}NODE_NAME"),
    ];
    let wanted: Vec<&str> = wanted_owned.iter().map(String::as_str).collect();
    let mut env = BTreeMap::new();
    let unit_base = unit
        .as_deref()
        .map(|u| u.trim_end_matches(".service").to_string())
        .unwrap_or_default();
    // systemd.exec(5): `Environment=` first, then `EnvironmentFile=` (which wins).
    let mut env_files = Vec::new();
    for (_, t) in &texts {
        for line in t.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("Environment=") {
                for w in v.split_whitespace() {
                    rules::env_file_values(w.trim_matches('"'), &wanted, &mut env);
                }
            } else if let Some(v) = line.strip_prefix("EnvironmentFile=") {
                let v = v.trim();
                if v.is_empty() {
                    env_files.clear();
                    continue;
                }
                let path = v
                    .trim_start_matches('-')
                    .replace("%N", &unit_base)
                    .replace("%n", unit.as_deref().unwrap_or(""));
                env_files.push(path);
            }
        }
    }
    for f in env_files {
        if let Ok(t) = read_text(host, &f) {
            rules::env_file_values(&t, &wanted, &mut env);
        }
    }
    (texts, env)
}

/// `config.yaml` (if present) then `config.yaml.d/*.yaml|*.yml` by name (pkg/configfilearg
/// `dotDFiles`: case-insensitive suffix, directories skipped).
fn config_files(host: &HostRoot, config_file: &str) -> (Vec<FileText>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    match host.metadata(config_file) {
        Ok(_) => out.push(FileText {
            path: config_file.to_string(),
            text: read_text(host, config_file),
        }),
        Err(crate::model::file::HostError::NotFound { .. }) => {}
        Err(e) => errors.push(e.to_string()),
    }
    let dir = format!("{config_file}.d");
    if let Ok(mut names) = host.read_dir(&dir) {
        names.sort();
        for name in names.into_iter().take(MAX_DROPINS) {
            let lower = name.to_ascii_lowercase();
            if !(lower.ends_with(".yaml") || lower.ends_with(".yml")) {
                continue;
            }
            let p = host_join(&dir, &name);
            if host
                .metadata(&p)
                .is_ok_and(|m| m.kind == crate::model::file::FileKind::Directory)
            {
                continue;
            }
            out.push(FileText {
                text: read_text(host, &p),
                path: p,
            });
        }
    }
    (out, errors)
}

/// The release of a k3s binary, from its Go build information (k3s stamps
/// `k8s.io/component-base/version.gitVersion`, e.g. `v1.33.1+k3s1`).
fn k3s_release(host: &HostRoot, info: &ProcInfo) -> Option<String> {
    let exe = info.exe.as_deref()?;
    let live = super::live::is_live_proc(host.root());
    super::buildinfo::for_process(host, info.pid, exe, live)
        .ok()
        .and_then(|bi| bi.kubernetes_version().ok())
}

/// The release in an RKE2 data dir path (`.../data/v1.33.4-rke2r1-5f1e2a9c0c1b/bin/kubelet`,
/// rke2 pkg/bootstrap `BinDir`).
fn rke2_release_from_path(path: &str) -> Option<String> {
    let seg = path
        .split('/')
        .find(|s| s.starts_with("v1.") && s.contains("-rke2"))?;
    let end = seg.find("-rke2")?;
    let tail = &seg[end + 1..];
    let rel = tail.split('-').next()?;
    Some(format!("{}+{rel}", &seg[..end]))
}

/// The k3s/rke2 process's subcommand and the unit's command line.
fn command_line(
    info: &ProcInfo,
    unit_texts: &[(String, String)],
) -> (rules::CommandLine, Option<String>) {
    // gspt leaves `"<argv0> server"` (one word with a space) or, without the retitle,
    // the real argv.
    let words: Vec<String> = info
        .argv
        .iter()
        .flat_map(|w| w.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect();
    let sub = words
        .iter()
        .skip(1)
        .find(|w| *w == "server" || *w == "agent")
        .cloned();
    if let Some((path, w)) = rules::exec_start_words(unit_texts) {
        if let Some(cl) = rules::parse_command_line(&path, &w) {
            if sub.is_none() || sub.as_deref() == Some(cl.subcommand.as_str()) {
                return (cl, None);
            }
        }
    }
    // No unit (OpenRC, a container): the process's own argv when it was not retitled.
    let tagged: Vec<(String, usize)> = words.iter().map(|w| (w.clone(), 0)).collect();
    match rules::parse_command_line(&format!("/proc/{}/cmdline", info.pid), &tagged) {
        Some(cl) => (
            cl,
            (words.len() <= 2).then(|| {
                "no unit with an ExecStart= for this process: k3s's own command-line options are unknown (its title was rewritten)".to_string()
            }),
        ),
        None => (
            rules::CommandLine {
                file: String::new(),
                subcommand: sub.unwrap_or_else(|| "server".to_string()),
                options: BTreeMap::new(),
            },
            Some("the k3s command line could not be read".to_string()),
        ),
    }
}

/// Everything that decides the options, read from the host.
struct Inputs {
    cli: rules::CommandLine,
    config_file: String,
    files: Vec<FileText>,
    merged: rules::K3sConfig,
    env: BTreeMap<String, String>,
    notes: Vec<String>,
}

fn inputs(
    host: &HostRoot,
    info: &ProcInfo,
    product: Product,
    unit_files: &[FileObservation],
) -> Inputs {
    let (texts, env) = unit_and_env(host, info.pid, product, unit_files);
    let (cli, note) = command_line(info, &texts);
    let mut notes: Vec<String> = note.into_iter().collect();
    // findConfigFileFlag: the environment variable wins over --config.
    let config_file = env
        .get(&format!("{}CONFIG_FILE", product.env_prefix()))
        .cloned()
        .or_else(|| {
            cli.options
                .get("config")
                .and_then(|v| v.last())
                .map(|v| v.value.clone())
        })
        .unwrap_or_else(|| product.default_config_file());
    if config_file.starts_with("http://") || config_file.starts_with("https://") {
        notes.push(format!(
            "the {} config file is fetched from a URL, which is not read",
            product.as_str()
        ));
    }
    let (files, errors) = config_files(host, &config_file);
    let mut merged = rules::merge_config(&files);
    merged.errors.extend(errors);
    Inputs {
        cli,
        config_file,
        files,
        merged,
        env,
        notes,
    }
}

fn hostname(host: &HostRoot) -> Option<String> {
    host.read_capped("/etc/hostname", 4096)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The id `--with-node-id` appends (pkg/agent/config/config.go `ensureNodeID`).
fn node_id(host: &HostRoot) -> Option<String> {
    host.read_capped("/etc/rancher/node/id", 4096)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|id| !id.is_empty() && id.len() <= 64 && !id.contains(char::is_whitespace))
}

/// The scheme from the release, else from the files: k3s's own drop-in exists.
fn scheme(host: &HostRoot, release: Option<Release>, product: Product, data_dir: &str) -> Scheme {
    if let Some(r) = release {
        return rules::scheme_for(r);
    }
    let p = format!(
        "{}/agent/etc/kubelet.conf.d/00-{}-defaults.conf",
        data_dir.trim_end_matches('/'),
        product.as_str()
    );
    if host.metadata(&p).is_ok() {
        Scheme::ConfigDir
    } else {
        Scheme::Flags
    }
}

fn finish(
    product: Product,
    inp: Inputs,
    host: &HostRoot,
    version: Option<String>,
) -> (K3sKubelet, Vec<rules::BuiltArg>, BTreeMap<String, String>) {
    let release = version.as_deref().and_then(rules::parse_release);
    // The data dir decides where k3s's drop-in is: resolve it once without the scheme.
    let pre = rules::resolve_options(
        product,
        &inp.cli,
        &inp.merged,
        &rules::HostFacts {
            env: Some(&inp.env),
            hostname: None,
            node_id: None,
        },
        release,
        Scheme::Flags,
    );
    let scheme = scheme(host, release, product, &pre.data_dir);
    let options = rules::resolve_options(
        product,
        &inp.cli,
        &inp.merged,
        &rules::HostFacts {
            env: Some(&inp.env),
            hostname: hostname(host).as_deref(),
            node_id: node_id(host).as_deref(),
        },
        release,
        scheme,
    );
    let mut notes = inp.notes;
    let mut undecided = BTreeMap::new();
    if rules::passes_read_only_port(release, scheme).is_none() {
        let why = format!(
            "the {} release is unknown, and only from 1.32.4/1.33.0 does it pass --read-only-port=0 (1.32.0–1.32.3 do not: k3s-io/k3s#12164)",
            product.as_str()
        );
        notes.push(why.clone());
        undecided.insert("read-only-port".to_string(), why);
    }
    if options.node_name.is_none() {
        notes.push("the node name (--hostname-override) is unknown: with-node-id appends the id of /etc/rancher/node/id, which could not be read".to_string());
    }
    let built = rules::kubelet_args(&options);
    let (_, moved) = rules::extract_config_args(&options.kubelet_args, scheme);
    for m in moved {
        notes.push(format!(
            "kubelet-arg {} ({}:{}) is copied into the kubelet's drop-in directory (10-cli-config.conf / 20-cli-config-dir)",
            m.value.split('=').next().unwrap_or(""),
            m.file,
            m.line
        ));
    }
    // RKE2 runs kube-proxy as a static pod (pod-manifests/kube-proxy.yaml), not in-process.
    let kube_proxy = (product == Product::K3s).then(|| rules::kube_proxy_args(&options));
    let cli_kubelet_args = inp
        .cli
        .options
        .get("kubelet-arg")
        .cloned()
        .unwrap_or_default();
    let mut base = options.clone();
    base.kubelet_args.clear();
    base.kube_proxy_args.clear();
    let rebuild = inp.merged.errors.is_empty().then(|| rules::Rebuild {
        options: base,
        cli_kubelet_args,
        config_file: inp.config_file.clone(),
        config_files: inp.files,
    });
    if !inp.merged.errors.is_empty() {
        notes.push(format!(
            "the {} config files could not be used (k3s refuses to start with them): {}",
            product.as_str(),
            inp.merged.errors.join("; ")
        ));
    }
    let k = K3sKubelet {
        product,
        config_file: inp.config_file,
        origins: rules::origins(&built),
        kube_proxy,
        version,
        notes,
        rebuild,
    };
    (k, built, undecided)
}

/// A k3s process (`k3s server`/`k3s agent`, the kubelet in-process): its kubelet's
/// arguments rebuilt from the unit, the environment files and the config files.
pub(super) fn observe_k3s(
    host: &HostRoot,
    info: &ProcInfo,
    unit_files: &[FileObservation],
) -> Result<Observed, String> {
    let inp = inputs(host, info, Product::K3s, unit_files);
    if !inp.merged.errors.is_empty() {
        return Err(format!(
            "k3s config files: {} (k3s refuses to start with them; the running kubelet's flags cannot be rebuilt)",
            inp.merged.errors.join("; ")
        ));
    }
    let disable_agent = inp
        .cli
        .options
        .get("disable-agent")
        .and_then(|v| v.last())
        .map(|v| v.value.clone())
        .or_else(|| inp.merged.scalar("disable-agent").map(|v| v.value.clone()));
    if disable_agent
        .as_deref()
        .and_then(crate::model::kubelet_config::flags::parse_go_bool)
        == Some(true)
    {
        return Err("k3s server runs with disable-agent: it runs no kubelet".to_string());
    }
    let version = k3s_release(host, info);
    let (k, built, undecided) = finish(Product::K3s, inp, host, version);
    Ok(Observed {
        args: rules::argv(&built),
        k3s: k,
        undecided,
    })
}

/// Whether a kubelet process was started by RKE2: its parent is `rke2 server|agent`
/// (pkg/executor/staticpod `exec.CommandContext(ctx, s.KubeletPath, args...)`).
pub(super) fn rke2_parent(host: &HostRoot, pid: i32) -> Option<ProcInfo> {
    let stat = process::read_small(host, pid, "stat").ok()?;
    let ppid = super::identity::parent_from_stat(&stat)?;
    let parent = process::read_proc(host, ppid).ok()?;
    let words: Vec<&str> = parent.argv.iter().flat_map(|w| w.split(' ')).collect();
    let prog = words.first()?.rsplit('/').next()?;
    (prog == "rke2" && matches!(words.get(1), Some(&"server" | &"agent"))).then_some(parent)
}

/// An RKE2 kubelet (a separate process whose argv is read): the same rules attribute each
/// flag to its origin; a flag the rules do not produce keeps no origin and is noted.
pub(super) fn observe_rke2(
    host: &HostRoot,
    parent: &ProcInfo,
    kubelet: &ProcInfo,
    unit_files: &[FileObservation],
) -> Observed {
    let inp = inputs(host, parent, Product::Rke2, unit_files);
    let version = kubelet.exe.as_deref().and_then(rke2_release_from_path);
    let (mut k, built, _) = finish(Product::Rke2, inp, host, version);
    let actual: Vec<String> = kubelet.argv.get(1..).unwrap_or(&[]).to_vec();
    let parsed = crate::model::kubelet_config::flags::Flags::parse(&actual);
    let mut origins: Vec<FlagOrigin> = Vec::new();
    let mut unmatched = Vec::new();
    let mut pool: Vec<&rules::BuiltArg> = built.iter().collect();
    for occ in &parsed.occurrences {
        let pos = pool
            .iter()
            .position(|b| b.key == occ.name && b.value.as_ref().is_none_or(|v| *v == occ.value));
        match pos {
            Some(i) => {
                let b = pool.remove(i);
                let mut o = b.origin.clone();
                o.value = occ.value.clone();
                origins.push(o);
            }
            None => unmatched.push(occ.name.clone()),
        }
    }
    if !unmatched.is_empty() {
        k.notes.push(format!(
            "flags of the running kubelet the rke2 rules do not explain (set by a version these rules do not know, or the files changed since it started): --{}",
            unmatched.join(", --")
        ));
    }
    // A flag the files give but the running kubelet lacks: the files changed since the
    // start (a restart applies them).
    let missing: Vec<String> = pool
        .iter()
        .filter(|b| b.value.is_some() && b.origin.how != OriginHow::K3sDefault)
        .map(|b| b.key.clone())
        .collect();
    let defaults_missing: Vec<String> = pool
        .iter()
        .filter(|b| b.origin.how == OriginHow::K3sDefault)
        .filter_map(|b| b.value.as_ref().map(|v| format!("--{}={v}", b.key)))
        .collect();
    if !defaults_missing.is_empty() {
        k.notes.push(format!(
            "rke2 {} passes {} by these rules, but the running kubelet does not have it (another release, or a kubelet-path override)",
            k.version.as_deref().unwrap_or("(release unknown)"),
            defaults_missing.join(" ")
        ));
    }
    if !missing.is_empty() {
        k.notes.push(format!(
            "kubelet-arg entries of the config files the running kubelet does not have (applied at the next restart of rke2): --{}",
            missing.join(", --")
        ));
    }
    k.origins = origins;
    Observed {
        args: actual,
        k3s: k,
        undecided: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A k3s server in `root`: pid 100, its unit, and `config` as config.yaml.
    fn k3s_tree(
        root: &std::path::Path,
        config: &[u8],
    ) -> (HostRoot, ProcInfo, Vec<FileObservation>) {
        let w = |p: &str, b: &[u8]| {
            let f = root.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, b).unwrap();
        };
        w("proc/100/cmdline", b"/usr/local/bin/k3s server\0");
        w("proc/100/cgroup", b"0::/system.slice/k3s.service\n");
        w(
            "etc/systemd/system/k3s.service",
            b"[Service]\nEnvironmentFile=-/etc/systemd/system/k3s.service.env\nExecStart=/usr/local/bin/k3s server --kubelet-arg=v=2\n",
        );
        w(
            "etc/systemd/system/k3s.service.env",
            b"K3S_TOKEN=env-secret-value\nK3S_NODE_NAME=Node-1\n",
        );
        w("etc/rancher/k3s/config.yaml", config);
        let host = HostRoot::new(root).unwrap();
        let info = ProcInfo {
            pid: 100,
            argv: vec!["/usr/local/bin/k3s server".to_string()],
            exe: None,
            lossy: false,
        };
        let units = vec![FileObservation {
            role: FileRole::ServiceUnit,
            path: "/etc/systemd/system/k3s.service".to_string(),
            meta: host
                .metadata("/etc/systemd/system/k3s.service")
                .map_err(crate::model::observed::ObsError::from),
        }];
        (host, info, units)
    }

    #[test]
    fn flags_rebuilt_from_unit_env_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let (host, info, units) = k3s_tree(
            dir.path(),
            b"token: cfg-secret-value\nkubelet-arg:\n- read-only-port=10255\n",
        );
        let o = observe_k3s(&host, &info, &units).unwrap();
        // The release is unknown (no binary) and k3s's drop-in is absent: flags scheme.
        assert!(o.args.contains(&"--read-only-port=10255".to_string()));
        assert!(o.args.contains(&"--hostname-override=node-1".to_string()));
        assert!(o.args.contains(&"--anonymous-auth=false".to_string()));
        assert_eq!(o.args.last().map(String::as_str), Some("--v=2"));
        let dbg = format!("{:?}", o.k3s);
        assert!(!dbg.contains("secret-value"), "{dbg}");
        assert!(!serde_json::to_string(&o.k3s)
            .unwrap()
            .contains("secret-value"));
    }

    #[test]
    fn hostile_config_files_are_errors_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let mut big = b"token: huge-secret-value\n".to_vec();
        big.resize(2 * 1024 * 1024, b'#');
        let (host, info, units) = k3s_tree(dir.path(), &big);
        let e = observe_k3s(&host, &info, &units).err().unwrap();
        assert!(e.contains("/etc/rancher/k3s/config.yaml"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        // Binary content, and a YAML error that would quote the token.
        let dir = tempfile::tempdir().unwrap();
        let (host, info, units) = k3s_tree(
            dir.path(),
            b"token: \"bin-secret-value\nkubelet-arg: [\xff\xfe\n",
        );
        let e = observe_k3s(&host, &info, &units).err().unwrap();
        assert!(!e.contains("secret"), "{e}");
        // A config.yaml.d entry that is a directory is skipped; a symlink leaving the root
        // resolves inside it (HostRoot), here to nothing.
        let dir = tempfile::tempdir().unwrap();
        let (host, info, units) = k3s_tree(dir.path(), b"kubelet-arg: [v=3]\n");
        std::fs::create_dir_all(dir.path().join("etc/rancher/k3s/config.yaml.d/x.yaml")).unwrap();
        std::os::unix::fs::symlink(
            "/../../../../etc/passwd",
            dir.path().join("etc/rancher/k3s/config.yaml.d/y.yaml"),
        )
        .unwrap();
        let o = observe_k3s(&host, &info, &units);
        match o {
            Ok(o) => assert!(o.args.contains(&"--v=3".to_string())),
            Err(e) => assert!(e.contains("y.yaml"), "{e}"),
        }
    }

    #[test]
    fn rke2_release_in_the_data_dir() {
        assert_eq!(
            rke2_release_from_path(
                "/var/lib/rancher/rke2/data/v1.33.4-rke2r1-5f1e2a9c0c1b/bin/kubelet"
            )
            .as_deref(),
            Some("v1.33.4+rke2r1")
        );
        assert_eq!(rke2_release_from_path("/usr/bin/kubelet"), None);
    }
}
