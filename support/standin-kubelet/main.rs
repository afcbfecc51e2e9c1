//! A stand-in kubelet for kubelet-sentinel's tests (see `README.md` next to this file).
//!
//! It behaves like a kubelet where kubelet-sentinel looks at one: its process name is
//! `kubelet`, `kubelet --version` answers, its command line and KubeletConfiguration are
//! read with the agent's own rules (`kubelet_sentinel::model::kubelet_config`), and it listens
//! on the serving (TLS), read-only and healthz ports with the kubelet's answers. It is
//! test support only: built with `--features standin`, never shipped.
//!
//! Test-only flags (not kubelet flags; removed before the kubelet flags are parsed):
//! - `--standin-silent-tls`: accept TCP on the serving port but never send a byte;
//! - `--standin-ready-file PATH`: once every listener is bound, write
//!   `{"port":..,"read_only_port":..,"healthz_port":..}` (bound ports, `null` when off);
//! - `--standin-token TOKEN` (repeatable): a bearer token the serving port authenticates
//!   and authorizes (as if a TokenReview and a SubjectAccessReview allowed it): `/configz`
//!   then answers `{"kubeletconfig": {...}}`, the configuration the stand-in started with;
//! - `--standin-refuse-token TOKEN` (repeatable): a token that is authenticated but not
//!   authorized: 403 `Forbidden (user=…, verb=get, resource=nodes, subresource=configz)`.
#![allow(unsafe_code)] // libc: the stand-in kubelet's own process calls

mod http;
mod tls;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use kubelet_sentinel::io::host::HostRoot;
use kubelet_sentinel::model::kubelet_config::flags::{parse_go_bool, Flags};
use kubelet_sentinel::model::kubelet_config::{
    ConfigInput, EffectiveConfig, Lookup, Setting, Source,
};
use kubelet_sentinel::observe::files::walk_dropins;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use http::{Authz, Port, Server};
use tls::{Decision, Peeked, ServingCert, TlsPolicy};

/// The version reported when there is no `<exe>.version` file.
const DEFAULT_VERSION: &str = "v1.31.4";
/// The kubelet's default `--cert-dir`.
const DEFAULT_CERT_DIR: &str = "/var/lib/kubelet/pki";
/// How long a client may take to send its ClientHello, and to finish the handshake.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a hand-written reply, how long to wait for the client to close.
const LINGER: Duration = Duration::from_secs(2);

const USAGE: &str = "\
kubelet (kubelet-sentinel test stand-in; not a kubelet)

Usage: kubelet [kubelet flags] [--standin-silent-tls] [--standin-ready-file PATH]
       kubelet --version[=raw]

