//! The report as JSON: the [`Report`] serialised as it is (its field names are the
//! contract); [`text`] serialises the benchmark views the same way.

use super::Report;

/// The report as pretty-printed JSON.
pub fn render(report: &Report) -> String {
    text(report, true)
}

/// Any of the reports as JSON text ending in a newline: pretty-printed, or compact on one
/// line (kube-bench's shape, as kube-bench prints it).
pub fn text<T: serde::Serialize + ?Sized>(value: &T, pretty: bool) -> String {
    let result = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    match result {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Not reachable with the report types; still emit valid JSON.
        Err(e) => format!(
            "{{\"error\": {}}}\n",
            serde_json::Value::String(format!("serializing the report failed: {e}"))
        ),
    }
}
