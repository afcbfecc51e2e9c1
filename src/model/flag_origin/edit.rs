//! Placing flag changes at their origins: the text edits of unit files, environment
//! files and MicroK8s' args file, proven by expanding the edited files again.

use super::*;

/// The last index where `needle` appears as a contiguous run of `hay`.
pub(super) fn find_window(hay: &[String], needle: &[String]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| hay[i..i + needle.len()] == *needle)
}

pub(super) fn systemd_origin(
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
pub(super) fn insert_dropin(unit_files: &mut Vec<String>, path: &str) {
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
