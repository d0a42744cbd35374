//! The table: one row per field that carries strategic-merge metadata or leads to a type
//! that does. Taken from the `patchStrategy` / `patchMergeKey` struct tags of k8s.io/api
//! v0.32 (core/v1, apps/v1, batch/v1, autoscaling/v2, policy/v1) and k8s.io/apimachinery
//! (meta/v1 ObjectMeta). networking/v1, discovery/v1, coordination/v1, node/v1 and
//! apiextensions/v1 have no tagged fields in v1.32; autoscaling/v1 has none either.

use super::{PatchMeta, PatchStrategy};
use PatchStrategy::{Merge, MergeRetainKeys, Replace, RetainKeys};

pub(super) struct Row {
    /// OpenAPI definition name of the type holding the field.
    pub ty: &'static str,
    pub field: &'static str,
    /// Definition name of the field's type (its elements' type, for lists), if in the table.
    pub child: Option<&'static str>,
    pub meta: Option<PatchMeta>,
}

macro_rules! core_v1 {
    ($t:literal) => {
        concat!("io.k8s.api.core.v1.", $t)
    };
}
macro_rules! apps_v1 {
    ($t:literal) => {
        concat!("io.k8s.api.apps.v1.", $t)
    };
}
macro_rules! batch_v1 {
    ($t:literal) => {
        concat!("io.k8s.api.batch.v1.", $t)
    };
}

pub(super) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
/// Root of built-in kinds without rows of their own: only their metadata is typed.
pub(super) const ANY_OBJECT: &str = "object";
const POD_TEMPLATE_SPEC: &str = core_v1!("PodTemplateSpec");
const POD_SPEC: &str = core_v1!("PodSpec");
const CONTAINER: &str = core_v1!("Container");
const EPHEMERAL_CONTAINER: &str = core_v1!("EphemeralContainer");
const CONTAINER_STATUS: &str = core_v1!("ContainerStatus");
const PVC: &str = core_v1!("PersistentVolumeClaim");
const JOB_SPEC: &str = batch_v1!("JobSpec");
const HPA: &str = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler";
const HPA_STATUS: &str = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus";
const PDB: &str = "io.k8s.api.policy.v1.PodDisruptionBudget";
const PDB_SPEC: &str = "io.k8s.api.policy.v1.PodDisruptionBudgetSpec";
const PDB_STATUS: &str = "io.k8s.api.policy.v1.PodDisruptionBudgetStatus";

/// A typed field without metadata of its own.
const fn link(ty: &'static str, field: &'static str, child: &'static str) -> Row {
    Row {
        ty,
        field,
        child: Some(child),
        meta: None,
    }
}

/// A field with metadata.
const fn tag(
    ty: &'static str,
    field: &'static str,
    strategy: PatchStrategy,
    key: Option<&'static str>,
) -> Row {
    Row {
        ty,
        field,
        child: None,
        meta: Some(PatchMeta {
            strategy,
            merge_key: key,
        }),
    }
}

/// A list merged by `key` whose elements are a type of the table.
const fn merge_of(
    ty: &'static str,
    field: &'static str,
    key: &'static str,
    child: &'static str,
) -> Row {
    let meta = PatchMeta {
        strategy: Merge,
        merge_key: Some(key),
    };
    Row {
        ty,
        field,
        child: Some(child),
        meta: Some(meta),
    }
}

/// `metadata` of a kind or template.
const fn meta(ty: &'static str) -> Row {
    link(ty, "metadata", OBJECT_META)
}

/// Status conditions, merged by `type`.
const fn conditions(ty: &'static str) -> Row {
    tag(ty, "conditions", Merge, Some("type"))
}

