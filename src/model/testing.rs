//! Test support: snapshots built in memory, as an observation would have built them.

use crate::model::cert::CertSummary;
use crate::model::file::{FileKind, FileMeta};
use crate::model::kubelet_config::flags::Flags;
use crate::model::kubelet_config::{ConfigInput, EffectiveConfig};
use crate::model::observed::{ObsError, ObsErrorKind};
use crate::model::snapshot::{
    ApiServer, Credential, Discovery, FileObservation, FileRole, Kubelet, Snapshot,
};

/// Where `snapshot_with` puts the `--config` file unless the args name one.
pub const CONFIG_PATH: &str = "/var/lib/kubelet/config.yaml";
/// Where drop-ins live unless the args name a `--config-dir`.
pub const CONFIG_DIR: &str = "/etc/kubernetes/kubelet.conf.d";
const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

fn doc(body: &str) -> String {
    if body.contains("kind:") || body.trim_start().starts_with('{') {
        body.to_string()
    } else {
        format!("{HEAD}{body}")
    }
}

/// A snapshot of a kubelet started with `args`; `config_yaml` is the `--config` file's
/// body (the type header is added when missing; `--config` is added when absent).
pub fn snapshot_with(args: &[&str], config_yaml: Option<&str>) -> Snapshot {
    snapshot_with_dropins(args, config_yaml, &[])
}

/// Like [`snapshot_with`], with drop-ins `(file name, body)` under `--config-dir`.
pub fn snapshot_with_dropins(
    args: &[&str],
    config_yaml: Option<&str>,
    dropins: &[(&str, &str)],
) -> Snapshot {
    let mut argv: Vec<String> = args.iter().map(std::string::ToString::to_string).collect();
    let probe = Flags::parse(&argv);
    if config_yaml.is_some() && !probe.has("config") {
        argv.push(format!("--config={CONFIG_PATH}"));
    }
    if !dropins.is_empty() && !probe.has("config-dir") {
        argv.push(format!("--config-dir={CONFIG_DIR}"));
    }
    let flags = Flags::parse(&argv);
    let config_file = config_yaml.map(|body| ConfigInput {
        path: flags
            .string("config")
            .unwrap_or_else(|| CONFIG_PATH.to_string()),
        text: Ok(doc(body)),
    });
    let config_dir = flags.string("config-dir");
    let inputs = dropins
        .iter()
        .map(|(name, body)| ConfigInput {
            path: format!("{}/{name}", config_dir.clone().unwrap_or_default()),
            text: Ok(doc(body)),
        })
        .collect();
    let config = EffectiveConfig::build(flags.clone(), config_file, config_dir, inputs, None);
    let mut full_argv = vec!["/usr/bin/kubelet".to_string()];
    full_argv.extend(argv);
    Snapshot {
        node: "node-1".to_string(),
        taken_at: 1_700_000_000.0,
        discovery: Discovery::Found {
            pid: 4242,
            note: None,
            evidence: Vec::new(),
        },
        kubelet: Some(Kubelet {
            pid: 4242,
            argv: full_argv,
            binary: "/usr/bin/kubelet".to_string(),
            flavour: crate::model::snapshot::KubeletFlavour::Kubelet,
            start_time_ticks: None,
            started_at: None,
            flags,
            config,
            version: None,
            version_source: None,
            version_error: None,
            serving_cert_file: None,
            unit: None,
            files: Vec::new(),
            client_ca: None,
            credential: None,
            k3s: None,
        }),
        apiserver: None,
        probes: Vec::new(),
        live: None,
        cluster: None,
        running_config: None,
        kube_proxy: None,
    }
}

/// A kubeadm-like hardened node (config file with kubeadm's values).
pub fn kubeadm() -> Snapshot {
    snapshot_with(
        &["--kubeconfig=/etc/kubernetes/kubelet.conf"],
        Some(
            "authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\n    cacheTTL: 0s\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\nauthorization:\n  mode: Webhook\nhealthzBindAddress: 127.0.0.1\nhealthzPort: 10248\nrotateCertificates: true\nstreamingConnectionIdleTimeout: 0s\n",
        ),
    )
}

/// The kubelet inside a snapshot, for tests to adjust.
pub fn kubelet_mut(s: &mut Snapshot) -> &mut Kubelet {
    s.kubelet.as_mut().expect("test snapshot has a kubelet")
}

/// A file with metadata.
pub fn file(role: FileRole, path: &str, mode: u32, uid: u32, gid: u32) -> FileObservation {
    FileObservation {
        role,
        path: path.to_string(),
        meta: Ok(FileMeta {
            path: path.to_string(),
            resolved: path.to_string(),
            kind: FileKind::File,
            mode,
            uid,
            gid,
            size: 100,
            inode: 1,
            dev: 1,
            mtime_ns: 0,
            ctime_ns: 0,
        }),
    }
}

/// A file whose metadata could not be read.
pub fn file_err(role: FileRole, path: &str, kind: ObsErrorKind) -> FileObservation {
    FileObservation {
        role,
        path: path.to_string(),
        meta: Err(ObsError::new(kind, format!("{path}: {kind:?}"))),
    }
}

/// A certificate summary.
pub fn cert(cn: &str, orgs: &[&str], is_ca: bool) -> CertSummary {
    CertSummary {
        sans: Vec::new(),
        self_signed: false,
        kubelet_generated: false,
        subject: format!(
            "CN={cn}{}",
            orgs.iter().map(|o| format!(", O={o}")).collect::<String>()
        ),
        issuer: "CN=kubernetes".to_string(),
        common_name: Some(cn.to_string()),
        organizations: orgs.iter().map(std::string::ToString::to_string).collect(),
        is_ca,
        not_before: 1_600_000_000,
        not_after: 1_900_000_000,
        count: 1,
    }
}

/// A client-certificate credential.
pub fn client_cert(cn: &str, orgs: &[&str]) -> Credential {
    Credential::ClientCertificate {
        cert: cert(cn, orgs, false),
        from: "/var/lib/kubelet/pki/kubelet-client-current.pem".to_string(),
    }
}

/// A kube-apiserver process with these flags.
pub fn apiserver(args: &[&str]) -> ApiServer {
    ApiServer {
        pid: 99,
        flags: Flags::parse(args),
        authorization_config: None,
    }
}
