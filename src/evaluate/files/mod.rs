//! Practice 4: permissions and ownership of the files the kubelet trusts (CIS 4.1).

use super::outcome::{kubelet, unknown_with};
use super::policy::ModeLimit;
use super::setting::{known, str_of};
use super::{Control, Ctx, Family, Needs, Outcome, Severity, PRACTICE_HARDENING};
use crate::model::observed::ObsErrorKind;
use crate::model::snapshot::{FileObservation, FileRole, Kubelet};

const CONFIG_ROLES: &[FileRole] = &[FileRole::ConfigFile, FileRole::DropIn, FileRole::ArgsFile];
const KUBECONFIG_ROLES: &[FileRole] = &[FileRole::Kubeconfig];
const CLIENT_CA_ROLES: &[FileRole] = &[FileRole::ClientCa];
const SERVING_KEY_ROLES: &[FileRole] = &[FileRole::ServingKey];
const SERVICE_ROLES: &[FileRole] = &[FileRole::ServiceUnit, FileRole::ServiceDropIn];

const OWNER_EXPECTED: &str = "root:root (0:0)";

/// The files controls: permissions and ownership of the kubelet's configuration,
/// kubeconfig, client CA, serving key and systemd unit files.
pub static CONTROLS: &[Control] = &[
    Control {
        id: "config-file-permissions",
        title: "Kubelet config file and drop-ins are 0600 or stricter",
        family: Family::Files,
        severity: Severity::High,
        cis: Some("4.1.9"),
        practice: PRACTICE_HARDENING,
        expected: "≤ 0600",
        remediation: "Run `chmod 600` on the `--config` file, every `*.conf` under `--config-dir` (and the MicroK8s args file).",
        needs: Needs::Kubelet,
        evaluate: evaluate_config_permissions,
    },
    Control {
        id: "config-file-ownership",
        title: "Kubelet config file and drop-ins are owned by root:root",
        family: Family::Files,
        severity: Severity::High,
        cis: Some("4.1.10"),
        practice: PRACTICE_HARDENING,
        expected: OWNER_EXPECTED,
        remediation: "Run `chown root:root` on the `--config` file, every `*.conf` under `--config-dir` (and the MicroK8s args file).",
        needs: Needs::Kubelet,
        evaluate: evaluate_config_ownership,
    },
    Control {
        id: "kubeconfig-permissions",
        title: "Kubelet kubeconfig is 0600 or stricter",
        family: Family::Files,
        severity: Severity::High,
        cis: Some("4.1.5"),
        practice: PRACTICE_HARDENING,
        expected: "≤ 0600",
        remediation: "Run `chmod 600` on the `--kubeconfig` file (e.g. /etc/kubernetes/kubelet.conf).",
        needs: Needs::Kubelet,
        evaluate: evaluate_kubeconfig_permissions,
    },
    Control {
        id: "kubeconfig-ownership",
        title: "Kubelet kubeconfig is owned by root:root",
        family: Family::Files,
        severity: Severity::High,
        cis: Some("4.1.6"),
        practice: PRACTICE_HARDENING,
        expected: OWNER_EXPECTED,
        remediation: "Run `chown root:root` on the `--kubeconfig` file (e.g. /etc/kubernetes/kubelet.conf).",
        needs: Needs::Kubelet,
        evaluate: evaluate_kubeconfig_ownership,
    },
    Control {
        id: "client-ca-permissions",
        title: "Client CA file is 0644 or stricter",
        family: Family::Files,
        severity: Severity::Medium,
        cis: Some("4.1.7"),
        practice: PRACTICE_HARDENING,
        expected: "≤ 0644",
        remediation: "Run `chmod 644` (or stricter) on the file named by `authentication.x509.clientCAFile` / `--client-ca-file`.",
        needs: Needs::Kubelet,
        evaluate: evaluate_client_ca_permissions,
    },
    Control {
        id: "client-ca-ownership",
        title: "Client CA file is owned by root:root",
        family: Family::Files,
        severity: Severity::Medium,
        cis: Some("4.1.8"),
        practice: PRACTICE_HARDENING,
        expected: OWNER_EXPECTED,
        remediation: "Run `chown root:root` on the file named by `authentication.x509.clientCAFile` / `--client-ca-file`.",
        needs: Needs::Kubelet,
        evaluate: evaluate_client_ca_ownership,
    },
    Control {
        id: "serving-key-permissions",
        title: "Serving private key is 0600 or stricter",
        family: Family::Files,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_HARDENING,
        expected: "≤ 0600",
        remediation: "Run `chmod 600` on the kubelet's serving key (`tlsPrivateKeyFile` / `--tls-private-key-file`, or the key under the cert dir).",
        needs: Needs::Kubelet,
        evaluate: evaluate_serving_key_permissions,
    },
    Control {
        id: "service-file-permissions",
        title: "Kubelet systemd unit files are 0600 or stricter",
        family: Family::Files,
        severity: Severity::Medium,
        cis: Some("4.1.1"),
        practice: PRACTICE_HARDENING,
        expected: "≤ 0600",
        remediation: "Run `chmod 600` on the kubelet unit file and its drop-ins (e.g. /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf), then `systemctl daemon-reload`.",
        needs: Needs::Kubelet,
        evaluate: evaluate_service_permissions,
    },
    Control {
        id: "service-file-ownership",
        title: "Kubelet systemd unit files are owned by root:root",
        family: Family::Files,
        severity: Severity::Medium,
        cis: Some("4.1.2"),
        practice: PRACTICE_HARDENING,
        expected: OWNER_EXPECTED,
        remediation: "Run `chown root:root` on the kubelet unit file and its drop-ins, then `systemctl daemon-reload`.",
        needs: Needs::Kubelet,
        evaluate: evaluate_service_ownership,
    },
];

