//! Where each word of the kubelet's command line comes from on the node: the unit's
//! `ExecStart=`, a variable of an `Environment=` line or an `EnvironmentFile=`
//! (`kubeadm-flags.env`, `/etc/default/kubelet`), MicroK8s' args file, or, on k3s and
//! RKE2, the k3s defaults, a `kubelet-arg` of `config.yaml(.d)` or the command line.
//! Plain data and pure rules: `observe::flag_sources` reads the files into a
//! [`FlagSources`] (each flag occurrence's origin, the files' texts, the command line they
//! expand to); [`edit_flags`] places flag changes at their origins as [`FileEdit`]s and
//! proves each by expanding the edited files again (`model::systemd`). The choices (unit
//! drop-in rather than the packaged unit, where added flags go, per distribution) are in
//! docs/flag-origins.md.

/// How a flag reaches the kubelet's command line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OriginHow {
    /// Written literally on the `ExecStart=` line of the unit or one of its drop-ins.
    ExecStart,
    /// In the value of `Environment=VAR=...` of the unit or a drop-in, expanded as `$VAR`
    /// (or `${VAR}`) on the `ExecStart=` line.
    UnitEnvironment {
        /// The variable (`KUBELET_EXTRA_ARGS`).
        var: String,
    },
    /// In an `EnvironmentFile=` (`kubeadm-flags.env`, `/etc/default/kubelet`,
    /// `/etc/sysconfig/kubelet`) as `VAR="..."`, expanded on the `ExecStart=` line.
    EnvironmentFile {
        /// The variable (`KUBELET_KUBEADM_ARGS`).
        var: String,
    },
    /// A line of MicroK8s' kubelet args file.
    ArgsFile,
    /// k3s/RKE2: set by k3s (or rke2) itself; cannot be edited, only overridden by a
    /// `kubelet-arg`.
    K3sDefault,
    /// k3s/RKE2: a `kubelet-arg` entry of `config.yaml` or a `config.yaml.d/*.yaml` file.
    K3sConfigArg,
    /// k3s/RKE2: a `--kubelet-arg` on the k3s/rke2 command line (the unit's `ExecStart=`).
    K3sCommandLine,
}

/// One flag occurrence and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlagOrigin {
    /// Normalised flag name without dashes (`read-only-port`).
    pub flag: String,
    /// The value as written (`10255`; `true` for a bare boolean).
    pub value: String,
    /// The host path of the file it is written in (empty for [`OriginHow::K3sDefault`]).
    pub file: String,
    /// The 1-based line in `file` (0 when not from a file).
    pub line: usize,
    /// How it reaches the command line.
    pub how: OriginHow,
}

impl FlagOrigin {
    /// A short provenance label for reports: `k3s default`, `config.yaml`,
    /// `--kubelet-arg`, `kubeadm-flags.env`, `ExecStart`.
    pub fn label(&self) -> String {
        let base = self.file.rsplit('/').next().unwrap_or(&self.file);
        match &self.how {
            OriginHow::K3sDefault => "k3s default".to_string(),
            OriginHow::K3sCommandLine => "--kubelet-arg".to_string(),
            OriginHow::K3sConfigArg => base.to_string(),
            OriginHow::ExecStart => format!("ExecStart in {base}"),
            OriginHow::UnitEnvironment { var } | OriginHow::EnvironmentFile { var } => {
                format!("${var} in {base}")
            }
            OriginHow::ArgsFile => base.to_string(),
        }
    }
}

use std::collections::{BTreeMap, BTreeSet};

use crate::model::fix::{FileEdit, FlagChange};
use crate::model::kubelet_config::flags::{flag_kind, FlagKind, Flags};
use crate::model::systemd::{self, DefinedIn, ExecLine, ServiceFiles, Token, VarDef, WordFrom};

/// The name of the unit drop-in a fix writes when a flag on `ExecStart=` or in a unit's
/// `Environment=` must change: `/etc/systemd/system/<unit>.d/90-kubelet-sentinel.conf`.
/// Package-owned files (`/usr/lib/systemd/system/...`) are never edited: a package update
/// would revert the edit, and a drop-in under `/etc` is the place systemd.unit(5) gives the
/// administrator ("drop-in files in /etc take precedence"); deleting it undoes the fix.
pub const UNIT_DROPIN_NAME: &str = "90-kubelet-sentinel.conf";

/// Mode of every file an edit writes (new or rewritten): these files may hold credentials
/// next to the flags, and CIS 4.1.1 asks `600` of the kubelet's unit files.
pub const EDIT_MODE: u32 = 0o600;

/// How the kubelet's flag files are laid out on the node: what [`edit_flags`] needs to
/// expand them again after a change.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layout {
    /// Not known (no unit, unreadable files, k3s/RKE2: see `model::k3s`).
    #[default]
    Unknown,
    /// A systemd service: the unit file and its drop-ins in load order; the kubelet's
    /// words are the expanded `ExecStart=` without its first `skip` and last `tail` words
    /// (`skip` = 1 for argv\[0\]; more when a wrapper such as `rkt run ... -- kubelet`
    /// starts it).
    Systemd {
        /// The unit's name (`kubelet.service`).
        unit: String,
        /// Host paths of the unit file and its drop-ins, in the order systemd loads them.
        unit_files: Vec<String>,
        /// Words of the expanded `ExecStart=` before the kubelet's flags.
        skip: usize,
        /// Words after them.
        tail: usize,
    },
    /// MicroK8s' kubelet args file (`--kubelet-args-file` of kubelite), one flag per line.
    ArgsFile {
        /// Its host path.
        path: String,
    },
}

