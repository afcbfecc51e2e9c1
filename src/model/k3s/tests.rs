use super::*;

fn ov(v: &str, line: usize) -> OptValue {
    OptValue {
        value: v.to_string(),
        file: "/etc/rancher/k3s/config.yaml".to_string(),
        line,
    }
}

fn user(v: &str) -> (OptValue, OriginHow) {
    (ov(v, 1), OriginHow::K3sConfigArg)
}

fn words(args: &[BuiltArg]) -> Vec<String> {
    argv(args)
}

fn file(path: &str, text: &str) -> FileText {
    FileText {
        path: path.to_string(),
        text: Ok(text.to_string()),
    }
}

#[test]
fn get_args_replaces_appends_prepends_and_sorts() {
    let init = default_args(&[
        d("read-only-port", "0"),
        d("node-labels", "a=b"),
        d("kubeconfig", "/k"),
    ]);
    // A user value replaces k3s's; output sorted by key.
    let out = get_args(&init, &[user("read-only-port=10255")]);
    assert_eq!(
        words(&out),
        [
            "--kubeconfig=/k",
            "--node-labels=a=b",
            "--read-only-port=10255"
        ]
    );
    assert_eq!(out[2].origin.how, OriginHow::K3sConfigArg);
    assert_eq!(out[0].origin.how, OriginHow::K3sDefault);
    // key+= keeps k3s's value first, then earlier user values, then the new one.
    let out = get_args(&init, &[user("node-labels+=c=d"), user("node-labels+=e=f")]);
    assert_eq!(
        words(&out),
        [
            "--kubeconfig=/k",
            "--node-labels=a=b",
            "--node-labels=c=d",
            "--node-labels=e=f",
            "--read-only-port=0"
        ]
    );
    // key-= puts the new value before k3s's.
    let out = get_args(&init, &[user("--node-labels-=x=y")]);
    assert_eq!(
        words(&out)[1..3],
        [
            "--node-labels=x=y".to_string(),
            "--node-labels=a=b".to_string()
        ]
    );
    // Repeated plain values are all kept (the kubelet takes the last for a scalar).
    let out = get_args(&init, &[user("v=2"), user("v=4"), user("seccomp-default")]);
    assert_eq!(
        words(&out),
        [
            "--kubeconfig=/k",
            "--node-labels=a=b",
            "--read-only-port=0",
            "--seccomp-default=true",
            "--v=2",
            "--v=4"
        ]
    );
    assert_eq!(last_value(&words(&out), "v").as_deref(), Some("4"));
}

#[test]
fn config_files_replace_or_append_per_key() {
    let main = file(
        "/etc/rancher/k3s/config.yaml",
        "token: secret-value\nkubelet-arg:\n  - \"read-only-port=10255\"\n  - v=2\nnode-name: Node-A\n",
    );
    let d1 = file(
        "/etc/rancher/k3s/config.yaml.d/10-a.yaml",
        "# more\nkubelet-arg+:\n- seccomp-default=true\n",
    );
    let merged = merge_config(&[main.clone(), d1.clone()]);
    assert!(merged.errors.is_empty(), "{:?}", merged.errors);
    let args: Vec<(&str, usize, &str)> = merged
        .list("kubelet-arg")
        .iter()
        .map(|v| (v.value.as_str(), v.line, v.file.as_str()))
        .collect();
    assert_eq!(
        args,
        [
            ("read-only-port=10255", 3, "/etc/rancher/k3s/config.yaml"),
            ("v=2", 4, "/etc/rancher/k3s/config.yaml"),
            (
                "seccomp-default=true",
                3,
                "/etc/rancher/k3s/config.yaml.d/10-a.yaml"
            ),
        ]
    );
    assert_eq!(merged.scalar("node-name").unwrap().value, "Node-A");
    // A plain key in a later file replaces the whole list.
    let d2 = file(
        "/etc/rancher/k3s/config.yaml.d/20-b.yaml",
        "kubelet-arg: [\"event-qps=5\"]\n",
    );
    let merged = merge_config(&[main.clone(), d1, d2]);
    let vals: Vec<&str> = merged
        .list("kubelet-arg")
        .iter()
        .map(|v| v.value.as_str())
        .collect();
    assert_eq!(vals, ["event-qps=5"]);
    // `+` in the first file is a plain set; a scalar is one value.
    let merged = merge_config(&[file(
        "/c.yaml",
        "kubelet-arg+: a=b\nprotect-kernel-defaults: true\n",
    )]);
    assert_eq!(merged.list("kubelet-arg")[0].value, "a=b");
    assert_eq!(merged.flag("protect-kernel-defaults"), Some(true));
}

