//! The architecture, kept true: which layer may use which (docs/architecture.md draws it).
//!
//! Every `crate::<module>` path in `src/` (in `use` lines and inline) is checked against
//! the rules below, and so are the words that mean I/O. A test module (`#[cfg(test)]`,
//! inline or in its own file such as `tls/tests.rs`) may build its fixtures with the file
//! system, so the I/O rule reads production code only; the layer rule reads everything.

use std::path::{Path, PathBuf};

/// The layers, bottom first, and what each may use besides itself.
const LAYERS: &[(&str, &[&str])] = &[
    // Plain data and the kubelet's pure rules.
    ("model", &[]),
    // Bounded, timed I/O primitives: the host root, the operator's files, the API client.
    ("io", &["model"]),
    // The only producer of a Snapshot: reads the host, the kubelet's sockets, the API.
    ("observe", &["model", "io"]),
    // Pure judgement: Snapshot + Policy -> results.
    ("evaluate", &["model"]),
    // What leaves the process: metrics, report, drift state, Events, the HTTP server.
    ("publish", &["model", "io", "evaluate"]),
    // The wiring (the serve loop, the command line): may use everything.
    ("agent", &["model", "io", "observe", "evaluate", "publish"]),
    (
        "cli",
        &["model", "io", "observe", "evaluate", "publish", "agent"],
    ),
];

/// Words that mean I/O, and the layers allowed to say them.
const IO_WORDS: &[(&str, &[&str])] = &[
    ("std::fs", &["io", "observe", "publish", "cli"]),
    ("File::open", &["io", "observe", "publish", "cli"]),
    ("rustix::", &["io", "observe", "publish"]),
    ("procfs::", &["observe"]),
    ("HostRoot", &["io", "observe", "agent", "cli"]),
    ("tokio::net", &["observe", "publish", "agent"]),
    ("std::net::Tcp", &["observe", "publish", "agent"]),
    ("hyper::client", &["observe"]),
    ("hyper_util::client", &["observe"]),
    ("kube::Client", &["io", "observe", "publish", "agent"]),
    ("kube::Api", &["io", "observe", "publish"]),
    ("kube::api::Api", &["io", "observe", "publish"]),
    ("std::process::Command", &["observe"]),
    ("tokio::process", &["observe"]),
];

/// The wiring at the top may do anything: it is where the layers meet.
const TOP: &[&str] = &["agent", "cli"];

/// Whether `code` says `word` as a path of its own (`kube::Client`, not
/// `crate::io::kube::ClientError`, whose `kube` is this crate's module).
fn says(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        !code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c == ':' || c.is_ascii_alphanumeric() || c == '_')
    })
}

fn layer_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a line: without its `//` comment (doc comments name other layers freely).
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match line.find("//") {
        // Not inside a string (good enough for this code base: no `"//"` in paths).
        Some(i) if !line[..i].contains('"') => &line[..i],
        _ => line,
    }
}

/// The top-level modules a line names as `crate::<module>`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
        rest = after;
    }
    // `use crate::{a, b}` names several.
    if let Some(i) = line.find("crate::{") {
        for part in line[i + "crate::{".len()..].split([',', '}']) {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Which lines of a file belong to an item under `#[cfg(test)]`: the attribute, and the
/// item it applies to — one line for a declaration (`mod tests;`, `pub mod testing;`), or
/// from its opening line to the `}` at the same indentation (rustfmt's layout, which CI
/// enforces). Only that item: code after it is production code again.
fn test_lines(text: &str) -> Vec<bool> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![false; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim_start().starts_with("#[cfg(test)]") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out[i] = true;
            i += 1;
            // Further attributes of the same item.
            while i < lines.len() && lines[i].trim_start().starts_with("#[") {
                out[i] = true;
                i += 1;
            }
            if i < lines.len() {
                out[i] = true;
                if code(lines[i]).trim_end().ends_with('{') {
                    let close = format!("{indent}}}");
                    i += 1;
                    while i < lines.len() && lines[i] != close {
                        out[i] = true;
                        i += 1;
                    }
                    if i < lines.len() {
                        out[i] = true;
                    }
                }
            }
        }
        i += 1;
    }
    out
}

/// The files of test modules declared apart (`#[cfg(test)] mod tests;` in `foo/mod.rs`
/// is `foo/tests.rs`), with the files under them.
fn test_module_files(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).expect("read source");
        // A file's child modules live beside `mod.rs`, else in the directory named after it.
        let dir = match f.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs" | "main.rs") => f.parent().expect("a parent").to_path_buf(),
            _ => f.with_extension(""),
        };
        let mut cfg_test = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("#[cfg(test)]") {
                cfg_test = true;
                continue;
            }
            if line.starts_with("#[") {
                continue;
            }
            let decl = line.strip_prefix("pub ").unwrap_or(line);
            if let (true, Some(name)) = (cfg_test, decl.strip_prefix("mod ")) {
                if let Some(name) = name.strip_suffix(';') {
                    out.push(dir.join(format!("{name}.rs")));
                    out.push(dir.join(name));
                }
            }
            cfg_test = false;
        }
    }
    files
        .iter()
        .filter(|f| out.iter().any(|t| f.starts_with(t)))
        .cloned()
        .collect()
}

