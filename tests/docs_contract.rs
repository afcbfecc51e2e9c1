//! Contracts move together: every metric family is documented in docs/metrics.md, the
//! README's two set-up commands are the ones CI and users run, and every link between the
//! documents leads somewhere. (docs/flags.md and docs/controls.md are generated and held to
//! the code by tests/generated_docs.rs.)

mod common;

use common::metrics::exposition_families;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The text of a file of the repository.
fn read(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The bodies of the README's `sh` code blocks, in order.
fn sh_blocks(readme: &str) -> Vec<Vec<&str>> {
    readme
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default().lines().collect())
        .collect()
}

/// The README is a front door: the two set-up commands, each in its own block, the first
/// writing nothing outside the checkout, and the reference in docs/.
#[test]
fn readme_opens_with_the_two_commands() {
    let readme = readme();
    let blocks = sh_blocks(&readme);
    assert_eq!(
        blocks.len(),
        2,
        "exactly two sh blocks, one per command: {blocks:?}"
    );
    assert_eq!(blocks[0].len(), 1, "one command: {:?}", blocks[0]);
    assert_eq!(blocks[1], ["scripts/test.sh"]);
    let first = blocks[0][0];
    assert!(
        first.contains(" serve ") && first.contains("--host-root examples/node"),
        "{first}"
    );
    // Its state (the drift baseline) stays in the checkout, never in $HOME.
    let state = first
        .split("--state-dir ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("the first command names its --state-dir: {first}"));
    assert!(state.starts_with("target/"), "{state}");
    // What they need is said above them.
    let before_test = &readme[..readme.find("```sh\nscripts/test.sh").unwrap()];
    for needed in ["root", "Rust", "1.89", "GB", "minutes", "Linux", "Debian"] {
        assert!(
            readme[..readme.find("```sh\n").unwrap()].contains(needed)
                || before_test.contains(needed),
            "README does not say {needed:?} before the commands"
        );
    }
    assert!(
        readme.contains(&format!("Rust ≥ {}", env!("CARGO_PKG_RUST_VERSION"))),
        "README states the Rust version of Cargo.toml's rust-version ({})",
        env!("CARGO_PKG_RUST_VERSION")
    );
    let ci = read(".ci/run");
    assert!(
        ci.contains("scripts/test.sh"),
        ".ci/run must run the README's test command"
    );
    assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/node/proc")
        .is_dir());
    // A front door, not the reference.
    assert!(
        readme.lines().count() < 200,
        "README has {} lines",
        readme.lines().count()
    );
}

/// Every relative link of README.md and docs/ leads to a file that exists and, with an
/// anchor, to a heading of that file.
#[test]
fn relative_links_resolve() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("examples/node/README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    let mut checked = 0;
    let mut broken: Vec<String> = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file.strip_prefix(root).unwrap().display().to_string();
        for link in text.split("](").skip(1) {
            let Some(target) = link.split(')').next() else {
                continue;
            };
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let dest = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !dest.exists() {
                broken.push(format!("{rel}: link to {target}: no such file"));
                continue;
            }
            // `#<control>`: a placeholder the reader fills in.
            if !anchor.is_empty() && !anchor.contains('<') && dest.is_file() {
                let body = std::fs::read_to_string(&dest).unwrap();
                if !body
                    .lines()
                    .filter(|l| l.starts_with('#'))
                    .any(|h| slug(h) == anchor)
                {
                    broken.push(format!("{rel}: link to {target}: no heading #{anchor}"));
                }
            }
            checked += 1;
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 40, "only {checked} links checked");
}

/// GitHub's anchor of a Markdown heading: lowercase, punctuation dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_metric_family_is_documented() {
    use kubelet_sentinel::evaluate::policy::Policy;
    use kubelet_sentinel::io::host::HostRoot;
    use kubelet_sentinel::observe::ObserveOptions;
    use kubelet_sentinel::publish::metrics::{render, MetricsInput};

    let doc = read("docs/metrics.md");
    let host = HostRoot::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/node")).unwrap();
    let (snapshot, results, duration) = kubelet_sentinel::agent::evaluate_once(
        &host,
        &ObserveOptions::default(),
        &Policy::embedded(),
    );
    // Every drift family present: a baseline, one drifted control, a change seen.
    let drift = kubelet_sentinel::publish::drift::DriftReport {
        baseline: Some(kubelet_sentinel::publish::drift::BaselineInfo {
            created_at: 1.0,
            origin: kubelet_sentinel::publish::drift::Origin::FirstObservation,
            path: "baseline.json".into(),
        }),
        controls: vec![(
            results[0].id,
            kubelet_sentinel::publish::drift::ControlDrift {
                drifted: true,
                regressed: false,
                baseline_status: results[0].status,
                baseline_observed: Some("before".into()),
            },
        )],
        config_drift: Some(true),
        pending_restart: Some(vec!["/etc/kubernetes/kubelet.conf".into()]),
        changes: Some(Default::default()),
        last_change_at: Some(2.0),
        ..Default::default()
    };
    let exposition = render(&MetricsInput {
        node: &snapshot.node,
        snapshot: &snapshot,
        results: &results,
        evaluation_duration: duration,
        evaluated_at: snapshot.taken_at,
        build_version: "test",
        build_revision: "test",
        drift: Some(&drift),
        // One risky pod, so that its family is rendered and must be documented too.
        risky_pods: &[("web".into(), "proxy-1".into(), "host_network")],
        // Every optional family too (kubelet_sentinel_control_info, the probe durations).
        options: kubelet_sentinel::publish::metrics::ExpositionOptions {
            control_states: kubelet_sentinel::publish::metrics::ControlStates::All,
            control_info: true,
            probe_durations: true,
        },
    });
    let names: Vec<String> = exposition_families(&exposition.text).into_keys().collect();
    assert!(
        names.len() >= 9,
        "expected every family in the example node's exposition: {names:?}"
    );
    for name in names {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/metrics.md does not document metric {name}"
        );
    }
}

/// docs/security.md names, for each defence, the test that attacks it
/// (`tests/<file>.rs::<fn>` or `src/<path>.rs::<fn>`): each must exist, and every item of
/// the threat list (issue 13: 1–3, 5–16) has a row.
#[test]
fn every_defence_in_security_md_names_a_test_that_exists() {
    let root = env!("CARGO_MANIFEST_DIR");
    let doc = std::fs::read_to_string(format!("{root}/docs/security.md")).unwrap();
    let mut named = 0;
    for cell in doc.split('`').skip(1).step_by(2) {
        let Some((file, func)) = cell.split_once(".rs::") else {
            continue;
        };
        if !(file.starts_with("tests/") || file.starts_with("src/")) {
            continue;
        }
        let text = std::fs::read_to_string(format!("{root}/{file}.rs"))
            .unwrap_or_else(|e| panic!("docs/security.md names {file}.rs: {e}"));
        assert!(
            text.contains(&format!("fn {func}(")) || text.contains(&format!("fn {func}<")),
            "docs/security.md names {cell}, which does not exist"
        );
        named += 1;
    }
    assert!(named >= 15, "only {named} tests named in docs/security.md");
    for item in [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16] {
        assert!(
            doc.lines().any(|l| l.starts_with(&format!("| {item} |"))),
            "docs/security.md has no row for item {item}"
        );
    }
}
