//! The kubelet's command line, parsed the way its flag library (spf13/pflag with
//! component-base's `WordSepNormalizeFunc`) parses it.
//!
//! - `--flag=value` and `--flag value` (EKS AL2 and GKE write `--config /path`:
//!   awslabs/amazon-eks-ami templates/al2/runtime/kubelet.service, kube-bench#852); a known
//!   boolean flag never consumes the next argument.
//! - bare booleans (`--anonymous-auth` = true), `--flag=false`.
//! - single-dash long names are accepted too (`-anonymous-auth=false`).
//! - `_` and `-` are the same in a name (`WordSepNormalizeFunc`).
//! - scalars: the last occurrence wins; list flags (`StringSlice`) and map flags
//!   (`MapStringString`, `MapStringBool` for `--feature-gates`, the `<`-separated
//!   eviction maps) accumulate across repeats, as their `Set` methods do.
//! - unknown flags are kept, never rejected.
//! - `--` ends flag parsing; other positional arguments are kept.

use std::collections::BTreeMap;

use crate::model::fix::FlagChange;

/// How a known flag's value is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// A boolean ([`BOOL_FLAGS`]): bare means true, the value only after `=`, read as
    /// Go's `strconv.ParseBool`.
    Bool,
    /// Any other flag: a scalar kept as text, the last occurrence wins.
    String,
    /// Comma-separated list that appends on repeat.
    List,
    /// `k=v,k2=v2`, accumulates on repeat.
    Map,
    /// `k<v,k2<v2` (eviction thresholds), accumulates on repeat.
    LangleMap,
    /// `Gate=true,Other=false`, accumulates on repeat.
    BoolMap,
}

/// The kubelet's boolean flags: these take no separate value argument.
/// Source: cmd/kubelet/app/options/options.go (`BoolVar`).
pub const BOOL_FLAGS: &[&str] = &[
    "anonymous-auth",
    "authentication-token-webhook",
    "make-iptables-util-chains",
    "rotate-certificates",
    "rotate-server-certificates",
    "protect-kernel-defaults",
    "seccomp-default",
    "fail-swap-on",
    "enable-debugging-handlers",
    "enable-server",
    "enable-controller-attach-detach",
    "register-node",
    "register-schedulable",
    "cgroups-per-qos",
    "exit-on-lock-contention",
    "serialize-image-pulls",
    "enforce-node-allocatable-ignore-eviction",
    "experimental-allocatable-ignore-eviction",
    "keep-terminated-pod-volumes",
    "kernel-memcg-notification",
    "enable-cadvisor-json-endpoints",
    "enable-load-reader",
    "local-storage-capacity-isolation",
    "allowed-unsafe-sysctls-disabled",
    "containerized",
    "reallocate-on-failure",
    "experimental-check-node-capabilities-before-mount",
    "help",
    "h",
    "logtostderr",
    "alsologtostderr",
    "add-dir-header",
    "skip-headers",
    "skip-log-headers",
    "one-output",
    "log-json-split-stream",
];

/// The kubelet's IP-address flags (`utilflag.IPVar` in cmd/kubelet/app/options/options.go).
pub const IP_FLAGS: &[&str] = &["address", "healthz-bind-address"];

/// Flags whose value accumulates. Anything not listed is a plain scalar (last wins).
pub fn flag_kind(name: &str) -> FlagKind {
    match name {
        _ if BOOL_FLAGS.contains(&name) => FlagKind::Bool,
        "tls-cipher-suites"
        | "cluster-dns"
        | "enforce-node-allocatable"
        | "allowed-unsafe-sysctls"
        | "register-with-taints"
        | "node-ip" => FlagKind::List,
        "kube-reserved"
        | "system-reserved"
        | "node-labels"
        | "qos-reserved"
        | "eviction-minimum-reclaim"
        | "eviction-max-pod-grace-period-map" => FlagKind::Map,
        "eviction-hard" | "eviction-soft" | "eviction-soft-grace-period" => FlagKind::LangleMap,
        "feature-gates" => FlagKind::BoolMap,
        _ => FlagKind::String,
    }
}

