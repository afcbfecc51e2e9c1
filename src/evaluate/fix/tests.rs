//! Tests of the fix planner: recipes, preconditions, the drop-in, flag changes, the proof.

use serde_json::json;

use super::*;
use crate::evaluate::testing::*;
use crate::model::kubelet_config::effective::parse_document;
use crate::model::snapshot::{Credential, FileRole};

fn run_with(s: &Snapshot, facts: &Facts, opts: &FixOptions) -> Plan {
    let policy = Policy::embedded();
    let results = evaluate(s, &policy);
    plan(s, &results, &policy, facts, opts)
}

fn run(s: &Snapshot, facts: &Facts) -> Plan {
    run_with(s, facts, &FixOptions::default())
}

fn fixed<'a>(p: &'a Plan, id: &str) -> Option<&'a ControlFix> {
    p.controls.iter().find(|c| c.id == id)
}

fn refused<'a>(p: &'a Plan, id: &str) -> &'a Cannot {
    p.cannot
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} is not under cannot: {p:#?}"))
}

/// Facts where every kernel setting holds and the host is `node-1`.
fn good_facts() -> Facts {
    Facts {
        sysctls: KERNEL_TUNABLES_OK
            .iter()
            .map(|(p, v)| (p.to_string(), Ok(v.to_string())))
            .collect(),
        hostname: Some(Ok("node-1".to_string())),
        ..Facts::default()
    }
}

const KERNEL_TUNABLES_OK: &[(&str, &str)] = &[
    ("vm/overcommit_memory", "1"),
    ("vm/panic_on_oom", "0"),
    ("kernel/panic", "10"),
    ("kernel/panic_on_oops", "1"),
    ("kernel/keys/root_maxkeys", "1000000"),
    ("kernel/keys/root_maxbytes", "25000000"),
];

#[test]
fn a_dropin_closes_what_an_earlier_dropin_opened() {
    let s = snapshot_with_dropins(
        &[],
        Some("readOnlyPort: 0\n"),
        &[("50-metrics.conf", "readOnlyPort: 10255\n")],
    );
    let p = run(&s, &good_facts());
    let c = fixed(&p, "read-only-port-disabled").expect("fixed");
    assert_eq!((c.before, c.after), (Status::Fail, Status::Pass));
    assert_eq!(c.by, vec!["dropin"]);
    assert!(c.restart);
    let d = p.dropin.as_ref().expect("a drop-in");
    assert_eq!(
        d.path,
        "/etc/kubernetes/kubelet.conf.d/90-kubelet-sentinel.conf"
    );
    assert_eq!(d.settings["readOnlyPort"], json!(0));
    assert!(
        d.text
            .contains("# read-only-port-disabled\nreadOnlyPort: 0\n"),
        "{}",
        d.text
    );
    // The text is a valid KubeletConfiguration that says what `settings` says.
    let mut parsed = parse_document(&d.text).expect("parses");
    parsed.as_object_mut().map(|o| {
        o.remove("apiVersion");
        o.remove("kind")
    });
    assert_eq!(parsed, d.settings);
    assert!(p.flag_changes.is_empty());
    assert_eq!(p.files.len(), 1);
    assert_eq!(p.files[0].mode, 0o600);
    assert!(
        p.after.fail < p.before.fail,
        "{:?} -> {:?}",
        p.before,
        p.after
    );
}

#[test]
fn nested_settings_render_nested_and_round_trip() {
    let s = snapshot_with_dropins(
        &["--kubeconfig=/etc/kubernetes/kubelet.conf"],
        Some("authentication:\n  anonymous:\n    enabled: true\n  webhook:\n    enabled: false\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\nauthorization:\n  mode: AlwaysAllow\n"),
        &[("10-a.conf", "podPidsLimit: 100\n")],
    );
    let mut s = s;
    kubelet_mut(&mut s).credential = Some(Ok(client_cert("system:node:node-1", &["system:nodes"])));
    let p = run(&s, &good_facts());
    for id in [
        "anonymous-auth-disabled",
        "authentication-webhook-enabled",
        "authorization-mode-webhook",
    ] {
        assert!(fixed(&p, id).is_some(), "{id}: {p:#?}");
    }
    let d = p.dropin.as_ref().expect("drop-in");
    assert_eq!(
        d.settings["authentication"]["anonymous"]["enabled"],
        json!(false)
    );
    assert_eq!(
        d.settings["authentication"]["webhook"]["enabled"],
        json!(true)
    );
    assert_eq!(d.settings["authorization"]["mode"], json!("Webhook"));
    assert!(
        d.text.contains(
            "authentication:\n  anonymous:\n    # anonymous-auth-disabled\n    enabled: false\n"
        ),
        "{}",
        d.text
    );
    let preconditions: Vec<&Precondition> = p.preconditions.iter().filter(|x| x.holds).collect();
    assert!(preconditions.len() >= 2, "{:#?}", p.preconditions);
}

