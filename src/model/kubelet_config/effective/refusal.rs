//! When the real kubelet refuses to start: its command line or its files, under the
//! loading rules of its version.

use super::*;

impl EffectiveConfig {
    /// Why the real kubelet would refuse to start with this command line and these files,
    /// under the rules of its version (all modelled versions when unknown: a reason any of
    /// them gives). `alpha_env`: whether `KUBELET_CONFIG_DROPIN_DIR_ALPHA` is set, when known.
    pub fn refusal(&self, alpha_env: Option<bool>) -> Option<String> {
        if let Some(e) = self.flags.refusal() {
            return Some(e);
        }
        if !self.errors.is_empty() {
            return Some(self.errors.join("; "));
        }
        let minors: Vec<u32> = match self.kubelet_minor {
            Some(m) => vec![m.min(NEWEST_KNOWN_MINOR)],
            None => loading::modelled_minors().collect(),
        };
        for minor in minors {
            let rules = Rules::new(minor);
            if self.config_dir.is_some()
                && rules.config_dir_needs_alpha_env()
                && alpha_env == Some(false)
            {
                return Some(format!(
                    "flag {} specified but environment variable KUBELET_CONFIG_DROPIN_DIR_ALPHA not set (1.28–1.29)",
                    self.config_dir.clone().unwrap_or_default()
                ));
            }
            for def in crate::model::kubelet_config::settings::SETTINGS {
                if let Err(e) = self.resolve_files_inner(def, rules) {
                    return Some(e);
                }
            }
            let known = |key: &str| match self.get_for(key, Some(minor)) {
                Lookup::Known(s) => Some(s.value),
                Lookup::Unknown { .. } => None,
            };
            // cmd/kubelet/app/auth.go `BuildAuthz`: an empty mode (a drop-in's "" is not
            // defaulted before 1.32) is "no authorization mode specified".
            if known("authorization.mode").as_ref().and_then(Value::as_str) == Some("") {
                return Some("no authorization mode specified".to_string());
            }
            if let (Some(Value::Array(list)), Some(min)) =
                (known("tlsCipherSuites"), known("tlsMinVersion"))
            {
                let names: Vec<String> = list
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect();
                if let Some(e) = loading::tls_refusal(&names, min.as_str().unwrap_or("")) {
                    return Some(e);
                }
            }
        }
        None
    }
}