/// A file control's observed value as stored by agents before each control observed only
/// its own attribute (`0600 0:0 /path` for both the permission and the ownership control),
/// rewritten in today's form (`0600 /path`, `0:0 /path`); `None` when `stored` is not in
/// that form or `id` is not a file control. Baselines taken by those agents are compared
/// through it, so an upgrade shows no drift.
pub fn legacy_observed(id: &str, stored: &str) -> Option<String> {
    let control = CONTROLS.iter().find(|c| c.id == id)?;
    let attribute = if control.id.ends_with("-ownership") {
        FileAttribute::Owner
    } else {
        FileAttribute::Mode
    };
    let mut changed = false;
    let items: Vec<String> = stored
        .split("; ")
        .map(|item| {
            let mut words = item.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some(mode), Some(owner), Some(target))
                    if mode.len() == 4
                        && mode.bytes().all(|b| (b'0'..=b'7').contains(&b))
                        && owner.split_once(':').is_some_and(|(u, g)| {
                            u.parse::<u32>().is_ok() && g.parse::<u32>().is_ok()
                        }) =>
                {
                    changed = true;
                    match attribute {
                        FileAttribute::Mode => format!("{mode} {target}"),
                        FileAttribute::Owner => format!("{owner} {target}"),
                    }
                }
                _ => item.to_string(),
            }
        })
        .collect();
    changed.then(|| items.join("; "))
}

/// What a file control checks.
#[derive(Clone, Copy)]
enum Check {
    /// Permission bits no more permissive than this, and no setuid/setgid/sticky bit.
    Mode(u32),
    /// Owned by uid 0 and gid 0.
    RootOwned,
}

impl Check {
    /// Why a file offends, or `None` when it complies.
    fn offence(&self, mode: u32, uid: u32, gid: u32) -> Option<String> {
        match *self {
            Check::Mode(max) => {
                if mode & 0o7000 != 0 {
                    Some(format!("{} has setuid/setgid/sticky bits", mode_str(mode)))
                } else if mode & !max & 0o777 != 0 {
                    Some(format!(
                        "{} is more permissive than {}",
                        mode_str(mode),
                        mode_str(max)
                    ))
                } else {
                    None
                }
            }
            Check::RootOwned => (uid != 0 || gid != 0).then(|| format!("owned by {uid}:{gid}")),
        }
    }

    /// The attribute of a file this check judges (and observes).
    fn attribute(&self) -> FileAttribute {
        match self {
            Check::Mode(_) => FileAttribute::Mode,
            Check::RootOwned => FileAttribute::Owner,
        }
    }

    fn what(&self) -> String {
        match self {
            Check::Mode(max) => format!("mode ≤ {}", mode_str(*max)),
            Check::RootOwned => "owned by root:root".to_string(),
        }
    }
}

/// A set of file roles one control pair looks at.
struct Group {
    roles: &'static [FileRole],
    /// Not-applicable reason when nothing of the kind is configured.
    none: &'static str,
    /// What the kubelet is configured to use, if anything (then an empty observation is
    /// `unknown`, not "nothing to check"); `Err` when that cannot be decided.
    configured: fn(&Ctx, &Kubelet) -> Result<Option<String>, String>,
}

