//! Admission: what a nodeless platform refuses at the API, and what to use instead.
//!
//! DaemonSets, privileged containers, the host's network, process and IPC namespaces, host
//! ports, hostPath volumes and NodePort Services all assume a node the workload shares with
//! others; here every Pod is its own instance and no node exists. Virtual-kubelet providers
//! accept such objects and then skip them or leave their Pods Pending; we refuse them when
//! they are written, naming the field and the alternative, so the mistake surfaces in the
//! `kubectl apply` that made it.

use crate::field::{ErrorList, FieldError, Path};
use crate::resource::ResourceType;
use crate::status::{Cause, StatusError};
use serde_json::Value;

const DAEMONSET: &str =
    "DaemonSets are not supported on nodeless: there are no nodes to run one Pod on each; \
    run the agent as a sidecar container in the Pods that need it";
const PRIVILEGED: &str = "not supported on nodeless: a privileged container would control the host that other \
    Pods' instances share; add just the capabilities it needs with securityContext.capabilities.add instead";
const HOST_NETWORK: &str =
    "not supported on nodeless: each Pod is its own instance with its own network and \
    there is no node network to join; expose the Pod with a Service of type LoadBalancer instead";
const HOST_PORT: &str = "not supported on nodeless: there is no node whose port could be bound; \
    expose the port with a Service of type LoadBalancer instead";
const HOST_PID: &str =
    "not supported on nodeless: there is no node whose processes could be shared; \
    use shareProcessNamespace to share processes between the Pod's containers instead";
const HOST_IPC: &str = "not supported on nodeless: there is no node whose IPC namespace could be shared; \
    the containers of one Pod already share theirs (use an emptyDir volume with medium Memory for shared memory)";
const HOST_PATH: &str =
    "not supported on nodeless: there is no node whose files could be mounted; \
    use an emptyDir volume instead (or a persistentVolumeClaim for data that must outlive the Pod)";
const NODE_PORT: &str = "not supported on nodeless: there are no nodes to open the port on; \
    use a Service of type LoadBalancer instead";

/// Everything in `obj` (a built-in kind, defaulted) that a nodeless platform cannot run,
/// as `Forbidden` field errors whose detail names the alternative. Pod templates of the
/// workload kinds are checked at their path, e.g. `spec.template.spec.hostNetwork`.
pub fn refuse_unsupported(group: &str, kind: &str, obj: &Value) -> ErrorList {
    match (group, kind) {
        ("apps", "DaemonSet") => vec![FieldError::forbidden("spec", DAEMONSET)],
        ("", "Pod") => pod_spec(obj.get("spec"), &Path::new("spec")),
        ("batch", "Job") => {
            let mut errs = template(obj, &["spec", "template"]);
            errs.extend(job_spec(obj.get("spec"), &Path::new("spec")));
            errs
        }
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet") | ("", "ReplicationController") => {
            template(obj, &["spec", "template"])
        }
        ("batch", "CronJob") => {
            let mut errs = template(obj, &["spec", "jobTemplate", "spec", "template"]);
            let job = obj.get("spec").and_then(|s| s.get("jobTemplate"));
            let at = Path::new("spec").child("jobTemplate").child("spec");
            errs.extend(job_spec(job.and_then(|j| j.get("spec")), &at));
            errs
        }
        ("", "Service") => service(obj),
        _ => ErrorList::new(),
    }
}

/// What an update adds that [`refuse_unsupported`] refuses. What the stored object already
/// had (written before nodeless refused it) stays, so status updates, finalizer removal and
/// deletion of such objects still work.
pub fn refuse_new_unsupported(group: &str, kind: &str, new: &Value, old: &Value) -> ErrorList {
    let before = refuse_unsupported(group, kind, old);
    refuse_unsupported(group, kind, new)
        .into_iter()
        .filter(|e| !before.contains(e))
        .collect()
}

