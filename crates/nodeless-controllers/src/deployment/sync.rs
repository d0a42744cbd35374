//! One sync of one Deployment: finding or creating its new ReplicaSet (with the revision
//! bookkeeping), scaling ReplicaSets with events, proportional scaling, old-revision cleanup
//! and status writes. Holds the Deployment as this sync has last written it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt};
use nodeless_kube::EventType;
use serde_json::{json, Value};

use super::util::{self, desired_replicas, max_surge, rs_replicas};
use super::{proportional, status, DeploymentError, State};
use crate::pods;

pub(super) struct Sync<'a> {
    pub st: &'a State,
    pub d: Deployment,
    /// When to look again without a watch event (the progress deadline).
    pub requeue: Option<Duration>,
}

fn api_error(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(e) => e.message.clone(),
        other => other.to_string(),
    }
}

fn code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(e) => Some(e.code),
        _ => None,
    }
}

/// Status as compared: an unset count is a zero count.
fn normalized(s: Option<&DeploymentStatus>) -> DeploymentStatus {
    let mut s = s.cloned().unwrap_or_default();
    for v in [
        &mut s.replicas,
        &mut s.updated_replicas,
        &mut s.ready_replicas,
        &mut s.available_replicas,
        &mut s.unavailable_replicas,
    ] {
        v.get_or_insert(0);
    }
    if s.conditions.as_ref().is_some_and(Vec::is_empty) {
        s.conditions = None;
    }
    s
}

impl<'a> Sync<'a> {
    pub fn new(st: &'a State, d: Deployment) -> Self {
        Sync {
            st,
            d,
            requeue: None,
        }
    }