#[test]
fn a_flag_that_beats_the_dropin_is_removed_and_the_proof_sees_it() {
    let s = snapshot_with_dropins(
        &["--read-only-port=10255"],
        Some("readOnlyPort: 0\n"),
        &[("10-x.conf", "podPidsLimit: 100\n")],
    );
    let k = s.kubelet.as_ref().expect("kubelet");
    let opts = FixOptions::default();
    let route = route(k, &opts);
    let cand = vec![Candidate {
        id: "read-only-port-disabled".to_string(),
        before: Status::Fail,
        kind: Kind::Settings(vec![("readOnlyPort", json!(0))]),
    }];
    let b = build(k, &cand, &route, &good_facts(), &s, &opts);
    assert_eq!(
        b.flag_changes,
        vec![(
            FlagChange::Remove {
                flag: "read-only-port".to_string()
            },
            vec!["read-only-port-disabled".to_string()]
        )]
    );
    let proven = prove(&s, &b, &route, &opts, &Policy::embedded());
    let r = proven
        .iter()
        .find(|r| r.id == "read-only-port-disabled")
        .expect("result");
    assert_eq!(r.status, Status::Pass, "{r:#?}");
    // Where the flag comes from is unknown here (no flag sources): the change is not
    // made, and the control is listed with the reason.
    let p = run(&s, &good_facts());
    let c = refused(&p, "read-only-port-disabled");
    assert!(c.why.contains("remove --read-only-port"), "{}", c.why);
    assert!(p
        .flag_changes
        .iter()
        .all(|f| f.change.flag() != "read-only-port"));
}

#[test]
fn a_later_dropin_that_overrides_ours_is_named_and_nothing_is_promised() {
    let s = snapshot_with_dropins(
        &[],
        Some("readOnlyPort: 0\n"),
        &[("99-x.conf", "readOnlyPort: 10255\n")],
    );
    let p = run(&s, &good_facts());
    let c = refused(&p, "read-only-port-disabled");
    assert!(c.why.contains("99-x.conf"), "{}", c.why);
    assert!(c.why.contains("still fail"), "{}", c.why);
    assert!(fixed(&p, "read-only-port-disabled").is_none());
    // A name that sorts after it wins.
    let p = run_with(
        &s,
        &good_facts(),
        &FixOptions {
            dropin_name: "99-zz-sentinel.conf".to_string(),
            controls: None,
        },
    );
    assert!(fixed(&p, "read-only-port-disabled").is_some(), "{p:#?}");
}

#[test]
fn webhook_is_not_written_without_api_credentials() {
    let s = snapshot_with_dropins(
        &[],
        Some("authorization:\n  mode: AlwaysAllow\nauthentication:\n  webhook:\n    enabled: false\n"),
        &[("10-x.conf", "podPidsLimit: 100\n")],
    );
    let p = run(&s, &good_facts());
    for id in [
        "authorization-mode-webhook",
        "authentication-webhook-enabled",
    ] {
        let c = refused(&p, id);
        assert!(c.why.contains("no --kubeconfig"), "{}", c.why);
    }
    let d = p
        .dropin
        .as_ref()
        .expect("other settings still get a drop-in");
    assert!(d.settings.get("authorization").is_none(), "{}", d.text);
    assert!(p.preconditions.iter().any(|x| !x.holds
        && x.controls == ["authorization-mode-webhook"]
        && !x.do_first.is_empty()));
    // With a kubeconfig holding a client certificate, it is written.
    let mut s = snapshot_with_dropins(
        &["--kubeconfig=/etc/kubernetes/kubelet.conf"],
        Some("authorization:\n  mode: AlwaysAllow\nauthentication:\n  webhook:\n    enabled: false\n"),
        &[("10-x.conf", "podPidsLimit: 100\n")],
    );
    kubelet_mut(&mut s).credential = Some(Ok(client_cert("system:node:node-1", &["system:nodes"])));
    let p = run(&s, &good_facts());
    assert!(fixed(&p, "authorization-mode-webhook").is_some(), "{p:#?}");
}

