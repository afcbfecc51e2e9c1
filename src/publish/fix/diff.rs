//! Unified diffs (`diff -u` format, three lines of context) of a file's old and new
//! text, as `patch -p1` applies them, from the `similar` crate (Myers' diff with a
//! deadline, so a pathological pair of files cannot make it quadratic).

use similar::TextDiff;

/// Context lines around each change.
const CONTEXT: usize = 3;

/// The unified diff of `host_path` from `before` (`None`: the file is new) to `after`;
/// empty when nothing changes. Headers: `--- a/<path>` (or `/dev/null`) and
/// `+++ b/<path>`, so that `patch -d / -p1` applies it to the host.
pub fn unified(host_path: &str, before: Option<&str>, after: &str) -> String {
    if before == Some(after) {
        return String::new();
    }
    let rel = host_path.trim_start_matches('/');
    let old_header = match before {
        Some(_) => format!("a/{rel}"),
        None => "/dev/null".to_string(),
    };
    let old = before.unwrap_or("");
    let diff = TextDiff::configure()
        .timeout(std::time::Duration::from_secs(2))
        .diff_lines(old, after);
    diff.unified_diff()
        .context_radius(CONTEXT)
        .missing_newline_hint(true)
        .header(&old_header, &format!("b/{rel}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_file_and_one_line_change() {
        let d = unified("/etc/x.conf", None, "a\nb\n");
        assert_eq!(
            d,
            "--- /dev/null\n+++ b/etc/x.conf\n@@ -0,0 +1,2 @@\n+a\n+b\n"
        );
        let before = "1\n2\n3\n4\nold\n6\n7\n8\n9\n";
        let after = "1\n2\n3\n4\nnew\n6\n7\n8\n9\n";
        let d = unified("/etc/y", Some(before), after);
        assert_eq!(
            d,
            "--- a/etc/y\n+++ b/etc/y\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-old\n+new\n 6\n 7\n 8\n"
        );
        assert_eq!(unified("/etc/y", Some(before), before), "");
    }

    #[test]
    fn missing_final_newline_is_marked() {
        let d = unified("/e", Some("a\nb"), "a\nc\n");
        assert!(d.contains("-b\n\\ No newline at end of file\n+c\n"), "{d}");
    }
}
