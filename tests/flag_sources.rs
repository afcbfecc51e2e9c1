//! Where the kubelet's flags come from (`observe::flag_sources`, `model::flag_origin`):
//! every fixture's unit expands to the running kubelet's command line, each flag is
//! attributed to the file, line and variable it is written in, edits round-trip (the
//! edited files expand to the old command line with the change applied), and hostile files
//! give errors, never their content and never a panic.

mod common;

use std::fs;
use std::path::Path;

use common::{fixture_names, Fixture};
use kubelet_sentinel::model::fix::{FileEdit, FlagChange};
use kubelet_sentinel::model::flag_origin::{
    apply_to_words, edit_flags, same_meaning, FlagSources, Layout, OriginHow, UNIT_DROPIN_NAME,
};
use kubelet_sentinel::model::kubelet_config::flags::args_file_words;
use kubelet_sentinel::model::snapshot::Kubelet;
use kubelet_sentinel::observe::flag_sources;

fn kubelet_of(fx: &Fixture) -> Option<Kubelet> {
    fx.observe().kubelet
}

/// The words the running kubelet parsed its flags from.
fn running(fx: &Fixture, k: &Kubelet) -> Vec<String> {
    match k.flavour.as_str() {
        "hyperkube" => k.argv[2..].to_vec(),
        "kubelite" => {
            let p = k
                .argv
                .iter()
                .find_map(|a| a.strip_prefix("--kubelet-args-file="))
                .expect("kubelite names its args file");
            args_file_words(&fs::read_to_string(fx.path(p)).expect("args file"))
        }
        _ => k.argv[1..].to_vec(),
    }
}

fn sources(fx: &Fixture) -> (Kubelet, FlagSources) {
    let k = kubelet_of(fx).unwrap_or_else(|| panic!("{}: no kubelet", fx.name));
    let s = flag_sources::read(&fx.host(), &k);
    (k, s)
}

/// Fixtures whose kubelet is not run from a unit this reads (k3s/RKE2 start the kubelet
/// themselves), or whose files are deliberately unusable.
const NOT_FOLLOWED: &[(&str, &str)] = &[
    ("rke2", "rke2 builds the kubelet's flags itself"),
    ("rke2-no-flag", "rke2 builds the kubelet's flags itself"),
    (
        "non-utf8-cmdline",
        "its /etc/default/kubelet is not UTF-8: systemd refuses to load such a file (check_utf8ness_and_warn), so the agent does not follow it",
    ),
];

