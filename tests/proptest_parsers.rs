//! Property tests for every parser that sees host input: no input makes them panic, and
//! the properties the kubelet's own rules imply hold for any input.
//!
//! The agent reads whatever is on the node (argv, args files, YAML/JSON documents,
//! `/proc` files, kubeconfigs, PEM files, symlinks); a panic in any of these would take
//! the whole observation down, so they are all fed arbitrary and mutated-valid input.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Value};

use kubelet_sentinel::io::host::HostRoot;
use kubelet_sentinel::model::cert as certs;
use kubelet_sentinel::model::kubelet_config::effective::parse_document;
use kubelet_sentinel::model::kubelet_config::flags::{
    args_file_words, flag_kind, FlagKind, Flags, BOOL_FLAGS,
};
use kubelet_sentinel::model::kubelet_config::settings::{parse_go_duration, SettingKind, SETTINGS};
use kubelet_sentinel::model::kubelet_config::{ConfigInput, EffectiveConfig, Lookup, Source};
use kubelet_sentinel::observe::{kubeconfig, process};

const HEAD_YAML: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

/// Real documents from the fixtures, as mutation seeds.
const SEED_YAML: &str = include_str!("fixtures/kubeadm-hardened/var/lib/kubelet/config.yaml");
const SEED_JSON: &str = include_str!("fixtures/eks-al2/etc/kubernetes/kubelet/kubelet-config.json");
const SEED_DROPIN: &str = include_str!(
    "fixtures/rke2/var/lib/rancher/rke2/agent/etc/kubelet.conf.d/00-rke2-defaults.conf"
);
const SEED_ARGS: &str = include_str!("fixtures/microk8s/var/snap/microk8s/7394/args/kubelet");
const SEED_KUBECONFIG: &str = include_str!("fixtures/kubeadm-hardened/etc/kubernetes/kubelet.conf");
const SEED_PEM: &str = include_str!("fixtures/pki/node-k8s-cp-01.crt");

// ------------------------------------------------------------------- strategies

/// Words that stress a flag parser: dashes, `=`, empty strings, non-ASCII, known names.
fn argv_word() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-=a-z_]{0,12}",
        "-{0,3}[a-z_-]{0,20}(=[^\u{0}]{0,10})?",
        "--(config|read-only-port|anonymous-auth|feature-gates|eviction-hard|kube-reserved|tls-cipher-suites|authorization-mode)(=[-=,<a-zA-Z0-9.%]{0,16})?",
        "[ÿ€漢字\u{FFFD}é=-]{0,8}",
        Just("--".to_string()),
        Just("-".to_string()),
        Just(String::new()),
    ]
}

fn argv() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(argv_word(), 0..24)
}

/// An arbitrary JSON value (bounded).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "(0|[0-9]{1,3}(h|m|s|ms))+".prop_map(Value::String),
        "(Webhook|AlwaysAllow|VersionTLS1[0-3]|0\\.0\\.0\\.0|127\\.0\\.0\\.1|::)"
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z.]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A document whose keys are the real KubeletConfiguration paths, with arbitrary values
/// (right or wrong types), plus noise keys.
fn kubelet_document() -> impl Strategy<Value = Value> {
    let n = SETTINGS.len();
    (
        prop::collection::vec(prop::option::of(json_value()), n..=n),
        prop::collection::btree_map("[a-zA-Z]{1,10}", json_value(), 0..4),
    )
        .prop_map(|(values, noise)| {
            let mut doc = json!({
                "apiVersion": "kubelet.config.k8s.io/v1beta1",
                "kind": "KubeletConfiguration",
            });
            for (k, v) in noise {
                doc[k] = v;
            }
            for (def, v) in SETTINGS.iter().zip(values) {
                if let Some(v) = v {
                    set_path(&mut doc, def.path, v);
                }
            }
            doc
        })
}

