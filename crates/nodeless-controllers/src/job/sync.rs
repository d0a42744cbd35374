//! One level-triggered pass over a Job: count finished Pods, decide the Job's fate, make its
//! Pods match, write its status if it changed.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::core::Selector;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use nodeless_kube::EventType;

use super::plan::{self, Failure, Shape};
use super::tracking::{self, completion_index, Counts, Outcome};
use super::{release, template, JobError, Shared};
use crate::pods::{is_active, is_controlled_by, is_ready};

/// At most this many Pod creations or deletions are in flight for one Job.
const BURST: usize = 8;

pub(super) async fn sync(job: &Job, sh: &Shared, now: DateTime<Utc>) -> Result<Action, JobError> {
    let (Some(ns), Some(uid)) = (job.namespace(), job.uid()) else {
        return Ok(Action::await_change());
    };
    let name = job.name_any();
    let pod_api: Api<Pod> = Api::namespaced(sh.client.clone(), &ns);
    let job_api: Api<Job> = Api::namespaced(sh.client.clone(), &ns);
    let Some(pods) = owned_pods(&pod_api, job, &uid, sh).await? else {
        return Ok(Action::await_change());
    };
    if job.meta().deletion_timestamp.is_some() {
        for pod in pods.iter().filter(|p| tracking::holds_finalizer(p)) {
            release(&pod_api, &pod.name_any())
                .await
                .map_err(|source| JobError::ReleasePod {
                    pod: pod.name_any(),
                    source,
                })?;
        }
        return Ok(Action::await_change());
    }
    let shape = Shape::of(&job.spec.clone().unwrap_or_default());
    let mut job = job.clone();
    let failing = plan::is_true(&job, "FailureTarget") || plan::is_true(&job, "Failed");

    // Count finished Pods: persist them as uncounted, release them, then count them.
    let status = job.status.clone().unwrap_or_default();
    let mut counts = Counts::from_status(&status, shape.completions.unwrap_or(0));
    let before = counts.clone();
    let finished = counts.record_finished(&pods, shape.indexed_completions(), failing);
    if counts != before {
        let mut status = status.clone();
        counts.apply(&mut status, shape.indexed);
        job = write_status(&job_api, &job, status).await?;
    }
    let mut released = HashSet::new();
    for pod in finished {
        release(&pod_api, &pod.name_any())
            .await
            .map_err(|source| JobError::ReleasePod {
                pod: pod.name_any(),
                source,
            })?;
        released.extend(pod.uid());
    }
    let held: HashSet<String> = pods
        .iter()
        .filter(|p| tracking::holds_finalizer(p))
        .filter_map(|p| p.uid())
        .filter(|u| !released.contains(u))
        .collect();
    counts.fold(&held);

    let mut status = job.status.clone().unwrap_or_default();
    counts.apply(&mut status, shape.indexed);
    let mut pass = Pass {
        sh,
        job: &job,
        pod_api: &pod_api,
        now,
        requeue: None,
    };
    if plan::is_true(&job, "Complete") || plan::is_true(&job, "Failed") {
        pass.count_pods(&pods, &mut status, 0, 0);
    } else {
        pass.steer(&shape, &counts, &pods, &mut status).await?;
    }
    let mut requeue = pass.requeue;
    if Some(&status) != job.status.as_ref() {
        job = write_status(&job_api, &job, status).await?;
    }
    if let Some(expiry) = plan::ttl_expiry(&job) {
        if expiry <= now {
            return delete_expired(&job_api, &name).await;
        }
        requeue = earliest(requeue, until(now, expiry));
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// How long from `now` until `at`, a little after so the pass finds it due.
fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(100)
}

fn earliest(a: Option<Duration>, b: Duration) -> Option<Duration> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// What one pass acts through and learns about when to look again.
struct Pass<'a> {
    sh: &'a Shared,
    job: &'a Job,
    pod_api: &'a Api<Pod>,
    now: DateTime<Utc>,
    requeue: Option<Duration>,
}

