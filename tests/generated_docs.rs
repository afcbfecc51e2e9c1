//! The generated references in docs/ are what the code generates: docs/flags.md from the
//! command line (clap), docs/controls.md from the catalogue. A difference fails with a diff;
//! `UPDATE_DOCS=1 cargo test --test generated_docs` rewrites the files.

use clap::CommandFactory;
use kubelet_sentinel::cli::args::Cli;
use kubelet_sentinel::cli::reference::flags_markdown;
use kubelet_sentinel::evaluate::catalogue;
use kubelet_sentinel::publish::controls_doc::controls_markdown;

/// Compare `generated` with the committed `docs/<name>`, or rewrite it with `UPDATE_DOCS=1`.
fn check(name: &str, generated: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&path, generated).unwrap();
        eprintln!("rewrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    // A line diff: what the committed file has (-) and what the code generates (+).
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = generated.lines().collect();
    let mut diff = String::new();
    for l in old.iter().filter(|l| !new.contains(l)) {
        diff.push_str(&format!("- {l}\n"));
    }
    for l in new.iter().filter(|l| !old.contains(l)) {
        diff.push_str(&format!("+ {l}\n"));
    }
    if diff.is_empty() {
        diff = "(the same lines in another order or with other blank lines)\n".into();
    }
    panic!(
        "docs/{name} differs from what the code generates; run `UPDATE_DOCS=1 cargo test --features standin --test generated_docs` and commit it:\n{diff}"
    );
}

#[test]
fn docs_flags_md_is_generated_from_the_command_line() {
    let md = flags_markdown(Cli::command());
    // Every flag of every command is in it, with its env twin.
    let mut cmd = Cli::command();
    cmd.build();
    let mut stack = vec![&cmd];
    while let Some(c) = stack.pop() {
        stack.extend(c.get_subcommands());
        for a in c.get_arguments() {
            let Some(long) = a.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            assert!(md.contains(&format!("`--{long}")), "--{long}");
            if let Some(env) = a.get_env() {
                assert!(
                    md.contains(&format!("`{}`", env.to_string_lossy())),
                    "{long}"
                );
            }
        }
    }
    check("flags.md", &md);
}

#[test]
fn docs_controls_md_is_generated_from_the_catalogue() {
    check("controls.md", &controls_markdown(&catalogue()));
}