/// Every host tree: the fixtures, the kube-bench comparison trees, the example node.
fn host_trees() -> Vec<(String, Fixture)> {
    let mut out: Vec<(String, Fixture)> = fixture_names()
        .into_iter()
        .map(|n| (n.clone(), Fixture::load(&n)))
        .collect();
    let kb = common::fixtures_dir().join("kube-bench");
    let mut subs: Vec<String> = fs::read_dir(&kb)
        .expect("kube-bench fixtures")
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().join("proc").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    subs.sort();
    for s in subs {
        let name = format!("kube-bench/{s}");
        out.push((name.clone(), Fixture::load(&name)));
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join("node");
    out.push((
        "examples/node".into(),
        Fixture::load_from(&example, "examples/node"),
    ));
    out
}

#[test]
fn every_unit_expands_to_the_running_command_line() {
    let mut followed = 0;
    for (name, fx) in host_trees() {
        let Some(k) = kubelet_of(&fx) else {
            continue;
        };
        let s = flag_sources::read(&fx.host(), &k);
        if k.k3s.is_some() {
            // k3s/RKE2 origins are model::k3s's: none here, and none guessed.
            assert!(s.origins.is_empty() && s.expanded.is_none(), "{name}");
            assert!(s.errors[0].contains("k3s"), "{name}: {:?}", s.errors);
            continue;
        }
        if let Some((_, why)) = NOT_FOLLOWED.iter().find(|(n, _)| *n == name) {
            assert!(!s.matches_running, "{name} ({why}): {s:?}");
            assert!(!s.errors.is_empty(), "{name}: an unusable source says why");
            let (edits, refused) = edit_flags(
                &s,
                &[(
                    FlagChange::Remove {
                        flag: "v".to_string(),
                    },
                    vec!["c".to_string()],
                )],
            );
            assert!(
                edits.is_empty() && refused.len() == 1,
                "{name}: no edit without sources"
            );
            continue;
        }
        followed += 1;
        assert!(s.errors.is_empty(), "{name}: {:?}", s.errors);
        assert!(s.matches_running, "{name}");
        assert_eq!(s.expanded.as_ref(), Some(&running(&fx, &k)), "{name}");
        // Every flag occurrence is attributed, to a line of a file that was read and that
        // names the flag there.
        let n_flags = k.flags.occurrences.len();
        assert_eq!(
            s.origins.len(),
            n_flags,
            "{name}: one origin per occurrence"
        );
        for o in &s.origins {
            assert!(
                s.files.contains(&o.file),
                "{name}: {o:?} not among {:?}",
                s.files
            );
            let text = &s.texts[&o.file];
            let line = text.lines().nth(o.line - 1).unwrap_or("");
            assert!(
                line.contains(&o.flag),
                "{name}: --{} is not on {}:{}",
                o.flag,
                o.file,
                o.line
            );
        }
    }
    assert!(followed >= 15, "only {followed} fixtures followed");
}

fn origin<'a>(
    s: &'a FlagSources,
    flag: &str,
) -> Vec<&'a kubelet_sentinel::model::flag_origin::FlagOrigin> {
    s.origins_of(flag)
}

#[test]
fn origins_name_file_line_and_variable() {
    let fx = Fixture::load("misconfigured");
    let (_, s) = sources(&fx);
    let h = origin(&s, "hostname-override");
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].file, "/etc/default/kubelet");
    assert_eq!(h[0].line, 1);
    assert_eq!(
        h[0].how,
        OriginHow::EnvironmentFile {
            var: "KUBELET_EXTRA_ARGS".into()
        }
    );
    assert_eq!(h[0].label(), "$KUBELET_EXTRA_ARGS in kubelet");
    let c = origin(&s, "config");
    assert_eq!(
        (c[0].file.as_str(), c[0].line),
        (
            "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
            4
        )
    );
    assert_eq!(
        c[0].how,
        OriginHow::UnitEnvironment {
            var: "KUBELET_CONFIG_ARGS".into()
        }
    );
    let n = origin(&s, "node-ip");
    assert_eq!(n[0].file, "/var/lib/kubelet/kubeadm-flags.env");

    let fx = Fixture::load("hyperkube");
    let (_, s) = sources(&fx);
    let r = origin(&s, "read-only-port");
    assert_eq!((r[0].line, &r[0].how), (26, &OriginHow::ExecStart));
    assert!(
        matches!(&s.layout, Layout::Systemd { skip, .. } if *skip > 1),
        "rkt wrapper: {:?}",
        s.layout
    );

    let fx = Fixture::load("eks-al2");
    let (_, s) = sources(&fx);
    let h = origin(&s, "hostname-override");
    assert_eq!(
        h[0].file,
        "/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf"
    );
    assert_eq!(
        h[0].how,
        OriginHow::UnitEnvironment {
            var: "KUBELET_ARGS".into()
        }
    );

    let fx = Fixture::load("eks-al2023");
    let (_, s) = sources(&fx);
    assert_eq!(
        origin(&s, "hostname-override")[0].how,
        OriginHow::EnvironmentFile {
            var: "NODEADM_KUBELET_ARGS".into()
        }
    );

    let fx = Fixture::load("aks");
    let (_, s) = sources(&fx);
    let v: Vec<_> = origin(&s, "v").iter().map(|o| o.how.clone()).collect();
    assert_eq!(
        v,
        [
            OriginHow::ExecStart,
            OriginHow::EnvironmentFile {
                var: "KUBELET_FLAGS".into()
            }
        ]
    );

    let fx = Fixture::load("microk8s");
    let (_, s) = sources(&fx);
    let r = origin(&s, "read-only-port");
    assert_eq!((r[0].line, &r[0].how), (15, &OriginHow::ArgsFile));
}