impl Pass<'_> {
    fn requeue_at(&mut self, at: DateTime<Utc>) {
        self.requeue = earliest(self.requeue, until(self.now, at));
    }

    /// Decides the Job's fate and makes its Pods match, for a Job not yet finished.
    async fn steer(
        &mut self,
        shape: &Shape,
        counts: &Counts,
        pods: &[Pod],
        status: &mut JobStatus,
    ) -> Result<(), JobError> {
        let mut conditions = status.conditions.clone().unwrap_or_default();
        let active: Vec<&Pod> = pods.iter().filter(|p| is_active(p)).collect();
        let start = status.start_time.as_ref().map(|t| t.0);
        let mut target = finishing(self.job);
        if target.is_none() && !shape.suspend {
            if let Some(failure) = plan::failure(shape, counts, start, self.now) {
                plan::set_condition(
                    &mut conditions,
                    "FailureTarget",
                    "True",
                    failure.reason,
                    failure.message,
                    self.now,
                );
                target = Some(Err(failure));
            } else if plan::succeeded(shape, counts, active.len()) {
                plan::set_condition(
                    &mut conditions,
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    self.now,
                );
                target = Some(Ok(()));
            }
        }
        let (created, deleted) = match target {
            Some(outcome) => {
                let deleted = self.delete(&active).await?;
                let gone = active.len() == deleted && !pods.iter().any(terminating);
                // Upstream adds the terminal condition only once no Pod of the Job runs.
                if gone && deleted == 0 && !counts.has_uncounted() {
                    self.finish(outcome, &mut conditions, status).await;
                }
                (0, deleted)
            }
            None if shape.suspend => {
                let deleted = self.delete(&active).await?;
                if !is_cond(&conditions, "Suspended", "True") {
                    plan::set_condition(
                        &mut conditions,
                        "Suspended",
                        "True",
                        "JobSuspended",
                        "Job suspended",
                        self.now,
                    );
                    self.event(EventType::Normal, "Suspended", "Job suspended")
                        .await;
                }
                (0, deleted)
            }
            None => {
                if is_cond(&conditions, "Suspended", "True") {
                    plan::set_condition(
                        &mut conditions,
                        "Suspended",
                        "False",
                        "JobResumed",
                        "Job resumed",
                        self.now,
                    );
                    self.event(EventType::Normal, "Resumed", "Job resumed")
                        .await;
                    // Time suspended does not count against activeDeadlineSeconds.
                    status.start_time = Some(Time(self.now));
                }
                let start = status.start_time.get_or_insert(Time(self.now)).0;
                if let Some(deadline) = plan::deadline(shape, Some(start)) {
                    self.requeue_at(deadline);
                }
                self.manage(shape, counts, pods, &active).await?
            }
        };
        status.conditions = (!conditions.is_empty()).then_some(conditions);
        self.count_pods(pods, status, created, deleted);
        Ok(())
    }

    async fn finish(
        &mut self,
        outcome: Result<(), Failure>,
        conditions: &mut Vec<k8s_openapi::api::batch::v1::JobCondition>,
        status: &mut JobStatus,
    ) {
        match outcome {
            Ok(()) => {
                plan::set_condition(
                    conditions,
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    self.now,
                );
                status.completion_time = Some(Time(self.now));
                self.event(EventType::Normal, "Completed", "Job completed")
                    .await;
            }
            Err(failure) => {
                plan::set_condition(
                    conditions,
                    "Failed",
                    "True",
                    failure.reason,
                    failure.message,
                    self.now,
                );
                self.event(EventType::Warning, failure.reason, failure.message)
                    .await;
            }
        }
    }

    /// Creates and deletes Pods toward the wanted set; returns how many of each.
    async fn manage(
        &mut self,
        shape: &Shape,
        counts: &Counts,
        pods: &[Pod],
        active: &[&Pod],
    ) -> Result<(usize, usize), JobError> {
        let parallelism = usize::try_from(shape.parallelism).unwrap_or(0);
        let (surplus, to_start): (Vec<&Pod>, Vec<Option<i32>>) = match shape.indexed_completions() {
            Some(completions) => {
                let misplaced = plan::misplaced_indexed(active, completions, &counts.completed);
                let keep: Vec<&Pod> = active
                    .iter()
                    .copied()
                    .filter(|p| !misplaced.iter().any(|m| m.uid() == p.uid()))
                    .collect();
                let mut surplus = misplaced;
                surplus.extend(plan::surplus(keep.clone(), parallelism));
                let running: BTreeSet<i32> =
                    keep.iter().filter_map(|p| completion_index(p)).collect();
                let room = parallelism.saturating_sub(keep.len());
                let start = plan::indexes_to_start(completions, &counts.completed, &running, room);
                (surplus, start.into_iter().map(Some).collect())
            }
            None => {
                let want = plan::want_active(shape, counts, active.len());
                let surplus = plan::surplus(active.to_vec(), want);
                (surplus, vec![None; want.saturating_sub(active.len())])
            }
        };
        let deleted = self.delete(&surplus).await?;
        if to_start.is_empty() {
            return Ok((0, deleted));
        }
        let (failures, last) = recent_failures(pods);
        if let Some(wait) = plan::backoff_remaining(failures, last, self.now) {
            self.requeue = earliest(self.requeue, wait);
            return Ok((0, deleted));
        }
        let created = self.create(&to_start).await?;
        Ok((created, deleted))
    }

    async fn create(&self, indexes: &[Option<i32>]) -> Result<usize, JobError> {
        let mut count = 0;
        for chunk in indexes.chunks(BURST) {
            let pods: Vec<Pod> = chunk
                .iter()
                .filter_map(|i| template::pod_for(self.job, *i))
                .collect();
            let results =
                futures::future::join_all(pods.iter().map(|p| create_pod(self.pod_api, p))).await;
            for result in results {
                let name = result.map_err(|source| JobError::CreatePod {
                    job: self.job.name_any(),
                    source,
                })?;
                count += 1;
                self.event(
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                )
                .await;
            }
        }
        Ok(count)
    }

    async fn delete(&self, pods: &[&Pod]) -> Result<usize, JobError> {
        let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
        let mut count = 0;
        for chunk in names.chunks(BURST) {
            let results =
                futures::future::join_all(chunk.iter().map(|n| delete_pod(self.pod_api, n))).await;
            for (name, result) in chunk.iter().zip(results) {
                result.map_err(|source| JobError::DeletePod {
                    pod: name.clone(),
                    source,
                })?;
                count += 1;
                self.event(
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {name}"),
                )
                .await;
            }
        }
        Ok(count)
    }

    /// status.active/ready/terminating after this pass's creations and deletions.
    fn count_pods(&self, pods: &[Pod], status: &mut JobStatus, created: usize, deleted: usize) {
        let active = pods.iter().filter(|p| is_active(p)).count();
        let ready = pods.iter().filter(|p| is_active(p) && is_ready(p)).count();
        let terminating = pods.iter().filter(|p| terminating(p)).count();
        let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        status.active = Some(n((active + created).saturating_sub(deleted)));
        status.ready = Some(n(ready));
        status.terminating = Some(n(terminating + deleted));
    }

    async fn event(&self, kind: EventType, reason: &str, message: &str) {
        let reference = self.job.object_ref(&());
        self.sh
            .events
            .record(&reference, kind, reason, message)
            .await;
    }
}