Reads --config, --config-dir and the KubeletConfiguration flags like the kubelet and
serves address:port (TLS), address:readOnlyPort and healthzBindAddress:healthzPort.
The version comes from the file <this executable>.version, else v1.31.4.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match version_request(&args) {
        Ok(Some(raw)) => return print_version(raw),
        Ok(None) => {}
        Err(e) => return fail(&e),
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let (opts, kubelet_args) = match split_standin_flags(&args) {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    let settings = match load(&kubelet_args) {
        Ok(s) => s,
        Err(e) => return fail(&format!("failed to load kubelet configuration: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(run(settings, opts));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("kubelet (standin): {message}");
    ExitCode::FAILURE
}

/// `--version` (`Some(false)`), `--version=raw` (`Some(true)`), `--version=false` or
/// absent (`None`). Like verflag, it wins over everything else on the command line.
fn version_request(args: &[String]) -> Result<Option<bool>, String> {
    let mut wanted = None;
    for arg in args {
        if arg == "--" {
            break;
        }
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            continue;
        };
        if body == "version" {
            wanted = Some(false);
        } else if let Some(v) = body.strip_prefix("version=") {
            wanted = match v {
                "raw" => Some(true),
                _ => match parse_go_bool(v) {
                    Some(true) => Some(false),
                    Some(false) => None,
                    None => return Err(format!("invalid argument {v:?} for --version")),
                },
            };
        }
    }
    Ok(wanted)
}

/// The version: the first line of `<own executable>.version`, else the default.
fn own_version() -> String {
    std::env::current_exe()
        .ok()
        .map(|exe| {
            let mut p = exe.into_os_string();
            p.push(".version");
            PathBuf::from(p)
        })
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_VERSION.to_string())
}

fn print_version(raw: bool) -> ExitCode {
    let version = own_version();
    let text = if raw {
        let (major, minor) = http::major_minor(&version);
        format!(
            "version.Info{{Major:\"{major}\", Minor:\"{minor}\", GitVersion:\"{version}\", GitCommit:\"0\", GitTreeState:\"clean\", BuildDate:\"\", GoVersion:\"go1.24\", Compiler:\"gc\", Platform:\"linux/amd64\"}}\n"
        )
    } else {
        format!("Kubernetes {version}\n")
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// The stand-in's own options.
#[derive(Debug, Default)]
struct StandinOpts {
    silent_tls: bool,
    ready_file: Option<PathBuf>,
    tokens: Vec<String>,
    refused_tokens: Vec<String>,
}

/// Take the `--standin-*` flags out of argv; the rest is the kubelet's command line.
fn split_standin_flags(args: &[String]) -> Result<(StandinOpts, Vec<String>), String> {
    let mut opts = StandinOpts::default();
    let mut rest = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            rest.extend(args[i - 1..].iter().cloned());
            break;
        }
        let Some(body) = arg.strip_prefix("--standin-") else {
            rest.push(arg.clone());
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        match name {
            "silent-tls" => {
                opts.silent_tls = match inline {
                    None => true,
                    Some(v) => parse_go_bool(v).ok_or_else(|| {
                        format!("invalid argument {v:?} for --standin-silent-tls")
                    })?,
                }
            }
            "ready-file" | "token" | "refuse-token" => {
                let value = match inline {
                    Some(v) => v.to_string(),
                    None => {
                        let v = args
                            .get(i)
                            .ok_or_else(|| format!("flag needs an argument: --standin-{name}"))?;
                        i += 1;
                        v.clone()
                    }
                };
                if value.is_empty() {
                    return Err(format!("--standin-{name}: empty value"));
                }
                match name {
                    "ready-file" => opts.ready_file = Some(PathBuf::from(value)),
                    "token" => opts.tokens.push(value),
                    _ => opts.refused_tokens.push(value),
                }
            }
            other => return Err(format!("unknown flag: --standin-{other}")),
        }
    }
    Ok((opts, rest))
}

/// The effective settings the stand-in acts on.
#[derive(Debug)]
struct Settings {
    address: IpAddr,
    port: u16,
    read_only_port: u16,
    healthz_port: u16,
    healthz_bind: IpAddr,
    enable_server: bool,
    anonymous: bool,
    webhook_authn: bool,
    authz: Authz,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_tls_bootstrap: bool,
    tls_min_version: u16,
    tls_cipher_suites: Vec<String>,
    cert_dir: PathBuf,
    cert_dir_explicit: bool,
    hostname: String,
    version: String,
    /// `{"kubeletconfig": {...}}`: what `/configz` serves.
    configz: String,
}

fn known(cfg: &EffectiveConfig, key: &str) -> Result<Setting, String> {
    match cfg.get(key) {
        Lookup::Known(s) => Ok(s),
        Lookup::Unknown { reason } => Err(reason),
    }
}

fn get_bool(cfg: &EffectiveConfig, key: &str) -> Result<bool, String> {
    let s = known(cfg, key)?;
    s.value
        .as_bool()
        .ok_or_else(|| format!("{key}: {} is not a boolean", s.value))
}

fn get_str(cfg: &EffectiveConfig, key: &str) -> Result<(String, Source), String> {
    let s = known(cfg, key)?;
    match s.value {
        Value::String(v) => Ok((v, s.source)),
        other => Err(format!("{key}: {other} is not a string")),
    }
}

/// A port setting; `min` is 1 for the serving port, 0 (= disabled) for the others.
fn get_port(cfg: &EffectiveConfig, key: &str, min: i64) -> Result<u16, String> {
    let s = known(cfg, key)?;
    s.value
        .as_i64()
        .filter(|p| (min..=65535).contains(p))
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            format!(
                "invalid configuration: {key} {} must be between {min} and 65535, inclusive",
                s.value
            )
        })
}

fn get_ip(cfg: &EffectiveConfig, key: &str) -> Result<IpAddr, String> {
    let (v, _) = get_str(cfg, key)?;
    v.trim()
        .parse()
        .map_err(|_| format!("invalid configuration: {key} {v:?} is not an IP address"))
}

fn get_list(cfg: &EffectiveConfig, key: &str) -> Result<Vec<String>, String> {
    let s = known(cfg, key)?;
    match s.value {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(x) => Ok(x),
                other => Err(format!("{key}: {other} is not a string")),
            })
            .collect(),
        other => Err(format!("{key}: {other} is not a list")),
    }
}

