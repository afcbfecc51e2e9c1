//! An announcement's text (a feed item's `content_text`, markdown): its "Affected
//! Versions", "Fixed Versions" and "Affected Components" sections, and whether it is about
//! the kubelet.

use super::version_lines::{component, tokens, Component};

/// Whether an item is about the kubelet, and which of its version lines are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relevance {
    /// Some affected-version lines name the kubelet: those (and unnamed ones) are read.
    KubeletLines,
    /// No line names a component, but the text names the kubelet (or a node) as affected.
    Named,
    /// Not about the kubelet.
    Other,
}

/// The sections of an announcement's text that matter here.
#[derive(Debug, Default)]
pub(super) struct Announcement<'t> {
    /// Each "Affected Versions" list: its non-empty lines, bullets removed.
    pub(super) affected: Vec<Vec<&'t str>>,
    /// Each "Fixed Versions" list.
    pub(super) fixed: Vec<Vec<&'t str>>,
    /// "Affected Components" lists.
    components: Vec<&'t str>,
    /// The whole text, lowercased.
    lower: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Affected,
    Fixed,
    Components,
    Other,
}

/// Headings written as plain lines in some announcements.
pub(super) const PLAIN_HEADINGS: &[&str] = &[
    "affected versions",
    "fixed versions",
    "affected components",
    "affected components and configurations",
    "vulnerable versions",
    "vulnerable configurations",
    "am i vulnerable?",
    "how do i mitigate this vulnerability?",
    "mitigation",
    "detection",
    "acknowledgements",
    "additional details",
];

pub(super) fn strip_bullet(line: &str) -> &str {
    line.trim()
        .trim_start_matches(['-', '*', '+', '•', '·'])
        .trim()
}

/// The heading a line is, if it is one: `#…` lines, wholly bold lines, known plain
/// headings and plain questions without versions.
pub(super) fn heading(line: &str) -> Option<String> {
    let t = line.trim();
    let bold = t.len() > 4 && t.starts_with("**") && t.ends_with("**");
    let text = if t.starts_with('#') {
        t.trim_start_matches('#')
    } else if bold {
        &t[2..t.len() - 2]
    } else {
        let plain = t.trim_end_matches(':').trim().to_ascii_lowercase();
        if PLAIN_HEADINGS.contains(&plain.as_str())
            || (t.ends_with('?') && !t.starts_with(['-', '*', '+']) && tokens(t).is_empty())
        {
            t
        } else {
            return None;
        }
    };
    Some(
        text.trim()
            .trim_matches(['*', ':', ' '])
            .to_ascii_lowercase(),
    )
}

pub(super) fn section_of(heading: &str) -> Section {
    if heading.contains("affected version") || heading.contains("vulnerable version") {
        Section::Affected
    } else if heading.contains("fixed version") {
        Section::Fixed
    } else if heading.contains("affected component") {
        Section::Components
    } else {
        Section::Other
    }
}

impl<'t> Announcement<'t> {
    pub(super) fn read(text: &'t str) -> Announcement<'t> {
        let mut doc = Announcement {
            lower: text.to_ascii_lowercase(),
            ..Announcement::default()
        };
        let mut current = Section::Other;
        for line in text.lines() {
            if let Some(h) = heading(line) {
                current = section_of(&h);
                match current {
                    Section::Affected => doc.affected.push(Vec::new()),
                    Section::Fixed => doc.fixed.push(Vec::new()),
                    _ => {}
                }
                continue;
            }
            let l = strip_bullet(line);
            if l.is_empty() {
                continue;
            }
            match current {
                Section::Affected => doc.affected.last_mut().into_iter().for_each(|s| s.push(l)),
                Section::Fixed => doc.fixed.last_mut().into_iter().for_each(|s| s.push(l)),
                Section::Components => doc.components.push(l),
                Section::Other => {}
            }
        }
        doc
    }

    fn affected_lines(&self) -> impl Iterator<Item = &'t str> + '_ {
        self.affected.iter().flatten().copied()
    }

    pub(super) fn kubelet_relevance(&self, summary: &str) -> Relevance {
        let mut named_other = false;
        for line in self.affected_lines() {
            match component(line) {
                Component::Kubelet => return Relevance::KubeletLines,
                Component::Other => named_other = true,
                Component::Unnamed => {}
            }
        }
        if named_other {
            return Relevance::Other;
        }
        let summary = summary.to_ascii_lowercase();
        let names_node = summary
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == "node" || w == "nodes");
        if summary.contains("kubelet")
            || names_node
            || self
                .components
                .iter()
                .any(|c| c.to_ascii_lowercase().contains("kubelet"))
            || ["affects kubelet", "affects the kubelet"]
                .iter()
                .any(|p| self.lower.contains(p))
        {
            Relevance::Named
        } else {
            Relevance::Other
        }
    }

    /// The affected lines that name the kubelet or no component.
    pub(super) fn kubelet_lines(&self) -> Vec<&'t str> {
        self.affected_lines()
            .filter(|l| component(l) != Component::Other)
            .collect()
    }

    pub(super) fn unnamed_lines(&self) -> Vec<&'t str> {
        self.affected_lines().collect()
    }
}
