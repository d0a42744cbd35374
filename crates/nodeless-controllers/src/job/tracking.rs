//! Counting finished Pods exactly once, the way upstream's Job controller does with the
//! `batch.kubernetes.io/job-tracking` finalizer: every Pod is created holding it, so it
//! cannot vanish before it is counted. A finished Pod first joins
//! `status.uncountedTerminatedPods` (persisted), then loses its finalizer, and only then moves
//! into `succeeded`/`failed`. A crash between the steps repeats a step, never a count.

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::api::batch::v1::{JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;

use super::indexes;

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// How a Pod ended, if it did. A Pod being deleted counts as failed (upstream's
/// TerminatingOrFailed replacement policy), and so does any unfinished one once the Job is
/// failing: the controller is about to delete it.
pub fn outcome(pod: &Pod, job_failing: bool) -> Option<Outcome> {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => Some(Outcome::Succeeded),
        Some("Failed") => Some(Outcome::Failed),
        _ if pod.metadata.deletion_timestamp.is_some() || job_failing => Some(Outcome::Failed),
        _ => None,
    }
}

pub fn holds_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == TRACKING_FINALIZER))
}

/// The completion index a Pod of an Indexed Job carries, if valid.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let from = |m: &Option<std::collections::BTreeMap<String, String>>| {
        m.as_ref()?.get(INDEX_KEY)?.parse::<i32>().ok()
    };
    from(&pod.metadata.annotations)
        .or_else(|| from(&pod.metadata.labels))
        .filter(|i| *i >= 0)
}

/// The counting part of a Job's status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub succeeded: i32,
    pub failed: i32,
    pub uncounted_succeeded: BTreeSet<String>,
    pub uncounted_failed: BTreeSet<String>,
    /// Indexed Jobs only.
    pub completed: BTreeSet<i32>,
}

impl Counts {
    pub fn from_status(status: &JobStatus, completions: i32) -> Counts {
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        Counts {
            succeeded: status.succeeded.unwrap_or(0),
            failed: status.failed.unwrap_or(0),
            uncounted_succeeded: uncounted
                .succeeded
                .unwrap_or_default()
                .into_iter()
                .collect(),
            uncounted_failed: uncounted.failed.unwrap_or_default().into_iter().collect(),
            completed: status
                .completed_indexes
                .as_deref()
                .map(|s| indexes::parse(s, completions))
                .unwrap_or_default(),
        }
    }