/// Where the kubelet's flags come from on this node: the files read, every flag
/// occurrence's origin, and the command line those files expand to.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlagSources {
    /// Each flag occurrence of the expanded command line, in order.
    pub origins: Vec<FlagOrigin>,
    /// The files read (host paths).
    pub files: Vec<String>,
    /// Their texts by host path, for edits. Never serialised, never logged: an
    /// environment file may hold a token.
    #[serde(skip)]
    pub texts: BTreeMap<String, String>,
    /// Why something could not be read or followed, and assignments systemd ignores
    /// (file, line, kind; never the text). With `expanded` set and `matches_running`
    /// true, these did not keep the files from being followed.
    pub errors: Vec<String>,
    /// The kubelet's flag words the files expand to (what `Kubelet.flags` parses: argv
    /// after argv\[0\], after `kubelet` for hyperkube, the args file's words for
    /// MicroK8s). `None` when the files could not be expanded.
    pub expanded: Option<Vec<String>>,
    /// Whether `expanded` equals the running kubelet's flag words. When it does not, the
    /// files changed since the kubelet started (or a wrapper hides its flags) and no edit
    /// is placed.
    pub matches_running: bool,
    /// How the files are laid out.
    pub layout: Layout,
}

/// One flag occurrence in a list of words: the word of the flag and, for `--flag value`,
/// the word of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Normalised flag name.
    pub name: String,
    /// Its value (`true` for a bare boolean).
    pub value: String,
    /// Index of the flag's word.
    pub flag_word: usize,
    /// Index of the value's word when it is a separate word.
    pub value_word: Option<usize>,
}

/// The flag occurrences of `words`, as the kubelet's flag parsing reads them
/// ([`Flags::parse`]), with the words each one uses.
pub fn occurrences(words: &[String]) -> Vec<Occurrence> {
    let flags = Flags::parse(words);
    let at: BTreeSet<usize> = flags.occurrences.iter().map(|o| o.position).collect();
    flags
        .occurrences
        .iter()
        .map(|o| {
            let w = &words[o.position];
            let inline = w.trim_start_matches('-').contains('=');
            let next = o.position + 1;
            let consumed = !inline
                && flag_kind(&o.name) != FlagKind::Bool
                && words.get(next).is_some_and(|n| *n == o.value)
                && !at.contains(&next);
            Occurrence {
                name: o.name.clone(),
                value: o.value.clone(),
                flag_word: o.position,
                value_word: consumed.then_some(next),
            }
        })
        .collect()
}

/// The words with the changes applied as the kubelet would need them: `Remove` drops every
/// occurrence, `Set` drops them and adds `--flag=value` at the end.
pub fn apply_to_words(words: &[String], changes: &[FlagChange]) -> Vec<String> {
    let mut out: Vec<String> = words.to_vec();
    for c in changes {
        let occ = occurrences(&out);
        let drop: BTreeSet<usize> = occ
            .iter()
            .filter(|o| o.name == c.flag())
            .flat_map(|o| std::iter::once(o.flag_word).chain(o.value_word))
            .collect();
        out = out
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !drop.contains(i))
            .map(|(_, w)| w)
            .collect();
        if let FlagChange::Set { flag, value } = c {
            out.push(format!("--{flag}={value}"));
        }
    }
    out
}

/// Whether two command lines mean the same to the kubelet: the same flags with the same
/// effective values (pflag's repeat rules), the same positional arguments.
pub fn same_meaning(a: &[String], b: &[String]) -> bool {
    let (fa, fb) = (Flags::parse(a), Flags::parse(b));
    let names =
        |f: &Flags| -> BTreeSet<String> { f.occurrences.iter().map(|o| o.name.clone()).collect() };
    let (na, nb) = (names(&fa), names(&fb));
    na == nb
        && fa.positional == fb.positional
        && fa.errors == fb.errors
        && na.iter().all(|n| fa.value(n) == fb.value(n))
}

/// The host path of the unit drop-in a fix writes for `unit`.
pub fn unit_dropin_path(unit: &str) -> String {
    format!("/etc/systemd/system/{unit}.d/{UNIT_DROPIN_NAME}")
}

/// A systemd service's files, expanded.
#[derive(Debug, Clone)]
struct SystemdWorld {
    svc: ServiceFiles,
    env: BTreeMap<String, VarDef>,
    words: Vec<systemd::Word>,
}

/// Expand a service from the texts (`texts` must hold every unit file; environment files
/// absent from it are missing on the node).
fn systemd_world(
    unit: &str,
    unit_files: &[String],
    texts: &BTreeMap<String, String>,
) -> Result<SystemdWorld, String> {
    let mut sources = Vec::new();
    for f in unit_files {
        let t = texts.get(f).ok_or_else(|| format!("{f}: not read"))?;
        sources.push((f.clone(), t.clone()));
    }
    let svc = systemd::load_service(unit, &sources);
    if let Some(e) = svc.errors.first() {
        return Err(e.clone());
    }
    for f in &svc.env_files {
        if !f.optional && !texts.contains_key(&f.path) {
            return Err(format!(
                "{}:{}: EnvironmentFile={} is missing or unreadable (systemd would not start the service)",
                f.unit_file, f.line, f.path
            ));
        }
    }
    let exec = svc
        .exec
        .as_ref()
        .ok_or_else(|| format!("{unit}: no ExecStart= in effect"))?;
    let env = systemd::effective_env(&svc, texts);
    let words = systemd::expand(exec, &env)?;
    Ok(SystemdWorld { svc, env, words })
}

/// One line of an args file: the words it gives and the byte range of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ArgsLine {
    words: Vec<String>,
    line: usize,
    range: std::ops::Range<usize>,
}

/// The lines of a MicroK8s args file with the words each gives
/// (`kubelet_config::flags::args_file_words`, line by line).
fn args_lines(text: &str) -> Vec<ArgsLine> {
    let mut out = Vec::new();
    let mut off = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let words = crate::model::kubelet_config::flags::args_file_words(raw);
        if !words.is_empty() {
            out.push(ArgsLine {
                words,
                line: i + 1,
                range: off..off + raw.len(),
            });
        }
        off += raw.len();
    }
    out
}