fn remove(flag: &str) -> (FlagChange, Vec<String>) {
    (
        FlagChange::Remove { flag: flag.into() },
        vec![format!("ctl-{flag}")],
    )
}

fn set(flag: &str, value: &str) -> (FlagChange, Vec<String>) {
    (
        FlagChange::Set {
            flag: flag.into(),
            value: value.into(),
        },
        vec![format!("ctl-{flag}")],
    )
}

fn write_edits(fx: &Fixture, edits: &[FileEdit]) {
    for e in edits {
        let p = fx.path(&e.path);
        match &e.before {
            Some(b) => assert_eq!(
                &fs::read_to_string(&p).expect("edited file exists"),
                b,
                "{}",
                e.path
            ),
            None => assert!(!p.exists(), "{} is created, so it must not exist", e.path),
        }
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, &e.after).expect("write");
    }
}

/// Plan `changes` on a fixture, write the edits into its copy, read the sources again:
/// the files now expand to the old words with the changes applied. Returns the edits.
fn round_trip(fx: &Fixture, changes: &[(FlagChange, Vec<String>)]) -> Vec<FileEdit> {
    let (k, s) = sources(fx);
    let old = s.expanded.clone().expect("expanded");
    let (edits, refused) = edit_flags(&s, changes);
    assert!(refused.is_empty(), "{}: refused {refused:?}", fx.name);
    assert!(!edits.is_empty(), "{}: no edit", fx.name);
    for e in &edits {
        assert_eq!(e.mode, 0o600);
        assert!(!e.what.is_empty() && !e.then.is_empty(), "{e:?}");
        assert!(!e.controls.is_empty());
        assert_ne!(
            e.before.as_deref(),
            Some(e.after.as_str()),
            "{} unchanged",
            e.path
        );
    }
    let in_memory = s.expanded_with(&edits).expect("expanded in memory");
    write_edits(fx, &edits);
    // Observed again: the new drop-in is among the unit's files now.
    let k2 = kubelet_of(fx).expect("kubelet");
    assert_eq!(k2.argv, k.argv, "the running kubelet is the same");
    let again = flag_sources::read(&fx.host(), &k2);
    let got = again.expanded.clone().unwrap_or_else(|| {
        panic!(
            "{}: edited files cannot be read: {:?}",
            fx.name, again.errors
        )
    });
    let want = apply_to_words(
        &old,
        &changes.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(),
    );
    assert!(
        same_meaning(&got, &want),
        "{}: edited files expand to\n{got:?}\nnot\n{want:?}\nedits: {edits:#?}\nfiles {:?}",
        fx.name,
        again.files
    );
    assert_ne!(got, old, "{}: the change shows", fx.name);
    assert_eq!(
        in_memory, got,
        "{}: expanded_with = the files written and read",
        fx.name
    );
    edits
}

fn edit_of<'a>(edits: &'a [FileEdit], path: &str) -> &'a FileEdit {
    edits
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no edit of {path}: {edits:?}"))
}

#[test]
fn kubeadm_edits_round_trip() {
    let fx = Fixture::load("misconfigured");
    let edits = round_trip(
        &fx,
        &[
            remove("hostname-override"),
            set("streaming-connection-idle-timeout", "4h"),
            set("read-only-port", "0"),
            remove("node-ip"),
            remove("config"),
        ],
    );
    let d = edit_of(&edits, "/etc/default/kubelet");
    assert_eq!(
        d.after,
        "KUBELET_EXTRA_ARGS=\"--streaming-connection-idle-timeout=4h --read-only-port=0\"\n",
        "quoting kept, value set in place, the new flag added"
    );
    let k = edit_of(&edits, "/var/lib/kubelet/kubeadm-flags.env");
    assert!(
        k.then.iter().any(|t| t.contains("kubeletExtraArgs")),
        "{:?}",
        k.then
    );
    assert!(!k.after.contains("--node-ip"));
    // The kubeadm drop-in under /usr/lib is not edited: ours restates the variable.
    let u = edit_of(
        &edits,
        &format!("/etc/systemd/system/kubelet.service.d/{UNIT_DROPIN_NAME}"),
    );
    assert!(u.before.is_none());
    assert!(
        u.after.contains("Environment=\"KUBELET_CONFIG_ARGS=\""),
        "{}",
        u.after
    );
    assert_eq!(u.then[0], "systemctl daemon-reload");
    assert!(!edits.iter().any(|e| e.path.starts_with("/usr/lib/")));
}

