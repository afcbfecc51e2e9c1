use super::*;

fn w(s: &[&str]) -> Vec<String> {
    s.iter().map(ToString::to_string).collect()
}

/// Sources from in-memory files: the unit first, then `(path, text)` drop-ins and
/// environment files; `running` = what the files expand to (checked).
fn src(unit: &str, others: &[(&str, &str)], running: &[&str]) -> FlagSources {
    let mut texts = BTreeMap::new();
    texts.insert(
        "/usr/lib/systemd/system/k.service".to_string(),
        unit.to_string(),
    );
    let mut files = vec!["/usr/lib/systemd/system/k.service".to_string()];
    for (p, t) in others {
        texts.insert(p.to_string(), t.to_string());
        if p.ends_with(".conf") {
            files.push(p.to_string());
        }
    }
    let s = FlagSources::from_systemd(
        "k.service",
        files,
        texts,
        "/bin/kubelet",
        &w(running),
        Vec::new(),
    );
    assert!(s.matches_running, "{:?} {:?}", s.errors, s.expanded);
    s
}

fn rm(flag: &str) -> (FlagChange, Vec<String>) {
    (FlagChange::Remove { flag: flag.into() }, vec!["c".into()])
}

fn set(flag: &str, v: &str) -> (FlagChange, Vec<String>) {
    (
        FlagChange::Set {
            flag: flag.into(),
            value: v.into(),
        },
        vec!["c".into()],
    )
}

#[test]
fn occurrences_know_separate_values() {
    let o = occurrences(&w(&[
        "--config",
        "/c",
        "--anonymous-auth",
        "true",
        "--v=2",
        "--x",
    ]));
    assert_eq!(o[0].value_word, Some(1));
    assert_eq!(o[1].value_word, None, "a boolean never takes the next word");
    assert_eq!(o[2].value_word, None);
    assert_eq!(
        apply_to_words(
            &w(&["--config", "/c", "--v=2"]),
            &[FlagChange::Remove {
                flag: "config".into()
            }]
        ),
        w(&["--v=2"])
    );
}

#[test]
fn quoting_in_environment_files_is_kept() {
    let unit = "[Service]\nEnvironmentFile=/e\nExecStart=/bin/kubelet $A $B\n";
    let env = "A='--a=1 --read-only-port=10255'\nB=\"--x='y z'\"   \n";
    let s = src(
        unit,
        &[("/e", env)],
        &["--a=1", "--read-only-port=10255", "--x=y z"],
    );
    let (edits, refused) = edit_flags(&s, &[rm("read-only-port"), set("anonymous-auth", "false")]);
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(edits.len(), 1);
    assert_eq!(
        edits[0].after,
        "A='--a=1'\nB=\"--x='y z' --anonymous-auth=false\"   \n"
    );
}

#[test]
fn separate_value_words_and_values_in_place() {
    let unit = "[Service]\nExecStart=/bin/kubelet --config /c \\\n  --read-only-port 10255 --v=2\n";
    let s = src(
        unit,
        &[],
        &["--config", "/c", "--read-only-port", "10255", "--v=2"],
    );
    let (edits, refused) = edit_flags(&s, &[rm("config"), set("read-only-port", "0")]);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(
        edits[0]
            .after
            .ends_with("ExecStart=\nExecStart=/bin/kubelet    --read-only-port 0 --v=2\n"),
        "{}",
        edits[0].after
    );
}

#[test]
fn a_variable_expanded_twice_is_edited_once() {
    let unit =
        "[Service]\nEnvironment=\"F=--v=2 --read-only-port=1\"\nExecStart=/bin/kubelet $F $F\n";
    let s = src(
        unit,
        &[],
        &["--v=2", "--read-only-port=1", "--v=2", "--read-only-port=1"],
    );
    let (edits, refused) = edit_flags(&s, &[set("read-only-port", "0")]);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(
        edits[0]
            .after
            .contains("Environment=\"F=--v=2 --read-only-port=0\""),
        "{}",
        edits[0].after
    );
}

#[test]
fn braced_variables_inside_a_word_are_replaced_as_a_word() {
    let unit = "[Service]\nEnvironment=L=a=b\nExecStart=/bin/kubelet --node-labels=${L} --v=2\n";
    let s = src(unit, &[], &["--node-labels=a=b", "--v=2"]);
    assert_eq!(s.origins[0].how, OriginHow::ExecStart);
    let (edits, _) = edit_flags(&s, &[rm("node-labels")]);
    assert!(
        edits[0].after.contains("ExecStart=/bin/kubelet --v=2\n"),
        "{}",
        edits[0].after
    );
}

#[test]
fn an_undefined_last_variable_gets_an_environment_line() {
    let unit = "[Service]\nExecStart=/bin/kubelet --v=2 $EXTRA\n";
    let s = src(unit, &[], &["--v=2"]);
    let (edits, refused) = edit_flags(&s, &[set("read-only-port", "0")]);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(
        edits[0]
            .after
            .contains("Environment=\"EXTRA=--read-only-port=0\""),
        "{}",
        edits[0].after
    );
}

