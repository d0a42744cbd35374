//! Ending a Pod's instance: graceful deletion as the kubelet does it (Killing events,
//! preStop hooks, SIGTERM, the grace period, SIGKILL, then the Pod object goes with
//! gracePeriodSeconds 0 and a uid precondition), and immediate removal for a Pod that
//! vanished (a forced delete).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use kube::api::{Api, DeleteParams, Preconditions};
use kube::ResourceExt;
use nodeless_engine::instance::{EngineError, ExecIo, InstanceStatus};
use nodeless_kube::EventType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ledger::EndReason;
use crate::pods::Agent;
use crate::worker::pod_ref;

/// The kubelet's default when the Pod names no grace period.
const DEFAULT_GRACE: i64 = 30;
/// After preStop hooks used the grace period up, containers still get this long.
const MIN_GRACE_AFTER_HOOKS: Duration = Duration::from_secs(2);
const DELETE_ATTEMPTS: u32 = 30;

/// Stops and removes the instance at once: its Pod is gone already.
pub(crate) async fn remove_now(agent: &Agent, uid: &str) {
    match agent.engine.stop(uid, Duration::ZERO).await {
        Ok(()) | Err(EngineError::NotFound(_)) => {}
        Err(e) => tracing::warn!(instance = %uid, error = %e, "cannot stop the instance"),
    }
    let end = agent
        .engine
        .status(uid)
        .await
        .ok()
        .filter(|i| i.phase.is_finished())
        .and_then(|i| crate::ledger::stopped_at(&i))
        .unwrap_or_else(chrono::Utc::now);
    agent.ledger.close_uid(uid, end, EndReason::Deleted).await;
    if let Err(e) = agent.engine.remove(uid).await {
        tracing::warn!(instance = %uid, error = %e, "cannot remove the instance");
    }
}

/// The Pod's grace period: what the deletion set, else the spec's, else 30 s.
pub(crate) fn grace_period(pod: &Pod) -> Duration {
    let seconds = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(DEFAULT_GRACE);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

/// Gracefully ends the Pod's instance, then deletes the Pod object.
pub(crate) async fn delete(agent: &Agent, pod: &Pod, instance: Option<&InstanceStatus>) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let stopped = stop_gracefully(agent, pod, instance).await;
    if instance.is_some() || stopped.is_some() {
        agent
            .ledger
            .close(pod, stopped.as_ref().or(instance), EndReason::Deleted)
            .await;
    }
    if let Err(e) = agent.engine.remove(&uid).await {
        tracing::warn!(pod = %pod_ref(pod), error = %e, "cannot remove the instance; it is removed at the next agent start");
    }
    delete_object(agent, pod, &uid).await;
}

/// Stops the Pod's instance as the kubelet stops a Pod: Killing events, preStop hooks,
/// SIGTERM, the grace period, SIGKILL. Returns the instance as it is afterwards.
pub(crate) async fn stop_gracefully(
    agent: &Agent,
    pod: &Pod,
    instance: Option<&InstanceStatus>,
) -> Option<InstanceStatus> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let grace = grace_period(pod);
    if let Some(inst) = instance.filter(|i| !i.phase.is_finished()) {
        let running: Vec<&Container> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .filter(|c| {
                inst.containers
                    .iter()
                    .any(|v| v.status.name == c.name && v.status.state.is_running())
            })
            .collect();
        for c in &running {
            let mut reference = nodeless_kube::events::pod_reference(pod, Some(&c.name));
            reference.field_path = Some(format!("spec.containers{{{}}}", c.name));
            agent.record(
                pod,
                crate::status::PodEvent {
                    kind: EventType::Normal,
                    reason: "Killing",
                    message: format!("Stopping container {}", c.name),
                    field_path: reference.field_path,
                },
            );
        }
        let started = Instant::now();
        if !grace.is_zero() {
            run_pre_stop_hooks(agent, pod, &uid, &running, grace).await;
        }
        let left = grace.saturating_sub(started.elapsed());
        let left = if grace.is_zero() {
            Duration::ZERO
        } else {
            left.max(MIN_GRACE_AFTER_HOOKS)
        };
        match agent.engine.stop(&uid, left).await {
            Ok(()) | Err(EngineError::NotFound(_)) => {}
            Err(e) => tracing::warn!(pod = %pod_ref(pod), error = %e, "cannot stop the instance"),
        }
    }
    agent.engine.status(&uid).await.ok()
}

