//! Kubernetes label keys and values, as the API server validates them: a Node's labels
//! become the `node_pool` label of `kubelet_sentinel_node_info`, and `--node-pool-labels`
//! names label keys.
//!
//! The rules are apimachinery's `pkg/util/validation/validation.go`: `IsValidLabelValue`
//! (at most 63 characters, `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, empty allowed)
//! and `IsQualifiedName` (an optional DNS-1123 subdomain prefix of at most 253 characters
//! and `/`, then a name of at most 63 characters with the label value's alphabet, not
//! empty).

use std::collections::BTreeMap;

/// `LabelValueMaxLength` (and `qualifiedNameMaxLength`) in apimachinery.
pub const MAX_VALUE_LEN: usize = 63;
/// `DNS1123SubdomainMaxLength`: the longest prefix of a qualified name.
pub const MAX_PREFIX_LEN: usize = 253;

/// The default `--node-pool-labels`: the node-pool label of GKE, EKS managed node groups,
/// AKS, Karpenter, and the conventional `node.kubernetes.io/pool`.
pub const DEFAULT_POOL_LABELS: &[&str] = &[
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "kubernetes.azure.com/agentpool",
    "karpenter.sh/nodepool",
    "node.kubernetes.io/pool",
];

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most [`MAX_VALUE_LEN`] (a non-empty
/// label value, or the name part of a key).
fn is_name(s: &str) -> bool {
    s.len() <= MAX_VALUE_LEN
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars()
            .all(|c| alnum(c) || c == '-' || c == '_' || c == '.')
}

/// A valid label value (`IsValidLabelValue`): empty, or a name of at most 63 characters.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_name(s)
}

/// A DNS-1123 subdomain (`IsDNS1123Subdomain`): lower-case labels of `[a-z0-9-]`, each
/// starting and ending alphanumeric, joined by `.`, at most 253 characters.
fn is_dns1123_subdomain(s: &str) -> bool {
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= MAX_PREFIX_LEN
        && s.split('.').all(|part| {
            part.starts_with(lower)
                && part.ends_with(lower)
                && part.chars().all(|c| lower(c) || c == '-')
        })
}

/// A valid label key (`IsQualifiedName`): `name` or `prefix/name`.
pub fn is_label_key(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_name(name),
        None => is_name(s),
    }
}

/// The node pool of a Node with these labels: the value of the first of `keys` it carries
/// with a valid value. `None` when it carries none of them. An invalid value (the API
/// server never stores one) counts as not carried, so no unbounded or odd text becomes a
/// metric label.
pub fn pool(labels: &BTreeMap<String, String>, keys: &[String]) -> Option<String> {
    keys.iter()
        .filter_map(|k| labels.get(k))
        .find(|v| is_label_value(v))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values() {
        for ok in ["", "a", "pool-1", "A.b_c-9", &"x".repeat(63)] {
            assert!(is_label_value(ok), "{ok:?}");
        }
        for bad in ["-a", "a-", "a b", "a/b", "é", &"x".repeat(64), "a\n"] {
            assert!(!is_label_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn label_keys() {
        for ok in DEFAULT_POOL_LABELS
            .iter()
            .copied()
            .chain(["pool", "a.b/c_d"])
        {
            assert!(is_label_key(ok), "{ok:?}");
        }
        let long_prefix = format!("{}/x", "a".repeat(254));
        for bad in [
            "",
            "/pool",
            "Example.com/pool",
            "a/",
            "a/b/c",
            "-x",
            &long_prefix,
        ] {
            assert!(!is_label_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_first_listed_label_with_a_valid_value_wins() {
        let keys: Vec<String> = ["first/pool", "second/pool", "third/pool"]
            .map(String::from)
            .to_vec();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        // Order of the keys, not of the labels.
        let l = labels(&[("third/pool", "c"), ("second/pool", "b")]);
        assert_eq!(pool(&l, &keys).as_deref(), Some("b"));
        let l = labels(&[("first/pool", "bad value"), ("third/pool", "c")]);
        assert_eq!(pool(&l, &keys).as_deref(), Some("c"));
        let l = labels(&[("other", "x")]);
        assert_eq!(pool(&l, &keys), None);
        assert_eq!(pool(&l, &[]), None);
        let l = labels(&[("first/pool", &"y".repeat(64))]);
        assert_eq!(pool(&l, &keys), None);
    }
}
