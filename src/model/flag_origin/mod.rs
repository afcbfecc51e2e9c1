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

mod edit;
#[cfg(test)]
mod tests;

pub use edit::edit_flags;
use edit::{find_window, insert_dropin, systemd_origin};