async fn delete_object(agent: &Agent, pod: &Pod, uid: &str) {
    let api: Api<Pod> = Api::namespaced(agent.client.clone(), &pod.namespace().unwrap_or_default());
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    for _ in 0..DELETE_ATTEMPTS {
        match api.delete(&pod.name_any(), &params).await {
            Ok(_) => return,
            // Gone already, or a new Pod of the same name: not ours to delete.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return,
            Err(e) => {
                tracing::warn!(pod = %pod_ref(pod), error = %e, "cannot delete the pod; retrying");
                tokio::select! {
                    _ = agent.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Runs the containers' preStop hooks at once, for at most the grace period.
async fn run_pre_stop_hooks(
    agent: &Agent,
    pod: &Pod,
    uid: &str,
    containers: &[&Container],
    grace: Duration,
) {
    let hooks = containers.iter().filter_map(|c| {
        let hook = c.lifecycle.as_ref()?.pre_stop.as_ref()?;
        Some(async move {
            if let Err(message) = pre_stop(agent, uid, c, hook).await {
                agent.record(
                    pod,
                    crate::status::PodEvent {
                        kind: EventType::Warning,
                        reason: "FailedPreStopHook",
                        message: format!("PreStopHook failed: {message}"),
                        field_path: Some(format!("spec.containers{{{}}}", c.name)),
                    },
                );
            }
        })
    });
    let all = futures::future::join_all(hooks);
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::info!(pod = %pod_ref(pod), "preStop hooks outlived the grace period");
    }
}

async fn pre_stop(
    agent: &Agent,
    uid: &str,
    c: &Container,
    hook: &LifecycleHandler,
) -> Result<(), String> {
    if let Some(exec) = &hook.exec {
        let io = ExecIo {
            stdin: None,
            stdout: Box::new(tokio::io::sink()),
            stderr: Some(Box::new(tokio::io::sink())),
            tty: false,
            resize: None,
        };
        let command = exec.command.clone().unwrap_or_default();
        return match agent.engine.exec(uid, &c.name, command, io).await {
            Ok(0) => Ok(()),
            Ok(code) => Err(format!("command exited with {code}")),
            Err(e) => Err(e.to_string()),
        };
    }
    if let Some(http) = &hook.http_get {
        let port = crate::translate::hook_port(c, &http.port).map_err(|e| e.to_string())?;
        let path = http.path.clone().unwrap_or_else(|| "/".into());
        return http_get(agent, uid, port, &path).await;
    }
    if let Some(sleep) = &hook.sleep {
        tokio::time::sleep(Duration::from_secs(
            u64::try_from(sleep.seconds).unwrap_or(0),
        ))
        .await;
    }
    Ok(())
}

/// A GET through the engine's port-forward; a 2xx or 3xx answer is success.
async fn http_get(agent: &Agent, uid: &str, port: u16, path: &str) -> Result<(), String> {
    let mut stream = agent
        .engine
        .port_forward(uid, port)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nUser-Agent: kube-lifecycle/1.32\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 16];
    let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    let code = line.split_whitespace().nth(1).unwrap_or("");
    if code.starts_with('2') || code.starts_with('3') {
        Ok(())
    } else {
        Err(format!("HTTP GET {path} on port {port}: {}", line.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_period_comes_from_the_deletion_then_the_spec_then_thirty_seconds() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "deletionGracePeriodSeconds": 5},
            "spec": {"containers": [], "terminationGracePeriodSeconds": 60}
        }))
        .expect("pod");
        assert_eq!(grace_period(&pod), Duration::from_secs(5));
        pod.metadata.deletion_grace_period_seconds = None;
        assert_eq!(grace_period(&pod), Duration::from_secs(60));
        pod.spec
            .as_mut()
            .expect("spec")
            .termination_grace_period_seconds = None;
        assert_eq!(grace_period(&pod), Duration::from_secs(30));
    }
}
