use super::*;
use serde_json::json;

fn pod(annotations: Value) -> Value {
    json!({"metadata": {"name": "p", "annotations": annotations}})
}

fn policy(annotations: Value) -> Option<SpotPolicy> {
    spot_policy(&pod(annotations)).expect("valid policy")
}

fn error(annotations: Value) -> String {
    spot_policy(&pod(annotations))
        .expect_err("invalid")
        .to_string()
}

#[test]
fn a_pod_without_a_strategy_is_on_demand() {
    assert_eq!(policy(json!({})), None);
    assert_eq!(spot_policy(&json!({"metadata": {}})), Ok(None));
    // Other spot annotations alone do not make a spot Pod, and are not checked.
    assert_eq!(
        policy(json!({SPOT_PRICE_LIMIT: "x", SPOT_DURATION: "y"})),
        None
    );
    assert!(validate_spot_annotations(&pod(json!({SPOT_FALLBACK: "maybe"}))).is_empty());
}

#[test]
fn as_price_go_defaults_to_an_hour_of_protection_without_fallback() {
    let p = policy(json!({SPOT_STRATEGY: "SpotAsPriceGo"})).expect("spot");
    assert_eq!(
        p,
        SpotPolicy {
            strategy: SpotStrategy::AsPriceGo,
            protection: Duration::from_secs(3600),
            fallback: false
        }
    );
}

#[test]
fn as_price_go_ignores_a_price_limit_as_eci_does() {
    let p = policy(json!({SPOT_STRATEGY: "SpotAsPriceGo", SPOT_PRICE_LIMIT: "nonsense"}));
    assert_eq!(p.expect("spot").strategy, SpotStrategy::AsPriceGo);
}

#[test]
fn with_price_limit_reads_the_limit_exactly() {
    let p = policy(json!({SPOT_STRATEGY: "SpotWithPriceLimit", SPOT_PRICE_LIMIT: "0.025"}));
    assert_eq!(
        p.expect("spot").strategy,
        SpotStrategy::WithPriceLimit {
            hourly_limit: 25_000_000
        }
    );
}

#[test]
fn ask_aliases_are_read_and_named_in_errors() {
    let p = policy(json!({
        "k8s.aliyun.com/eci-spot-strategy": "SpotWithPriceLimit",
        "k8s.aliyun.com/eci-spot-price-limit": "0.5",
        "k8s.aliyun.com/eci-spot-duration": "0",
        "k8s.aliyun.com/eci-spot-fallback": "true",
    }))
    .expect("spot");
    assert_eq!(
        p.strategy,
        SpotStrategy::WithPriceLimit {
            hourly_limit: 500_000_000
        }
    );
    assert_eq!(p.protection, Duration::ZERO);
    assert!(p.fallback);
    let err = error(json!({"k8s.aliyun.com/eci-spot-strategy": "spotAsPriceGo"}));
    assert_eq!(
        err,
        "annotation k8s.aliyun.com/eci-spot-strategy: unknown spot strategy \"spotAsPriceGo\": use SpotAsPriceGo or SpotWithPriceLimit"
    );
}

#[test]
fn a_price_limit_is_required_positive_and_has_at_most_three_decimals() {
    let with = |limit: Value| {
        let mut a = json!({SPOT_STRATEGY: "SpotWithPriceLimit"});
        if !limit.is_null() {
            a[SPOT_PRICE_LIMIT] = limit;
        }
        error(a)
    };
    assert_eq!(
        with(Value::Null),
        "annotation nodeless.dev/spot-price-limit is required with SpotWithPriceLimit"
    );
    assert!(with(json!("0.0251")).contains("more than 3 decimals"));
    assert!(with(json!("0")).contains("must be more than 0"));
    assert!(with(json!("0.000")).contains("must be more than 0"));
    assert!(with(json!("-1")).contains("negative"));
    assert!(with(json!("cheap")).contains("not a decimal number"));
}

