//! The command line's flags: `serve`, `check`, `baseline`, and the flags every command
//! shares. Every flag has an environment twin (tests/docs_contract.rs and
//! tests/deploy_contract.rs hold docs/flags.md and the manifests to them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::evaluate::Severity;

/// The default listen port (the Prometheus default-port-allocations range 9100–9999 is
/// full; see docs/metrics.md#port).
pub const DEFAULT_PORT: u16 = 10358;

/// The default port of the health probes' own listener (`--health-listen-address`), on
/// loopback: the next one after [`DEFAULT_PORT`].
pub const DEFAULT_HEALTH_PORT: u16 = 10359;

/// The whole command line: the logging flags (every command's) and the command to run.
/// Every other flag belongs to the commands that use it (see [`EvaluateArgs`],
/// [`StateArgs`], [`ServeArgs`], [`CheckArgs`]), so each command's `--help` lists only its
/// own; they go after the command's name (`kubelet-sentinel check --host-root /host`).
#[derive(Debug, Parser)]
#[command(
    name = "kubelet-sentinel",
    version,
    about = "Continuous, evidence-backed kubelet hardening checks for Prometheus",
    long_about = None
)]
pub struct Cli {
    /// The logging flags: every command's (`global = true`: before or after the command's
    /// name).
    #[command(flatten)]
    pub log: LogArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Logging (stderr): every command accepts these, before or after its name.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Log format.
    #[arg(long, global = true, env = "KUBELET_SENTINEL_LOG_FORMAT", value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax, e.g. `info` or `kubelet_sentinel=debug`).
    #[arg(
        long,
        global = true,
        env = "KUBELET_SENTINEL_LOG_LEVEL",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log_level: String,
}

/// What `serve`, `check` and `baseline accept` observe and how they judge it: the host
/// and its kubelet, the live probes of the kubelet's sockets, the Kubernetes API, the
/// policy.
#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// The host and its kubelet.
    #[command(flatten)]
    pub host: HostArgs,
    /// The live probes of the kubelet's sockets and its running configuration.
    #[command(flatten)]
    pub probes: ProbeArgs,
    /// The Kubernetes API.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The policy and the CVE feed.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// The host and its kubelet.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Host and kubelet")]
pub struct HostArgs {
    /// Where the host's root filesystem is mounted (the DaemonSet uses /host).
    #[arg(
        long,
        env = "KUBELET_SENTINEL_HOST_ROOT",
        value_name = "DIR",
        default_value = "/"
    )]
    pub host_root: PathBuf,

    /// Node name reported on every series (default: the host's hostname).
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,

    /// Use this process as the kubelet instead of searching /proc.
    #[arg(long, env = "KUBELET_SENTINEL_KUBELET_PID", value_name = "PID")]
    pub kubelet_pid: Option<i32>,

    /// Cap on any single host file read, in bytes.
    #[arg(long, env = "KUBELET_SENTINEL_MAX_READ_BYTES", value_name = "BYTES", default_value_t = crate::io::host::DEFAULT_MAX_READ)]
    pub max_read_bytes: u64,

    /// The kubelet's version, overriding every other source (e.g. v1.31.4).
    #[arg(long, env = "KUBELET_SENTINEL_KUBELET_VERSION", value_name = "VERSION")]
    pub kubelet_version: Option<String>,

    /// Opt-in: run the kubelet's own binary with `--version` (no shell, empty environment)
    /// when its Go build information names no version; live hosts only, and only when the
    /// process passed the identity checks (root-owned executable, host mount namespace).
    #[arg(long, env = "KUBELET_SENTINEL_VERSION_EXEC", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub version_exec: bool,
}

/// The live probes of the kubelet's sockets and of its running configuration.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Kubelet probes")]
pub struct ProbeArgs {
    /// Probe the kubelet's sockets (TLS, anonymous access, read-only port): auto = only
    /// when the host root's /proc is a live procfs, never for a host tree on disk.
    #[arg(long, env = "KUBELET_SENTINEL_LIVE_PROBES", value_enum, value_name = "WHEN", default_value_t = LiveProbes::Auto)]
    pub live_probes: LiveProbes,

    /// Probe the kubelet at this IP instead of the address of its listeners.
    #[arg(long, env = "KUBELET_SENTINEL_KUBELET_ADDRESS", value_name = "IP")]
    pub kubelet_address: Option<std::net::IpAddr>,

