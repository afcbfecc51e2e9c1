use super::*;
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
fn exposition_flags() {
    // Defaults: the fleet-sized page, the default pool labels in their order.
    let a = serve_args(&[]).unwrap();
    assert_eq!(a.metrics_control_states, MetricsControlStates::Active);
    assert!(!a.metrics_control_info);
    assert_eq!(a.node_pool_labels, crate::model::label::DEFAULT_POOL_LABELS);

    let a = serve_args(&[
        "--metrics-control-states",
        "all",
        "--metrics-control-info",
        "--node-pool-labels",
        "example.com/pool,pool",
    ])
    .unwrap();
    assert_eq!(a.metrics_control_states, MetricsControlStates::All);
    assert!(a.metrics_control_info);
    assert_eq!(a.node_pool_labels, ["example.com/pool", "pool"]);
    assert!(
        !serve_args(&["--metrics-control-info=false"])
            .unwrap()
            .metrics_control_info
    );
    // `=` only: a bare value after the bool flag is not taken as its value.
    assert!(serve_args(&["--metrics-control-info", "false"]).is_err());
    assert!(serve_args(&["--metrics-control-states", "some"]).is_err());

    // Empty: no pool label (dropped in run.rs); a bad key is refused, naming it.
    let a = serve_args(&["--node-pool-labels="]).unwrap();
    assert_eq!(a.node_pool_labels, [""]);
    let e = serve_args(&["--node-pool-labels", "ok/pool,Bad Key"]).unwrap_err();
    assert!(e.to_string().contains("Bad Key"), "{e}");
    let e = serve_args(&["--node-pool-labels", &"x".repeat(64)]).unwrap_err();
    assert!(e.to_string().contains("not a Kubernetes label key"), "{e}");
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

fn check_args(args: &[&str]) -> Result<CheckArgs, clap::Error> {
    let mut argv = vec!["kubelet-sentinel", "check"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv)?.command {
        Command::Check(a) => Ok(a),
        other => panic!("not check: {other:?}"),
    }
}

#[test]
fn check_exit_flags_and_table_flags() {
    use crate::evaluate::Status;
    // The defaults: a kubelet required, unknown not counted, every status shown.
    let a = check_args(&[]).unwrap();
    assert_eq!(a.gate(), crate::publish::report::Gate::default());
    assert!(a.require_kubelet && !a.fail_on_unknown && !a.wide);
    assert_eq!(a.only_statuses(), None);

    let a = check_args(&[
        "--require-kubelet=false",
        "--fail-on-unknown",
        "--fail-on",
        "medium",
        "--only",
        "failed,unknown",
        "--wide",
    ])
    .unwrap();
    assert_eq!(
        a.gate(),
        crate::publish::report::Gate {
            fail_on: Some(Severity::Medium),
            fail_on_unknown: true,
            require_kubelet: false,
        }
    );
    assert_eq!(a.only_statuses(), Some(vec![Status::Fail, Status::Unknown]));
    assert!(a.wide);
    // The report's own words are accepted too; a status that is none is refused.
    let a = check_args(&["--only", "pass,not_applicable,fail"]).unwrap();
    assert_eq!(
        a.only_statuses(),
        Some(vec![Status::Pass, Status::NotApplicable, Status::Fail])
    );
    assert!(check_args(&["--only", "broken"]).is_err());
    // A boolean flag takes its value with `=` only: `--wide table` is not `--wide=table`.
    assert!(check_args(&["--wide", "table"]).is_err());
}

#[test]
fn flags_belong_to_their_commands() {
    // Logging: before or after the command's name.
    let cli = Cli::try_parse_from(["kubelet-sentinel", "--log-format", "json", "check"]).unwrap();
    assert_eq!(cli.log.log_format, LogFormat::Json);
    let cli = Cli::try_parse_from(["kubelet-sentinel", "check", "--log-level", "debug"]).unwrap();
    assert_eq!(cli.log.log_level, "debug");
    // A command's own flags: after its name only, and only where they are used.
    assert!(Cli::try_parse_from(["kubelet-sentinel", "--host-root", "/h", "check"]).is_err());
    let a = check_args(&["--host-root", "/h", "--state-dir", "/s"]).unwrap();
    assert_eq!(a.evaluate.host.host_root, std::path::Path::new("/h"));
    assert_eq!(
        a.state.state_dir.as_deref(),
        Some(std::path::Path::new("/s"))
    );
    for (argv, what) in [
        (
            &["baseline", "show", "--host-root", "/h"][..],
            "baseline show: no host",
        ),
        (
            &["baseline", "show", "--policy", "/p"][..],
            "baseline show: no policy",
        ),
        (
            &["check", "--listen-address", "127.0.0.1:1"][..],
            "check: no server",
        ),
        (
            &["check", "--baseline-from-policy"][..],
            "check: accepts no baseline",
        ),
        (&["serve", "--fail-on", "low"][..], "serve: no exit status"),
        (
            &["baseline", "accept", "--format", "json"][..],
            "accept: no report",
        ),
    ] {
        let e =
            Cli::try_parse_from(std::iter::once("kubelet-sentinel").chain(argv.iter().copied()))
                .expect_err(what);
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{what}");
    }
    let cli = Cli::try_parse_from([
        "kubelet-sentinel",
        "baseline",
        "accept",
        "--host-root",
        "/h",
        "--baseline-from-policy",
    ])
    .unwrap();
    match cli.command {
        Command::Baseline(BaselineCommand::Accept(a)) => {
            assert!(a.origin.baseline_from_policy);
            assert_eq!(a.evaluate.host.host_root, std::path::Path::new("/h"));
        }
        other => panic!("{other:?}"),
    }
}

/// Every argument can be documented from `Cli::command()` alone (docs/flags.md is
/// generated from it): help text, an env twin, and a value name for those that take one.
#[test]
fn every_arg_is_introspectable() {
    let mut cmd = Cli::command();
    cmd.build();
    let mut faults = Vec::new();
    fn walk(c: &clap::Command, path: &str, faults: &mut Vec<String>) {
        for a in c.get_arguments() {
            let id = a.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let name = format!("{path} --{id}");
            if a.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
                faults.push(format!("{name}: no help"));
            }
            if a.get_env().is_none() {
                faults.push(format!("{name}: no env twin"));
            }
            let takes_value = a.get_num_args().is_none_or(|n| n.takes_values());
            if takes_value
                && a.get_value_names()
                    .is_none_or(<[clap::builder::Str]>::is_empty)
            {
                faults.push(format!("{name}: no value_name"));
            }
        }
        for sub in c.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), faults);
        }
    }
    walk(&cmd, "kubelet-sentinel", &mut faults);
    assert!(faults.is_empty(), "{faults:#?}");
}
