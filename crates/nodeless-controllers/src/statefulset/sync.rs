//! One level-triggered pass over a StatefulSet: settle its revisions, take the steps the plan
//! allows, write its status if it changed, and prune its history.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{
    ControllerRevision, StatefulSet, StatefulSetCondition, StatefulSetStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::Selector;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use nodeless_kube::EventType;
use serde_json::json;

use super::identity::{self, revision_of};
use super::plan::{self, Member, Shape, Step};
use super::revision;
use super::{Shared, StatefulSetError};
use crate::pods::{is_controlled_by, is_ready, is_terminating};

const UNSUPPORTED_CLAIMS: &str = "volumeClaimTemplates are not supported yet";
/// Tries at creating a revision whose name is taken by a different template.
const MAX_COLLISIONS: i32 = 8;

type Result<T> = std::result::Result<T, StatefulSetError>;

pub(super) async fn sync(set: &StatefulSet, sh: &Shared, now: DateTime<Utc>) -> Result<Action> {
    let (Some(ns), Some(uid)) = (set.namespace(), set.uid()) else {
        return Ok(Action::await_change());
    };
    if set.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = set.name_any();
    let spec = set.spec.clone().unwrap_or_default();
    let sets: Api<StatefulSet> = Api::namespaced(sh.client.clone(), &ns);
    let mut status = set.status.clone().unwrap_or_default();
    status.observed_generation = set.metadata.generation;
    if spec
        .volume_claim_templates
        .as_ref()
        .is_some_and(|v| !v.is_empty())
    {
        return refuse_claims(set, sh, &sets, status, now).await;
    }
    let Ok(selector) = Selector::try_from(spec.selector.clone()) else {
        event(
            sh,
            set,
            EventType::Warning,
            "InvalidSelector",
            "invalid selector",
        )
        .await;
        return Ok(Action::await_change());
    };
    let list = ListParams::default().labels_from(&selector);
    let pod_api: Api<Pod> = Api::namespaced(sh.client.clone(), &ns);
    let pods: Vec<Pod> = pod_api
        .list(&list)
        .await
        .map_err(|source| StatefulSetError::ListPods {
            set: name.clone(),
            source,
        })?
        .items
        .into_iter()
        .filter(|p| is_controlled_by(p, &uid))
        .collect();

    let rev_api: Api<ControllerRevision> = Api::namespaced(sh.client.clone(), &ns);
    let revisions_err = |source| StatefulSetError::Revisions {
        set: name.clone(),
        source,
    };
    let mut revisions: Vec<ControllerRevision> = rev_api
        .list(&list)
        .await
        .map_err(revisions_err)?
        .items
        .into_iter()
        .filter(|r| crate::pods::controller_of(&r.metadata).is_some_and(|o| o.uid == uid))
        .collect();
    let update = update_revision(set, &rev_api, &mut revisions, &mut status).await?;
    let update_name = update.metadata.name.clone().unwrap_or_default();
    let current = status
        .current_revision
        .as_ref()
        .and_then(|c| {
            revisions
                .iter()
                .find(|r| r.metadata.name.as_ref() == Some(c))
        })
        .cloned()
        .unwrap_or_else(|| update.clone());
    let current_name = current.metadata.name.clone().unwrap_or_default();

    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let members: BTreeMap<i32, Member> = pods
        .iter()
        .filter_map(|p| {
            Some((
                plan::ordinal_of(&name, p.metadata.name.as_deref()?)?,
                member(p, min_ready, now),
            ))
        })
        .collect();
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let partition = match strategy.type_.as_deref() {
        Some("OnDelete") => None,
        _ => Some(
            strategy
                .rolling_update
                .and_then(|r| r.partition)
                .unwrap_or(0),
        ),
    };
    let shape = Shape {
        replicas: spec.replicas.unwrap_or(1),
        start: spec.ordinals.and_then(|o| o.start).unwrap_or(0),
        ordered: spec.pod_management_policy.as_deref() != Some("Parallel"),
        partition,
        current_revision: current_name.clone(),
        update_revision: update_name.clone(),
    };
    for step in plan::plan(&shape, &members) {
        match step {
            Step::Create { ordinal, revision } => {
                let from = if revision == current_name {
                    &current
                } else {
                    &update
                };
                create(set, sh, &pod_api, from, ordinal, &revision).await?;
            }
            Step::Delete { name: pod } => delete(set, sh, &pod_api, &pod).await?,
        }
    }

    let counts = plan::counts(&shape, &members);
    status.replicas = counts.replicas;
    status.ready_replicas = Some(counts.ready);
    status.available_replicas = Some(counts.available);
    status.current_replicas = Some(counts.current);
    status.updated_replicas = Some(counts.updated);
    status.current_revision = Some(counts.current_revision.clone());
    status.update_revision = Some(update_name.clone());
    if let Some(conds) = status.conditions.as_mut() {
        conds.retain(|c| c.reason.as_deref() != Some("VolumeClaimTemplatesNotSupported"));
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    if Some(&status) != set.status.as_ref() {
        write_status(&sets, set, status).await?;
    }

    let worn: Vec<String> = pods.iter().map(revision_of).collect();
    let in_use =
        |r: &str| r == update_name || r == counts.current_revision || worn.iter().any(|w| w == r);
    let limit = spec.revision_history_limit.unwrap_or(10);
    for old in revision::surplus_history(&revisions, limit, in_use) {
        let old = old.name_any();
        match rev_api.delete(&old, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => return Err(StatefulSetError::Revisions { set: name, source }),
        }
    }
    // A Pod ready but not yet available for minReadySeconds is looked at again then.
    let waiting = members.values().any(|m| m.ready && !m.available);
    Ok(if waiting {
        Action::requeue(Duration::from_secs(
            u64::try_from(min_ready).unwrap_or(1).max(1),
        ))
    } else {
        Action::await_change()
    })
}

fn member(pod: &Pod, min_ready: i32, now: DateTime<Utc>) -> Member {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let running = phase == Some("Running");
    Member {
        name: pod.name_any(),
        revision: revision_of(pod),
        finished: matches!(phase, Some("Succeeded" | "Failed")),
        terminating: is_terminating(pod),
        ready: running && is_ready(pod),
        available: running && crate::pods::is_available(pod, min_ready, now),
    }
}

/// The revision of the set's current template: an existing one with the same data (renumbered
/// to be the latest if it is not), else a new one.
async fn update_revision(
    set: &StatefulSet,
    api: &Api<ControllerRevision>,
    revisions: &mut Vec<ControllerRevision>,
    status: &mut StatefulSetStatus,
) -> Result<ControllerRevision> {
    let name = set.name_any();
    let err = |source| StatefulSetError::Revisions {
        set: name.clone(),
        source,
    };
    let data = revision::data_of(set);
    let latest = revisions.iter().map(|r| r.revision).max().unwrap_or(0);
    let equal = revisions
        .iter()
        .filter(|r| revision::same_data(r, &data))
        .max_by_key(|r| r.revision)
        .cloned();
    if let Some(mut equal) = equal {
        if equal.revision < latest {
            let patch = json!({"revision": latest + 1});
            equal = api
                .patch(
                    &equal.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(err)?;
        }
        return Ok(equal);
    }
    for _ in 0..MAX_COLLISIONS {
        let Some(new) = revision::new_revision(set, latest + 1, status.collision_count) else {
            break;
        };
        match api.create(&PostParams::default(), &new).await {
            Ok(created) => {
                revisions.push(created.clone());
                return Ok(created);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let existing = api.get(&new.name_any()).await.map_err(err)?;
                if revision::same_data(&existing, &data) {
                    return Ok(existing);
                }
                status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
            }
            Err(source) => return Err(err(source)),
        }
    }
    Err(StatefulSetError::RevisionCollision {
        set: name.clone(),
        revision: format!("{name}-{}", revision::hash(&data, status.collision_count)),
    })
}

async fn create(
    set: &StatefulSet,
    sh: &Shared,
    api: &Api<Pod>,
    from: &ControllerRevision,
    ordinal: i32,
    revision: &str,
) -> Result<()> {
    let template = revision::template_of(from)
        .or_else(|| set.spec.as_ref().map(|s| s.template.clone()))
        .unwrap_or_default();
    let Some(pod) = identity::pod_for(set, &template, ordinal, revision) else {
        return Ok(());
    };
    let pod_name = pod.name_any();
    match api.create(&PostParams::default(), &pod).await {
        Ok(_) => {
            let message = format!(
                "create Pod {pod_name} in StatefulSet {} successful",
                set.name_any()
            );
            event(sh, set, EventType::Normal, "SuccessfulCreate", &message).await;
            Ok(())
        }
        // Still there, being deleted: the next pass creates it.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(source) => {
            let message = format!(
                "create Pod {pod_name} in StatefulSet {} failed error: {source}",
                set.name_any()
            );
            event(sh, set, EventType::Warning, "FailedCreate", &message).await;
            Err(StatefulSetError::CreatePod {
                pod: pod_name,
                source,
            })
        }
    }
}

async fn delete(set: &StatefulSet, sh: &Shared, api: &Api<Pod>, pod: &str) -> Result<()> {
    match api.delete(pod, &DeleteParams::default()).await {
        Ok(_) => {
            let message = format!(
                "delete Pod {pod} in StatefulSet {} successful",
                set.name_any()
            );
            event(sh, set, EventType::Normal, "SuccessfulDelete", &message).await;
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(StatefulSetError::DeletePod {
            pod: pod.to_string(),
            source,
        }),
    }
}

/// A set with volumeClaimTemplates gets no Pods: a Warning event and a condition say why.
async fn refuse_claims(
    set: &StatefulSet,
    sh: &Shared,
    api: &Api<StatefulSet>,
    mut status: StatefulSetStatus,
    now: DateTime<Utc>,
) -> Result<Action> {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let present = conditions.iter().any(|c| {
        c.type_ == "ReplicaFailure"
            && c.status == "True"
            && c.message.as_deref() == Some(UNSUPPORTED_CLAIMS)
    });
    if !present {
        conditions.retain(|c| c.type_ != "ReplicaFailure");
        conditions.push(StatefulSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("VolumeClaimTemplatesNotSupported".into()),
            message: Some(UNSUPPORTED_CLAIMS.into()),
            last_transition_time: Some(Time(now)),
        });
        event(
            sh,
            set,
            EventType::Warning,
            "VolumeClaimTemplatesNotSupported",
            UNSUPPORTED_CLAIMS,
        )
        .await;
    }
    if Some(&status) != set.status.as_ref() {
        write_status(api, set, status).await?;
    }
    Ok(Action::await_change())
}

async fn write_status(
    api: &Api<StatefulSet>,
    set: &StatefulSet,
    status: StatefulSetStatus,
) -> Result<()> {
    let name = set.name_any();
    let mut updated = set.clone();
    updated.status = Some(status);
    let body = serde_json::to_vec(&updated).map_err(|source| StatefulSetError::Encode {
        set: name.clone(),
        source,
    })?;
    api.replace_status(&name, &PostParams::default(), body)
        .await
        .map_err(|source| StatefulSetError::UpdateStatus { set: name, source })?;
    Ok(())
}

async fn event(sh: &Shared, set: &StatefulSet, kind: EventType, reason: &str, message: &str) {
    sh.events
        .record(&set.object_ref(&()), kind, reason, message)
        .await;
}