/// Admits a create (`old` is `None`) or an update of `rt`, or refuses it with 403 Forbidden.
///
/// 403 rather than 422 Invalid: the object is valid Kubernetes that this platform declines,
/// which upstream reports as an admission denial (`pods "x" is forbidden: ...`, as
/// PodSecurity does). The field paths are kept as the Status's causes all the same.
#[allow(
    clippy::result_large_err,
    reason = "StatusError is what every API server write returns, by value"
)]
pub fn admit(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Result<(), StatusError> {
    if rt.custom {
        return Ok(());
    }
    let errs = match old {
        None => refuse_unsupported(&rt.group, &rt.kind, obj),
        Some(old) => refuse_new_unsupported(&rt.group, &rt.kind, obj, old),
    };
    if errs.is_empty() {
        return Ok(());
    }
    Err(denied(
        &rt.group,
        &rt.plural,
        crate::meta::name(obj).unwrap_or(""),
        &errs,
    ))
}

/// `pods "x" is forbidden: spec.hostNetwork: not supported on nodeless: ...`, one cause per field.
pub fn denied(group: &str, plural: &str, name: &str, errs: &ErrorList) -> StatusError {
    let parts: Vec<String> = errs
        .iter()
        .map(|e| format!("{}: {}", e.field, e.detail))
        .collect();
    let why = match parts.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let mut status = StatusError::forbidden(group, plural, name, &why);
    if let Some(details) = status.details.as_mut() {
        details.causes = errs
            .iter()
            .map(|e| Cause {
                reason: e.kind.cause_reason().into(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
    }
    status
}

/// Job fields the Job controller does not implement yet: refused rather than silently
/// ignored, so a Job never runs under rules other than the ones it asked for.
const JOB_FIELD_NOT_YET: &str =
    "not supported on nodeless yet: the Job controller does not implement it; \
    use backoffLimit (and activeDeadlineSeconds) to bound failures instead";

fn job_spec(spec: Option<&Value>, path: &Path) -> ErrorList {
    let Some(spec) = spec else {
        return ErrorList::new();
    };
    let mut errs = ErrorList::new();
    for field in [
        "podFailurePolicy",
        "successPolicy",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        if spec.get(field).is_some_and(|v| !v.is_null()) {
            errs.push(FieldError::forbidden(path.child(field), JOB_FIELD_NOT_YET));
        }
    }
    if spec.get("podReplacementPolicy").and_then(Value::as_str) == Some("Failed") {
        errs.push(FieldError::forbidden(
            path.child("podReplacementPolicy"),
            "not supported on nodeless yet: replacement Pods are created as soon as a Pod is \
            terminating (TerminatingOrFailed)",
        ));
    }
    errs
}

fn template(obj: &Value, path: &[&str]) -> ErrorList {
    let spec = path
        .iter()
        .try_fold(obj, |v, p| v.get(p))
        .and_then(|t| t.get("spec"));
    let at = path
        .iter()
        .fold(Path::default(), |p, part| p.child(part))
        .child("spec");
    pod_spec(spec, &at)
}

fn pod_spec(spec: Option<&Value>, path: &Path) -> ErrorList {
    let Some(spec) = spec else {
        return ErrorList::new();
    };
    let mut errs = ErrorList::new();
    let host_network = is_true(spec.get("hostNetwork"));
    for (field, detail) in [
        ("hostNetwork", HOST_NETWORK),
        ("hostPID", HOST_PID),
        ("hostIPC", HOST_IPC),
    ] {
        if is_true(spec.get(field)) {
            errs.push(FieldError::forbidden(path.child(field), detail));
        }
    }
    for (i, volume) in items(spec, "volumes") {
        if volume.get("hostPath").is_some_and(|h| !h.is_null()) {
            errs.push(FieldError::forbidden(
                path.child("volumes").index(i).child("hostPath"),
                HOST_PATH,
            ));
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in items(spec, list) {
            errs.extend(container(c, &path.child(list).index(i), host_network));
        }
    }
    errs
}

/// `host_network` skips host ports: defaulting copies every container port into `hostPort`
/// for host-network Pods, and the refusal of hostNetwork already says what to do.
fn container(c: &Value, path: &Path, host_network: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    if is_true(c.get("securityContext").and_then(|s| s.get("privileged"))) {
        errs.push(FieldError::forbidden(
            path.child("securityContext").child("privileged"),
            PRIVILEGED,
        ));
    }
    if host_network {
        return errs;
    }
    for (j, port) in items(c, "ports") {
        let host_port = port
            .get("hostPort")
            .filter(|p| !p.is_null() && p.as_i64() != Some(0));
        if host_port.is_some() {
            errs.push(FieldError::forbidden(
                path.child("ports").index(j).child("hostPort"),
                HOST_PORT,
            ));
        }
    }
    errs
}

fn service(obj: &Value) -> ErrorList {
    let kind = obj
        .get("spec")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str);
    match kind {
        Some("NodePort") => vec![FieldError::forbidden("spec.type", NODE_PORT)],
        _ => ErrorList::new(),
    }
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

fn items<'a>(v: &'a Value, field: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    v.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

#[cfg(test)]
mod tests;
