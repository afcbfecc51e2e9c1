//! `kubelet-sentinel fix` on every fixture host tree and on `examples/node`: plan the fix,
//! write `--out`, apply it to a copy of the tree (the files written, the modes changed,
//! the restart simulated by rewriting `/proc/<pid>/cmdline` with the flag changes), and
//! check again: every control the plan says it fixes passes, no other control changes
//! status. Fixtures with nothing to fix, no kubelet, or unreadable files must give an
//! honest answer (the exit statuses of docs/fix.md). Also the command line itself, end to
//! end, on `examples/node`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{drop_dac_capabilities, fixture_names, running_as_root, Fixture};
use kubelet_sentinel::evaluate::fix::{self, Facts, FixOptions, Plan};
use kubelet_sentinel::evaluate::policy::Policy;
use kubelet_sentinel::evaluate::{self as evaluation, ControlResult, Status};
use kubelet_sentinel::model::fix::{args_with_dropin, FlagChange};
use kubelet_sentinel::model::flag_origin::OriginHow;
use kubelet_sentinel::model::k3s::Product;
use kubelet_sentinel::model::kubelet_config::flags::args_with_changes;
use kubelet_sentinel::model::snapshot::{KubeletFlavour, Snapshot};
use kubelet_sentinel::observe::{fix_facts, observe, ObserveOptions};
use kubelet_sentinel::publish::fix::write_out;

/// What `check` sees (without DAC-bypassing capabilities, as the fixtures are meant to be
/// read), and the facts the fix reads.
fn look(fx: &Fixture, opts: &FixOptions) -> (Snapshot, Vec<ControlResult>, Facts) {
    let host = fx.host();
    std::thread::scope(|s| {
        s.spawn(|| {
            drop_dac_capabilities();
            let mut snap = observe(&host, &ObserveOptions::default());
            snap.settle_kubelet_version();
            let results = evaluation::evaluate(&snap, &Policy::embedded());
            let targets = fix::target_paths(&snap, opts);
            let facts = Facts {
                sysctls: fix_facts::sysctls(&host),
                hostname: Some(fix_facts::hostname(&host)),
                flag_sources: snap
                    .kubelet
                    .as_ref()
                    .map(|k| fix_facts::flag_sources(&host, k))
                    .unwrap_or_default(),
                existing: fix_facts::existing_texts(&host, &targets),
            };
            (snap, results, facts)
        })
        .join()
        .expect("observation thread panicked")
    })
}

/// Apply the plan to the fixture's tree as `apply.sh` would on the host, and simulate
/// the restart.
fn apply(fx: &Fixture, snap: &Snapshot, plan: &Plan) {
    for f in &plan.files {
        let target = fx.path(&f.path);
        fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
        fs::write(&target, &f.after).expect("write file");
        fs::set_permissions(&target, fs::Permissions::from_mode(f.mode)).expect("chmod new");
    }
    for m in &plan.modes {
        let target = fx.path(&m.path);
        // The plan names the file itself (symlinks resolved inside the root): a symlink
        // here would be followed on this machine, outside the fixture.
        assert!(
            !fs::symlink_metadata(&target)
                .expect("the file exists")
                .file_type()
                .is_symlink(),
            "{}: a mode change names a symlink",
            m.path
        );
        if let Some(mode) = m.mode {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).expect("chmod");
        }
        if let (Some((u, g)), true) = (m.owner, running_as_root()) {
            std::os::unix::fs::chown(&target, Some(u), Some(g)).expect("chown");
        }
    }
    let changes: Vec<FlagChange> = plan.flag_changes.iter().map(|f| f.change.clone()).collect();
    let Some(k) = snap.kubelet.as_ref() else {
        return;
    };
    if let Some(x) = &k.k3s {
        // k3s runs the kubelet in-process and builds its flags from the files it reads
        // (the observation rebuilds them the same way): the written config.yaml.d file
        // is the change. RKE2 starts a kubelet process: its new command line is what
        // RKE2 would build with that file.
        if x.product != Product::Rke2 {
            return;
        }
        let Some(f) = plan.files.iter().find(|f| f.path.contains(".yaml.d/")) else {
            return;
        };
        let file = f.path.rsplit('/').next().unwrap_or_default();
        let args = args_with_dropin(x, file, &f.after)
            .unwrap_or_else(|e| panic!("{}: rke2 args with the fix: {e}", fx.name));
        // A `--kubelet-arg` the plan removed from the unit no longer beats the drop-in
        // (the rebuild above still has it: it was read before the edit).
        let ours: Vec<(String, String)> = f
            .after
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- \""))
            .filter_map(|l| l.strip_suffix('"'))
            .filter_map(|a| a.split_once('='))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let unit_edited = |file: &str| plan.files.iter().any(|e| e.path == file);
        let removed: Vec<FlagChange> = x
            .origins
            .iter()
            .filter(|o| o.how == OriginHow::K3sCommandLine && unit_edited(&o.file))
            .filter_map(|o| ours.iter().find(|(f, _)| *f == o.flag))
            .map(|(flag, value)| FlagChange::Set {
                flag: flag.clone(),
                value: value.clone(),
            })
            .collect();
        let args = args_with_changes(&args, &removed);
        let mut argv: Vec<String> = k.argv.iter().take(1).cloned().collect();
        argv.extend(args);
        write_cmdline(fx, k.pid, &argv);
        return;
    }
    if changes.is_empty() || k.flavour == KubeletFlavour::Kubelite {
        // MicroK8s' flags are in its args file: the edited file (plan.files) is the
        // change there.
        return;
    }
    let skip = if k.flavour == KubeletFlavour::Hyperkube {
        2
    } else {
        1
    };
    let mut argv: Vec<String> = k.argv.iter().take(skip).cloned().collect();
    argv.extend(args_with_changes(
        &k.argv[skip.min(k.argv.len())..],
        &changes,
    ));
    write_cmdline(fx, k.pid, &argv);
}