struct Violation(String);

fn check() -> Vec<Violation> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let test_files = test_module_files(&files);
    let mut out = Vec::new();
    for f in &files {
        let layer = layer_of(f);
        if matches!(layer.as_str(), "lib" | "main") {
            continue;
        }
        let Some((_, allowed)) = LAYERS.iter().find(|(l, _)| *l == layer) else {
            out.push(Violation(format!(
                "{}: module `{layer}` is in no layer (add it to LAYERS and to docs/architecture.md)",
                f.display()
            )));
            continue;
        };
        let text = std::fs::read_to_string(f).expect("read source");
        let whole_file_is_test = test_files.contains(f);
        let test_lines = test_lines(&text);
        for (n, line) in text.lines().enumerate() {
            let in_tests = whole_file_is_test || test_lines[n];
            let code = code(line);
            for used in crate_paths(code) {
                if used != layer && !allowed.contains(&used.as_str()) {
                    out.push(Violation(format!(
                        "{}:{}: `{layer}` may not use `{used}`: {}",
                        f.display(),
                        n + 1,
                        line.trim()
                    )));
                }
            }
            if in_tests {
                continue;
            }
            for (word, layers) in IO_WORDS {
                if says(code, word)
                    && !TOP.contains(&layer.as_str())
                    && !layers.contains(&layer.as_str())
                {
                    out.push(Violation(format!(
                        "{}:{}: `{word}` (I/O) in `{layer}`: {}",
                        f.display(),
                        n + 1,
                        line.trim()
                    )));
                }
            }
        }
    }
    out
}

#[test]
fn no_layer_uses_a_layer_above_it_and_only_observe_reads_the_host() {
    let v = check();
    assert!(
        v.is_empty(),
        "{} layering violation(s):\n{}",
        v.len(),
        v.iter()
            .map(|v| v.0.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_rules_catch_an_upward_import() {
    // The checker itself: a model line naming observe, and an evaluate line reading a file.
    assert_eq!(crate_paths("use crate::observe::net;"), ["observe"]);
    assert_eq!(
        crate_paths("use crate::{model::snapshot, publish::drift};"),
        ["model", "publish"]
    );
    assert_eq!(code("// crate::observe in a comment"), "");
    assert!(says("let c: kube::Client = x;", "kube::Client"));
    assert!(!says("use crate::io::kube::ClientError;", "kube::Client"));
    assert!(says("std::fs::read(p)", "std::fs"));
    let (_, model_may) = LAYERS.iter().find(|(l, _)| *l == "model").unwrap();
    assert!(!model_may.contains(&"observe"));
    let (_, evaluate_may) = LAYERS.iter().find(|(l, _)| *l == "evaluate").unwrap();
    assert!(!evaluate_may.contains(&"observe") && !evaluate_may.contains(&"io"));
    let (_, fs) = IO_WORDS.iter().find(|(w, _)| *w == "std::fs").unwrap();
    assert!(!fs.contains(&"evaluate") && !fs.contains(&"model"));
    // A `#[cfg(test)]` item is test code, and only that item: production code after a
    // test-only declaration or block is checked again.
    let text = [
        "#[cfg(test)]",
        "pub mod testing;",
        "fn f() {",
        "    std::fs::read(p);",
        "}",
        "#[cfg(test)]",
        "mod tests {",
        "    fn t() {",
        "        std::fs::read(p);",
        "    }",
        "}",
        "fn after() {}",
        "impl X {",
        "    #[cfg(test)]",
        "    #[allow(dead_code)]",
        "    fn nested() {",
        "        std::fs::read(p);",
        "    }",
        "    fn kept() {}",
        "}",
    ]
    .join("\n");
    assert_eq!(
        test_lines(&text),
        [
            true, true, false, false, false, // the declaration, then f
            true, true, true, true, true, true, // the tests block
            false, false, // after, impl X
            true, true, true, true, true, // the nested test fn
            false, false, // kept, the impl's end
        ]
    );
    // A test module in its own file is test code; the production file beside it is not.
    let files: Vec<PathBuf> = ["rbac/mod.rs", "rbac/tests.rs", "cluster_view.rs"]
        .iter()
        .map(|f| src().join("evaluate").join(f))
        .collect();
    let tests = test_module_files(&files);
    assert_eq!(tests, [src().join("evaluate/rbac/tests.rs")]);
}

#[test]
fn docs_architecture_md_names_every_layer_and_only_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).expect("read doc");
    for (layer, _) in LAYERS {
        assert!(
            doc.contains(&format!("| `{layer}/`")) || doc.contains(&format!("`{layer}/`,")),
            "docs/architecture.md has no row for the layer `{layer}`"
        );
    }
    let mut named = 0;
    for cell in doc.split('`').skip(1).step_by(2) {
        if let Some(path) = cell.strip_prefix("src/") {
            assert!(
                src().join(path).exists(),
                "docs/architecture.md names {cell}, which does not exist"
            );
            named += 1;
        }
    }
    assert!(
        named >= 10,
        "only {named} files named in docs/architecture.md"
    );
}