impl FlagSources {
    /// Sources of a kubelet run by a systemd unit. `texts` holds every unit file and the
    /// environment files that exist; `running` is the kubelet's flag words and `lead` the
    /// word of its command line just before them (argv\[0\], or `kubelet` after
    /// `hyperkube`).
    pub fn from_systemd(
        unit: &str,
        unit_files: Vec<String>,
        texts: BTreeMap<String, String>,
        lead: &str,
        running: &[String],
        mut errors: Vec<String>,
    ) -> FlagSources {
        let mut files: Vec<String> = unit_files.clone();
        files.extend(texts.keys().filter(|k| !unit_files.contains(k)).cloned());
        let mut out = FlagSources {
            files,
            layout: Layout::Unknown,
            ..FlagSources::default()
        };
        let world = match systemd_world(unit, &unit_files, &texts) {
            Ok(w) => w,
            Err(e) => {
                errors.push(e);
                out.errors = errors;
                out.texts = texts;
                return out;
            }
        };
        errors.extend(world.svc.warnings.iter().cloned());
        let all: Vec<String> = world.words.iter().map(|w| w.text.clone()).collect();
        // The kubelet's words: everything after argv[0], or a window of a wrapper's
        // command line (`rkt run ... -- kubelet <flags>`): the last place they appear.
        let (skip, tail, matches) = if all.len() > 1 && all[1..] == *running {
            (1, 0, true)
        } else if let Some(start) =
            find_window(&all, running).filter(|s| *s > 1 && all[s - 1] == lead)
        {
            (start, all.len() - start - running.len(), true)
        } else {
            errors.push(format!(
                "the files of {unit} expand to a command line that differs from the running kubelet's (changed since it started, or not the command that runs it)"
            ));
            // The kubelet's words start after the last `lead` word (a wrapper's `kubelet`).
            let start = all
                .iter()
                .rposition(|w| w == lead)
                .map_or(1, |i| i + 1)
                .min(all.len());
            (start, 0, false)
        };
        let window = &world.words[skip..world.words.len() - tail];
        let texts_of_window: Vec<String> = window.iter().map(|w| w.text.clone()).collect();
        for o in occurrences(&texts_of_window) {
            let w = &window[o.flag_word];
            out.origins
                .push(systemd_origin(&world, &texts, &w.from, &o.name, &o.value));
        }
        out.expanded = Some(texts_of_window);
        out.matches_running = matches;
        out.layout = Layout::Systemd {
            unit: unit.to_string(),
            unit_files,
            skip,
            tail,
        };
        out.errors = errors;
        out.texts = texts;
        out
    }

    /// Sources of MicroK8s' kubelet: its args file.
    pub fn from_args_file(path: &str, text: String, running: &[String]) -> FlagSources {
        let lines = args_lines(&text);
        let words: Vec<String> = lines.iter().flat_map(|l| l.words.clone()).collect();
        let mut line_of = Vec::new();
        for l in &lines {
            line_of.extend(std::iter::repeat_n(l.line, l.words.len()));
        }
        let origins = occurrences(&words)
            .into_iter()
            .map(|o| FlagOrigin {
                flag: o.name,
                value: o.value,
                file: path.to_string(),
                line: line_of.get(o.flag_word).copied().unwrap_or(0),
                how: OriginHow::ArgsFile,
            })
            .collect();
        let matches = words == running;
        let mut texts = BTreeMap::new();
        texts.insert(path.to_string(), text);
        FlagSources {
            origins,
            files: vec![path.to_string()],
            texts,
            errors: if matches {
                Vec::new()
            } else {
                vec![format!(
                    "{path} gives other flags than the running kubelet's (changed since it started)"
                )]
            },
            expanded: Some(words),
            matches_running: matches,
            layout: Layout::ArgsFile {
                path: path.to_string(),
            },
        }
    }

    /// The kubelet's words the files would give with `edits` written (what the kubelet's
    /// command line becomes after the restart): the in-memory twin of writing the files
    /// and reading them again. Edits of files that are not flag sources are ignored.
    pub fn expanded_with(&self, edits: &[FileEdit]) -> Result<Vec<String>, String> {
        let mut texts = self.texts.clone();
        for e in edits {
            texts.insert(e.path.clone(), e.after.clone());
        }
        match &self.layout {
            Layout::Unknown => Err("where the kubelet's flags come from is not known".to_string()),
            Layout::ArgsFile { path } => {
                let text = texts.get(path).ok_or_else(|| format!("{path}: not read"))?;
                Ok(args_lines(text).into_iter().flat_map(|l| l.words).collect())
            }
            Layout::Systemd {
                unit,
                unit_files,
                skip,
                tail,
            } => {
                let mut files = unit_files.clone();
                let dropin = unit_dropin_path(unit);
                if edits.iter().any(|e| e.path == dropin) && !files.contains(&dropin) {
                    insert_dropin(&mut files, &dropin);
                }
                let world = systemd_world(unit, &files, &texts)?;
                let end = world
                    .words
                    .len()
                    .checked_sub(*tail)
                    .filter(|e| e >= skip)
                    .ok_or("the edited files expand to fewer words than the wrapper needs")?;
                Ok(world.words[*skip..end]
                    .iter()
                    .map(|w| w.text.clone())
                    .collect())
            }
        }
    }

    /// The origins of one flag.
    pub fn origins_of(&self, flag: &str) -> Vec<&FlagOrigin> {
        self.origins.iter().filter(|o| o.flag == flag).collect()
    }
}

/// The last index where `needle` appears as a contiguous run of `hay`.
fn find_window(hay: &[String], needle: &[String]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| hay[i..i + needle.len()] == *needle)
}

