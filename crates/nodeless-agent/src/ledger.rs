//! The host's side of the billing ledger: one `UsageRecord` per instance this host ran,
//! opened with the engine's creation time and closed with the time the instance stopped.
//!
//! Exactness comes from writing facts, not running totals: the start is the engine's own
//! record of when it created the instance (so a record written late — after an agent crash
//! between creating the instance and recording it — still starts at the right millisecond),
//! the end is when the instance's containers stopped, and a record is named by the Pod's uid,
//! so it can exist only once. Writes happen off the Pod's start path (billing adds nothing to
//! startup) and are retried until they land.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use nodeless_engine::instance::{ContainerState, InstanceStatus};
use nodeless_kube::billing::{
    format_time, parse_time, UsageRecord, UsageRecordSpec, RECORD_HOST_LABEL,
};
use nodeless_kube::names::{
    CAPACITY_SPOT, CAPACITY_TYPE_ANNOTATION, HOURLY_PRICE_ANNOTATION, INSTANCE_SPEC_ANNOTATION,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Between attempts of a write that failed (the API server is down or busy).
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Opening,
    Open,
    /// The end is being written (only one writer per record).
    Closing,
    Closed,
}

struct Entry {
    state: State,
    namespace: String,
}

pub(crate) struct Ledger {
    client: kube::Client,
    host: String,
    records: Mutex<HashMap<String, Entry>>,
    shutdown: CancellationToken,
}

/// Why an instance's billing ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EndReason {
    Succeeded,
    Failed,
    Deleted,
    BidFailed,
    /// The instance was gone when the agent came back, and its end was never written.
    Lost,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::Succeeded => "Succeeded",
            EndReason::Failed => "Failed",
            EndReason::Deleted => "Deleted",
            EndReason::BidFailed => "BidFailed",
            EndReason::Lost => "Lost",
        }
    }
}

