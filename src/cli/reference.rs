//! docs/flags.md, generated from the command line itself (clap's introspection), so that
//! the reference cannot drift from the flags (tests/generated_docs.rs compares it with
//! the committed file; `UPDATE_DOCS=1` rewrites it).
//!
//! Generic over the command tree: every command that runs (a leaf: `serve`, `check`,
//! `baseline show`, ...) gets a table of the flags it accepts, global ones included, as
//! its `--help` lists them. A flag that several commands accept with the same meaning is
//! listed once, in a first table, with the commands that take it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One flag as the reference shows it: every column of its row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    flag: String,
    env: String,
    default: String,
    meaning: String,
}

/// The commands that run (`serve`, `baseline show`, ...) with their `about` text and
/// flags, in the order clap lists them.
fn leaves(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, String, Vec<Row>)>) {
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let path = if prefix.is_empty() {
            sub.get_name().to_string()
        } else {
            format!("{prefix} {}", sub.get_name())
        };
        if sub.has_subcommands() {
            leaves(sub, &path, out);
        } else {
            let about = sub.get_about().map(one_line).unwrap_or_default();
            let rows = sub.get_arguments().filter_map(row).collect();
            out.push((path, about, rows));
        }
    }
}

/// The row of one argument; `None` for `--help` and `--version`.
fn row(a: &clap::Arg) -> Option<Row> {
    let long = a.get_long()?;
    if matches!(long, "help" | "version") {
        return None;
    }
    let values: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    let takes_value = a.get_num_args().is_some_and(|n| n.takes_values());
    let value = if !takes_value {
        String::new()
    } else if !values.is_empty() {
        values.join("|")
    } else {
        a.get_value_names()
            .map(|names| {
                names
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| a.get_id().as_str().to_uppercase())
    };
    let optional = a.get_num_args().is_some_and(|n| n.min_values() == 0);
    let flag = match (value.is_empty(), optional) {
        (true, _) => format!("`--{long}`"),
        (false, true) => format!("`--{long}[={value}]`"),
        (false, false) => format!("`--{long} {value}`"),
    };
    let env = a
        .get_env()
        .map(|e| format!("`{}`", e.to_string_lossy()))
        .unwrap_or_default();
    let default = a
        .get_default_values()
        .iter()
        .map(|v| format!("`{}`", v.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(", ");
    let meaning = a
        .get_long_help()
        .or_else(|| a.get_help())
        .map(one_line)
        .unwrap_or_default();
    Some(Row {
        flag: cell(&flag),
        env,
        default: cell(&default),
        meaning: cell(&meaning),
    })
}

/// Help text on one line (clap keeps a doc comment's paragraphs apart with newlines).
fn one_line(s: &clap::builder::StyledStr) -> String {
    s.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text for a Markdown table cell: a `|` would end the cell (one inside backticks too).
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn table(out: &mut String, rows: &[(&Row, Option<String>)]) {
    let with_commands = rows.iter().any(|(_, c)| c.is_some());
    if with_commands {
        out.push_str("| flag | env | default | commands | meaning |\n|---|---|---|---|---|\n");
    } else {
        out.push_str("| flag | env | default | meaning |\n|---|---|---|---|\n");
    }
    for (r, commands) in rows {
        match commands {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {c} | {} |",
                    r.flag, r.env, r.default, r.meaning
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    r.flag, r.env, r.default, r.meaning
                );
            }
        }
    }
}

/// docs/flags.md for `cmd` (the whole command line: `Cli::command()`).
pub fn flags_markdown(mut cmd: clap::Command) -> String {
    // Propagates the global flags to every subcommand, as `--help` shows them.
    cmd.build();
    let name = cmd.get_name().to_string();
    let mut commands = Vec::new();
    leaves(&cmd, "", &mut commands);

    // Which commands take each row (same flag, same meaning).
    let mut takers: BTreeMap<&Row, Vec<&str>> = BTreeMap::new();
    for (path, _, rows) in &commands {
        for r in rows {
            takers.entry(r).or_default().push(path);
        }
    }
    let shared = |r: &Row| takers.get(r).is_some_and(|c| c.len() > 1);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Flags\n\n<!-- Generated from the command line (src/cli/reference.rs); do not edit. \
         `UPDATE_DOCS=1 cargo test --test generated_docs` rewrites it. -->\n\n\
         Every flag of `{name}`, by command, as each command's `--help` lists it. A flag \
         given both on the command line and in its environment variable takes the command \
         line's value. Durations are Go-style (`30s`, `1m30s`)."
    );
    out.push_str("\n## Commands\n\n| command | what it does |\n|---|---|\n");
    for (path, about, _) in &commands {
        let _ = writeln!(out, "| `{name} {path}` | {} |", cell(about));
    }

    // Shared rows, in the order of their first appearance.
    let mut seen: Vec<&Row> = Vec::new();
    for (_, _, rows) in &commands {
        for r in rows {
            if shared(r) && !seen.contains(&r) {
                seen.push(r);
            }
        }
    }
    if !seen.is_empty() {
        out.push_str("\n## Flags of several commands\n\n");
        let rows: Vec<(&Row, Option<String>)> = seen
            .iter()
            .map(|r| {
                let c = takers.get(r).map(|c| c.join(", ")).unwrap_or_default();
                (*r, Some(c))
            })
            .collect();
        table(&mut out, &rows);
    }
    for (path, about, rows) in &commands {
        let own: Vec<(&Row, Option<String>)> = rows
            .iter()
            .filter(|r| !shared(r))
            .map(|r| (r, None))
            .collect();
        let _ = writeln!(out, "\n## `{name} {path}`\n\n{about}\n");
        if own.is_empty() {
            out.push_str("No flags of its own.\n");
        } else {
            table(&mut out, &own);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    /// A small command line with a global flag, a shared meaning and a nested command.
    #[derive(Parser)]
    #[command(name = "tool")]
    struct T {
        /// Shared by all.
        #[arg(long, global = true, env = "T_ROOT", default_value = "/")]
        root: String,
        #[command(subcommand)]
        cmd: C,
    }

    #[derive(Subcommand)]
    enum C {
        /// Runs | for ever.
        Run {
            /// Wait this long.
            #[arg(long, default_value = "1s")]
            every: String,
        },
        /// Nested.
        #[command(subcommand)]
        Db(D),
    }

    #[derive(Subcommand)]
    enum D {
        /// Show it.
        Show,
        /// Accept it.
        Accept {
            /// Really?
            #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
            force: bool,
        },
    }

    #[test]
    fn every_leaf_command_and_flag_is_listed_once() {
        let md = flags_markdown(T::command());
        // Leaves, nested ones by their full path; not the group `db` itself.
        for c in ["`tool run`", "`tool db show`", "`tool db accept`"] {
            assert!(md.contains(&format!("| {c} |")), "{c}: {md}");
            assert!(md.contains(&format!("## {c}")), "{c}: {md}");
        }
        assert!(!md.contains("`tool db` |"), "{md}");
        // The global flag once, with its env twin, default and every command taking it.
        let root: Vec<&str> = md.lines().filter(|l| l.contains("--root")).collect();
        assert_eq!(
            root,
            ["| `--root ROOT` | `T_ROOT` | `/` | run, db show, db accept | Shared by all |"]
        );
        assert!(
            md.contains("| `--every EVERY` |  | `1s` | Wait this long |"),
            "{md}"
        );
        assert!(
            md.contains("| `--force[=true\\|false]` |  | `false` | Really? |"),
            "{md}"
        );
        // A `|` in a help text cannot break the table; `show` has nothing of its own.
        assert!(md.contains("Runs \\| for ever"), "{md}");
        assert!(
            md.contains("## `tool db show`\n\nShow it\n\nNo flags of its own."),
            "{md}"
        );
    }
}
