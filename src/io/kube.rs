//! The Kubernetes API client: the in-cluster service account, or `--kubeconfig FILE`.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bound on connecting to the API server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on each read from the API server. A watch asks the server to end it after
/// `observe::cluster::watch::WATCH_TIMEOUT_SECONDS` (less than this), so a quiet watch is not a
/// read timeout; a server that stops answering is.
pub const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on sending a request.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the agent uses the Kubernetes API (`--api-access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiAccessMode {
    /// In a cluster (`KUBERNETES_SERVICE_HOST` set) or with `--kubeconfig`; else off.
    Auto,
    /// Required: a client that cannot be built stops the agent at start.
    On,
    /// Never: the cluster controls are `unknown` ("no API access").
    Off,
}

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `why` is redacted ([`crate::model::parse::kubeconfig_fault`]): kube's own error would
    /// render a snippet of the file (tokens, keys) and, as a `source`, reach the log.
    #[error("--kubeconfig {path}: {why}")]
    Kubeconfig {
        /// The `--kubeconfig` file.
        path: PathBuf,
        /// What is wrong with it (invalid YAML, no usable context, …), with no snippet of
        /// the file.
        why: String,
    },
    /// The kubeconfig, or a file it names, cannot be read (not found, not a regular
    /// file, over its cap).
    #[error("--kubeconfig {path}: {error}")]
    KubeconfigRead {
        /// The `--kubeconfig` file, also when the file that failed is one it names (a
        /// certificate, key or token file): `source` names that one.
        path: PathBuf,
        /// The failed read, with the path actually read.
        error: crate::model::file::HostError,
    },
    /// `kube::Config::incluster` failed: the service account's token or CA under
    /// `/var/run/secrets/kubernetes.io/serviceaccount/` is missing or unreadable, or
    /// `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` do not make a URL.
    #[error("in-cluster configuration: {0}")]
    InCluster(kube::config::InClusterError),
    /// `kube::Client::try_from` refused the configuration (e.g. a certificate or key the
    /// TLS stack cannot load).
    #[error("API client: {0}")]
    Client(kube::Error),
    /// `--api-access=on`, but there is neither an in-cluster service account nor a
    /// `--kubeconfig` to use.
    #[error("--api-access=on, but not in a cluster (KUBERNETES_SERVICE_HOST is not set) and no --kubeconfig given")]
    NotConfigured,
}

impl ClientError {
    fn kubeconfig(path: &std::path::Path, e: &kube::config::KubeconfigError) -> Self {
        ClientError::Kubeconfig {
            path: path.to_path_buf(),
            why: crate::model::parse::kubeconfig_fault(e),
        }
    }
}

/// Where the client's configuration comes from, decided from the flags and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSource {
    /// The `--kubeconfig FILE`: its current context's cluster and user.
    Kubeconfig(PathBuf),
    /// The pod's service account (`KUBERNETES_SERVICE_HOST`/`_PORT`, and the token and CA
    /// under `/var/run/secrets/kubernetes.io/serviceaccount/`).
    InCluster,
    /// No API access, with the reason (for the controls' `unknown`).
    None(String),
}

impl ClientSource {
    /// `--kubeconfig` wins when given (explicit), else the in-cluster service account when
    /// `KUBERNETES_SERVICE_HOST` is set, else nothing (an error with `--api-access=on`).
    pub fn decide(
        mode: ApiAccessMode,
        kubeconfig: Option<&Path>,
        in_cluster: bool,
    ) -> Result<ClientSource, ClientError> {
        if mode == ApiAccessMode::Off {
            return Ok(ClientSource::None("--api-access=off".to_string()));
        }
        match (kubeconfig, in_cluster) {
            (Some(p), _) => Ok(ClientSource::Kubeconfig(p.to_path_buf())),
            (None, true) => Ok(ClientSource::InCluster),
            (None, false) if mode == ApiAccessMode::On => Err(ClientError::NotConfigured),
            (None, false) => Ok(ClientSource::None(
                "not in a cluster (KUBERNETES_SERVICE_HOST unset) and no --kubeconfig".to_string(),
            )),
        }
    }

    /// How the client reaches the API, for humans.
    pub fn describe(&self) -> String {
        match self {
            ClientSource::Kubeconfig(p) => format!("kubeconfig {}", p.display()),
            ClientSource::InCluster => "in-cluster service account".to_string(),
            ClientSource::None(why) => why.clone(),
        }
    }
}

/// Build the client's configuration (reads the kubeconfig or the service account files).
pub async fn config(source: &ClientSource) -> Result<Option<kube::Config>, ClientError> {
    let mut config = match source {
        ClientSource::None(_) => return Ok(None),
        ClientSource::InCluster => kube::Config::incluster().map_err(ClientError::InCluster)?,
        ClientSource::Kubeconfig(path) => {
            let kc = read_kubeconfig(path)?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| ClientError::kubeconfig(path, &e))?
        }
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    config.write_timeout = Some(WRITE_TIMEOUT);
    Ok(Some(config))
}

/// Cap on the `--kubeconfig` file (one with every certificate embedded is a few tens of
/// KiB).
pub const MAX_KUBECONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Read `--kubeconfig` with the agent's own capped reader (kube's `Kubeconfig::read_from`
/// reads with an uncapped `fs::read`, and blocks on a FIFO). The files the current
/// context names are read here too, each a regular file under its cap: the certificate
/// authority, client certificate and client key become their inline `*-data` fields, so
/// kube never opens them itself (`load_from_base64_or_file` in kube-client's
/// `src/config/file_config.rs` prefers the data); the token file, which kube re-reads to
/// follow rotation, is checked the same way before kube is given its path. Relative paths
/// are relative to the kubeconfig's directory, as kube's `read_from` (and client-go's
/// `ResolveLocalPaths`) make them.
fn read_kubeconfig(path: &Path) -> Result<kube::config::Kubeconfig, ClientError> {
    use crate::io::host::read_operator_file;
    use data_encoding::BASE64;
    let read_err = |error| ClientError::KubeconfigRead {
        path: path.to_path_buf(),
        error,
    };
    let bytes = read_operator_file(path, MAX_KUBECONFIG_BYTES).map_err(read_err)?;
    // kube's reader also accepts UTF-16 with a byte-order mark; a kubeconfig is UTF-8.
    let text = String::from_utf8(bytes).map_err(|_| {
        read_err(crate::model::file::HostError::NotUtf8 {
            path: path.display().to_string(),
        })
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    // One document, parsed with the agent's YAML budget (a bomb fails fast) and a
    // redacted error (no snippet of a file that holds keys and tokens).
    let mut kc: kube::config::Kubeconfig =
        crate::model::parse::yaml(text).map_err(|fault| ClientError::Kubeconfig {
            path: path.to_path_buf(),
            why: format!("invalid YAML: {fault}"),
        })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let named = |file: &str| -> PathBuf {
        let p = Path::new(file);
        if p.is_relative() {
            dir.join(p)
        } else {
            p.to_path_buf()
        }
    };
    // A PEM file the context names, read capped and inlined as `*-data` (base64).
    let inline = |file: &str| {
        read_operator_file(&named(file), crate::io::host::MAX_PEM_BYTES)
            .map(|pem| BASE64.encode(&pem))
            .map_err(read_err)
    };
    // Only the current context's cluster and user are used (and read).
    let current = kc
        .current_context
        .as_deref()
        .and_then(|name| kc.contexts.iter().find(|c| c.name == name))
        .and_then(|c| c.context.as_ref())
        .map(|c| (c.cluster.clone(), c.user.clone()));
    let Some((cluster_name, user_name)) = current else {
        return Ok(kc);
    };
    for named_cluster in kc.clusters.iter_mut().filter(|c| c.name == cluster_name) {
        if let Some(cluster) = named_cluster.cluster.as_mut() {
            if cluster.certificate_authority_data.is_none() {
                if let Some(file) = cluster.certificate_authority.take() {
                    cluster.certificate_authority_data = Some(inline(&file)?);
                }
            }
        }
    }
    let Some(user_name) = user_name else {
        return Ok(kc);
    };
    for named_user in kc.auth_infos.iter_mut().filter(|a| a.name == user_name) {
        if let Some(auth) = named_user.auth_info.as_mut() {
            if auth.client_certificate_data.is_none() {
                if let Some(file) = auth.client_certificate.take() {
                    auth.client_certificate_data = Some(inline(&file)?);
                }
            }
            if auth.client_key_data.is_none() {
                if let Some(file) = auth.client_key.take() {
                    auth.client_key_data = Some(inline(&file)?.into());
                }
            }
            if let Some(file) = auth.token_file.as_mut().filter(|f| !f.is_empty()) {
                read_operator_file(&named(file), MAX_TOKEN_BYTES).map_err(read_err)?;
                *file = named(file).display().to_string();
            }
        }
    }
    Ok(kc)
}

/// A client from a configuration (rustls with the ring provider).
pub fn client(config: kube::Config) -> Result<kube::Client, ClientError> {
    kube::Client::try_from(config).map_err(ClientError::Client)
}

/// Bound on a list and on opening a watch.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the agent's own bearer token is (for `GET /configz` on the kubelet).
#[derive(Clone)]
pub enum TokenSource {
    /// A token written in the kubeconfig.
    Inline(secrecy::SecretString),
    /// A token file, re-read at each use: the in-cluster service-account token
    /// (`/var/run/secrets/kubernetes.io/serviceaccount/token`) rotates.
    File(PathBuf),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            TokenSource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

/// Cap on a token file (service-account tokens are ~1 KiB).
pub const MAX_TOKEN_BYTES: u64 = 64 * 1024;

impl TokenSource {
    /// The token of a client configuration, if it carries one.
    pub fn of(config: &kube::Config) -> Option<TokenSource> {
        let auth = &config.auth_info;
        if let Some(t) = &auth.token {
            return Some(TokenSource::Inline(t.clone()));
        }
        auth.token_file
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(|p| TokenSource::File(PathBuf::from(p)))
    }

    /// The token now (a file is read again, at most [`MAX_TOKEN_BYTES`]).
    pub fn read(&self) -> Result<String, String> {
        use secrecy::ExposeSecret;
        let token = match self {
            TokenSource::Inline(t) => t.expose_secret().to_string(),
            TokenSource::File(p) => {
                // A regular file, capped; a FIFO or device is refused, never read.
                let bytes = crate::io::host::read_operator_file(p, MAX_TOKEN_BYTES)
                    .map_err(|e| format!("token file {e}"))?;
                String::from_utf8(bytes)
                    .map_err(|_| format!("token file {}: not valid UTF-8", p.display()))?
            }
        };
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err("the token is empty".to_string());
        }
        Ok(token)
    }
}

/// Create `object` (a review, an event) and wait at most `timeout` for the answer: the
/// object the API returns, or one line saying why not (`<what>: no answer within 5s`,
/// `<what>: 403 Forbidden: ...`).
pub async fn create<K>(
    api: &kube::Api<K>,
    object: &K,
    timeout: Duration,
    what: &str,
) -> Result<K, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match tokio::time::timeout(
        timeout,
        api.create(&kube::api::PostParams::default(), object),
    )
    .await
    {
        Err(_) => Err(format!(
            "{what}: no answer within {}s",
            timeout.as_secs_f64()
        )),
        Ok(Err(e)) => Err(format!("{what}: {}", describe(&e))),
        Ok(Ok(created)) => Ok(created),
    }
}

/// A one-line description of an API error: `401 Unauthorized: <message>`.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let mut out = s.code.to_string();
            if !s.reason.is_empty() {
                out.push(' ');
                out.push_str(&s.reason);
            }
            if !s.message.is_empty() && s.message != s.reason {
                out.push_str(": ");
                out.push_str(&s.message);
            }
            out
        }
        other => other.to_string(),
    }
}

/// Whether a review's answer allows: `allowed`, and not also `denied` (an authorizer that
/// denies outright wins). No status at all is not an allow.
pub fn allows(
    status: Option<&k8s_openapi::api::authorization::v1::SubjectAccessReviewStatus>,
) -> bool {
    status.is_some_and(|s| s.allowed && s.denied != Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_follows_the_mode_and_the_environment() {
        let kc = Path::new("/k.yaml");
        assert_eq!(
            ClientSource::decide(ApiAccessMode::Off, Some(kc), true).unwrap(),
            ClientSource::None("--api-access=off".into())
        );
        assert_eq!(
            ClientSource::decide(ApiAccessMode::Auto, Some(kc), true).unwrap(),
            ClientSource::Kubeconfig(kc.to_path_buf())
        );
        assert_eq!(
            ClientSource::decide(ApiAccessMode::Auto, None, true).unwrap(),
            ClientSource::InCluster
        );
        assert!(matches!(
            ClientSource::decide(ApiAccessMode::Auto, None, false).unwrap(),
            ClientSource::None(why) if why.contains("not in a cluster")
        ));
        assert!(matches!(
            ClientSource::decide(ApiAccessMode::On, None, false),
            Err(ClientError::NotConfigured)
        ));
    }
}
