//! systemd unit files as systemd reads them, for the kubelet's `[Service]`: where each word
//! of the `ExecStart=` command line comes from (the line itself, an `Environment=` variable
//! or an `EnvironmentFile=`), kept with its position in the text so that a fix can remove
//! or change exactly that word. Pure: the caller reads the files (`observe::flag_sources`).
//!
//! The rules, each from systemd's own source and manuals:
//! - **Unit file syntax** (systemd.syntax(7); `config_parse` in src/shared/conf-parser.c):
//!   lines starting with `#` or `;` are comments, also between continuation lines; a line
//!   ending in a backslash continues on the next one and the backslash becomes a space;
//!   `Key=Value` with whitespace around both trimmed; only the `[Service]` section matters.
//! - **Drop-ins** (systemd.unit(5)): the unit file first, then every `<unit>.d/*.conf` sorted
//!   by file name across the unit directories, a name in a higher-precedence directory
//!   masking the same name below (the caller hands them over in that order).
//! - **`ExecStart=`** (systemd.service(5) "Command lines"; `config_parse_exec` in
//!   src/core/load-fragment.c): an empty assignment resets the list; words are split with
//!   `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)` (quotes, C escapes), then unit
//!   specifiers are expanded in each word (`unit_full_printf`); the first word may carry the
//!   prefixes `-@+!:` (`@`: the next word is argv\[0\]; `:`: no variable expansion); a lone
//!   `;` separates commands.
//! - **Variables in `ExecStart=`** (systemd.service(5); `replace_env_argv` in
//!   src/basic/env-util.c): a word that is exactly `$NAME` becomes the variable's value split
//!   at whitespace with quotes removed (`strv_split_full(..., EXTRACT_RELAX|EXTRACT_UNQUOTE)`),
//!   zero words when unset; `${NAME}` inside a word is replaced as is (one word); `$$` is a
//!   `$`; `$NAME` inside a longer word is left alone.
//! - **`Environment=`** (systemd.exec(5); `config_parse_environ`): the words of the value,
//!   each `NAME=value`, unquoted and C-unescaped, specifiers expanded; a later assignment of
//!   the same name replaces the earlier one; an empty `Environment=` resets the list.
//! - **`EnvironmentFile=`** (systemd.exec(5); `config_parse_unit_env_file`): one absolute
//!   path per assignment (specifiers expanded), `-` in front: a missing file is ignored; an
//!   empty assignment resets the list. The files are read in order, a later file's
//!   variable replacing an earlier one, and **variables from files override
//!   `Environment=`** (`exec_spawn`/`build_environment` in src/core/execute.c merge
//!   `context->environment` first and the files' variables last).
//! - **Environment file syntax** (`parse_env_file_internal` in src/basic/env-file.c):
//!   `NAME=value` lines, `#`/`;` comment lines, single quotes literal, double quotes with
//!   `\"`, `\\`, `` \` ``, `\$` and backslash-newline unescaped, a backslash outside quotes
//!   taking the next character literally, trailing whitespace of an unquoted value dropped;
//!   invalid names are ignored (`strv_env_clean`).
//!
//! Errors name the file, the line and the kind of problem, never the text (a unit or an
//! environment file may hold a token).

use std::collections::BTreeMap;

/// Largest logical line systemd accepts (`LONG_LINE_MAX` in src/basic/fileio.h: 1 MiB).
const LONG_LINE_MAX: usize = 1 << 20;

/// Most words one `ExecStart=` may expand to before we stop (a defence, not a systemd rule).
pub const MAX_WORDS: usize = 4096;

/// Most bytes one `ExecStart=` may expand to (Linux's `ARG_MAX` is 2 MiB with the
/// environment; a kubelet's command line is a few KiB). A variable expanded many times
/// must not make the agent build gigabytes.
pub const MAX_EXPANDED_BYTES: usize = 1 << 20;

/// Characters systemd splits words at (`WHITESPACE` in src/basic/string-util.h).
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// One `Key=Value` of a unit file's `[Service]` section, on one logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The key (`ExecStart`).
    pub key: String,
    /// The value, continuation lines joined (each trailing backslash replaced by a space).
    pub value: String,
    /// For each byte of `value`, its offset in the file's text.
    pub map: Vec<usize>,
    /// The 1-based line the assignment starts on.
    pub line: usize,
}

impl Assignment {
    /// The 1-based file line of byte `i` of the value.
    pub fn line_of(&self, text: &str, i: usize) -> usize {
        let off = self.map.get(i).copied().unwrap_or(0);
        line_at(text, off)
    }
}

