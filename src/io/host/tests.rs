use super::*;
use std::os::unix::fs::symlink;

fn tree() -> (tempfile::TempDir, HostRoot) {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("etc/kubernetes")).unwrap();
    std::fs::create_dir_all(r.join("var/lib/kubelet")).unwrap();
    std::fs::write(r.join("var/lib/kubelet/config.yaml"), "inside").unwrap();
    let host = HostRoot::new(r).unwrap();
    (dir, host)
}

/// Both resolvers: the kernel's (openat2) and the userspace fallback.
fn both(host: &HostRoot) -> [HostRoot; 2] {
    [host.clone(), host.clone().without_kernel_resolution()]
}

#[test]
fn kernel_resolution_is_available_here() {
    let (_dir, host) = tree();
    assert!(
        host.kernel_resolution(),
        "openat2 should work on this kernel"
    );
}

#[test]
fn absolute_symlink_is_rerooted() {
    let (dir, host) = tree();
    symlink(
        "/var/lib/kubelet/config.yaml",
        dir.path().join("etc/kubernetes/cfg"),
    )
    .unwrap();
    assert_eq!(
        host.resolve("/etc/kubernetes/cfg", true).unwrap(),
        "/var/lib/kubelet/config.yaml"
    );
    for h in both(&host) {
        assert_eq!(h.read("/etc/kubernetes/cfg").unwrap(), b"inside");
        let m = h.metadata("/etc/kubernetes/cfg").unwrap();
        assert_eq!(m.resolved, "/var/lib/kubelet/config.yaml");
        assert_eq!(m.kind, FileKind::File);
        let l = h.symlink_metadata("/etc/kubernetes/cfg").unwrap();
        assert_eq!(l.kind, FileKind::Symlink);
        assert_eq!(
            h.read_link("/etc/kubernetes/cfg").unwrap(),
            "/var/lib/kubelet/config.yaml"
        );
    }
}

#[test]
fn dotdot_never_climbs_above_root() {
    let (dir, host) = tree();
    symlink(
        "../../../../../../var/lib/kubelet/config.yaml",
        dir.path().join("etc/kubernetes/up"),
    )
    .unwrap();
    assert_eq!(
        host.resolve("/etc/kubernetes/up", true).unwrap(),
        "/var/lib/kubelet/config.yaml"
    );
    assert_eq!(
        host.resolve("/../../var/lib/kubelet/config.yaml", true)
            .unwrap(),
        "/var/lib/kubelet/config.yaml"
    );
    // A file outside the root with the same path must never be read.
    for h in both(&host) {
        assert_eq!(h.read("/etc/kubernetes/up").unwrap(), b"inside");
        assert_eq!(
            h.metadata("/etc/kubernetes/up").unwrap().resolved,
            "/var/lib/kubelet/config.yaml"
        );
    }
}

#[test]
fn loop_is_reported() {
    let (dir, host) = tree();
    symlink("/etc/b", dir.path().join("etc/a")).unwrap();
    symlink("/etc/a", dir.path().join("etc/b")).unwrap();
    for h in both(&host) {
        assert!(matches!(
            h.read("/etc/a"),
            Err(HostError::SymlinkLoop { .. })
        ));
        assert!(matches!(
            h.metadata("/etc/a"),
            Err(HostError::SymlinkLoop { .. })
        ));
    }
}

#[test]
fn cap_is_enforced() {
    let (dir, host) = tree();
    std::fs::write(dir.path().join("etc/big"), vec![b'a'; 2048]).unwrap();
    for h in both(&host.with_max_read(1024)) {
        assert!(matches!(
            h.read("/etc/big"),
            Err(HostError::TooLarge { limit: 1024, .. })
        ));
    }
}

#[test]
fn missing_and_not_utf8() {
    let (dir, host) = tree();
    std::fs::write(dir.path().join("etc/bin"), [0xff, 0xfe, 0x00]).unwrap();
    for h in both(&host) {
        assert!(matches!(h.read("/nope"), Err(HostError::NotFound { .. })));
        assert!(matches!(
            h.metadata("/nope/x"),
            Err(HostError::NotFound { .. })
        ));
        assert!(matches!(
            h.read_to_string("/etc/bin"),
            Err(HostError::NotUtf8 { .. })
        ));
        assert!(matches!(h.read("/etc"), Err(HostError::NotAFile { .. })));
    }
}

#[test]
fn operator_files_are_regular_capped_and_never_block() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("feed.json");
    std::fs::write(&file, b"{}").unwrap();
    assert_eq!(read_operator_file(&file, 2).unwrap(), b"{}");
    // One byte over the cap, by its size or while reading.
    assert!(matches!(
        read_operator_file(&file, 1),
        Err(HostError::TooLarge { limit: 1, .. })
    ));
    // A symlink to it is followed (a ConfigMap mount is one).
    let link = dir.path().join("link.json");
    symlink(&file, &link).unwrap();
    assert_eq!(read_operator_file(&link, 10).unwrap(), b"{}");
    // A directory and a FIFO (no writer: a blocking open would hang) are refused.
    assert!(matches!(
        read_operator_file(dir.path(), 10),
        Err(HostError::NotAFile { .. })
    ));
    let fifo = dir.path().join("fifo");
    super::make_fifo(&fifo);
    assert!(matches!(
        read_operator_file(&fifo, 10),
        Err(HostError::NotAFile { .. })
    ));
    assert!(matches!(
        read_operator_file(&dir.path().join("missing"), 10),
        Err(HostError::NotFound { .. })
    ));
}

#[test]
fn host_join_and_dirname() {
    assert_eq!(
        host_join("/etc/kubernetes", "pki/ca.crt"),
        "/etc/kubernetes/pki/ca.crt"
    );
    assert_eq!(host_join("/etc", "/abs"), "/abs");
    assert_eq!(
        host_dirname("/etc/kubernetes/kubelet.conf"),
        "/etc/kubernetes"
    );
    assert_eq!(host_dirname("/kubelet.conf"), "/");
}
