//! One Pod's worker: a level-triggered loop that makes the instance match the Pod and the
//! Pod's status match the instance. Each pass reads the latest Pod and instance (older
//! values were overwritten in their channels) and does what is missing: create the
//! instance, push changed ConfigMap/Secret files, patch status, or tear down on deletion.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use nodeless_engine::instance::{
    EngineError, InstanceSpec, InstanceStatus, PullPolicy, VolumeFile, VolumeSource,
};
use nodeless_kube::EventType;
use serde_json::json;
use tokio::sync::{watch, Notify};

use crate::pods::Agent;
use crate::status::{self, View};
use crate::translate;

/// A create that takes longer than this is pulling: the Pod shows ContainerCreating and
/// the Pulling event, instead of nothing, while it waits.
const SLOW_CREATE: Duration = Duration::from_secs(1);
/// Image pull retries back off from 10 s to 5 minutes, as the kubelet's.
const PULL_BACKOFF: Duration = Duration::from_secs(10);
const PULL_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// ErrImagePull shows this long before the Pod says ImagePullBackOff.
const ERR_IMAGE_PULL_SHOWN: Duration = Duration::from_secs(2);
/// Other failures (a missing ConfigMap) are retried at this pace, and at once when a
/// ConfigMap or Secret the Pod reads changes.
const RETRY: Duration = Duration::from_secs(10);
const WRITE_RETRY: Duration = Duration::from_secs(1);

pub(crate) struct WorkerInit {
    pub(crate) uid: String,
    /// The instance found at agent start, if any.
    pub(crate) instance: Option<InstanceStatus>,
    /// Its supervisor died with the host: restart it per restartPolicy.
    pub(crate) lost: bool,
}

/// Why the Pod has no instance yet.
struct Waiting {
    reason: &'static str,
    message: String,
    since: Instant,
    retry_at: Instant,
    image: Option<String>,
}

struct Worker {
    agent: Arc<Agent>,
    uid: String,
    pod_rx: watch::Receiver<Option<Arc<Pod>>>,
    inst_rx: watch::Receiver<Option<InstanceStatus>>,
    kick: Arc<Notify>,
    instance: Option<InstanceStatus>,
    /// The instance view events were last derived from.
    seen: Option<InstanceStatus>,
    lost: bool,
    waiting: Option<Waiting>,
    pull_failures: u32,
    /// The status last written.
    sent: Option<PodStatus>,
    /// Files last written to the instance's config volumes.
    volumes: Option<Vec<(String, Vec<VolumeFile>)>>,
    refresh: bool,
    /// The spot instance was released (BidFailed): never create it again.
    released: bool,
}

enum Step {
    /// Wait for a change, or at most this long.
    Sleep(Option<Duration>),
    Done,
}

pub(crate) async fn run(
    agent: Arc<Agent>,
    init: WorkerInit,
    mut pod_rx: watch::Receiver<Option<Arc<Pod>>>,
    mut inst_rx: watch::Receiver<Option<InstanceStatus>>,
    kick: Arc<Notify>,
) {
    pod_rx.mark_changed();
    inst_rx.borrow_and_update();
    let mut w = Worker {
        agent,
        uid: init.uid,
        pod_rx,
        inst_rx,
        kick,
        seen: init.instance.clone(),
        instance: init.instance,
        lost: init.lost,
        waiting: None,
        pull_failures: 0,
        sent: None,
        volumes: None,
        refresh: false,
        released: false,
    };
    w.run().await
}