pub(super) const ROWS: &[Row] = &[
    meta(ANY_OBJECT),
    tag(OBJECT_META, "finalizers", Merge, None),
    tag(OBJECT_META, "ownerReferences", Merge, Some("uid")),
    // Pods and their templates.
    meta(core_v1!("Pod")),
    link(core_v1!("Pod"), "spec", POD_SPEC),
    link(core_v1!("Pod"), "status", core_v1!("PodStatus")),
    meta(POD_TEMPLATE_SPEC),
    link(POD_TEMPLATE_SPEC, "spec", POD_SPEC),
    tag(POD_SPEC, "volumes", MergeRetainKeys, Some("name")),
    merge_of(POD_SPEC, "initContainers", "name", CONTAINER),
    merge_of(POD_SPEC, "containers", "name", CONTAINER),
    merge_of(POD_SPEC, "ephemeralContainers", "name", EPHEMERAL_CONTAINER),
    tag(POD_SPEC, "imagePullSecrets", Merge, Some("name")),
    tag(POD_SPEC, "hostAliases", Merge, Some("ip")),
    tag(
        POD_SPEC,
        "topologySpreadConstraints",
        Merge,
        Some("topologyKey"),
    ),
    tag(POD_SPEC, "schedulingGates", Merge, Some("name")),
    tag(POD_SPEC, "resourceClaims", MergeRetainKeys, Some("name")),
    tag(CONTAINER, "ports", Merge, Some("containerPort")),
    tag(CONTAINER, "env", Merge, Some("name")),
    tag(CONTAINER, "volumeMounts", Merge, Some("mountPath")),
    tag(CONTAINER, "volumeDevices", Merge, Some("devicePath")),
    // EphemeralContainer has these inline from EphemeralContainerCommon.
    tag(EPHEMERAL_CONTAINER, "ports", Merge, Some("containerPort")),
    tag(EPHEMERAL_CONTAINER, "env", Merge, Some("name")),
    tag(
        EPHEMERAL_CONTAINER,
        "volumeMounts",
        Merge,
        Some("mountPath"),
    ),
    tag(
        EPHEMERAL_CONTAINER,
        "volumeDevices",
        Merge,
        Some("devicePath"),
    ),
    conditions(core_v1!("PodStatus")),
    tag(core_v1!("PodStatus"), "hostIPs", Merge, Some("ip")),
    tag(core_v1!("PodStatus"), "podIPs", Merge, Some("ip")),
    tag(
        core_v1!("PodStatus"),
        "resourceClaimStatuses",
        MergeRetainKeys,
        Some("name"),
    ),
    link(
        core_v1!("PodStatus"),
        "initContainerStatuses",
        CONTAINER_STATUS,
    ),
    link(core_v1!("PodStatus"), "containerStatuses", CONTAINER_STATUS),
    link(
        core_v1!("PodStatus"),
        "ephemeralContainerStatuses",
        CONTAINER_STATUS,
    ),
    tag(CONTAINER_STATUS, "volumeMounts", Merge, Some("mountPath")),
    tag(
        CONTAINER_STATUS,
        "allocatedResourcesStatus",
        Merge,
        Some("name"),
    ),
    // Other core/v1 kinds.
    meta(core_v1!("ReplicationController")),
    link(
        core_v1!("ReplicationController"),
        "spec",
        core_v1!("ReplicationControllerSpec"),
    ),
    link(
        core_v1!("ReplicationController"),
        "status",
        core_v1!("ReplicationControllerStatus"),
    ),
    link(
        core_v1!("ReplicationControllerSpec"),
        "template",
        POD_TEMPLATE_SPEC,
    ),
    conditions(core_v1!("ReplicationControllerStatus")),
    meta(core_v1!("Service")),
    link(core_v1!("Service"), "spec", core_v1!("ServiceSpec")),
    link(core_v1!("Service"), "status", core_v1!("ServiceStatus")),
    tag(core_v1!("ServiceSpec"), "ports", Merge, Some("port")),
    conditions(core_v1!("ServiceStatus")),
    meta(core_v1!("ServiceAccount")),
    tag(core_v1!("ServiceAccount"), "secrets", Merge, Some("name")),
    meta(core_v1!("Node")),
    link(core_v1!("Node"), "spec", core_v1!("NodeSpec")),
    link(core_v1!("Node"), "status", core_v1!("NodeStatus")),
    tag(core_v1!("NodeSpec"), "podCIDRs", Merge, None),
    conditions(core_v1!("NodeStatus")),
    tag(core_v1!("NodeStatus"), "addresses", Merge, Some("type")),
    meta(core_v1!("Namespace")),
    link(core_v1!("Namespace"), "status", core_v1!("NamespaceStatus")),
    conditions(core_v1!("NamespaceStatus")),
    meta(PVC),
    link(PVC, "status", core_v1!("PersistentVolumeClaimStatus")),
    conditions(core_v1!("PersistentVolumeClaimStatus")),
    // apps/v1
    meta(apps_v1!("Deployment")),
    link(apps_v1!("Deployment"), "spec", apps_v1!("DeploymentSpec")),
    link(
        apps_v1!("Deployment"),
        "status",
        apps_v1!("DeploymentStatus"),
    ),
    link(apps_v1!("DeploymentSpec"), "template", POD_TEMPLATE_SPEC),
    tag(apps_v1!("DeploymentSpec"), "strategy", RetainKeys, None),
    conditions(apps_v1!("DeploymentStatus")),
    meta(apps_v1!("ReplicaSet")),
    link(apps_v1!("ReplicaSet"), "spec", apps_v1!("ReplicaSetSpec")),
    link(
        apps_v1!("ReplicaSet"),
        "status",
        apps_v1!("ReplicaSetStatus"),
    ),
    link(apps_v1!("ReplicaSetSpec"), "template", POD_TEMPLATE_SPEC),
    conditions(apps_v1!("ReplicaSetStatus")),
    meta(apps_v1!("StatefulSet")),
    link(apps_v1!("StatefulSet"), "spec", apps_v1!("StatefulSetSpec")),
    link(
        apps_v1!("StatefulSet"),
        "status",
        apps_v1!("StatefulSetStatus"),
    ),
    link(apps_v1!("StatefulSetSpec"), "template", POD_TEMPLATE_SPEC),
    link(apps_v1!("StatefulSetSpec"), "volumeClaimTemplates", PVC),
    conditions(apps_v1!("StatefulSetStatus")),
    meta(apps_v1!("DaemonSet")),
    link(apps_v1!("DaemonSet"), "spec", apps_v1!("DaemonSetSpec")),
    link(apps_v1!("DaemonSet"), "status", apps_v1!("DaemonSetStatus")),
    link(apps_v1!("DaemonSetSpec"), "template", POD_TEMPLATE_SPEC),
    conditions(apps_v1!("DaemonSetStatus")),
    // batch/v1
    meta(batch_v1!("Job")),
    link(batch_v1!("Job"), "spec", JOB_SPEC),
    link(batch_v1!("Job"), "status", batch_v1!("JobStatus")),
    link(JOB_SPEC, "template", POD_TEMPLATE_SPEC),
    conditions(batch_v1!("JobStatus")),
    meta(batch_v1!("CronJob")),
    link(batch_v1!("CronJob"), "spec", batch_v1!("CronJobSpec")),
    link(
        batch_v1!("CronJobSpec"),
        "jobTemplate",
        batch_v1!("JobTemplateSpec"),
    ),
    meta(batch_v1!("JobTemplateSpec")),
    link(batch_v1!("JobTemplateSpec"), "spec", JOB_SPEC),
    // autoscaling/v2
    meta(HPA),
    link(HPA, "status", HPA_STATUS),
    conditions(HPA_STATUS),
    // policy/v1
    meta(PDB),
    link(PDB, "spec", PDB_SPEC),
    link(PDB, "status", PDB_STATUS),
    tag(PDB_SPEC, "selector", Replace, None),
    conditions(PDB_STATUS),
];

