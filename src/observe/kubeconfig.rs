//! The kubelet's kubeconfig: which credential it uses to reach the API server.

use serde_json::Value;

use crate::model::observed::{ObsError, ObsErrorKind};

/// Where the kubeconfig's selected user gets its identity from (before reading files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `client-certificate-data` (PEM bytes, decoded).
    InlineCert(Vec<u8>),
    /// `client-certificate` path (resolved against the kubeconfig's directory).
    CertFile(String),
    /// `token` or `tokenFile`: a bearer token (looked for last, after the certificate
    /// fields and the plugins).
    Token,
    /// `exec`: a credential plugin, with its `command` (empty when missing).
    Exec(String),
    /// `auth-provider`: a legacy provider plugin, with its `name` (empty when missing).
    AuthProvider(String),
    /// The selected user has none of these fields, or (without a `current-context`) the
    /// kubeconfig has no user at all.
    None,
}

fn invalid(msg: impl Into<String>) -> ObsError {
    ObsError::new(ObsErrorKind::Invalid, msg)
}

/// Parse a kubeconfig (YAML or JSON) and find the credential of the current context's
/// user. `kubeconfig_dir` resolves relative `client-certificate` paths, as client-go does.
pub fn parse_credential(text: &str, kubeconfig_dir: &str) -> Result<CredentialSource, ObsError> {
    // A kubeconfig holds tokens and keys: the error says where and what kind, never what.
    let doc: Value = crate::model::parse::yaml(text)
        .map_err(|e| invalid(format!("kubeconfig: invalid YAML: {e}")))?;
    let obj = doc
        .as_object()
        .ok_or_else(|| invalid("kubeconfig: not a mapping"))?;
    let users = obj
        .get("users")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let contexts = obj
        .get("contexts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let named = |list: &[Value], name: &str, field: &str| -> Option<Value> {
        list.iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|e| e.get(field).cloned())
    };
    let user_name = match obj.get("current-context").and_then(Value::as_str) {
        Some(ctx) if !ctx.is_empty() => named(&contexts, ctx, "context")
            .and_then(|c| c.get("user").and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| invalid(format!("kubeconfig: current-context {ctx:?} not found")))?,
        _ => match users.as_slice() {
            [only] => only
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            [] => return Ok(CredentialSource::None),
            _ => return Err(invalid("kubeconfig: no current-context and several users")),
        },
    };
    let user = named(&users, &user_name, "user")
        .ok_or_else(|| invalid(format!("kubeconfig: user {user_name:?} not found")))?;
    let s = |k: &str| {
        user.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(data) = s("client-certificate-data") {
        return Ok(CredentialSource::InlineCert(
            crate::model::cert::decode_base64(data)?,
        ));
    }
    if let Some(path) = s("client-certificate") {
        return Ok(CredentialSource::CertFile(crate::io::host::host_join(
            kubeconfig_dir,
            path,
        )));
    }
    if let Some(exec) = user.get("exec") {
        let cmd = exec
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok(CredentialSource::Exec(cmd));
    }
    if let Some(ap) = user.get("auth-provider") {
        let name = ap
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok(CredentialSource::AuthProvider(name));
    }
    if s("token").is_some() || s("tokenFile").is_some() {
        return Ok(CredentialSource::Token);
    }
    Ok(CredentialSource::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_cert_is_resolved_against_dir() {
        let kc = "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nusers:\n- name: u\n  user:\n    client-certificate: pki/kubelet-client-current.pem\n    client-key: pki/kubelet-client-current.pem\n";
        assert_eq!(
            parse_credential(kc, "/var/lib/kubelet").unwrap(),
            CredentialSource::CertFile("/var/lib/kubelet/pki/kubelet-client-current.pem".into())
        );
    }

    #[test]
    fn exec_plugin() {
        let kc = "apiVersion: v1\nkind: Config\nusers:\n- name: kubelet\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: /usr/bin/aws-iam-authenticator\n";
        assert_eq!(
            parse_credential(kc, "/").unwrap(),
            CredentialSource::Exec("/usr/bin/aws-iam-authenticator".into())
        );
    }

    #[test]
    fn broken_inputs_are_errors() {
        assert!(parse_credential("[", "/").is_err());
        assert!(parse_credential("current-context: nope\n", "/").is_err());
        assert_eq!(
            parse_credential("users: []\n", "/").unwrap(),
            CredentialSource::None
        );
    }
}
