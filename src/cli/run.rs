//! The runners of `check`, `fix`, `serve` and `baseline`: the flags turned into the options of
//! observe, evaluate and publish, and the report written to stdout.

use std::time::Duration;

use super::args::{
    ApiAccess, BaselineCommand, CheckArgs, ColorChoice, EvaluateArgs, FixArgs, FixFormat, Format,
    LiveProbes, MetricsAuth, MetricsControlStates, ServeArgs, StateArgs,
};
use super::CliError;
use crate::agent::{self, AgentConfig};
use crate::evaluate::policy::Policy;
use crate::io::host::HostRoot;
use crate::io::kube::ApiAccessMode;
use crate::observe::cluster::{Cluster, ClusterOptions};
use crate::observe::enrich::EnrichOptions;
use crate::observe::live::socket::Timeouts;
use crate::observe::live::{LiveMode, LiveOptions};
use crate::observe::ObserveOptions;
use crate::publish::drift::store::StateDir;
use crate::publish::metrics::{ControlStates, ExpositionOptions};
use crate::publish::report::{self, Report};

fn cluster_options(eval: &EvaluateArgs) -> ClusterOptions {
    ClusterOptions {
        mode: match eval.api.api_access {
            ApiAccess::Auto => ApiAccessMode::Auto,
            ApiAccess::On => ApiAccessMode::On,
            ApiAccess::Off => ApiAccessMode::Off,
        },
        kubeconfig: eval.api.kubeconfig.clone(),
        ..ClusterOptions::default()
    }
}

/// `check` and `baseline accept`: the API's view, waited for at most the request timeout.
fn check_cluster(
    eval: &EvaluateArgs,
    host: &HostRoot,
    opts: &ObserveOptions,
    rt: &tokio::runtime::Runtime,
) -> Result<Cluster, CliError> {
    // `--api-access=off` is decided by `Cluster::connect` too (no API access, the reason
    // "--api-access=off").
    let copts = cluster_options(eval);
    let node = crate::observe::node_name(host, opts.node_name.as_deref());
    let cluster = rt
        .block_on(async {
            let c = Cluster::connect(&copts, &node).await?;
            c.wait_synced(copts.request_timeout).await;
            Ok::<_, crate::io::kube::ClientError>(c)
        })
        .map_err(CliError::Cluster)?;
    Ok(cluster)
}

/// `serve`'s optional series: `--metrics-control-states`, `--metrics-control-info`,
/// `--metrics-probe-durations`.
fn exposition_options(args: &ServeArgs) -> ExpositionOptions {
    ExpositionOptions {
        control_states: match args.metrics_control_states {
            MetricsControlStates::Active => ControlStates::Active,
            MetricsControlStates::All => ControlStates::All,
        },
        control_info: args.metrics_control_info,
        probe_durations: args.metrics_probe_durations,
    }
}

fn enrich_options(eval: &EvaluateArgs) -> EnrichOptions {
    let (host, probes) = (&eval.host, &eval.probes);
    EnrichOptions {
        live: LiveOptions {
            mode: match probes.live_probes {
                LiveProbes::Auto => LiveMode::Auto,
                LiveProbes::On => LiveMode::On,
                LiveProbes::Off => LiveMode::Off,
            },
            timeouts: Timeouts {
                connect: probes.probe_timeout,
                overall: probes.probe_timeout,
            },
            kubelet_address: probes.kubelet_address,
            ..LiveOptions::default()
        },
        version_exec: host.version_exec,
        version_timeout: Duration::from_secs(2),
        version_override: host.kubelet_version.clone().filter(|v| !v.is_empty()),
        running_config: crate::observe::running_config::RunningConfigOptions {
            enabled: probes.read_running_config,
            via_proxy: probes.running_config_via_proxy,
            timeout: probes.probe_timeout.max(Duration::from_secs(3)),
            explicit_address: probes.kubelet_address.is_some(),
        },
    }
}