#[test]
fn protect_kernel_defaults_needs_the_kernel_settings_first() {
    let s = snapshot_with_dropins(
        &[],
        Some("protectKernelDefaults: false\n"),
        &[("10-x.conf", "podPidsLimit: 100\n")],
    );
    let mut facts = good_facts();
    facts.sysctls[2].1 = Ok("0".to_string());
    let p = run(&s, &facts);
    let c = refused(&p, "protect-kernel-defaults");
    assert!(c.why.contains("kernel.panic is 0 (needs 10)"), "{}", c.why);
    assert!(p
        .dropin
        .as_ref()
        .is_none_or(|d| d.settings.get("protectKernelDefaults").is_none()));
    // Unreadable (a host tree without /proc/sys): not written either.
    facts.sysctls[2].1 = Err("/proc/sys/kernel/panic: not found".to_string());
    let p = run(&s, &facts);
    assert!(refused(&p, "protect-kernel-defaults")
        .why
        .contains("cannot be checked"));
    // All six as required: written.
    let p = run(&s, &good_facts());
    assert!(fixed(&p, "protect-kernel-defaults").is_some(), "{p:#?}");
}

#[test]
fn server_tls_bootstrap_is_never_written() {
    let s = snapshot_with_dropins(
        &[],
        Some("serverTLSBootstrap: false\n"),
        &[("10-x.conf", "podPidsLimit: 100\n")],
    );
    let p = run(&s, &good_facts());
    let c = refused(&p, "server-cert-rotation");
    assert!(c.why.contains("kubelet-serving"), "{}", c.why);
    assert!(p
        .dropin
        .as_ref()
        .is_none_or(|d| d.settings.get("serverTLSBootstrap").is_none()));
}

#[test]
fn without_config_dir_the_flags_are_set_and_maps_keep_their_other_entries() {
    let s = snapshot_with(
        &[],
        Some("evictionHard:\n  memory.available: \"0%\"\n  nodefs.available: \"10%\"\n"),
    );
    let k = s.kubelet.as_ref().expect("kubelet");
    let opts = FixOptions::default();
    assert_eq!(route(k, &opts), Route::Flags);
    let cand = vec![
        Candidate {
            id: "eviction-hard-set".to_string(),
            before: Status::Fail,
            kind: Kind::Settings(vec![("evictionHard", json!({"memory.available": "100Mi"}))]),
        },
        Candidate {
            id: "read-only-port-disabled".to_string(),
            before: Status::Fail,
            kind: Kind::Settings(vec![("readOnlyPort", json!(0))]),
        },
    ];
    let b = build(k, &cand, &Route::Flags, &good_facts(), &s, &opts);
    let changes: Vec<&FlagChange> = b.flag_changes.iter().map(|(c, _)| c).collect();
    assert_eq!(
        changes,
        vec![
            &FlagChange::Set {
                flag: "eviction-hard".to_string(),
                value: "memory.available<100Mi,nodefs.available<10%".to_string()
            },
            &FlagChange::Set {
                flag: "read-only-port".to_string(),
                value: "0".to_string()
            },
        ]
    );
    let proven = prove(&s, &b, &Route::Flags, &opts, &Policy::embedded());
    for id in ["eviction-hard-set", "read-only-port-disabled"] {
        let r = proven.iter().find(|r| r.id == id).expect("result");
        assert_eq!(r.status, Status::Pass, "{r:#?}");
    }
}