/// systemd's unit search path, in precedence order (systemd.unit(5), "Unit File Load
/// Path"): where the kubelet's unit and its drop-ins are looked for.
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The 1-based line of byte offset `off` in `text`.
pub fn line_at(text: &str, off: usize) -> usize {
    let end = off.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

/// The `[Service]` assignments of one unit file or drop-in, in order.
pub fn parse_unit_file(path: &str, text: &str) -> Result<Vec<Assignment>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut section = String::new();
    // The logical line being assembled: bytes and their file offsets.
    let mut cur: Vec<u8> = Vec::new();
    let mut cur_map: Vec<usize> = Vec::new();
    let mut cur_line = 0usize;
    let mut continuing = false;
    let mut pos = 0usize;
    let mut lineno = 0usize;
    while pos < bytes.len() || continuing {
        if pos >= bytes.len() {
            // A continuation at the end of the file ends the line there.
            finish_line(path, &cur, &cur_map, cur_line, &mut section, &mut out)?;
            break;
        }
        lineno += 1;
        let start = pos;
        let end = bytes[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |i| pos + i);
        pos = end + 1;
        let mut line_end = end;
        if line_end > start && bytes[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        let first = bytes[start..line_end]
            .iter()
            .position(|b| !is_ws(*b))
            .map(|i| bytes[start + i]);
        // Comments are skipped, also in the middle of continuation lines (systemd.syntax(7)).
        if matches!(first, Some(b'#' | b';')) {
            continue;
        }
        if !continuing {
            cur.clear();
            cur_map.clear();
            cur_line = lineno;
        }
        // Is the last backslash unescaped? (`\\` at the end is not a continuation.)
        let mut escaped = false;
        for &b in &bytes[start..line_end] {
            escaped = if escaped { false } else { b == b'\\' };
        }
        let body_end = if escaped { line_end - 1 } else { line_end };
        for (i, &b) in bytes[start..body_end].iter().enumerate() {
            cur.push(b);
            cur_map.push(start + i);
        }
        if cur.len() > LONG_LINE_MAX {
            return Err(format!(
                "{path}:{cur_line}: line longer than systemd accepts (1 MiB)"
            ));
        }
        if escaped {
            cur.push(b' ');
            cur_map.push(body_end);
            continuing = true;
            continue;
        }
        continuing = false;
        finish_line(path, &cur, &cur_map, cur_line, &mut section, &mut out)?;
        cur.clear();
        cur_map.clear();
    }
    Ok(out)
}

fn finish_line(
    path: &str,
    cur: &[u8],
    map: &[usize],
    line: usize,
    section: &mut String,
    out: &mut Vec<Assignment>,
) -> Result<(), String> {
    let Some(s) = cur.iter().position(|b| !is_ws(*b)) else {
        return Ok(());
    };
    let e = cur.iter().rposition(|b| !is_ws(*b)).map_or(s, |i| i + 1);
    let l = &cur[s..e];
    if l.first() == Some(&b'[') {
        if l.last() != Some(&b']') {
            return Err(format!("{path}:{line}: invalid section header"));
        }
        *section = String::from_utf8_lossy(&l[1..l.len() - 1]).into_owned();
        return Ok(());
    }
    if section != "Service" {
        return Ok(());
    }
    let Some(eq) = l.iter().position(|b| *b == b'=') else {
        return Err(format!("{path}:{line}: assignment without '='"));
    };
    let key = String::from_utf8_lossy(&l[..eq]).trim().to_string();
    let mut vs = eq + 1;
    while vs < l.len() && is_ws(l[vs]) {
        vs += 1;
    }
    let value = String::from_utf8_lossy(&l[vs..]).into_owned();
    if value.len() != l.len() - vs {
        return Err(format!("{path}:{line}: not UTF-8"));
    }
    out.push(Assignment {
        key,
        value,
        map: map[s + vs..e].to_vec(),
        line,
    });
    Ok(())
}

/// One word split out of a string, with the range of the string it was read from (quotes
/// and escapes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The word, unquoted and unescaped.
    pub text: String,
    /// Where it was written in the string it was split from.
    pub raw: std::ops::Range<usize>,
}

/// How [`split_words`] reads a string (the `EXTRACT_*` flags of systemd's
/// `extract_first_word` in src/basic/extract-word.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extract {
    /// `EXTRACT_CUNESCAPE`: C escapes (`\n`, `\x41`, `\"`); otherwise a backslash takes the
    /// next character literally.
    pub cunescape: bool,
    /// `EXTRACT_RELAX`: an unterminated quote or a trailing backslash is accepted.
    pub relax: bool,
}

/// `ExecStart=` and `Environment=` words (`EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE`).
pub const UNIT_WORDS: Extract = Extract {
    cunescape: true,
    relax: false,
};

/// A `$NAME` value split into words (`EXTRACT_UNQUOTE|EXTRACT_RELAX`).
pub const VALUE_WORDS: Extract = Extract {
    cunescape: false,
    relax: true,
};

/// Split `s` into words as `extract_first_word` with `EXTRACT_UNQUOTE` does, repeatedly.
/// The error names the kind of problem only.
pub fn split_words(s: &str, how: Extract) -> Result<Vec<Token>, &'static str> {
    match split_words_partial(s, how) {
        (words, None) => Ok(words),
        (_, Some(e)) => Err(e),
    }
}

/// [`split_words`], also giving the words read before a problem (systemd keeps the
/// `Environment=` assignments before a syntax error: `config_parse_environ`).
pub fn split_words_partial(s: &str, how: Extract) -> (Vec<Token>, Option<&'static str>) {
    let mut out = Vec::new();
    let e = split_into(s, how, &mut out).err();
    (out, e)
}

