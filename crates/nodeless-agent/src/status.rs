//! Engine view → Pod status, and the Events a change of view deserves: pure functions, so
//! the rules the kubelet follows (phase, conditions, container states, which events fire
//! when) are unit-tested without an engine or an API server.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    ContainerState as KubeState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as KubeContainerStatus, HostIP, Pod, PodCondition,
    PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nodeless_engine::image::ImageReference;
use nodeless_engine::instance::{
    ContainerState, ContainerView, InstancePhase, InstanceStatus, Termination,
};
use nodeless_kube::EventType;

#[cfg(test)]
mod tests;

/// What the agent knows about a Pod's instance.
#[derive(Debug, Clone, Copy)]
pub enum View<'a> {
    /// No instance yet: every container waits with this reason (`ContainerCreating`,
    /// `CreateContainerConfigError`, `ErrImagePull`, `ImagePullBackOff`, ...).
    Waiting {
        reason: &'a str,
        message: Option<&'a str>,
    },
    Instance(&'a InstanceStatus),
}

/// The Pod's status for `view`. `previous` is the status last written (the Pod's own, or
/// what this agent last patched): conditions that did not change keep their
/// `lastTransitionTime`, `startTime` stays, and conditions the agent does not own (e.g.
/// PodScheduled, DisruptionTarget) are carried over.
pub fn pod_status(
    pod: &Pod,
    previous: Option<&PodStatus>,
    view: View,
    host_ip: IpAddr,
    now: DateTime<Utc>,
) -> PodStatus {
    let spec = pod.spec.as_ref();
    let main_names: Vec<&str> = spec
        .map(|s| s.containers.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    let init_names: Vec<&str> = spec
        .and_then(|s| s.init_containers.as_ref())
        .map(|cs| cs.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    let image_of = |name: &str| -> String {
        spec.into_iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .find(|c| c.name == name)
            .and_then(|c| c.image.clone())
            .unwrap_or_default()
    };
    let (containers, init_containers) = match view {
        View::Waiting { reason, message } => {
            let waiting = |name: &&str| waiting_status(name, &image_of(name), reason, message);
            (
                main_names.iter().map(waiting).collect::<Vec<_>>(),
                init_names.iter().map(waiting).collect::<Vec<_>>(),
            )
        }
        View::Instance(inst) => (
            container_statuses(inst, &inst.containers, &main_names, &image_of),
            container_statuses(inst, &inst.init_containers, &init_names, &image_of),
        ),
    };
    let phase = phase(view, pod);
    let instance = match view {
        View::Instance(i) => Some(i),
        View::Waiting { .. } => None,
    };
    let ip = instance.and_then(|i| i.ip);
    let wanted = conditions(phase, instance, &init_containers, &containers);
    let mut status = PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(merge_conditions(previous, wanted, now)),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]),
        pod_ip: ip.map(|ip| ip.to_string()),
        pod_ips: ip.map(|ip| vec![PodIP { ip: ip.to_string() }]),
        start_time: Some(
            previous
                .and_then(|p| p.start_time.clone())
                .unwrap_or(Time(now)),
        ),
        container_statuses: Some(containers),
        init_container_statuses: (!init_names.is_empty()).then_some(init_containers),
        ..Default::default()
    };
    if let Some(message) = instance.and_then(|i| i.message.clone()) {
        if phase == "Failed" {
            status.message = Some(message);
        }
    }
    status
}

fn phase(view: View, pod: &Pod) -> &'static str {
    let inst = match view {
        View::Waiting { .. } => return "Pending",
        View::Instance(i) => i,
    };
    match inst.phase {
        InstancePhase::Creating | InstancePhase::Initializing => "Pending",
        // Running once a container runs or ran, as upstream: before that, Pending.
        InstancePhase::Running | InstancePhase::Stopping => {
            let has_run = inst.containers.iter().any(|c| {
                !matches!(c.status.state, ContainerState::Waiting { .. })
                    || c.status.last_state.is_some()
            });
            if has_run {
                "Running"
            } else {
                "Pending"
            }
        }
        InstancePhase::Succeeded => "Succeeded",
        InstancePhase::Failed => "Failed",
        // Stopped by us (deletion) or after a host restart: what the containers say.
        InstancePhase::Stopped => {
            let all_ok = inst.containers.iter().all(|c| {
                c.status
                    .state
                    .termination()
                    .is_some_and(|t| t.exit_code == 0)
            });
            let never_restarts = pod
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.as_deref())
                .is_some_and(|p| p != "Always");
            if all_ok && never_restarts {
                "Succeeded"
            } else {
                "Failed"
            }
        }
    }
}