#[test]
fn file_controls_get_chmod_and_chown() {
    let mut s = kubeadm();
    let k = kubelet_mut(&mut s);
    k.files
        .push(file(FileRole::ConfigFile, CONFIG_PATH, 0o644, 1000, 0));
    k.files.push(file(
        FileRole::Kubeconfig,
        "/etc/kubernetes/kubelet.conf",
        0o600,
        0,
        0,
    ));
    let p = run(&s, &good_facts());
    let m = p
        .modes
        .iter()
        .find(|m| m.path == CONFIG_PATH)
        .expect("a mode change");
    assert_eq!(m.mode, Some(0o600));
    assert_eq!(m.owner, Some((0, 0)));
    assert_eq!(
        m.controls,
        ["config-file-permissions", "config-file-ownership"]
    );
    assert_eq!(
        fixed(&p, "config-file-permissions").expect("fixed").by,
        ["chmod"]
    );
    assert_eq!(
        fixed(&p, "config-file-ownership").expect("fixed").by,
        ["chown"]
    );
    assert!(!fixed(&p, "config-file-ownership").expect("fixed").restart);
    assert!(p
        .modes
        .iter()
        .all(|m| m.path != "/etc/kubernetes/kubelet.conf"));
}

#[test]
fn hostname_override_is_removed_only_when_it_is_the_host_name() {
    let s = snapshot_with(&["--hostname-override=ip-10-0-0-1.ec2.internal"], Some(""));
    let p = run(&s, &good_facts());
    let c = refused(&p, "hostname-override-unset");
    assert!(
        c.why.contains("differs from the host name node-1"),
        "{}",
        c.why
    );
    let s = snapshot_with(&["--hostname-override=Node-1"], Some(""));
    let p = run(&s, &good_facts());
    let pre = p
        .preconditions
        .iter()
        .find(|x| x.controls == ["hostname-override-unset"])
        .expect("checked");
    assert!(pre.holds, "{pre:#?}");
    // Placed by the flag sources, which this build does not read: listed, not written.
    assert!(refused(&p, "hostname-override-unset")
        .why
        .contains("remove --hostname-override"));
}

#[test]
fn controls_limits_the_plan_and_no_kubelet_is_exit_3() {
    let s = snapshot_with_dropins(
        &[],
        Some("readOnlyPort: 10255\nseccompDefault: false\n"),
        &[("10-x.conf", "podPidsLimit: 100\n")],
    );
    let p = run_with(
        &s,
        &good_facts(),
        &FixOptions {
            dropin_name: DEFAULT_DROPIN_NAME.to_string(),
            controls: Some(vec!["seccomp-default-enabled".to_string()]),
        },
    );
    assert_eq!(p.controls.len(), 1);
    assert!(p.cannot.is_empty(), "{:#?}", p.cannot);
    assert_eq!(p.exit_code(), 0);
    assert!(p
        .dropin
        .as_ref()
        .is_some_and(|d| d.settings.get("readOnlyPort").is_none()));

    let mut s = s;
    s.kubelet = None;
    s.discovery = crate::model::snapshot::Discovery::NotFound {
        reason: "no kubelet process found".to_string(),
    };
    let p = run(&s, &good_facts());
    assert_eq!(p.exit_code(), 3);
    assert!(p.is_empty());
    assert!(p
        .cannot
        .iter()
        .all(|c| c.why.contains("no kubelet process found")));
}

#[test]
fn unset_cipher_suites_get_the_policy_list_and_an_unreadable_config_is_not_guessed() {
    let s = snapshot_with_dropins(&[], Some(""), &[("10-x.conf", "podPidsLimit: 100\n")]);
    let p = run(&s, &good_facts());
    let c = fixed(&p, "tls-strong-cipher-suites").expect("fixed");
    assert_eq!(c.before, Status::Fail);
    let d = p.dropin.as_ref().expect("drop-in");
    assert_eq!(
        d.settings["tlsCipherSuites"],
        json!(Policy::embedded().expected.tls_cipher_suites)
    );
    // A drop-in that does not parse: every setting is unknown, and the fix does not
    // write over what it cannot read.
    let s = snapshot_with_dropins(&[], Some(""), &[("10-x.conf", "readOnlyPort: [\n")]);
    let p = run(&s, &good_facts());
    let c = refused(&p, "read-only-port-disabled");
    assert_eq!(c.status, Status::Unknown);
    assert!(
        c.why.contains("not because a setting is unset"),
        "{}",
        c.why
    );
    assert!(p.dropin.is_none(), "{p:#?}");
}