    /// Connect and overall timeout of each live probe.
    #[arg(long, env = "KUBELET_SENTINEL_PROBE_TIMEOUT", value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub probe_timeout: Duration,

    /// Read the kubelet's running configuration from its /configz and compare it with its
    /// files and flags (control running-config-matches-disk). Needs RBAC `get` on
    /// `nodes/configz` (kubelets with KubeletFineGrainedAuthz) or `nodes/proxy`.
    #[arg(long, env = "KUBELET_SENTINEL_READ_RUNNING_CONFIG", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub read_running_config: bool,

    /// Also read /configz through the API server's node proxy
    /// (/api/v1/nodes/NODE/proxy/configz) when the kubelet's own port refuses or does
    /// not answer. Needs `get` on `nodes/proxy`, which is effectively full control of every
    /// kubelet: see docs/running-config.md before allowing it.
    #[arg(long, env = "KUBELET_SENTINEL_RUNNING_CONFIG_VIA_PROXY", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub running_config_via_proxy: bool,
}

/// The Kubernetes API (the Pod Security and identity controls, Events, scrape
/// authorisation).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Kubernetes API")]
pub struct ApiArgs {
    /// Use the Kubernetes API (pods on this node, namespaces) for the Pod Security
    /// controls: auto = when in a cluster (KUBERNETES_SERVICE_HOST) or --kubeconfig is
    /// given; on = required (start fails without it); off = never.
    #[arg(long, env = "KUBELET_SENTINEL_API_ACCESS", value_enum, value_name = "WHEN", default_value_t = ApiAccess::Auto)]
    pub api_access: ApiAccess,

    /// Kubeconfig for the API outside a cluster (wins over the in-cluster service account).
    #[arg(long, env = "KUBELET_SENTINEL_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// The policy the controls are held to, and the CVE feed.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Policy")]
pub struct PolicyArgs {
    /// Policy file (YAML) layered over the embedded defaults.
    #[arg(long, env = "KUBELET_SENTINEL_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// A copy of the official Kubernetes CVE feed (JSON Feed, as served at
    /// kubernetes.io/docs/reference/issues-security/official-cve-feed/index.json), merged
    /// with the embedded CVE table: kubelet CVEs announced after this build count too.
    /// Capped at 8 MiB; an unusable file makes kubelet-version-no-known-cves unknown.
    #[arg(long, env = "KUBELET_SENTINEL_CVE_FEED", value_name = "FILE")]
    pub cve_feed: Option<PathBuf>,
}

/// The agent's own state dir (`serve`, `check`, `baseline`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "State")]
pub struct StateArgs {
    /// The agent's own state dir: the node's baseline and last-seen state (default:
    /// $STATE_DIRECTORY, else $XDG_STATE_HOME/kubelet-sentinel, else
    /// ~/.local/state/kubelet-sentinel, else ./state; the DaemonSet uses a hostPath such as
    /// /var/lib/kubelet-sentinel).
    #[arg(long, env = "KUBELET_SENTINEL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Where a new baseline comes from (`serve`, `baseline accept`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "State")]
pub struct BaselineOriginArgs {
    /// Make the policy's expectations the baseline (every control held to pass) instead of
    /// the node's first observation (serve, baseline accept).
    #[arg(long, env = "KUBELET_SENTINEL_BASELINE_FROM_POLICY", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub baseline_from_policy: bool,
}

/// `--live-probes`: whether to probe the kubelet's sockets. `Auto` only when
/// `<host-root>/proc` is a live procfs (never for a host tree on disk), `On` always,
/// `Off` never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // a variant's `///` would become its `--help` text; the enum's doc says it
pub enum LiveProbes {
    Auto,
    On,
    Off,
}

/// `--api-access`: whether to use the Kubernetes API. `Auto` when in a cluster
/// (`KUBERNETES_SERVICE_HOST`) or `--kubeconfig` is given, `On` required (start fails
/// without it), `Off` never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // a variant's `///` would become its `--help` text; the enum's doc says it
pub enum ApiAccess {
    Auto,
    On,
    Off,
}

/// `--log-format` of the logs on stderr: `Text` (tracing's human-readable lines) or `Json`
/// (one JSON object per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // a variant's `///` would become its `--help` text; the enum's doc says it
pub enum LogFormat {
    Text,
    Json,
}

/// The commands; each variant's doc comment is its `--help` text.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: evaluate periodically and serve /metrics, /healthz, /readyz.
    Serve(ServeArgs),
    /// Evaluate once and print a report; exit 0 pass, 1 fail, 2 could not run, 3 no kubelet.
    #[command(after_help = CHECK_AFTER_HELP)]
    Check(CheckArgs),
    /// Show or accept the node's drift baseline (in --state-dir).
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Plan and prove the changes that make the failing controls pass (a kubelet drop-in,
    /// flag changes, chmod/chown); write them into --out, never to the host. Exit 0 all
    /// fixable, 1 some control not fixed, 2 could not run, 3 no kubelet.
    #[command(after_help = FIX_AFTER_HELP)]
    Fix(Box<FixArgs>),
}

/// `fix --help`'s closing text: the exit statuses and examples.
const FIX_AFTER_HELP: &str = "\
Exit status (see docs/fix.md):
  0  every failing or unknown control selected is fixed (proven in memory), or none is open
  1  some failing or unknown control is not fixed by this command (listed with the reason)
  2  could not run: a bad flag, --host-root, --policy, an unusable --out, a write error
  3  no usable kubelet on the host

Examples:
  kubelet-sentinel fix --dry-run                       # the plan and its diff, nothing written
  kubelet-sentinel fix --out /tmp/kubelet-fix          # files/, fix.diff, apply.sh, fix.json, SUMMARY.md
  kubelet-sentinel fix --controls read-only-port-disabled --format json";

/// The flags of `fix`: where the plan goes and what it covers, then what to observe and
/// how to judge it (the same as `check`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Fix")]
pub struct FixArgs {
    /// Write the plan into this directory (absent or empty; created 0700): files/<host
    /// path>, fix.diff, apply.sh, fix.json, SUMMARY.md. Never writes to the host.
    #[arg(
        long,
        env = "KUBELET_SENTINEL_FIX_OUT",
        value_name = "DIR",
        conflicts_with = "dry_run"
    )]
    pub out: Option<PathBuf>,

