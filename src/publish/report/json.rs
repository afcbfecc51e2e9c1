//! The report as JSON: the [`Report`] serialised as it is (its field names are the
//! contract).

use super::Report;

/// The report as pretty-printed JSON.
pub fn render(report: &Report) -> String {
    match serde_json::to_string_pretty(report) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Not reachable with these types; still emit valid JSON.
        Err(e) => format!(
            "{{\"error\": {}}}\n",
            serde_json::Value::String(format!("serializing the report failed: {e}"))
        ),
    }
}