#[test]
fn an_existing_dropin_of_the_same_name_is_the_base_and_an_unreadable_one_is_refused() {
    let s = snapshot_with_dropins(
        &[],
        Some("readOnlyPort: 10255\n"),
        &[("90-kubelet-sentinel.conf", "seccompDefault: true\n")],
    );
    let path = "/etc/kubernetes/kubelet.conf.d/90-kubelet-sentinel.conf".to_string();
    let mut facts = good_facts();
    facts.existing.insert(
        path.clone(),
        Ok(Some("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nseccompDefault: true\n".to_string())),
    );
    let p = run(&s, &facts);
    let d = p.dropin.as_ref().expect("drop-in");
    assert_eq!(d.settings["seccompDefault"], json!(true));
    assert_eq!(d.settings["readOnlyPort"], json!(0));
    assert!(p.files[0].before.is_some());
    facts.existing.insert(
        path,
        Err("…: larger than the 1048576-byte read limit".to_string()),
    );
    let p = run(&s, &facts);
    assert!(refused(&p, "read-only-port-disabled")
        .why
        .contains("cannot be read"));
    assert!(p.dropin.is_none());
}

#[test]
fn the_extra_dropin_goes_where_walkdir_puts_it() {
    let s = snapshot_with_dropins(
        &[],
        Some("readOnlyPort: 0\n"),
        &[
            ("a/x.conf", "readOnlyPort: 1\n"),
            ("b.conf", "readOnlyPort: 2\n"),
        ],
    );
    let k = s.kubelet.as_ref().expect("kubelet");
    let cfg = k.config.rebuilt_with(
        k.flags.clone(),
        Some(ConfigInput {
            path: "/etc/kubernetes/kubelet.conf.d/a-b.conf".to_string(),
            text: Ok("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 3\n".to_string()),
        }),
    );
    let names: Vec<&str> = cfg
        .dropins
        .iter()
        .map(|d| d.trim_start_matches("/etc/kubernetes/kubelet.conf.d/"))
        .collect();
    // WalkDir: "a" (a directory, its entries in place) < "a-b.conf" < "b.conf".
    assert_eq!(names, ["a/x.conf", "a-b.conf", "b.conf"]);
    assert_eq!(
        cfg.get_for("readOnlyPort", Some(33))
            .known()
            .map(|s| s.value.clone()),
        Some(json!(2))
    );
}

#[test]
fn recipes_cover_every_control_or_say_why_not() {
    let s = kubeadm();
    let policy = Policy::embedded();
    let ctx = Ctx {
        snapshot: &s,
        policy: &policy,
    };
    for c in crate::evaluate::catalogue() {
        let r = recipes::recipe(c.id, &ctx);
        assert!(r.is_some(), "{}: no recipe and no reason", c.id);
        if let Some(Recipe::Settings(kv)) = r {
            for (key, _) in kv {
                assert!(setting(key).is_some(), "{}: unknown setting {key}", c.id);
            }
        }
    }
}