#[test]
fn an_environment_variable_beaten_by_a_file_is_edited_in_the_file() {
    // EnvironmentFile= overrides Environment= (systemd.exec(5)).
    let unit = "[Service]\nEnvironment=A=--v=1\nEnvironmentFile=/e\nExecStart=/bin/kubelet $A\n";
    let s = src(unit, &[("/e", "A=--v=3\n")], &["--v=3"]);
    assert_eq!(s.origins[0].file, "/e");
    let (edits, _) = edit_flags(&s, &[set("v", "2")]);
    assert_eq!(edits.len(), 1);
    assert_eq!(
        (edits[0].path.as_str(), edits[0].after.as_str()),
        ("/e", "A=--v=2\n")
    );
}

#[test]
fn mismatched_or_unknown_sources_place_nothing() {
    let (e, r) = edit_flags(&FlagSources::default(), &[rm("v")]);
    assert!(e.is_empty() && r.len() == 1);
    let mut s = src("[Service]\nExecStart=/bin/kubelet --v=2\n", &[], &["--v=2"]);
    s.matches_running = false;
    let (e, r) = edit_flags(&s, &[rm("v")]);
    assert!(e.is_empty() && r[0].1.contains("running"));
}

#[test]
fn the_dropin_goes_in_name_order() {
    let mut f = vec![
        "/usr/lib/systemd/system/k.service".to_string(),
        "/usr/lib/systemd/system/k.service.d/10-a.conf".to_string(),
        "/usr/lib/systemd/system/k.service.d/90-kubelet-sentinel.conf".to_string(),
        "/run/systemd/system/k.service.d/99-z.conf".to_string(),
    ];
    insert_dropin(
        &mut f,
        "/etc/systemd/system/k.service.d/90-kubelet-sentinel.conf",
    );
    assert_eq!(f.len(), 4, "same name masked: {f:?}");
    assert_eq!(
        f[2],
        "/etc/systemd/system/k.service.d/90-kubelet-sentinel.conf"
    );
    assert!(f[3].ends_with("99-z.conf"));
}

#[test]
fn percent_signs_survive_specifier_expansion() {
    let unit =
        "[Service]\nEnvironment=\"E=--v=2\"\nExecStart=/bin/kubelet --eviction-hard=a<1%% $E\n";
    let s = src(unit, &[], &["--eviction-hard=a<1%", "--v=2"]);
    let (edits, refused) = edit_flags(
        &s,
        &[
            set("eviction-hard", "nodefs.available<10%"),
            set("tls-cipher-suites", "TLS_AES_128_GCM_SHA256"),
        ],
    );
    assert!(refused.is_empty(), "{refused:?}");
    let t = &edits[0].after;
    assert!(
        t.contains("--eviction-hard=nodefs.available<10%% $E"),
        "{t}"
    );
    assert!(
        t.contains("Environment=\"E=--v=2 --tls-cipher-suites=TLS_AES_128_GCM_SHA256\""),
        "{t}"
    );
}

#[test]
fn rpm_nodes_get_etc_sysconfig_kubelet() {
    let dropin = "[Service]\nEnvironment=\"KUBELET_CONFIG_ARGS=--config=/c\"\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nEnvironmentFile=-/etc/sysconfig/kubelet\nExecStart=\nExecStart=/bin/kubelet $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n";
    let s = src(
        "[Service]\nExecStart=/bin/kubelet\n",
        &[
            (
                "/usr/lib/systemd/system/k.service.d/10-kubeadm.conf",
                dropin,
            ),
            (
                "/var/lib/kubelet/kubeadm-flags.env",
                "KUBELET_KUBEADM_ARGS=\"--node-ip=1.2.3.4\"\n",
            ),
        ],
        &["--config=/c", "--node-ip=1.2.3.4"],
    );
    let (edits, refused) = edit_flags(&s, &[set("read-only-port", "0"), rm("node-ip")]);
    assert!(refused.is_empty(), "{refused:?}");
    let sys = edits
        .iter()
        .find(|e| e.path == "/etc/sysconfig/kubelet")
        .expect("created");
    assert!(sys.before.is_none());
    assert!(
        sys.after
            .ends_with("KUBELET_EXTRA_ARGS=\"--read-only-port=0\"\n"),
        "{}",
        sys.after
    );
    let env = edits
        .iter()
        .find(|e| e.path == "/var/lib/kubelet/kubeadm-flags.env")
        .expect("edited");
    assert_eq!(env.after, "KUBELET_KUBEADM_ARGS=\"\"\n");
    assert!(env
        .then
        .iter()
        .any(|t| t.contains("nodeRegistration.kubeletExtraArgs")));
    assert_eq!(
        s.expanded_with(&edits).unwrap(),
        ["--config=/c", "--read-only-port=0"]
    );
}

#[test]
fn args_files_edit_lines() {
    let text = "--v=2\n--read-only-port=10255\n# c\n--node-labels a=b\n";
    let words = crate::model::kubelet_config::flags::args_file_words(text);
    let s = FlagSources::from_args_file("/a", text.to_string(), &words);
    assert_eq!(s.origins[2].line, 4);
    let (edits, refused) = edit_flags(
        &s,
        &[rm("node-labels"), set("read-only-port", "0"), set("x", "1")],
    );
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(
        edits[0].after, "--v=2\n--read-only-port=0\n# c\n--x=1\n",
        "{edits:?}"
    );
}