/// A file-path setting: `Some("key path")` when set, `Err` when undecidable (e.g. the
/// config file does not parse, so we cannot tell whether it names a file).
fn setting_path(ctx: &Ctx, key: &str) -> Result<Option<String>, String> {
    let s = known(ctx, key)?;
    let p = str_of(&s)?.trim();
    Ok((!p.is_empty()).then(|| format!("{key} {p}")))
}

const CONFIG: Group = Group {
    roles: CONFIG_ROLES,
    none: "no --config file, drop-ins or args file: nothing configured to check",
    configured: |_, k| {
        Ok(match (&k.config.config_file, k.config.dropins.first()) {
            (Some(path), _) => Some(format!("--config {path}")),
            (None, Some(d)) => Some(format!("drop-in {d}")),
            (None, None) => None,
        })
    },
};

const KUBECONFIG: Group = Group {
    roles: KUBECONFIG_ROLES,
    none: "no --kubeconfig (standalone kubelet): nothing configured to check",
    configured: |_, k| {
        Ok(k.flags
            .last("kubeconfig")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| format!("--kubeconfig {p}")))
    },
};

const CLIENT_CA: Group = Group {
    roles: CLIENT_CA_ROLES,
    none: "no client CA file configured: nothing to check",
    configured: |ctx, _| setting_path(ctx, "authentication.x509.clientCAFile"),
};

const SERVING_KEY: Group = Group {
    roles: SERVING_KEY_ROLES,
    none: "no serving key file configured or observed: nothing to check",
    configured: |ctx, _| setting_path(ctx, "tlsPrivateKeyFile"),
};

/// Evaluate a check over every file of a group.
fn check_files(ctx: &Ctx, k: &Kubelet, group: &Group, check: Check) -> Outcome {
    let files: Vec<&FileObservation> = group.roles.iter().flat_map(|r| k.files_in(*r)).collect();
    if files.is_empty() {
        return match (group.configured)(ctx, k) {
            Ok(Some(what)) => Outcome::unknown(format!(
                "{what} is configured, but its file metadata was not observed"
            )),
            Ok(None) => Outcome::not_applicable(group.none),
            Err(why) => Outcome::unknown(format!(
                "no file observed, and whether one is configured cannot be decided: {why}"
            )),
        };
    }
    judge(&files, check)
}

fn judge(files: &[&FileObservation], check: Check) -> Outcome {
    // Each control observes only what it judges: a chmod is no ownership drift and a
    // chown no permission drift (the observed value is what the baseline compares).
    let observed = files
        .iter()
        .map(|f| file_line(f, check.attribute()))
        .collect::<Vec<_>>()
        .join("; ");
    let mut offenders = Vec::new();
    let mut unchecked = Vec::new();
    for f in files {
        match &f.meta {
            Ok(m) => {
                if let Some(why) = check.offence(m.mode, m.uid, m.gid) {
                    offenders.push(format!("{}: {why}", f.path));
                }
            }
            Err(e) => {
                let hint = if e.kind == ObsErrorKind::NotFound
                    && matches!(f.role, FileRole::ConfigFile | FileRole::DropIn)
                {
                    " (the configuration controls report the missing file)"
                } else {
                    ""
                };
                unchecked.push(format!(
                    "{} is {}{hint}: {}",
                    f.path,
                    obs_kind_str(e.kind),
                    e.message
                ));
            }
        }
    }
    // An offending file is evidence of a failure whatever else could not be checked.
    if !offenders.is_empty() {
        let also = if unchecked.is_empty() {
            String::new()
        } else {
            format!(" (also not checked: {})", unchecked.join("; "))
        };
        return Outcome::fail(
            observed,
            "file-metadata",
            format!("{}{also}", offenders.join("; ")),
        );
    }
    if !unchecked.is_empty() {
        return unknown_with(observed, "file-metadata", unchecked.join("; "));
    }
    let n = files.len();
    Outcome::pass(
        observed,
        "file-metadata",
        format!(
            "{} {}",
            if n == 1 {
                "the file is".to_string()
            } else {
                format!("all {n} files are")
            },
            check.what()
        ),
    )
}

fn mode_check(ctx: &Ctx, which: ModeLimit) -> (Check, String) {
    let limit = ctx.policy.mode_limit(which);
    (Check::Mode(limit), format!("≤ {}", mode_str(limit)))
}

fn permissions(ctx: &Ctx, group: &Group, limit: ModeLimit) -> Outcome {
    let (check, expected) = mode_check(ctx, limit);
    match kubelet(ctx) {
        Ok(k) => check_files(ctx, k, group, check).with_expected(expected),
        Err(e) => Outcome::unknown(e),
    }
}

