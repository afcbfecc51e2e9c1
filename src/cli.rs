//! Command line: `serve` (the DaemonSet agent) and `check` (one-shot report).
//! Every flag has an environment twin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::agent::{self, AgentConfig, AgentError};
use crate::evaluate::policy::{Policy, PolicyError};
use crate::evaluate::Severity;
use crate::io::host::HostRoot;
use crate::io::kube::{ApiAccessMode, ClientError};
use crate::model::file::HostError;
use crate::observe::cluster::{Cluster, ClusterOptions};
use crate::observe::enrich::EnrichOptions;
use crate::observe::live::socket::Timeouts;
use crate::observe::live::{LiveMode, LiveOptions};
use crate::observe::ObserveOptions;
use crate::publish::drift::store::StateDir;
use crate::publish::report::{self, Report};

/// The default listen port (the Prometheus default-port-allocations range 9100–9999 is
/// full; see README "Port").
pub const DEFAULT_PORT: u16 = 10358;

/// The default port of the health probes' own listener (`--health-listen-address`), on
/// loopback: the next one after [`DEFAULT_PORT`].
pub const DEFAULT_HEALTH_PORT: u16 = 10359;

#[derive(Debug, Parser)]
#[command(
    name = "kubelet-sentinel",
    version,
    about = "Continuous, evidence-backed kubelet hardening checks for Prometheus",
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Where the host's root filesystem is mounted (the DaemonSet uses /host).
    #[arg(
        long,
        global = true,
        env = "KUBELET_SENTINEL_HOST_ROOT",
        default_value = "/"
    )]
    pub host_root: PathBuf,

    /// Node name reported on every series (default: the host's hostname).
    #[arg(long, global = true, env = "NODE_NAME")]
    pub node_name: Option<String>,

    /// Use this process as the kubelet instead of searching /proc.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_KUBELET_PID")]
    pub kubelet_pid: Option<i32>,

    /// Policy file (YAML) layered over the embedded defaults.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_POLICY")]
    pub policy: Option<PathBuf>,

    /// A copy of the official Kubernetes CVE feed (JSON Feed, as served at
    /// kubernetes.io/docs/reference/issues-security/official-cve-feed/index.json), merged
    /// with the embedded CVE table: kubelet CVEs announced after this build count too.
    /// Capped at 8 MiB; an unusable file makes kubelet-version-no-known-cves unknown.
    #[arg(
        long,
        global = true,
        env = "KUBELET_SENTINEL_CVE_FEED",
        value_name = "FILE"
    )]
    pub cve_feed: Option<PathBuf>,

    /// Cap on any single host file read, in bytes.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_MAX_READ_BYTES", default_value_t = crate::io::host::DEFAULT_MAX_READ)]
    pub max_read_bytes: u64,

    /// Probe the kubelet's sockets (TLS, anonymous access, read-only port): auto = only
    /// when <host-root>/proc is a live procfs, never for a host tree on disk.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_LIVE_PROBES", value_enum, default_value_t = LiveProbes::Auto)]
    pub live_probes: LiveProbes,

    /// Probe the kubelet at this IP instead of the address of its listeners.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_KUBELET_ADDRESS")]
    pub kubelet_address: Option<std::net::IpAddr>,

    /// Connect and overall timeout of each live probe.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_PROBE_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub probe_timeout: Duration,

    /// Opt-in: run the kubelet's own binary with `--version` (no shell, empty environment)
    /// when its Go build information names no version; live hosts only, and only when the
    /// process passed the identity checks (root-owned executable, host mount namespace).
    #[arg(long, global = true, env = "KUBELET_SENTINEL_VERSION_EXEC", default_value_t = false, action = clap::ArgAction::Set)]
    pub version_exec: bool,

    /// The kubelet's version, overriding every other source (e.g. v1.31.4).
    #[arg(long, global = true, env = "KUBELET_SENTINEL_KUBELET_VERSION")]
    pub kubelet_version: Option<String>,

    /// The agent's own state dir: the node's baseline and last-seen state (default:
    /// $STATE_DIRECTORY, else $XDG_STATE_HOME/kubelet-sentinel, else
    /// ~/.local/state/kubelet-sentinel, else ./state; the DaemonSet uses a hostPath such as
    /// /var/lib/kubelet-sentinel).
    #[arg(long, global = true, env = "KUBELET_SENTINEL_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Make the policy's expectations the baseline (every control held to pass) instead of
    /// the node's first observation (serve, baseline accept).
    #[arg(long, global = true, env = "KUBELET_SENTINEL_BASELINE_FROM_POLICY", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub baseline_from_policy: bool,

    /// Use the Kubernetes API (pods on this node, namespaces) for the Pod Security
    /// controls: auto = when in a cluster (KUBERNETES_SERVICE_HOST) or --kubeconfig is
    /// given; on = required (start fails without it); off = never.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_API_ACCESS", value_enum, default_value_t = ApiAccess::Auto)]
    pub api_access: ApiAccess,

    /// Kubeconfig for the API outside a cluster (wins over the in-cluster service account).
    #[arg(long, global = true, env = "KUBELET_SENTINEL_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Read the kubelet's running configuration from its /configz and compare it with its
    /// files and flags (control running-config-matches-disk). Needs RBAC `get` on
    /// `nodes/configz` (kubelets with KubeletFineGrainedAuthz) or `nodes/proxy`.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_READ_RUNNING_CONFIG", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub read_running_config: bool,

    /// Also read /configz through the API server's node proxy
    /// (/api/v1/nodes/<node>/proxy/configz) when the kubelet's own port refuses or does
    /// not answer. Needs `get` on `nodes/proxy`, which is effectively full control of every
    /// kubelet: see the README before allowing it.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_RUNNING_CONFIG_VIA_PROXY", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub running_config_via_proxy: bool,

    /// Log format.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax, e.g. `info` or `kubelet_sentinel=debug`).
    #[arg(
        long,
        global = true,
        env = "KUBELET_SENTINEL_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LiveProbes {
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiAccess {
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: evaluate periodically and serve /metrics, /healthz, /readyz.
    Serve(ServeArgs),
    /// Evaluate once, print a report and exit 0 (pass), 1 (failures at or above
    /// --fail-on) or 2 (could not run).
    Check(CheckArgs),
    /// Show or accept the node's drift baseline (in --state-dir).
    #[command(subcommand)]
    Baseline(BaselineCommand),
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Print the stored baseline (JSON); exit 1 when there is none.
    Show,
    /// Evaluate now and make the result the node's baseline (with
    /// --baseline-from-policy: the policy's expectations). A running agent reloads it.
    Accept,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KUBELET_SENTINEL_LISTEN_ADDRESS", default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)))]
    pub listen_address: SocketAddr,

    /// Address of the health probes' own listener (/healthz, /readyz; plain HTTP), which
    /// no metrics client can starve. Loopback by default: with hostNetwork the kubelet
    /// probes it at host 127.0.0.1, and nothing off the node reaches it.
    #[arg(long, env = "KUBELET_SENTINEL_HEALTH_LISTEN_ADDRESS", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_HEALTH_PORT)))]
    pub health_listen_address: SocketAddr,

    /// Time between full evaluations (Go-style duration: 30s, 1m, 1h30m).
    #[arg(long, env = "KUBELET_SENTINEL_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Time between change checks: fingerprints of every file the last evaluation read
    /// and the kubelet's pid, start time and command line; a change re-evaluates at once.
    #[arg(long, env = "KUBELET_SENTINEL_WATCH_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub watch_interval: Duration,

    /// Post a Kubernetes Event (type Warning, reason ControlRegressed or ControlDrifted)
    /// on this node's Node object when a control regresses or drifts from the baseline;
    /// rate-limited. Needs API access and RBAC to create events.
    #[arg(long, env = "KUBELET_SENTINEL_EVENTS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub events: bool,
    /// Serve HTTPS only, with this PEM certificate chain (leaf first); needs
    /// --metrics-tls-key. Both files are reloaded when they change.
    #[arg(
        long,
        env = "KUBELET_SENTINEL_METRICS_TLS_CERT",
        value_name = "FILE",
        requires = "metrics_tls_key",
        conflicts_with = "metrics_tls_self_signed"
    )]
    pub metrics_tls_cert: Option<PathBuf>,

    /// The PEM private key of --metrics-tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "KUBELET_SENTINEL_METRICS_TLS_KEY",
        value_name = "FILE",
        requires = "metrics_tls_cert"
    )]
    pub metrics_tls_key: Option<PathBuf>,

    /// Serve HTTPS only, with a self-signed certificate made in memory at start (new at
    /// every start; clients skip verification: the bearer token protects the data).
    #[arg(long, env = "KUBELET_SENTINEL_METRICS_TLS_SELF_SIGNED", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub metrics_tls_self_signed: bool,

    /// Who may read /metrics: none = anyone who reaches the port; kubernetes = a bearer
    /// token that the Kubernetes API authenticates (TokenReview) and authorises for `get`
    /// on the non-resource URL /metrics (SubjectAccessReview). Needs API access.
    #[arg(long, env = "KUBELET_SENTINEL_METRICS_AUTH", value_enum, default_value_t = MetricsAuth::None)]
    pub metrics_auth: MetricsAuth,

    /// Bound on each TokenReview and SubjectAccessReview of --metrics-auth kubernetes.
    #[arg(long, env = "KUBELET_SENTINEL_METRICS_AUTH_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub metrics_auth_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricsAuth {
    None,
    Kubernetes,
}

