//! autoscaling defaults: HorizontalPodAutoscaler v2 and v1.

use super::{child, child_or_new, is_empty, set_unset, Obj};
use serde_json::{json, Value};

/// The CPU utilization an HPA without metrics targets.
const DEFAULT_CPU_UTILIZATION: i32 = 80;

pub(super) fn hpa_v2(obj: &mut Obj) {
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    set_unset(spec, "minReplicas", 1);
    if is_empty(spec.get("metrics")) {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]),
        );
    }
    // Behavior is filled in only when the user gave one; absent, the controller uses the
    // same values without writing them.
    if let Some(behavior) = child(spec, "behavior") {
        let scale_up = with_defaults(behavior.get("scaleUp"), scale_up_rules());
        let scale_down = with_defaults(behavior.get("scaleDown"), scale_down_rules());
        behavior.insert("scaleUp".into(), scale_up);
        behavior.insert("scaleDown".into(), scale_down);
    }
}

pub(super) fn hpa_v1(obj: &mut Obj) {
    if let Some(spec) = child_or_new(obj, "spec") {
        set_unset(spec, "minReplicas", 1);
    }
}

/// Scale up at once, by 4 Pods or by 100% per 15 s, whichever is more.
fn scale_up_rules() -> Value {
    json!({
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}
        ]
    })
}

/// Scale down by up to 100% per 15 s; the stabilization window stays unset because the
/// controller's command-line flag supplies it.
fn scale_down_rules() -> Value {
    json!({"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]})
}

/// The default rules with every field the user set taken from the user.
fn with_defaults(user: Option<&Value>, mut defaults: Value) -> Value {
    if let (Some(Value::Object(user)), Value::Object(out)) = (user, &mut defaults) {
        for (key, value) in user.iter().filter(|(_, v)| !v.is_null()) {
            out.insert(key.clone(), value.clone());
        }
    }
    defaults
}