impl Worker {
    async fn run(&mut self) {
        loop {
            let wake = match self.step().await {
                Step::Done => return,
                Step::Sleep(wake) => wake,
            };
            let sleep = async {
                match wake {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.pod_rx.changed() => if r.is_err() { return },
                r = self.inst_rx.changed() => {
                    if r.is_err() { return }
                    self.instance = self.inst_rx.borrow_and_update().clone();
                }
                _ = self.kick.notified() => self.refresh = true,
                _ = sleep => {}
            }
        }
    }

    async fn step(&mut self) -> Step {
        let Some(pod) = self.pod_rx.borrow_and_update().clone() else {
            crate::deletion::remove_now(&self.agent, &self.uid).await;
            return Step::Done;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            crate::deletion::delete(&self.agent, &pod, self.instance.as_ref()).await;
            return Step::Done;
        }
        if std::mem::take(&mut self.refresh) {
            // A ConfigMap or Secret changed: retry a config failure now (not a pull backoff).
            if let Some(w) = self.waiting.as_mut().filter(|w| w.image.is_none()) {
                w.retry_at = Instant::now();
            }
            self.refresh_instance(&pod).await;
        }
        if std::mem::take(&mut self.lost) && restarts_after_host_loss(&pod) {
            tracing::info!(pod = %pod_ref(&pod), "instance lost with the host; recreating it");
            if let Err(e) = self.agent.engine.remove(&self.uid).await {
                tracing::warn!(pod = %pod_ref(&pod), error = %e, "could not remove the lost instance");
            }
            self.instance = None;
            self.seen = None;
        }
        let release_at = crate::release::release_at(&pod).filter(|_| !is_terminal(&pod));
        if let Some(at) = release_at {
            if Utc::now() >= at {
                return self.release(&pod).await;
            }
        }
        let step = match self.instance.clone() {
            None => self.without_instance(&pod).await,
            Some(inst) => self.with_instance(&pod, &inst).await,
        };
        // Wake up in time to release a spot instance that was given notice.
        match (step, release_at) {
            (Step::Sleep(wake), Some(at)) => {
                let left = (at - Utc::now()).to_std().unwrap_or_default();
                Step::Sleep(Some(wake.map_or(left, |w| w.min(left))))
            }
            (step, _) => step,
        }
    }

    /// Releases a spot instance whose notice ran out: stopped gracefully, its billing
    /// ended, removed, and the Pod `Failed` with reason `BidFailed`, as on ECI.
    async fn release(&mut self, pod: &Pod) -> Step {
        if !self.released {
            tracing::info!(pod = %pod_ref(pod), "releasing the spot instance");
            let stopped =
                crate::deletion::stop_gracefully(&self.agent, pod, self.instance.as_ref()).await;
            if let Some(inst) = stopped.as_ref().or(self.instance.as_ref()) {
                self.agent
                    .ledger
                    .close(pod, Some(inst), crate::ledger::EndReason::BidFailed)
                    .await;
            }
            self.instance = stopped;
            self.released = true;
        }
        let status = crate::release::released_status(
            pod,
            self.sent.as_ref().or(pod.status.as_ref()),
            self.instance.as_ref(),
            self.agent.config.address,
            Utc::now(),
        );
        if !self.write_status(pod, status).await {
            return Step::Sleep(Some(WRITE_RETRY));
        }
        if self.instance.take().is_some() {
            if let Err(e) = self.agent.engine.remove(&self.uid).await {
                tracing::warn!(pod = %pod_ref(pod), error = %e, "cannot remove the released instance");
            }
        }
        Step::Sleep(None)
    }

    /// Re-reads the instance (events were missed) and pushes changed ConfigMap/Secret files.
    async fn refresh_instance(&mut self, pod: &Pod) {
        if self.instance.is_none() {
            return;
        }
        match self.agent.engine.status(&self.uid).await {
            Ok(s) => self.instance = Some(s),
            Err(EngineError::NotFound(_)) => self.instance = None,
            Err(e) => tracing::warn!(pod = %pod_ref(pod), error = %e, "cannot read the instance"),
        }
        if self
            .instance
            .as_ref()
            .is_some_and(|i| !i.phase.is_finished())
        {
            self.push_volumes(pod).await;
        }
    }

    async fn push_volumes(&mut self, pod: &Pod) {
        let refs = translate::references(pod);
        if refs.config_maps.is_empty() && refs.secrets.is_empty() && self.volumes.is_some() {
            return;
        }
        let namespace = pod.namespace().unwrap_or_default();
        let Ok(sources) = self.agent.sources(&namespace, &refs).await else {
            return;
        };
        let rendered = match translate::files_volumes(pod, &sources, &self.agent.ctx) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(pod = %pod_ref(pod), error = %e, "volumes not updated");
                return;
            }
        };
        let old = self.volumes.take().unwrap_or_default();
        for (name, files) in &rendered {
            if old.iter().any(|(n, f)| n == name && f == files) {
                continue;
            }
            if let Err(e) = self
                .agent
                .engine
                .update_volume(&self.uid, name, files.clone())
                .await
            {
                tracing::warn!(pod = %pod_ref(pod), volume = %name, error = %e, "cannot update the volume");
            }
        }
        self.volumes = Some(rendered);
    }

    async fn without_instance(&mut self, pod: &Pod) -> Step {
        // A finished Pod is never run again, nor a released spot instance.
        if is_terminal(pod) || self.released {
            return Step::Sleep(None);
        }
        if let Some(step) = self.still_waiting(pod).await {
            return step;
        }
        let namespace = pod.namespace().unwrap_or_default();
        let refs = translate::references(pod);
        let sources = match self.agent.sources(&namespace, &refs).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(pod = %pod_ref(pod), error = %e, "cannot read configmaps and secrets");
                return Step::Sleep(Some(WRITE_RETRY));
            }
        };
        let spec = match translate::instance_spec(pod, &sources, &self.agent.ctx) {
            Ok(spec) => spec,
            Err(e) => {
                let message = e.to_string();
                self.agent.record_simple(
                    pod,
                    EventType::Warning,
                    "Failed",
                    format!("Error: {message}"),
                );
                return self.wait(pod, e.reason(), message, RETRY, None).await;
            }
        };
        self.volumes = Some(files_of(&spec));
        self.create(pod, spec).await
    }

    /// While a retry is not due: Some(step). ErrImagePull turns into ImagePullBackOff.
    async fn still_waiting(&mut self, pod: &Pod) -> Option<Step> {
        let now = Instant::now();
        let w = self.waiting.as_mut()?;
        if now >= w.retry_at {
            return None;
        }
        let left = w.retry_at - now;
        if w.reason == "ErrImagePull" {
            let shown = w.since + ERR_IMAGE_PULL_SHOWN;
            if now < shown {
                return Some(Step::Sleep(Some(shown - now)));
            }
            w.reason = "ImagePullBackOff";
            w.message = format!(
                "Back-off pulling image {:?}: {}",
                w.image.clone().unwrap_or_default(),
                w.message
            );
            let image = w.image.clone().unwrap_or_default();
            self.agent.record_simple(
                pod,
                EventType::Normal,
                "BackOff",
                format!("Back-off pulling image {image:?}"),
            );
            self.agent.record_simple(
                pod,
                EventType::Warning,
                "Failed",
                "Error: ImagePullBackOff".into(),
            );
            if !self.patch_waiting(pod).await {
                return Some(Step::Sleep(Some(WRITE_RETRY.min(left))));
            }
        }
        Some(Step::Sleep(Some(left)))
    }

    async fn wait(
        &mut self,
        pod: &Pod,
        reason: &'static str,
        message: String,
        retry: Duration,
        image: Option<String>,
    ) -> Step {
        let now = Instant::now();
        self.waiting = Some(Waiting {
            reason,
            message,
            since: now,
            retry_at: now + retry,
            image,
        });
        if !self.patch_waiting(pod).await {
            return Step::Sleep(Some(WRITE_RETRY));
        }
        let show = if reason == "ErrImagePull" {
            ERR_IMAGE_PULL_SHOWN.min(retry)
        } else {
            retry
        };
        Step::Sleep(Some(show))
    }

    async fn patch_waiting(&mut self, pod: &Pod) -> bool {
        let Some(w) = &self.waiting else { return true };
        let (reason, message) = (w.reason, w.message.clone());
        self.patch(
            pod,
            View::Waiting {
                reason,
                message: Some(&message),
            },
        )
        .await
    }

    async fn create(&mut self, pod: &Pod, spec: InstanceSpec) -> Step {
        let agent = self.agent.clone();
        let _permit = agent.create_permits.acquire().await;
        let images = images_of(&spec);
        let always = spec
            .all_containers()
            .any(|c| c.pull_policy == PullPolicy::Always);
        if always {
            self.pulling(pod, &images);
        }
        let started = Instant::now();
        let engine = agent.engine.clone();
        let create = engine.create(spec);
        tokio::pin!(create);
        let mut slow = false;
        let result = tokio::select! {
            r = &mut create => r,
            _ = tokio::time::sleep(SLOW_CREATE) => {
                slow = true;
                if !always {
                    self.pulling(pod, &images);
                }
                self.patch(pod, View::Waiting { reason: "ContainerCreating", message: None }).await;
                create.await
            }
        };
        match result {
            Ok(status) => {
                self.pulled(pod, &images, started.elapsed(), slow || always);
                self.waiting = None;
                self.pull_failures = 0;
                self.instance = Some(status.clone());
                self.with_instance(pod, &status).await
            }
            Err(EngineError::Image { image, source, .. }) => {
                self.pull_failures += 1;
                let message = source.to_string();
                self.agent.record_simple(
                    pod,
                    EventType::Warning,
                    "Failed",
                    format!("Failed to pull image {image:?}: {message}"),
                );
                self.agent.record_simple(
                    pod,
                    EventType::Warning,
                    "Failed",
                    "Error: ErrImagePull".into(),
                );
                let backoff = pull_backoff(self.pull_failures);
                self.wait(pod, "ErrImagePull", message, backoff, Some(image))
                    .await
            }
            Err(EngineError::AlreadyExists(_)) => match self.agent.engine.status(&self.uid).await {
                Ok(status) => {
                    self.instance = Some(status.clone());
                    self.with_instance(pod, &status).await
                }
                Err(_) => Step::Sleep(Some(WRITE_RETRY)),
            },
            Err(EngineError::Busy(_)) => Step::Sleep(Some(WRITE_RETRY)),
            Err(e) => {
                tracing::warn!(pod = %pod_ref(pod), error = %e, "instance creation failed");
                let message = e.to_string();
                self.agent.record_simple(
                    pod,
                    EventType::Warning,
                    "Failed",
                    format!("Error: {message}"),
                );
                self.wait(pod, "CreateContainerError", message, RETRY, None)
                    .await
            }
        }
    }

    fn pulling(&self, pod: &Pod, images: &[String]) {
        for image in images {
            self.agent.record_simple(
                pod,
                EventType::Normal,
                "Pulling",
                format!("Pulling image {image:?}"),
            );
        }
    }

    fn pulled(&self, pod: &Pod, images: &[String], took: Duration, pulled: bool) {
        for image in images {
            let message = if pulled {
                format!(
                    "Successfully pulled image {image:?} in {:.3}s",
                    took.as_secs_f64()
                )
            } else {
                format!("Container image {image:?} already present on machine")
            };
            self.agent
                .record_simple(pod, EventType::Normal, "Pulled", message);
        }
    }

    async fn with_instance(&mut self, pod: &Pod, inst: &InstanceStatus) -> Step {
        for event in status::events_between(pod, self.seen.as_ref(), inst) {
            self.agent.record(pod, event);
        }
        if !inst.phase.is_finished() {
            self.agent.ledger.open(pod, inst);
        } else if !self.agent.ledger.is_closed(&self.uid) {
            let reason = if inst.phase == nodeless_engine::instance::InstancePhase::Succeeded {
                crate::ledger::EndReason::Succeeded
            } else {
                crate::ledger::EndReason::Failed
            };
            let (agent, pod, inst) = (self.agent.clone(), pod.clone(), inst.clone());
            tokio::spawn(async move { agent.ledger.close(&pod, Some(&inst), reason).await });
        }
        self.seen = Some(inst.clone());
        if self.patch(pod, View::Instance(inst)).await {
            Step::Sleep(None)
        } else {
            Step::Sleep(Some(WRITE_RETRY))
        }
    }

    /// Writes the status `view` implies unless it is what was last written. False when the
    /// write failed and should be retried.
    async fn patch(&mut self, pod: &Pod, view: View<'_>) -> bool {
        let previous = self.sent.as_ref().or(pod.status.as_ref());
        let status = status::pod_status(pod, previous, view, self.agent.config.address, Utc::now());
        self.write_status(pod, status).await
    }

    /// Writes `status` unless it is what was last written, keeping conditions other
    /// components set since (the scheduler's SpotToBeReleased). False when the write failed.
    async fn write_status(&mut self, pod: &Pod, mut status: PodStatus) -> bool {
        status::keep_foreign_conditions(&mut status, pod.status.as_ref());
        if self.sent.as_ref() == Some(&status) || pod.status.as_ref() == Some(&status) {
            self.sent = Some(status);
            return true;
        }
        let _permit = self.agent.write_permits.acquire().await;
        let api: Api<Pod> = Api::namespaced(
            self.agent.client.clone(),
            &pod.namespace().unwrap_or_default(),
        );
        let body = json!({ "status": status });
        match api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&body),
            )
            .await
        {
            Ok(_) => {
                self.sent = Some(status);
                true
            }
            // Gone: the watch says so next.
            Err(kube::Error::Api(e)) if e.code == 404 => true,
            Err(e) => {
                tracing::warn!(pod = %pod_ref(pod), error = %e, "cannot write pod status");
                false
            }
        }
    }
}