/// What `serve`, `check` and `baseline accept` share: the host root opened, the policy
/// loaded (with the CVE feed), the observation's options.
pub(super) fn load_common(
    eval: &EvaluateArgs,
) -> Result<(HostRoot, Policy, ObserveOptions), CliError> {
    if eval.probes.running_config_via_proxy && !eval.probes.read_running_config {
        tracing::warn!(
            "--running-config-via-proxy has no effect without --read-running-config: the running configuration is not read"
        );
    }
    let host = HostRoot::new(&eval.host.host_root)
        .map_err(CliError::HostRoot)?
        .with_max_read(eval.host.max_read_bytes);
    let policy = match &eval.policy.policy {
        Some(p) => Policy::load(
            &p.to_string_lossy(),
            crate::io::host::read_operator_file(p, crate::evaluate::policy::MAX_POLICY_BYTES),
        )?,
        None => Policy::embedded(),
    };
    // Read once at start (a new feed needs a restart, like the policy); an unusable file is
    // logged and makes the CVE control unknown, never a start failure.
    let policy = match eval
        .policy
        .cve_feed
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
    {
        Some(path) => policy.with_cve_feed(load_cve_feed(path)),
        None => policy,
    };
    let opts = ObserveOptions {
        node_name: eval.host.node_name.clone(),
        kubelet_pid: eval.host.kubelet_pid,
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
fn state_dir(state: &StateArgs) -> StateDir {
    StateDir::new(
        state
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
pub(super) fn baseline(cmd: &BaselineCommand) -> Result<i32, CliError> {
    use crate::publish::drift::store::{Loaded, BASELINE_FILE};
    use std::io::Write;
    match cmd {
        BaselineCommand::Show(args) => {
            let store = state_dir(&args.state);
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
                Loaded::Corrupt(why) => Err(CliError::BaselineCorrupt { path, why }),
                Loaded::Unreadable(e) => Err(CliError::BaselineRead(e)),
            }
        }
        BaselineCommand::Accept(args) => {
            let store = state_dir(&args.state);
            let (host, policy, opts) = load_common(&args.evaluate)?;
            let rt = check_runtime()?;
            let cluster = check_cluster(&args.evaluate, &host, &opts, &rt)?;
            let (snapshot, results, _) = agent::check_once(
                &host,
                &opts,
                &enrich_options(&args.evaluate),
                &policy,
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
                args.origin.baseline_from_policy,
                agent::BUILD_VERSION,
            )
            .map_err(CliError::BaselineAccept)?;
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

/// `check`: evaluate once, write the report, and return the exit status of
/// [`CheckArgs::gate`] (docs/check.md).
pub(super) fn check(args: &CheckArgs) -> Result<i32, CliError> {
    use std::io::IsTerminal;
    let (host, policy, opts) = load_common(&args.evaluate)?;
    let rt = check_runtime()?;
    let enrich = enrich_options(&args.evaluate);
    let cluster = check_cluster(&args.evaluate, &host, &opts, &rt)?;
    let (snapshot, results, duration) =
        agent::check_once(&host, &opts, &enrich, &policy, Some(&cluster), rt.handle());
    drop(cluster);
    rt.shutdown_timeout(Duration::from_secs(1));
    let drift = crate::publish::drift::assess(&state_dir(&args.state), &snapshot, &results);
    let report = Report::new(&snapshot, results, duration).with_drift(drift);
    let gate = args.gate();
    let terminal = std::io::stdout().is_terminal();
    let table = report::table::TableOptions {
        colour: match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && std::env::var_os("NO_COLOR").is_none(),
        },
        // Cut to the columns only for a person at a terminal: a pipe or a file gets every
        // value whole.
        wide: args.wide || !terminal,
        only: args.only_statuses(),
        gate,
    };
    let out = render_check(args, &report, &table)?;
    match write_stdout(&out) {
        // The reader went away (`check | head`): what it did not read is not an
        // error; the verdict stands.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    let verdict = gate.verdict(&report);
    let table_says_it = args.format == Format::Table && args.benchmark.is_none();
    if let (report::Verdict::NoKubelet(why), false) = (&verdict, table_says_it) {
        // A pipeline that keeps only stdout's JSON or XML still sees why the status is 3
        // (the control table says it in its header and last line; the benchmark view
        // does not).
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "kubelet-sentinel: no usable kubelet on this host ({why}): every kubelet control is unknown; exit 3 (with --require-kubelet=false the controls decide the exit status)"
        );
    }
    Ok(verdict.exit_code())
}

/// The report of `check` in the format and (with `--benchmark`, or for
/// `--format kube-bench-json`) the benchmark asked for. The exit status does not depend
/// on it: `--fail-on` judges the controls either way.
fn render_check(
    args: &CheckArgs,
    report: &Report,
    table: &report::table::TableOptions,
) -> Result<String, CliError> {
    use crate::evaluate::benchmark;
    use report::benchmark::BenchmarkReport;
    let requested = match (args.format, args.benchmark.as_deref()) {
        (Format::KubeBenchJson, None) => Some("auto"),
        (_, requested) => requested,
    };
    let Some(requested) = requested else {
        return Ok(match args.format {
            Format::Table => report::table::render(report, table),
            Format::Json => report::json::render(report),
            // `kube-bench-json` always has a benchmark (`auto` above).
            Format::Junit | Format::KubeBenchJson => report::junit::render(report, &table.gate),
        });
    };
    // `parse_benchmark` only lets known ids through.
    let selection = benchmark::select(requested, report.kubelet.version.as_deref())
        .ok_or_else(|| CliError::Benchmark(format!("{requested:?} is not a benchmark")))?;
    let b = BenchmarkReport::new(report, &selection);
    match args.format {
        Format::Table => Ok(report::benchmark::render_table(&b, table.colour)),
        Format::Json => Ok(report::benchmark::render_json(&b)),
        Format::KubeBenchJson => Ok(report::kube_bench::render(&b)),
        Format::Junit => Err(CliError::Benchmark(
            "--format junit has no benchmark form: use table, json or kube-bench-json".to_string(),
        )),
    }
}

/// `fix`: observe and evaluate as `check` does, plan and prove the fix, print it and
/// (with `--out`) write it; the exit status of [`crate::evaluate::fix::Plan::exit_code`].
pub(super) fn fix(args: &FixArgs) -> Result<i32, CliError> {
    use crate::evaluate::fix::{self as planner, FixOptions};
    use crate::publish::fix as out;
    // An unusable --out is found before the node is observed.
    if let Some(dir) = &args.out {
        out::check_out(dir)?;
    }
    let (host, policy, opts) = load_common(&args.evaluate)?;
    let rt = check_runtime()?;
    let enrich = enrich_options(&args.evaluate);
    let cluster = check_cluster(&args.evaluate, &host, &opts, &rt)?;
    let (snapshot, results, _) =
        agent::check_once(&host, &opts, &enrich, &policy, Some(&cluster), rt.handle());
    drop(cluster);
    rt.shutdown_timeout(Duration::from_secs(1));
    let fix_opts = FixOptions {
        dropin_name: args.dropin_name.clone(),
        controls: (!args.controls.is_empty()).then(|| args.controls.clone()),
    };
    let facts = fix_facts(&host, &snapshot, &fix_opts);
    let plan = planner::plan(&snapshot, &results, &policy, &facts, &fix_opts);
    if let Some(dir) = &args.out {
        out::write_out(dir, &plan)?;
    }
    let mut text = match args.format {
        FixFormat::Json => out::render_json(&plan),
        FixFormat::Text => out::render_text(&plan),
    };
    if args.out.is_none() && args.format == FixFormat::Text {
        let diff = out::render_diff(&plan);
        if !diff.is_empty() {
            text.push_str("\n## Diff (nothing written: --dry-run)\n\n");
            text.push_str(&diff);
        }
    }
    match write_stdout(&text) {
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(plan.exit_code())
}

/// The facts the fix's preconditions and edits need, read from the host.
fn fix_facts(
    host: &HostRoot,
    snapshot: &crate::model::snapshot::Snapshot,
    opts: &crate::evaluate::fix::FixOptions,
) -> crate::evaluate::fix::Facts {
    use crate::observe::fix_facts;
    let targets = crate::evaluate::fix::target_paths(snapshot, opts);
    crate::evaluate::fix::Facts {
        sysctls: fix_facts::sysctls(host),
        hostname: Some(fix_facts::hostname(host)),
        flag_sources: snapshot
            .kubelet
            .as_ref()
            .map(|k| fix_facts::flag_sources(host, k))
            .unwrap_or_default(),
        existing: fix_facts::existing_texts(host, &targets),
    }
}

/// `serve`: run the agent until it is stopped.
pub(super) fn serve(args: &ServeArgs) -> Result<i32, CliError> {
    let eval = &args.evaluate;
    // The host root is opened here only to fail early on a bad one; the agent opens its own.
    let (_, policy, opts) = load_common(eval)?;
    let cfg = AgentConfig {
        host_root: eval.host.host_root.clone(),
        node_name: opts.node_name.clone(),
        kubelet_pid: opts.kubelet_pid,
        interval: args.interval,
        listen: args.listen_address,
        health_listen: args.health_listen_address,
        policy,
        max_read_bytes: eval.host.max_read_bytes,
        enrich: enrich_options(eval),
        state_dir: state_dir(&args.state).dir().to_path_buf(),
        baseline_from_policy: args.origin.baseline_from_policy,
        watch_interval: args.watch_interval,
        cluster: ClusterOptions {
            events: args.events,
            // `--node-pool-labels=` (one empty entry): no pool label.
            node_pool_labels: args
                .node_pool_labels
                .iter()
                .filter(|l| !l.is_empty())
                .cloned()
                .collect(),
            ..cluster_options(eval)
        },
        metrics: agent::MetricsOptions {
            tls: args.metrics_tls(eval.host.node_name.as_deref()),
            auth: args.metrics_auth == MetricsAuth::Kubernetes,
            auth_timeout: args.metrics_auth_timeout,
            exposition: exposition_options(args),
        },
    };
    // One worker: the server only copies pre-rendered bytes and every evaluation runs on
    // the blocking pool, so a second worker bought no measurable latency and cost its
    // stack and allocation cache (docs/performance.md, "Runtime threads"); the health
    // listener's flood tests (tests/security_network.rs) run against this runtime shape.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
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
        crate::io::host::make_fifo(&fifo);
        let e = load_cve_feed(&fifo).unwrap_err();
        assert!(
            matches!(e, CveFeedError::Read(HostError::NotAFile { .. })),
            "{e}"
        );
        assert!(e.to_string().starts_with("--cve-feed "), "{e}");
    }
}