#[test]
fn kubeadm_creates_etc_default_kubelet_when_missing() {
    let fx = Fixture::load("kubeadm-hardened");
    // `KUBELET_EXTRA_ARGS=` expands to nothing: the node is the same without the file.
    fs::remove_file(fx.path("/etc/default/kubelet")).expect("rm");
    let edits = round_trip(&fx, &[set("anonymous-auth", "false")]);
    let d = edit_of(&edits, "/etc/default/kubelet");
    assert!(d.before.is_none());
    assert!(
        d.after
            .contains("KUBELET_EXTRA_ARGS=\"--anonymous-auth=false\""),
        "{}",
        d.after
    );
}

#[test]
fn kubeadm_appends_to_an_empty_variable() {
    let fx = Fixture::load("kubeadm-hardened");
    let edits = round_trip(
        &fx,
        &[set("anonymous-auth", "false"), set("read-only-port", "0")],
    );
    assert_eq!(
        edit_of(&edits, "/etc/default/kubelet").after,
        "KUBELET_EXTRA_ARGS=--anonymous-auth=false --read-only-port=0\n"
    );
}

#[test]
fn exec_start_edits_go_to_a_drop_in() {
    let fx = Fixture::load("flags-only");
    let edits = round_trip(&fx, &[remove("v"), set("read-only-port", "0")]);
    assert_eq!(edits.len(), 1);
    let u = &edits[0];
    assert_eq!(
        u.path,
        format!("/etc/systemd/system/kubelet.service.d/{UNIT_DROPIN_NAME}")
    );
    assert!(
        u.after
            .contains("ExecStart=\nExecStart=/usr/local/bin/kubelet"),
        "{}",
        u.after
    );

    // The wrapper's own words (rkt run ...) are kept; the kubelet's change after `kubelet`.
    let fx = Fixture::load("hyperkube");
    let edits = round_trip(
        &fx,
        &[remove("read-only-port"), set("anonymous-auth", "false")],
    );
    assert!(
        edits[0].after.contains("/usr/bin/rkt run"),
        "{}",
        edits[0].after
    );
}

#[test]
fn eks_aks_gke_microk8s_round_trip() {
    let fx = Fixture::load("eks-al2");
    let edits = round_trip(
        &fx,
        &[remove("hostname-override"), set("read-only-port", "0")],
    );
    let u = &edits[0];
    assert!(
        u.after
            .contains("Environment=\"KUBELET_ARGS=--node-ip=192.168.12.34"),
        "{}",
        u.after
    );
    assert!(
        u.then.iter().any(|t| t.contains("bootstrap")),
        "{:?}",
        u.then
    );

    let fx = Fixture::load("eks-al2023");
    let edits = round_trip(
        &fx,
        &[remove("hostname-override"), set("read-only-port", "0")],
    );
    let e = edit_of(&edits, "/etc/eks/kubelet/environment");
    assert!(
        e.then.iter().any(|t| t.contains("NodeConfig")),
        "{:?}",
        e.then
    );
    assert!(
        e.after.ends_with(" --v=2 --read-only-port=0\"\n"),
        "{}",
        e.after
    );

    let fx = Fixture::load("gke");
    let edits = round_trip(&fx, &[remove("max-pods"), set("read-only-port", "0")]);
    let e = edit_of(&edits, "/etc/default/kubelet");
    assert!(
        e.after.contains("--pod-sysctls='net.core"),
        "inner quotes kept"
    );
    assert!(e.then.iter().any(|t| t.contains("GKE")), "{:?}", e.then);

    let fx = Fixture::load("aks");
    let edits = round_trip(&fx, &[remove("v"), set("read-only-port", "0")]);
    assert_eq!(
        edits.len(),
        2,
        "ExecStart (drop-in) and /etc/default/kubelet: {edits:?}"
    );
    assert!(edit_of(&edits, "/etc/default/kubelet")
        .then
        .iter()
        .any(|t| t.contains("AKS")));

    let fx = Fixture::load("microk8s");
    let edits = round_trip(
        &fx,
        &[
            remove("anonymous-auth"),
            set("read-only-port", "10250"),
            set("protect-kernel-defaults", "true"),
        ],
    );
    let a = &edits[0];
    assert!(a.after.contains("--read-only-port=10250\n"));
    assert!(a.after.ends_with("--protect-kernel-defaults=true\n"));
    assert!(a.then[0].contains("snap restart"));
}

