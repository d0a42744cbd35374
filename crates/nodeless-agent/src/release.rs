//! Releasing a spot instance after its notice: when, and the Pod status it ends with.
//!
//! The scheduler decides (for price or for on-demand capacity) and writes the release time on
//! the Pod; this host's agent, which runs the instance, acts on it when the time comes, so
//! the release happens even if the scheduler is down by then.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nodeless_engine::instance::InstanceStatus;
use nodeless_kube::billing::parse_time;
use nodeless_kube::names::{BID_FAILED, SPOT_RELEASE_AT_ANNOTATION, SPOT_TO_BE_RELEASED};

use crate::status::{pod_status, View};

/// When the Pod's spot instance is to be released, if the scheduler decided so.
pub(crate) fn release_at(pod: &Pod) -> Option<DateTime<Utc>> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SPOT_RELEASE_AT_ANNOTATION))
        .and_then(|v| parse_time(v))
}

/// The final status of a released spot Pod: `Failed`, reason `BidFailed`, containers
/// terminated, not ready.
pub(crate) fn released_status(
    pod: &Pod,
    previous: Option<&PodStatus>,
    instance: Option<&InstanceStatus>,
    host_ip: IpAddr,
    now: DateTime<Utc>,
) -> PodStatus {
    let mut status = match instance {
        Some(inst) => pod_status(pod, previous, View::Instance(inst), host_ip, now),
        None => previous.cloned().unwrap_or_default(),
    };
    let notice = status
        .conditions
        .iter()
        .flatten()
        .chain(
            pod.status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten()),
        )
        .find(|c| c.type_ == SPOT_TO_BE_RELEASED)
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "the spot instance was reclaimed".into());
    status.phase = Some("Failed".into());
    status.reason = Some(BID_FAILED.into());
    status.message = Some(format!("Pod was released: {notice}"));
    for c in status.conditions.iter_mut().flatten() {
        if matches!(c.type_.as_str(), "Ready" | "ContainersReady") && c.status != "False" {
            *c = PodCondition {
                type_: c.type_.clone(),
                status: "False".into(),
                reason: Some("PodFailed".into()),
                last_transition_time: Some(Time(now)),
                ..Default::default()
            };
        }
    }
    for cs in status.container_statuses.iter_mut().flatten() {
        let running = cs.state.as_ref().is_some_and(|s| s.running.is_some());
        if running || cs.state.is_none() {
            let started_at = cs
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.clone());
            cs.state = Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 137,
                    reason: Some(BID_FAILED.into()),
                    started_at,
                    finished_at: Some(Time(now)),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        cs.ready = false;
        cs.started = Some(false);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_released_pod_fails_with_bid_failed_and_running_containers_terminate() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "annotations": {
                "nodeless.dev/spot-release-at": "2026-11-26T05:00:00.000Z"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "SpotToBeReleased", "status": "True", "message": "on-demand instances need its capacity"}],
                "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": true,
                    "restartCount": 0, "state": {"running": {"startedAt": "2026-11-26T04:00:00Z"}}}]}
        }))
        .expect("pod");
        assert_eq!(
            release_at(&pod).map(|t| t.to_rfc3339()),
            Some("2026-11-26T05:00:00+00:00".into())
        );
        let s = released_status(
            &pod,
            pod.status.as_ref(),
            None,
            [10, 0, 0, 1].into(),
            Utc::now(),
        );
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(s.reason.as_deref(), Some("BidFailed"));
        assert!(s
            .message
            .as_deref()
            .unwrap_or("")
            .contains("on-demand instances"));
        let c = &s.container_statuses.as_ref().expect("statuses")[0];
        assert!(!c.ready);
        let t = c
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("terminated");
        assert_eq!(t.exit_code, 137);
        let ready = s
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .expect("ready");
        assert_eq!(ready.status, "False");
    }
}
