//! What `kubelet-sentinel fix` writes: the plan as text (`SUMMARY.md`, stdout) and JSON
//! (`fix.json`, `--format json`), a unified diff of every file change (`fix.diff`, and
//! `--dry-run`), `apply.sh`, and the `--out` directory that holds them with the complete
//! new text of every file under `files/<host path>`.
//!
//! Nothing here writes to the host: only into `--out`, which must be absent or empty, is
//! created 0700, and is refused when any component of its path is a symbolic link.

pub mod diff;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::evaluate::fix::{describe_change, needs_reload, Plan};
use crate::evaluate::Summary;

/// Why the `--out` directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutError {
    /// `--out` exists and is not an empty directory.
    #[error("--out {}: {why}", path.display())]
    Unusable {
        /// The `--out` path.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A host path of the plan cannot be laid out under `files/`.
    #[error("--out: cannot place {path:?} under files/: {why}")]
    BadPath {
        /// The host path.
        path: String,
        /// Why.
        why: String,
    },
    /// Creating or writing a file failed.
    #[error("--out {}: {error}", path.display())]
    Write {
        /// The file or directory being written.
        path: PathBuf,
        /// The I/O error (in the message, not a `source()`).
        error: std::io::Error,
    },
}

/// The plan for people: what passes afterwards, the changes, the preconditions, what the
/// fix cannot do, and what to run.
pub fn render_text(plan: &Plan) -> String {
    let mut o = String::new();
    o.push_str(&format!("# kubelet-sentinel fix: node {}\n\n", plan.node));
    match (&plan.kubelet, &plan.no_kubelet) {
        (Some(k), _) => {
            o.push_str(&format!("kubelet pid {} ({})", k.pid, k.distribution));
            if let Some(c) = &k.config_file {
                o.push_str(&format!(", --config {c}"));
            }
            match &k.config_dir {
                Some(d) => o.push_str(&format!(", --config-dir {d}")),
                None => o.push_str(", no --config-dir"),
            }
            o.push_str("\n\n");
        }
        (None, Some(why)) => o.push_str(&format!("No usable kubelet: {why}\n\n")),
        (None, None) => o.push_str("No usable kubelet.\n\n"),
    }
    o.push_str(&format!("Before: {}\n", counts(&plan.before)));
    o.push_str(&format!(
        "After:  {} (the fixed controls as proven in memory; every other control as now)\n",
        counts(&plan.after)
    ));
    if !plan.controls.is_empty() {
        o.push_str("\n## Will pass after the fix\n\n");
        for c in &plan.controls {
            o.push_str(&format!(
                "- {} ({} → pass) by {}{}\n",
                c.id,
                c.before.as_str(),
                c.by.join(", "),
                if c.restart {
                    "; needs a kubelet restart"
                } else {
                    ""
                }
            ));
        }
    }
    if !plan.is_empty() {
        o.push_str("\n## Changes\n\n");
        if let Some(d) = &plan.dropin {
            o.push_str(&format!(
                "- drop-in {} with {}\n",
                d.path,
                leaf_names(&d.settings).join(", ")
            ));
        }
        for f in &plan.flag_changes {
            let at = f
                .origin
                .as_ref()
                .map(|o| format!(" ({} line {})", o.label(), o.line))
                .unwrap_or_default();
            o.push_str(&format!("- {}{at}\n", describe_change(&f.change)));
        }
        for f in &plan.files {
            if plan.dropin.as_ref().is_some_and(|d| d.path == f.path) {
                continue;
            }
            let verb = if f.before.is_some() {
                "change"
            } else {
                "create"
            };
            o.push_str(&format!("- {verb} {}: {}\n", f.path, f.what));
            for t in &f.then {
                o.push_str(&format!("  then: {t}\n"));
            }
        }
        for m in &plan.modes {
            if let Some(mode) = m.mode {
                o.push_str(&format!("- chmod {mode:04o} {}\n", m.path));
            }
            if let Some((u, g)) = m.owner {
                o.push_str(&format!("- chown {u}:{g} {}\n", m.path));
            }
        }
    }
    if !plan.preconditions.is_empty() {
        o.push_str("\n## Preconditions\n\n");
        for p in &plan.preconditions {
            o.push_str(&format!(
                "- {} {}: {}{}\n",
                p.controls.join(", "),
                if p.holds { "holds" } else { "does NOT hold" },
                p.checked,
                if p.do_first.is_empty() {
                    String::new()
                } else {
                    format!("\n  do first: {}", p.do_first)
                }
            ));
        }
    }
    if !plan.cannot.is_empty() {
        o.push_str("\n## Not fixed by this command\n\n");
        for c in &plan.cannot {
            o.push_str(&format!("- {} ({}): {}\n", c.id, c.status.as_str(), c.why));
        }
    }
    if !plan.then.is_empty() {
        o.push_str("\n## Then\n\n");
        for t in &plan.then {
            o.push_str(&format!("- `{t}`\n"));
        }
    }
    if plan.is_empty() {
        o.push_str("\nNothing to change.\n");
    }
    o
}