fn split_into(s: &str, how: Extract, out: &mut Vec<Token>) -> Result<(), &'static str> {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            return Ok(());
        }
        let start = i;
        let mut word: Vec<u8> = Vec::new();
        let mut quote: Option<u8> = None;
        while i < b.len() {
            let c = b[i];
            if quote.is_none() && is_ws(c) {
                break;
            }
            if Some(c) == quote {
                quote = None;
                i += 1;
                continue;
            }
            if quote.is_none() && (c == b'\'' || c == b'"') {
                quote = Some(c);
                i += 1;
                continue;
            }
            if c == b'\\' {
                i += 1;
                if i >= b.len() {
                    if how.relax {
                        break;
                    }
                    return Err("a backslash at the end of the value");
                }
                if how.cunescape {
                    let (bytes, used) = cunescape_one(&b[i..]).ok_or("an invalid escape")?;
                    word.extend_from_slice(&bytes);
                    i += used;
                } else {
                    word.push(b[i]);
                    i += 1;
                }
                continue;
            }
            word.push(c);
            i += 1;
        }
        if quote.is_some() && !how.relax {
            return Err("an unterminated quote");
        }
        let text = String::from_utf8(word).map_err(|_| "an escape that is not UTF-8")?;
        out.push(Token {
            text,
            raw: start..i,
        });
        if out.len() > MAX_WORDS {
            return Err("too many words");
        }
    }
}

/// One C escape after a backslash (`cunescape_one` in src/basic/escape.c): the bytes it
/// stands for and how many input bytes it used.
fn cunescape_one(s: &[u8]) -> Option<(Vec<u8>, usize)> {
    let c = *s.first()?;
    let simple = match c {
        b'a' => Some(7u8),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(11),
        b'\\' | b'"' | b'\'' => Some(c),
        b's' => Some(b' '),
        _ => None,
    };
    if let Some(v) = simple {
        return Some((vec![v], 1));
    }
    let hex = |d: &[u8]| -> Option<u32> {
        let t = std::str::from_utf8(d).ok()?;
        u32::from_str_radix(t, 16).ok()
    };
    match c {
        b'x' => {
            let v = hex(s.get(1..3)?)?;
            // A NUL is refused, like systemd does.
            (v != 0).then(|| (vec![u8::try_from(v).unwrap_or(0)], 3))
        }
        b'u' | b'U' => {
            let n = if c == b'u' { 4 } else { 8 };
            let v = hex(s.get(1..1 + n)?)?;
            let ch = char::from_u32(v).filter(|c| *c != '\0')?;
            Some((ch.to_string().into_bytes(), 1 + n))
        }
        b'0'..=b'7' => {
            let d = s.get(0..3)?;
            if !d.iter().all(|x| (b'0'..=b'7').contains(x)) {
                return None;
            }
            let v =
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0');
            (v != 0 && v < 256).then(|| (vec![u8::try_from(v).unwrap_or(0)], 3))
        }
        _ => None,
    }
}

/// What the unit specifiers stand for (systemd.unit(5) "Specifiers"). Only the ones that
/// follow from the unit's name or are fixed for the system manager are known; a specifier
/// that depends on the host (`%H`, `%m`, `%b`, `%v`...) is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Specifiers {
    /// The unit's full name (`kubelet.service`).
    pub unit: String,
}

impl Specifiers {
    /// Expand the specifiers of one word (`unit_full_printf` in src/core/unit-printf.c).
    pub fn expand(&self, word: &str) -> Result<String, String> {
        if !word.contains('%') {
            return Ok(word.to_string());
        }
        let (prefix, instance, suffix) = self.parts();
        let mut out = String::with_capacity(word.len());
        let mut chars = word.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(s) = chars.next() else {
                return Err("a lone % at the end of a word".to_string());
            };
            let v: String = match s {
                '%' => "%".into(),
                'n' => self.unit.clone(),
                'N' => format!("{prefix}{}", instance.map_or(String::new(), |i| format!("@{i}"))),
                'p' | 'P' => prefix.to_string(),
                'i' | 'I' => instance.unwrap_or("").to_string(),
                'j' | 'J' => prefix.rsplit('-').next().unwrap_or(prefix).to_string(),
                'f' => format!("/{}", instance.unwrap_or(prefix)),
                't' => "/run".into(),
                'S' => "/var/lib".into(),
                'C' => "/var/cache".into(),
                'L' => "/var/log".into(),
                'E' => "/etc".into(),
                'T' => "/tmp".into(),
                'V' => "/var/tmp".into(),
                'h' => "/root".into(),
                'u' => "root".into(),
                'U' | 'G' => "0".into(),
                'g' => "root".into(),
                's' => "/bin/sh".into(),
                other => {
                    return Err(format!(
                        "specifier %{other} depends on the host or is unknown (the {suffix} unit's word cannot be resolved from its files)"
                    ))
                }
            };
            out.push_str(&v);
        }
        Ok(out)
    }

    /// (prefix, instance, type suffix) of the unit name.
    fn parts(&self) -> (&str, Option<&str>, &str) {
        let (stem, suffix) = self.unit.rsplit_once('.').unwrap_or((&self.unit, ""));
        match stem.split_once('@') {
            Some((p, i)) => (p, Some(i), suffix),
            None => (stem, None, suffix),
        }
    }
}

/// Whether `name` is a valid environment variable name (`env_name_is_valid`: bash's
/// characters, not starting with a digit).
pub fn env_name_is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Where a variable's value is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefinedIn {
    /// An `Environment=` assignment of a unit file: the value is the unescaped word after
    /// `NAME=` (`raw` offsets of its tokens are offsets in `value`).
    Environment,
    /// An `EnvironmentFile=`: `map` gives, for each byte of the value, the range of the
    /// file's text it was read from (token offsets map through it).
    EnvironmentFile,
}