#[test]
fn on_k3s_the_fix_is_a_config_yaml_d_file_of_kubelet_args() {
    use crate::model::flag_origin::{FlagOrigin, OriginHow};
    use crate::model::k3s::{K3sKubelet, Product};
    let mut s = snapshot_with_dropins(
        &["--read-only-port=10255", "--anonymous-auth=false"],
        None,
        &[("00-k3s-defaults.conf", "podPidsLimit: 100\n")],
    );
    let origin = |flag: &str, value: &str, how: OriginHow| FlagOrigin {
        flag: flag.to_string(),
        value: value.to_string(),
        file: "/etc/rancher/k3s/config.yaml".to_string(),
        line: 3,
        how,
    };
    kubelet_mut(&mut s).k3s = Some(K3sKubelet {
        product: Product::K3s,
        config_file: "/etc/rancher/k3s/config.yaml".to_string(),
        origins: vec![origin("read-only-port", "10255", OriginHow::K3sConfigArg)],
        kube_proxy: None,
        version: None,
        notes: Vec::new(),
        rebuild: None,
    });
    let opts = FixOptions::default();
    assert_eq!(
        target_paths(&s, &opts),
        ["/etc/rancher/k3s/config.yaml.d/90-kubelet-sentinel.yaml"]
    );
    let p = run_with(&s, &good_facts(), &opts);
    let c = fixed(&p, "read-only-port-disabled").expect("fixed");
    assert_eq!(c.by, ["k3s-config"]);
    assert!(
        p.dropin.is_none(),
        "no kubelet drop-in that a k3s flag would beat"
    );
    let f = p
        .files
        .iter()
        .find(|f| f.path == "/etc/rancher/k3s/config.yaml.d/90-kubelet-sentinel.yaml")
        .expect("the k3s drop-in");
    assert!(f.after.contains("kubelet-arg+:"), "{}", f.after);
    assert!(f.after.contains("\"read-only-port=0\""), "{}", f.after);
    assert_eq!(p.then, ["systemctl restart k3s"]);
    // A --kubelet-arg on the k3s command line would still win: listed, not written.
    kubelet_mut(&mut s)
        .k3s
        .as_mut()
        .expect("k3s")
        .origins
        .push(FlagOrigin {
            file: "/etc/systemd/system/k3s.service".to_string(),
            ..origin("read-only-port", "10255", OriginHow::K3sCommandLine)
        });
    let p = run_with(&s, &good_facts(), &opts);
    let c = refused(&p, "read-only-port-disabled");
    assert!(c.why.contains("remove it first"), "{}", c.why);
    // With the unit's text, the fix removes it there (and the proof sees the drop-in win).
    let unit = "[Service]\nExecStart=/usr/local/bin/k3s server \\\n    --kubelet-arg=read-only-port=10255 \\\n    --node-name=n1\n";
    let mut facts = good_facts();
    facts.existing.insert(
        "/etc/systemd/system/k3s.service".to_string(),
        Ok(Some(unit.to_string())),
    );
    assert!(target_paths(&s, &opts).contains(&"/etc/systemd/system/k3s.service".to_string()));
    let p = run_with(&s, &facts, &opts);
    let c = fixed(&p, "read-only-port-disabled").expect("fixed");
    assert_eq!(c.by, ["flag", "k3s-config"]);
    let edit = p
        .files
        .iter()
        .find(|f| f.path == "/etc/systemd/system/k3s.service")
        .expect("the unit edited");
    assert_eq!(
        edit.after,
        "[Service]\nExecStart=/usr/local/bin/k3s server \\\n    --node-name=n1\n"
    );
    assert!(
        p.then.contains(&"systemctl daemon-reload".to_string()),
        "{:?}",
        p.then
    );
}

#[test]
fn a_kubelet_arg_is_removed_from_its_line_in_any_quoting() {
    let f = |text: &str, line: usize| remove_kubelet_arg(text, line, "read-only-port", "10255");
    assert_eq!(
        f(
            "ExecStart=/k3s server --kubelet-arg=read-only-port=10255 --x\n",
            1
        )
        .as_deref(),
        Some("ExecStart=/k3s server --x\n")
    );
    assert_eq!(
        f(
            "a\nExecStart=/k3s server '--kubelet-arg=read-only-port=10255'\n",
            2
        )
        .as_deref(),
        Some("a\nExecStart=/k3s server\n")
    );
    assert_eq!(
        f(
            "ExecStart=/k3s server --kubelet-arg \"read-only-port=10255\" \\\n",
            1
        )
        .as_deref(),
        Some("ExecStart=/k3s server \\\n")
    );
    // The last word of a continued command: the line and the continuation go.
    assert_eq!(
        f(
            "[Service]\nExecStart=/rke2 agent \\\n    --kubelet-arg=read-only-port=10255\n",
            3
        )
        .as_deref(),
        Some("[Service]\nExecStart=/rke2 agent\n")
    );
    // Not as written (another value, another line, part of a longer word): untouched.
    assert_eq!(f("--kubelet-arg=read-only-port=102550\n", 1), None);
    assert_eq!(f("x\n--kubelet-arg=read-only-port=10255\n", 1), None);
    assert_eq!(f("x\n", 5), None);
}