fn set_path(doc: &mut Value, path: &[&str], v: Value) {
    let mut cur = doc;
    for p in &path[..path.len() - 1] {
        if !cur.get(*p).is_some_and(Value::is_object) {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = v;
}

/// Random edits (delete a span, insert YAML/JSON-significant characters) of a valid text.
fn mutated(seed: &'static str) -> impl Strategy<Value = String> {
    let chars: Vec<char> = seed.chars().collect();
    let n = chars.len();
    prop::collection::vec(
        (
            0..=n,
            0usize..12,
            "[\\PC\t\n\r:{}\\[\\],\"'#&*!|>%@`-]{0,6}",
        ),
        1..6,
    )
    .prop_map(move |edits| {
        let mut c = chars.clone();
        for (pos, del, ins) in edits {
            let pos = pos.min(c.len());
            let end = (pos + del).min(c.len());
            c.splice(pos..end, ins.chars());
        }
        c.into_iter().collect()
    })
}

/// A valid value for a setting's kind (used where the value must win).
fn valid_value(kind: SettingKind) -> BoxedStrategy<Value> {
    match kind {
        SettingKind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        SettingKind::Int => (-5i64..70000).prop_map(Value::from).boxed(),
        SettingKind::String => "[a-zA-Z0-9./:_-]{0,20}".prop_map(Value::String).boxed(),
        SettingKind::Duration => "[1-9][0-9]{0,2}(h|m|s)".prop_map(Value::String).boxed(),
        SettingKind::StringList => prop::collection::vec("[A-Z_0-9]{1,20}", 0..5)
            .prop_map(|v| Value::Array(v.into_iter().map(Value::String).collect()))
            .boxed(),
        SettingKind::StringMap => {
            prop::collection::btree_map("[a-z.]{1,10}", "[0-9]{1,3}(Mi|%|m)", 1..4)
                .prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
                })
                .boxed()
        }
        SettingKind::BoolMap => {
            prop::collection::btree_map("[A-Z][a-zA-Z]{1,12}", any::<bool>(), 1..4)
                .prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k, Value::Bool(v))).collect())
                })
                .boxed()
        }
    }
}

fn input(path: &str, text: String) -> ConfigInput {
    ConfigInput {
        path: path.to_string(),
        text: Ok(text),
    }
}

fn exercise(cfg: &EffectiveConfig) {
    for def in SETTINGS {
        match cfg.get(def.key) {
            Lookup::Known(s) => {
                let _ = s.source.label();
                let _ = s.source.describe();
            }
            Lookup::Unknown { reason } => assert!(!reason.is_empty(), "{}: empty reason", def.key),
        }
    }
    let _ = cfg.feature_gate("RotateKubeletServerCertificate");
    let _ = cfg.fingerprint_material();
}