fn systemd_origin(
    world: &SystemdWorld,
    texts: &BTreeMap<String, String>,
    from: &WordFrom,
    flag: &str,
    value: &str,
) -> FlagOrigin {
    let (file, line, how) = match from {
        WordFrom::Exec { token } => {
            let exec = world.svc.exec.as_ref();
            let file = exec.map(|e| e.file.clone()).unwrap_or_default();
            let line = exec
                .and_then(|e| {
                    let t = e.tokens.get(*token)?;
                    Some(e.assignment.line_of(texts.get(&e.file)?, t.raw.start))
                })
                .unwrap_or(0);
            (file, line, OriginHow::ExecStart)
        }
        WordFrom::Var { name, token, .. } => match world.env.get(name) {
            Some(def) => {
                let line = match def.how {
                    DefinedIn::Environment => def.line,
                    DefinedIn::EnvironmentFile => var_tokens(def)
                        .ok()
                        .and_then(|t| t.get(*token).cloned())
                        .and_then(|t| {
                            Some(systemd::line_at(
                                texts.get(&def.file)?,
                                def.base_range(&t.raw).start,
                            ))
                        })
                        .unwrap_or(def.line),
                };
                let how = match def.how {
                    DefinedIn::Environment => OriginHow::UnitEnvironment { var: name.clone() },
                    DefinedIn::EnvironmentFile => OriginHow::EnvironmentFile { var: name.clone() },
                };
                (def.file.clone(), line, how)
            }
            None => (
                String::new(),
                0,
                OriginHow::UnitEnvironment { var: name.clone() },
            ),
        },
    };
    FlagOrigin {
        flag: flag.to_string(),
        value: value.to_string(),
        file,
        line,
        how,
    }
}

fn var_tokens(def: &VarDef) -> Result<Vec<Token>, String> {
    systemd::split_words(&def.value, systemd::VALUE_WORDS)
        .map_err(|e| format!("{}:{}: ${} has {e}", def.file, def.line, def.name))
}

/// Characters a value written by [`edit_flags`] may hold: it is placed into unit files and
/// environment files unquoted, so nothing that quoting, escaping or variables would change
/// (`_` for cipher suite names; `%` for eviction thresholds, doubled where specifiers are
/// expanded).
fn safe_value(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._,:/=<>+@%_-".contains(&b))
}

/// Which text a part of the command line is edited in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Container {
    /// The `ExecStart=` value.
    Exec,
    /// A variable's value.
    Var(String),
    /// An environment file's text (edits already in file offsets).
    File(String),
}

/// Edits planned in one container.
#[derive(Debug, Clone, Default)]
struct ContainerEdits {
    delete: BTreeSet<usize>,
    replace: BTreeMap<usize, String>,
    append: Vec<String>,
}

/// One text edit: replace `range` with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TextEdit {
    range: std::ops::Range<usize>,
    text: String,
}

fn apply_text_edits(text: &str, mut edits: Vec<TextEdit>) -> Result<String, String> {
    edits.sort_by_key(|e| std::cmp::Reverse((e.range.start, e.range.end)));
    let mut out = text.to_string();
    let mut floor = usize::MAX;
    for e in edits {
        if e.range.end > floor && e.range.start != e.range.end {
            return Err("two edits overlap".to_string());
        }
        if e.range.end > out.len()
            || !out.is_char_boundary(e.range.start)
            || !out.is_char_boundary(e.range.end)
        {
            return Err("an edit out of range".to_string());
        }
        out.replace_range(e.range.clone(), &e.text);
        floor = floor.min(e.range.start);
    }
    Ok(out)
}

/// The text edits for one container's planned changes, given its tokens' ranges (in the
/// container's own text) and where appended words go when it has none.
fn container_text_edits(
    ranges: &[std::ops::Range<usize>],
    anchor: usize,
    edits: &ContainerEdits,
) -> Vec<TextEdit> {
    let mut out = Vec::new();
    let deleted: Vec<usize> = edits
        .delete
        .iter()
        .copied()
        .filter(|i| !edits.replace.contains_key(i) && *i < ranges.len())
        .collect();
    // Runs of consecutive deleted tokens: with the whitespace before them (or after, for
    // a run at the start), so no double blank is left.
    let mut i = 0;
    while i < deleted.len() {
        let a = deleted[i];
        let mut b = a;
        while i + 1 < deleted.len() && deleted[i + 1] == b + 1 {
            i += 1;
            b += 1;
        }
        i += 1;
        let range = if a > 0 {
            ranges[a - 1].end..ranges[b].end
        } else if b + 1 < ranges.len() {
            ranges[a].start..ranges[b + 1].start
        } else {
            ranges[a].start..ranges[b].end
        };
        out.push(TextEdit {
            range,
            text: String::new(),
        });
    }
    for (k, t) in &edits.replace {
        if let Some(r) = ranges.get(*k) {
            out.push(TextEdit {
                range: r.clone(),
                text: t.clone(),
            });
        }
    }
    if !edits.append.is_empty() {
        // After the last token that stays, else at the anchor.
        let keep_last = (0..ranges.len()).rev().find(|k| !deleted.contains(k));
        let (at, lead) = match keep_last {
            Some(k) => (ranges[k].end, " "),
            None => (anchor, ""),
        };
        let at = if keep_last.is_none() && !ranges.is_empty() {
            ranges[0].start
        } else {
            at
        };
        out.push(TextEdit {
            range: at..at,
            text: format!("{lead}{}", edits.append.join(" ")),
        });
    }
    out
}

/// A planned change and the controls it is for.
type Change = (FlagChange, Vec<String>);