    fn ns(&self) -> String {
        self.d.namespace().unwrap_or_default()
    }

    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.st.ctx.client.clone(), &self.ns())
    }

    fn reference(&self) -> ObjectReference {
        self.d.object_ref(&())
    }

    pub async fn event(&self, kind: EventType, reason: &str, message: &str) {
        self.st
            .ctx
            .events
            .record(&self.reference(), kind, reason, message)
            .await;
    }

    fn name(&self) -> String {
        self.d.name_any()
    }

    /// Writes `new` through the status subresource if it differs from what is recorded.
    pub async fn write_status(&mut self, new: DeploymentStatus) -> Result<(), DeploymentError> {
        if normalized(self.d.status.as_ref()) == normalized(Some(&new)) {
            return Ok(());
        }
        let mut body = serde_json::to_value(&new).unwrap_or(Value::Null);
        if new.conditions.is_none() {
            body["conditions"] = Value::Null;
        }
        let api: Api<Deployment> = Api::namespaced(self.st.ctx.client.clone(), &self.ns());
        match api
            .patch_status(
                &self.name(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": body})),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if code(&e) == Some(404) => {}
            Err(source) => {
                return Err(DeploymentError::UpdateStatus {
                    deployment: self.name(),
                    source,
                })
            }
        }
        self.d.status = Some(new);
        Ok(())
    }

    /// Records the revision of the new ReplicaSet on the Deployment (a metadata write: the
    /// status subresource does not take annotations).
    async fn set_revision(&mut self, revision: &str) -> Result<(), DeploymentError> {
        let current = self.d.annotations().get(util::REVISION).map(String::as_str);
        if current == Some(revision) || revision.is_empty() {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.st.ctx.client.clone(), &self.ns());
        let patch = json!({"metadata": {"annotations": {util::REVISION: revision}}});
        match api
            .patch(&self.name(), &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {}
            Err(e) if code(&e) == Some(404) => {}
            Err(source) => {
                return Err(DeploymentError::UpdateDeployment {
                    deployment: self.name(),
                    source,
                })
            }
        }
        self.d
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(util::REVISION.into(), revision.into());
        Ok(())
    }

    fn set_condition(&mut self, cond: DeploymentCondition) -> DeploymentStatus {
        let mut s = self.d.status.clone().unwrap_or_default();
        status::set(&mut s, cond);
        s
    }

    async fn replace(&self, rs: &ReplicaSet) -> Result<ReplicaSet, DeploymentError> {
        self.rs_api()
            .replace(&rs.name_any(), &PostParams::default(), rs)
            .await
            .map_err(|source| DeploymentError::UpdateReplicaSet {
                rs: rs.name_any(),
                source,
            })
    }

    /// Splits the Deployment's ReplicaSets into the one running its template (brought to the
    /// next revision) and the old ones, as upstream's getAllReplicaSetsAndSyncRevision without
    /// creating: the new one is created by the strategies when they need it.
    pub async fn new_and_old(
        &mut self,
        list: &[ReplicaSet],
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), DeploymentError> {
        let new_name = util::find_new(&self.d, list).and_then(|rs| rs.metadata.name.clone());
        let old: Vec<ReplicaSet> = list
            .iter()
            .filter(|rs| rs.metadata.name != new_name)
            .cloned()
            .collect();
        let Some(existing) = list
            .iter()
            .find(|rs| new_name.is_some() && rs.metadata.name == new_name)
        else {
            return Ok((None, old));
        };
        let new_revision = util::max_revision(&old) + 1;
        let mut copy = existing.clone();
        let annotations_changed =
            util::set_new_rs_annotations(&self.d, &mut copy, new_revision, true);
        let min_ready = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let spec = copy.spec.get_or_insert_with(ReplicaSetSpec::default);
        let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != min_ready;
        let rs = if annotations_changed || min_ready_changed {
            spec.min_ready_seconds = Some(min_ready);
            self.replace(&copy).await?
        } else {
            copy
        };
        let revision = util::annotation(&rs, util::REVISION)
            .unwrap_or_default()
            .to_string();
        self.set_revision(&revision).await?;
        let has_progressing = self
            .d
            .status
            .as_ref()
            .and_then(|s| status::get(s, status::PROGRESSING))
            .is_some();
        if status::has_progress_deadline(&self.d) && !has_progressing {
            let msg = format!("Found new replica set \"{}\"", rs.name_any());
            let s = self.set_condition(status::condition(
                status::PROGRESSING,
                "True",
                status::FOUND_NEW_RS,
                msg,
                Utc::now(),
            ));
            self.write_status(s).await?;
        }
        Ok((Some(rs), old))
    }

    /// Creates the ReplicaSet for the current template, `<deployment>-<hash>`, as upstream's
    /// getNewReplicaSet; a name taken by a ReplicaSet of another template bumps
    /// collisionCount so the next try hashes differently.
    pub async fn create_new_rs(
        &mut self,
        old: &[ReplicaSet],
    ) -> Result<ReplicaSet, DeploymentError> {
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = util::template_hash(&spec.template, collision);
        let mut template = spec.template.clone();
        let tm = template.metadata.get_or_insert_with(Default::default);
        tm.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(util::HASH_LABEL.into(), hash.clone());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(util::HASH_LABEL.into(), hash.clone());
        let name = format!("{}-{hash}", self.name());
        let mut rs = ReplicaSet {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.ns()),
                labels: tm.labels.clone(),
                owner_references: pods::controller_ref(&self.d).map(|r| vec![r]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&rs)).collect();
        let replicas = util::new_rs_new_replicas(&self.d, &all, &rs);
        if let Some(s) = rs.spec.as_mut() {
            s.replicas = Some(replicas);
        }
        util::set_new_rs_annotations(&self.d, &mut rs, util::max_revision(old) + 1, false);
        let (created, already_existed) =
            match self.rs_api().create(&PostParams::default(), &rs).await {
                Ok(created) => (created, false),
                Err(e) if code(&e) == Some(409) => (self.existing_or_collision(&name).await?, true),
                Err(e) => {
                    let msg = format!(
                        "Failed to create new replica set \"{name}\": {}",
                        api_error(&e)
                    );
                    if status::has_progress_deadline(&self.d) {
                        let s = self.set_condition(status::condition(
                            status::PROGRESSING,
                            "False",
                            status::FAILED_RS_CREATE,
                            msg.clone(),
                            Utc::now(),
                        ));
                        self.write_status(s).await?;
                    }
                    self.event(EventType::Warning, status::FAILED_RS_CREATE, &msg)
                        .await;
                    return Err(DeploymentError::CreateReplicaSet {
                        rs: name,
                        source: e,
                    });
                }
            };
        if !already_existed && replicas > 0 {
            let msg = format!("Scaled up replica set {name} from 0 to {replicas}");
            self.event(EventType::Normal, "ScalingReplicaSet", &msg)
                .await;
        }
        let revision = util::annotation(&created, util::REVISION)
            .unwrap_or_default()
            .to_string();
        self.set_revision(&revision).await?;
        if !already_existed && status::has_progress_deadline(&self.d) {
            let msg = format!("Created new replica set \"{name}\"");
            let s = self.set_condition(status::condition(
                status::PROGRESSING,
                "True",
                status::NEW_RS_CREATED,
                msg,
                Utc::now(),
            ));
            self.write_status(s).await?;
        }
        Ok(created)
    }

    /// The ReplicaSet already named `name`: ours with our template (the cache was behind), or
    /// a hash collision.
    async fn existing_or_collision(&mut self, name: &str) -> Result<ReplicaSet, DeploymentError> {
        let existing =
            self.rs_api()
                .get(name)
                .await
                .map_err(|source| DeploymentError::CreateReplicaSet {
                    rs: name.into(),
                    source,
                })?;
        let ours = pods::controller_of(&existing.metadata)
            .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
        let same = util::equal_ignore_hash(
            existing.spec.as_ref().and_then(|s| s.template.as_ref()),
            self.d.spec.as_ref().map(|s| &s.template),
        );
        if ours && same {
            return Ok(existing);
        }
        let mut s = self.d.status.clone().unwrap_or_default();
        s.collision_count = Some(s.collision_count.unwrap_or(0).saturating_add(1));
        self.write_status(s).await?;
        Err(DeploymentError::HashCollision { rs: name.into() })
    }

    /// Sets `rs` to `size` replicas (and the replicas annotations), with a ScalingReplicaSet
    /// event; true when the size changed.
    pub async fn scale_rs(
        &mut self,
        rs: &mut ReplicaSet,
        size: i32,
    ) -> Result<bool, DeploymentError> {
        let from = rs_replicas(rs);
        if from == size {
            return Ok(false);
        }
        let desired = desired_replicas(&self.d);
        let mut copy = rs.clone();
        util::set_replicas_annotations(&mut copy, desired, desired + max_surge(&self.d));
        copy.spec
            .get_or_insert_with(ReplicaSetSpec::default)
            .replicas = Some(size);
        *rs = self.replace(&copy).await?;
        let direction = if from < size { "up" } else { "down" };
        let msg = format!(
            "Scaled {direction} replica set {} from {from} to {size}",
            rs.name_any()
        );
        self.event(EventType::Normal, "ScalingReplicaSet", &msg)
            .await;
        Ok(true)
    }

    /// Scaling while no rollout runs (or while paused), as upstream's scale().
    pub async fn scale(
        &mut self,
        new: Option<&mut ReplicaSet>,
        old: &mut [ReplicaSet],
    ) -> Result<(), DeploymentError> {
        let desired = desired_replicas(&self.d);
        let mut all: Vec<&mut ReplicaSet> = old.iter_mut().chain(new).collect();
        let active: Vec<usize> = (0..all.len())
            .filter(|i| rs_replicas(all[*i]) > 0)
            .collect();
        // One active ReplicaSet (or none: then the newest) takes the whole size.
        let single = match active.len() {
            0 => (0..all.len()).max_by(|a, b| util::by_creation(all[*a], all[*b])),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = single {
            self.scale_rs(all[i], desired).await?;
            return Ok(());
        }
        let sizes = proportional::sizes(
            &self.d,
            &active.iter().map(|i| all[*i].clone()).collect::<Vec<_>>(),
        );
        for rs in all.iter_mut() {
            if let Some((_, size)) = sizes
                .iter()
                .find(|(n, _)| Some(n) == rs.metadata.name.as_ref())
            {
                self.scale_rs(rs, *size).await?;
            }
        }
        Ok(())
    }

    /// Deletes the oldest old ReplicaSets beyond revisionHistoryLimit (only scaled-down ones
    /// the ReplicaSet controller has caught up with).
    pub async fn cleanup(&self, old: &[ReplicaSet]) -> Result<(), DeploymentError> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut alive: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = alive
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        alive.sort_by(|a, b| {
            util::revision(a)
                .cmp(&util::revision(b))
                .then_with(|| util::by_creation(a, b))
        });
        for rs in alive.into_iter().take(excess) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if util::rs_status_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: rs.uid(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match self.rs_api().delete(&rs.name_any(), &params).await {
                Ok(_) => {}
                Err(e) if code(&e) == Some(404) => {}
                Err(source) => {
                    return Err(DeploymentError::DeleteReplicaSet {
                        rs: rs.name_any(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// The Deployment's ReplicaFailure: its new ReplicaSet's, else an old one's.
    fn replica_failure(
        old: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Option<DeploymentCondition> {
        new.into_iter().chain(old).find_map(|rs| {
            let c = rs
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == status::REPLICA_FAILURE)?;
            Some(DeploymentCondition {
                type_: status::REPLICA_FAILURE.into(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
        })
    }

    /// Status with the Progressing condition moved along (rollouts).
    pub async fn sync_rollout_status(
        &mut self,
        old: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Result<(), DeploymentError> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new).collect();
        let now = Utc::now();
        let s = status::rollout(&self.d, &all, new, Self::replica_failure(old, new), now);
        self.requeue = status::recheck_stuck_in(&self.d, &s, now);
        self.write_status(s).await
    }

    /// Status counts only (scaling, paused, deleted Deployments).
    pub async fn sync_status(
        &mut self,
        old: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Result<(), DeploymentError> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new).collect();
        let s = status::calculate(&self.d, &all, new, Utc::now());
        self.write_status(s).await
    }

    /// Progressing shows Unknown/DeploymentPaused while paused and DeploymentResumed after.
    pub async fn check_paused_conditions(&mut self) -> Result<(), DeploymentError> {
        if !status::has_progress_deadline(&self.d) {
            return Ok(());
        }
        let current = self.d.status.clone().unwrap_or_default();
        let cond = status::get(&current, status::PROGRESSING);
        let reason = cond.and_then(|c| c.reason.as_deref());
        if reason == Some(status::TIMED_OUT) {
            return Ok(());
        }
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let paused_shown = reason == Some(status::PAUSED);
        let now = Utc::now();
        let cond = if paused && !paused_shown {
            status::condition(
                status::PROGRESSING,
                "Unknown",
                status::PAUSED,
                "Deployment is paused".into(),
                now,
            )
        } else if !paused && paused_shown {
            status::condition(
                status::PROGRESSING,
                "Unknown",
                status::RESUMED,
                "Deployment is resumed".into(),
                now,
            )
        } else {
            return Ok(());
        };
        let s = self.set_condition(cond);
        self.write_status(s).await
    }
}
