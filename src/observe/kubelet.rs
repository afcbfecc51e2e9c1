//! The chosen kubelet's own files: its flags (or MicroK8s' args file), the effective
//! configuration (`--config` and the `--config-dir` drop-ins), the kubeconfig's
//! credential, the client CA, the serving certificate and key, the systemd unit.

use serde_json::Value;

use super::discovery::proc_start;
use super::files::{unit_files, walk_dropins_recording};
use super::process::{self, ProcInfo, ProcessKind};
use super::{kubeconfig, obs_err, Probes};
use crate::io::host::{host_dirname, host_join, HostRoot};
use crate::model::cert as certs;
use crate::model::kubelet_config::flags::{self, Flags};
use crate::model::kubelet_config::{ConfigInput, EffectiveConfig, Lookup, Source};
use crate::model::observed::{ObsError, ObsErrorKind};
use crate::model::snapshot::{Credential, FileObservation, FileRole, Kubelet, KubeletFlavour};
/// The default `--cert-dir` (cmd/kubelet/app/options/options.go `NewKubeletFlags`).
const DEFAULT_CERT_DIR: &str = "/var/lib/kubelet/pki";

pub(super) fn observe_kubelet(
    host: &HostRoot,
    info: ProcInfo,
    kind: ProcessKind,
    probes: &mut Probes,
) -> Result<Kubelet, String> {
    let pid = info.pid;
    let mut files: Vec<FileObservation> = Vec::new();
    // The systemd unit (k3s/RKE2 build the kubelet's flags from its ExecStart=).
    let unit = process::read_small(host, pid, "cgroup")
        .ok()
        .and_then(|s| process::unit_from_cgroup(&s));
    let rke2 = match kind {
        ProcessKind::Kubelet => super::k3s::rke2_parent(host, pid),
        _ => None,
    };
    // The unit whose ExecStart= starts k3s/rke2: the kubelet's own for k3s; RKE2's kubelet
    // runs in the rke2 unit's cgroup too (Delegate=yes, a child process).
    let own_unit_files = unit.as_deref().map(|u| unit_files(host, u));

    // 2. flags (MicroK8s keeps them in an args file; k3s builds them from its files).
    let mut k3s_observed: Option<super::k3s::Observed> = None;
    let flags = probes.record("flags", || {
        let args: Vec<String> = match kind {
            ProcessKind::K3s => {
                let o =
                    super::k3s::observe_k3s(host, &info, own_unit_files.as_deref().unwrap_or(&[]))?;
                let args = o.args.clone();
                k3s_observed = Some(o);
                args
            }
            ProcessKind::Kubelet if rke2.is_some() => {
                let parent = rke2.as_ref().ok_or("internal: no rke2 parent")?;
                let o = super::k3s::observe_rke2(
                    host,
                    parent,
                    &info,
                    own_unit_files.as_deref().unwrap_or(&[]),
                );
                let args = o.args.clone();
                k3s_observed = Some(o);
                args
            }
            ProcessKind::Hyperkube => info.argv.get(2..).unwrap_or(&[]).to_vec(),
            ProcessKind::Kubelite => {
                let own = Flags::parse(info.argv.get(1..).unwrap_or(&[]));
                let path = own
                    .string("kubelet-args-file")
                    .unwrap_or_else(|| "/var/snap/microk8s/current/args/kubelet".to_string());
                files.push(FileObservation {
                    role: FileRole::ArgsFile,
                    path: path.clone(),
                    meta: host.metadata(&path).map_err(obs_err),
                });
                let text = host
                    .read_to_string(&path)
                    .map_err(|e| format!("kubelite args file: {e}"))?;
                flags::args_file_words(&text)
            }
            _ => info.argv.get(1..).unwrap_or(&[]).to_vec(),
        };
        Ok::<_, String>(Flags::parse(&args))
    })?;
    if info.lossy {
        tracing::warn!(
            pid,
            "kubelet command line has non-UTF-8 bytes; replaced with U+FFFD"
        );
    }

    // Relative paths on the command line are relative to the kubelet's working directory
    // (`filepath.Abs` in loadConfigFile); `/proc/<pid>/cwd` tells it, `/` otherwise.
    let cwd = host
        .read_link(&format!("/proc/{pid}/cwd"))
        .ok()
        .filter(|c| c.starts_with('/'))
        .unwrap_or_else(|| "/".to_string());
    let flag_path = |name: &str| {
        flags
            .string(name)
            .filter(|s| !s.is_empty())
            .map(|p| host_join(&cwd, &p))
    };

    // 3. effective configuration.
    let config_file = flag_path("config");
    let config_dir = flag_path("config-dir");
    let cfg = {
        let mut cfg_out = None;
        let _ = probes.record("config", || {
            let main = config_file.as_ref().map(|p| {
                files.push(FileObservation {
                    role: FileRole::ConfigFile,
                    path: p.clone(),
                    meta: host.metadata(p).map_err(obs_err),
                });
                ConfigInput {
                    path: p.clone(),
                    text: host
                        .read_to_string(p)
                        .map_err(|e| with_consumed_value_note(e.to_string(), &flags, "config")),
                }
            });
            let mut dropin_note = None;
            let (dropins, dir_err) = match &config_dir {
                Some(d) => match walk_dropins_recording(host, d, &mut files) {
                    Ok(walked) => {
                        dropin_note = walked.note;
                        let inputs = walked
                            .files
                            .into_iter()
                            .map(|p| {
                                files.push(FileObservation {
                                    role: FileRole::DropIn,
                                    path: p.clone(),
                                    meta: host.metadata(&p).map_err(obs_err),
                                });
                                let text = host.read_to_string(&p).map_err(|e| e.to_string());
                                ConfigInput { path: p, text }
                            })
                            .collect();
                        (inputs, None)
                    }
                    Err(e) => (Vec::new(), Some(format!("--config-dir {d}: {e}"))),
                },
                None => (Vec::new(), None),
            };
            let mut cfg =
                EffectiveConfig::build(flags.clone(), main, config_dir.clone(), dropins, dir_err);
            cfg.dropin_note = dropin_note;
            if let Some(o) = &k3s_observed {
                apply_k3s_origins(&mut cfg, o);
            }
            let result = if cfg.errors.is_empty() {
                Ok(())
            } else {
                Err(cfg.errors.join("; "))
            };
            cfg_out = Some(cfg);
            result
        });
        match cfg_out {
            Some(c) => c,
            None => {
                let mut c = EffectiveConfig::build(flags.clone(), None, None, Vec::new(), None);
                if let Some(o) = &k3s_observed {
                    apply_k3s_origins(&mut c, o);
                }
                c
            }
        }
    };
    if let Some(e) = probes.0.last().and_then(|p| p.error.clone()) {
        tracing::warn!(pid, error = %e, "kubelet configuration could not be fully read");
    }

    // 4. credential in the kubeconfig.
    let kubeconfig = flag_path("kubeconfig");
    let credential = kubeconfig.as_ref().map(|path| {
        files.push(FileObservation {
            role: FileRole::Kubeconfig,
            path: path.clone(),
            meta: host.metadata(path).map_err(obs_err),
        });
        probes.record("kubeconfig", || read_credential(host, path, &mut files))
    });

    // 5. client CA.
    let client_ca = match cfg.get("authentication.x509.clientCAFile") {
        Lookup::Known(s) => match s.value.as_str().filter(|v| !v.is_empty()) {
            Some(p) => {
                let path = config_relative(p, &cwd);
                files.push(FileObservation {
                    role: FileRole::ClientCa,
                    path: path.clone(),
                    meta: host.metadata(&path).map_err(obs_err),
                });
                Some(probes.record("client_ca", || {
                    host.read(&path)
                        .map_err(obs_err)
                        .and_then(|b| certs::summarize_pem(&b))
                }))
            }
            None => None,
        },
        Lookup::Unknown { .. } => None,
    };

    // 6. serving certificate and key paths (cmd/kubelet/app/server.go `InitializeTLS`).
    let cert_dir = flag_path("cert-dir").unwrap_or_else(|| DEFAULT_CERT_DIR.to_string());
    let str_setting = |key: &str| -> Option<(String, Source)> {
        cfg.get(key).known().and_then(|s| {
            s.value
                .as_str()
                .filter(|v| !v.is_empty())
                .map(|v| (config_relative(v, &cwd), s.source.clone()))
        })
    };
    let bootstrap = cfg
        .get("serverTLSBootstrap")
        .known()
        .map(|s| s.value == Value::Bool(true));
    // When the settings that decide the serving files are themselves undecidable, no
    // path is guessed: the file controls report the configuration's reason instead.
    let decidable = bootstrap.is_some()
        && cfg.get("tlsCertFile").known().is_some()
        && cfg.get("tlsPrivateKeyFile").known().is_some();
    let (cert_path, key_path) = match (str_setting("tlsCertFile"), str_setting("tlsPrivateKeyFile"))
    {
        _ if !decidable => (None, None),
        (Some((c, _)), Some((k, _))) => (Some(c), Some(k)),
        _ if bootstrap == Some(true) => {
            let p = host_join(&cert_dir, "kubelet-server-current.pem");
            (Some(p.clone()), Some(p))
        }
        _ => (
            Some(host_join(&cert_dir, "kubelet.crt")),
            Some(host_join(&cert_dir, "kubelet.key")),
        ),
    };
    let serving_cert_file = cert_path.as_ref().map(|c| {
        host.read(c)
            .map_err(obs_err)
            .and_then(|b| certs::summarize_pem(&b))
    });
    let _ = probes.record("files", || {
        if let Some(c) = &cert_path {
            files.push(FileObservation {
                role: FileRole::ServingCert,
                path: c.clone(),
                meta: host.metadata(c).map_err(obs_err),
            });
        }
        if let Some(k) = &key_path {
            files.push(FileObservation {
                role: FileRole::ServingKey,
                path: k.clone(),
                meta: host.metadata(k).map_err(obs_err),
            });
        }
        let unreadable: Vec<String> = files
            .iter()
            .filter_map(|f| {
                f.meta
                    .as_ref()
                    .err()
                    .filter(|e| e.kind == ObsErrorKind::Unreadable)
            })
            .map(|e| e.message.clone())
            .collect();
        if unreadable.is_empty() {
            Ok(())
        } else {
            Err(unreadable.join("; "))
        }
    });

    // 7. systemd unit and its drop-ins.
    let start_time_ticks = proc_start(host, pid);
    let started_at = start_time_ticks.and_then(|t| process::start_wall_time(host, t));
    if let Some(u) = &unit {
        let _ = probes.record("unit_files", || {
            let found = own_unit_files
                .clone()
                .unwrap_or_else(|| unit_files(host, u));
            if found.is_empty() {
                Err(format!("no unit file found for {u}"))
            } else {
                files.extend(found);
                Ok(())
            }
        });
    }

    let binary = info
        .exe
        .clone()
        .unwrap_or_else(|| info.argv.first().cloned().unwrap_or_default());
    let flavour = match kind {
        ProcessKind::Hyperkube => KubeletFlavour::Hyperkube,
        ProcessKind::Kubelite => KubeletFlavour::Kubelite,
        ProcessKind::K3s => KubeletFlavour::K3s,
        _ => KubeletFlavour::Kubelet,
    };
    // k3s: the process title, then the rebuilt arguments (like MicroK8s' args file).
    let argv = match (&kind, &k3s_observed) {
        (ProcessKind::K3s, Some(o)) => info
            .argv
            .first()
            .cloned()
            .into_iter()
            .chain(o.args.iter().cloned())
            .collect(),
        _ => info.argv,
    };
    Ok(Kubelet {
        pid,
        argv,
        binary,
        flavour,
        start_time_ticks,
        started_at,
        flags,
        config: cfg,
        version: None,
        version_source: None,
        version_error: None,
        serving_cert_file,
        unit,
        files,
        client_ca,
        credential,
        k3s: k3s_observed.map(|o| o.k3s),
    })
}