/// The restart: the kubelet's `/proc/<pid>/cmdline` with its new argv.
fn write_cmdline(fx: &Fixture, pid: i32, argv: &[String]) {
    let mut bytes = Vec::new();
    for a in argv {
        bytes.extend_from_slice(a.as_bytes());
        bytes.push(0);
    }
    fs::write(fx.path(&format!("/proc/{pid}/cmdline")), bytes).expect("rewrite cmdline");
}

fn statuses(results: &[ControlResult]) -> BTreeMap<&'static str, Status> {
    results.iter().map(|r| (r.id, r.status)).collect()
}

/// Run the fix on one tree; returns a line for the summary table.
fn fix_and_check(fx: &Fixture) -> String {
    let opts = FixOptions::default();
    let (snap, before, facts) = look(fx, &opts);
    let policy = Policy::embedded();
    let plan = fix::plan(&snap, &before, &policy, &facts, &opts);
    let name = &fx.name;

    // Honest exit statuses.
    let open = before
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Unknown))
        .count();
    assert_eq!(
        open,
        plan.controls.len() + plan.cannot.len(),
        "{name}: every failing/unknown control is either fixed or listed: {plan:#?}"
    );
    match snap.kubelet {
        None => {
            assert_eq!(plan.exit_code(), 3, "{name}: no kubelet is exit 3");
            assert!(plan.is_empty(), "{name}: nothing planned without a kubelet");
        }
        Some(_) => assert_eq!(
            plan.exit_code(),
            if plan.cannot.is_empty() { 0 } else { 1 },
            "{name}"
        ),
    }
    for c in &plan.cannot {
        assert!(!c.why.is_empty(), "{name}: {} has no reason", c.id);
    }

    // --out is written, and only there.
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().join("fix");
    write_out(&dir, &plan).unwrap_or_else(|e| panic!("{name}: {e}"));
    for f in &plan.files {
        let written = dir.join("files").join(f.path.trim_start_matches('/'));
        assert_eq!(
            fs::read_to_string(&written).expect("written"),
            f.after,
            "{name}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("fix.json")).expect("fix.json"))
            .expect("fix.json parses");
    for key in [
        "node",
        "kubelet",
        "dropin",
        "flag_changes",
        "files",
        "modes",
        "controls",
        "cannot",
        "preconditions",
        "before",
        "after",
    ] {
        assert!(json.get(key).is_some(), "{name}: fix.json has no {key}");
    }

    // Apply, restart, check again.
    apply(fx, &snap, &plan);
    let (_, after, _) = look(fx, &opts);
    let (was, now) = (statuses(&before), statuses(&after));
    for c in &plan.controls {
        assert_eq!(
            now.get(c.id.as_str()),
            Some(&Status::Pass),
            "{name}: {} was promised to pass: {:#?}",
            c.id,
            after.iter().find(|r| r.id == c.id)
        );
    }
    for (id, status) in &was {
        if plan.controls.iter().any(|c| c.id == *id) {
            continue;
        }
        assert_eq!(
            now.get(id),
            Some(status),
            "{name}: {id} changed status though the plan does not touch it: {:#?}",
            after.iter().find(|r| r.id == *id)
        );
    }
    format!(
        "{name}: exit {}, fixed {}, not fixed {}, files {}, modes {}, flag changes {}",
        plan.exit_code(),
        plan.controls.len(),
        plan.cannot.len(),
        plan.files.len(),
        plan.modes.len(),
        plan.flag_changes.len()
    )
}

#[test]
fn the_fix_of_every_fixture_makes_its_controls_pass_and_changes_nothing_else() {
    let mut lines = Vec::new();
    for name in fixture_names() {
        let fx = Fixture::load(&name);
        lines.push(fix_and_check(&fx));
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node");
    lines.push(fix_and_check(&Fixture::load_from(
        &example,
        "examples/node",
    )));
    println!("{}", lines.join("\n"));
}

#[test]
fn the_example_node_is_fixed_where_the_readme_says() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node");
    let fx = Fixture::load_from(&example, "examples/node");
    let opts = FixOptions::default();
    let (snap, before, facts) = look(&fx, &opts);
    let plan = fix::plan(&snap, &before, &Policy::embedded(), &facts, &opts);
    let d = plan
        .dropin
        .as_ref()
        .expect("examples/node has --config-dir");
    assert_eq!(
        d.path,
        "/etc/kubernetes/kubelet.conf.d/90-kubelet-sentinel.conf"
    );
    assert_eq!(
        d.settings,
        serde_json::json!({"address": "10.0.0.31", "readOnlyPort": 0, "seccompDefault": true})
    );
    for id in [
        "read-only-port-disabled",
        "api-bind-address-restricted",
        "seccomp-default-enabled",
    ] {
        let c = plan
            .controls
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id} not fixed"));
        assert_eq!((c.before, c.after), (Status::Fail, Status::Pass));
        assert_eq!(c.by, ["dropin"]);
        assert!(c.restart);
    }
    assert!(plan.flag_changes.is_empty());
    assert_eq!(plan.then, ["systemctl restart kubelet.service"]);
    // protectKernelDefaults is already on here; nothing needs the sysctls.
    assert_eq!(
        plan.kubelet.as_ref().map(|k| k.distribution.as_str()),
        Some("kubeadm")
    );
}

