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
