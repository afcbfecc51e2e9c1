//! Turning the chosen settings into changes on the node: the drop-in, the flag changes
//! placed at their origins, the k3s/RKE2 config drop-in and the unit edits it needs.

use super::dropin::set_merged;
use super::*;

/// The candidates as changes: the drop-in (or k3s file, or flags), placed flag changes,
/// the mode changes.
pub(super) fn build(
    k: &Kubelet,
    candidates: &[Candidate],
    route: &Route,
    facts: &Facts,
    snapshot: &Snapshot,
    opts: &FixOptions,
) -> Built {
    let mut b = Built::default();
    let mut settings: Vec<(&str, &'static str, &Value)> = Vec::new();
    for c in candidates {
        match &c.kind {
            Kind::Settings(kv) => {
                for (key, v) in kv {
                    settings.push((c.id.as_str(), key, v));
                }
            }
            Kind::RemoveFlag(flag) => {
                add_flag(
                    &mut b.flag_changes,
                    FlagChange::Remove {
                        flag: flag.to_string(),
                    },
                    &c.id,
                );
                b.by.entry(c.id.clone()).or_default().insert("flag");
            }
            Kind::Modes(changes) => {
                for m in changes {
                    match b.modes.iter_mut().find(|x| x.path == m.path) {
                        Some(x) => {
                            x.mode = x.mode.or(m.mode);
                            x.owner = x.owner.or(m.owner);
                            if !x.controls.contains(&c.id) {
                                x.controls.push(c.id.clone());
                            }
                        }
                        None => b.modes.push(m.clone()),
                    }
                    let what = if m.mode.is_some() { "chmod" } else { "chown" };
                    b.by.entry(c.id.clone()).or_default().insert(what);
                }
            }
        }
    }
    let minor = k.config.kubelet_minor;
    match route {
        Route::Dropin(path) => {
            if !settings.is_empty() {
                build_dropin(&mut b, k, &settings, path, facts, snapshot);
            }
        }
        Route::Flags => {
            for (id, key, v) in &settings {
                match flag_change_for(k, key, v, minor) {
                    Ok(change) => {
                        add_flag(&mut b.flag_changes, change, id);
                        b.by.entry(id.to_string()).or_default().insert("flag");
                    }
                    Err(why) => b.unplaced.push((id.to_string(), why)),
                }
            }
        }
        Route::K3s(path) => {
            if !settings.is_empty() {
                build_k3s(&mut b, k, &settings, path, facts, opts);
            }
        }
    }
    // Place the flag changes at their origins.
    if !b.flag_changes.is_empty() && !matches!(route, Route::K3s(_)) {
        let (edits, unplaced) = edit_flags(&facts.flag_sources, &b.flag_changes);
        for (change, why) in unplaced {
            for (c, controls) in &b.flag_changes {
                if *c == change {
                    for id in controls {
                        b.unplaced.push((
                            id.clone(),
                            format!(
                                "needs {} on the kubelet's command line, which the fix cannot place: {why}",
                                describe_change(&change)
                            ),
                        ));
                    }
                }
            }
        }
        b.edits.extend(edits);
    }
    b
}

fn add_flag(changes: &mut Vec<(FlagChange, Vec<String>)>, change: FlagChange, id: &str) {
    match changes.iter_mut().find(|(c, _)| *c == change) {
        Some((_, ids)) => {
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
        None => changes.push((change, vec![id.to_string()])),
    }
}

/// `remove --read-only-port`, `set --read-only-port=0`.
pub fn describe_change(c: &FlagChange) -> String {
    match c {
        FlagChange::Remove { flag } => format!("remove --{flag}"),
        FlagChange::Set { flag, value } => format!("set --{flag}={value}"),
    }
}

/// The current text of a file the fix would replace (`Some(None)`: it does not exist);
/// `None` when it exists but cannot be read, each setting then listed as unplaced.
fn existing_text(
    b: &mut Built,
    settings: &[(&str, &'static str, &Value)],
    path: &str,
    facts: &Facts,
) -> Option<Option<String>> {
    match facts.existing.get(path) {
        Some(Ok(t)) => Some(t.clone()),
        Some(Err(e)) => {
            for (id, _, _) in settings {
                b.unplaced.push((
                    id.to_string(),
                    format!(
                        "{path} exists and cannot be read, so it cannot be replaced safely: {e}"
                    ),
                ));
            }
            None
        }
        None => Some(None),
    }
}

fn build_dropin(
    b: &mut Built,
    k: &Kubelet,
    settings: &[(&str, &'static str, &Value)],
    path: &str,
    facts: &Facts,
    snapshot: &Snapshot,
) {
    let Some(before) = existing_text(b, settings, path, facts) else {
        return;
    };
    // A drop-in of the same name (an earlier fix) is the base: its settings stay.
    let mut doc = k
        .config
        .dropin_doc(path)
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut comments: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for (id, key, v) in settings {
        let Some(def) = setting(key) else { continue };
        let p: Vec<String> = def
            .path
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        set_merged(&mut doc, &p, v);
        let ids = comments.entry(p).or_default();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
        b.by.entry(id.to_string()).or_default().insert("dropin");
        if !b.dropin_controls.iter().any(|i| i == id) {
            b.dropin_controls.push(id.to_string());
        }
    }
    let text = render_dropin(&doc, &comments, &snapshot.node);
    // Flags that would still beat the drop-in: removed.
    let extra = ConfigInput {
        path: path.to_string(),
        text: Ok(text.clone()),
    };
    let cfg = k.config.rebuilt_with(k.flags.clone(), Some(extra));
    for (id, key, _) in settings {
        if let Lookup::Known(s) = cfg.get_for(key, k.config.kubelet_minor) {
            if let Source::Flag { flag, .. } = s.source {
                add_flag(&mut b.flag_changes, FlagChange::Remove { flag }, id);
                b.by.entry(id.to_string()).or_default().insert("flag");
            }
        }
    }
    b.edits.push(FileEdit {
        path: path.to_string(),
        before,
        after: text.clone(),
        mode: NEW_FILE_MODE,
        controls: b.dropin_controls.clone(),
        what: format!(
            "KubeletConfiguration drop-in for --config-dir {}",
            k.config.config_dir.clone().unwrap_or_default()
        ),
        then: vec!["restart the kubelet".to_string()],
    });
    b.dropin = Some(DropinPlan {
        path: path.to_string(),
        settings: doc,
        text,
    });
}

fn build_k3s(
    b: &mut Built,
    k: &Kubelet,
    settings: &[(&str, &'static str, &Value)],
    path: &str,
    facts: &Facts,
    _opts: &FixOptions,
) {
    let Some(before) = existing_text(b, settings, path, facts) else {
        return;
    };
    let mut controls = Vec::new();
    let origins: &[FlagOrigin] = k.k3s.as_ref().map_or(&[], |x| x.origins.as_slice());
    // Unit files edited to remove a conflicting `--kubelet-arg`: path → (before, after, controls).
    let mut units: BTreeMap<String, (String, String, Vec<String>)> = BTreeMap::new();
    for (id, key, v) in settings {
        // A `--kubelet-arg` on the k3s/rke2 command line comes after every config file
        // and would still win: it is removed from the unit, or the control is listed.
        let conflicts: Vec<&FlagOrigin> = setting(key)
            .and_then(|d| d.flag)
            .map(|f| {
                origins
                    .iter()
                    .filter(|o| o.flag == f && o.how == OriginHow::K3sCommandLine)
                    .collect()
            })
            .unwrap_or_default();
        let mut placed = true;
        for o in &conflicts {
            let current = match units.get(&o.file) {
                Some((_, after, _)) => Some(after.clone()),
                None => match facts.existing.get(&o.file) {
                    Some(Ok(Some(t))) => Some(t.clone()),
                    _ => None,
                },
            };
            match current.and_then(|t| remove_kubelet_arg(&t, o.line, &o.flag, &o.value)) {
                Some(after) => {
                    let entry = units.entry(o.file.clone()).or_insert_with(|| {
                        let before = match facts.existing.get(&o.file) {
                            Some(Ok(Some(t))) => t.clone(),
                            _ => String::new(),
                        };
                        (before, String::new(), Vec::new())
                    });
                    entry.1 = after;
                    if !entry.2.iter().any(|c| c == id) {
                        entry.2.push(id.to_string());
                    }
                    b.by.entry(id.to_string()).or_default().insert("flag");
                }
                None => {
                    placed = false;
                    b.unplaced.push((
                        id.to_string(),
                        format!(
                            "--kubelet-arg={}={} on the command line ({} line {}) comes after every config.yaml.d file and would still win, and the fix could not remove it there: remove it first",
                            o.flag, o.value, o.file, o.line
                        ),
                    ));
                }
            }
        }
        if !placed {
            continue;
        }
        if !conflicts.is_empty() {
            if let Some(f) = setting(key).and_then(|d| d.flag) {
                b.k3s_cli_removed.push(f.to_string());
            }
        }
        match flag_change_for(k, key, v, k.config.kubelet_minor) {
            Ok(FlagChange::Set { flag, value }) => {
                let arg = format!("{flag}={value}");
                match b.k3s_args.iter_mut().find(|(a, _)| *a == arg) {
                    Some((_, ids)) => ids.push(id.to_string()),
                    None => b.k3s_args.push((arg, vec![id.to_string()])),
                }
                b.by.entry(id.to_string()).or_default().insert("k3s-config");
                if !controls.iter().any(|c| c == id) {
                    controls.push(id.to_string());
                }
            }
            Ok(other) => b.unplaced.push((
                id.to_string(),
                format!("internal: {} is not a kubelet-arg", describe_change(&other)),
            )),
            Err(why) => b.unplaced.push((id.to_string(), why)),
        }
    }
    if b.k3s_args.is_empty() {
        return;
    }
    let text = fix_config_dropin(&b.k3s_args);
    let product = k.k3s.as_ref().map_or("k3s", |x| x.product.as_str());
    for (file, (before, after, ids)) in units {
        let mut then = vec!["systemctl daemon-reload".to_string()];
        if file.starts_with("/usr/lib/") || file.starts_with("/lib/") {
            then.push(format!(
                "a package-owned unit: a {product} upgrade restores it; keep the change in a unit drop-in under /etc/systemd/system instead if upgrades replace it"
            ));
        }
        b.edits.push(FileEdit {
            path: file.clone(),
            before: Some(before),
            after,
            mode: NEW_FILE_MODE,
            controls: ids,
            what: format!("remove the conflicting --kubelet-arg from {product}'s command line"),
            then,
        });
    }
    b.edits.push(FileEdit {
        path: path.to_string(),
        before,
        after: text,
        mode: NEW_FILE_MODE,
        controls,
        what: format!("{product} config drop-in: kubelet-arg+ entries"),
        then: vec![format!("restart {product}")],
    });
}

/// `text` with the word `--kubelet-arg=<flag>=<value>` (or `--kubelet-arg <flag>=<value>`,
/// quoted or not) removed from its 1-based `line`; `None` when it is not there as written.
pub fn remove_kubelet_arg(text: &str, line: usize, flag: &str, value: &str) -> Option<String> {
    let arg = format!("{flag}={value}");
    let forms = [
        format!("--kubelet-arg={arg}"),
        format!("\"--kubelet-arg={arg}\""),
        format!("'--kubelet-arg={arg}'"),
        format!("--kubelet-arg=\"{arg}\""),
        format!("--kubelet-arg='{arg}'"),
        format!("--kubelet-arg {arg}"),
        format!("--kubelet-arg \"{arg}\""),
        format!("--kubelet-arg '{arg}'"),
    ];
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let target = lines.get(line.checked_sub(1)?)?.clone();
    let boundary = |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || c == '\\');
    for form in &forms {
        for (i, _) in target.match_indices(form.as_str()) {
            let end = i + form.len();
            if !boundary(target[..i].chars().next_back()) || !boundary(target[end..].chars().next())
            {
                continue;
            }
            // Drop the word with the blanks before it (at the line's start: after it).
            let before = target[..i].trim_end_matches([' ', '\t']);
            let edited = if before.len() < i || before.is_empty() {
                let rest = if before.is_empty() {
                    target[end..].trim_start_matches([' ', '\t'])
                } else {
                    &target[end..]
                };
                format!("{before}{rest}")
            } else {
                format!("{before}{}", &target[end..])
            };
            let idx = line - 1;
            if edited.trim() == "\\" {
                // Only the continuation was left: the line goes.
                lines.remove(idx);
            } else if edited.trim().is_empty() {
                // The word ended the command: the line goes, and so does the continuation
                // of the line before it.
                lines.remove(idx);
                if let Some(prev) = idx.checked_sub(1).and_then(|i| lines.get_mut(i)) {
                    let body = prev.trim_end();
                    if let Some(kept) = body.strip_suffix('\\') {
                        let nl = if prev.ends_with('\n') { "\n" } else { "" };
                        *prev = format!("{}{nl}", kept.trim_end());
                    }
                }
            } else {
                lines[idx] = edited;
            }
            return Some(lines.concat());
        }
    }
    None
}

/// The change that makes the flag of `key` say `value` (maps: merged into the current
/// value, as a drop-in would merge them, because a flag replaces the whole map).
fn flag_change_for(
    k: &Kubelet,
    key: &str,
    value: &Value,
    minor: Option<u32>,
) -> Result<FlagChange, String> {
    let def = setting(key).ok_or_else(|| format!("internal: unknown setting {key}"))?;
    let flag = def.flag.ok_or_else(|| {
        format!("{key} has no command-line flag, and the kubelet has no usable --config-dir")
    })?;
    let value = match (def.kind, value) {
        (SettingKind::StringMap, Value::Object(add)) => {
            let mut merged = match k.config.get_for(key, minor) {
                Lookup::Known(s) => s.value.as_object().cloned().unwrap_or_default(),
                Lookup::Unknown { .. } => Map::new(),
            };
            for (a, v) in add {
                merged.insert(a.clone(), v.clone());
            }
            Value::Object(merged)
        }
        _ => value.clone(),
    };
    let text = match &value {
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(o) => {
            let sep = if flag_kind(flag) == FlagKind::LangleMap {
                "<"
            } else {
                "="
            };
            o.iter()
                .map(|(a, v)| {
                    format!(
                        "{a}{sep}{}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        }
        Value::Null => String::new(),
    };
    Ok(FlagChange::Set {
        flag: flag.to_string(),
        value: text,
    })
}