/// A path from the configuration: relative to its file's directory when it came from a
/// file (the agent resolves it the same way), else to the working directory.
fn config_path(value: &str, source: &Source, cwd: &Path) -> PathBuf {
    if value.starts_with('/') {
        return PathBuf::from(value);
    }
    match source.path().and_then(|f| Path::new(f).parent()) {
        Some(dir) => dir.join(value),
        None => cwd.join(value),
    }
}

fn hostname(flags: &Flags) -> String {
    flags
        .string("hostname-override")
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Parse the command line, read the files and compute the effective settings.
fn load(args: &[String]) -> Result<Settings, String> {
    let flags = Flags::parse(args);
    if !flags.errors.is_empty() {
        return Err(flags.errors.join("; "));
    }
    if let Some(p) = flags.positional.first() {
        return Err(format!("unknown command {p:?}"));
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let abs = |p: String| -> String {
        if p.starts_with('/') {
            p
        } else {
            cwd.join(p).to_string_lossy().into_owned()
        }
    };
    let config_file = flags.string("config").filter(|p| !p.is_empty()).map(&abs);
    let config_dir = flags
        .string("config-dir")
        .filter(|p| !p.is_empty())
        .map(&abs);
    let main = config_file.map(|path| ConfigInput {
        text: std::fs::read_to_string(&path).map_err(|e| e.to_string()),
        path,
    });
    let (dropins, dir_error) = match &config_dir {
        Some(dir) => {
            let listed = HostRoot::new("/")
                .map_err(|e| e.to_string())
                .and_then(|root| walk_dropins(&root, dir));
            match listed {
                Ok(walked) => (
                    walked
                        .files
                        .into_iter()
                        .map(|path| ConfigInput {
                            text: std::fs::read_to_string(&path).map_err(|e| e.to_string()),
                            path,
                        })
                        .collect(),
                    None,
                ),
                Err(e) => (Vec::new(), Some(format!("--config-dir {dir}: {e}"))),
            }
        }
        None => (Vec::new(), None),
    };
    let mut cfg = EffectiveConfig::build(flags.clone(), main, config_dir, dropins, dir_error);
    // Loaded by the rules of the version the stand-in claims to be.
    cfg.set_kubelet_version(Some(&own_version()));
    if cfg.has_errors() {
        return Err(cfg.errors.join("; "));
    }

    let authz = match get_str(&cfg, "authorization.mode")?.0.as_str() {
        "Webhook" => Authz::Webhook,
        "AlwaysAllow" => Authz::AlwaysAllow,
        other => {
            return Err(format!(
                "invalid configuration: authorization.mode {other:?} (want AlwaysAllow or Webhook)"
            ))
        }
    };
    let file_setting = |key: &str| -> Result<Option<PathBuf>, String> {
        let (v, source) = get_str(&cfg, key)?;
        Ok((!v.is_empty()).then(|| config_path(&v, &source, &cwd)))
    };
    let tls_min_version = tls::parse_min_version(&get_str(&cfg, "tlsMinVersion")?.0)?;
    let tls_cipher_suites = get_list(&cfg, "tlsCipherSuites")?;
    for name in &tls_cipher_suites {
        tls::suite_by_name(name)?;
    }
    let healthz_port = get_port(&cfg, "healthzPort", 0)?;
    let healthz_bind = if healthz_port > 0 {
        get_ip(&cfg, "healthzBindAddress")?
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    let cert_dir_flag = flags.string("cert-dir").filter(|d| !d.is_empty());
    Ok(Settings {
        address: get_ip(&cfg, "address")?,
        port: get_port(&cfg, "port", 1)?,
        read_only_port: get_port(&cfg, "readOnlyPort", 0)?,
        healthz_port,
        healthz_bind,
        enable_server: get_bool(&cfg, "enableServer")?,
        anonymous: get_bool(&cfg, "authentication.anonymous.enabled")?,
        webhook_authn: get_bool(&cfg, "authentication.webhook.enabled")?,
        authz,
        cert_file: file_setting("tlsCertFile")?,
        key_file: file_setting("tlsPrivateKeyFile")?,
        server_tls_bootstrap: get_bool(&cfg, "serverTLSBootstrap")?,
        tls_min_version,
        tls_cipher_suites,
        cert_dir_explicit: cert_dir_flag.is_some(),
        cert_dir: cwd.join(cert_dir_flag.unwrap_or_else(|| DEFAULT_CERT_DIR.to_string())),
        hostname: hostname(&flags),
        version: own_version(),
        configz: configz(&cfg)?,
    })
}

/// A duration in seconds the way Go prints it (`4h0m0s`, `2m0s`, `30s`).
fn go_duration(secs: f64) -> String {
    let total = kubelet_sentinel::model::time::whole_seconds(secs.round());
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// The effective configuration as the kubelet's `/configz` shows it: every modelled
/// setting, defaults filled in, durations in Go's form, and the fields the kubelet's JSON
/// omits when empty (`omitempty`: `readOnlyPort: 0`, empty strings, lists and maps) left
/// out.
fn configz(cfg: &EffectiveConfig) -> Result<String, String> {
    use kubelet_sentinel::model::kubelet_config::settings::{
        parse_go_duration, SettingKind, SETTINGS,
    };
    let mut root = serde_json::Map::new();
    for def in SETTINGS {
        // What a real kubelet serves: its configuration after InitializeTLS filled in the
        // self-signed pair, without the command-line-only --seccomp-default.
        let mut v = match cfg.configz_view(def.key, cfg.kubelet_minor) {
            Lookup::Known(s) => s.value,
            Lookup::Unknown { reason } => return Err(format!("{}: {reason}", def.key)),
        };
        if def.kind == SettingKind::Duration {
            if let Some(secs) = v.as_str().and_then(parse_go_duration) {
                v = Value::String(go_duration(secs));
            }
        }
        let empty = match &v {
            Value::Number(n) => n.as_i64() == Some(0),
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if empty {
            continue;
        }
        let (last, parents) = def
            .path
            .split_last()
            .ok_or_else(|| format!("{}: empty path", def.key))?;
        let mut cur = &mut root;
        for p in parents {
            let entry = cur
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            cur = match entry {
                Value::Object(o) => o,
                _ => return Err(format!("{}: {p} is not an object", def.key)),
            };
        }
        cur.insert(last.to_string(), v);
    }
    Ok(serde_json::json!({ "kubeletconfig": root }).to_string())
}

/// The serving certificate, as the kubelet's `InitializeTLS` finds it: the configured
/// files; else (with `serverTLSBootstrap`) `<cert-dir>/kubelet-server-current.pem`; else
/// `<cert-dir>/kubelet.{crt,key}` when both exist; else a fresh self-signed one, written
/// there only when `--cert-dir` was given (never into the host's default directory).
fn serving_cert(s: &Settings) -> Result<ServingCert, String> {
    match (&s.cert_file, &s.key_file) {
        (Some(c), Some(k)) => {
            return ServingCert::from_pem_files(&c.to_string_lossy(), &k.to_string_lossy())
        }
        (None, None) => {}
        _ => {
            return Err(
                "invalid configuration: tlsCertFile and tlsPrivateKeyFile must be set together"
                    .to_string(),
            )
        }
    }
    if s.server_tls_bootstrap {
        let current = s.cert_dir.join("kubelet-server-current.pem");
        if current.exists() {
            let p = current.to_string_lossy();
            return ServingCert::from_pem_files(&p, &p);
        }
    }
    let crt = s.cert_dir.join("kubelet.crt");
    let key = s.cert_dir.join("kubelet.key");
    if crt.exists() && key.exists() {
        return ServingCert::from_pem_files(&crt.to_string_lossy(), &key.to_string_lossy());
    }
    let (cert, cert_pem, key_pem) = ServingCert::self_signed(&s.hostname)?;
    if s.cert_dir_explicit {
        write_file(&crt, cert_pem.as_bytes(), 0o644)
            .and_then(|()| write_file(&key, key_pem.as_bytes(), 0o600))
            .map_err(|e| {
                format!(
                    "unable to write self-signed cert to {}: {e}",
                    s.cert_dir.display()
                )
            })?;
    }
    Ok(cert)
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    f.write_all(data)
}

/// Bind like Go's `net.Listen("tcp", ...)`: the IPv4 wildcard becomes a dual-stack IPv6
/// socket when the host has IPv6.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if addr.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        if let Ok(l) = bind_dual_stack(addr.port()) {
            return Ok(l);
        }
    }
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

fn bind_dual_stack(port: u16) -> std::io::Result<TcpListener> {
    let sock = TcpSocket::new_v6()?;
    let off: libc::c_int = 0;
    // SAFETY: the fd is owned by `sock` and open for this call; the option value points
    // to a live c_int of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            (&off as *const libc::c_int).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    sock.set_reuseaddr(true)?;
    sock.bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port))?;
    sock.listen(1024)
}

fn listen(ip: IpAddr, port: u16, what: &str) -> Result<TcpListener, String> {
    let addr = SocketAddr::new(ip, port);
    bind(addr).map_err(|e| format!("failed to listen on {addr} ({what}): {e}"))
}

fn bound_port(l: Option<&TcpListener>) -> Value {
    l.and_then(|l| l.local_addr().ok())
        .map(|a| Value::from(a.port()))
        .unwrap_or(Value::Null)
}

/// Write the ready file atomically (temp file + rename), so a poller never reads half.
fn write_ready(path: &Path, doc: &Value) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{doc}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("--standin-ready-file {}: {e}", path.display()))
}