#[test]
fn a_control_that_fails_only_live_is_not_promised_by_a_setting() {
    use crate::model::live::{Live, ReadOnlyAnswer};
    // The files say readOnlyPort: 0, but something answers on 10255: writing 0 again
    // would promise nothing.
    let mut s = snapshot_with_dropins(
        &[],
        Some("readOnlyPort: 0\n"),
        &[("10-x.conf", "podPidsLimit: 100\n")],
    );
    s.live = Some(Live {
        read_only: Some(Ok(ReadOnlyAnswer {
            healthz: Some(200),
            pods: Some(200),
        })),
        ..Live::default()
    });
    let p = run(&s, &good_facts());
    let c = refused(&p, "read-only-port-disabled");
    assert_eq!(c.status, Status::Fail);
    assert!(c.why.contains("already pass"), "{}", c.why);
    assert!(p
        .dropin
        .as_ref()
        .is_none_or(|d| d.settings.get("readOnlyPort").is_none()));
}

#[test]
fn a_change_that_makes_another_control_worse_is_dropped_and_says_which() {
    // A made-up candidate whose change also reopens the read-only port: the proof must
    // drop it (naming read-only-port-disabled) and keep the innocent one.
    let s = snapshot_with_dropins(
        &[],
        Some("readOnlyPort: 0\nseccompDefault: false\nrotateCertificates: false\n"),
        &[("10-x.conf", "podPidsLimit: 100\n")],
    );
    let k = s.kubelet.as_ref().expect("kubelet");
    let opts = FixOptions::default();
    let route = route(k, &opts);
    let policy = Policy::embedded();
    let baseline = evaluate(&s, &policy);
    let mut candidates = vec![
        Candidate {
            id: "seccomp-default-enabled".to_string(),
            before: Status::Fail,
            kind: Kind::Settings(vec![
                ("seccompDefault", json!(true)),
                ("readOnlyPort", json!(10255)),
            ]),
        },
        Candidate {
            id: "client-cert-rotation".to_string(),
            before: Status::Fail,
            kind: Kind::Settings(vec![("rotateCertificates", json!(true))]),
        },
    ];
    let mut cannot = BTreeMap::new();
    let built = prove_until_stable(
        &s,
        k,
        &route,
        &good_facts(),
        &opts,
        &policy,
        &baseline,
        &mut candidates,
        &mut cannot,
    );
    assert_eq!(
        candidates.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["client-cert-rotation"]
    );
    let c = cannot.get("seccomp-default-enabled").expect("dropped");
    assert!(
        c.why
            .contains("read-only-port-disabled would go from pass to fail"),
        "{}",
        c.why
    );
    let d = built.dropin.expect("the innocent change stays");
    assert_eq!(d.settings, json!({"rotateCertificates": true}));
}

#[test]
fn anonymous_auth_off_needs_an_authenticator_that_will_really_be_there() {
    // No client CA, webhook authentication off and no API credentials to turn it on:
    // turning anonymous access off would leave no way in.
    let body = "authentication:\n  anonymous:\n    enabled: true\n  webhook:\n    enabled: false\n";
    let s = snapshot_with_dropins(&[], Some(body), &[("10-x.conf", "podPidsLimit: 100\n")]);
    let p = run(&s, &good_facts());
    let c = refused(&p, "anonymous-auth-disabled");
    assert!(
        c.why.contains("neither authentication.x509.clientCAFile"),
        "{}",
        c.why
    );
    // With credentials, webhook authentication is turned on by the same fix: both go.
    let mut s = snapshot_with_dropins(
        &["--kubeconfig=/etc/kubernetes/kubelet.conf"],
        Some(body),
        &[("10-x.conf", "podPidsLimit: 100\n")],
    );
    kubelet_mut(&mut s).credential = Some(Ok(Credential::Token));
    let p = run(&s, &good_facts());
    assert!(fixed(&p, "anonymous-auth-disabled").is_some(), "{p:#?}");
    assert!(
        fixed(&p, "authentication-webhook-enabled").is_some(),
        "{p:#?}"
    );
}
