//! The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0.0 text, read one line at
//! a time: the one reader of `/metrics` bodies in this repository — the kubelet's
//! `kubernetes_build_info` (observe/version.rs) and, in the tests, the agent's own exposition.
//!
//! The rules follow the reader Prometheus itself uses, `TextParser` in prometheus/common
//! `expfmt/text_parse.go`: blanks and tabs may stand around tokens, a label set may end with
//! a comma, a label value knows the escapes `\\`, `\"` and `\n` and no other, a sample may
//! carry a timestamp. The OpenMetrics lines the agent writes (`# UNIT`, `# EOF`) are told
//! apart so that one reader serves both formats; which sample names a family's type allows
//! and where `# EOF` may stand are the caller's rules. Exemplars are not read (a line with
//! one is an error): neither the kubelet's 0.0.4 body nor the agent's exposition has them.
//!
//! Pure and bounded: a line's label values are borrowed from it unless they hold an escape,
//! nothing is kept between lines, and a malformed line is an error for that line alone —
//! never a panic, whatever the input.

use std::borrow::Cow;

/// Why one line is not a valid exposition line. Names the fault, never the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line does not start with a valid metric name.
    #[error("no valid metric name")]
    Name,
    /// A `# HELP`, `# TYPE` or `# UNIT` line without a valid family name or its argument.
    #[error("malformed # HELP, # TYPE or # UNIT line")]
    Descriptor,
    /// A label name is missing or has a character labels may not have.
    #[error("invalid label name")]
    LabelName,
    /// A label name without `=` after it.
    #[error("label name without `=`")]
    LabelEquals,
    /// A label value that does not start with `"`.
    #[error("label value not quoted")]
    LabelUnquoted,
    /// A `\` followed by anything but `\`, `"` or `n` in a label value.
    #[error("invalid escape sequence in a label value")]
    LabelEscape,
    /// A label value without its closing `"` (or with a raw newline).
    #[error("unterminated label value")]
    LabelUnterminated,
    /// Neither `,` nor `}` after a label.
    #[error("expected `,` or `}}` after a label")]
    LabelSeparator,
    /// A sample without a value.
    #[error("no value")]
    NoValue,
    /// A value that is not a number (`+Inf`, `-Inf` and `NaN` are numbers).
    #[error("the value is not a number")]
    Value,
    /// A timestamp that is not a number.
    #[error("the timestamp is not a number")]
    Timestamp,
    /// Text after the value and timestamp (an exemplar, or garbage).
    #[error("text after the sample's value and timestamp")]
    Trailing,
}

/// A sample's labels in their order: names as written, values unescaped.
pub type Labels<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The metric name as written (with its `_total`, `_bucket`, `_info` suffix).
    pub name: &'a str,
    /// The labels in their order, values unescaped.
    pub labels: Labels<'a>,
    /// The value (`+Inf`, `-Inf`, `NaN` included).
    pub value: f64,
    /// The timestamp as written, when there is one.
    pub timestamp: Option<&'a str>,
    /// The line up to the value: the name and the label set exactly as written.
    pub series: &'a str,
}