    /// Write nothing; print the plan and the unified diff of every file change (the
    /// default without --out).
    #[arg(long, env = "KUBELET_SENTINEL_FIX_DRY_RUN", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub dry_run: bool,

    /// The drop-in's file name in the kubelet's --config-dir (k3s/RKE2: the same stem
    /// with .yaml in config.yaml.d). Drop-ins apply in name order: a later name wins.
    #[arg(long, env = "KUBELET_SENTINEL_FIX_DROPIN_NAME", value_name = "NAME", default_value = crate::evaluate::fix::DEFAULT_DROPIN_NAME, value_parser = parse_dropin_name)]
    pub dropin_name: String,

    /// Output format on stdout: text (the summary) or json (the plan, as fix.json).
    #[arg(long, env = "KUBELET_SENTINEL_FIX_FORMAT", value_enum, value_name = "FORMAT", default_value_t = FixFormat::Text)]
    pub format: FixFormat,

    /// Only these controls (a comma list of control ids); default: every control.
    #[arg(long, env = "KUBELET_SENTINEL_FIX_CONTROLS", value_name = "IDS", value_delimiter = ',', value_parser = parse_control_id)]
    pub controls: Vec<String>,

    /// What to observe and how to judge it.
    #[command(flatten)]
    pub evaluate: EvaluateArgs,
}

/// `--format` of `fix`: `Text` (the summary) or `Json` (the plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // a variant's `///` would become its `--help` text; the enum's doc says it
pub enum FixFormat {
    Text,
    Json,
}

/// `--dropin-name`: a plain `.conf` file name (the kubelet applies only `*.conf`).
fn parse_dropin_name(s: &str) -> Result<String, String> {
    let ok = s.len() > ".conf".len()
        && s.len() <= 200
        && s.ends_with(".conf")
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?}: a file name ending in .conf, of letters, digits, '.', '_' and '-' (the kubelet applies only *.conf drop-ins)"
        ))
    }
}

/// `--controls`: a control id of the catalogue.
fn parse_control_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    if crate::evaluate::control(s).is_some() {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a control id (see docs/controls.md)"))
    }
}

