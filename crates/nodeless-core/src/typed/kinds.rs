//! Which k8s-openapi struct decodes which group/version/kind.

use super::{through, RoundTripError};
use crate::typed::de::Node;
use k8s_openapi::api::{
    apps, autoscaling, batch, coordination, core, discovery, events, networking, node, policy,
    rbac, scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use serde_json::Value;

macro_rules! builtin_types {
    ($(($group:literal, $version:literal, $kind:literal) => $ty:ty,)*) => {
        /// Whether `decode` knows the kind: every type of `resource::builtins()`, plus the
        /// bodies of the scale, eviction and binding subresources.
        pub fn is_builtin(group: &str, version: &str, kind: &str) -> bool {
            matches!((group, version, kind), $(($group, $version, $kind))|*)
        }

        pub(super) fn round_trip(
            group: &str,
            version: &str,
            kind: &str,
            node: Node<'_, '_>,
        ) -> Option<Result<Value, RoundTripError>> {
            match (group, version, kind) {
                $(($group, $version, $kind) => Some(through::<$ty>(node)),)*
                _ => None,
            }
        }
    };
}

builtin_types! {
    ("", "v1", "Namespace") => core::v1::Namespace,
    ("", "v1", "Pod") => core::v1::Pod,
    ("", "v1", "Service") => core::v1::Service,
    ("", "v1", "Endpoints") => core::v1::Endpoints,
    ("", "v1", "ConfigMap") => core::v1::ConfigMap,
    ("", "v1", "Secret") => core::v1::Secret,
    ("", "v1", "ServiceAccount") => core::v1::ServiceAccount,
    ("", "v1", "Event") => core::v1::Event,
    ("", "v1", "Node") => core::v1::Node,
    ("", "v1", "LimitRange") => core::v1::LimitRange,
    ("", "v1", "ResourceQuota") => core::v1::ResourceQuota,
    ("", "v1", "PersistentVolumeClaim") => core::v1::PersistentVolumeClaim,
    ("", "v1", "ReplicationController") => core::v1::ReplicationController,
    ("", "v1", "Binding") => core::v1::Binding,
    ("apps", "v1", "Deployment") => apps::v1::Deployment,
    ("apps", "v1", "ReplicaSet") => apps::v1::ReplicaSet,
    ("apps", "v1", "StatefulSet") => apps::v1::StatefulSet,
    ("apps", "v1", "DaemonSet") => apps::v1::DaemonSet,
    ("apps", "v1", "ControllerRevision") => apps::v1::ControllerRevision,
    ("batch", "v1", "Job") => batch::v1::Job,
    ("batch", "v1", "CronJob") => batch::v1::CronJob,
    ("autoscaling", "v2", "HorizontalPodAutoscaler") => autoscaling::v2::HorizontalPodAutoscaler,
    ("autoscaling", "v1", "HorizontalPodAutoscaler") => autoscaling::v1::HorizontalPodAutoscaler,
    ("autoscaling", "v1", "Scale") => autoscaling::v1::Scale,
    ("networking.k8s.io", "v1", "Ingress") => networking::v1::Ingress,
    ("networking.k8s.io", "v1", "IngressClass") => networking::v1::IngressClass,
    ("networking.k8s.io", "v1", "NetworkPolicy") => networking::v1::NetworkPolicy,
    ("discovery.k8s.io", "v1", "EndpointSlice") => discovery::v1::EndpointSlice,
    ("coordination.k8s.io", "v1", "Lease") => coordination::v1::Lease,
    ("node.k8s.io", "v1", "RuntimeClass") => node::v1::RuntimeClass,
    ("policy", "v1", "PodDisruptionBudget") => policy::v1::PodDisruptionBudget,
    ("policy", "v1", "Eviction") => policy::v1::Eviction,
    ("events.k8s.io", "v1", "Event") => events::v1::Event,
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => apiextensions::v1::CustomResourceDefinition,
    ("scheduling.k8s.io", "v1", "PriorityClass") => scheduling::v1::PriorityClass,
    ("storage.k8s.io", "v1", "StorageClass") => storage::v1::StorageClass,
    ("rbac.authorization.k8s.io", "v1", "ClusterRole") => rbac::v1::ClusterRole,
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => rbac::v1::ClusterRoleBinding,
    ("rbac.authorization.k8s.io", "v1", "Role") => rbac::v1::Role,
    ("rbac.authorization.k8s.io", "v1", "RoleBinding") => rbac::v1::RoleBinding,
}