impl Ledger {
    /// Loads this host's records. Open ones whose instance is not in `instances` are closed
    /// at `last_heartbeat`, the last moment this host confirmed it was running them.
    pub(crate) async fn load(
        client: kube::Client,
        host: String,
        instances: &[String],
        last_heartbeat: Option<DateTime<Utc>>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Ledger>, kube::Error> {
        let api: Api<UsageRecord> = Api::all(client.clone());
        let params = ListParams::default().labels(&format!("{RECORD_HOST_LABEL}={host}"));
        let listed = api.list(&params).await?;
        let ledger = Arc::new(Ledger {
            client,
            host,
            records: Mutex::new(HashMap::new()),
            shutdown,
        });
        for record in listed.items {
            let uid = record.name_any();
            let closed = record.status.as_ref().is_some_and(|s| s.end_time.is_some());
            let state = if closed { State::Closed } else { State::Open };
            let namespace = record.namespace().unwrap_or_default();
            ledger
                .lock()
                .insert(uid.clone(), Entry { state, namespace });
            if !closed && !instances.contains(&uid) {
                let start = parse_time(&record.spec.start_time).unwrap_or_else(Utc::now);
                let end = last_heartbeat.map_or(start, |beat| beat.max(start));
                tracing::info!(pod = %record.spec.pod, %uid, end = %format_time(end), "closing the record of an instance gone while the agent was down");
                ledger.clone().spawn_close(uid, end, EndReason::Lost);
            }
        }
        Ok(ledger)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the instance's start, once, in the background.
    pub(crate) fn open(self: &Arc<Self>, pod: &Pod, instance: &InstanceStatus) {
        let uid = instance.id.clone();
        {
            let mut records = self.lock();
            if records.contains_key(&uid) {
                return;
            }
            let namespace = pod.namespace().unwrap_or_default();
            let state = State::Opening;
            records.insert(uid.clone(), Entry { state, namespace });
        }
        let this = self.clone();
        let pod = pod.clone();
        let start = instance.created_at;
        tokio::spawn(async move {
            let spec = this.spec_for(&pod, &uid, start).await;
            let mut record = UsageRecord::new(&uid, spec);
            record.metadata.namespace = pod.namespace();
            record.metadata.labels =
                Some([(RECORD_HOST_LABEL.to_string(), this.host.clone())].into());
            let api: Api<UsageRecord> =
                Api::namespaced(this.client.clone(), &pod.namespace().unwrap_or_default());
            loop {
                match api.create(&PostParams::default(), &record).await {
                    Ok(_) => break,
                    Err(kube::Error::Api(e)) if e.code == 409 => break,
                    Err(e) => {
                        tracing::warn!(%uid, error = %e, "cannot record the instance's start; retrying");
                        if !this.pause().await {
                            return;
                        }
                    }
                }
            }
            if let Some(e) = this.lock().get_mut(&uid) {
                if e.state == State::Opening {
                    e.state = State::Open;
                }
            }
        });
    }

    /// Records the end of the Pod's instance (once): when its containers stopped if they
    /// did, else now. Waits up to 10 s for the write, so a removal that follows does not
    /// race it; a write still failing then goes on in the background.
    pub(crate) async fn close(
        self: &Arc<Self>,
        pod: &Pod,
        instance: Option<&InstanceStatus>,
        reason: EndReason,
    ) {
        if let Some(inst) = instance {
            // An instance that never got its record (the agent just adopted it) gets one now.
            self.open(pod, inst);
        }
        let end = instance
            .filter(|i| i.phase.is_finished())
            .and_then(stopped_at)
            .unwrap_or_else(Utc::now);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.close_uid(&uid, end, reason).await;
    }

    /// Records the end of instance `uid` at `end`, if it has a record.
    pub(crate) async fn close_uid(
        self: &Arc<Self>,
        uid: &str,
        end: DateTime<Utc>,
        reason: EndReason,
    ) {
        if let Some(task) = self.clone().spawn_close(uid.to_string(), end, reason) {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Whether the record of `uid` was closed (by this agent run or an earlier one).
    pub(crate) fn is_closed(&self, uid: &str) -> bool {
        self.lock()
            .get(uid)
            .is_some_and(|e| e.state == State::Closed)
    }

    fn spawn_close(
        self: Arc<Self>,
        uid: String,
        end: DateTime<Utc>,
        reason: EndReason,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let namespace = {
            let mut records = self.lock();
            let entry = records.get_mut(&uid)?;
            if matches!(entry.state, State::Closing | State::Closed) {
                return None;
            }
            entry.state = State::Closing;
            entry.namespace.clone()
        };
        Some(tokio::spawn(async move {
            let api: Api<UsageRecord> = Api::namespaced(self.client.clone(), &namespace);
            let body = json!({
                "status": { "endTime": format_time(end), "endReason": reason.as_str() }
            });
            loop {
                // The record may still be being opened: wait for it rather than lose the end.
                match api
                    .patch_status(&uid, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                {
                    Ok(_) => {
                        if let Some(e) = self.lock().get_mut(&uid) {
                            e.state = State::Closed;
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(%uid, error = %e, "cannot record the instance's end yet; retrying");
                        if !self.pause().await {
                            return;
                        }
                    }
                }
            }
        }))
    }

    /// The record's spec from the Pod (its bind-time annotations) and its owner.
    async fn spec_for(&self, pod: &Pod, uid: &str, start: DateTime<Utc>) -> UsageRecordSpec {
        let annotation = |key: &str| pod.annotations().get(key).cloned().unwrap_or_default();
        let capacity = if annotation(CAPACITY_TYPE_ANNOTATION) == CAPACITY_SPOT {
            "Spot"
        } else {
            "OnDemand"
        };
        UsageRecordSpec {
            pod: pod.name_any(),
            pod_uid: uid.to_string(),
            workload: self.workload_of(pod).await,
            host: self.host.clone(),
            instance_spec: annotation(INSTANCE_SPEC_ANNOTATION),
            capacity_type: capacity.to_string(),
            hourly_on_demand: annotation(HOURLY_PRICE_ANNOTATION),
            start_time: format_time(start),
        }
    }

    /// `Kind/name` of the Pod's workload: a ReplicaSet's Deployment, else the controller.
    async fn workload_of(&self, pod: &Pod) -> String {
        let Some(owner) = pod
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
        else {
            return format!("Pod/{}", pod.name_any());
        };
        if owner.kind == "ReplicaSet" {
            let api: Api<ReplicaSet> =
                Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
            if let Ok(rs) = api.get(&owner.name).await {
                if let Some(d) = rs
                    .owner_references()
                    .iter()
                    .find(|o| o.controller == Some(true) && o.kind == "Deployment")
                {
                    return format!("Deployment/{}", d.name);
                }
            }
        }
        format!("{}/{}", owner.kind, owner.name)
    }

    /// Sleeps before a retry; false when the agent is stopping.
    async fn pause(&self) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(RETRY) => true,
        }
    }
}

/// When the instance stopped running: the last container's finish, once none runs.
pub(crate) fn stopped_at(instance: &InstanceStatus) -> Option<DateTime<Utc>> {
    let views = instance.init_containers.iter().chain(&instance.containers);
    let mut last = None;
    for v in views {
        match &v.status.state {
            ContainerState::Running { .. } => return None,
            ContainerState::Terminated(t) => last = last.max(Some(t.finished_at)),
            ContainerState::Waiting { .. } => {}
        }
    }
    last
}