#[test]
fn a_later_drop_in_that_overrides_ours_is_refused() {
    let fx = Fixture::load("flags-only");
    let unit = fs::read_to_string(fx.path("/etc/systemd/system/kubelet.service")).unwrap();
    let exec = unit
        .split("\n[Service]\n")
        .nth(1)
        .and_then(|s| s.split("\nRestart=").next())
        .unwrap();
    let dir = fx.path("/etc/systemd/system/kubelet.service.d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("99-local.conf"),
        format!("[Service]\nExecStart=\n{exec}\n"),
    )
    .unwrap();
    let (_, s) = sources(&fx);
    assert!(s.matches_running, "{:?}", s.errors);
    let (edits, refused) = edit_flags(&s, &[remove("v")]);
    assert!(edits.is_empty());
    assert_eq!(refused.len(), 1);
    assert!(refused[0].1.contains("99-local.conf"), "{}", refused[0].1);
}

#[test]
fn values_that_need_quoting_and_repeated_changes_are_refused() {
    let fx = Fixture::load("misconfigured");
    let (_, s) = sources(&fx);
    let (edits, refused) = edit_flags(
        &s,
        &[
            set("node-labels", "a=b c"),
            set("read-only-port", "0"),
            set("read-only-port", "1"),
            remove("not-there"),
        ],
    );
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[0].1.contains("quoting"));
    assert!(refused[1].1.contains("already"));
    assert_eq!(edits.len(), 1);
}

// ---- hostile input ----------------------------------------------------------------

const SECRET: &str = "K10bcdef0123456789::server:topsecretvalue";

fn assert_no_secret(s: &FlagSources) {
    for e in &s.errors {
        assert!(!e.contains("topsecret"), "an error quotes the file: {e}");
    }
    let json = serde_json::to_string(s).unwrap();
    assert!(
        !json.contains("topsecret"),
        "serialised sources hold file text"
    );
}

fn misconfigured_with(f: impl FnOnce(&Path)) -> (Fixture, Kubelet) {
    let fx = Fixture::load("misconfigured");
    f(&fx.root());
    let k = kubelet_of(&fx).unwrap();
    (fx, k)
}

#[test]
fn huge_binary_and_fifo_files_are_errors() {
    let (fx, k) = misconfigured_with(|root| {
        let mut big = format!("KUBELET_KUBEADM_ARGS=\"--token={SECRET}\"\n");
        big.push_str(&"#".repeat(300 * 1024));
        fs::write(root.join("var/lib/kubelet/kubeadm-flags.env"), big).unwrap();
    });
    let s = flag_sources::read(&fx.host(), &k);
    assert!(s.expanded.is_none());
    assert!(
        s.errors.iter().any(|e| e.contains("read limit")),
        "{:?}",
        s.errors
    );
    assert_no_secret(&s);

    let (fx, k) = misconfigured_with(|root| {
        let mut bin = format!("KUBELET_EXTRA_ARGS={SECRET}\n").into_bytes();
        bin.extend_from_slice(&[0, 1, 2, 0xff, 0]);
        fs::write(root.join("etc/default/kubelet"), bin).unwrap();
    });
    let s = flag_sources::read(&fx.host(), &k);
    assert!(s.expanded.is_none());
    assert!(
        s.errors.iter().any(|e| e.contains("binary")),
        "{:?}",
        s.errors
    );
    assert_no_secret(&s);

    let (fx, k) = misconfigured_with(|root| {
        let p = root.join("etc/default/kubelet");
        fs::remove_file(&p).unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid path.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(rc, 0);
    });
    let s = flag_sources::read(&fx.host(), &k);
    assert!(s.expanded.is_none(), "a FIFO is never read");
    assert!(!s.errors.is_empty());
}