/// k3s/RKE2: every flag's origin (the last occurrence wins, as in the kubelet's flag
/// parsing) for `Source::Flag`, and the flags whose presence cannot be told.
fn apply_k3s_origins(cfg: &mut EffectiveConfig, o: &super::k3s::Observed) {
    for origin in &o.k3s.origins {
        let label = match (o.k3s.product, &origin.how) {
            (
                crate::model::k3s::Product::Rke2,
                crate::model::flag_origin::OriginHow::K3sDefault,
            ) => "rke2 default".to_string(),
            // `config.yaml.d/50-x.yaml`: the drop-in directory says which file it is.
            (_, crate::model::flag_origin::OriginHow::K3sConfigArg) => {
                let mut parts = origin.file.rsplit('/');
                match (parts.next(), parts.next()) {
                    (Some(f), Some(d)) if d.ends_with(".d") => format!("{d}/{f}"),
                    _ => origin.label(),
                }
            }
            _ => origin.label(),
        };
        cfg.flag_origins.insert(origin.flag.clone(), label);
    }
    cfg.undecided_flags = o.undecided.clone();
}

/// When a path flag's value is the argument after it and that argument looks like a flag
/// (`--config --v=2`), say so: pflag's `parseLongArg` gives a string flag the next argument
/// whatever it is, so the kubelet looks for a file named `--v=2`.
fn with_consumed_value_note(error: String, flags: &Flags, name: &str) -> String {
    let consumed = flags
        .occurrences
        .iter()
        .rev()
        .find(|o| o.name == name)
        .filter(|o| o.value.starts_with('-'));
    match consumed {
        Some(o) => format!(
            "{error} (--{name} has no value of its own: the kubelet's flag parsing takes the next argument {:?} as its value)",
            o.value
        ),
        None => error,
    }
}

