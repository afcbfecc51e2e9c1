//! The effective configuration: precedence, drop-ins, types.

use super::*;
use serde_json::json;

#[test]
fn authorizer_types_of_a_structured_authorization_config() {
    let text = "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n  - type: Node\n    name: node\n  - type: RBAC\n    name: rbac\n";
    assert_eq!(authorizer_types(text).unwrap(), vec!["Node", "RBAC"]);
    assert!(authorizer_types("kind: KubeletConfiguration\n").is_err());
    assert!(
        authorizer_types("kind: AuthorizationConfiguration\nauthorizers:\n  - name: x\n").is_err()
    );
    assert!(authorizer_types(": : :").is_err());
}

const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

fn input(path: &str, body: &str) -> ConfigInput {
    ConfigInput {
        path: path.to_string(),
        text: Ok(format!("{HEAD}{body}")),
    }
}

fn known(c: &EffectiveConfig, key: &str) -> Setting {
    match c.get(key) {
        Lookup::Known(s) => s,
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn flags_only_defaults_are_insecure() {
    let c = EffectiveConfig::build(Flags::parse::<&str>(&[]), None, None, vec![], None);
    assert_eq!(
        known(&c, "authentication.anonymous.enabled").value,
        json!(true)
    );
    assert_eq!(known(&c, "authorization.mode").value, json!("AlwaysAllow"));
    assert_eq!(known(&c, "readOnlyPort").value, json!(10255));
    assert_eq!(
        known(&c, "readOnlyPort").source,
        Source::Default { flags_only: true }
    );
}

#[test]
fn config_file_replaces_legacy_defaults() {
    let c = EffectiveConfig::build(
        Flags::parse(&["--config=/c.yaml"]),
        Some(input("/c.yaml", "streamingConnectionIdleTimeout: 0s\n")),
        None,
        vec![],
        None,
    );
    assert_eq!(
        known(&c, "authentication.anonymous.enabled").value,
        json!(false)
    );
    assert_eq!(known(&c, "readOnlyPort").value, json!(0));
    let s = known(&c, "streamingConnectionIdleTimeout");
    assert_eq!(s.value, json!("4h0m0s"));
    assert!(s.note.is_some());
}

#[test]
fn dropins_merge_and_flags_win() {
    let mut c = EffectiveConfig::build(
        Flags::parse(&["--config=/c.yaml", "--config-dir=/d", "--read-only-port=0"]),
        Some(input(
            "/c.yaml",
            "readOnlyPort: 10255\nauthorization:\n  mode: Webhook\nclusterDNS: [a, b]\nkubeReserved:\n  cpu: 100m\n",
        )),
        Some("/d".into()),
        vec![
            input("/d/10-a.conf", "authorization:\n  mode: AlwaysAllow\nclusterDNS: [c]\nkubeReserved:\n  memory: 1Gi\nstreamingConnectionIdleTimeout: 0s\n"),
            input("/d/20-b.conf", "kubeReserved:\n  cpu: null\n"),
        ],
        None,
    );
    // 1.32+: the drop-in's null removes the base's entry (1.28–1.31 keep it).
    c.set_kubelet_version(Some("v1.33.2"));
    assert_eq!(known(&c, "readOnlyPort").value, json!(0));
    assert_eq!(
        known(&c, "readOnlyPort").source,
        Source::Flag {
            flag: "read-only-port".into(),
            origin: None,
        }
    );
    let m = known(&c, "authorization.mode");
    assert_eq!(m.value, json!("AlwaysAllow"));
    assert_eq!(m.source.label(), "drop-in:10-a.conf");
    assert_eq!(c.merged["clusterDNS"], json!(["c"]));
    assert_eq!(known(&c, "kubeReserved").value, json!({"memory": "1Gi"}));
    // From 1.32 a zero duration in a drop-in is defaulted (kubernetes PR #127421);
    // up to 1.31 it stays 0.
    assert_eq!(
        known(&c, "streamingConnectionIdleTimeout").value,
        json!("4h0m0s")
    );
    c.set_kubelet_version(Some("v1.31.1"));
    assert_eq!(
        known(&c, "streamingConnectionIdleTimeout").value,
        json!("0s")
    );
}

#[test]
fn config_dir_without_config_keeps_legacy_base() {
    // k3s#12164 / rke2#8094: drop-ins only, readOnlyPort stays 10255.
    let c = EffectiveConfig::build(
        Flags::parse(&["--config-dir=/d"]),
        None,
        Some("/d".into()),
        vec![input(
            "/d/00-rke2-defaults.conf",
            "authentication:\n  anonymous:\n    enabled: false\n",
        )],
        None,
    );
    assert_eq!(known(&c, "readOnlyPort").value, json!(10255));
    assert_eq!(
        known(&c, "authentication.anonymous.enabled").value,
        json!(false)
    );
    assert_eq!(known(&c, "authorization.mode").value, json!("AlwaysAllow"));
}

#[test]
fn parse_error_makes_file_settings_unknown_but_flags_known() {
    let c = EffectiveConfig::build(
        Flags::parse(&["--config=/c.yaml", "--anonymous-auth=false"]),
        Some(ConfigInput {
            path: "/c.yaml".into(),
            text: Ok("apiVersion: [unclosed\n".into()),
        }),
        None,
        vec![],
        None,
    );
    assert!(matches!(c.get("readOnlyPort"), Lookup::Unknown { .. }));
    assert_eq!(
        known(&c, "authentication.anonymous.enabled").value,
        json!(false)
    );
}

#[test]
fn json_config_and_kind_checks() {
    let c = EffectiveConfig::build(
        Flags::parse(&["--config", "/c.json"]),
        Some(ConfigInput {
            path: "/c.json".into(),
            text: Ok(r#"{"kind":"KubeletConfiguration","apiVersion":"kubelet.config.k8s.io/v1beta1","readOnlyPort":0,"featureGates":{"RotateKubeletServerCertificate":true}}"#.into()),
        }),
        None,
        vec![],
        None,
    );
    assert_eq!(known(&c, "readOnlyPort").value, json!(0));
    assert_eq!(
        c.feature_gate("RotateKubeletServerCertificate")
            .unwrap()
            .map(|g| g.0),
        Some(true)
    );
    assert!(parse_document("kind: Pod\napiVersion: v1\n").is_err());
    assert!(parse_document("kind: KubeletConfiguration\n").is_err());
}

#[test]
fn feature_gates_merge_flag_over_file() {
    let c = EffectiveConfig::build(
        Flags::parse(&["--config=/c.yaml", "--feature-gates=B=false"]),
        Some(input("/c.yaml", "featureGates:\n  A: true\n  B: true\n")),
        None,
        vec![],
        None,
    );
    assert_eq!(
        known(&c, "featureGates").value,
        json!({"A": true, "B": false})
    );
    assert_eq!(c.feature_gate("A").unwrap().map(|g| g.0), Some(true));
    assert_eq!(c.feature_gate("B").unwrap().map(|g| g.0), Some(false));
}

#[test]
fn wrong_type_is_unknown() {
    let c = EffectiveConfig::build(
        Flags::parse(&["--config=/c.yaml"]),
        Some(input("/c.yaml", "readOnlyPort: \"0\"\n")),
        None,
        vec![],
        None,
    );
    assert!(matches!(c.get("readOnlyPort"), Lookup::Unknown { .. }));
}