#[test]
fn symlinks_out_of_the_root_stay_in_it() {
    let outside = tempfile::tempdir().unwrap();
    let secret_file = outside.path().join("kubelet");
    fs::write(
        &secret_file,
        format!("KUBELET_EXTRA_ARGS=--token={SECRET}\n"),
    )
    .unwrap();
    let target = secret_file.to_str().unwrap().to_string();
    let (fx, k) = misconfigured_with(|root| {
        let p = root.join("etc/default/kubelet");
        fs::remove_file(&p).unwrap();
        // Absolute: re-rooted under the host root, where nothing is.
        std::os::unix::fs::symlink(&target, &p).unwrap();
    });
    let s = flag_sources::read(&fx.host(), &k);
    assert_no_secret(&s);
    assert!(
        !s.texts.values().any(|t| t.contains("topsecret")),
        "read outside the root"
    );
    // `-/etc/default/kubelet` is optional: a dangling link is a missing file, so the
    // files no longer give --hostname-override: not the running command line.
    assert!(!s.matches_running);

    let (fx, k) = misconfigured_with(|root| {
        let p = root.join("etc/default/kubelet");
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(format!("../../../../../../../../..{target}"), &p).unwrap();
    });
    let s = flag_sources::read(&fx.host(), &k);
    assert!(
        !s.texts.values().any(|t| t.contains("topsecret")),
        "`..` climbed out of the root"
    );
}

#[test]
fn unterminated_quotes_and_bad_escapes_are_errors_without_content() {
    for bad in [
        format!("Environment=\"KUBELET_CONFIG_ARGS=--config={SECRET}\n"),
        format!("Environment=KUBELET_CONFIG_ARGS=--x=\\q{SECRET}\n"),
        format!("ExecStart=\nExecStart=/usr/bin/kubelet \"{SECRET}\n"),
        format!("ExecStart=\nExecStart=/usr/bin/kubelet %H{SECRET}\n"),
    ] {
        let (fx, k) = misconfigured_with(|root| {
            let dir = root.join("etc/systemd/system/kubelet.service.d");
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("50-bad.conf"), format!("[Service]\n{bad}")).unwrap();
        });
        let s = flag_sources::read(&fx.host(), &k);
        assert!(!s.errors.is_empty(), "{bad}: no error");
        assert_no_secret(&s);
        let (edits, refused) = edit_flags(&s, &[remove("hostname-override")]);
        if bad.starts_with("Environment=") {
            // systemd ignores the broken assignment: the rest is followed, edits placed.
            assert!(s.matches_running, "{bad}: {:?}", s.errors);
            assert!(s.errors[0].contains("ignore"), "{:?}", s.errors);
            assert!(refused.is_empty() && edits.len() == 1, "{refused:?}");
        } else {
            // A broken ExecStart= keeps the unit from loading.
            assert!(!s.matches_running, "{bad}");
            assert!(edits.is_empty() && refused.len() == 1);
            assert!(!refused[0].1.contains("topsecret"));
        }
    }
}