#[test]
fn durations_are_hours_or_go_style_with_units() {
    let protection = |d: &str| {
        policy(json!({SPOT_STRATEGY: "SpotAsPriceGo", SPOT_DURATION: d}))
            .expect("spot")
            .protection
    };
    assert_eq!(protection("0"), Duration::ZERO);
    assert_eq!(protection("2"), Duration::from_secs(7200));
    assert_eq!(protection("90s"), Duration::from_secs(90));
    assert_eq!(protection("10m"), Duration::from_secs(600));
    assert_eq!(protection("2h"), Duration::from_secs(7200));
    assert_eq!(protection("1h30m5s"), Duration::from_secs(5405));
    assert_eq!(protection("8760"), Duration::from_secs(8760 * 3600));
    for bad in [
        "-1",
        "1.5",
        "1d",
        "h",
        "10ms",
        "5s1h",
        "1h1h",
        "99999999999999999999",
        "5000000000000000h",
        "8761",
        "8760h1s",
    ] {
        let err = error(json!({SPOT_STRATEGY: "SpotAsPriceGo", SPOT_DURATION: bad}));
        assert!(err.contains("invalid spot duration"), "{bad}: {err}");
    }
}

#[test]
fn fallback_is_true_or_false() {
    let fallback = |v: &str| policy(json!({SPOT_STRATEGY: "SpotAsPriceGo", SPOT_FALLBACK: v}));
    assert!(fallback("true").expect("spot").fallback);
    assert!(!fallback("false").expect("spot").fallback);
    let err = error(json!({SPOT_STRATEGY: "SpotAsPriceGo", SPOT_FALLBACK: "yes"}));
    assert!(err.contains("use true or false"), "{err}");
}

#[test]
fn validation_reports_every_bad_annotation_at_its_key() {
    let errs = validate_spot_annotations(&pod(json!({
        SPOT_STRATEGY: "SpotWithPriceLimit",
        SPOT_PRICE_LIMIT: "0.0001",
        "k8s.aliyun.com/eci-spot-duration": "soon",
        SPOT_FALLBACK: "yes",
    })));
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "metadata.annotations[nodeless.dev/spot-price-limit]: Invalid value: \"0.0001\": may have at most 3 decimals",
            "metadata.annotations[k8s.aliyun.com/eci-spot-duration]: Invalid value: \"soon\": give whole hours such as 1, or a duration such as 90s, 10m or 2h, of at most 8760h",
            "metadata.annotations[nodeless.dev/spot-fallback]: Unsupported value: \"yes\": supported values: \"true\", \"false\"",
        ]
    );
}

#[test]
fn validation_names_a_missing_limit_and_an_unknown_strategy() {
    let missing = validate_spot_annotations(&pod(json!({SPOT_STRATEGY: "SpotWithPriceLimit"})));
    assert_eq!(
        missing[0].to_string(),
        "metadata.annotations[nodeless.dev/spot-price-limit]: Required value: required with SpotWithPriceLimit"
    );
    let unknown = validate_spot_annotations(&pod(json!({SPOT_STRATEGY: "Cheap"})));
    assert_eq!(
        unknown[0].to_string(),
        "metadata.annotations[nodeless.dev/spot-strategy]: Unsupported value: \"Cheap\": supported values: \"SpotAsPriceGo\", \"SpotWithPriceLimit\""
    );
    let zero = validate_spot_annotations(&pod(
        json!({SPOT_STRATEGY: "SpotWithPriceLimit", SPOT_PRICE_LIMIT: "0"}),
    ));
    assert!(zero[0]
        .to_string()
        .ends_with("Invalid value: \"0\": must be more than 0"));
}

#[test]
fn valid_annotations_pass_validation() {
    let errs = validate_spot_annotations(&pod(json!({
        SPOT_STRATEGY: "SpotWithPriceLimit", SPOT_PRICE_LIMIT: "1.5", SPOT_DURATION: "90s"
    })));
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn creating_a_pod_with_a_bad_spot_annotation_is_refused() {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default",
                     "annotations": {SPOT_STRATEGY: "SpotWithPriceLimit", SPOT_PRICE_LIMIT: "0.5"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    });
    let create = |p: &Value| crate::validation::validate_create("", "Pod", p, true);
    assert!(create(&p).is_empty(), "{:?}", create(&p));
    p["metadata"]["annotations"][SPOT_PRICE_LIMIT] = json!("0.5001");
    let errs = create(&p);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].field,
        "metadata.annotations[nodeless.dev/spot-price-limit]"
    );
}