/// A variable's effective definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarDef {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The file it is written in (host path).
    pub file: String,
    /// The 1-based line of the assignment.
    pub line: usize,
    /// How it is written.
    pub how: DefinedIn,
    /// For an `EnvironmentFile=` value: each byte's range in the file's text. Empty for
    /// `Environment=` (the value is its own text).
    pub map: Vec<(usize, usize)>,
    /// For an `EnvironmentFile=` value: the offset in the file where text appended to the
    /// value lands (after its last byte, or inside empty quotes).
    pub anchor: usize,
}

impl VarDef {
    /// A range of the value, as a range of the text it is edited in (the file's text for
    /// an environment file, the value itself for `Environment=`).
    pub fn base_range(&self, r: &std::ops::Range<usize>) -> std::ops::Range<usize> {
        match self.how {
            DefinedIn::Environment => r.clone(),
            DefinedIn::EnvironmentFile => {
                let s = self.map.get(r.start).map_or(self.anchor, |m| m.0);
                let e = if r.end == 0 {
                    s
                } else {
                    self.map.get(r.end - 1).map_or(self.anchor, |m| m.1)
                };
                s..e
            }
        }
    }
}

/// One `EnvironmentFile=` of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileRef {
    /// The absolute path.
    pub path: String,
    /// Written with `-`: a missing file is ignored.
    pub optional: bool,
    /// The unit file that names it.
    pub unit_file: String,
    /// The line there.
    pub line: usize,
}

/// The effective `ExecStart=` of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecLine {
    /// The unit file it is written in.
    pub file: String,
    /// The assignment (value and offsets).
    pub assignment: Assignment,
    /// Its words as written (before variable expansion; specifiers already expanded).
    pub tokens: Vec<Token>,
    /// Variables are not expanded (`:` prefix).
    pub no_env: bool,
    /// Index of the token that is argv\[0\] (1 with the `@` prefix).
    pub argv0: usize,
}

/// The `[Service]` settings that build the command line, after every unit file and drop-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFiles {
    /// The effective `ExecStart=`, if any.
    pub exec: Option<ExecLine>,
    /// `Environment=` variables in effect, by name.
    pub environment: BTreeMap<String, VarDef>,
    /// `EnvironmentFile=` entries in effect, in order.
    pub env_files: Vec<EnvFileRef>,
    /// Problems that keep the unit from loading as written (file, line, kind; never the
    /// text).
    pub errors: Vec<String>,
    /// Assignments systemd ignores with a warning (an `Environment=` word with a syntax
    /// error or an invalid name, a relative `EnvironmentFile=`): ignored here too.
    pub warnings: Vec<String>,
}