#[test]
fn a_second_fix_after_a_restart_extends_our_drop_in() {
    let fx = Fixture::load("flags-only");
    round_trip(&fx, &[remove("v")]);
    // The restart: the running command line becomes what the files give now.
    let k = kubelet_of(&fx).unwrap();
    let s = flag_sources::read(&fx.host(), &k);
    let mut argv = vec![k.argv[0].clone()];
    argv.extend(s.expanded.clone().unwrap());
    fs::write(
        fx.path(&format!("/proc/{}/cmdline", k.pid)),
        argv.join("\0") + "\0",
    )
    .unwrap();
    let edits = round_trip(&fx, &[set("read-only-port", "0")]);
    assert_eq!(edits.len(), 1);
    let before = edits[0]
        .before
        .as_deref()
        .expect("our drop-in is there already");
    assert!(edits[0].after.starts_with(before), "appended, not replaced");
}

#[test]
fn a_drop_in_masked_with_dev_null_sets_nothing() {
    let (fx, k) = misconfigured_with(|root| {
        let dir = root.join("etc/systemd/system/kubelet.service.d");
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.join("10-kubeadm.conf")).unwrap();
    });
    let s = flag_sources::read(&fx.host(), &k);
    assert_eq!(
        s.texts
            .get("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
            .map(String::as_str),
        Some("")
    );
    assert!(
        !s.files
            .iter()
            .any(|f| f.starts_with("/usr/lib/systemd/system/kubelet.service.d/")),
        "the /usr/lib drop-in of the same name is masked: {:?}",
        s.files
    );
    // The unit's own `ExecStart=/usr/bin/kubelet` is all that is left.
    assert_eq!(s.expanded, Some(Vec::new()));
    assert!(!s.matches_running);
}

#[test]
fn too_many_drop_ins_are_refused() {
    let (fx, k) = misconfigured_with(|root| {
        let dir = root.join("etc/systemd/system/kubelet.service.d");
        fs::create_dir_all(&dir).unwrap();
        for i in 0..70 {
            fs::write(dir.join(format!("{i:03}.conf")), "[Service]\n").unwrap();
        }
    });
    let s = flag_sources::read(&fx.host(), &k);
    assert!(s.expanded.is_none());
    assert!(s.errors[0].contains("more than"), "{:?}", s.errors);
}

// ---- properties ------------------------------------------------------------------

mod properties {
    use std::collections::BTreeMap;

    use kubelet_sentinel::model::fix::FlagChange;
    use kubelet_sentinel::model::flag_origin::{
        apply_to_words, edit_flags, same_meaning, FlagSources,
    };
    use kubelet_sentinel::model::systemd;
    use proptest::prelude::*;

    const UNIT: &str = "/usr/lib/systemd/system/k.service";

