//! Printers of the smaller groups: autoscaling, policy, node, coordination, scheduling,
//! storage and rbac. Kinds not listed here (roles, CRDs, limit ranges, ...) have no printer
//! upstream either and get the default table.

use super::cell::{self, arr, int_or_string, s};
use super::{boolean, col, docs, int, CellFn, Col, Ctx, Printer, AGE, NAME};
use serde_json::{json, Value};

pub(crate) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Col], CellFn) = match (group, kind) {
        ("autoscaling", "HorizontalPodAutoscaler") => (HPA, hpa),
        ("policy", "PodDisruptionBudget") => (PDB, pdb),
        ("node.k8s.io", "RuntimeClass") => (RUNTIME_CLASS, runtime_class),
        ("coordination.k8s.io", "Lease") => (LEASE, lease),
        ("scheduling.k8s.io", "PriorityClass") => (PRIORITY_CLASS, priority_class),
        ("storage.k8s.io", "StorageClass") => (STORAGE_CLASS, storage_class),
        ("rbac.authorization.k8s.io", "RoleBinding") => (ROLE_BINDING, binding),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => (CLUSTER_ROLE_BINDING, binding),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

const HPA: &[Col] = &[
    NAME,
    col("Reference", docs::HPA_SCALE_TARGET_REF),
    col("Targets", docs::HPA_METRICS),
    col("MinPods", docs::HPA_MIN_REPLICAS),
    col("MaxPods", docs::HPA_MAX_REPLICAS),
    col("Replicas", docs::HPA_CURRENT_REPLICAS),
    AGE,
];

/// `autoscaling/v2` metrics of an HPA; a `v1` object's CPU target is read as the one metric
/// it converts to.
fn hpa_metrics(hpa: &Value) -> (Vec<Value>, Vec<Value>) {
    if let Some(specs) = hpa.pointer("/spec/metrics").and_then(Value::as_array) {
        return (
            specs.clone(),
            cell::arr(hpa, "/status/currentMetrics").to_vec(),
        );
    }
    let Some(target) = cell::opt_i(hpa, "/spec/targetCPUUtilizationPercentage") else {
        return (Vec::new(), Vec::new());
    };
    let spec = json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": target}}});
    let status: Vec<Value> = cell::opt_i(hpa, "/status/currentCPUUtilizationPercentage")
        .map(|c| json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}}))
        .into_iter()
        .collect();
    (vec![spec], status)
}

/// One `current/target` entry of upstream's `formatHPAMetrics`.
fn format_metric(spec: &Value, status: Option<&Value>) -> String {
    let current = |ptr: &str| status.and_then(|st| st.pointer(ptr)).and_then(quantity);
    let unknown = || "<unknown>".to_string();
    let by_value = |source: &str| {
        let target = format!("/{source}/target");
        if let Some(avg) = spec
            .pointer(&format!("{target}/averageValue"))
            .and_then(quantity)
        {
            let cur = current(&format!("/{source}/current/averageValue")).unwrap_or_else(unknown);
            format!("{cur}/{avg} (avg)")
        } else {
            let cur = current(&format!("/{source}/current/value")).unwrap_or_else(unknown);
            let value = spec
                .pointer(&format!("{target}/value"))
                .and_then(quantity)
                .unwrap_or_default();
            format!("{cur}/{value}")
        }
    };
    let by_resource = |source: &str| {
        let name = s(spec, &format!("/{source}/name"));
        if let Some(avg) = spec
            .pointer(&format!("/{source}/target/averageValue"))
            .and_then(quantity)
        {
            let cur = current(&format!("/{source}/current/averageValue")).unwrap_or_else(unknown);
            return format!("{name}: {cur}/{avg}");
        }
        let cur =
            current(&format!("/{source}/current/averageUtilization")).map(|c| format!("{c}%"));
        let target = spec
            .pointer(&format!("/{source}/target/averageUtilization"))
            .and_then(quantity);
        format!(
            "{name}: {}/{}",
            cur.unwrap_or_else(unknown),
            target
                .map(|t| format!("{t}%"))
                .unwrap_or_else(|| "<auto>".into())
        )
    };
    match s(spec, "/type") {
        "External" => by_value("external"),
        "Object" => by_value("object"),
        "Pods" => {
            let cur = current("/pods/current/averageValue").unwrap_or_else(unknown);
            let target = spec
                .pointer("/pods/target/averageValue")
                .and_then(quantity)
                .unwrap_or_default();
            format!("{cur}/{target}")
        }
        "Resource" => by_resource("resource"),
        "ContainerResource" => by_resource("containerResource"),
        _ => "<unknown type>".into(),
    }
}

/// A quantity or count as written (quantities are already canonical strings in JSON).
fn quantity(v: &Value) -> Option<String> {
    int_or_string(Some(v))
}

fn hpa_targets(hpa: &Value) -> String {
    let (specs, statuses) = hpa_metrics(hpa);
    if specs.is_empty() {
        return "<none>".into();
    }
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, sp)| format_metric(sp, statuses.get(i)))
        .collect();
    let shown = list.iter().take(2).cloned().collect::<Vec<_>>().join(", ");
    if list.len() > 2 {
        format!("{shown} + {} more...", list.len() - 2)
    } else {
        shown
    }
}