/// `check --help`'s closing text: the exit statuses and examples.
const CHECK_AFTER_HELP: &str = "\
Exit status (the same for every --format; see docs/check.md):
  0  no control at or above --fail-on fails
  1  a control at or above --fail-on fails (with --fail-on-unknown: or is unknown)
  2  could not run: a bad flag, --host-root, --policy, or the report could not be written
  3  no usable kubelet on the host (--require-kubelet, on by default); the report is
     printed all the same, every kubelet control unknown
Statuses 3 and 1 at once give 3.

Examples:
  kubelet-sentinel check                                  # table, fails on high and critical
  kubelet-sentinel check --only failed,unknown --wide     # what needs acting on, in full
  kubelet-sentinel check --format junit > report.xml      # CI: <failure> = counted by --fail-on
  kubelet-sentinel check --format json --require-kubelet=false --fail-on never";

/// The subcommands of `baseline`; each variant's doc comment is its `--help` text.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Print the stored baseline (JSON); exit 1 when there is none.
    Show(BaselineShowArgs),
    /// Evaluate now and make the result the node's baseline (with
    /// --baseline-from-policy: the policy's expectations). A running agent reloads it.
    Accept(Box<BaselineAcceptArgs>),
}

/// The flags of `baseline show`: only where the baseline is.
#[derive(Debug, Clone, Args)]
pub struct BaselineShowArgs {
    /// The state dir holding the baseline.
    #[command(flatten)]
    pub state: StateArgs,
}

/// The flags of `baseline accept`: what an evaluation needs, the state dir, and where the
/// baseline comes from.
#[derive(Debug, Clone, Args)]
pub struct BaselineAcceptArgs {
    /// What to observe and how to judge it.
    #[command(flatten)]
    pub evaluate: EvaluateArgs,
    /// Where the baseline is written.
    #[command(flatten)]
    pub state: StateArgs,
    /// The evaluation or the policy.
    #[command(flatten)]
    pub origin: BaselineOriginArgs,
}

/// The flags of `serve`: its two listeners, the evaluation and watch intervals, Events,
/// and the TLS and authorisation of `/metrics`; then what every evaluation needs, the
/// state dir and the baseline's origin.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KUBELET_SENTINEL_LISTEN_ADDRESS", value_name = "ADDR:PORT", default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)))]
    pub listen_address: SocketAddr,

    /// Address of the health probes' own listener (/healthz, /readyz; plain HTTP), which
    /// no metrics client can starve. Loopback by default: with hostNetwork the kubelet
    /// probes it at host 127.0.0.1, and nothing off the node reaches it.
    #[arg(long, env = "KUBELET_SENTINEL_HEALTH_LISTEN_ADDRESS", value_name = "ADDR:PORT", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_HEALTH_PORT)))]
    pub health_listen_address: SocketAddr,

    /// Time between full evaluations (Go-style duration: 30s, 1m, 1h30m).
    #[arg(long, env = "KUBELET_SENTINEL_INTERVAL", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Time between change checks: fingerprints of every file the last evaluation read
    /// and the kubelet's pid, start time and command line; a change re-evaluates at once.
    #[arg(long, env = "KUBELET_SENTINEL_WATCH_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub watch_interval: Duration,

    /// Post a Kubernetes Event (type Warning, reason ControlRegressed or ControlDrifted)
    /// on this node's Node object when a control regresses or drifts from the baseline;
    /// rate-limited. Needs API access and RBAC to create events.
    #[arg(long, env = "KUBELET_SENTINEL_EVENTS", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
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
    #[arg(long, env = "KUBELET_SENTINEL_METRICS_TLS_SELF_SIGNED", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub metrics_tls_self_signed: bool,

    /// Who may read /metrics: none = anyone who reaches the port; kubernetes = a bearer
    /// token that the Kubernetes API authenticates (TokenReview) and authorises for `get`
    /// on the non-resource URL /metrics (SubjectAccessReview). Needs API access.
    #[arg(long, env = "KUBELET_SENTINEL_METRICS_AUTH", value_enum, value_name = "WHO", default_value_t = MetricsAuth::None)]
    pub metrics_auth: MetricsAuth,

    /// Bound on each TokenReview and SubjectAccessReview of --metrics-auth kubernetes.
    #[arg(long, env = "KUBELET_SENTINEL_METRICS_AUTH_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub metrics_auth_timeout: Duration,

    /// The series of kubelet_sentinel_control_status: active = one per control, labelled
    /// with its current status, value 1; all = the full StateSet, one per control and
    /// status (pass, fail, unknown, not_applicable), the current one 1: four times the
    /// series. Queries that select `== 1` read both alike.
    #[arg(long, env = "KUBELET_SENTINEL_METRICS_CONTROL_STATES", value_enum, value_name = "WHICH", default_value_t = MetricsControlStates::Active)]
    pub metrics_control_states: MetricsControlStates,

    /// Also export kubelet_sentinel_control_info: each control's title, family, severity
    /// and CIS reference (constants of this build, the same on every node; docs/controls.md
    /// lists them).
    #[arg(long, env = "KUBELET_SENTINEL_METRICS_CONTROL_INFO", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub metrics_control_info: bool,

    /// Also export kubelet_sentinel_probe_duration_seconds, one series per observation
    /// step (probe). Off by default to keep the page within 150 series in every state;
    /// kubelet_sentinel_evaluation_duration_seconds and each probe's _success stay.
    #[arg(long, env = "KUBELET_SENTINEL_METRICS_PROBE_DURATIONS", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub metrics_probe_durations: bool,

    /// Node labels naming the node's pool, a comma list: the value of the first one the
    /// Node carries is the node_pool of kubelet_sentinel_node_info (empty when none, or
    /// without API access). Empty: no pool.
    #[arg(long, env = "KUBELET_SENTINEL_NODE_POOL_LABELS", value_name = "LABELS", value_delimiter = ',', default_values = crate::model::label::DEFAULT_POOL_LABELS.iter().copied(), value_parser = parse_label_key)]
    pub node_pool_labels: Vec<String>,

    /// What to observe and how to judge it.
    #[command(flatten)]
    pub evaluate: EvaluateArgs,
    /// The baseline and last-seen state.
    #[command(flatten)]
    pub state: StateArgs,
    /// Where the first baseline comes from.
    #[command(flatten)]
    pub origin: BaselineOriginArgs,
}

