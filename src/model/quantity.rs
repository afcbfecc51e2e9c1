//! Kubernetes resource quantities (`100Mi`, `5%`, `0`) as the kubelet reads its
//! reservations and eviction thresholds.

/// Whether a Kubernetes resource quantity or percentage (`0`, `0%`, `0Mi`, `100Mi`,
/// `5%`, `1e3`, `0.5Gi`) is zero. `None` when it is not a valid non-negative quantity.
/// The suffixes are those of apimachinery's `resource.ParseQuantity`
/// (staging/src/k8s.io/apimachinery/pkg/api/resource/quantity.go).
pub fn quantity_is_zero(s: &str) -> Option<bool> {
    let s = s.trim();
    let number = if let Some(n) = s.strip_suffix('%') {
        n
    } else {
        const SUFFIXES: &[&str] = &[
            "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
        ];
        // A plain or exponent form ("1e3", "0") parses as a number as it is.
        if s.parse::<f64>().is_ok() {
            s
        } else {
            SUFFIXES
                .iter()
                .find_map(|suf| s.strip_suffix(suf))
                .unwrap_or(s)
        }
    };
    let number = number.trim();
    if number.is_empty()
        || !number
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = number.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some(v == 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for zero in ["0", "0%", "0Mi", "0.0%", "0Gi", "0k", "0e3", " 0 "] {
            assert_eq!(quantity_is_zero(zero), Some(true), "{zero}");
        }
        for non_zero in ["100Mi", "5%", "1", "0.5Gi", "1e3", "250m", "1Ki", "1E"] {
            assert_eq!(quantity_is_zero(non_zero), Some(false), "{non_zero}");
        }
        for bad in ["", "%", "Mi", "lots", "-1Mi", "1Xi", "1.2.3"] {
            assert_eq!(quantity_is_zero(bad), None, "{bad}");
        }
    }
}
