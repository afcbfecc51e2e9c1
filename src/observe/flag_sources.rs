//! Where the kubelet's flags come from on the node: the systemd unit that runs it (the
//! unit file, its drop-ins, their `Environment=` and `EnvironmentFile=`s such as
//! `kubeadm-flags.env`, `/etc/default/kubelet`, `/etc/sysconfig/kubelet`, EKS's and AKS's
//! drop-ins and environment files), or MicroK8s' args file. The files are read here, each
//! through [`HostRoot`] (resolved beneath the host root, regular files only, capped); how
//! they combine is `model::systemd` and `model::flag_origin`, which this only feeds.
//!
//! k3s and RKE2 build the kubelet's flags themselves (`model::k3s`): not followed here.

use std::collections::BTreeMap;

use crate::io::host::HostRoot;
use crate::model::file::{FileKind, HostError};
use crate::model::flag_origin::FlagSources;
use crate::model::kubelet_config::flags::{self, Flags};
use crate::model::snapshot::{FileRole, Kubelet, KubeletFlavour};
use crate::model::systemd::{self, UNIT_DIRS};

/// Cap on each unit file, drop-in, environment file or args file (they are a few KiB;
/// systemd's own limit is 1 MiB per line).
pub const MAX_FLAG_FILE_BYTES: u64 = 256 * 1024;

/// Most files followed for one kubelet (the unit, its drop-ins, environment files).
pub const MAX_FLAG_FILES: usize = 64;

/// MicroK8s' default kubelet args file (kubelite's `--kubelet-args-file`).
const MICROK8S_ARGS: &str = "/var/snap/microk8s/current/args/kubelet";

