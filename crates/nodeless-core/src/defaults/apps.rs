//! apps/v1 defaults: Deployment, ReplicaSet, StatefulSet, DaemonSet.

use super::pod::persistent_volume_claim_spec;
use super::{child, child_or_new, items, set_unset, set_zero, str_at, template_spec, Obj};
use serde_json::json;

pub(super) fn deployment(obj: &mut Obj) {
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    set_unset(spec, "replicas", 1);
    if let Some(strategy) = child_or_new(spec, "strategy") {
        set_zero(strategy, "type", "RollingUpdate");
        if str_at(strategy, "type") == "RollingUpdate" {
            if let Some(rolling) = child_or_new(strategy, "rollingUpdate") {
                set_unset(rolling, "maxUnavailable", "25%");
                set_unset(rolling, "maxSurge", "25%");
            }
        }
    }
    set_unset(spec, "revisionHistoryLimit", 10);
    set_unset(spec, "progressDeadlineSeconds", 600);
    template_spec(spec);
}

pub(super) fn replica_set(obj: &mut Obj) {
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    set_unset(spec, "replicas", 1);
    template_spec(spec);
}

pub(super) fn stateful_set(obj: &mut Obj) {
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    set_zero(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = child_or_new(spec, "updateStrategy") {
        if str_at(strategy, "type").is_empty() {
            strategy.insert("type".into(), "RollingUpdate".into());
            set_unset(strategy, "rollingUpdate", json!({}));
        }
        if str_at(strategy, "type") == "RollingUpdate" {
            // Only an existing rollingUpdate gets a partition, as upstream.
            if let Some(rolling) = child(strategy, "rollingUpdate") {
                set_unset(rolling, "partition", 0);
            }
        }
    }
    if let Some(retention) = child_or_new(spec, "persistentVolumeClaimRetentionPolicy") {
        set_zero(retention, "whenDeleted", "Retain");
        set_zero(retention, "whenScaled", "Retain");
    }
    set_unset(spec, "replicas", 1);
    set_unset(spec, "revisionHistoryLimit", 10);
    for claim in items(spec, "volumeClaimTemplates") {
        if let Some(claim_spec) = child_or_new(claim, "spec") {
            persistent_volume_claim_spec(claim_spec);
        }
        if let Some(status) = child_or_new(claim, "status") {
            set_zero(status, "phase", "Pending");
        }
    }
    template_spec(spec);
}

pub(super) fn daemon_set(obj: &mut Obj) {
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    if let Some(strategy) = child_or_new(spec, "updateStrategy") {
        set_zero(strategy, "type", "RollingUpdate");
        if str_at(strategy, "type") == "RollingUpdate" {
            if let Some(rolling) = child_or_new(strategy, "rollingUpdate") {
                set_unset(rolling, "maxUnavailable", 1);
                set_unset(rolling, "maxSurge", 0);
            }
        }
    }
    set_unset(spec, "revisionHistoryLimit", 10);
    template_spec(spec);
}