async fn run(s: Settings, opts: StandinOpts) -> Result<(), String> {
    let server = Arc::new(Server {
        version: s.version.clone(),
        anonymous: s.anonymous,
        webhook_authn: s.webhook_authn,
        authz: s.authz,
        configz: s.configz.clone(),
        tokens: opts.tokens.clone(),
        refused_tokens: opts.refused_tokens.clone(),
    });
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("cannot handle SIGINT: {e}"))?;

    let serving = if s.enable_server {
        let policy = if opts.silent_tls {
            None
        } else {
            let cert = serving_cert(&s)?;
            eprintln!("kubelet (standin): serving certificate: {}", cert.origin);
            Some(Arc::new(TlsPolicy::new(
                s.tls_min_version,
                &s.tls_cipher_suites,
                cert,
            )?))
        };
        Some((listen(s.address, s.port, "port")?, policy))
    } else {
        None
    };
    let read_only = match s.read_only_port {
        0 => None,
        p => Some(listen(s.address, p, "readOnlyPort")?),
    };
    let healthz = match s.healthz_port {
        0 => None,
        p => Some(listen(s.healthz_bind, p, "healthzPort")?),
    };
    let ready = serde_json::json!({
        "port": bound_port(serving.as_ref().map(|(l, _)| l)),
        "read_only_port": bound_port(read_only.as_ref()),
        "healthz_port": bound_port(healthz.as_ref()),
    });
    eprintln!("kubelet (standin): {} listening: {ready}", s.version);

    if let Some((listener, policy)) = serving {
        let server = server.clone();
        tokio::spawn(accept_loop(listener, move |stream| {
            let policy = policy.clone();
            let server = server.clone();
            async move {
                match policy {
                    Some(policy) => serve_tls(stream, policy, server).await,
                    None => hold_silently(stream).await,
                }
            }
        }));
    }
    if let Some(listener) = read_only {
        let server = server.clone();
        tokio::spawn(accept_loop(listener, move |stream| {
            http::serve(stream, server.clone(), Port::ReadOnly)
        }));
    }
    if let Some(listener) = healthz {
        let server = server.clone();
        tokio::spawn(accept_loop(listener, move |stream| {
            http::serve(stream, server.clone(), Port::Healthz)
        }));
    }
    if let Some(path) = &opts.ready_file {
        write_ready(path, &ready)?;
    }

    tokio::select! {
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
    }
    eprintln!("kubelet (standin): signal received, shutting down");
    Ok(())
}