#[test]
fn config_errors_never_quote_the_file() {
    let merged = merge_config(&[file(
        "/etc/rancher/k3s/config.yaml",
        "token: K10supersecret::server:abc\nkubelet-arg: [unclosed\n",
    )]);
    assert_eq!(merged.errors.len(), 1);
    assert!(merged.errors[0].starts_with("/etc/rancher/k3s/config.yaml: invalid YAML"));
    assert!(
        !merged.errors[0].contains("supersecret"),
        "{}",
        merged.errors[0]
    );
    let merged = merge_config(&[FileText {
        path: "/x.yaml".to_string(),
        text: Err("permission denied".to_string()),
    }]);
    assert_eq!(merged.errors, ["/x.yaml: permission denied"]);
}

fn opts(release: Option<Release>, scheme: Scheme) -> Options {
    Options {
        product: Product::K3s,
        subcommand: "server".to_string(),
        release,
        scheme,
        data_dir: "/var/lib/rancher/k3s".to_string(),
        node_name: Some("node-a".to_string()),
        node_ip: None,
        protect_kernel_defaults: false,
        node_labels: Vec::new(),
        disable_ccm: false,
        disable_kube_proxy: false,
        kubelet_args: Vec::new(),
        kube_proxy_args: Vec::new(),
    }
}

#[test]
fn defaults_follow_the_release() {
    let has = |o: &Options, k: &str| -> Option<String> {
        kubelet_defaults(o)
            .into_iter()
            .find(|a| a.key == k)
            .and_then(|a| a.value)
    };
    // Before 1.32: flags only, hardened by flags.
    let o = opts(Some((1, 31, 4)), scheme_for((1, 31, 4)));
    assert_eq!(o.scheme, Scheme::Flags);
    assert_eq!(has(&o, "anonymous-auth").as_deref(), Some("false"));
    assert_eq!(has(&o, "authorization-mode").as_deref(), Some("Webhook"));
    assert_eq!(has(&o, "read-only-port").as_deref(), Some("0"));
    assert_eq!(has(&o, "config-dir"), None);
    // 1.32.0–1.32.3: the drop-in scheme, and no read-only-port flag (k3s#12164).
    for p in 0..=3 {
        let o = opts(Some((1, 32, p)), scheme_for((1, 32, p)));
        assert_eq!(o.scheme, Scheme::ConfigDir);
        assert_eq!(has(&o, "read-only-port"), None, "1.32.{p}");
        assert_eq!(has(&o, "anonymous-auth"), None);
        assert_eq!(
            has(&o, "config-dir").as_deref(),
            Some("/var/lib/rancher/k3s/agent/etc/kubelet.conf.d")
        );
    }
    for r in [(1, 32, 4), (1, 33, 0), (1, 36, 3)] {
        let o = opts(Some(r), scheme_for(r));
        assert_eq!(has(&o, "read-only-port").as_deref(), Some("0"), "{r:?}");
    }
    // Unknown release with the drop-in scheme: cannot tell.
    assert_eq!(passes_read_only_port(None, Scheme::ConfigDir), None);
    assert_eq!(has(&opts(None, Scheme::ConfigDir), "read-only-port"), None);
    assert_eq!(parse_release("v1.32.4+k3s1"), Some((1, 32, 4)));
    assert_eq!(parse_release("v1.33.4-rke2r1"), Some((1, 33, 4)));
    assert_eq!(parse_release("1.33.4"), None);
}