#[test]
fn the_command_line_writes_out_and_refuses_to_overwrite() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("fix");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kubelet-sentinel"))
            .args(["fix", "--host-root"])
            .arg(&example)
            .args(["--api-access=off", "--log-level=error"])
            .args(extra)
            .output()
            .expect("run kubelet-sentinel")
    };
    let o = run(&["--out", out.to_str().expect("utf-8"), "--format", "json"]);
    // Unknown controls remain (version, live, API): exit 1, listed.
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json on stdout");
    assert_eq!(plan["node"], "demo-worker-1");
    assert_eq!(plan["kubelet"]["pid"], 1211);
    assert_eq!(plan["dropin"]["settings"]["readOnlyPort"], 0);
    assert!(plan["cannot"]
        .as_array()
        .expect("cannot")
        .iter()
        .any(|c| c["id"] == "kubelet-version-supported"));
    for f in ["fix.diff", "apply.sh", "fix.json", "SUMMARY.md"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let written: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("fix.json")).expect("fix.json"))
            .expect("parses");
    assert_eq!(written, plan);
    // A second run into the same directory: refused, exit 2, nothing changed.
    let before = fs::read_to_string(out.join("SUMMARY.md")).expect("summary");
    let o = run(&["--out", out.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
    assert_eq!(
        fs::read_to_string(out.join("SUMMARY.md")).expect("summary"),
        before
    );
    // --dry-run prints the same drop-in as a diff and writes nothing.
    let o = run(&["--dry-run"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("+++ b/etc/kubernetes/kubelet.conf.d/90-kubelet-sentinel.conf"),
        "{text}"
    );
    assert!(text.contains("+readOnlyPort: 0"), "{text}");
    // No kubelet: exit 3, and --out still says so.
    let none = tmp.path().join("none");
    let o = Command::new(env!("CARGO_BIN_EXE_kubelet-sentinel"))
        .args(["fix", "--host-root"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/no-kubelet"))
        .args(["--api-access=off", "--log-level=error", "--out"])
        .arg(&none)
        .output()
        .expect("run kubelet-sentinel");
    assert_eq!(o.status.code(), Some(3));
    let summary = fs::read_to_string(none.join("SUMMARY.md")).expect("summary");
    assert!(summary.contains("No usable kubelet"), "{summary}");
    assert!(!none.join("files").exists());
    // A bad flag: exit 2.
    let o = run(&["--controls", "no-such-control"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["--dropin-name", "../x.conf"]);
    assert_eq!(o.status.code(), Some(2));
}
