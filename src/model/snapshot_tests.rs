//! Tests of the snapshot's plain types.

use super::*;

#[test]
fn closed_strings_serialize_as_they_are_named() {
    for f in [
        KubeletFlavour::Kubelet,
        KubeletFlavour::Hyperkube,
        KubeletFlavour::Kubelite,
        KubeletFlavour::K3s,
    ] {
        assert_eq!(
            serde_json::to_value(f).unwrap(),
            serde_json::json!(f.as_str())
        );
    }
    for s in VersionSource::ALL {
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            serde_json::json!(s.as_str())
        );
        assert_eq!(s.as_str().parse::<VersionSource>(), Ok(s));
    }
}