/// One flag as it appeared on the command line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlagOccurrence {
    /// Normalised name (`-` separators, no leading dashes).
    pub name: String,
    /// The raw value (`true` for a bare boolean).
    pub value: String,
    /// Index in argv.
    pub position: usize,
}

/// A parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Flags {
    /// Every flag occurrence, in order.
    pub occurrences: Vec<FlagOccurrence>,
    /// Positional (non-flag) arguments.
    pub positional: Vec<String>,
    /// Values that could not be parsed for their kind (e.g. `--anonymous-auth=maybe`).
    pub errors: Vec<String>,
}

/// The effective value of one flag after pflag's repeat rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    /// A [`FlagKind::Bool`] flag's last value.
    Bool(bool),
    /// A [`FlagKind::String`] flag's last value, as written.
    String(String),
    /// A [`FlagKind::List`] flag: the items of every occurrence, in order.
    List(Vec<String>),
    /// A [`FlagKind::Map`] or [`FlagKind::LangleMap`] flag: every occurrence's pairs,
    /// keys and values trimmed, a later key replacing an earlier one.
    Map(BTreeMap<String, String>),
    /// `--feature-gates`: gate name to enabled, a later gate replacing an earlier one.
    BoolMap(BTreeMap<String, bool>),
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The kubelet's flag-name normaliser (`cliflag.WordSepNormalizeFunc`): `_` is read as `-`.
pub fn normalize_name(name: &str) -> String {
    name.replace('_', "-")
}