/// Kinds whose root type has rows; other built-in kinds use [`ANY_OBJECT`]. Keyed by group
/// and kind: the HorizontalPodAutoscaler rows (v2) fit v1 objects too, which lack the fields.
pub(super) const KINDS: &[(&str, &str, &str)] = &[
    ("", "Pod", core_v1!("Pod")),
    (
        "",
        "ReplicationController",
        core_v1!("ReplicationController"),
    ),
    ("", "Service", core_v1!("Service")),
    ("", "ServiceAccount", core_v1!("ServiceAccount")),
    ("", "Node", core_v1!("Node")),
    ("", "Namespace", core_v1!("Namespace")),
    ("", "PersistentVolumeClaim", PVC),
    ("apps", "Deployment", apps_v1!("Deployment")),
    ("apps", "ReplicaSet", apps_v1!("ReplicaSet")),
    ("apps", "StatefulSet", apps_v1!("StatefulSet")),
    ("apps", "DaemonSet", apps_v1!("DaemonSet")),
    ("batch", "Job", batch_v1!("Job")),
    ("batch", "CronJob", batch_v1!("CronJob")),
    ("autoscaling", "HorizontalPodAutoscaler", HPA),
    ("policy", "PodDisruptionBudget", PDB),
];

/// The shape of upstream's strategicpatch test type `MergeItem`, so tests can exercise every
/// strategy on one small type.
#[cfg(test)]
pub(super) const TEST_ROWS: &[Row] = &[
    merge_of("test.MergeItem", "mergingList", "name", "test.MergeItem"),
    link("test.MergeItem", "nonMergingList", "test.MergeItem"),
    tag("test.MergeItem", "mergingIntList", Merge, None),
    merge_of("test.MergeItem", "mergeItemPtr", "name", "test.MergeItem"),
    tag("test.MergeItem", "replacingItem", Replace, None),
    Row {
        ty: "test.MergeItem",
        field: "retainKeysMap",
        child: Some("test.RetainKeysMergeItem"),
        meta: Some(PatchMeta {
            strategy: RetainKeys,
            merge_key: None,
        }),
    },
    Row {
        ty: "test.MergeItem",
        field: "retainKeysMergingList",
        child: Some("test.MergeItem"),
        meta: Some(PatchMeta {
            strategy: MergeRetainKeys,
            merge_key: Some("name"),
        }),
    },
    tag("test.RetainKeysMergeItem", "mergingIntList", Merge, None),
    merge_of(
        "test.RetainKeysMergeItem",
        "mergingList",
        "name",
        "test.MergeItem",
    ),
    link(
        "test.RetainKeysMergeItem",
        "nonMergingList",
        "test.MergeItem",
    ),
];