fn pull_backoff(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    PULL_BACKOFF.saturating_mul(factor).min(PULL_BACKOFF_MAX)
}

fn images_of(spec: &InstanceSpec) -> Vec<String> {
    let mut seen = HashSet::new();
    spec.all_containers()
        .map(|c| c.image.clone())
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

fn files_of(spec: &InstanceSpec) -> Vec<(String, Vec<VolumeFile>)> {
    spec.volumes
        .iter()
        .filter_map(|v| match &v.source {
            VolumeSource::Files { files } => Some((v.name.clone(), files.clone())),
            VolumeSource::EmptyDir { .. } => None,
        })
        .collect()
}

pub(crate) fn pod_ref(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// After a host restart killed an instance: Always and OnFailure Pods run again (a Pod that
/// already finished stays finished).
fn restarts_after_host_loss(pod: &Pod) -> bool {
    let policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    !is_terminal(pod) && policy != Some("Never")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_backoff_doubles_from_ten_seconds_to_five_minutes() {
        let secs: Vec<u64> = (1..=7).map(|n| pull_backoff(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn finished_pods_are_not_restarted_after_a_host_loss() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "a"},
            "spec": {"containers": [], "restartPolicy": "OnFailure"},
            "status": {"phase": "Running"}
        }))
        .expect("pod");
        assert!(restarts_after_host_loss(&pod));
        pod.status.as_mut().expect("status").phase = Some("Succeeded".into());
        assert!(!restarts_after_host_loss(&pod));
        pod.status.as_mut().expect("status").phase = Some("Running".into());
        pod.spec.as_mut().expect("spec").restart_policy = Some("Never".into());
        assert!(!restarts_after_host_loss(&pod));
    }
}