async fn accept_loop<F, Fut>(listener: TcpListener, handle: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(stream));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("kubelet (standin): accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// `--standin-silent-tls`: read and discard until the client gives up.
async fn hold_silently(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Write a final answer, half-close, and wait (bounded) for the client to close, so the
/// answer is not lost to a reset.
async fn reply_and_close(mut stream: TcpStream, bytes: &[u8]) {
    if stream.write_all(bytes).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(LINGER, async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn serve_tls(mut stream: TcpStream, policy: Arc<TlsPolicy>, server: Arc<Server>) {
    let Ok(Ok((raw, peeked))) =
        tokio::time::timeout(HELLO_TIMEOUT, tls::read_client_hello(&mut stream)).await
    else {
        return;
    };
    match peeked {
        Peeked::Http => {
            reply_and_close(
                stream,
                b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
            )
            .await;
            return;
        }
        Peeked::Other => {}
        Peeked::Hello(hello) => match policy.decide(&hello) {
            Decision::Rustls => {}
            Decision::Reply(bytes) => {
                reply_and_close(stream, &bytes).await;
                return;
            }
            Decision::Close => return,
        },
    }
    let accepted = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        policy.acceptor.accept(tls::Replay::new(raw, stream)),
    )
    .await;
    if let Ok(Ok(tls_stream)) = accepted {
        http::serve(tls_stream, server, Port::Serving).await;
    }
}