impl ServeArgs {
    /// Where the serving certificate comes from (`None`: plain HTTP). `node` names the
    /// self-signed certificate.
    pub fn metrics_tls(&self, node: Option<&str>) -> Option<crate::publish::tls::TlsSource> {
        use crate::publish::tls::TlsSource;
        match (&self.metrics_tls_cert, &self.metrics_tls_key) {
            (Some(cert), Some(key)) => Some(TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ if self.metrics_tls_self_signed => {
                // The node name as a DNS name when it is one (a certificate refuses others).
                let dns = |n: &&str| {
                    !n.is_empty()
                        && n.len() <= 253
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                };
                let mut names: Vec<String> =
                    node.filter(dns).map(str::to_string).into_iter().collect();
                names.extend(["localhost".to_string(), "kubelet-sentinel".to_string()]);
                Some(TlsSource::SelfSigned { names })
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Output format.
    #[arg(long, env = "KUBELET_SENTINEL_FORMAT", value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Exit 1 when a control at or above this severity fails.
    #[arg(long, env = "KUBELET_SENTINEL_FAIL_ON", value_enum, default_value_t = FailOn::High)]
    pub fail_on: FailOn,

    /// Colour in the table output: auto (when stdout is a terminal), always, never.
    #[arg(long, env = "KUBELET_SENTINEL_COLOR", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Never,
}

impl FailOn {
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Critical => Some(Severity::Critical),
            FailOn::High => Some(Severity::High),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::Low => Some(Severity::Low),
            FailOn::Never => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Parse a Go-style duration (`30s`, `1m30s`); must be positive.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match crate::model::kubelet_config::settings::parse_go_duration(s) {
        Some(secs) if secs > 0.0 && secs.is_finite() => Ok(Duration::from_secs_f64(secs)),
        Some(_) => Err(format!("{s:?}: must be positive")),
        None => Err(format!("{s:?}: not a duration (use e.g. 30s, 1m, 1h30m)")),
    }
}

/// Errors at the command-line boundary; every one means "could not run" (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("--host-root: {0}")]
    HostRoot(#[from] HostError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),
    #[error("baseline: {0}")]
    Baseline(String),
    #[error("Kubernetes API: {0}")]
    Cluster(#[from] ClientError),
}

fn cluster_options(global: &GlobalArgs) -> ClusterOptions {
    ClusterOptions {
        mode: match global.api_access {
            ApiAccess::Auto => ApiAccessMode::Auto,
            ApiAccess::On => ApiAccessMode::On,
            ApiAccess::Off => ApiAccessMode::Off,
        },
        kubeconfig: global.kubeconfig.clone(),
        ..ClusterOptions::default()
    }
}

/// `check` and `baseline accept`: the API's view, waited for at most the request timeout.
fn check_cluster(
    global: &GlobalArgs,
    host: &HostRoot,
    opts: &ObserveOptions,
    rt: &tokio::runtime::Runtime,
) -> Result<Cluster, CliError> {
    // `--api-access=off` is decided by `Cluster::connect` too (no API access, the reason
    // "--api-access=off").
    let copts = cluster_options(global);
    let node = crate::observe::node_name(host, opts.node_name.as_deref());
    let cluster = rt.block_on(async {
        let c = Cluster::connect(&copts, &node).await?;
        c.wait_synced(copts.request_timeout).await;
        Ok::<_, ClientError>(c)
    })?;
    Ok(cluster)
}

/// Standard error for the logs, where a failed write is dropped: a closed or full stderr
/// (the reader of a pipe gone, `EPIPE`) must never bring the agent down. tracing's own
/// report of a failed write (`log_internal_errors`) is an `eprintln!`, which panics when
/// stderr is broken (tracing-subscriber `src/fmt/fmt_layer.rs`, `Layer::on_event`): it is
/// turned off in [`init_logging`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Lost, not retried: the agent's work goes on whether or not its log is read.
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Set up logging to stderr (see [`LossyStderr`]).
pub fn init_logging(global: &GlobalArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false)
        .with_writer(|| LossyStderr);
    // A second initialisation (tests) is harmless: ignore the error.
    let _ = match global.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn enrich_options(global: &GlobalArgs) -> EnrichOptions {
    EnrichOptions {
        live: LiveOptions {
            mode: match global.live_probes {
                LiveProbes::Auto => LiveMode::Auto,
                LiveProbes::On => LiveMode::On,
                LiveProbes::Off => LiveMode::Off,
            },
            timeouts: Timeouts {
                connect: global.probe_timeout,
                overall: global.probe_timeout,
            },
            kubelet_address: global.kubelet_address,
            ..LiveOptions::default()
        },
        version_exec: global.version_exec,
        version_timeout: Duration::from_secs(2),
        version_override: global.kubelet_version.clone().filter(|v| !v.is_empty()),
        running_config: crate::observe::running_config::RunningConfigOptions {
            enabled: global.read_running_config,
            via_proxy: global.running_config_via_proxy,
            timeout: global.probe_timeout.max(Duration::from_secs(3)),
            explicit_address: global.kubelet_address.is_some(),
        },
    }
}

fn load_common(global: &GlobalArgs) -> Result<(HostRoot, Policy, ObserveOptions), CliError> {
    let host = HostRoot::new(&global.host_root)?.with_max_read(global.max_read_bytes);
    let policy = match &global.policy {
        Some(p) => {
            let path = p.to_string_lossy();
            let bytes =
                crate::io::host::read_operator_file(p, crate::evaluate::policy::MAX_POLICY_BYTES)
                    .map_err(|e| PolicyError::Read {
                    path: path.to_string(),
                    source: e.into_io_error(),
                })?;
            Policy::from_bytes(&path, bytes)?
        }
        None => Policy::embedded(),
    };
    // Read once at start (a new feed needs a restart, like the policy); an unusable file is
    // logged and makes the CVE control unknown, never a start failure.
    let policy = match global
        .cve_feed
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
    {
        Some(path) => policy.with_cve_feed(load_cve_feed(path)),
        None => policy,
    };
    let opts = ObserveOptions {
        node_name: global.node_name.clone(),
        kubelet_pid: global.kubelet_pid,
    };
    Ok((host, policy, opts))
}

/// `--cve-feed FILE`: a regular file of at most `MAX_FEED_BYTES` (a FIFO or device is
/// refused, never read), parsed and merged with the embedded table; logged.
fn load_cve_feed(path: &std::path::Path) -> crate::evaluate::cve_feed::CveFeedLoad {
    use crate::evaluate::cve_feed;
    let read = crate::io::host::read_operator_file(path, cve_feed::MAX_FEED_BYTES);
    cve_feed::load_logged(path, read)
}

/// The state dir: `--state-dir` or the default for a plain run.
fn state_dir(global: &GlobalArgs) -> StateDir {
    StateDir::new(
        global
            .state_dir
            .clone()
            .unwrap_or_else(crate::publish::drift::store::default_state_dir),
    )
}

fn check_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    // Multi-thread: `Handle::block_on` from this thread needs worker threads to drive I/O
    // and timers (a current-thread runtime would not).
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

fn write_stdout(out: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|_| {
            if out.ends_with('\n') {
                Ok(())
            } else {
                stdout.write_all(b"\n")
            }
        })
        .map_err(CliError::Output)
}

/// `baseline show` and `baseline accept`.
fn run_baseline(
    cmd: &BaselineCommand,
    global: &GlobalArgs,
    host: &HostRoot,
    policy: &Policy,
    opts: &ObserveOptions,
) -> Result<i32, CliError> {
    use crate::publish::drift::store::{Loaded, BASELINE_FILE};
    use std::io::Write;
    let store = state_dir(global);
    match cmd {
        BaselineCommand::Show => {
            let path = store.path(BASELINE_FILE);
            match store.load::<crate::publish::drift::Baseline>(BASELINE_FILE, |_| Ok(())) {
                Loaded::Ok(b, _) => {
                    let text = serde_json::to_string_pretty(&b)
                        .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
                    write_stdout(&text)?;
                    Ok(0)
                }
                Loaded::Missing => {
                    // Not `eprintln!`, which panics on a broken stderr.
                    let _ = writeln!(
                        std::io::stderr(),
                        "kubelet-sentinel: no baseline at {}",
                        path.display()
                    );
                    Ok(1)
                }
                Loaded::Corrupt(why) => Err(CliError::Baseline(format!(
                    "{}: cannot be used: {why}",
                    path.display()
                ))),
                Loaded::Unreadable(e) => Err(CliError::Baseline(e.to_string())),
            }
        }
        BaselineCommand::Accept => {
            let rt = check_runtime()?;
            let cluster = check_cluster(global, host, opts, &rt)?;
            let (snapshot, results, _) = agent::check_once(
                host,
                opts,
                &enrich_options(global),
                policy,
                Some(&cluster),
                rt.handle(),
            );
            drop(cluster);
            rt.shutdown_timeout(Duration::from_secs(1));
            let b = crate::publish::drift::accept(
                &store,
                &snapshot,
                &results,
                snapshot.taken_at,
                global.baseline_from_policy,
                agent::BUILD_VERSION,
            )
            .map_err(|e| CliError::Baseline(e.to_string()))?;
            write_stdout(&format!(
                "baseline accepted for node {}: {} controls ({}), written to {}",
                b.node,
                b.controls.len(),
                b.origin.as_str(),
                store.path(BASELINE_FILE).display()
            ))?;
            Ok(0)
        }
    }
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, CliError> {
    init_logging(&cli.global);
    // The process-wide rustls provider (the Kubernetes API client's TLS): ring, the only
    // one built in. Already installed (a second run in tests) is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (host, policy, opts) = load_common(&cli.global)?;
    if cli.global.running_config_via_proxy && !cli.global.read_running_config {
        tracing::warn!(
            "--running-config-via-proxy has no effect without --read-running-config: the running configuration is not read"
        );
    }
    match cli.command {
        Command::Baseline(cmd) => run_baseline(&cmd, &cli.global, &host, &policy, &opts),
        Command::Check(args) => {
            let rt = check_runtime()?;
            let enrich = enrich_options(&cli.global);
            let cluster = check_cluster(&cli.global, &host, &opts, &rt)?;
            let (snapshot, results, duration) =
                agent::check_once(&host, &opts, &enrich, &policy, Some(&cluster), rt.handle());
            drop(cluster);
            rt.shutdown_timeout(Duration::from_secs(1));
            let drift = crate::publish::drift::assess(&state_dir(&cli.global), &snapshot, &results);
            let report = Report::new(&snapshot, results, duration).with_drift(drift);
            let colour = match args.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    use std::io::IsTerminal;
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            let out = match args.format {
                Format::Table => report::render_table(&report, colour),
                Format::Json => report::render_json(&report),
                Format::Junit => report::render_junit(&report),
            };
            match write_stdout(&out) {
                // The reader went away (`check | head`): what it did not read is not an
                // error; the verdict stands.
                Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
            Ok(report::exit_code(&report, args.fail_on.threshold()))
        }
        Command::Serve(args) => {
            let cfg = AgentConfig {
                host_root: cli.global.host_root.clone(),
                node_name: opts.node_name.clone(),
                kubelet_pid: opts.kubelet_pid,
                interval: args.interval,
                listen: args.listen_address,
                health_listen: args.health_listen_address,
                policy,
                max_read_bytes: cli.global.max_read_bytes,
                enrich: enrich_options(&cli.global),
                state_dir: state_dir(&cli.global).dir().to_path_buf(),
                baseline_from_policy: cli.global.baseline_from_policy,
                watch_interval: args.watch_interval,
                cluster: ClusterOptions {
                    events: args.events,
                    ..cluster_options(&cli.global)
                },
                metrics: agent::MetricsOptions {
                    tls: args.metrics_tls(cli.global.node_name.as_deref()),
                    auth: args.metrics_auth == MetricsAuth::Kubernetes,
                    auth_timeout: args.metrics_auth_timeout,
                },
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(4)
                .enable_all()
                .build()
                .map_err(CliError::Runtime)?;
            let result = rt.block_on(agent::run_serve(cfg));
            // An evaluation stuck in a host read must not hold the exit hostage.
            rt.shutdown_timeout(Duration::from_secs(5));
            result?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cve_feed_file_is_read_capped_and_type_checked() {
        use crate::evaluate::cve_feed::{CveFeedError, MAX_FEED_BYTES};
        use crate::model::file::HostError;
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FEED_BYTES + 1)
            .unwrap();
        assert!(matches!(
            load_cve_feed(&big),
            Err(CveFeedError::Read(HostError::TooLarge {
                limit: MAX_FEED_BYTES,
                ..
            }))
        ));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = load_cve_feed(&fifo).unwrap_err();
        assert!(
            matches!(e, CveFeedError::Read(HostError::NotAFile { .. })),
            "{e}"
        );
        assert!(e.to_string().starts_with("--cve-feed "), "{e}");
    }
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    fn serve_args(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let mut argv = vec!["kubelet-sentinel", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(a) => Ok(a),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn metrics_tls_and_auth_flags() {
        // Defaults: plain HTTP, no authentication (local runs, existing tests).
        let a = serve_args(&[]).unwrap();
        assert_eq!(a.metrics_auth, MetricsAuth::None);
        assert_eq!(a.metrics_tls(Some("n")), None);
        assert_eq!(a.metrics_auth_timeout, Duration::from_secs(5));

        // Both files or neither, with a clear error naming the missing one.
        let e = serve_args(&["--metrics-tls-cert", "/c.pem"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--metrics-tls-key"), "{e}");
        let e = serve_args(&["--metrics-tls-key", "/k.pem"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--metrics-tls-cert"), "{e}");
        let a = serve_args(&[
            "--metrics-tls-cert",
            "/c.pem",
            "--metrics-tls-key",
            "/k.pem",
        ])
        .unwrap();
        assert_eq!(
            a.metrics_tls(Some("n")),
            Some(crate::publish::tls::TlsSource::Files {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            })
        );
        // Files and self-signed together: refused.
        let e = serve_args(&[
            "--metrics-tls-cert",
            "/c.pem",
            "--metrics-tls-key",
            "/k.pem",
            "--metrics-tls-self-signed",
        ])
        .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);

        let a = serve_args(&["--metrics-tls-self-signed", "--metrics-auth", "kubernetes"]).unwrap();
        assert_eq!(a.metrics_auth, MetricsAuth::Kubernetes);
        assert!(matches!(
            a.metrics_tls(Some("node-1")),
            Some(crate::publish::tls::TlsSource::SelfSigned { names }) if names[0] == "node-1"
        ));
        assert!(matches!(
            a.metrics_tls(Some("not a DNS name!")),
            Some(crate::publish::tls::TlsSource::SelfSigned { names }) if names == ["localhost", "kubelet-sentinel"]
        ));
        assert!(serve_args(&["--metrics-auth", "basic"]).is_err());
        assert!(serve_args(&["--metrics-auth-timeout", "0s"]).is_err());
    }

    #[test]
    fn every_flag_has_an_env_twin() {
        let cmd = Cli::command();
        let mut missing = Vec::new();
        let mut check = |c: &clap::Command| {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") || a.is_positional() {
                    continue;
                }
                if a.get_env().is_none() {
                    missing.push(format!("{} --{id}", c.get_name()));
                }
            }
        };
        check(&cmd);
        for sub in cmd.get_subcommands() {
            check(sub);
            for nested in sub.get_subcommands() {
                check(nested);
            }
        }
        assert!(missing.is_empty(), "flags without env twin: {missing:?}");
    }
}