/// `--metrics-auth`: who may read `/metrics`. `None`: anyone who reaches the port;
/// `Kubernetes`: a bearer token the API authenticates (TokenReview) and authorises for
/// `get` on the non-resource URL `/metrics` (SubjectAccessReview).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // a variant's `///` would become its `--help` text; the enum's doc says it
pub enum MetricsAuth {
    None,
    Kubernetes,
}

/// `--metrics-control-states`: `Active` one `kubelet_sentinel_control_status` series per
/// control (its current status), `All` the full StateSet (every status, 0 or 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // a variant's `///` would become its `--help` text; the enum's doc says it
pub enum MetricsControlStates {
    Active,
    All,
}

/// A Kubernetes label key (`--node-pool-labels`), or empty (no label).
fn parse_label_key(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() || crate::model::label::is_label_key(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?}: not a Kubernetes label key ([prefix/]name, name at most 63 characters of [A-Za-z0-9._-])"
        ))
    }
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

/// The flags of `check`: what to observe and where the baseline is, then the report's
/// format and contents and the exit status's rules (docs/check.md).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Report")]
pub struct CheckArgs {
    /// Output format.
    #[arg(long, env = "KUBELET_SENTINEL_FORMAT", value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
    pub format: Format,

    /// Exit 1 when a control at or above this severity fails; JUnit's `<failure>` marks
    /// exactly those controls.
    #[arg(long, env = "KUBELET_SENTINEL_FAIL_ON", value_enum, value_name = "SEVERITY", default_value_t = FailOn::High)]
    pub fail_on: FailOn,

    /// Count an unknown control (its evidence could not be read) at or above --fail-on as
    /// failing: exit 1, and a JUnit `<failure>`. Off: unknown controls are reported, not
    /// counted.
    #[arg(long, env = "KUBELET_SENTINEL_FAIL_ON_UNKNOWN", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub fail_on_unknown: bool,

    /// Exit 3 when no usable kubelet is found on the host (every kubelet control is then
    /// unknown); the report is printed all the same. --require-kubelet=false: exit as the
    /// controls decide (a host tree or a node without a kubelet, on purpose).
    #[arg(long, env = "KUBELET_SENTINEL_REQUIRE_KUBELET", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub require_kubelet: bool,