#[test]
fn config_and_config_dir_args_are_taken_out_from_1_32() {
    let extra = vec![
        user("config=/etc/k.yaml"),
        user("config-dir=/etc/k.d"),
        user("v=2"),
    ];
    let (keep, removed) = extract_config_args(&extra, Scheme::ConfigDir);
    assert_eq!(keep.len(), 1);
    assert_eq!(removed.len(), 2);
    let (keep, _) = extract_config_args(&extra, Scheme::Flags);
    assert_eq!(keep.len(), 3);
}

#[test]
fn unit_exec_start_and_command_line() {
    let unit = "[Unit]\nDescription=k3s\n[Service]\nExecStart=\nExecStart=/usr/local/bin/k3s \\\n    server \\\n    '--kubelet-arg=read-only-port=10255' \\\n# a comment\n    --kubelet-arg \"v=2\" --protect-kernel-defaults \\\n    -c /etc/k3s.yaml --data-dir=/data\n";
    let (path, w) = exec_start_words(&[(
        "/etc/systemd/system/k3s.service".to_string(),
        unit.to_string(),
    )])
    .unwrap();
    assert_eq!(path, "/etc/systemd/system/k3s.service");
    let cl = parse_command_line(&path, &w).unwrap();
    assert_eq!(cl.subcommand, "server");
    let ka: Vec<(&str, usize)> = cl.options["kubelet-arg"]
        .iter()
        .map(|v| (v.value.as_str(), v.line))
        .collect();
    assert_eq!(ka, [("read-only-port=10255", 7), ("v=2", 9)]);
    assert_eq!(cl.options["protect-kernel-defaults"][0].value, "true");
    assert_eq!(cl.options["config"][0].value, "/etc/k3s.yaml");
    assert_eq!(cl.options["data-dir"][0].value, "/data");
    // A later empty ExecStart= resets.
    let dropin = "[Service]\nExecStart=\n";
    assert!(exec_start_words(&[
        ("/u".to_string(), unit.to_string()),
        ("/u.d/x.conf".to_string(), dropin.to_string())
    ])
    .is_none());
    assert!(
        parse_command_line("/u", &[("k3s".to_string(), 1), ("kubectl".to_string(), 1)]).is_none()
    );
}

#[test]
fn options_resolve_cli_over_config_over_env() {
    let cl = CommandLine {
        file: "/u".to_string(),
        subcommand: "agent".to_string(),
        options: BTreeMap::from([("kubelet-arg".to_string(), vec![ov("v=4", 9)])]),
    };
    let cfg = merge_config(&[file(
        "/etc/rancher/k3s/config.yaml",
        "kubelet-arg:\n- v=2\nnode-name: FromConfig\n",
    )]);
    let env = BTreeMap::from([
        ("K3S_NODE_NAME".to_string(), "from-env".to_string()),
        ("K3S_DATA_DIR".to_string(), "/srv/k3s".to_string()),
    ]);
    let o = resolve_options(
        Product::K3s,
        &cl,
        &cfg,
        &HostFacts {
            env: Some(&env),
            hostname: Some("host"),
            node_id: None,
        },
        Some((1, 33, 1)),
        Scheme::ConfigDir,
    );
    assert_eq!(o.node_name.as_deref(), Some("fromconfig"));
    assert_eq!(o.data_dir, "/srv/k3s");
    let hows: Vec<&OriginHow> = o.kubelet_args.iter().map(|(_, h)| h).collect();
    assert_eq!(hows, [&OriginHow::K3sConfigArg, &OriginHow::K3sCommandLine]);
    let built = kubelet_args(&o);
    assert_eq!(last_value(&argv(&built), "v").as_deref(), Some("4"));
    assert_eq!(
        last_value(&argv(&built), "kubeconfig").as_deref(),
        Some("/srv/k3s/agent/kubelet.kubeconfig")
    );
    // RKE2 prefixes its own three flags.
    let mut r = o.clone();
    r.product = Product::Rke2;
    assert_eq!(
        argv(&kubelet_args(&r))[0],
        "--volume-plugin-dir=/var/lib/kubelet/volumeplugins"
    );
}

