//! Pod annotations that steer instances, and the ASK aliases accepted for them so that
//! manifests written for Alibaba Cloud's Serverless Kubernetes run unchanged.

use serde_json::Value;

/// The instance spec, `2-4Gi`, or a comma-separated list of candidates.
pub const INSTANCE_SPEC: &str = "nodeless.dev/instance-spec";
/// `SpotAsPriceGo` or `SpotWithPriceLimit`.
pub const SPOT_STRATEGY: &str = "nodeless.dev/spot-strategy";
/// The hourly price cap of a spot instance, up to 3 decimals.
pub const SPOT_PRICE_LIMIT: &str = "nodeless.dev/spot-price-limit";
/// The spot protection period in hours (default 1, `0` for none).
pub const SPOT_DURATION: &str = "nodeless.dev/spot-duration";
/// Whether to fall back to on-demand when there is no spot capacity.
pub const SPOT_FALLBACK: &str = "nodeless.dev/spot-fallback";
/// The GPU model for `nvidia.com/gpu`; ours only, as the product names no ASK alias for it.
pub const GPU_TYPE: &str = "nodeless.dev/gpu-type";

/// Our key → its ASK alias.
pub const ALIASES: &[(&str, &str)] = &[
    (INSTANCE_SPEC, "k8s.aliyun.com/eci-use-specs"),
    (SPOT_STRATEGY, "k8s.aliyun.com/eci-spot-strategy"),
    (SPOT_PRICE_LIMIT, "k8s.aliyun.com/eci-spot-price-limit"),
    (SPOT_DURATION, "k8s.aliyun.com/eci-spot-duration"),
    (SPOT_FALLBACK, "k8s.aliyun.com/eci-spot-fallback"),
];

/// The ASK key accepted in place of one of ours.
pub fn ask_alias(ours: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|(o, _)| *o == ours)
        .map(|(_, ask)| *ask)
}

/// The value of annotation `ours` (a full key such as [`INSTANCE_SPEC`]) on `obj`, else of
/// its ASK alias. Blank values count as absent, so an emptied key does not hide the other.
pub fn annotation<'a>(obj: &'a Value, ours: &str) -> Option<&'a str> {
    entry(obj, ours).map(|(_, value)| value)
}

/// Like [`annotation`], also saying which key held the value (for messages).
pub(super) fn entry<'a, 'k>(obj: &'a Value, ours: &'k str) -> Option<(&'k str, &'a str)> {
    let annotations = obj.get("metadata")?.get("annotations")?;
    let read = |key: &str| {
        annotations
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(v) = read(ours) {
        return Some((ours, v));
    }
    let alias = ask_alias(ours)?;
    read(alias).map(|v| (alias, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(annotations: Value) -> Value {
        json!({"metadata": {"name": "p", "annotations": annotations}})
    }

    #[test]
    fn our_key_wins_over_the_ask_alias() {
        let p = pod(json!({INSTANCE_SPEC: "2-4Gi", "k8s.aliyun.com/eci-use-specs": "4-8Gi"}));
        assert_eq!(annotation(&p, INSTANCE_SPEC), Some("2-4Gi"));
    }

    #[test]
    fn every_ask_alias_is_read_when_ours_is_absent() {
        for (ours, ask) in ALIASES {
            let p = pod(json!({*ask: "v"}));
            assert_eq!(annotation(&p, ours), Some("v"), "{ours}");
        }
    }

    #[test]
    fn a_blank_value_counts_as_absent() {
        let p = pod(json!({SPOT_DURATION: " ", "k8s.aliyun.com/eci-spot-duration": "0"}));
        assert_eq!(annotation(&p, SPOT_DURATION), Some("0"));
        assert_eq!(
            annotation(&pod(json!({SPOT_FALLBACK: ""})), SPOT_FALLBACK),
            None
        );
    }

    #[test]
    fn keys_without_an_alias_are_read_as_ours_only() {
        let p = pod(json!({GPU_TYPE: "T4"}));
        assert_eq!(annotation(&p, GPU_TYPE), Some("T4"));
        assert_eq!(ask_alias(GPU_TYPE), None);
    }

    #[test]
    fn missing_or_malformed_annotations_read_as_none() {
        assert_eq!(annotation(&json!({}), INSTANCE_SPEC), None);
        assert_eq!(
            annotation(&json!({"metadata": {"annotations": "x"}}), INSTANCE_SPEC),
            None
        );
        assert_eq!(
            annotation(&pod(json!({INSTANCE_SPEC: 2})), INSTANCE_SPEC),
            None
        );
    }
}