/// A path from the configuration as the kubelet opens it. Relative paths in the
/// `--config` file were already made absolute by the model (`resolveRelativePaths`);
/// relative paths from a drop-in or a flag are opened relative to the kubelet's working
/// directory (drop-ins are loaded with `LoadIntoJSON`, which resolves nothing).
fn config_relative(path: &str, cwd: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        host_join(cwd, path)
    }
}

fn read_credential(
    host: &HostRoot,
    path: &str,
    files: &mut Vec<FileObservation>,
) -> Result<Credential, ObsError> {
    let text = host.read_to_string(path).map_err(obs_err)?;
    let source = kubeconfig::parse_credential(&text, &host_dirname(path))?;
    Ok(match source {
        kubeconfig::CredentialSource::InlineCert(pem) => Credential::ClientCertificate {
            cert: certs::summarize_pem(&pem)?,
            from: "inline".to_string(),
        },
        kubeconfig::CredentialSource::CertFile(p) => {
            files.push(FileObservation {
                role: FileRole::ClientCert,
                path: p.clone(),
                meta: host.metadata(&p).map_err(obs_err),
            });
            let pem = host.read(&p).map_err(obs_err)?;
            Credential::ClientCertificate {
                cert: certs::summarize_pem(&pem)?,
                from: p,
            }
        }
        kubeconfig::CredentialSource::Token => Credential::Token,
        kubeconfig::CredentialSource::Exec(command) => Credential::Exec { command },
        kubeconfig::CredentialSource::AuthProvider(name) => Credential::AuthProvider { name },
        kubeconfig::CredentialSource::None => Credential::None,
    })
}