impl Flags {
    /// Parse argv *after* the program name (and after a `hyperkube kubelet` subcommand).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Flags {
        let mut out = Flags::default();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_ref();
            let pos = i;
            i += 1;
            if arg == "--" {
                out.positional
                    .extend(args[i..].iter().map(|a| a.as_ref().to_string()));
                break;
            }
            let body = if let Some(b) = arg.strip_prefix("--") {
                b
            } else if let Some(b) = arg.strip_prefix('-') {
                if b.is_empty() {
                    out.positional.push(arg.to_string());
                    continue;
                }
                // pflag reads a single dash as shorthand letters (`parseShortArg`); the
                // kubelet's only shorthands are -h (help) and -v (klog verbosity).
                if let Some(c) = b.chars().next().filter(|c| !matches!(c, 'h' | 'v')) {
                    out.errors
                        .push(format!("unknown shorthand flag: '{c}' in {arg}"));
                }
                b
            } else {
                out.positional.push(arg.to_string());
                continue;
            };
            let (raw_name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if raw_name.is_empty() || raw_name.starts_with('-') {
                out.positional.push(arg.to_string());
                continue;
            }
            let name = normalize_name(raw_name);
            let kind = flag_kind(&name);
            let value = match inline {
                Some(v) => v,
                None if kind == FlagKind::Bool => "true".to_string(),
                None => {
                    // pflag consumes the next argument as the value of a non-boolean
                    // flag, whatever it looks like. For an *unknown* flag we cannot know
                    // its type, so a following `--x` is taken as the next flag instead.
                    let known = is_known_value_flag(&name);
                    match args.get(i) {
                        Some(next) if known || !next.as_ref().starts_with('-') => {
                            i += 1;
                            next.as_ref().to_string()
                        }
                        _ if known => {
                            // pflag's parseLongArg: `flag needs an argument` and the
                            // kubelet exits. No value is recorded: the flag has none (a
                            // made-up value would send the agent reading a file `/true`).
                            out.errors.push(format!("flag needs an argument: --{name}"));
                            continue;
                        }
                        // Unknown flag with no value: keep it as a presence flag.
                        _ => "true".to_string(),
                    }
                }
            };
            if kind == FlagKind::Bool && parse_go_bool(&value).is_none() {
                out.errors.push(format!(
                    "invalid argument {value:?} for --{name}: not a boolean"
                ));
            }
            out.occurrences.push(FlagOccurrence {
                name,
                value,
                position: pos,
            });
        }
        out
    }

    /// Whether the flag appears at all.
    pub fn has(&self, name: &str) -> bool {
        self.occurrences.iter().any(|o| o.name == name)
    }

    /// The last raw value of a flag.
    pub fn last(&self, name: &str) -> Option<&str> {
        self.occurrences
            .iter()
            .rev()
            .find(|o| o.name == name)
            .map(|o| o.value.as_str())
    }

    /// Why the kubelet's own flag parsing would refuse this command line (it exits before
    /// loading any configuration): a value its type cannot take, a missing value, an
    /// unknown shorthand, a positional argument (`unknown command`), an invalid IP address
    /// for an IP flag.
    pub fn refusal(&self) -> Option<String> {
        if let Some(e) = self.errors.first() {
            return Some(format!("failed to parse kubelet flag: {e}"));
        }
        if let Some(p) = self.positional.first() {
            return Some(format!("unknown command {p}"));
        }
        for o in &self.occurrences {
            if IP_FLAGS.contains(&o.name.as_str())
                && !o.value.is_empty()
                && o.value.parse::<std::net::IpAddr>().is_err()
            {
                return Some(format!(
                    "failed to parse kubelet flag: invalid argument {:?} for --{}: {:?} is not a valid IP address",
                    o.value, o.name, o.value
                ));
            }
        }
        None
    }

    /// The effective value of a flag, with pflag's repeat semantics for its kind.
    /// Returns `Err` with a message when a value cannot be parsed for its kind.
    ///
    /// An IP flag given an empty value is a no-op (pkg/util/flag `IPVar.Set` returns
    /// without setting anything), so `--address=` leaves the file's value in force.
    pub fn value(&self, name: &str) -> Option<Result<FlagValue, String>> {
        let ip = IP_FLAGS.contains(&name);
        let occ: Vec<&FlagOccurrence> = self
            .occurrences
            .iter()
            .filter(|o| o.name == name && !(ip && o.value.is_empty()))
            .collect();
        if occ.is_empty() {
            return None;
        }
        Some(match flag_kind(name) {
            FlagKind::Bool => {
                let v = &occ[occ.len() - 1].value;
                parse_go_bool(v)
                    .map(FlagValue::Bool)
                    .ok_or_else(|| format!("--{name}={v}: not a boolean"))
            }
            FlagKind::String => Ok(FlagValue::String(occ[occ.len() - 1].value.clone())),
            FlagKind::List => {
                let mut items = Vec::new();
                for o in &occ {
                    items.extend(split_list(&o.value));
                }
                Ok(FlagValue::List(items))
            }
            FlagKind::Map | FlagKind::LangleMap => {
                let sep = if flag_kind(name) == FlagKind::LangleMap {
                    '<'
                } else {
                    '='
                };
                let mut map = BTreeMap::new();
                for o in &occ {
                    for item in split_list(&o.value) {
                        match item.split_once(sep) {
                            Some((k, v)) => {
                                map.insert(k.trim().to_string(), v.trim().to_string());
                            }
                            None => {
                                return Some(Err(format!(
                                    "--{name}: malformed pair {item:?} (want key{sep}value)"
                                )))
                            }
                        }
                    }
                }
                Ok(FlagValue::Map(map))
            }
            FlagKind::BoolMap => {
                let mut map = BTreeMap::new();
                for o in &occ {
                    for item in split_list(&o.value) {
                        let Some((k, v)) = item.split_once('=') else {
                            return Some(Err(format!(
                                "--{name}: malformed pair {item:?} (want Gate=bool)"
                            )));
                        };
                        let Some(b) = parse_go_bool(v.trim()) else {
                            return Some(Err(format!("--{name}: {k}={v}: not a boolean")));
                        };
                        map.insert(k.trim().to_string(), b);
                    }
                }
                Ok(FlagValue::BoolMap(map))
            }
        })
    }

    /// The last value of a string flag, as the kubelet would see it.
    pub fn string(&self, name: &str) -> Option<String> {
        self.last(name).map(str::to_string)
    }
}

