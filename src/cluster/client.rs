//! The Kubernetes API client: the in-cluster service account, or `--kubeconfig FILE`.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bound on connecting to the API server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on each read from the API server. A watch asks the server to end it after
/// [`super::watch::WATCH_TIMEOUT_SECONDS`] (less than this), so a quiet watch is not a
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
    /// `why` is redacted ([`crate::parse::kubeconfig_fault`]): kube's own error would
    /// render a snippet of the file (tokens, keys) and, as a `source`, reach the log.
    #[error("--kubeconfig {path}: {why}")]
    Kubeconfig { path: PathBuf, why: String },
    #[error("in-cluster configuration: {0}")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("API client: {0}")]
    Client(#[source] kube::Error),
    #[error("--api-access=on, but not in a cluster (KUBERNETES_SERVICE_HOST is not set) and no --kubeconfig given")]
    NotConfigured,
}

impl ClientError {
    fn kubeconfig(path: &std::path::Path, e: &kube::config::KubeconfigError) -> Self {
        ClientError::Kubeconfig {
            path: path.to_path_buf(),
            why: crate::parse::kubeconfig_fault(e),
        }
    }
}

/// Where the client's configuration comes from, decided from the flags and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Kubeconfig(PathBuf),
    InCluster,
    /// No API access, with the reason (for the controls' `unknown`).
    None(String),
}

impl Source {
    /// `--kubeconfig` wins when given (explicit), else the in-cluster service account when
    /// `KUBERNETES_SERVICE_HOST` is set, else nothing (an error with `--api-access=on`).
    pub fn decide(
        mode: ApiAccessMode,
        kubeconfig: Option<&Path>,
        in_cluster: bool,
    ) -> Result<Source, ClientError> {
        if mode == ApiAccessMode::Off {
            return Ok(Source::None("--api-access=off".to_string()));
        }
        match (kubeconfig, in_cluster) {
            (Some(p), _) => Ok(Source::Kubeconfig(p.to_path_buf())),
            (None, true) => Ok(Source::InCluster),
            (None, false) if mode == ApiAccessMode::On => Err(ClientError::NotConfigured),
            (None, false) => Ok(Source::None(
                "not in a cluster (KUBERNETES_SERVICE_HOST unset) and no --kubeconfig".to_string(),
            )),
        }
    }

    /// How the client reaches the API, for humans.
    pub fn describe(&self) -> String {
        match self {
            Source::Kubeconfig(p) => format!("kubeconfig {}", p.display()),
            Source::InCluster => "in-cluster service account".to_string(),
            Source::None(why) => why.clone(),
        }
    }
}

/// Build the client's configuration (reads the kubeconfig or the service account files).
pub async fn config(source: &Source) -> Result<Option<kube::Config>, ClientError> {
    let mut config = match source {
        Source::None(_) => return Ok(None),
        Source::InCluster => kube::Config::incluster().map_err(ClientError::InCluster)?,
        Source::Kubeconfig(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| ClientError::kubeconfig(path, &e))?;
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

/// A client from a configuration (rustls with the ring provider).
pub fn client(config: kube::Config) -> Result<kube::Client, ClientError> {
    kube::Client::try_from(config).map_err(ClientError::Client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_follows_the_mode_and_the_environment() {
        let kc = Path::new("/k.yaml");
        assert_eq!(
            Source::decide(ApiAccessMode::Off, Some(kc), true).unwrap(),
            Source::None("--api-access=off".into())
        );
        assert_eq!(
            Source::decide(ApiAccessMode::Auto, Some(kc), true).unwrap(),
            Source::Kubeconfig(kc.to_path_buf())
        );
        assert_eq!(
            Source::decide(ApiAccessMode::Auto, None, true).unwrap(),
            Source::InCluster
        );
        assert!(matches!(
            Source::decide(ApiAccessMode::Auto, None, false).unwrap(),
            Source::None(why) if why.contains("not in a cluster")
        ));
        assert!(matches!(
            Source::decide(ApiAccessMode::On, None, false),
            Err(ClientError::NotConfigured)
        ));
    }
}