fn ownership(ctx: &Ctx, group: &Group) -> Outcome {
    match kubelet(ctx) {
        Ok(k) => check_files(ctx, k, group, Check::RootOwned),
        Err(e) => Outcome::unknown(e),
    }
}

fn evaluate_config_permissions(ctx: &Ctx) -> Outcome {
    permissions(ctx, &CONFIG, ModeLimit::ConfigFile)
}

fn evaluate_config_ownership(ctx: &Ctx) -> Outcome {
    ownership(ctx, &CONFIG)
}

fn evaluate_kubeconfig_permissions(ctx: &Ctx) -> Outcome {
    permissions(ctx, &KUBECONFIG, ModeLimit::ConfigFile)
}

fn evaluate_kubeconfig_ownership(ctx: &Ctx) -> Outcome {
    ownership(ctx, &KUBECONFIG)
}

fn evaluate_client_ca_permissions(ctx: &Ctx) -> Outcome {
    permissions(ctx, &CLIENT_CA, ModeLimit::ClientCa)
}

fn evaluate_client_ca_ownership(ctx: &Ctx) -> Outcome {
    ownership(ctx, &CLIENT_CA)
}

fn evaluate_serving_key_permissions(ctx: &Ctx) -> Outcome {
    permissions(ctx, &SERVING_KEY, ModeLimit::ConfigFile)
}

/// Service files: not applicable without a systemd unit; a unit without observed files
/// is `unknown` (they exist somewhere, we could not find them).
fn service(ctx: &Ctx, check: Check) -> Outcome {
    let k = match kubelet(ctx) {
        Ok(k) => k,
        Err(e) => return Outcome::unknown(e),
    };
    let Some(unit) = &k.unit else {
        return Outcome::not_applicable("the kubelet does not run as a systemd unit");
    };
    let files: Vec<&FileObservation> = SERVICE_ROLES.iter().flat_map(|r| k.files_in(*r)).collect();
    if files.is_empty() {
        return Outcome::unknown(format!(
            "the kubelet runs in {unit}, but its unit files were not found"
        ));
    }
    judge(&files, check)
}

fn evaluate_service_permissions(ctx: &Ctx) -> Outcome {
    let (check, expected) = mode_check(ctx, ModeLimit::ServiceFile);
    service(ctx, check).with_expected(expected)
}

fn evaluate_service_ownership(ctx: &Ctx) -> Outcome {
    service(ctx, Check::RootOwned)
}

/// Judge other components' files (kube-proxy's kubeconfig) by the same mode rule as the
/// kubelet's: no more permissive than the policy's `limit`, no setuid/setgid/sticky bit.
/// The outcome carries the policy's expectation.
pub(crate) fn judge_permissions(
    ctx: &Ctx,
    files: &[&FileObservation],
    limit: ModeLimit,
) -> Outcome {
    let (check, expected) = mode_check(ctx, limit);
    judge(files, check).with_expected(expected)
}

/// Judge other components' files by the ownership rule (root:root).
pub(crate) fn judge_ownership(files: &[&FileObservation]) -> Outcome {
    judge(files, Check::RootOwned)
}

/// Format a file mode as four octal digits.
pub fn mode_str(mode: u32) -> String {
    format!("{mode:04o}")
}

/// A file observation for humans, the attribute a control judges: `0600 /path` or
/// `0:0 /path` (with `-> resolved` when a symlink
/// was followed), or `? /path (error)`.
pub fn file_line(f: &FileObservation, attribute: FileAttribute) -> String {
    match &f.meta {
        Ok(m) => {
            let target = if m.resolved != f.path && !m.resolved.is_empty() {
                format!("{} -> {}", f.path, m.resolved)
            } else {
                f.path.clone()
            };
            match attribute {
                FileAttribute::Mode => format!("{} {target}", mode_str(m.mode)),
                FileAttribute::Owner => format!("{}:{} {target}", m.uid, m.gid),
            }
        }
        Err(e) => format!("? {} ({})", f.path, obs_kind_str(e.kind)),
    }
}

/// Which attribute of a file a control judges, and so shows as its observed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAttribute {
    /// Permission bits (`0600`).
    Mode,
    /// Owner and group (`0:0`).
    Owner,
}

/// A short word for an observation error kind.
pub fn obs_kind_str(kind: ObsErrorKind) -> &'static str {
    match kind {
        ObsErrorKind::NotFound => "not found",
        ObsErrorKind::Unreadable => "unreadable",
        ObsErrorKind::Invalid => "invalid",
    }
}

#[cfg(test)]
mod tests;
