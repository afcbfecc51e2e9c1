//! The kubelet's `/configz` answer: its running configuration (cmd/kubelet/app/server.go
//! `initConfigz` serves `{"kubeletconfig": {...}}`), read by the agent when
//! `--read-running-config` is on.

use serde_json::Value;

/// The agent's flag that turns reading the running configuration on (named in reasons).
pub const FLAG: &str = "--read-running-config";

/// The `kubeletconfig` object of a `/configz` answer.
pub fn parse_configz(body: &[u8]) -> Result<Value, String> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the /configz answer is not JSON: {e}"))?;
    match doc.get("kubeletconfig") {
        Some(Value::Object(o)) => Ok(Value::Object(o.clone())),
        Some(_) => Err("the /configz answer's kubeletconfig is not an object".to_string()),
        None => Err("the /configz answer has no kubeletconfig object".to_string()),
    }
}