/// Read a flag file: a regular file within the cap, UTF-8 text without NUL bytes. The
/// error names the path and the kind of problem, never the content.
fn read_text(host: &HostRoot, path: &str) -> Result<String, String> {
    let bytes = host
        .read_capped(path, MAX_FLAG_FILE_BYTES)
        .map_err(|e| e.to_string())?;
    if bytes.contains(&0) {
        return Err(format!(
            "{path}: binary content (a NUL byte), not a text file"
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("{path}: not valid UTF-8"))
}

/// The words the kubelet parses its flags from, as the running process has them, and the
/// word just before them.
fn running_words(kubelet: &Kubelet) -> (String, Vec<String>) {
    let from = if matches!(kubelet.flavour, KubeletFlavour::Hyperkube) {
        2
    } else {
        1
    };
    (
        kubelet.argv.get(from - 1).cloned().unwrap_or_default(),
        kubelet.argv.get(from..).unwrap_or(&[]).to_vec(),
    )
}

/// The precedence of a drop-in's directory: per unit directory in precedence order, the
/// unit's own `<unit>.d/` before the type-level `service.d/` (`unit_file_find_dirs` in
/// src/shared/dropin.c tries the candidates from the most to the least specific in each
/// lookup directory). `None` for a directory systemd does not read.
fn dropin_rank(path: &str, unit: &str) -> Option<usize> {
    let dir = crate::io::host::host_dirname(path);
    UNIT_DIRS.iter().enumerate().find_map(|(i, d)| {
        if dir == format!("{d}/{unit}.d") {
            Some(2 * i)
        } else if dir == format!("{d}/service.d") {
            Some(2 * i + 1)
        } else {
            None
        }
    })
}

/// The unit file and its drop-ins in the order systemd loads them: the unit file (the
/// first unit directory that has it, as observed), then the drop-ins sorted by file name,
/// a name in a higher-precedence directory masking the same name in a lower one
/// (systemd.unit(5)). `extra` adds drop-ins not among the kubelet's observed files (the
/// type-level `service.d/` ones).
pub fn unit_load_order(kubelet: &Kubelet, extra: &[String]) -> Option<Vec<String>> {
    let unit_file = kubelet
        .files
        .iter()
        .find(|f| f.role == FileRole::ServiceUnit)?
        .path
        .clone();
    let unit = kubelet.unit.clone().unwrap_or_default();
    let mut by_name: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let observed = kubelet
        .files
        .iter()
        .filter(|f| f.role == FileRole::ServiceDropIn)
        .map(|f| &f.path);
    for path in observed.chain(extra.iter()) {
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        let rank = dropin_rank(path, &unit).unwrap_or(usize::MAX);
        match by_name.get(&name) {
            Some((r, _)) if *r <= rank => {}
            _ => {
                by_name.insert(name, (rank, path.clone()));
            }
        }
    }
    let mut out = vec![unit_file];
    out.extend(by_name.into_values().map(|(_, p)| p));
    Some(out)
}

/// The type-level drop-ins (`service.d/*.conf` in each unit directory, systemd ≥ 246),
/// which apply to every service.
fn type_dropins(host: &HostRoot) -> Vec<String> {
    let mut out = Vec::new();
    for d in UNIT_DIRS {
        let dir = format!("{d}/service.d");
        let Ok(names) = host.read_dir(&dir) else {
            continue;
        };
        for n in names.into_iter().filter(|n| n.ends_with(".conf")) {
            out.push(format!("{dir}/{n}"));
            if out.len() > MAX_FLAG_FILES {
                return out;
            }
        }
    }
    out
}

/// Where each of the kubelet's flags comes from. Never fails: what could not be read or
/// followed is in `errors`, and then `expanded` is `None` (or `matches_running` false).
pub fn read(host: &HostRoot, kubelet: &Kubelet) -> FlagSources {
    if kubelet.k3s.is_some() {
        return FlagSources {
            errors: vec![
                "k3s/RKE2 build the kubelet's flags themselves: see the k3s origins".to_string(),
            ],
            ..FlagSources::default()
        };
    }
    if matches!(kubelet.flavour, KubeletFlavour::Kubelite) {
        return read_args_file(host, kubelet);
    }
    let Some(unit) = kubelet.unit.clone() else {
        return FlagSources {
            errors: vec![
                "the kubelet does not run in a systemd service (no unit in /proc/<pid>/cgroup)"
                    .to_string(),
            ],
            ..FlagSources::default()
        };
    };
    let Some(unit_files) = unit_load_order(kubelet, &type_dropins(host)) else {
        return FlagSources {
            errors: vec![format!("no unit file found for {unit}")],
            ..FlagSources::default()
        };
    };
    let mut errors = Vec::new();
    let mut texts = BTreeMap::new();
    if unit_files.len() > MAX_FLAG_FILES {
        return FlagSources {
            errors: vec![format!(
                "{unit} has more than {MAX_FLAG_FILES} drop-ins: the agent follows no more"
            )],
            ..FlagSources::default()
        };
    }
    for f in &unit_files {
        // A drop-in linked to /dev/null is masked: it sets nothing (systemd.unit(5)).
        if is_masked(host, f) {
            texts.insert(f.clone(), String::new());
            continue;
        }
        match read_text(host, f) {
            Ok(t) => {
                texts.insert(f.clone(), t);
            }
            Err(e) => {
                return FlagSources {
                    files: unit_files.clone(),
                    errors: vec![e],
                    ..FlagSources::default()
                };
            }
        }
    }
    // The environment files the unit names (a second pass: their names are in the units).
    let sources: Vec<(String, String)> = unit_files
        .iter()
        .filter_map(|f| texts.get(f).map(|t| (f.clone(), t.clone())))
        .collect();
    let svc = systemd::load_service(&unit, &sources);
    for ef in svc.env_files.iter().take(MAX_FLAG_FILES) {
        if ef.path.contains(['*', '?', '[']) {
            errors.push(format!(
                "{}:{}: EnvironmentFile= is a wildcard, which the agent does not expand",
                ef.unit_file, ef.line
            ));
            continue;
        }
        if texts.contains_key(&ef.path) {
            continue;
        }
        match read_text(host, &ef.path) {
            Ok(t) => {
                texts.insert(ef.path.clone(), t);
            }
            Err(_) if ef.optional && is_missing(host, &ef.path) => {}
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        let mut files = unit_files.clone();
        files.extend(texts.keys().filter(|k| !unit_files.contains(k)).cloned());
        return FlagSources {
            files,
            texts,
            errors,
            ..FlagSources::default()
        };
    }
    let (lead, running) = running_words(kubelet);
    FlagSources::from_systemd(&unit, unit_files, texts, &lead, &running, errors)
}

fn is_masked(host: &HostRoot, path: &str) -> bool {
    matches!(host.symlink_metadata(path), Ok(m) if m.kind == FileKind::Symlink)
        && host.read_link(path).is_ok_and(|t| t == "/dev/null")
}

fn is_missing(host: &HostRoot, path: &str) -> bool {
    matches!(host.metadata(path), Err(HostError::NotFound { .. }))
}

fn read_args_file(host: &HostRoot, kubelet: &Kubelet) -> FlagSources {
    let own = Flags::parse(kubelet.argv.get(1..).unwrap_or(&[]));
    let path = own
        .string("kubelet-args-file")
        .unwrap_or_else(|| MICROK8S_ARGS.to_string());
    match read_text(host, &path) {
        Ok(text) => {
            let words = flags::args_file_words(&text);
            // The kubelet's flags were parsed from this file moments ago: the same words
            // unless it changed in between.
            let running = if Flags::parse(&words) == kubelet.flags {
                words
            } else {
                Vec::new()
            };
            FlagSources::from_args_file(&path, text, &running)
        }
        Err(e) => FlagSources {
            files: vec![path],
            errors: vec![e],
            ..FlagSources::default()
        },
    }
}