fn kubelet_for(config: &str, dropins: &[(&str, &str)], cli: &[&str]) -> K3sKubelet {
    let mut files = vec![file("/etc/rancher/k3s/config.yaml", config)];
    for (n, t) in dropins {
        files.push(file(&format!("/etc/rancher/k3s/config.yaml.d/{n}"), t));
    }
    let cfg = merge_config(&files);
    let cl = CommandLine {
        file: "/etc/systemd/system/k3s.service".to_string(),
        subcommand: "server".to_string(),
        options: BTreeMap::from([(
            "kubelet-arg".to_string(),
            cli.iter().map(|a| ov(a, 12)).collect(),
        )]),
    };
    let mut o = resolve_options(
        Product::K3s,
        &cl,
        &cfg,
        &HostFacts {
            env: None,
            hostname: Some("node-a"),
            node_id: None,
        },
        Some((1, 33, 1)),
        Scheme::ConfigDir,
    );
    let built = kubelet_args(&o);
    o.kubelet_args.clear();
    K3sKubelet {
        product: Product::K3s,
        config_file: "/etc/rancher/k3s/config.yaml".to_string(),
        origins: origins(&built),
        kube_proxy: None,
        version: None,
        notes: Vec::new(),
        rebuild: Some(Rebuild {
            options: o,
            cli_kubelet_args: cli.iter().map(|a| ov(a, 12)).collect(),
            config_file: "/etc/rancher/k3s/config.yaml".to_string(),
            config_files: files,
        }),
    }
}

#[test]
fn fix_dropin_realises_the_changes() {
    // config.yaml opens the read-only port and turns anonymous auth on; a later drop-in
    // sets the event QPS.
    let k = kubelet_for(
        "kubelet-arg:\n- read-only-port=10255\n- anonymous-auth=true\n",
        &[("50-x.yaml", "kubelet-arg+:\n- event-qps=0\n")],
        &[],
    );
    let before = argv(&k.rebuild.as_ref().unwrap().build(None).unwrap());
    assert_eq!(
        last_value(&before, "read-only-port").as_deref(),
        Some("10255")
    );
    let text = fix_config_dropin(&[
        (
            "read-only-port=0".to_string(),
            vec!["read-only-port-disabled".to_string()],
        ),
        (
            "anonymous-auth=false".to_string(),
            vec!["anonymous-auth-disabled".to_string()],
        ),
        (
            "event-qps=50".to_string(),
            vec!["event-qps-limited".to_string()],
        ),
    ]);
    let after = args_with_dropin(&k, "90-kubelet-sentinel.yaml", &text).unwrap();
    // Scalars: last wins, and the kubelet ends up with the fixed values.
    assert_eq!(last_value(&after, "read-only-port").as_deref(), Some("0"));
    assert_eq!(
        last_value(&after, "anonymous-auth").as_deref(),
        Some("false")
    );
    assert_eq!(last_value(&after, "event-qps").as_deref(), Some("50"));
    // Nothing else changed: the earlier entries are still there, in order.
    assert!(after.contains(&"--read-only-port=10255".to_string()));
    assert!(
        after.contains(&"--kubeconfig=/var/lib/rancher/k3s/agent/kubelet.kubeconfig".to_string())
    );
    // A drop-in that sorts before 50-x.yaml still comes after config.yaml, but 50-x's
    // event-qps then wins.
    let early = args_with_dropin(&k, "00-a.yaml", &text).unwrap();
    assert_eq!(last_value(&early, "event-qps").as_deref(), Some("0"));
    // A plain `kubelet-arg:` would have replaced every earlier entry: the `+` matters.
    let plain = text.replace("kubelet-arg+:", "kubelet-arg:");
    let replaced = args_with_dropin(&k, "90-kubelet-sentinel.yaml", &plain).unwrap();
    assert!(!replaced.contains(&"--read-only-port=10255".to_string()));
    // Bad names are refused.
    assert!(args_with_dropin(&k, "../x.yaml", &text).is_err());
    assert!(args_with_dropin(&k, "x.conf", &text).is_err());
}