// ------------------------------------------------------------------------ flags

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn flags_parse_never_panics(args in argv()) {
        let f = Flags::parse(&args);
        // Every word ends up somewhere: an occurrence (possibly with its value) or positional.
        prop_assert!(f.occurrences.len() + f.positional.len() <= args.len());
        for o in &f.occurrences {
            prop_assert!(o.position < args.len());
            prop_assert!(!o.name.is_empty());
            let _ = f.value(&o.name);
            let _ = f.last(&o.name);
        }
        for name in ["feature-gates", "eviction-hard", "kube-reserved", "tls-cipher-suites", "anonymous-auth", "read-only-port"] {
            let _ = f.value(name);
        }
    }

    /// pflag: `--name=value` and `--name value` are the same for a flag that takes a value.
    #[test]
    fn equals_and_space_forms_agree(
        name in "[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,8}){0,3}",
        value in "[^-][^\u{0}]{0,20}|",
        before in prop::collection::vec("--[a-z]{1,8}=[a-z0-9]{0,4}", 0..3),
    ) {
        prop_assume!(flag_kind(&name) != FlagKind::Bool);
        let mut a = before.clone();
        a.push(format!("--{name}={value}"));
        let mut b = before.clone();
        b.push(format!("--{name}"));
        b.push(value.clone());
        let fa = Flags::parse(&a);
        let fb = Flags::parse(&b);
        prop_assert_eq!(fa.last(&name), Some(value.as_str()));
        prop_assert_eq!(fb.last(&name), Some(value.as_str()));
        prop_assert!(fb.positional.is_empty());
    }

    /// A known value-taking flag consumes the next word even when it starts with `-`.
    #[test]
    fn known_value_flag_consumes_dash_values(
        flag in "(config|read-only-port|authorization-mode|kubeconfig|hostname-override)",
        value in "-[^\u{0}]{0,12}",
    ) {
        let f = Flags::parse(&[format!("--{flag}"), value.clone()]);
        prop_assert_eq!(f.last(&flag), Some(value.as_str()));
        prop_assert!(f.positional.is_empty());
    }

    /// A boolean flag never consumes the next word.
    #[test]
    fn bool_flag_never_consumes_next(idx in 0..BOOL_FLAGS.len(), next in "[a-z0-9/]{1,12}") {
        let flag = BOOL_FLAGS[idx];
        let f = Flags::parse(&[format!("--{flag}"), next.clone()]);
        prop_assert_eq!(f.last(flag), Some("true"));
        prop_assert_eq!(f.positional, vec![next]);
    }

    /// Scalars: the last occurrence wins, whatever came before.
    #[test]
    fn last_occurrence_wins(values in prop::collection::vec("[a-zA-Z0-9]{0,10}", 1..6)) {
        let args: Vec<String> = values.iter().map(|v| format!("--authorization-mode={v}")).collect();
        let f = Flags::parse(&args);
        prop_assert_eq!(f.last("authorization-mode"), values.last().map(String::as_str));
    }

    #[test]
    fn args_file_words_never_panic(text in any::<String>()) {
        let words = args_file_words(&text);
        let _ = Flags::parse(&words);
    }

    #[test]
    fn args_file_words_on_mutated_microk8s_file(text in mutated(SEED_ARGS)) {
        let _ = Flags::parse(&args_file_words(&text));
    }

    /// One `--flag=value` per line (the MicroK8s format) round-trips, quotes removed.
    #[test]
    fn args_file_lines_round_trip(
        pairs in prop::collection::vec(("[a-z][a-z-]{0,15}", "[a-zA-Z0-9/.,<=%-]{0,20}"), 0..8),
        quote in any::<bool>(),
    ) {
        let text: String = pairs
            .iter()
            .map(|(k, v)| if quote { format!("--{k}=\"{v}\"\n") } else { format!("--{k}={v}\n") })
            .collect();
        let words = args_file_words(&text);
        let want: Vec<String> = pairs.iter().map(|(k, v)| format!("--{k}={v}")).collect();
        prop_assert_eq!(words, want);
    }
}