/// Read the unit's files in load order (the unit file, then the drop-ins sorted by name):
/// `(host path, text)`.
pub fn load_service(unit: &str, files: &[(String, String)]) -> ServiceFiles {
    let spec = Specifiers {
        unit: unit.to_string(),
    };
    let mut out = ServiceFiles::default();
    for (path, text) in files {
        let assignments = match parse_unit_file(path, text) {
            Ok(a) => a,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        for a in assignments {
            match a.key.as_str() {
                "ExecStart" => {
                    if a.value.is_empty() {
                        out.exec = None;
                        continue;
                    }
                    if out.exec.is_some() {
                        out.errors.push(format!(
                            "{path}:{}: a second ExecStart= without a reset (only Type=oneshot allows it; the kubelet's unit is not one)",
                            a.line
                        ));
                        continue;
                    }
                    match exec_line(path, &a, &spec) {
                        Ok(e) => out.exec = Some(e),
                        Err(e) => out.errors.push(e),
                    }
                }
                "Environment" => {
                    if a.value.is_empty() {
                        out.environment.clear();
                        continue;
                    }
                    // The words before a syntax error count; the rest is ignored.
                    let (words, bad) = split_words_partial(&a.value, UNIT_WORDS);
                    if let Some(e) = bad {
                        out.warnings.push(format!(
                            "{path}:{}: Environment= has {e}: systemd ignores the rest of the line",
                            a.line
                        ));
                    }
                    for w in words {
                        let word = match spec.expand(&w.text) {
                            Ok(x) => x,
                            Err(e) => {
                                out.warnings.push(format!(
                                    "{path}:{}: {e}; systemd ignores the word",
                                    a.line
                                ));
                                continue;
                            }
                        };
                        let Some((name, value)) = word.split_once('=') else {
                            out.warnings.push(format!(
                                "{path}:{}: an Environment= word without '=' (ignored by systemd)",
                                a.line
                            ));
                            continue;
                        };
                        if !env_name_is_valid(name) {
                            out.warnings.push(format!(
                                "{path}:{}: an invalid variable name (ignored by systemd)",
                                a.line
                            ));
                            continue;
                        }
                        out.environment.insert(
                            name.to_string(),
                            VarDef {
                                name: name.to_string(),
                                value: value.to_string(),
                                file: path.clone(),
                                line: a.line_of(text, w.raw.start),
                                how: DefinedIn::Environment,
                                map: Vec::new(),
                                anchor: 0,
                            },
                        );
                    }
                }
                "EnvironmentFile" => {
                    if a.value.is_empty() {
                        out.env_files.clear();
                        continue;
                    }
                    let (optional, p) = match a.value.strip_prefix('-') {
                        Some(p) => (true, p),
                        None => (false, a.value.as_str()),
                    };
                    let p = match spec.expand(p) {
                        Ok(p) => p,
                        Err(e) => {
                            out.warnings
                                .push(format!("{path}:{}: {e}; systemd ignores it", a.line));
                            continue;
                        }
                    };
                    if !p.starts_with('/') {
                        out.warnings.push(format!(
                            "{path}:{}: EnvironmentFile= is not an absolute path (ignored by systemd)",
                            a.line
                        ));
                        continue;
                    }
                    out.env_files.push(EnvFileRef {
                        path: p,
                        optional,
                        unit_file: path.clone(),
                        line: a.line,
                    });
                }
                _ => {}
            }
        }
    }
    out
}

fn exec_line(path: &str, a: &Assignment, spec: &Specifiers) -> Result<ExecLine, String> {
    let mut tokens = split_words(&a.value, UNIT_WORDS)
        .map_err(|e| format!("{path}:{}: ExecStart= has {e}", a.line))?;
    // A lone unquoted `;` separates commands (config_parse_exec).
    if tokens.iter().any(|t| &a.value[t.raw.clone()] == ";") {
        return Err(format!(
            "{path}:{}: ExecStart= holds several commands (';'), which the agent does not follow",
            a.line
        ));
    }
    let first = tokens
        .first_mut()
        .ok_or_else(|| format!("{path}:{}: ExecStart= has no command", a.line))?;
    let mut no_env = false;
    let mut argv0 = 0;
    let mut rest = first.text.as_str();
    loop {
        match rest.as_bytes().first() {
            Some(b'-' | b'+' | b'!') => {}
            Some(b'@') => argv0 = 1,
            Some(b':') => no_env = true,
            Some(b'|') => {
                return Err(format!(
                "{path}:{}: ExecStart= runs through a shell ('|'), which the agent does not follow",
                a.line
            ))
            }
            _ => break,
        }
        rest = &rest[1..];
    }
    first.text = rest.to_string();
    for t in &mut tokens {
        t.text = spec
            .expand(&t.text)
            .map_err(|e| format!("{path}:{}: {e}", a.line))?;
    }
    if tokens.len() <= argv0 {
        return Err(format!("{path}:{}: ExecStart= has no argv[0]", a.line));
    }
    Ok(ExecLine {
        file: path.to_string(),
        assignment: a.clone(),
        tokens,
        no_env,
        argv0,
    })
}

/// The assignments of an environment file (`parse_env_file_internal`), each valid name's
/// last value, with the byte ranges the value was read from.
pub fn parse_env_file(path: &str, text: &str) -> Vec<VarDef> {
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        PreKey,
        Key,
        PreValue,
        Value,
        ValueEscape,
        Single,
        Double,
        DoubleEscape,
        Comment,
        CommentEscape,
    }
    let b = text.as_bytes();
    let mut out: Vec<VarDef> = Vec::new();
    let mut state = S::PreKey;
    let mut key: Vec<u8> = Vec::new();
    let mut key_line = 1usize;
    let mut line = 1usize;
    let mut value: Vec<u8> = Vec::new();
    let mut map: Vec<(usize, usize)> = Vec::new();
    let mut anchor = 0usize;
    // Length of `value` without its trailing unquoted whitespace.
    let mut keep = 0usize;
    let mut keep_anchor = 0usize;
    let push = |out: &mut Vec<VarDef>,
                key: &[u8],
                value: &[u8],
                map: &[(usize, usize)],
                key_line: usize,
                anchor: usize| {
        let name = String::from_utf8_lossy(key).trim_end().to_string();
        let Ok(v) = std::str::from_utf8(value) else {
            return;
        };
        if !env_name_is_valid(&name) {
            return;
        }
        out.push(VarDef {
            name,
            value: v.to_string(),
            file: path.to_string(),
            line: key_line,
            how: DefinedIn::EnvironmentFile,
            map: map.to_vec(),
            anchor,
        });
    };
    for (i, &c) in b.iter().enumerate() {
        let nl = c == b'\n' || c == b'\r';
        match state {
            S::PreKey => {
                if c == b'#' || c == b';' {
                    state = S::Comment;
                } else if !is_ws(c) {
                    state = S::Key;
                    key.clear();
                    key.push(c);
                    key_line = line;
                }
            }
            S::Key => {
                if nl {
                    state = S::PreKey;
                } else if c == b'=' {
                    state = S::PreValue;
                    value.clear();
                    map.clear();
                    anchor = i + 1;
                    keep = 0;
                    keep_anchor = anchor;
                } else {
                    key.push(c);
                }
            }
            S::PreValue => {
                if nl {
                    state = S::PreKey;
                    value.truncate(keep);
                    map.truncate(keep);
                    push(&mut out, &key, &value, &map, key_line, keep_anchor);
                } else if c == b'\'' {
                    state = S::Single;
                    anchor = i + 1;
                } else if c == b'"' {
                    state = S::Double;
                    anchor = i + 1;
                } else if c == b'\\' {
                    state = S::ValueEscape;
                } else if !is_ws(c) {
                    state = S::Value;
                    value.push(c);
                    map.push((i, i + 1));
                    anchor = i + 1;
                    keep = value.len();
                    keep_anchor = anchor;
                } else if value.is_empty() {
                    anchor = i + 1;
                    keep_anchor = anchor;
                }
            }
            S::Value => {
                if nl {
                    state = S::PreKey;
                    value.truncate(keep);
                    map.truncate(keep);
                    push(&mut out, &key, &value, &map, key_line, keep_anchor);
                } else if c == b'\\' {
                    state = S::ValueEscape;
                } else {
                    value.push(c);
                    map.push((i, i + 1));
                    if !is_ws(c) {
                        keep = value.len();
                        anchor = i + 1;
                        keep_anchor = anchor;
                    }
                }
            }
            S::ValueEscape => {
                state = S::Value;
                if !nl {
                    value.push(c);
                    map.push((i - 1, i + 1));
                    keep = value.len();
                    anchor = i + 1;
                    keep_anchor = anchor;
                }
            }
            S::Single => {
                if c == b'\'' {
                    state = S::PreValue;
                    keep = value.len();
                    keep_anchor = anchor;
                } else {
                    value.push(c);
                    map.push((i, i + 1));
                    anchor = i + 1;
                    keep = value.len();
                    keep_anchor = anchor;
                }
            }
            S::Double => {
                if c == b'"' {
                    state = S::PreValue;
                    keep = value.len();
                    keep_anchor = anchor;
                } else if c == b'\\' {
                    state = S::DoubleEscape;
                } else {
                    value.push(c);
                    map.push((i, i + 1));
                    anchor = i + 1;
                    keep = value.len();
                    keep_anchor = anchor;
                }
            }
            S::DoubleEscape => {
                state = S::Double;
                if matches!(c, b'"' | b'\\' | b'`' | b'$') {
                    value.push(c);
                    map.push((i - 1, i + 1));
                } else if c != b'\n' {
                    value.push(b'\\');
                    map.push((i - 1, i));
                    value.push(c);
                    map.push((i, i + 1));
                }
                anchor = i + 1;
                keep = value.len();
                keep_anchor = anchor;
            }
            S::Comment => {
                if c == b'\\' {
                    state = S::CommentEscape;
                } else if nl {
                    state = S::PreKey;
                }
            }
            S::CommentEscape => {
                state = if nl { S::PreKey } else { S::Comment };
            }
        }
        if c == b'\n' {
            line += 1;
        }
    }
    match state {
        S::PreValue | S::Value | S::ValueEscape => {
            value.truncate(keep);
            map.truncate(keep);
            push(&mut out, &key, &value, &map, key_line, keep_anchor);
        }
        S::Single | S::Double | S::DoubleEscape => {
            // An unterminated quote runs to the end of the file.
            push(&mut out, &key, &value, &map, key_line, anchor);
        }
        _ => {}
    }
    // A later assignment of a name replaces an earlier one (linear, not a scan per line:
    // the file may hold many thousands of lines).
    let mut seen = std::collections::BTreeSet::new();
    let mut last: Vec<VarDef> = out
        .into_iter()
        .rev()
        .filter(|d| seen.insert(d.name.clone()))
        .collect();
    last.reverse();
    last
}

