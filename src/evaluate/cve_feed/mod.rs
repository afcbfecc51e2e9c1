//! `--cve-feed FILE`: a copy of the official Kubernetes CVE feed, merged with the embedded
//! CVE table (`data/cves.yaml`) for `kubelet-version-no-known-cves`, so that CVEs announced
//! after the agent was built count without upgrading it.
//!
//! The file is the feed as kubernetes.io serves it,
//! <https://kubernetes.io/docs/reference/issues-security/official-cve-feed/index.json>: a
//! JSON Feed 1.1 document (<https://www.jsonfeed.org/version/1.1/>) written by
//! <https://github.com/kubernetes/sig-security/blob/main/sig-security-tooling/cve-feed/hack/fetch-official-cve-feed.py>
//! (rendered by kubernetes/website `layouts/_default/cve-feed.json`):
//!
//! ```json
//! {"version": "https://jsonfeed.org/version/1.1", "title": "...", "_kubernetes_io": {"updated_at": "..."},
//!  "items": [{"id": "CVE-2025-0426", "url": "https://github.com/kubernetes/kubernetes/issues/130016",
//!             "external_url": "https://www.cve.org/cverecord?id=CVE-2025-0426", "summary": "...",
//!             "content_text": "<the issue body, markdown>", "date_published": "...", "status": "fixed",
//!             "_kubernetes_io": {"google_group_url": "...", "issue_number": 130016}}]}
//! ```
//!
//! Items carry no machine-readable versions: the announcement's "Affected Versions" and
//! "Fixed Versions" lists are read from `content_text`, conservatively:
//!
//! - an item whose id is in the embedded table is skipped (the curated ranges win);
//! - an item is a kubelet CVE only when it names the kubelet (or a node) as affected: a
//!   version line naming the kubelet, an "Affected Components" list or a sentence saying
//!   the bug affects the kubelet, or a title naming the kubelet or a node; an item whose
//!   version lines name only other components (kube-apiserver, ingress-nginx, ...) is not;
//! - a kubelet CVE whose lists cannot be read with confidence (no list, several lists, a
//!   line that is not a version range, versions that contradict each other) becomes an
//!   [`UnreadableCve`]: the control reports it and is never a silent pass.
//!
//! The file is operator input: opened non-blocking and `fstat`ed to be a regular file,
//! capped at [`MAX_FEED_BYTES`] ([`crate::io::host::read_operator_file`]); a parse error
//! names its kind and position, never the file's content. An unusable file makes the CVE
//! control `unknown` with the reason; `serve` logs it and keeps running.
//!
//! This file reads the feed and merges it; `announcement.rs` finds an item's sections and
//! whether it is about the kubelet, `version_lines.rs` reads its version lines.

mod announcement;
mod version_lines;

use std::path::Path;

use announcement::{Announcement, Relevance};
use version_lines::read_versions;

use super::version::cve_table::{
    cves, is_cve_id, issue_number, Cve, CveOrigin, CveTable, FeedInfo, UnreadableCve,
    ANNOUNCEMENT_PREFIX,
};
use crate::model::file::HostError;

/// Cap on the feed file. The official feed (every announcement's full text) is well under
/// 1 MiB in 2026.
pub const MAX_FEED_BYTES: u64 = 8 * 1024 * 1024;

/// The feed's `version` (JSON Feed 1.x).
const JSON_FEED_VERSION_PREFIX: &str = "https://jsonfeed.org/version/1";

/// The merged table, or why the feed could not be used (what `--cve-feed` leaves in the
/// policy for the control).
pub type CveFeedLoad = Result<CveTable, CveFeedError>;

/// Why a `--cve-feed` file is unusable. None of these messages quotes the file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CveFeedError {
    /// Not found, not readable, not a regular file, over [`MAX_FEED_BYTES`].
    #[error("--cve-feed {0}")]
    Read(HostError),
    /// Not JSON: the kind of error and where.
    #[error("--cve-feed {path}: not a JSON feed: {kind} at line {line}, column {column}")]
    Json {
        /// The feed file, as given.
        path: String,
        /// serde_json's category only (`syntax error`, `unexpected end of input`, ...): its
        /// message could quote the file.
        kind: &'static str,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// JSON, but not the official feed's shape.
    #[error("--cve-feed {path}: not the official CVE feed's format: {why}")]
    Format {
        /// The feed file, as given.
        path: String,
        /// What is not as the official feed has it.
        why: &'static str,
    },
    /// The embedded table the feed is merged with is itself invalid (a build defect).
    #[error("--cve-feed {path}: {why}")]
    Embedded {
        /// The feed file, as given.
        path: String,
        /// What is wrong with the embedded table.
        why: String,
    },
}