async fn create_pod(api: &Api<Pod>, pod: &Pod) -> Result<String, kube::Error> {
    Ok(api.create(&PostParams::default(), pod).await?.name_any())
}

/// Deletes a Pod; one already gone is as good.
async fn delete_pod(api: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The interim condition a Job already carries: success, or failure with its reason.
fn finishing(job: &Job) -> Option<Result<(), Failure>> {
    if plan::is_true(job, "SuccessCriteriaMet") {
        return Some(Ok(()));
    }
    let c = plan::condition(job, "FailureTarget").filter(|c| c.status == "True")?;
    let failure = match c.reason.as_deref() {
        Some("DeadlineExceeded") => plan::DEADLINE_EXCEEDED,
        _ => plan::BACKOFF_LIMIT_EXCEEDED,
    };
    Some(Err(failure))
}

fn is_cond(
    conditions: &[k8s_openapi::api::batch::v1::JobCondition],
    type_: &str,
    status: &str,
) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == status)
}

fn terminating(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_some() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Failed Pods since the last success and when the latest of them ended: what the back-off
/// before new Pods counts from.
fn recent_failures(pods: &[Pod]) -> (i32, Option<DateTime<Utc>>) {
    let ended = |p: &Pod| finish_time(p);
    let last_success = pods
        .iter()
        .filter(|p| tracking::outcome(p, false) == Some(Outcome::Succeeded))
        .filter_map(ended)
        .max();
    let failures: Vec<DateTime<Utc>> = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
        .filter_map(ended)
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    (
        i32::try_from(failures.len()).unwrap_or(i32::MAX),
        failures.into_iter().max(),
    )
}

/// When a finished Pod ended: its containers' latest finish, else its latest condition change.
fn finish_time(pod: &Pod) -> Option<DateTime<Utc>> {
    let status = pod.status.as_ref()?;
    let finished = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    finished.or_else(|| {
        status
            .conditions
            .iter()
            .flatten()
            .filter_map(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
            .max()
    })
}

/// The Pods the Job controls, listed by its selector. None if the selector is malformed
/// (validation should prevent it): the Job then owns nothing.
async fn owned_pods(
    api: &Api<Pod>,
    job: &Job,
    uid: &str,
    sh: &Shared,
) -> Result<Option<Vec<Pod>>, JobError> {
    let selector = job
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let selector = match Selector::try_from(selector) {
        Ok(s) => s,
        Err(e) => {
            let message = format!("invalid selector: {e}");
            sh.events
                .record(
                    &job.object_ref(&()),
                    EventType::Warning,
                    "InvalidSelector",
                    &message,
                )
                .await;
            return Ok(None);
        }
    };
    let list = api
        .list(&ListParams::default().labels_from(&selector))
        .await
        .map_err(|source| JobError::ListPods {
            job: job.name_any(),
            source,
        })?;
    Ok(Some(
        list.items
            .into_iter()
            .filter(|p| is_controlled_by(p, uid))
            .collect(),
    ))
}

async fn write_status(api: &Api<Job>, job: &Job, status: JobStatus) -> Result<Job, JobError> {
    let name = job.name_any();
    let mut updated = job.clone();
    updated.status = Some(status);
    // A PUT carrying the Job's resourceVersion: a pass that started from a stale Job fails
    // with a conflict and is retried, instead of overwriting newer counts.
    let body = serde_json::to_vec(&updated).map_err(|source| JobError::Encode {
        job: name.clone(),
        source,
    })?;
    api.replace_status(&name, &PostParams::default(), body)
        .await
        .map_err(|source| JobError::UpdateStatus { job: name, source })
}

async fn delete_expired(api: &Api<Job>, name: &str) -> Result<Action, JobError> {
    // As upstream's TTL-after-finished controller: foreground, so the Pods go first.
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Action::await_change()),
        Err(source) => Err(JobError::DeleteJob {
            job: name.to_string(),
            source,
        }),
    }
}