    /// Writes these counts into `status`; `indexed` decides whether completedIndexes is kept.
    pub fn apply(&self, status: &mut JobStatus, indexed: bool) {
        status.succeeded = Some(self.succeeded);
        status.failed = Some(self.failed);
        status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
            succeeded: Some(self.uncounted_succeeded.iter().cloned().collect()),
            failed: Some(self.uncounted_failed.iter().cloned().collect()),
        });
        status.completed_indexes = indexed.then(|| indexes::format(&self.completed));
    }

    pub fn has_uncounted(&self) -> bool {
        !self.uncounted_succeeded.is_empty() || !self.uncounted_failed.is_empty()
    }

    /// Step one: finished Pods still holding the finalizer join the uncounted sets. For an
    /// Indexed Job (`completions` given) a success counts only for a valid index not yet
    /// completed. Returns the Pods whose finalizer may now go.
    pub fn record_finished<'p>(
        &mut self,
        pods: &'p [Pod],
        indexed_completions: Option<i32>,
        job_failing: bool,
    ) -> Vec<&'p Pod> {
        let mut release = Vec::new();
        for pod in pods.iter().filter(|p| holds_finalizer(p)) {
            let (Some(outcome), Some(uid)) = (outcome(pod, job_failing), pod.metadata.uid.clone())
            else {
                continue;
            };
            release.push(pod);
            if self.uncounted_succeeded.contains(&uid) || self.uncounted_failed.contains(&uid) {
                continue;
            }
            match (outcome, indexed_completions) {
                (Outcome::Failed, _) => {
                    self.uncounted_failed.insert(uid);
                }
                (Outcome::Succeeded, None) => {
                    self.uncounted_succeeded.insert(uid);
                }
                (Outcome::Succeeded, Some(completions)) => {
                    let fresh = completion_index(pod)
                        .filter(|i| *i < completions && !self.completed.contains(i));
                    if let Some(i) = fresh {
                        self.completed.insert(i);
                        self.uncounted_succeeded.insert(uid);
                    }
                }
            }
        }
        release
    }

    /// Step three: uncounted Pods that no longer hold the finalizer (`held` lists the uids
    /// that still do) move into the counts.
    pub fn fold(&mut self, held: &HashSet<String>) {
        let before = self.uncounted_succeeded.len();
        self.uncounted_succeeded.retain(|u| held.contains(u));
        self.succeeded += count(before - self.uncounted_succeeded.len());
        let before = self.uncounted_failed.len();
        self.uncounted_failed.retain(|u| held.contains(u));
        self.failed += count(before - self.uncounted_failed.len());
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, phase: &str, index: Option<i32>) -> Pod {
        let mut annotations = serde_json::Map::new();
        if let Some(i) = index {
            annotations.insert(INDEX_KEY.into(), json!(i.to_string()));
        }
        serde_json::from_value(json!({
            "metadata": {"name": uid, "uid": uid, "finalizers": [TRACKING_FINALIZER],
                         "annotations": annotations},
            "status": {"phase": phase}
        }))
        .expect("pod")
    }

    #[test]
    fn a_finished_pod_is_counted_once_after_its_finalizer_goes() {
        let pods = vec![pod("a", "Succeeded", None), pod("b", "Running", None)];
        let mut counts = Counts::default();
        let release = counts.record_finished(&pods, None, false);
        assert_eq!(release.len(), 1);
        assert_eq!(
            counts.succeeded, 0,
            "not counted before the finalizer is removed"
        );
        // The finalizer removal failed: still held, still uncounted.
        counts.fold(&["a".to_string()].into());
        assert_eq!(counts.succeeded, 0);
        // A second pass over the same Pods adds nothing twice.
        counts.record_finished(&pods, None, false);
        counts.fold(&HashSet::new());
        assert_eq!((counts.succeeded, counts.failed), (1, 0));
        assert!(!counts.has_uncounted());
        // The released Pod, seen again without its finalizer, is not counted again.
        let mut released = pods[0].clone();
        released.metadata.finalizers = None;
        assert!(counts.record_finished(&[released], None, false).is_empty());
        counts.fold(&HashSet::new());
        assert_eq!(counts.succeeded, 1);
    }

    #[test]
    fn deleted_pods_count_as_failed_and_so_do_running_ones_of_a_failing_job() {
        let mut deleted = pod("d", "Running", None);
        deleted.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(chrono::Utc::now()),
        );
        assert_eq!(outcome(&deleted, false), Some(Outcome::Failed));
        let running = pod("r", "Running", None);
        assert_eq!(outcome(&running, false), None);
        assert_eq!(outcome(&running, true), Some(Outcome::Failed));
        assert_eq!(
            outcome(&pod("s", "Succeeded", None), true),
            Some(Outcome::Succeeded)
        );
    }

    #[test]
    fn an_index_completes_once_however_many_pods_succeed_for_it() {
        let pods = vec![
            pod("a", "Succeeded", Some(1)),
            pod("b", "Succeeded", Some(1)),
            pod("c", "Succeeded", Some(7)),
        ];
        let mut counts = Counts::default();
        let release = counts.record_finished(&pods, Some(3), false);
        assert_eq!(release.len(), 3, "every finished Pod is released");
        counts.fold(&HashSet::new());
        assert_eq!(counts.succeeded, 1);
        assert_eq!(counts.completed, [1].into());
    }
}