/// Place flag changes at their origins: the file edits that make the kubelet's flag files
/// expand to the current flags with the changes applied, and the changes that could not
/// be placed, each with the reason.
///
/// - `Remove` deletes every occurrence's words (and a separate value word) where they are
///   written: the value of the variable in an environment file (the file is edited in
///   place, quoting kept), a unit's `Environment=` variable or `ExecStart=` (restated in
///   the unit drop-in [`UNIT_DROPIN_NAME`] under `/etc/systemd/system/<unit>.d/`, which
///   resets `ExecStart=` first; the unit's own files are left as they are), a line of
///   MicroK8s' args file.
/// - `Set` writes the value in place at the last occurrence and removes the others; a flag
///   not on the command line is added where the node's own extra flags live: the variable
///   expanded last on `ExecStart=` (`KUBELET_EXTRA_ARGS` on kubeadm and EKS AL2,
///   `NODEADM_KUBELET_ARGS` on EKS AL2023, `KUBELET_OPTS` on GKE, `KUBELET_FLAGS` on AKS);
///   when no file sets it, `/etc/default/kubelet` or `/etc/sysconfig/kubelet` (created if
///   the unit reads it with `-`), else an `Environment=` in the unit drop-in; with no
///   variable, the end of `ExecStart=` (in the drop-in); a new line of an args file.
/// - A `Remove` of a flag that is not there needs no edit and is not reported.
///
/// Every change is proven before it is kept: the files with the edits are expanded again
/// and must mean the same to the kubelet as the current words with the changes applied
/// ([`apply_to_words`], [`same_meaning`]); a change that does not (a later drop-in that
/// overrides ours, a value that would need quoting) is returned with the reason instead.
pub fn edit_flags(
    sources: &FlagSources,
    changes: &[(FlagChange, Vec<String>)],
) -> (Vec<FileEdit>, Vec<(FlagChange, String)>) {
    let mut refused = Vec::new();
    let Some(words) = sources.expanded.as_ref() else {
        let why = sources.errors.first().map_or_else(
            || "where the kubelet's flags come from is not known".to_string(),
            |e| format!("the kubelet's flag files could not be followed: {e}"),
        );
        return (
            Vec::new(),
            changes
                .iter()
                .map(|(c, _)| (c.clone(), why.clone()))
                .collect(),
        );
    };
    if !sources.matches_running {
        let why = "the kubelet's flag files no longer expand to the running command line (changed since it started?): restart the kubelet or edit them by hand".to_string();
        return (
            Vec::new(),
            changes
                .iter()
                .map(|(c, _)| (c.clone(), why.clone()))
                .collect(),
        );
    }
    let mut accepted: Vec<Change> = Vec::new();
    let mut last_ok: Vec<FileEdit> = Vec::new();
    for (change, controls) in changes {
        if accepted.iter().any(|(c, _)| c.flag() == change.flag()) {
            refused.push((
                change.clone(),
                format!(
                    "--{} is already changed by an earlier change",
                    change.flag()
                ),
            ));
            continue;
        }
        if let FlagChange::Set { value, .. } = change {
            if !safe_value(value) {
                refused.push((
                    change.clone(),
                    "the value would need quoting in the flag files; write it by hand".to_string(),
                ));
                continue;
            }
        }
        let present = occurrences(words).iter().any(|o| o.name == change.flag());
        if !present && matches!(change, FlagChange::Remove { .. }) {
            continue;
        }
        let mut trial = accepted.clone();
        trial.push((change.clone(), controls.clone()));
        match plan(sources, words, &trial) {
            Ok(edits) => {
                accepted = trial;
                last_ok = edits;
            }
            Err(why) => refused.push((change.clone(), why)),
        }
    }
    (last_ok, refused)
}

/// Build and prove the edits for all `changes` at once.
fn plan(
    sources: &FlagSources,
    words: &[String],
    changes: &[Change],
) -> Result<Vec<FileEdit>, String> {
    let expected = apply_to_words(
        words,
        &changes.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(),
    );
    match &sources.layout {
        Layout::Unknown => Err("where the kubelet's flags come from is not known".to_string()),
        Layout::ArgsFile { path } => plan_args_file(sources, path, words, changes, &expected),
        Layout::Systemd {
            unit,
            unit_files,
            skip,
            tail,
        } => plan_systemd(sources, unit, unit_files, *skip, *tail, changes, &expected),
    }
}

fn what_of(change: &FlagChange, place: &str, added: bool) -> String {
    match change {
        FlagChange::Remove { flag } => format!("remove --{flag} from {place}"),
        FlagChange::Set { flag, value } if added => format!("add --{flag}={value} to {place}"),
        FlagChange::Set { flag, value } => format!("set --{flag}={value} in {place}"),
    }
}

fn plan_args_file(
    sources: &FlagSources,
    path: &str,
    words: &[String],
    changes: &[Change],
    expected: &[String],
) -> Result<Vec<FileEdit>, String> {
    let text = sources
        .texts
        .get(path)
        .ok_or_else(|| format!("{path}: not read"))?;
    let lines = args_lines(text);
    // Word index → line index.
    let mut line_of = Vec::new();
    for (k, l) in lines.iter().enumerate() {
        line_of.extend(std::iter::repeat_n(k, l.words.len()));
    }
    let occ = occurrences(words);
    let mut edits = Vec::new();
    let mut appended = Vec::new();
    let mut whats = Vec::new();
    let mut controls = BTreeSet::new();
    for (change, ctl) in changes {
        controls.extend(ctl.iter().cloned());
        let mine: Vec<&Occurrence> = occ.iter().filter(|o| o.name == change.flag()).collect();
        let lines_of = |o: &Occurrence| -> BTreeSet<usize> {
            std::iter::once(o.flag_word)
                .chain(o.value_word)
                .filter_map(|w| line_of.get(w).copied())
                .collect()
        };
        let mut drop: BTreeSet<usize> = BTreeSet::new();
        for o in &mine {
            drop.extend(lines_of(o));
        }
        let mut added = false;
        if let FlagChange::Set { flag, value } = change {
            let line = format!("--{flag}={value}");
            match mine.last().map(|o| lines_of(o)) {
                Some(ls) if ls.len() == 1 => {
                    let k = *ls.iter().next().unwrap_or(&0);
                    drop.remove(&k);
                    let r = lines[k].range.clone();
                    let nl = if text[r.clone()].ends_with('\n') {
                        "\n"
                    } else {
                        ""
                    };
                    edits.push(TextEdit {
                        range: r,
                        text: format!("{line}{nl}"),
                    });
                }
                _ => {
                    appended.push(line);
                    added = true;
                }
            }
        }
        for k in drop {
            edits.push(TextEdit {
                range: lines[k].range.clone(),
                text: String::new(),
            });
        }
        whats.push(what_of(change, path, added));
    }
    if !appended.is_empty() {
        let at = text.len();
        let lead = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        edits.push(TextEdit {
            range: at..at,
            text: format!("{lead}{}\n", appended.join("\n")),
        });
    }
    let after = apply_text_edits(text, edits)?;
    let again: Vec<String> = args_lines(&after)
        .into_iter()
        .flat_map(|l| l.words)
        .collect();
    if !same_meaning(&again, expected) {
        return Err(format!(
            "{path} edited does not give the intended flags (the proof of the edit failed)"
        ));
    }
    Ok(vec![FileEdit {
        path: path.to_string(),
        before: Some(text.clone()),
        after,
        mode: EDIT_MODE,
        controls: controls.into_iter().collect(),
        what: whats.join("; "),
        then: vec![
            "snap restart microk8s.daemon-kubelite (MicroK8s runs the kubelet inside kubelite)"
                .to_string(),
        ],
    }])
}