// --------------------------------------------------------------- config documents

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_document_never_panics(text in any::<String>()) {
        let _ = parse_document(&text);
        let _ = parse_document(&format!("{HEAD_YAML}{text}"));
    }

    #[test]
    fn parse_document_on_mutated_yaml(text in mutated(SEED_YAML)) {
        let _ = parse_document(&text);
    }

    #[test]
    fn parse_document_on_mutated_json(text in mutated(SEED_JSON)) {
        let _ = parse_document(&text);
    }

    /// Whatever the files hold, every setting lookup answers (known or unknown with a
    /// reason), with or without flags, drop-ins and a base file.
    #[test]
    fn effective_config_lookups_never_panic(
        doc in kubelet_document(),
        dropin in kubelet_document(),
        args in argv(),
        as_yaml in any::<bool>(),
        with_file in any::<bool>(),
    ) {
        let text = if as_yaml {
            // JSON is YAML; keep it flow-style so arbitrary strings stay valid.
            serde_json::to_string(&doc).unwrap_or_default().replacen('{', "{ ", 1)
        } else {
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        };
        let flags = Flags::parse(&args);
        let file = with_file.then(|| input("/var/lib/kubelet/config.yaml", text.clone()));
        let cfg = EffectiveConfig::build(
            flags,
            file,
            Some("/etc/kubernetes/kubelet.conf.d".into()),
            vec![input("/etc/kubernetes/kubelet.conf.d/10-x.conf", serde_json::to_string(&dropin).unwrap_or_default())],
            None,
        );
        exercise(&cfg);
    }

    #[test]
    fn effective_config_on_mutated_documents(
        file in mutated(SEED_YAML),
        dropin in mutated(SEED_DROPIN),
        args in argv(),
    ) {
        let cfg = EffectiveConfig::build(
            Flags::parse(&args),
            Some(input("/c.yaml", file)),
            Some("/d".into()),
            vec![input("/d/00.conf", dropin)],
            None,
        );
        exercise(&cfg);
    }

    /// A drop-in that sets key K decides K (when no flag does), whatever the base file
    /// says about it, unless the base file's own value cannot be decoded (the kubelet then
    /// refuses the file before any drop-in is read); from 1.32 a zero value of a defaulted
    /// field is defaulted again after the merge (kubernetes PR #127421).
    #[test]
    fn dropin_setting_a_key_decides_it(
        (idx, value) in (0..SETTINGS.len()).prop_flat_map(|i| (Just(i), valid_value(SETTINGS[i].kind))),
        base in kubelet_document(),
        with_file in any::<bool>(),
        minor in prop::sample::select(vec![31u32, 33, 37]),
    ) {
        let def = &SETTINGS[idx];
        // A base `key: {}` is covered by `dropin_into_an_empty_map_is_the_dropins` below.
        let base_at = def.path.iter().try_fold(&base, |v, p| v.get(*p));
        prop_assume!(!(with_file && base_at.is_some_and(|v| v.as_object().is_some_and(serde_json::Map::is_empty))));
        let mut patch = json!({"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"});
        set_path(&mut patch, def.path, value.clone());
        let path = "/etc/kubernetes/kubelet.conf.d/50-k.conf";
        let base_file = with_file.then(|| input("/var/lib/kubelet/config.yaml", serde_json::to_string(&base).unwrap_or_default()));
        let mut cfg = EffectiveConfig::build(
            Flags::parse::<&str>(&[]),
            base_file.clone(),
            Some("/etc/kubernetes/kubelet.conf.d".into()),
            vec![input(path, serde_json::to_string(&patch).unwrap_or_default())],
            None,
        );
        cfg.set_kubelet_version(Some(&format!("v1.{minor}.0")));
        let mut base_only = EffectiveConfig::build(Flags::parse::<&str>(&[]), base_file, None, vec![], None);
        base_only.set_kubelet_version(Some(&format!("v1.{minor}.0")));
        match cfg.get(def.key) {
            Lookup::Known(s) => {
                match kubelet_sentinel::model::kubelet_config::loading::defaulted(def, &value).filter(|_| minor >= 32) {
                    Some(default) => {
                        prop_assert_eq!(&s.value, &default, "{}", def.key);
                        prop_assert_eq!(&s.source, &Source::Default { flags_only: false });
                    }
                    None => {
                        prop_assert_eq!(&s.source, &Source::DropIn { path: path.to_string() }, "{}", def.key);
                        prop_assert_eq!(s.source.label(), "drop-in:50-k.conf");
                        if !matches!(def.kind, SettingKind::StringMap | SettingKind::BoolMap) {
                            prop_assert_eq!(&s.value, &value, "{}", def.key);
                        }
                    }
                }
            }
            Lookup::Unknown { reason } => {
                // Only a base file the kubelet refuses (not a document, or its own value of
                // K undecodable) may make it unknown, or, for a map, base entries of the
                // wrong type that the merge keeps.
                let is_map = matches!(def.kind, SettingKind::StringMap | SettingKind::BoolMap);
                let base_map = def.path.iter().try_fold(&base, |v, p| v.get(*p)).is_some_and(Value::is_object);
                let base_refused = matches!(base_only.get(def.key), Lookup::Unknown { .. });
                prop_assert!(
                    with_file && (cfg.has_errors() || base_refused || (is_map && base_map)),
                    "{}: {reason}",
                    def.key
                );
            }
        }
    }

    /// cmd/kubelet/app/server.go `kubeletConfigFlagPrecedence`: a flag beats the file and
    /// every drop-in.
    #[test]
    fn flag_beats_file_and_dropins(port_file in 0i64..65536, port_dropin in 0i64..65536, port_flag in 0i64..65536) {
        let cfg = EffectiveConfig::build(
            Flags::parse(&[format!("--read-only-port={port_flag}"), "--config=/c.yaml".into()]),
            Some(input("/c.yaml", format!("{HEAD_YAML}readOnlyPort: {port_file}\n"))),
            Some("/d".into()),
            vec![input("/d/10.conf", format!("{HEAD_YAML}readOnlyPort: {port_dropin}\n"))],
            None,
        );
        let s = cfg.get("readOnlyPort");
        let s = s.known().expect("known");
        prop_assert_eq!(&s.value, &json!(port_flag));
        prop_assert_eq!(s.source.label(), "flag");
    }
}