fn waiting_status(
    name: &str,
    image: &str,
    reason: &str,
    message: Option<&str>,
) -> KubeContainerStatus {
    KubeContainerStatus {
        name: name.to_string(),
        image: image.to_string(),
        image_id: String::new(),
        ready: false,
        started: Some(false),
        restart_count: 0,
        state: Some(KubeState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.to_string()),
                message: message.map(str::to_string),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Statuses in the Pod spec's order; a container the engine does not report is creating.
fn container_statuses(
    inst: &InstanceStatus,
    views: &[ContainerView],
    names: &[&str],
    image_of: &dyn Fn(&str) -> String,
) -> Vec<KubeContainerStatus> {
    names
        .iter()
        .map(|name| match views.iter().find(|v| v.status.name == *name) {
            Some(v) => container_status(inst, v, &image_of(name)),
            None => waiting_status(name, &image_of(name), "ContainerCreating", None),
        })
        .collect()
}

/// `nodeless://<runtime id>`, as CRI runtimes prefix theirs (`containerd://...`).
pub fn container_id(instance: &str, container: &str) -> String {
    format!(
        "nodeless://{}",
        nodeless_engine::instance::state::runtime_id(instance, container)
    )
}

/// `docker.io/library/busybox@sha256:...`, as the kubelet reports an image's ID.
pub fn image_id(image: &str, digest: &str) -> String {
    if digest.is_empty() {
        return String::new();
    }
    match image.parse::<ImageReference>() {
        Ok(r) => format!("{}@{digest}", r.name()),
        Err(_) => digest.to_string(),
    }
}

fn container_status(
    inst: &InstanceStatus,
    v: &ContainerView,
    spec_image: &str,
) -> KubeContainerStatus {
    let id = container_id(&inst.id, &v.status.name);
    let state = match &v.status.state {
        ContainerState::Waiting { reason, message } => KubeState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        ContainerState::Running { started_at, .. } => KubeState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..Default::default()
        },
        ContainerState::Terminated(t) => KubeState {
            terminated: Some(terminated(t, &id)),
            ..Default::default()
        },
    };
    let has_run =
        !matches!(v.status.state, ContainerState::Waiting { .. }) || v.status.last_state.is_some();
    KubeContainerStatus {
        name: v.status.name.clone(),
        image: if v.image.is_empty() {
            spec_image.to_string()
        } else {
            v.image.clone()
        },
        image_id: image_id(&v.image, &v.image_digest),
        container_id: has_run.then(|| id.clone()),
        ready: v.ready,
        started: Some(v.started),
        restart_count: i32::try_from(v.status.restart_count).unwrap_or(i32::MAX),
        state: Some(state),
        last_state: Some(KubeState {
            terminated: v.status.last_state.as_ref().map(|t| terminated(t, &id)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn terminated(t: &Termination, id: &str) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.exit_code,
        signal: t.signal,
        reason: Some(t.reason.clone()),
        message: t.message.clone(),
        started_at: t.started_at.map(Time),
        finished_at: Some(Time(t.finished_at)),
        container_id: Some(id.to_string()),
    }
}

/// (type, status, reason, message) of the conditions the agent owns.
type Wanted = (&'static str, bool, Option<&'static str>, Option<String>);

fn conditions(
    phase: &str,
    instance: Option<&InstanceStatus>,
    init: &[KubeContainerStatus],
    main: &[KubeContainerStatus],
) -> Vec<Wanted> {
    let sandbox = instance.is_some_and(|i| i.phase != InstancePhase::Creating);
    let completed = matches!(phase, "Succeeded" | "Failed");
    let init_pending: Vec<&str> = init
        .iter()
        .filter(|c| !terminated_ok(c))
        .map(|c| c.name.as_str())
        .collect();
    let initialized = init_pending.is_empty() || phase == "Running" || phase == "Succeeded";
    let unready: Vec<&str> = main
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let (ready, reason, message) = if completed {
        (false, Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (true, None, None)
    } else {
        (
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let init_condition = if initialized {
        (
            "Initialized",
            true,
            completed.then_some("PodCompleted"),
            None,
        )
    } else {
        (
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                init_pending.join(" ")
            )),
        )
    };
    vec![
        (
            "PodReadyToStartContainers",
            sandbox && !completed,
            None,
            None,
        ),
        init_condition,
        ("ContainersReady", ready, reason, message.clone()),
        ("Ready", ready, reason, message),
    ]
}

fn terminated_ok(c: &KubeContainerStatus) -> bool {
    c.state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .is_some_and(|t| t.exit_code == 0)
}

/// Adds the conditions `current` (the Pod as the API has it now) holds and `status` lacks:
/// other components' conditions written after this agent's last patch must survive it.
pub fn keep_foreign_conditions(status: &mut PodStatus, current: Option<&PodStatus>) {
    let Some(theirs) = current.and_then(|c| c.conditions.as_ref()) else {
        return;
    };
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    for c in theirs {
        if !conditions.iter().any(|o| o.type_ == c.type_) {
            conditions.push(c.clone());
        }
    }
}

/// The agent's conditions over the previous ones: an unchanged status keeps its
/// `lastTransitionTime`; PodScheduled and conditions of other owners stay as they were.
fn merge_conditions(
    previous: Option<&PodStatus>,
    wanted: Vec<Wanted>,
    now: DateTime<Utc>,
) -> Vec<PodCondition> {
    let old: &[PodCondition] = previous
        .and_then(|p| p.conditions.as_deref())
        .unwrap_or_default();
    let ours: Vec<&str> = wanted.iter().map(|w| w.0).collect();
    let mut out: Vec<PodCondition> = Vec::new();
    if !old.iter().any(|c| c.type_ == "PodScheduled") {
        out.push(PodCondition {
            type_: "PodScheduled".into(),
            status: "True".into(),
            last_transition_time: Some(Time(now)),
            ..Default::default()
        });
    }
    out.extend(
        old.iter()
            .filter(|c| !ours.contains(&c.type_.as_str()))
            .cloned(),
    );
    for (type_, ok, reason, message) in wanted {
        let status = if ok { "True" } else { "False" };
        let since = old
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(PodCondition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.map(str::to_string),
            message,
            last_transition_time: Some(since),
            ..Default::default()
        });
    }
    out
}

/// An Event about a Pod (and, when `container` is set, one of its containers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    pub kind: EventType,
    pub reason: &'static str,
    pub message: String,
    /// `spec.containers{name}` or `spec.initContainers{name}`.
    pub field_path: Option<String>,
}

/// The Events a change from `old` to `new` deserves, as the kubelet records them: Created
/// and Started for each new run, BackOff when a container enters CrashLoopBackOff, Failed
/// when it could not start, Unhealthy when a running container turns unready.
pub fn events_between(
    pod: &Pod,
    old: Option<&InstanceStatus>,
    new: &InstanceStatus,
) -> Vec<PodEvent> {
    let mut out = Vec::new();
    let groups = [
        (
            "spec.initContainers",
            &new.init_containers,
            old.map(|o| &o.init_containers),
        ),
        (
            "spec.containers",
            &new.containers,
            old.map(|o| &o.containers),
        ),
    ];
    for (prefix, views, old_views) in groups {
        for v in views {
            let before = old_views.and_then(|o| o.iter().find(|b| b.status.name == v.status.name));
            let field_path = Some(format!("{prefix}{{{}}}", v.status.name));
            for (kind, reason, message) in container_events(pod, before, v) {
                out.push(PodEvent {
                    kind,
                    reason,
                    message,
                    field_path: field_path.clone(),
                });
            }
        }
    }
    out
}

fn container_events(
    pod: &Pod,
    before: Option<&ContainerView>,
    now: &ContainerView,
) -> Vec<(EventType, &'static str, String)> {
    let name = &now.status.name;
    let old_state = before.map(|b| &b.status.state);
    let mut out = Vec::new();
    match &now.status.state {
        ContainerState::Running { started_at, .. } => {
            let same_run = matches!(old_state, Some(ContainerState::Running { started_at: s, .. }) if s == started_at);
            if !same_run {
                out.push((
                    EventType::Normal,
                    "Created",
                    format!("Created container {name}"),
                ));
                out.push((
                    EventType::Normal,
                    "Started",
                    format!("Started container {name}"),
                ));
            } else if before.is_some_and(|b| b.ready) && !now.ready {
                out.push((
                    EventType::Warning,
                    "Unhealthy",
                    "Readiness probe failed".to_string(),
                ));
            }
        }
        ContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff" => {
            let was_backing_off = before.is_some_and(|b| {
                b.status.restart_count == now.status.restart_count
                    && matches!(&b.status.state, ContainerState::Waiting { reason: r, .. } if r == "CrashLoopBackOff")
            });
            if !was_backing_off {
                let meta = &pod.metadata;
                out.push((
                    EventType::Warning,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {name} in pod {}_{}({})",
                        meta.name.as_deref().unwrap_or_default(),
                        meta.namespace.as_deref().unwrap_or("default"),
                        meta.uid.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
        ContainerState::Terminated(t) => {
            let seen = matches!(old_state, Some(ContainerState::Terminated(o)) if o.finished_at == t.finished_at);
            let seen_running = matches!(old_state, Some(ContainerState::Running { started_at, .. }) if Some(*started_at) == t.started_at);
            if seen {
            } else if t.reason == "StartError" {
                let message = t
                    .message
                    .clone()
                    .unwrap_or_else(|| "could not start".into());
                out.push((EventType::Warning, "Failed", format!("Error: {message}")));
            } else if t.started_at.is_some() && !seen_running {
                // A run that began and ended between two looks still started.
                out.push((
                    EventType::Normal,
                    "Created",
                    format!("Created container {name}"),
                ));
                out.push((
                    EventType::Normal,
                    "Started",
                    format!("Started container {name}"),
                ));
            }
        }
        _ => {}
    }
    out
}
