//! Printers of the `apps` group: deployments, replica sets, stateful sets, daemon sets and
//! controller revisions.

use super::cell::{self, arr, containers, i, map, s};
use super::core::{CONTAINERS, IMAGES};
use super::{col, docs, int, CellFn, Col, Ctx, Printer, AGE, NAME};
use crate::selector::label::format_labels;
use crate::selector::LabelSelector;
use serde_json::Value;

pub(crate) fn printer(kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Col], CellFn) = match kind {
        "Deployment" => (DEPLOYMENT, deployment),
        "ReplicaSet" => (REPLICA_SET, replica_set),
        "StatefulSet" => (STATEFUL_SET, stateful_set),
        "DaemonSet" => (DAEMON_SET, daemon_set),
        "ControllerRevision" => (CONTROLLER_REVISION, controller_revision),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

/// `spec.replicas`, which defaulting sets to 1 when absent.
fn desired(obj: &Value) -> i64 {
    cell::opt_i(obj, "/spec/replicas").unwrap_or(1)
}

const DEPLOYMENT: &[Col] = &[
    NAME,
    col("Ready", "Number of the pod with ready state"),
    col("Up-to-date", docs::DEPLOY_UPDATED),
    col("Available", docs::DEPLOY_AVAILABLE),
    AGE,
    col("Containers", CONTAINERS).wide(),
    col("Images", IMAGES).wide(),
    col("Selector", docs::DEPLOY_SELECTOR).wide(),
];

fn deployment(d: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(d, "/spec/template/spec/containers");
    // Deployments print the plain selector string (empty, not <none>, when unset).
    let selector =
        match LabelSelector::from_json(d.pointer("/spec/selector").unwrap_or(&Value::Null)) {
            Ok(sel) => sel.to_string(),
            Err(_) => "<invalid>".into(),
        };
    vec![
        s(d, "/metadata/name").into(),
        format!("{}/{}", i(d, "/status/readyReplicas"), desired(d)).into(),
        i(d, "/status/updatedReplicas").into(),
        i(d, "/status/availableReplicas").into(),
        ctx.age(d),
        names,
        images,
        selector.into(),
    ]
}

const REPLICA_SET: &[Col] = &[
    NAME,
    int("Desired", docs::RS_SPEC_REPLICAS),
    int("Current", docs::RS_STATUS_REPLICAS),
    int("Ready", docs::RS_STATUS_READY),
    AGE,
    col("Containers", CONTAINERS).wide(),
    col("Images", IMAGES).wide(),
    col("Selector", docs::RS_SPEC_SELECTOR).wide(),
];

fn replica_set(rs: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(rs, "/spec/template/spec/containers");
    vec![
        s(rs, "/metadata/name").into(),
        desired(rs).into(),
        i(rs, "/status/replicas").into(),
        i(rs, "/status/readyReplicas").into(),
        ctx.age(rs),
        names,
        images,
        cell::selector(rs, "/spec/selector"),
    ]
}

const STATEFUL_SET: &[Col] = &[
    NAME,
    col("Ready", "Number of the pod with ready state"),
    AGE,
    col("Containers", CONTAINERS).wide(),
    col("Images", IMAGES).wide(),
];

fn stateful_set(sts: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(sts, "/spec/template/spec/containers");
    vec![
        s(sts, "/metadata/name").into(),
        format!("{}/{}", i(sts, "/status/readyReplicas"), desired(sts)).into(),
        ctx.age(sts),
        names,
        images,
    ]
}

const DAEMON_SET: &[Col] = &[
    NAME,
    int("Desired", docs::DS_DESIRED),
    int("Current", docs::DS_CURRENT),
    int("Ready", docs::DS_READY),
    int("Up-to-date", docs::DS_UPDATED),
    int("Available", docs::DS_AVAILABLE),
    col("Node Selector", docs::POD_NODE_SELECTOR),
    AGE,
    col("Containers", CONTAINERS).wide(),
    col("Images", IMAGES).wide(),
    col("Selector", docs::DS_SELECTOR).wide(),
];

fn daemon_set(ds: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(ds, "/spec/template/spec/containers");
    vec![
        s(ds, "/metadata/name").into(),
        i(ds, "/status/desiredNumberScheduled").into(),
        i(ds, "/status/currentNumberScheduled").into(),
        i(ds, "/status/numberReady").into(),
        i(ds, "/status/updatedNumberScheduled").into(),
        i(ds, "/status/numberAvailable").into(),
        format_labels(&map(ds, "/spec/template/spec/nodeSelector")).into(),
        ctx.age(ds),
        names,
        images,
        cell::selector(ds, "/spec/selector"),
    ]
}

const CONTROLLER_REVISION: &[Col] = &[
    NAME,
    col("Controller", "Controller of the object"),
    col("Revision", docs::CONTROLLER_REVISION),
    AGE,
];

/// `statefulset.apps/web` for the controlling owner, `<none>` without one.
pub(crate) fn controller_name(obj: &Value) -> String {
    let owner = arr(obj, "/metadata/ownerReferences")
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true));
    let Some(owner) = owner else {
        return "<none>".into();
    };
    let api_version = s(owner, "/apiVersion");
    let group = api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default();
    let kind = s(owner, "/kind");
    let group_kind = match (kind, group) {
        ("", "") => return s(owner, "/name").to_string(),
        (k, "") => k.to_string(),
        (k, g) => format!("{k}.{g}"),
    };
    format!("{}/{}", group_kind.to_lowercase(), s(owner, "/name"))
}

fn controller_revision(cr: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        s(cr, "/metadata/name").into(),
        controller_name(cr).into(),
        i(cr, "/revision").into(),
        ctx.age(cr),
    ]
}