impl Sample<'_> {
    /// The value of the label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Whether the sample has every `(label, value)` pair of `pairs` (and maybe others).
    pub fn has_labels(&self, pairs: &[(&str, &str)]) -> bool {
        pairs.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// One line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    /// Empty or only blanks.
    Blank,
    /// `# HELP family text` (the text as written, escapes kept).
    Help {
        /// The metric family name.
        family: &'a str,
        /// The help text, escapes (`\\`, `\n`) not undone.
        text: &'a str,
    },
    /// `# TYPE family type` (the type as written: the caller knows which its format allows).
    Type {
        /// The metric family name.
        family: &'a str,
        /// The type word, e.g. `counter`, `gauge`, `histogram`, not checked here.
        kind: &'a str,
    },
    /// `# UNIT family unit` (OpenMetrics).
    Unit {
        /// The metric family name.
        family: &'a str,
        /// The unit word, e.g. `seconds`.
        unit: &'a str,
    },
    /// `# EOF` (OpenMetrics' last line).
    Eof,
    /// Any other line starting with `#`.
    Comment(&'a str),
    /// A sample.
    Sample(Sample<'a>),
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn skip_blanks(s: &str) -> &str {
    s.trim_start_matches(is_blank)
}

/// The longest prefix of `s` that is a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), or a label
/// name with `colon` false, and the rest.
fn split_name(s: &str, colon: bool) -> Option<(&str, &str)> {
    let ok = |(i, c): (usize, char)| {
        c.is_ascii_alphabetic() || c == '_' || (colon && c == ':') || (i > 0 && c.is_ascii_digit())
    };
    let end = s
        .char_indices()
        .find(|&(i, c)| !ok((i, c)))
        .map_or(s.len(), |(i, _)| i);
    (end > 0).then(|| s.split_at(end))
}

/// The next blank-separated token of `s` and the rest (after the token, blanks not skipped).
fn token(s: &str) -> (&str, &str) {
    s.split_at(s.find(is_blank).unwrap_or(s.len()))
}

/// A number as the Go reader takes it: Rust's `f64` syntax covers `+Inf`, `-Inf` and `NaN`.
fn number(s: &str) -> Option<f64> {
    s.parse().ok()
}

/// A `# ...` line.
fn comment(line: &str) -> Result<Line<'_>, LineError> {
    if line.trim_end_matches(is_blank) == "# EOF" {
        return Ok(Line::Eof);
    }
    let body = line.strip_prefix('#').unwrap_or(line);
    let (keyword, after) = token(skip_blanks(body));
    if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
        return Ok(Line::Comment(line));
    }
    let after = skip_blanks(after);
    let (family, after) = split_name(after, true).ok_or(LineError::Descriptor)?;
    if !after.is_empty() && !after.starts_with(is_blank) {
        return Err(LineError::Descriptor);
    }
    let argument = skip_blanks(after);
    match keyword {
        "HELP" => Ok(Line::Help {
            family,
            text: argument,
        }),
        _ => {
            let (arg, tail) = token(argument);
            if arg.is_empty() || !skip_blanks(tail).is_empty() {
                return Err(LineError::Descriptor);
            }
            Ok(if keyword == "TYPE" {
                Line::Type { family, kind: arg }
            } else {
                Line::Unit { family, unit: arg }
            })
        }
    }
}

/// A quoted label value, `s` just after the opening `"`: the value and the rest after the
/// closing `"`.
fn label_value(s: &str) -> Result<(Cow<'_, str>, &str), LineError> {
    let Some(end) = s.find(['"', '\\', '\n']) else {
        return Err(LineError::LabelUnterminated);
    };
    if s[end..].starts_with('"') {
        return Ok((Cow::Borrowed(&s[..end]), &s[end + 1..]));
    }
    let mut value = String::from(&s[..end]);
    let mut chars = s[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Cow::Owned(value), &s[end + i + 1..])),
            '\n' => return Err(LineError::LabelUnterminated),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                Some(_) => return Err(LineError::LabelEscape),
                None => return Err(LineError::LabelUnterminated),
            },
            c => value.push(c),
        }
    }
    Err(LineError::LabelUnterminated)
}

/// A label set, `s` just after the `{`: the labels and the rest after the `}`.
fn label_set(mut s: &str) -> Result<(Labels<'_>, &str), LineError> {
    let mut labels = Vec::new();
    loop {
        s = skip_blanks(s);
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (name, rest) = split_name(s, false).ok_or(LineError::LabelName)?;
        let rest = skip_blanks(rest)
            .strip_prefix('=')
            .ok_or(LineError::LabelEquals)?;
        let rest = skip_blanks(rest)
            .strip_prefix('"')
            .ok_or(LineError::LabelUnquoted)?;
        let (value, rest) = label_value(rest)?;
        labels.push((name, value));
        s = skip_blanks(rest);
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err(LineError::LabelSeparator);
        }
    }
}

/// A sample line, leading blanks already skipped.
fn sample(line: &str) -> Result<Sample<'_>, LineError> {
    let (name, rest) = split_name(line, true).ok_or(LineError::Name)?;
    let rest = skip_blanks(rest);
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(inner) => label_set(inner)?,
        None => (Vec::new(), rest),
    };
    let series = line[..line.len() - rest.len()].trim_end_matches(is_blank);
    let (value, rest) = token(skip_blanks(rest));
    if value.is_empty() {
        return Err(LineError::NoValue);
    }
    let value = number(value).ok_or(LineError::Value)?;
    let (timestamp, rest) = token(skip_blanks(rest));
    let timestamp = if timestamp.is_empty() {
        None
    } else {
        number(timestamp).ok_or(LineError::Timestamp)?;
        Some(timestamp)
    };
    if !skip_blanks(rest).is_empty() {
        return Err(LineError::Trailing);
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp,
        series,
    })
}

/// One line of an exposition (without its line break).
pub fn parse_line(line: &str) -> Result<Line<'_>, LineError> {
    let line = skip_blanks(line.strip_suffix('\r').unwrap_or(line));
    if line.is_empty() {
        Ok(Line::Blank)
    } else if line.starts_with('#') {
        comment(line)
    } else {
        sample(line).map(Line::Sample)
    }
}

/// The well-formed samples of an exposition, in order; every other line (comments,
/// descriptors, malformed lines) is passed over.
pub fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(|l| match parse_line(l) {
        Ok(Line::Sample(s)) => Some(s),
        _ => None,
    })
}

#[cfg(test)]
#[path = "exposition_tests.rs"]
mod tests;
