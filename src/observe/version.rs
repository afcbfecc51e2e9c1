//! The kubelet's version: parsed from `kubelet --version` (run directly, never through a
//! shell; k8s.io/component-base version/verflag `PrintAndExitIfRequested`; only with the
//! opt-in `--version-exec=true`, after the Go build information — observe/buildinfo.rs — named
//! none, and for a process that passed observe/identity.rs) or from the
//! `kubernetes_build_info` gauge on its metrics endpoint (component-base metrics/version.go).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::io::host::HostRoot;
use crate::model::exposition;
use crate::model::version::KubeVersion;

/// The most of `--version`'s output that is read (it prints one short line).
pub const MAX_VERSION_OUTPUT: u64 = 64 * 1024;

/// A GitVersion token, validated (`v1.35.0`, `v1.35.4+k3s1`); returns it as written.
fn git_version(token: &str) -> Option<String> {
    let t = token.trim();
    KubeVersion::parse(t).map(|_| t.to_string())
}

/// The version in `kubelet --version` output: `Kubernetes v1.35.0` (verflag prints
/// `"%s %s\n"` of the program name and the GitVersion).
pub fn parse_version_output(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("Kubernetes"), Some(v), None) => git_version(v),
            _ => None,
        }
    })
}

/// The version in a metrics exposition: `kubernetes_build_info{...,git_version="v1.31.4",...} 1`
/// (very old kubelets used camelCase labels: `gitVersion`). The body is the capped answer
/// of the kubelet's port; [`exposition::samples`] reads it line by line without panicking.
pub fn parse_build_info(metrics_text: &str) -> Option<String> {
    exposition::samples(metrics_text)
        .filter(|s| s.name == "kubernetes_build_info")
        .find_map(|s| {
            s.label("git_version")
                .or_else(|| s.label("gitVersion"))
                .and_then(git_version)
        })
}

/// The agent-side path of a resolved host path.
fn real_path(root: &Path, resolved: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in resolved.split('/').filter(|c| !c.is_empty()) {
        p.push(c);
    }
    p
}