// ------------------------------------------------------------------- durations

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn go_duration_never_panics(s in any::<String>()) {
        let _ = parse_go_duration(&s);
    }

    #[test]
    fn go_duration_h_m_s(h in 0u32..1000, m in 0u32..1000, s in 0u32..1000, neg in any::<bool>()) {
        let text = format!("{}{h}h{m}m{s}s", if neg { "-" } else { "" });
        let want = f64::from(h) * 3600.0 + f64::from(m) * 60.0 + f64::from(s);
        let got = parse_go_duration(&text).expect("valid duration");
        let want = if neg { -want } else { want };
        prop_assert!((got - want).abs() < 1e-6, "{text}: {got} != {want}");
    }

    /// A unit is mandatory in Go except for a bare "0".
    #[test]
    fn go_duration_needs_a_unit(n in 1u64..1_000_000) {
        prop_assert_eq!(parse_go_duration(&n.to_string()), None);
    }
}

// ---------------------------------------------------------------- /proc parsers

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn split_cmdline_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (words, lossy) = process::split_cmdline(&bytes);
        if std::str::from_utf8(&bytes).is_ok() {
            prop_assert!(!lossy);
        }
        let _ = process::classify(&words, None);
    }

    /// argv joined with NULs (and the kernel's trailing NUL) splits back to argv.
    #[test]
    fn split_cmdline_round_trips(words in prop::collection::vec("[^\u{0}]{0,16}", 1..12)) {
        prop_assume!(words != [String::new()]);
        let mut bytes = Vec::new();
        for w in &words {
            bytes.extend_from_slice(w.as_bytes());
            bytes.push(0);
        }
        let (got, lossy) = process::split_cmdline(&bytes);
        prop_assert!(!lossy);
        prop_assert_eq!(got, words);
    }

    #[test]
    fn classify_never_panics(argv in prop::collection::vec(argv_word(), 0..4), exe in prop::option::of(any::<String>())) {
        let _ = process::classify(&argv, exe.as_deref());
    }

    /// `kubelet` in any directory (or none) is the kubelet; `kubelet-<anything>` is not.
    #[test]
    fn classify_kubelet_by_basename(dir in "(/[a-z0-9.]{1,8}){0,3}", suffix in "[a-z-]{1,8}") {
        let k = vec![format!("{dir}/kubelet").trim_start_matches('/').to_string(), "--v=2".into()];
        prop_assert_eq!(process::classify(&k, None), Some(process::ProcessKind::Kubelet));
        let other = vec![format!("{dir}/kubelet-{suffix}")];
        prop_assert_eq!(process::classify(&other, None), None);
    }

    #[test]
    fn cgroup_parser_never_panics(text in any::<String>()) {
        let _ = process::unit_from_cgroup(&text);
    }

    #[test]
    fn cgroup_unit_v1_and_v2(unit in "[a-z][a-z0-9@_-]{0,20}", slice in "(system|user|machine)\\.slice") {
        let v2 = format!("0::/{slice}/{unit}.service\n");
        prop_assert_eq!(process::unit_from_cgroup(&v2), Some(format!("{unit}.service")));
        let v1 = format!("12:pids:/{slice}/{unit}.service\n3:cpuset:/\n1:name=systemd:/{slice}/{unit}.service\n");
        prop_assert_eq!(process::unit_from_cgroup(&v1), Some(format!("{unit}.service")));
        // A pod's scope is not a unit.
        let pod = format!("0::/kubepods.slice/kubepods-pod{unit}.slice/cri-containerd-{unit}.scope\n");
        prop_assert_eq!(process::unit_from_cgroup(&pod), None);
    }

    #[test]
    fn stat_parser_never_panics(text in any::<String>()) {
        let _ = process::start_time_from_stat(&text);
    }

    /// Field 22 is found whatever the command name holds (spaces, parentheses).
    #[test]
    fn stat_start_time(pid in 1u32..4_000_000, comm in "[a-zA-Z0-9 ()._:-]{0,15}", start in any::<u64>()) {
        let line = format!(
            "{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 30 0 {start} 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        );
        prop_assert_eq!(process::start_time_from_stat(&line), Some(start));
    }
}