    fn sources(files: &[(String, String)], running: &[String]) -> FlagSources {
        let texts: BTreeMap<String, String> = files.iter().cloned().collect();
        // The unit file first, then its drop-ins.
        let mut units = vec![UNIT.to_string()];
        units.extend(
            files
                .iter()
                .map(|(p, _)| p.clone())
                .filter(|p| p.ends_with(".conf")),
        );
        FlagSources::from_systemd(
            "k.service",
            units,
            texts,
            "/bin/kubelet",
            running,
            Vec::new(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        /// No unit file or environment file makes the readers panic.
        #[test]
        fn arbitrary_files_never_panic(
            unit in "[\\[\\]A-Za-z=$%{}\"'\\\\ \t\n#;:@+!-]{0,160}",
            env in "[A-Za-z=$\"'\\\\ \t\n#;-]{0,120}",
        ) {
            let text = format!("[Service]\nEnvironmentFile=-/e\n{unit}");
            let svc = systemd::load_service("k.service", &[(UNIT.to_string(), text.clone())]);
            let mut texts = BTreeMap::new();
            texts.insert("/e".to_string(), env.clone());
            let envs = systemd::effective_env(&svc, &texts);
            if let Some(e) = &svc.exec {
                let _ = systemd::expand(e, &envs);
            }
            let _ = systemd::split_words(&unit, systemd::UNIT_WORDS);
            let _ = systemd::split_words(&env, systemd::VALUE_WORDS);
            let s = sources(&[(UNIT.to_string(), text), ("/e".to_string(), env)], &[]);
            let _ = edit_flags(&s, &[(FlagChange::Remove { flag: "a".into() }, vec![])]);
        }

        /// Any flag placed anywhere (ExecStart=, Environment=, an environment file; any
        /// quoting), removed or set: the edited files expand to the intended command line.
        #[test]
        fn edits_round_trip(
            n in 1usize..7,
            place in 0usize..3,
            quote in 0usize..3,
            pick in 0usize..8,
            op in 0usize..3,
        ) {
            let flags: Vec<String> = (0..n).map(|i| format!("--f{i}=v{i}")).collect();
            let q = ["", "\"", "'"][quote];
            let joined = flags.join(" ");
            let mut files = Vec::new();
            let exec = match place {
                0 => format!("ExecStart=/bin/kubelet --a=1 {joined} --b=2"),
                1 => {
                    files.push(("/e".to_string(), format!("# c\nX={q}{joined}{q}\n")));
                    "EnvironmentFile=/e\nExecStart=/bin/kubelet --a=1 $X --b=2".to_string()
                }
                _ => {
                    // Unquoted, each word would be an assignment of its own.
                    let q = if q.is_empty() { "\"" } else { q };
                    format!("Environment={q}X={joined}{q}\nExecStart=/bin/kubelet --a=1 $X --b=2")
                }
            };
            files.insert(0, (UNIT.to_string(), format!("[Service]\n{exec}\n")));
            let mut running = vec!["--a=1".to_string()];
            running.extend(flags.iter().cloned());
            running.push("--b=2".to_string());
            let s = sources(&files, &running);
            prop_assert!(s.matches_running, "{:?}", s.errors);
            let k = pick % n;
            let change = match op {
                0 => FlagChange::Remove { flag: format!("f{k}") },
                1 => FlagChange::Set { flag: format!("f{k}"), value: "new".into() },
                _ => FlagChange::Set { flag: "g".into(), value: "added".into() },
            };
            let (edits, refused) = edit_flags(&s, &[(change.clone(), vec!["c".into()])]);
            prop_assert!(refused.is_empty(), "{:?}", refused);
            let mut after: BTreeMap<String, String> = files.iter().cloned().collect();
            for e in &edits {
                after.insert(e.path.clone(), e.after.clone());
            }
            let want = apply_to_words(&running, &[change]);
            let again = sources(&after.into_iter().collect::<Vec<_>>(), &want);
            let got = again.expanded.clone().unwrap_or_default();
            prop_assert!(same_meaning(&got, &want), "{:?} vs {:?}", got, want);
        }
    }
}

#[test]
fn type_level_drop_ins_apply_and_rank_below_the_units_own() {
    let (fx, k) = misconfigured_with(|root| {
        let dir = root.join("etc/systemd/system/service.d");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("50-all.conf"),
            "[Service]\nEnvironment=\"KUBELET_CONFIG_ARGS=--config=/elsewhere.yaml\"\n",
        )
        .unwrap();
        // The same name in the unit's own directory wins over the type-level one.
        fs::write(dir.join("60-both.conf"), "[Service]\nEnvironment=X=type\n").unwrap();
        let own = root.join("etc/systemd/system/kubelet.service.d");
        fs::create_dir_all(&own).unwrap();
        fs::write(own.join("60-both.conf"), "[Service]\nEnvironment=X=own\n").unwrap();
    });
    let s = flag_sources::read(&fx.host(), &k);
    assert!(s
        .files
        .contains(&"/etc/systemd/system/service.d/50-all.conf".to_string()));
    assert!(s
        .files
        .contains(&"/etc/systemd/system/kubelet.service.d/60-both.conf".to_string()));
    assert!(!s
        .files
        .contains(&"/etc/systemd/system/service.d/60-both.conf".to_string()));
    // 50-all.conf sorts after 10-kubeadm.conf: its KUBELET_CONFIG_ARGS is in effect, which
    // is not what the running kubelet has.
    assert!(!s.matches_running);
    assert_eq!(
        s.expanded.as_ref().unwrap()[2],
        "--config=/elsewhere.yaml",
        "{:?}",
        s.expanded
    );
}