/// Where appended flags go on a systemd node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AppendTo {
    /// An existing variable (its container).
    Var(String),
    /// A variable no file sets: a new line `NAME="..."` in this environment file (created
    /// when it does not exist).
    NewLine { var: String, file: String },
    /// A variable no file sets, set with `Environment=` in the unit drop-in.
    DropinVar(String),
    /// After this `ExecStart=` token.
    Exec,
}

#[allow(clippy::too_many_arguments)]
fn plan_systemd(
    sources: &FlagSources,
    unit: &str,
    unit_files: &[String],
    skip: usize,
    tail: usize,
    changes: &[Change],
    expected: &[String],
) -> Result<Vec<FileEdit>, String> {
    let world = systemd_world(unit, unit_files, &sources.texts)?;
    let exec = world
        .svc
        .exec
        .as_ref()
        .ok_or_else(|| format!("{unit}: no ExecStart= in effect"))?;
    let end = world
        .words
        .len()
        .checked_sub(tail)
        .filter(|e| *e >= skip)
        .ok_or("the kubelet's words are not where they were")?;
    let window = &world.words[skip..end];
    let texts: Vec<String> = window.iter().map(|w| w.text.clone()).collect();
    let occ = occurrences(&texts);
    let container_of = |w: &systemd::Word| -> (Container, usize) {
        match &w.from {
            WordFrom::Exec { token } => (Container::Exec, *token),
            WordFrom::Var { name, token, .. } => (Container::Var(name.clone()), *token),
        }
    };
    let mut edits: BTreeMap<Container, ContainerEdits> = BTreeMap::new();
    let mut new_lines: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    // Per touched container: what was done, and for which controls.
    let mut notes: BTreeMap<Container, (Vec<String>, BTreeSet<String>)> = BTreeMap::new();
    let target = append_target(&world, exec, skip, end, &sources.texts);
    for (change, ctl) in changes {
        let mine: Vec<&Occurrence> = occ.iter().filter(|o| o.name == change.flag()).collect();
        let mut touched: Vec<(Container, bool)> = Vec::new();
        for (k, o) in mine.iter().enumerate() {
            let last = k + 1 == mine.len();
            let set_here = match change {
                FlagChange::Set { flag, value } if last => Some((flag, value)),
                _ => None,
            };
            match set_here {
                Some((flag, value)) => {
                    let (word, text) = match o.value_word {
                        Some(v) => (v, value.clone()),
                        None => (o.flag_word, format!("--{flag}={value}")),
                    };
                    let (c, t) = container_of(&window[word]);
                    edits.entry(c.clone()).or_default().replace.insert(t, text);
                    touched.push((c, false));
                }
                None => {
                    for wi in std::iter::once(o.flag_word).chain(o.value_word) {
                        let (c, t) = container_of(&window[wi]);
                        edits.entry(c.clone()).or_default().delete.insert(t);
                        touched.push((c, false));
                    }
                }
            }
        }
        if let FlagChange::Set { flag, value } = change {
            if mine.is_empty() {
                let word = format!("--{flag}={value}");
                match &target {
                    AppendTo::Var(v) => {
                        let c = Container::Var(v.clone());
                        edits.entry(c.clone()).or_default().append.push(word);
                        touched.push((c, true));
                    }
                    AppendTo::DropinVar(v) => {
                        let c = Container::Var(v.clone());
                        edits.entry(c.clone()).or_default().append.push(word);
                        touched.push((c, true));
                    }
                    AppendTo::NewLine { var, file } => {
                        new_lines
                            .entry((file.clone(), var.clone()))
                            .or_default()
                            .push(word);
                        touched.push((Container::File(file.clone()), true));
                    }
                    AppendTo::Exec => {
                        edits.entry(Container::Exec).or_default().append.push(word);
                        touched.push((Container::Exec, true));
                    }
                }
            }
        }
        touched.dedup();
        for (c, added) in touched {
            let place = match &c {
                Container::Exec => "ExecStart=".to_string(),
                Container::Var(v) => v.clone(),
                Container::File(f) => f.clone(),
            };
            let n = notes.entry(c).or_default();
            let w = what_of(change, &place, added);
            if !n.0.contains(&w) {
                n.0.push(w);
            }
            n.1.extend(ctl.iter().cloned());
        }
    }

    // Turn container edits into new texts.
    let mut file_texts: BTreeMap<String, String> = BTreeMap::new();
    let mut file_edits: BTreeMap<String, Vec<TextEdit>> = BTreeMap::new();
    let mut file_notes: BTreeMap<String, (Vec<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut dropin_env: Vec<(String, String)> = Vec::new();
    let mut dropin_exec: Option<String> = None;
    let mut dropin_notes: (Vec<String>, BTreeSet<String>) = Default::default();
    let mut var_files: Vec<String> = Vec::new();
    // Environment files edited, with the variables edited in each.
    let mut file_vars: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (c, e) in &edits {
        let note = notes.get(c).cloned().unwrap_or_default();
        match c {
            Container::Exec => {
                let ranges: Vec<_> = exec.tokens.iter().map(|t| t.raw.clone()).collect();
                let anchor = exec.assignment.value.len();
                // Words written on `ExecStart=` go through specifier expansion: `%` is `%%`.
                let mut e = e.clone();
                for t in e.replace.values_mut().chain(e.append.iter_mut()) {
                    *t = t.replace('%', "%%");
                }
                let new = apply_text_edits(
                    &exec.assignment.value,
                    container_text_edits(&ranges, anchor, &e),
                )?;
                dropin_exec = Some(new);
                merge_notes(&mut dropin_notes, note);
            }
            Container::Var(v) => match world.env.get(v) {
                Some(def) => {
                    let toks = var_tokens(def)?;
                    match def.how {
                        DefinedIn::EnvironmentFile => {
                            let ranges: Vec<_> =
                                toks.iter().map(|t| def.base_range(&t.raw)).collect();
                            file_edits
                                .entry(def.file.clone())
                                .or_default()
                                .extend(container_text_edits(&ranges, def.anchor, e));
                            merge_notes(file_notes.entry(def.file.clone()).or_default(), note);
                            file_vars
                                .entry(def.file.clone())
                                .or_default()
                                .insert(v.clone());
                        }
                        DefinedIn::Environment => {
                            let ranges: Vec<_> = toks.iter().map(|t| t.raw.clone()).collect();
                            let new = apply_text_edits(
                                &def.value,
                                container_text_edits(&ranges, def.value.len(), e),
                            )?;
                            dropin_env.push((v.clone(), new));
                            var_files.push(def.file.clone());
                            merge_notes(&mut dropin_notes, note);
                        }
                    }
                }
                None => {
                    // A variable no file sets: `Environment=` in the drop-in.
                    dropin_env.push((v.clone(), e.append.join(" ")));
                    merge_notes(&mut dropin_notes, note);
                }
            },
            Container::File(_) => {}
        }
    }
    for ((file, var), words) in &new_lines {
        let note = notes
            .get(&Container::File(file.clone()))
            .cloned()
            .unwrap_or_default();
        let line = format!("{var}=\"{}\"\n", words.join(" "));
        match sources.texts.get(file) {
            Some(t) => {
                let lead = if t.is_empty() || t.ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                file_edits.entry(file.clone()).or_default().push(TextEdit {
                    range: t.len()..t.len(),
                    text: format!("{lead}{line}"),
                });
            }
            None => {
                file_texts.insert(
                    file.clone(),
                    format!(
                        "# Written by kubelet-sentinel fix: extra kubelet flags, read by {unit} (EnvironmentFile=-{file}).\n{line}"
                    ),
                );
            }
        }
        merge_notes(file_notes.entry(file.clone()).or_default(), note);
        file_vars
            .entry(file.clone())
            .or_default()
            .insert(var.clone());
    }
    for (file, e) in file_edits {
        let before = sources
            .texts
            .get(&file)
            .ok_or_else(|| format!("{file}: not read"))?;
        file_texts.insert(file, apply_text_edits(before, e)?);
    }

    // The unit drop-in.
    let dropin_path = unit_dropin_path(unit);
    let mut new_unit_files = unit_files.to_vec();
    let mut all_texts = sources.texts.clone();
    for (f, t) in &file_texts {
        all_texts.insert(f.clone(), t.clone());
    }
    let mut out = Vec::new();
    if dropin_exec.is_some() || !dropin_env.is_empty() {
        let mut body = String::new();
        body.push_str(&format!(
            "# Written by kubelet-sentinel fix for: {}\n# {}\n[Service]\n",
            dropin_notes
                .1
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            dropin_notes.0.join("; ")
        ));
        for (v, val) in &dropin_env {
            body.push_str(&systemd::quote_environment(v, val));
            body.push('\n');
        }
        if let Some(x) = &dropin_exec {
            body.push_str("ExecStart=\nExecStart=");
            body.push_str(x);
            body.push('\n');
        }
        let before = sources.texts.get(&dropin_path).cloned();
        let text = match &before {
            Some(b) if !b.is_empty() => {
                format!("{}{}\n{body}", b, if b.ends_with('\n') { "" } else { "\n" })
            }
            _ => body,
        };
        insert_dropin(&mut new_unit_files, &dropin_path);
        all_texts.insert(dropin_path.clone(), text.clone());
        let mut then = vec![
            "systemctl daemon-reload".to_string(),
            format!("systemctl restart {unit}"),
        ];
        then.extend(var_files.iter().filter_map(|f| distribution_note(f, None)));
        then.dedup();
        out.push(FileEdit {
            path: dropin_path.clone(),
            before,
            after: text,
            mode: EDIT_MODE,
            controls: dropin_notes.1.into_iter().collect(),
            what: format!(
                "unit drop-in (the unit's own files are left as they are): {}",
                dropin_notes.0.join("; ")
            ),
            then,
        });
    }
    for (file, text) in &file_texts {
        let (what, ctl) = file_notes.remove(file).unwrap_or_default();
        let mut then = vec![format!("systemctl restart {unit}")];
        match file_vars.get(file) {
            Some(vars) => then.extend(vars.iter().filter_map(|v| distribution_note(file, Some(v)))),
            None => then.extend(distribution_note(file, None)),
        }
        then.dedup();
        out.push(FileEdit {
            path: file.clone(),
            before: sources.texts.get(file).cloned(),
            after: text.clone(),
            mode: EDIT_MODE,
            controls: ctl.into_iter().collect(),
            what: what.join("; "),
            then,
        });
    }

    // The proof: the files as edited expand to the intended command line.
    let again = systemd_world(unit, &new_unit_files, &all_texts)
        .map_err(|e| format!("the edited files cannot be expanded: {e}"))?;
    let end = again
        .words
        .len()
        .checked_sub(tail)
        .filter(|e| *e >= skip)
        .ok_or("the edited files expand to fewer words than the wrapper needs")?;
    let got: Vec<String> = again.words[skip..end]
        .iter()
        .map(|w| w.text.clone())
        .collect();
    let before_words: Vec<String> = world.words[..skip].iter().map(|w| w.text.clone()).collect();
    let after_words: Vec<String> = again.words[..skip].iter().map(|w| w.text.clone()).collect();
    if before_words != after_words || !same_meaning(&got, expected) {
        let later = new_unit_files
            .iter()
            .skip_while(|f| **f != dropin_path)
            .skip(1)
            .cloned()
            .collect::<Vec<_>>();
        let why = if later.is_empty() {
            "the edited files do not expand to the intended flags (the proof of the edit failed)"
                .to_string()
        } else {
            format!(
                "the edited files do not expand to the intended flags: a later drop-in ({}) overrides {UNIT_DROPIN_NAME}",
                later.join(", ")
            )
        };
        return Err(why);
    }
    Ok(out)
}

fn merge_notes(into: &mut (Vec<String>, BTreeSet<String>), from: (Vec<String>, BTreeSet<String>)) {
    for w in from.0 {
        if !into.0.contains(&w) {
            into.0.push(w);
        }
    }
    into.1.extend(from.1);
}

/// Put the drop-in at its place in the load order: after the unit file, among the
/// drop-ins by file name; a drop-in of the same name elsewhere is masked by `/etc`.
fn insert_dropin(unit_files: &mut Vec<String>, path: &str) {
    let name = path.rsplit('/').next().unwrap_or(path);
    let base = |p: &String| p.rsplit('/').next().unwrap_or(p).to_string();
    let first = unit_files.first().cloned();
    let mut dropins: Vec<String> = unit_files
        .iter()
        .skip(1)
        .filter(|p| base(p) != name)
        .cloned()
        .collect();
    dropins.push(path.to_string());
    dropins.sort_by_key(base);
    unit_files.clear();
    unit_files.extend(first);
    unit_files.extend(dropins);
}

/// Where flags that are not on the command line yet are added.
fn append_target(
    world: &SystemdWorld,
    exec: &ExecLine,
    skip: usize,
    end: usize,
    texts: &BTreeMap<String, String>,
) -> AppendTo {
    // The last `$NAME` word of ExecStart= among the tokens that give the kubelet's words
    // (after the wrapper's, if any): the variable with the highest precedence (the last
    // value of a scalar flag wins). Tokens of empty variables give no word, so the range
    // is bounded by the words around the kubelet's.
    let lo = match skip.checked_sub(1).and_then(|i| world.words.get(i)) {
        Some(w) => w.from.exec_token() + 1,
        None => exec.argv0 + 1,
    };
    let hi = world
        .words
        .get(end)
        .map_or(exec.tokens.len(), |w| w.from.exec_token());
    let var = exec
        .tokens
        .get(lo.min(hi)..hi)
        .unwrap_or(&[])
        .iter()
        .rev()
        .filter_map(|t| t.text.strip_prefix('$'))
        .find(|n| systemd::env_name_is_valid(n))
        .map(str::to_string);
    let Some(var) = var.filter(|_| !exec.no_env) else {
        return AppendTo::Exec;
    };
    if world.env.contains_key(&var) {
        return AppendTo::Var(var);
    }
    // The administrator's own environment file, when the unit reads one.
    let own = world
        .svc
        .env_files
        .iter()
        .rev()
        .find(|f| f.path == "/etc/default/kubelet" || f.path == "/etc/sysconfig/kubelet");
    match own {
        Some(f) if texts.contains_key(&f.path) || f.optional => AppendTo::NewLine {
            var,
            file: f.path.clone(),
        },
        _ => AppendTo::DropinVar(var),
    }
}

/// What else must change for an edit of `file` to last, by distribution.
fn distribution_note(file: &str, var: Option<&str>) -> Option<String> {
    let base = file.rsplit('/').next().unwrap_or(file);
    match (file, var) {
        ("/var/lib/kubelet/kubeadm-flags.env", _) => Some(
            "kubeadm writes /var/lib/kubelet/kubeadm-flags.env on `kubeadm init`/`join` (and may on `kubeadm upgrade`): make the same change in the kubeadm configuration's nodeRegistration.kubeletExtraArgs".to_string(),
        ),
        ("/etc/eks/kubelet/environment", _) => Some(
            "EKS AL2023: nodeadm regenerates /etc/eks/kubelet/environment at boot from the NodeConfig: make the same change in the NodeConfig's spec.kubelet.flags (user data, or /etc/eks/nodeadm.d/)".to_string(),
        ),
        ("/etc/default/kubelet", Some("KUBELET_OPTS")) => Some(
            "GKE: /etc/default/kubelet is rewritten at boot: the change does not survive a reboot; change the node pool's kubelet configuration instead".to_string(),
        ),
        ("/etc/default/kubelet", Some("KUBELET_FLAGS")) => Some(
            "AKS: /etc/default/kubelet is rewritten when the node is reimaged or upgraded: use AKS custom node configuration for a lasting change".to_string(),
        ),
        _ if base == "10-kubelet-args.conf" || base == "30-kubelet-extra-args.conf" => Some(format!(
            "EKS AL2: bootstrap.sh wrote {file} when the node joined: a replaced node gets the launch template's bootstrap arguments again; change them there too"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
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
        let (edits, refused) =
            edit_flags(&s, &[rm("read-only-port"), set("anonymous-auth", "false")]);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(edits.len(), 1);
        assert_eq!(
            edits[0].after,
            "A='--a=1'\nB=\"--x='y z' --anonymous-auth=false\"   \n"
        );
    }

    #[test]
    fn separate_value_words_and_values_in_place() {
        let unit =
            "[Service]\nExecStart=/bin/kubelet --config /c \\\n  --read-only-port 10255 --v=2\n";
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
        let unit =
            "[Service]\nEnvironment=L=a=b\nExecStart=/bin/kubelet --node-labels=${L} --v=2\n";
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
        let unit =
            "[Service]\nEnvironment=A=--v=1\nEnvironmentFile=/e\nExecStart=/bin/kubelet $A\n";
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
}