// ------------------------------------------------------- kubeconfig and certificates

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn kubeconfig_parser_never_panics(text in any::<String>(), dir in "(/[a-z]{1,6}){0,3}") {
        let _ = kubeconfig::parse_credential(&text, &dir);
    }

    #[test]
    fn kubeconfig_parser_on_mutated_kubeconfig(text in mutated(SEED_KUBECONFIG)) {
        if let Ok(kubeconfig::CredentialSource::InlineCert(pem)) = kubeconfig::parse_credential(&text, "/etc/kubernetes") {
            let _ = certs::summarize_pem(&pem);
        }
    }

    /// A relative client-certificate is resolved against the kubeconfig's directory
    /// (client-go), an absolute one is kept.
    #[test]
    fn kubeconfig_cert_path_resolution(dir in "(/[a-z]{1,6}){1,3}", rel in "[a-z]{1,6}(/[a-z.-]{1,10}){0,2}", abs in any::<bool>()) {
        let path = if abs { format!("/{rel}") } else { rel.clone() };
        let kc = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nusers:\n- name: u\n  user:\n    client-certificate: \"{path}\"\n"
        );
        let want = if abs { path.clone() } else { format!("{dir}/{rel}") };
        prop_assert_eq!(
            kubeconfig::parse_credential(&kc, &dir).expect("valid kubeconfig"),
            kubeconfig::CredentialSource::CertFile(want)
        );
    }

    #[test]
    fn pem_and_base64_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), text in any::<String>()) {
        let _ = certs::summarize_pem(&bytes);
        let _ = certs::decode_base64(&text);
    }

    #[test]
    fn pem_parser_on_mutated_certificate(text in mutated(SEED_PEM)) {
        let _ = certs::summarize_pem(text.as_bytes());
    }
}

// ------------------------------------------------------------ host path resolution