    /// Table: only the controls of these statuses (a comma list: failed, unknown, passed,
    /// not-applicable); the summary line still counts every control. JSON and JUnit always
    /// hold every control.
    #[arg(
        long,
        env = "KUBELET_SENTINEL_ONLY",
        value_enum,
        value_name = "STATUSES",
        value_delimiter = ','
    )]
    pub only: Vec<OnlyStatus>,

    /// Table: every value in full. Without it, long values are cut to fit the columns only
    /// when stdout is a terminal (in a pipe or a file they are always whole).
    #[arg(long, env = "KUBELET_SENTINEL_WIDE", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub wide: bool,

    /// Colour in the table output: auto (when stdout is a terminal), always, never.
    #[arg(long, env = "KUBELET_SENTINEL_COLOR", value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    // --- benchmark view (docs/benchmarks.md) ---
    /// Report in a benchmark's terms: cis-2.0, cis-1.12, eks-1.8.0, gke-1.9.0, aks-1.8, or
    /// auto (alone: chosen from the kubelet's version as kube-bench does). Each item's
    /// PASS/FAIL/WARN/INFO with the evidence behind it; with --format json the benchmark
    /// JSON (docs/benchmark.schema.json). The exit status still follows --fail-on on the
    /// controls.
    #[arg(long, env = "KUBELET_SENTINEL_BENCHMARK", value_name = "ID", num_args = 0..=1, default_missing_value = "auto", value_parser = parse_benchmark)]
    pub benchmark: Option<String>,

    /// What to observe and how to judge it.
    #[command(flatten)]
    pub evaluate: EvaluateArgs,
    /// The state dir whose baseline the report compares with (read only).
    #[command(flatten)]
    pub state: StateArgs,
}

impl CheckArgs {
    /// The exit status's rules of these flags.
    pub fn gate(&self) -> crate::publish::report::Gate {
        crate::publish::report::Gate {
            fail_on: self.fail_on.threshold(),
            fail_on_unknown: self.fail_on_unknown,
            require_kubelet: self.require_kubelet,
        }
    }

    /// The statuses `--only` keeps (`None`: every status).
    pub fn only_statuses(&self) -> Option<Vec<crate::evaluate::Status>> {
        (!self.only.is_empty()).then(|| self.only.iter().map(|o| o.status()).collect())
    }
}

/// `--only` of `check`'s table: a control status. `Failed`, `Unknown`, `Passed`,
/// `NotApplicable` (`not-applicable`); the report's own words (`fail`, `pass`,
/// `not_applicable`) are accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // a variant's `///` would become its `--help` text; the enum's doc says it
pub enum OnlyStatus {
    #[value(alias = "fail")]
    Failed,
    Unknown,
    #[value(alias = "pass")]
    Passed,
    #[value(alias = "not_applicable", alias = "na")]
    NotApplicable,
}

impl OnlyStatus {
    /// The control status it names.
    pub fn status(self) -> crate::evaluate::Status {
        use crate::evaluate::Status;
        match self {
            OnlyStatus::Failed => Status::Fail,
            OnlyStatus::Unknown => Status::Unknown,
            OnlyStatus::Passed => Status::Pass,
            OnlyStatus::NotApplicable => Status::NotApplicable,
        }
    }
}

/// `--benchmark`: `auto` or the id of a benchmark this build ships.
fn parse_benchmark(s: &str) -> Result<String, String> {
    let ids = crate::evaluate::benchmark::ids();
    if s == "auto" || ids.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?}: not a benchmark (use auto or one of {})",
            ids.join(", ")
        ))
    }
}

/// `--format` of `check`'s report: `Table` (for a terminal), `Json` (the whole report)
/// or `Junit` (JUnit XML, for CI systems); `KubeBenchJson`: the benchmark report in
/// kube-bench's JSON shape (with `--benchmark`, else the benchmark `auto` chooses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // a variant's `///` would become its `--help` text; the enum's doc says it
pub enum Format {
    Table,
    Json,
    Junit,
    KubeBenchJson,
}

/// `--fail-on` of `check`: the lowest severity whose failure makes the exit code 1;
/// `Never`: failures never do (see [`FailOn::threshold`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // a variant's `///` would become its `--help` text; the enum's doc says it
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Never,
}

impl FailOn {
    /// The [`Severity`] at or above which a failed control makes `check` exit 1; `None` for
    /// `never`.
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

/// `--color` of `check`'s table: `Auto` when stdout is a terminal, `Always` or `Never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // a variant's `///` would become its `--help` text; the enum's doc says it
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

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