impl Flags {
    /// The command line with `changes` applied, as the kubelet would parse it after a
    /// restart: [`FlagChange::Remove`] drops every occurrence of the flag;
    /// [`FlagChange::Set`] drops them too and adds one occurrence with the new value at the
    /// end (a scalar's last occurrence wins; a list or map flag then holds exactly the
    /// new value). Used by `evaluate::fix` for its in-memory proof.
    pub fn with_changes(&self, changes: &[FlagChange]) -> Flags {
        let mut out = self.clone();
        for change in changes {
            let name = normalize_name(change.flag());
            out.occurrences.retain(|o| o.name != name);
            if let FlagChange::Set { value, .. } = change {
                let position = out
                    .occurrences
                    .iter()
                    .map(|o| o.position + 1)
                    .max()
                    .unwrap_or(0);
                out.occurrences.push(FlagOccurrence {
                    name,
                    value: value.clone(),
                    position,
                });
            }
        }
        // A value error belonged to the occurrences that are gone.
        out.errors.retain(|e| {
            !changes
                .iter()
                .any(|c| e.contains(&format!("--{}", normalize_name(c.flag()))))
        });
        out
    }
}

/// argv (after the program name) with `changes` applied, word by word: every occurrence of
/// a removed or set flag is dropped (with its separate value word, `--config /x`), and a
/// set flag is appended as `--flag=value`. [`Flags::parse`] of the result equals
/// [`Flags::with_changes`] of the original's parse (tests/fix_fixtures.rs rewrites a
/// fixture's `/proc/<pid>/cmdline` with it to simulate the restart).
pub fn args_with_changes<S: AsRef<str>>(args: &[S], changes: &[FlagChange]) -> Vec<String> {
    let parsed = Flags::parse(args);
    let names: Vec<String> = changes.iter().map(|c| normalize_name(c.flag())).collect();
    let mut drop = vec![false; args.len()];
    for o in &parsed.occurrences {
        if !names.contains(&o.name) {
            continue;
        }
        if let Some(d) = drop.get_mut(o.position) {
            *d = true;
        }
        // `--flag value`: the value is the next word.
        let word = args.get(o.position).map(AsRef::as_ref).unwrap_or("");
        if !word.contains('=') && flag_kind(&o.name) != FlagKind::Bool {
            if let (Some(d), Some(next)) = (drop.get_mut(o.position + 1), args.get(o.position + 1))
            {
                if next.as_ref() == o.value {
                    *d = true;
                }
            }
        }
    }
    let mut out: Vec<String> = args
        .iter()
        .zip(drop)
        .filter(|(_, d)| !d)
        .map(|(a, _)| a.as_ref().to_string())
        .collect();
    // Flags stop at `--`: a new flag goes before it.
    let end = out.iter().position(|a| a == "--").unwrap_or(out.len());
    let mut added = Vec::new();
    for c in changes {
        if let FlagChange::Set { flag, value } = c {
            added.push(format!("--{}={value}", normalize_name(flag)));
        }
    }
    out.splice(end..end, added);
    out
}

/// Flags that are known to take a value (so `--config /path` consumes `/path` even if it
/// started with `-`). Anything the kubelet registers that is not boolean.
fn is_known_value_flag(name: &str) -> bool {
    crate::model::kubelet_config::settings::flag_is_config_backed(name)
        || matches!(
            name,
            "config"
                | "config-dir"
                | "kubeconfig"
                | "bootstrap-kubeconfig"
                | "hostname-override"
                | "node-ip"
                | "cert-dir"
                | "cloud-provider"
                | "cloud-config"
                | "root-dir"
                | "node-labels"
                | "container-runtime-endpoint"
                | "image-service-endpoint"
                | "pod-infra-container-image"
                | "provider-id"
                | "v"
                | "vmodule"
                | "lock-file"
                | "register-with-taints"
                | "volume-plugin-dir"
                | "log-dir"
                | "log-file"
                | "containerd"
                | "container-runtime"
                | "runtime-cgroups"
        )
}