/// Where one word of the expanded command line was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordFrom {
    /// Token `token` of the `ExecStart=` line (possibly with `${NAME}` inside).
    Exec {
        /// Index in [`ExecLine::tokens`].
        token: usize,
    },
    /// Token `token` of the value of `$NAME`, expanded as a word of its own.
    Var {
        /// The variable.
        name: String,
        /// Index in the value's words ([`split_words`] with [`VALUE_WORDS`]).
        token: usize,
        /// Index of the `$NAME` token in [`ExecLine::tokens`].
        exec_token: usize,
    },
}

impl WordFrom {
    /// The `ExecStart=` token the word was expanded from.
    pub fn exec_token(&self) -> usize {
        match self {
            WordFrom::Exec { token } => *token,
            WordFrom::Var { exec_token, .. } => *exec_token,
        }
    }
}

/// One word of the command line as systemd would build it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word.
    pub text: String,
    /// Where it comes from.
    pub from: WordFrom,
}

/// The service's environment as `ExecStart=` sees it: `Environment=` overridden by the
/// environment files, read in order, a later file winning.
pub fn effective_env(
    svc: &ServiceFiles,
    env_texts: &BTreeMap<String, String>,
) -> BTreeMap<String, VarDef> {
    let mut env = svc.environment.clone();
    for f in &svc.env_files {
        if let Some(text) = env_texts.get(&f.path) {
            for d in parse_env_file(&f.path, text) {
                env.insert(d.name.clone(), d);
            }
        }
    }
    env
}