fn counts(s: &Summary) -> String {
    format!(
        "{} pass, {} fail, {} unknown, {} not applicable",
        s.pass, s.fail, s.unknown, s.not_applicable
    )
}

/// Dotted names of a document's leaves (`authentication.anonymous.enabled`).
fn leaf_names(v: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o)
                if !o.is_empty() && !path.is_empty() && is_map_setting(path) =>
            {
                out.push(path.join("."));
            }
            serde_json::Value::Object(o) if !o.is_empty() => {
                for (k, c) in o {
                    path.push(k.clone());
                    walk(c, path, out);
                    path.pop();
                }
            }
            _ => out.push(path.join(".")),
        }
    }
    fn is_map_setting(path: &[String]) -> bool {
        matches!(
            path.join(".").as_str(),
            "kubeReserved" | "systemReserved" | "evictionHard" | "featureGates"
        )
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The plan as JSON (`fix.json`, `--format json`).
pub fn render_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The unified diff of every file change against the host.
pub fn render_diff(plan: &Plan) -> String {
    plan.files
        .iter()
        .map(|f| diff::unified(&f.path, f.before.as_deref(), &f.after))
        .collect()
}

/// `apply.sh`: install each file, the `chmod`/`chown` commands, the daemon reload and
/// the restart. Never run by the agent.
pub fn render_apply(plan: &Plan) -> String {
    let mut o = String::from(
        "#!/bin/sh\n# Written by kubelet-sentinel fix. Review SUMMARY.md and fix.diff first; run as root.\nset -eu\nhere=$(cd \"$(dirname \"$0\")\" && pwd)\n",
    );
    for f in &plan.files {
        for t in &f.then {
            o.push_str(&format!("# {}: {}\n", f.path, t.replace('\n', " ")));
        }
        o.push_str(&format!(
            "install -D -m {:04o} -o root -g root \"$here/files\"{} {}\n",
            f.mode,
            quote(&f.path),
            quote(&f.path)
        ));
    }
    for m in &plan.modes {
        if let Some(mode) = m.mode {
            o.push_str(&format!("chmod {mode:04o} {}\n", quote(&m.path)));
        }
        if let Some((u, g)) = m.owner {
            o.push_str(&format!("chown {u}:{g} {}\n", quote(&m.path)));
        }
    }
    let reload = needs_reload(plan);
    for t in &plan.then {
        if t == "systemctl daemon-reload" && !reload {
            continue;
        }
        o.push_str(t);
        o.push('\n');
    }
    o
}

/// A shell word in single quotes.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Whether `out` can take the plan: no symbolic link on its path, no `..`, and absent
/// (`Ok(false)`) or an empty directory (`Ok(true)`).
pub fn check_out(out: &Path) -> Result<bool, OutError> {
    let unusable = |why: &str| OutError::Unusable {
        path: out.to_path_buf(),
        why: why.to_string(),
    };
    if out.as_os_str().is_empty() {
        return Err(unusable("empty path"));
    }
    if out.components().any(|c| c == Component::ParentDir) {
        return Err(unusable("a path with `..` is refused"));
    }
    // Every existing component of the path: no symbolic link.
    let mut cur = PathBuf::new();
    for c in out.components() {
        cur.push(c);
        if matches!(
            c,
            Component::RootDir | Component::CurDir | Component::Prefix(_)
        ) {
            continue;
        }
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(unusable(&format!(
                    "{} is a symbolic link: refused",
                    cur.display()
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(error) => return Err(OutError::Write { path: cur, error }),
        }
    }
    match fs::symlink_metadata(out) {
        Ok(m) if !m.is_dir() => Err(unusable("exists and is not a directory")),
        Ok(_) => {
            let mut entries = fs::read_dir(out).map_err(|error| OutError::Write {
                path: out.to_path_buf(),
                error,
            })?;
            if entries.next().is_some() {
                Err(unusable("is not empty: refused (the fix never overwrites)"))
            } else {
                Ok(true)
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(OutError::Write {
            path: out.to_path_buf(),
            error,
        }),
    }
}

/// Write the plan into `out`: absent (created 0700) or an empty directory, no symbolic
/// link on its path. Files are created new (never opened through an existing name) with
/// mode 0600.
pub fn write_out(out: &Path, plan: &Plan) -> Result<(), OutError> {
    if !check_out(out)? {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(out)
            .map_err(|error| OutError::Write {
                path: out.to_path_buf(),
                error,
            })?;
    }
    for f in &plan.files {
        let rel = safe_relative(&f.path)?;
        let target = out.join("files").join(rel);
        write_new(out, &target, f.after.as_bytes())?;
    }
    write_new(out, &out.join("fix.diff"), render_diff(plan).as_bytes())?;
    write_new(out, &out.join("apply.sh"), render_apply(plan).as_bytes())?;
    write_new(out, &out.join("fix.json"), render_json(plan).as_bytes())?;
    write_new(out, &out.join("SUMMARY.md"), render_text(plan).as_bytes())?;
    Ok(())
}

/// A host path as a relative path with normal components only.
fn safe_relative(host_path: &str) -> Result<PathBuf, OutError> {
    let bad = |why: &str| OutError::BadPath {
        path: host_path.to_string(),
        why: why.to_string(),
    };
    if !host_path.starts_with('/') {
        return Err(bad("not absolute"));
    }
    let mut rel = PathBuf::new();
    for part in host_path.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(bad("has . or .. components"));
        }
        rel.push(part);
    }
    if rel.as_os_str().is_empty() {
        return Err(bad("names the root"));
    }
    Ok(rel)
}

/// Create `target` (and its directories, 0700, below `out`) as a new file with `bytes`.
fn write_new(out: &Path, target: &Path, bytes: &[u8]) -> Result<(), OutError> {
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |error| OutError::Write { path, error }
    };
    if let Some(parent) = target.parent() {
        // Only directories this run creates: `out` was empty.
        let rel = parent.strip_prefix(out).unwrap_or(Path::new(""));
        let mut cur = out.to_path_buf();
        for c in rel.components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {}
                Ok(_) => {
                    return Err(OutError::Write {
                        path: cur.clone(),
                        error: std::io::Error::other("exists and is not a directory"),
                    })
                }
                Err(_) => fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&cur)
                    .map_err(werr(&cur))?,
            }
        }
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(werr(target))?;
    file.write_all(bytes).map_err(werr(target))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::evaluate::fix::{self as planner, Facts, FixOptions};
    use crate::evaluate::policy::Policy;
    use crate::model::testing::snapshot_with_dropins;

    fn sample_plan() -> Plan {
        let s = snapshot_with_dropins(
            &[],
            Some("readOnlyPort: 0\n"),
            &[("50-metrics.conf", "readOnlyPort: 10255\n")],
        );
        let policy = Policy::embedded();
        let results = crate::evaluate::evaluate(&s, &policy);
        planner::plan(
            &s,
            &results,
            &policy,
            &Facts::default(),
            &FixOptions::default(),
        )
    }

    #[test]
    fn out_is_created_0700_with_every_file_0600_and_nothing_outside() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fix");
        let plan = sample_plan();
        write_out(&out, &plan).unwrap();
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let dropin = out.join("files/etc/kubernetes/kubelet.conf.d/90-kubelet-sentinel.conf");
        let text = fs::read_to_string(&dropin).unwrap();
        assert!(text.contains("readOnlyPort: 0"), "{text}");
        for name in ["fix.diff", "apply.sh", "fix.json", "SUMMARY.md"] {
            let m = fs::metadata(out.join(name)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{name}");
        }
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out.join("fix.json")).unwrap()).unwrap();
        assert_eq!(json["dropin"]["settings"]["readOnlyPort"], 0);
        assert!(
            json["files"][0].get("after").is_none(),
            "no file text in files[]"
        );
        let diff = fs::read_to_string(out.join("fix.diff")).unwrap();
        assert!(diff.starts_with(
            "--- /dev/null\n+++ b/etc/kubernetes/kubelet.conf.d/90-kubelet-sentinel.conf\n"
        ));
        let apply = fs::read_to_string(out.join("apply.sh")).unwrap();
        assert!(
            apply.contains("install -D -m 0600 -o root -g root"),
            "{apply}"
        );
        assert!(apply.contains("systemctl restart kubelet"), "{apply}");
        // Only the out dir was written to.
        let mut top: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(top, ["fix"]);
    }

    #[test]
    fn a_non_empty_out_a_symlink_on_the_way_and_dot_dot_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let plan = sample_plan();
        let full = dir.path().join("full");
        fs::create_dir(&full).unwrap();
        fs::write(full.join("keep"), "x").unwrap();
        let e = write_out(&full, &plan).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        assert_eq!(fs::read_to_string(full.join("keep")).unwrap(), "x");

        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        for out in [link.clone(), link.join("sub")] {
            let e = write_out(&out, &plan).unwrap_err();
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
        assert_eq!(fs::read_dir(&real).unwrap().count(), 0);

        let e = write_out(&dir.path().join("a/../b"), &plan).unwrap_err();
        assert!(e.to_string().contains(".."), "{e}");

        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        assert!(write_out(&file, &plan).is_err());
    }

    #[test]
    fn host_paths_stay_under_files() {
        assert!(safe_relative("/etc/../../x").is_err());
        assert!(safe_relative("etc/x").is_err());
        assert!(safe_relative("/").is_err());
        assert_eq!(
            safe_relative("//etc//kubernetes/x.conf").unwrap(),
            PathBuf::from("etc/kubernetes/x.conf")
        );
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