/// pflag's StringSlice/Map parsing: comma separated, CSV-style quoting is rare in
/// practice; we split on commas and trim empties.
fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Split a MicroK8s-style args file (one flag per line, values possibly quoted,
/// `${SNAP_DATA}`/`${SNAP_COMMON}` unexpanded) into argv words, as canonical/microk8s
/// microk8s-resources/default-args/kubelet is written.
pub fn args_file_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let expanded = line
            .replace("${SNAP_DATA}", "/var/snap/microk8s/current")
            .replace("$SNAP_DATA", "/var/snap/microk8s/current")
            .replace("${SNAP_COMMON}", "/var/snap/microk8s/common")
            .replace("$SNAP_COMMON", "/var/snap/microk8s/common");
        // `--flag=value`, `--flag="value"`, `--flag value`, `--flag 'value'`.
        let (head, rest) = match expanded.find(['=', ' ', '\t']) {
            Some(i) => {
                let sep = expanded.as_bytes()[i];
                let head = expanded[..i].to_string();
                let rest = expanded[i + 1..].trim().to_string();
                if sep == b'=' {
                    words.push(format!("{head}={}", unquote(&rest)));
                    continue;
                }
                (head, rest)
            }
            None => (expanded.clone(), String::new()),
        };
        words.push(head);
        if !rest.is_empty() {
            words.push(unquote(&rest));
        }
    }
    words
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Flags {
        Flags::parse(s)
    }

    #[test]
    fn equals_and_space_forms() {
        let f = p(&[
            "--config",
            "/etc/k/c.json",
            "--kubeconfig=/var/lib/kubelet/kubeconfig",
        ]);
        assert_eq!(f.last("config"), Some("/etc/k/c.json"));
        assert_eq!(f.last("kubeconfig"), Some("/var/lib/kubelet/kubeconfig"));
        assert!(f.positional.is_empty());
    }

    #[test]
    fn bare_bool_does_not_consume_next() {
        let f = p(&["--anonymous-auth", "--read-only-port", "0", "foo"]);
        assert_eq!(f.value("anonymous-auth"), Some(Ok(FlagValue::Bool(true))));
        assert_eq!(f.last("read-only-port"), Some("0"));
        assert_eq!(f.positional, vec!["foo"]);
        let f = p(&["--anonymous-auth=false"]);
        assert_eq!(f.value("anonymous-auth"), Some(Ok(FlagValue::Bool(false))));
    }

    #[test]
    fn single_dash_and_underscore() {
        let f = p(&["-anonymous_auth=false", "-read-only-port=0"]);
        assert_eq!(f.value("anonymous-auth"), Some(Ok(FlagValue::Bool(false))));
        assert_eq!(f.last("read-only-port"), Some("0"));
    }

    #[test]
    fn repeats() {
        let f = p(&[
            "--authorization-mode=AlwaysAllow",
            "--authorization-mode=Webhook",
            "--feature-gates=A=true,B=false",
            "--feature-gates=B=true",
            "--tls-cipher-suites=X,Y",
            "--tls-cipher-suites=Z",
            "--kube-reserved=cpu=100m",
            "--kube-reserved=memory=1Gi",
        ]);
        assert_eq!(f.last("authorization-mode"), Some("Webhook"));
        let Some(Ok(FlagValue::BoolMap(g))) = f.value("feature-gates") else {
            panic!()
        };
        assert_eq!(g.get("A"), Some(&true));
        assert_eq!(g.get("B"), Some(&true));
        assert_eq!(
            f.value("tls-cipher-suites"),
            Some(Ok(FlagValue::List(vec![
                "X".into(),
                "Y".into(),
                "Z".into()
            ])))
        );
        let Some(Ok(FlagValue::Map(m))) = f.value("kube-reserved") else {
            panic!()
        };
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn eviction_langle_map() {
        let f = p(&["--eviction-hard=memory.available<100Mi,nodefs.available<10%"]);
        let Some(Ok(FlagValue::Map(m))) = f.value("eviction-hard") else {
            panic!()
        };
        assert_eq!(m.get("memory.available").map(String::as_str), Some("100Mi"));
    }

    #[test]
    fn bad_bool_is_an_error_not_a_value() {
        let f = p(&["--anonymous-auth=maybe"]);
        assert!(matches!(f.value("anonymous-auth"), Some(Err(_))));
        assert_eq!(f.errors.len(), 1);
    }

    #[test]
    fn unknown_flags_kept() {
        let f = p(&["--made-up", "--other=1", "--x", "val"]);
        assert!(f.has("made-up"));
        assert_eq!(f.last("other"), Some("1"));
        assert_eq!(f.last("x"), Some("val"));
    }

    #[test]
    fn changes_apply_to_flags_and_argv_alike() {
        let args = [
            "--config",
            "/var/lib/kubelet/config.yaml",
            "--read-only-port=10255",
            "--anonymous-auth",
            "--tls-cipher-suites=A",
            "--tls-cipher-suites=B",
            "--hostname-override",
            "node-x",
        ];
        let changes = [
            FlagChange::Remove {
                flag: "read-only-port".into(),
            },
            FlagChange::Set {
                flag: "anonymous-auth".into(),
                value: "false".into(),
            },
            FlagChange::Set {
                flag: "tls-cipher-suites".into(),
                value: "C,D".into(),
            },
            FlagChange::Remove {
                flag: "hostname-override".into(),
            },
        ];
        let flags = p(&args).with_changes(&changes);
        assert!(!flags.has("read-only-port"));
        assert!(!flags.has("hostname-override"));
        assert_eq!(
            flags.value("anonymous-auth"),
            Some(Ok(FlagValue::Bool(false)))
        );
        assert_eq!(
            flags.value("tls-cipher-suites"),
            Some(Ok(FlagValue::List(vec!["C".into(), "D".into()])))
        );
        assert_eq!(flags.last("config"), Some("/var/lib/kubelet/config.yaml"));
        let argv = args_with_changes(&args, &changes);
        assert_eq!(
            argv,
            vec![
                "--config",
                "/var/lib/kubelet/config.yaml",
                "--anonymous-auth=false",
                "--tls-cipher-suites=C,D"
            ]
        );
        let reparsed = Flags::parse(&argv);
        for name in [
            "read-only-port",
            "anonymous-auth",
            "tls-cipher-suites",
            "config",
        ] {
            assert_eq!(reparsed.value(name), flags.value(name), "{name}");
        }
    }

    #[test]
    fn microk8s_args_file() {
        let words = args_file_words(
            "--kubeconfig=${SNAP_DATA}/credentials/kubelet.config\n\
             --eviction-hard=\"memory.available<100Mi,nodefs.available<1Gi\"\n\
             # comment\n\
             --root-dir=${SNAP_COMMON}/var/lib/kubelet\n\
             --anonymous-auth=false\n",
        );
        assert_eq!(
            words[0],
            "--kubeconfig=/var/snap/microk8s/current/credentials/kubelet.config"
        );
        assert_eq!(
            words[1],
            "--eviction-hard=memory.available<100Mi,nodefs.available<1Gi"
        );
        assert_eq!(
            words[2],
            "--root-dir=/var/snap/microk8s/common/var/lib/kubelet"
        );
        assert_eq!(words.len(), 4);
    }
}