#[test]
fn command_line_kubelet_arg_still_wins() {
    let k = kubelet_for("", &[], &["read-only-port=10255"]);
    let text = fix_config_dropin(&[(
        "read-only-port=0".to_string(),
        vec!["read-only-port-disabled".to_string()],
    )]);
    let after = args_with_dropin(&k, "90-kubelet-sentinel.yaml", &text).unwrap();
    // The config files' entries come before the command line's: the fix loses until the
    // `--kubelet-arg` is removed from the unit.
    assert_eq!(
        last_value(&after, "read-only-port").as_deref(),
        Some("10255")
    );
    let want = [FlagChange::Set {
        flag: "read-only-port".to_string(),
        value: "0".to_string(),
    }];
    assert_eq!(unrealised(&after, &want), want);
    let conflicts = command_line_conflicts(&k, "read-only-port");
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].file, "/etc/rancher/k3s/config.yaml");
    assert_eq!(conflicts[0].line, 12);
    // With the command-line entry gone, the same drop-in realises the change.
    let mut fixed = k.clone();
    if let Some(r) = fixed.rebuild.as_mut() {
        r.cli_kubelet_args.clear();
    }
    let after = args_with_dropin(&fixed, "90-kubelet-sentinel.yaml", &text).unwrap();
    assert!(unrealised(&after, &want).is_empty());
    // A Remove is realised only when no occurrence is left.
    let remove = [FlagChange::Remove {
        flag: "read-only-port".to_string(),
    }];
    assert_eq!(unrealised(&after, &remove), remove);
    let o = &k.origins;
    let ro = o.iter().find(|o| o.flag == "read-only-port").unwrap();
    assert_eq!(ro.how, OriginHow::K3sCommandLine);
    assert_eq!(ro.label(), "--kubelet-arg");
}

#[test]
fn fix_dropin_text_parses_back() {
    let text = fix_config_dropin(&[(
        "tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384".to_string(),
        vec!["tls-strong-cipher-suites".to_string()],
    )]);
    let merged = merge_config(&[file("/etc/rancher/k3s/config.yaml.d/90-x.yaml", &text)]);
    assert!(merged.errors.is_empty());
    let v = merged.list("kubelet-arg");
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0].value,
        "tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384"
    );
    assert_eq!(v[0].line, 5);
}

#[test]
fn kube_proxy_args_and_disable() {
    let mut o = opts(Some((1, 33, 1)), Scheme::ConfigDir);
    o.kube_proxy_args = vec![user("metrics-bind-address=0.0.0.0:10249")];
    let kp = kube_proxy_args(&o);
    assert!(kp
        .args
        .contains(&"kubeconfig=/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig".to_string()));
    assert!(kp
        .args
        .contains(&"metrics-bind-address=0.0.0.0:10249".to_string()));
    assert!(kp.disabled.is_none());
    let m = kp
        .origins
        .iter()
        .find(|o| o.flag == "metrics-bind-address")
        .unwrap();
    assert_eq!(m.how, OriginHow::K3sConfigArg);
    o.disable_kube_proxy = true;
    assert!(kube_proxy_args(&o).disabled.is_some());
}

#[test]
fn env_files_give_only_the_wanted_variables() {
    let mut env = BTreeMap::new();
    env_file_values(
        "K3S_TOKEN=\"secret\"\nK3S_CONFIG_FILE='/etc/k.yaml'\nexport K3S_DATA_DIR=/d\n",
        &["K3S_CONFIG_FILE", "K3S_DATA_DIR"],
        &mut env,
    );
    assert_eq!(env.len(), 2);
    assert_eq!(env["K3S_CONFIG_FILE"], "/etc/k.yaml");
    assert!(!env.contains_key("K3S_TOKEN"));
}

#[test]
fn with_node_id_appends_the_id() {
    let cl = CommandLine {
        file: "/u".to_string(),
        subcommand: "agent".to_string(),
        options: BTreeMap::new(),
    };
    let cfg = merge_config(&[file("/c.yaml", "with-node-id: true\n")]);
    let resolve = |id: Option<&str>| {
        resolve_options(
            Product::K3s,
            &cl,
            &cfg,
            &HostFacts {
                env: None,
                hostname: Some("Edge-7"),
                node_id: id,
            },
            None,
            Scheme::Flags,
        )
        .node_name
    };
    assert_eq!(
        resolve(Some("3f2a9c1d")).as_deref(),
        Some("edge-7-3f2a9c1d")
    );
    assert_eq!(resolve(None), None);
}