fn hpa(hpa: &Value, ctx: &Ctx) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        s(hpa, "/spec/scaleTargetRef/kind"),
        s(hpa, "/spec/scaleTargetRef/name")
    );
    let min = cell::opt_i(hpa, "/spec/minReplicas")
        .map(|m| m.to_string())
        .unwrap_or_else(|| "<unset>".into());
    vec![
        s(hpa, "/metadata/name").into(),
        reference.into(),
        hpa_targets(hpa).into(),
        min.into(),
        cell::i(hpa, "/spec/maxReplicas").into(),
        cell::i(hpa, "/status/currentReplicas").into(),
        ctx.age(hpa),
    ]
}

const PDB: &[Col] = &[
    NAME,
    col(
        "Min Available",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "The maximum number of pods that may be unavailable.",
    ),
    int(
        "Allowed Disruptions",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

fn pdb(pdb: &Value, ctx: &Ctx) -> Vec<Value> {
    let or_na = |ptr: &str| int_or_string(pdb.pointer(ptr)).unwrap_or_else(|| "N/A".into());
    vec![
        s(pdb, "/metadata/name").into(),
        or_na("/spec/minAvailable").into(),
        or_na("/spec/maxUnavailable").into(),
        cell::i(pdb, "/status/disruptionsAllowed").into(),
        ctx.age(pdb),
    ]
}

// Upstream describes Handler with ObjectMeta's (absent) `handler` doc, i.e. an empty string.
const RUNTIME_CLASS: &[Col] = &[NAME, col("Handler", ""), AGE];

fn runtime_class(rc: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        s(rc, "/metadata/name").into(),
        s(rc, "/handler").into(),
        ctx.age(rc),
    ]
}

const LEASE: &[Col] = &[NAME, col("Holder", docs::LEASE_HOLDER), AGE];

fn lease(l: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        s(l, "/metadata/name").into(),
        s(l, "/spec/holderIdentity").into(),
        ctx.age(l),
    ]
}

const PRIORITY_CLASS: &[Col] = &[
    NAME,
    int("Value", docs::PC_VALUE),
    boolean("Global-Default", docs::PC_GLOBAL_DEFAULT),
    AGE,
    col("PreemptionPolicy", docs::PC_PREEMPTION_POLICY),
];

fn priority_class(pc: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        s(pc, "/metadata/name").into(),
        cell::i(pc, "/value").into(),
        cell::opt_b(pc, "/globalDefault").unwrap_or(false).into(),
        ctx.age(pc),
        s(pc, "/preemptionPolicy").into(),
    ]
}

const STORAGE_CLASS: &[Col] = &[
    NAME,
    col("Provisioner", docs::SC_PROVISIONER),
    col("ReclaimPolicy", docs::SC_RECLAIM_POLICY),
    col("VolumeBindingMode", docs::SC_VOLUME_BINDING_MODE),
    col("AllowVolumeExpansion", docs::SC_ALLOW_EXPANSION),
    AGE,
];

fn storage_class(sc: &Value, ctx: &Ctx) -> Vec<Value> {
    let annotations = crate::meta::annotations(sc);
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| annotations.get(*k).is_some_and(|v| v == "true"));
    let mut name = s(sc, "/metadata/name").to_string();
    if is_default {
        name.push_str(" (default)");
    }
    vec![
        name.into(),
        s(sc, "/provisioner").into(),
        cell::or(s(sc, "/reclaimPolicy"), "Delete").into(),
        cell::or(s(sc, "/volumeBindingMode"), "Immediate").into(),
        cell::opt_b(sc, "/allowVolumeExpansion")
            .unwrap_or(false)
            .into(),
        ctx.age(sc),
    ]
}

const ROLE_BINDING: &[Col] = &[
    NAME,
    col("Role", docs::ROLE_BINDING_ROLE_REF),
    AGE,
    col("Users", "Users in the roleBinding").wide(),
    col("Groups", "Groups in the roleBinding").wide(),
    col("ServiceAccounts", "ServiceAccounts in the roleBinding").wide(),
];

const CLUSTER_ROLE_BINDING: &[Col] = &[
    NAME,
    col("Role", docs::CLUSTER_ROLE_BINDING_ROLE_REF),
    AGE,
    col("Users", "Users in the clusterRoleBinding").wide(),
    col("Groups", "Groups in the clusterRoleBinding").wide(),
    col(
        "ServiceAccounts",
        "ServiceAccounts in the clusterRoleBinding",
    )
    .wide(),
];

fn binding(b: &Value, ctx: &Ctx) -> Vec<Value> {
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in arr(b, "/subjects") {
        let name = s(subject, "/name");
        match s(subject, "/kind") {
            "User" => users.push(name.to_string()),
            "Group" => groups.push(name.to_string()),
            "ServiceAccount" => accounts.push(format!("{}:{name}", s(subject, "/namespace"))),
            _ => {}
        }
    }
    vec![
        s(b, "/metadata/name").into(),
        format!("{}/{}", s(b, "/roleRef/kind"), s(b, "/roleRef/name")).into(),
        ctx.age(b),
        users.join(", ").into(),
        groups.join(", ").into(),
        accounts.join(", ").into(),
    ]
}