/// The command line `ExecStart=` expands to (argv\[0\] first), each word with where it
/// came from. `env` is [`effective_env`].
pub fn expand(exec: &ExecLine, env: &BTreeMap<String, VarDef>) -> Result<Vec<Word>, String> {
    let mut out = Vec::new();
    let mut total = 0usize;
    for (i, t) in exec.tokens.iter().enumerate().skip(exec.argv0) {
        if exec.no_env {
            out.push(Word {
                text: t.text.clone(),
                from: WordFrom::Exec { token: i },
            });
            continue;
        }
        // `$NAME` as a word of its own: the value split at whitespace, quotes removed.
        // (replace_env_argv tests the unquoted word; a quoted "$NAME" behaves the same.)
        let w = t.text.as_bytes();
        if w.first() == Some(&b'$') && !matches!(w.get(1), Some(b'{' | b'$')) {
            let name = &t.text[1..];
            if env_name_is_valid(name) {
                if let Some(def) = env.get(name) {
                    total = total.saturating_add(def.value.len());
                    if total > MAX_EXPANDED_BYTES {
                        return Err(too_long(exec));
                    }
                    let words = split_words(&def.value, VALUE_WORDS)
                        .map_err(|e| format!("{}:{}: ${name} has {e}", def.file, def.line))?;
                    for (k, v) in words.into_iter().enumerate() {
                        out.push(Word {
                            text: v.text,
                            from: WordFrom::Var {
                                name: name.to_string(),
                                token: k,
                                exec_token: i,
                            },
                        });
                    }
                }
            }
            // An unset or invalid variable expands to no word at all.
        } else {
            let text = replace_braced(&t.text, env, MAX_EXPANDED_BYTES.saturating_sub(total))
                .ok_or_else(|| too_long(exec))?;
            total = total.saturating_add(text.len());
            out.push(Word {
                text,
                from: WordFrom::Exec { token: i },
            });
        }
        if out.len() > MAX_WORDS {
            return Err(format!(
                "{}:{}: ExecStart= expands to more than {MAX_WORDS} words",
                exec.file, exec.assignment.line
            ));
        }
    }
    Ok(out)
}

fn too_long(exec: &ExecLine) -> String {
    format!(
        "{}:{}: ExecStart= expands to more than {MAX_EXPANDED_BYTES} bytes",
        exec.file, exec.assignment.line
    )
}