/// Run the kubelet binary with `--version` and parse its answer; `Err` is a reason (the
/// caller adds which binary).
///
/// The binary is resolved inside the host root (symlinks followed there, so none escapes
/// it) and must be a regular file with an execute bit. It runs directly — no shell — with
/// an empty environment, stdin and stderr closed, at most [`MAX_VERSION_OUTPUT`] bytes of
/// stdout read, and is killed when `timeout` passes first.
///
/// `binary_host_path` is normally the target of `/proc/<pid>/exe`. A target ending in
/// ` (deleted)` means the file was replaced after the kubelet started (a package upgrade
/// without a restart): the file now at that path is not what runs, so it is not asked.
///
/// The file is checked and then executed by path: a host that swaps it in between can
/// make us run something else inside the root, the same window every `HostRoot` read has.
pub async fn version_from_binary(
    host_root: &Path,
    binary_host_path: &str,
    timeout: Duration,
) -> Result<String, String> {
    if binary_host_path.ends_with(" (deleted)") {
        return Err(
            "the running binary was replaced or deleted since the kubelet started; the file now on disk is not what runs"
                .to_string(),
        );
    }
    let root = HostRoot::new(host_root).map_err(|e| format!("host root: {e}"))?;
    let resolved = root
        .resolve(binary_host_path, true)
        .map_err(|e| e.to_string())?;
    let real = real_path(root.root(), &resolved);
    let meta = std::fs::symlink_metadata(&real).map_err(|e| format!("{resolved}: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("{resolved}: not a regular file"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{resolved}: not executable"));
    }
    let mut child = tokio::process::Command::new(&real)
        .arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not start {resolved}: {e}"))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| "no stdout pipe".to_string())?;
    let run = async {
        let mut buf = Vec::new();
        (&mut stdout)
            .take(MAX_VERSION_OUTPUT + 1)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| format!("reading its output: {e}"))?;
        if buf.len() as u64 > MAX_VERSION_OUTPUT {
            return Err(format!("output larger than {MAX_VERSION_OUTPUT} bytes"));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("waiting for it: {e}"))?;
        Ok((buf, status))
    };
    // On timeout or an error, `child` is dropped with this function and killed
    // (kill_on_drop).
    let (buf, status) = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("no answer within {timeout:?} (killed)"))??;
    if !status.success() {
        return Err(format!("{status}"));
    }
    let text = String::from_utf8_lossy(&buf);
    parse_version_output(&text).ok_or_else(|| {
        let first: String = text
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(120)
            .collect();
        format!("no `Kubernetes vX.Y.Z` in its output ({first:?})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn version_output() {
        assert_eq!(
            parse_version_output("Kubernetes v1.35.0\n").as_deref(),
            Some("v1.35.0")
        );
        for v in [
            "v1.31.4",
            "v1.33.4+rke2r1",
            "v1.30.2-eks-1552ad0",
            "v1.29.8-gke.1031000",
            "v1.35.4+k3s1",
        ] {
            assert_eq!(
                parse_version_output(&format!("Kubernetes {v}")).as_deref(),
                Some(v)
            );
        }
        assert_eq!(
            parse_version_output("some warning\nKubernetes v1.31.4\n").as_deref(),
            Some("v1.31.4")
        );
        for bad in [
            "",
            "Kubernetes",
            "Kubernetes v1.35",
            "kubernetes v1.35.0",
            "Kubernetes v1.35.0 extra",
            "k3s version v1.36.5+k3s1 (3dd98cc5)",
            "version.Info{Major:\"1\", Minor:\"35\", GitVersion:\"v1.35.0\"}",
        ] {
            assert_eq!(parse_version_output(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn build_info() {
        let text = "# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.\n# TYPE kubernetes_build_info gauge\nkubernetes_build_info{build_date=\"2024-12-10T11:36:16Z\",compiler=\"gc\",git_commit=\"abc\",git_tree_state=\"clean\",git_version=\"v1.31.4\",go_version=\"go1.22.9\",major=\"1\",minor=\"31\",platform=\"linux/amd64\"} 1\n";
        assert_eq!(parse_build_info(text).as_deref(), Some("v1.31.4"));
        let old =
            "kubernetes_build_info{buildDate=\"2018-01-01\",gitVersion=\"v1.9.3\",major=\"1\"} 1";
        assert_eq!(parse_build_info(old).as_deref(), Some("v1.9.3"));
        let vendor = "kubernetes_build_info{git_version=\"v1.30.2-eks-1552ad0\",note=\"a \\\"quoted\\\" } brace\"} 1";
        assert_eq!(
            parse_build_info(vendor).as_deref(),
            Some("v1.30.2-eks-1552ad0")
        );
        for bad in [
            "",
            "kubernetes_build_info 1",
            "kubernetes_build_info{major=\"1\"} 1",
            "kubernetes_build_info{git_version=\"nope\"} 1",
            "kubernetes_build_info{git_version=\"v1.31.4\" 1",
            "# kubernetes_build_info{git_version=\"v1.31.4\"} 1",
            "kubernetes_build_info_other{git_version=\"v1.31.4\"} 1",
        ] {
            assert_eq!(parse_build_info(bad), None, "{bad:?}");
        }
    }

    fn script(path: &Path, body: &str, mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[tokio::test]
    async fn runs_the_binary_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let t = Duration::from_secs(10);
        // The environment is cleared: $HOME is empty in the child.
        script(
            &root.join("usr/bin/kubelet"),
            "[ \"$1\" = --version ] && [ -z \"$HOME\" ] && echo 'Kubernetes v1.33.4+rke2r1'",
            0o755,
        );
        assert_eq!(
            version_from_binary(root, "/usr/bin/kubelet", t).await,
            Ok("v1.33.4+rke2r1".to_string())
        );
        // A symlink is followed inside the root, even an absolute one.
        std::fs::create_dir_all(root.join("opt")).unwrap();
        symlink("/usr/bin/kubelet", root.join("opt/kubelet")).unwrap();
        assert_eq!(
            version_from_binary(root, "/opt/kubelet", t).await,
            Ok("v1.33.4+rke2r1".to_string())
        );

        // Refusals.
        script(&root.join("bin/noexec"), "echo 'Kubernetes v1.31.4'", 0o644);
        let e = version_from_binary(root, "/bin/noexec", t)
            .await
            .unwrap_err();
        assert!(e.contains("not executable"), "{e}");
        let e = version_from_binary(root, "/usr/bin", t).await.unwrap_err();
        assert_eq!(e, "/usr/bin: not a regular file");
        let e = version_from_binary(root, "/nope", t).await.unwrap_err();
        assert!(e.contains("not found"), "{e}");

        // Failures of the program itself.
        script(&root.join("bin/fails"), "exit 3", 0o755);
        let e = version_from_binary(root, "/bin/fails", t)
            .await
            .unwrap_err();
        assert!(e.contains("exit status: 3"), "{e}");
        let e = version_from_binary(root, "/usr/bin/kubelet (deleted)", t)
            .await
            .unwrap_err();
        assert!(e.contains("replaced or deleted"), "{e}");
        script(&root.join("bin/other"), "echo 'kubelet 1.2'", 0o755);
        let e = version_from_binary(root, "/bin/other", t)
            .await
            .unwrap_err();
        assert!(e.contains("no `Kubernetes vX.Y.Z`"), "{e}");
        script(&root.join("bin/slow"), "exec sleep 30", 0o755);
        let started = std::time::Instant::now();
        let e = version_from_binary(root, "/bin/slow", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.contains("no answer within"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));
        script(&root.join("bin/chatty"), "exec yes Kubernetes", 0o755);
        let e = version_from_binary(root, "/bin/chatty", t)
            .await
            .unwrap_err();
        assert!(e.contains("larger than 65536 bytes"), "{e}");
    }

    #[tokio::test]
    async fn symlinks_cannot_escape_the_root() {
        let outside = tempfile::tempdir().unwrap();
        script(
            &outside.path().join("kubelet"),
            "echo 'Kubernetes v1.0.0'",
            0o755,
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        // A relative link climbing out of the root stays at the root.
        let depth = root.components().count() + 2;
        let climb = format!(
            "{}{}",
            "../".repeat(depth),
            outside.path().join("kubelet").display()
        );
        symlink(&climb, root.join("usr/bin/kubelet")).unwrap();
        let r = version_from_binary(root, "/usr/bin/kubelet", Duration::from_secs(5)).await;
        assert!(r.is_err(), "{r:?}");
        assert!(r.unwrap_err().contains("not found"));
    }
}