/// What one feed item is to the kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEntry {
    /// A kubelet CVE whose versions were read.
    Kubelet(Cve),
    /// A kubelet CVE whose versions could not be read.
    Unreadable(UnreadableCve),
    /// Not a kubelet CVE (another component), by id.
    Other(String),
}

/// A parsed feed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// The file, as given.
    pub path: String,
    /// The feed's `_kubernetes_io.updated_at`, when it has one.
    pub updated_at: Option<String>,
    /// How many items the file lists.
    pub items: usize,
    /// Each item, as it concerns the kubelet, in the file's order.
    pub entries: Vec<FeedEntry>,
}

#[derive(serde::Deserialize)]
struct RawFeed {
    version: String,
    #[serde(default)]
    items: Option<Vec<RawItem>>,
    #[serde(default, rename = "_kubernetes_io")]
    kubernetes_io: Option<RawFeedExtension>,
}

#[derive(serde::Deserialize)]
struct RawFeedExtension {
    #[serde(default)]
    updated_at: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawItem {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    content_text: Option<String>,
    #[serde(default, rename = "_kubernetes_io")]
    kubernetes_io: Option<RawItemExtension>,
}

#[derive(serde::Deserialize)]
struct RawItemExtension {
    #[serde(default)]
    issue_number: Option<u64>,
}

/// Parse a feed file's bytes (read by the caller, at most [`MAX_FEED_BYTES`]) and merge
/// it with the embedded table.
pub fn load(path: &Path, read: Result<Vec<u8>, HostError>) -> CveFeedLoad {
    let shown = path.display().to_string();
    let bytes = read.map_err(CveFeedError::Read)?;
    let feed = parse(&shown, &bytes)?;
    let embedded = cves().map_err(|why| CveFeedError::Embedded {
        path: shown,
        why: why.to_string(),
    })?;
    Ok(merge(embedded, &feed))
}

/// [`load`], logged: the merge's counts, or the error (the control is then `unknown`;
/// `serve` keeps running).
pub fn load_logged(path: &Path, read: Result<Vec<u8>, HostError>) -> CveFeedLoad {
    let loaded = load(path, read);
    match &loaded {
        Ok(t) => {
            if let Some(f) = &t.feed {
                tracing::info!(
                    path = %f.path,
                    items = f.items,
                    added = f.added,
                    unreadable = t.unreadable.len(),
                    updated_at = f.updated_at.as_deref().unwrap_or(""),
                    "CVE feed merged with the embedded CVE table"
                );
            }
            for u in &t.unreadable {
                tracing::warn!(
                    cve = %u.id,
                    source = %u.source,
                    why = u.why,
                    "CVE feed: a kubelet CVE whose affected versions could not be read; kubelet-version-no-known-cves reports it"
                );
            }
        }
        Err(e) => tracing::error!(
            error = %e,
            "CVE feed unusable: kubelet-version-no-known-cves is unknown until it is fixed"
        ),
    }
    loaded
}

fn json_error(path: &str, e: &serde_json::Error) -> CveFeedError {
    use serde_json::error::Category;
    CveFeedError::Json {
        path: path.to_string(),
        // The category only: a data error's message would quote the offending value.
        kind: match e.classify() {
            Category::Io => "read error",
            Category::Syntax => "syntax error",
            Category::Data => "unexpected type or missing field",
            Category::Eof => "unexpected end of input",
        },
        line: e.line(),
        column: e.column(),
    }
}

/// Parse a feed file's bytes (`path` names it in errors).
pub fn parse(path: &str, bytes: &[u8]) -> Result<Feed, CveFeedError> {
    let raw: RawFeed = serde_json::from_slice(bytes).map_err(|e| json_error(path, &e))?;
    let format = |why| CveFeedError::Format {
        path: path.to_string(),
        why,
    };
    if !raw.version.starts_with(JSON_FEED_VERSION_PREFIX) {
        return Err(format(
            "`version` is not a JSON Feed version (https://jsonfeed.org/version/1.1)",
        ));
    }
    let items = raw.items.ok_or_else(|| format("no `items` list"))?;
    let mut entries = Vec::with_capacity(items.len());
    for item in &items {
        entries.extend(read_item(item));
    }
    Ok(Feed {
        path: path.to_string(),
        updated_at: raw
            .kubernetes_io
            .and_then(|k| k.updated_at)
            .map(|u| shown_text(&u, 40)),
        items: items.len(),
        entries,
    })
}

/// The embedded table with the feed's kubelet CVEs added: an id already embedded keeps its
/// curated entry; within the feed, the first item of an id wins.
pub fn merge(embedded: &CveTable, feed: &Feed) -> CveTable {
    let mut out = embedded.clone();
    let known = |out: &CveTable, id: &str| {
        out.cves.iter().any(|c| c.id == id) || out.unreadable.iter().any(|u| u.id == id)
    };
    let mut added = 0;
    for e in &feed.entries {
        match e {
            FeedEntry::Kubelet(c) if !known(&out, &c.id) => {
                out.cves.push(c.clone());
                added += 1;
            }
            FeedEntry::Unreadable(u) if !known(&out, &u.id) => out.unreadable.push(u.clone()),
            _ => {}
        }
    }
    out.feed = Some(FeedInfo {
        path: feed.path.clone(),
        updated_at: feed.updated_at.clone(),
        items: feed.items,
        added,
    });
    out
}

/// Text from the feed made safe to show: control characters dropped, whitespace folded,
/// at most `max` characters.
fn shown_text(s: &str, max: usize) -> String {
    let folded = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>();
    if folded.chars().count() <= max {
        folded
    } else {
        let mut t: String = folded.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The item's announcement URL: its `url` when it is a kubernetes/kubernetes issue, else
/// one made from `_kubernetes_io.issue_number`, else none.
fn announcement(item: &RawItem) -> String {
    if let Some(u) = item.url.as_deref().map(str::trim) {
        if issue_number(u).is_some() {
            return u.to_string();
        }
    }
    match item.kubernetes_io.as_ref().and_then(|k| k.issue_number) {
        Some(n) if n > 0 && n < 1_000_000_000 => format!("{ANNOUNCEMENT_PREFIX}{n}"),
        _ => String::new(),
    }
}

/// The CVE ids of an item's `id` (older feeds joined several: "CVE-2023-2727, CVE-2023-2728").
fn item_ids(id: &str) -> Vec<String> {
    id.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|t| is_cve_id(t))
        .map(str::to_string)
        .collect()
}

fn read_item(item: &RawItem) -> Vec<FeedEntry> {
    let raw_id = item.id.as_deref().unwrap_or("");
    let ids = item_ids(raw_id);
    let summary = shown_text(item.summary.as_deref().unwrap_or(""), 160);
    let text = item
        .content_text
        .as_deref()
        .unwrap_or("")
        .replace("\r\n", "\n");
    let doc = Announcement::read(&text);
    let source = announcement(item);
    let windows_only = summary.to_ascii_lowercase().contains("windows");
    let unreadable = |id: String, why| {
        FeedEntry::Unreadable(UnreadableCve {
            id,
            source: source.clone(),
            summary: summary.clone(),
            windows_only,
            why,
        })
    };
    let relevance = doc.kubelet_relevance(&summary);
    if ids.is_empty() {
        return match relevance {
            Relevance::Other => vec![FeedEntry::Other(shown_text(raw_id, 40))],
            _ => vec![unreadable(
                format!("feed item {:?}", shown_text(raw_id, 40)),
                "its id is not a CVE id",
            )],
        };
    }
    if relevance == Relevance::Other {
        return ids.into_iter().map(FeedEntry::Other).collect();
    }
    if ids.len() > 1 {
        // One announcement for several CVEs: which list is whose cannot be told.
        return ids
            .into_iter()
            .map(|id| unreadable(id, "one announcement for several CVEs"))
            .collect();
    }
    let lines = match relevance {
        Relevance::KubeletLines => doc.kubelet_lines(),
        _ => doc.unnamed_lines(),
    };
    let read = match (doc.affected.len(), doc.fixed.len()) {
        (0, _) => Err("no Affected Versions list"),
        (1, 0 | 1) => read_versions(&lines, doc.fixed.first().map(Vec::as_slice).unwrap_or(&[])),
        _ => Err("several Affected Versions or Fixed Versions lists"),
    };
    ids.into_iter()
        .map(|id| match &read {
            Ok((affected, fixed, all_versions)) => FeedEntry::Kubelet(Cve {
                id,
                source: source.clone(),
                origin: CveOrigin::Feed,
                summary: if summary.is_empty() {
                    "(no summary in the feed)".to_string()
                } else {
                    summary.clone()
                },
                windows_only,
                all_versions: *all_versions,
                affected: affected.clone(),
                fixed: fixed.clone(),
                mitigation: None,
            }),
            Err(why) => unreadable(id, why),
        })
        .collect()
}

#[cfg(test)]
mod tests;