/// A small tree with hostile symlinks, shared by every case.
fn hostile_tree() -> &'static (tempfile::TempDir, HostRoot) {
    static TREE: OnceLock<(tempfile::TempDir, HostRoot)> = OnceLock::new();
    TREE.get_or_init(|| {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        std::fs::create_dir_all(r.join("a/b/c")).expect("mkdir");
        std::fs::write(r.join("a/b/c/f"), "f").expect("write");
        symlink("/a/b", r.join("a/abs")).expect("symlink");
        symlink("../../../../../../..", r.join("a/up")).expect("symlink");
        symlink("/a/loop", r.join("a/loop")).expect("symlink");
        symlink("../c", r.join("a/b/rel")).expect("symlink");
        symlink("/etc/passwd", r.join("a/passwd")).expect("symlink");
        let host = HostRoot::new(r).expect("host");
        (dir, host)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever path and whatever symlinks, resolution stays inside the root: the result is
    /// a clean host-absolute path whose real location is under the root, or an error.
    #[test]
    fn resolve_never_escapes_the_root(
        comps in prop::collection::vec(
            prop::sample::select(vec!["a", "b", "c", "f", "abs", "up", "loop", "rel", "passwd", "..", ".", "", "x"]),
            0..10,
        ),
        absolute in any::<bool>(),
        follow in any::<bool>(),
    ) {
        let (dir, host) = hostile_tree();
        let path = format!("{}{}", if absolute { "/" } else { "" }, comps.join("/"));
        if let Ok(p) = host.resolve(&path, follow) {
            prop_assert!(p.starts_with('/'), "{path} -> {p}");
            prop_assert!(!p.split('/').any(|c| c == ".." || c == "."), "{path} -> {p}");
            let real = dir.path().join(p.trim_start_matches('/'));
            let canon_root = std::fs::canonicalize(dir.path()).expect("root");
            if let Ok(c) = std::fs::canonicalize(&real) {
                prop_assert!(c.starts_with(&canon_root) || !follow, "{path} -> {p} -> {}", c.display());
            }
        }
        // Reads never panic either (and never read /etc/passwd of this machine).
        if let Ok(bytes) = host.read(&path) {
            prop_assert_eq!(bytes, b"f".to_vec(), "{}", path);
        }
    }
}

// --------------------------------------------------------- pathological documents

/// Run `f` on a thread with a deadline: a parser that hangs fails the test instead of
/// hanging the suite.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .expect("parser did not finish in time")
}

#[test]
fn yaml_alias_bomb_is_refused_quickly() {
    let mut doc = String::from(HEAD_YAML);
    doc.push_str("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        doc.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
    }
    let r = within(20, move || parse_document(&doc).map(|_| ()));
    assert!(r.is_err(), "a 10^10-node alias expansion must be refused");
}

#[test]
fn deeply_nested_documents_do_not_overflow_the_stack() {
    for open in ["[", "{\"a\":"] {
        for depth in [200usize, 10_000, 100_000] {
            let text = open.repeat(depth);
            let _ = within(20, move || parse_document(&text).is_ok());
            let yaml = format!("{HEAD_YAML}x: {}", "[".repeat(depth));
            let _ = within(20, move || parse_document(&yaml).is_ok());
        }
    }
}

/// A file's `kubeReserved: {}` merged with a drop-in's `kubeReserved: {cpu: 100m}`: the
/// effective map is the drop-in's entries, so the source is the drop-in. CORRECT, NOT
/// CURRENT (see report): the empty map in the file keeps a provenance entry of its own
/// that outranks the drop-in's leaves (found by `dropin_setting_a_key_decides_it`).
#[test]
fn dropin_into_an_empty_map_is_the_dropins() {
    let cfg = EffectiveConfig::build(
        Flags::parse(&["--config=/c.yaml"]),
        Some(input("/c.yaml", format!("{HEAD_YAML}kubeReserved: {{}}\n"))),
        Some("/d".into()),
        vec![input(
            "/d/10-r.conf",
            format!("{HEAD_YAML}kubeReserved:\n  cpu: 100m\n"),
        )],
        None,
    );
    let s = cfg.get("kubeReserved");
    let s = s.known().expect("known");
    assert_eq!(s.value, json!({"cpu": "100m"}));
    assert_eq!(s.source.label(), "drop-in:10-r.conf");
}

#[test]
fn bool_map_flags_accumulate_like_pflag() {
    // A fixed example of the MapStringBool rule the proptests rely on.
    let f = Flags::parse(&["--feature-gates=A=true,B=false", "--feature-gates=B=true"]);
    let Some(Ok(kubelet_sentinel::model::kubelet_config::flags::FlagValue::BoolMap(g))) =
        f.value("feature-gates")
    else {
        panic!("feature-gates")
    };
    let want: BTreeMap<String, bool> = [("A".to_string(), true), ("B".to_string(), true)].into();
    assert_eq!(g, want);
}