/// `${NAME}` replaced inside a word, `$$` made `$` (`replace_env_full` without
/// `REPLACE_ENV_ALLOW_BRACELESS`); anything else is kept as written. `None` when the
/// result would be longer than `limit` bytes.
pub fn replace_braced(word: &str, env: &BTreeMap<String, VarDef>, limit: usize) -> Option<String> {
    let mut out = String::with_capacity(word.len().min(limit));
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        if out.len() > limit {
            return None;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            match r.find('}') {
                Some(j) if !r[..j].contains(':') => {
                    if let Some(d) = env.get(&r[..j]) {
                        out.push_str(&d.value);
                    }
                    rest = &r[j + 1..];
                }
                _ => {
                    // Unterminated or `${NAME:-x}`: not replaced (systemd keeps it).
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    (out.len() <= limit).then_some(out)
}

/// Quote a value for an `Environment="NAME=value"` word: the inverse of the unquoting and
/// C-unescaping of [`UNIT_WORDS`], with `%` doubled (specifiers are expanded there).
pub fn quote_environment(name: &str, value: &str) -> String {
    let mut s = String::with_capacity(value.len() + name.len() + 16);
    s.push_str("Environment=\"");
    s.push_str(name);
    s.push('=');
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '%' => s.push_str("%%"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                s.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str, how: Extract) -> Vec<String> {
        split_words(s, how)
            .unwrap()
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn unit_lines_continuations_and_comments() {
        let text = "[Unit]\nExecStart=/bin/no\n[Service]\n# c\nExecStart=/usr/bin/kubelet \\\n  --a=1 \\\n# skipped\n; skipped too\n  --b=2\nEnvironment=X=1\n";
        let a = parse_unit_file("/u", text).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].key, "ExecStart");
        assert_eq!(a[0].value, "/usr/bin/kubelet    --a=1    --b=2");
        assert_eq!(a[0].line, 5);
        // Every byte maps back to the same byte of the file (continuations: the backslash).
        for (i, b) in a[0].value.bytes().enumerate() {
            let o = a[0].map[i];
            assert!(text.as_bytes()[o] == b || (b == b' ' && text.as_bytes()[o] == b'\\'));
        }
        assert_eq!(a[0].line_of(text, a[0].value.find("--b").unwrap()), 9);
        assert_eq!(a[1].value, "X=1");
    }

    #[test]
    fn extract_words_like_systemd() {
        assert_eq!(
            words(r#"a "b c" 'd e' f\x41 "g\"h" """#, UNIT_WORDS),
            ["a", "b c", "d e", "fA", "g\"h", ""]
        );
        assert_eq!(words(r#"--x="a b"c"#, UNIT_WORDS), ["--x=a bc"]);
        assert!(split_words("\"abc", UNIT_WORDS).is_err());
        assert!(split_words("a\\q", UNIT_WORDS).is_err());
        // Values: relaxed, no C escapes.
        assert_eq!(words("\"abc", VALUE_WORDS), ["abc"]);
        assert_eq!(words(r"a\ b c\", VALUE_WORDS), ["a b", "c"]);
        let t = split_words(r#"  --x="a b"  y"#, VALUE_WORDS).unwrap();
        assert_eq!(t[0].raw, 2..11);
        assert_eq!(t[1].raw, 13..14);
    }

    #[test]
    fn env_file_syntax() {
        let text = "# comment\nA=1\n B = \"x \\\"y\\\" \\q\" \nC='s p'  \nexport D=1\nE=a\\\nb\nF=\"\"\nG=  v  \n";
        let d = parse_env_file("/e", text);
        let get = |n: &str| d.iter().find(|v| v.name == n).map(|v| v.value.clone());
        assert_eq!(get("A").as_deref(), Some("1"));
        assert_eq!(get("B").as_deref(), Some("x \"y\" \\q"));
        assert_eq!(get("C").as_deref(), Some("s p"));
        assert_eq!(get("D"), None, "`export D` is not a valid name");
        assert_eq!(get("E").as_deref(), Some("ab"));
        assert_eq!(get("F").as_deref(), Some(""));
        assert_eq!(get("G").as_deref(), Some("v"));
        // The anchor of an empty quoted value is inside the quotes.
        let f = d.iter().find(|v| v.name == "F").unwrap();
        assert_eq!(&text[f.anchor - 1..=f.anchor], "\"\"");
        let g = d.iter().find(|v| v.name == "G").unwrap();
        assert_eq!(&text[g.anchor - 1..g.anchor], "v");
        // Ranges map back to the file.
        let b = d.iter().find(|v| v.name == "B").unwrap();
        let r = b.base_range(&(0..1));
        assert_eq!(&text[r], "x");
    }

    #[test]
    fn a_variable_expanded_many_times_is_bounded() {
        let big = "x".repeat(200 * 1024);
        let many = "$A ".repeat(3000);
        let braced = format!("--x={}", "${A}".repeat(3000));
        for exec in [many, braced] {
            let unit = format!("[Service]\nEnvironment=A={big}\nExecStart=/bin/k {exec}\n");
            let svc = load_service("k.service", &[("/u".into(), unit)]);
            let env = effective_env(&svc, &BTreeMap::new());
            let e = expand(svc.exec.as_ref().unwrap(), &env).unwrap_err();
            assert!(e.contains("bytes"), "{e}");
        }
    }

    #[test]
    fn env_file_with_many_assignments_is_linear() {
        let text: String = (0..60_000).map(|i| format!("V{i}=x\nA=1\n")).collect();
        let start = std::time::Instant::now();
        let d = parse_env_file("/e", &text);
        assert_eq!(d.len(), 60_001);
        assert_eq!(d.last().map(|v| v.name.as_str()), Some("A"));
        // Quadratic replacement took minutes here; linear takes well under a second.
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn env_file_unterminated_quote_runs_to_the_end() {
        let d = parse_env_file("/e", "A=1\nB=\"x y\nC=2\n");
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].name, "B");
        assert_eq!(d[1].value, "x y\nC=2\n");
    }

    #[test]
    fn expansion_split_braced_and_unset() {
        let unit = "[Service]\nEnvironment=\"A=--x=1 '--y=2 3'\" B=b\nExecStart=/bin/k $A ${B}c $NONE x$B $$ \"$A\"\n";
        let svc = load_service("k.service", &[("/u".into(), unit.into())]);
        assert!(svc.errors.is_empty(), "{:?}", svc.errors);
        let env = effective_env(&svc, &BTreeMap::new());
        let w: Vec<String> = expand(svc.exec.as_ref().unwrap(), &env)
            .unwrap()
            .into_iter()
            .map(|w| w.text)
            .collect();
        assert_eq!(
            w,
            ["/bin/k", "--x=1", "--y=2 3", "bc", "x$B", "$", "--x=1", "--y=2 3"]
        );
    }

    #[test]
    fn environment_file_beats_environment_and_resets() {
        let unit = "[Service]\nEnvironment=A=unit\nEnvironmentFile=-/e1\nEnvironmentFile=/e2\nExecStart=/bin/k $A\n";
        let dropin = "[Service]\nExecStart=\nExecStart=/bin/k2 $A %n %N %%\n";
        let svc = load_service(
            "kubelet.service",
            &[("/u".into(), unit.into()), ("/d".into(), dropin.into())],
        );
        assert_eq!(svc.env_files.len(), 2);
        assert!(svc.env_files[0].optional && !svc.env_files[1].optional);
        let mut texts = BTreeMap::new();
        texts.insert("/e1".to_string(), "A=one\n".to_string());
        texts.insert("/e2".to_string(), "A=two\n".to_string());
        let env = effective_env(&svc, &texts);
        let w: Vec<String> = expand(svc.exec.as_ref().unwrap(), &env)
            .unwrap()
            .into_iter()
            .map(|w| w.text)
            .collect();
        assert_eq!(w, ["/bin/k2", "two", "kubelet.service", "kubelet", "%"]);
    }

    #[test]
    fn prefixes_and_errors() {
        let svc = load_service(
            "k.service",
            &[(
                "/u".into(),
                "[Service]\nExecStart=-@/bin/k kubelet --a\n".into(),
            )],
        );
        let e = svc.exec.unwrap();
        assert_eq!(e.argv0, 1);
        assert_eq!(e.tokens[0].text, "/bin/k");
        let svc = load_service(
            "k.service",
            &[(
                "/u".into(),
                "[Service]\nExecStart=/bin/k \"secret-token\n".into(),
            )],
        );
        assert!(svc.exec.is_none());
        assert_eq!(svc.errors.len(), 1);
        assert!(!svc.errors[0].contains("secret"), "{}", svc.errors[0]);
        let svc = load_service(
            "k.service",
            &[("/u".into(), "[Service]\nExecStart=/bin/k %H\n".into())],
        );
        assert!(svc.errors[0].contains("%H"));
    }

    #[test]
    fn quoting_round_trips() {
        let v = "a \"b\" c\\d 50% \t";
        let line = quote_environment("X", v);
        let a = parse_unit_file("/u", &format!("[Service]\n{line}\n")).unwrap();
        let svc = load_service(
            "k.service",
            &[("/u".into(), format!("[Service]\n{line}\n"))],
        );
        assert_eq!(a.len(), 1);
        assert_eq!(svc.environment["X"].value, v);
    }
}
