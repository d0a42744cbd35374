//! The garbage collector: objects whose owners are gone are deleted; foreground and orphan
//! deletion are carried out through the `foregroundDeletion` and `orphan` finalizers.
//!
//! Each pass looks at every live object (the cache makes that cheap) and computes what to
//! do from the owner graph as it is now, so a missed event or a restart changes nothing.

use crate::rest::{Api, Change, DeleteOptions, Propagation, FOREGROUND, ORPHAN};
use nodeless_core::resource::ResourceType;
use nodeless_core::{meta, StatusError};
use nodeless_store::ListOptions;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(api: Api, shutdown: watch::Receiver<bool>) {
    super::run_on_changes(
        api,
        "/registry/",
        concerns_gc,
        Duration::from_secs(10),
        shutdown,
        |api| async move {
            if let Err(e) = pass(&api).await {
                tracing::warn!(error = %e, "garbage collection pass failed");
            }
        },
    )
    .await;
}

/// Only deletions, owned objects and deleting objects can change what the collector does.
fn concerns_gc(e: &nodeless_store::WatchEvent) -> bool {
    e.kind == nodeless_store::WatchEventType::Deleted
        || e.object.pointer("/metadata/ownerReferences").is_some()
        || meta::deletion_timestamp(&e.object).is_some()
}

struct Node {
    rt: ResourceType,
    obj: Arc<Value>,
}

/// What one pass decided to do.
#[derive(Debug, PartialEq)]
enum Action {
    /// Delete a dependent whose owners are all gone or being deleted in the foreground.
    Delete {
        uid: String,
        propagation: Propagation,
    },
    /// Remove owner references (to these uids) from a dependent.
    DropOwners {
        uid: String,
        owners: HashSet<String>,
    },
    /// Remove a finalizer from an owner whose dependents are dealt with.
    Release {
        uid: String,
        finalizer: &'static str,
    },
}

async fn pass(api: &Api) -> Result<(), StatusError> {
    let nodes = snapshot(api)?;
    for action in plan(&nodes) {
        let result = match &action {
            Action::Delete { uid, propagation } => {
                let n = &nodes[uid];
                // The uid precondition keeps a same-named newer object safe.
                let opts = DeleteOptions {
                    propagation: Some(*propagation),
                    precondition_uid: Some(uid.clone()),
                    ..Default::default()
                };
                api.delete(
                    &n.rt,
                    meta::namespace(&n.obj),
                    meta::name(&n.obj).unwrap_or_default(),
                    &opts,
                )
                .await
                .map(|_| ())
            }
            Action::DropOwners { uid, owners } => {
                edit(api, &nodes[uid], |obj| drop_owner_refs(obj, owners)).await
            }
            Action::Release { uid, finalizer } => {
                edit(api, &nodes[uid], |obj| {
                    let mut f = meta::finalizers(obj);
                    f.retain(|x| x != finalizer);
                    meta::set_finalizers(obj, &f);
                })
                .await
            }
        };
        match result {
            Ok(()) => {}
            Err(e) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Every object at one revision: a single list over all keys is a consistent snapshot, so
/// an owner created after a dependent was read can never look missing.
fn snapshot(api: &Api) -> Result<HashMap<String, Node>, StatusError> {
    let types: HashMap<String, ResourceType> = api
        .registry
        .storage_types()
        .into_iter()
        .map(|t| (t.key_prefix(), t))
        .collect();
    let page = api
        .cache
        .list(&ListOptions {
            prefix: "/registry/".into(),
            ..Default::default()
        })
        .map_err(crate::rest::cache_error)?;
    let mut nodes = HashMap::new();
    for o in page.items {
        let Some(rt) = type_of_key(&types, &o.key) else {
            continue;
        };
        if let Some(uid) = meta::uid(&o.value) {
            nodes.insert(
                uid.to_string(),
                Node {
                    rt: rt.clone(),
                    obj: o.value,
                },
            );
        }
    }
    Ok(nodes)
}

/// `/registry/<group>/<plural>/...` → the type stored there.
fn type_of_key<'a>(
    types: &'a HashMap<String, ResourceType>,
    key: &str,
) -> Option<&'a ResourceType> {
    let mut slashes = key.match_indices('/').map(|(i, _)| i);
    let end = slashes.nth(3)?;
    types.get(&key[..=end])
}

fn plan(nodes: &HashMap<String, Node>) -> Vec<Action> {
    let mut actions = Vec::new();
    // owner uid -> dependents (uid, blocking)
    let mut dependents: HashMap<String, Vec<(&str, bool)>> = HashMap::new();
    for (uid, n) in nodes {
        let refs = meta::owner_references(&n.obj);
        if refs.is_empty() {
            continue;
        }
        let mut gone = HashSet::new();
        let mut orphaning = HashSet::new();
        let mut foreground = HashSet::new();
        for r in &refs {
            dependents
                .entry(r.uid.clone())
                .or_default()
                .push((uid.as_str(), r.block_owner_deletion));
            match nodes.get(&r.uid) {
                None => {
                    gone.insert(r.uid.clone());
                }
                Some(owner) if is_deleting_with(&owner.obj, ORPHAN) => {
                    orphaning.insert(r.uid.clone());
                }
                Some(owner) if is_deleting_with(&owner.obj, FOREGROUND) => {
                    foreground.insert(r.uid.clone());
                }
                Some(_) => {}
            }
        }
        let deleting = meta::deletion_timestamp(&n.obj).is_some();
        if !orphaning.is_empty() {
            actions.push(Action::DropOwners {
                uid: uid.clone(),
                owners: orphaning,
            });
        } else if deleting {
            // Already on its way out.
        } else if gone.len() == refs.len() {
            actions.push(Action::Delete {
                uid: uid.clone(),
                propagation: Propagation::Background,
            });
        } else if gone.len() + foreground.len() == refs.len() {
            // Every remaining owner is being deleted in the foreground: go first, and make
            // our own dependents go first too.
            actions.push(Action::Delete {
                uid: uid.clone(),
                propagation: Propagation::Foreground,
            });
        } else if !gone.is_empty() || !foreground.is_empty() {
            // A live owner keeps the object; it only stops pointing at owners that are going.
            actions.push(Action::DropOwners {
                uid: uid.clone(),
                owners: gone.union(&foreground).cloned().collect(),
            });
        }
    }
    for (uid, n) in nodes {
        let deps = dependents.get(uid).map(Vec::as_slice).unwrap_or(&[]);
        if is_deleting_with(&n.obj, ORPHAN) && deps.is_empty() {
            actions.push(Action::Release {
                uid: uid.clone(),
                finalizer: ORPHAN,
            });
        }
        if is_deleting_with(&n.obj, FOREGROUND) && !deps.iter().any(|(_, blocking)| *blocking) {
            actions.push(Action::Release {
                uid: uid.clone(),
                finalizer: FOREGROUND,
            });
        }
    }
    actions
}

fn is_deleting_with(obj: &Value, finalizer: &str) -> bool {
    meta::deletion_timestamp(obj).is_some() && meta::finalizers(obj).iter().any(|f| f == finalizer)
}

fn drop_owner_refs(obj: &mut Value, owners: &HashSet<String>) {
    let Some(refs) = obj
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    refs.retain(|r| {
        r.get("uid")
            .and_then(Value::as_str)
            .is_none_or(|u| !owners.contains(u))
    });
    if refs.is_empty() {
        meta::remove(obj, "ownerReferences");
    }
}

/// Changes an object's metadata in place (retrying on conflicts), keeping everything else.
async fn edit(api: &Api, n: &Node, f: impl Fn(&mut Value)) -> Result<(), StatusError> {
    let name = meta::name(&n.obj).unwrap_or_default().to_string();
    let key = n.rt.key(meta::namespace(&n.obj), &name);
    let uid = meta::uid(&n.obj).unwrap_or_default().to_string();
    api.modify(&n.rt, &key, &name, |cur| {
        if meta::uid(cur) != Some(uid.as_str()) {
            return Ok(Change::Unchanged);
        }
        let mut obj = (**cur).clone();
        f(&mut obj);
        if crate::rest::finished_deleting(&n.rt, &obj) {
            return Ok(Change::Delete(Some(obj)));
        }
        Ok(Change::Put(obj))
    })
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodeless_core::resource::builtins;
    use serde_json::json;

    fn node(
        kind: &str,
        uid: &str,
        owners: &[(&str, bool)],
        deleting_with: Option<&str>,
    ) -> (String, Node) {
        let rt = builtins()
            .into_iter()
            .find(|r| r.kind == kind)
            .expect("kind");
        let refs: Vec<Value> = owners
            .iter()
            .map(|(o, block)| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": o, "blockOwnerDeletion": block}))
            .collect();
        let mut md =
            json!({"name": uid, "namespace": "default", "uid": uid, "ownerReferences": refs});
        if let Some(f) = deleting_with {
            md["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            md["finalizers"] = json!([f]);
        }
        (
            uid.to_string(),
            Node {
                rt,
                obj: Arc::new(json!({"metadata": md})),
            },
        )
    }

    #[test]
    fn dependents_of_a_missing_owner_are_deleted() {
        let nodes: HashMap<_, _> = [node("Pod", "p1", &[("rs1", true)], None)]
            .into_iter()
            .collect();
        assert_eq!(
            plan(&nodes),
            vec![Action::Delete {
                uid: "p1".into(),
                propagation: Propagation::Background
            }]
        );
    }

    #[test]
    fn foreground_owner_waits_for_blocking_dependents() {
        let nodes: HashMap<_, _> = [
            node("ReplicaSet", "rs1", &[], Some(FOREGROUND)),
            node("Pod", "p1", &[("rs1", true)], None),
        ]
        .into_iter()
        .collect();
        let actions = plan(&nodes);
        assert_eq!(
            actions,
            vec![Action::Delete {
                uid: "p1".into(),
                propagation: Propagation::Foreground
            }]
        );
    }

    #[test]
    fn orphaning_drops_references_then_releases_the_owner() {
        let nodes: HashMap<_, _> = [
            node("ReplicaSet", "rs1", &[], Some(ORPHAN)),
            node("Pod", "p1", &[("rs1", true)], None),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            plan(&nodes),
            vec![Action::DropOwners {
                uid: "p1".into(),
                owners: ["rs1".to_string()].into()
            }]
        );
        let alone: HashMap<_, _> = [node("ReplicaSet", "rs1", &[], Some(ORPHAN))]
            .into_iter()
            .collect();
        assert_eq!(
            plan(&alone),
            vec![Action::Release {
                uid: "rs1".into(),
                finalizer: ORPHAN
            }]
        );
    }

    #[test]
    fn a_live_second_owner_keeps_a_dependent_of_a_foreground_owner() {
        let nodes: HashMap<_, _> = [
            node("ReplicaSet", "rs1", &[], Some(FOREGROUND)),
            node("ReplicaSet", "rs2", &[], None),
            node("Pod", "p1", &[("rs1", true), ("rs2", true)], None),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            plan(&nodes),
            vec![Action::DropOwners {
                uid: "p1".into(),
                owners: ["rs1".to_string()].into()
            }]
        );
    }

    #[test]
    fn a_live_owner_keeps_its_dependents() {
        let nodes: HashMap<_, _> = [
            node("ReplicaSet", "rs1", &[], None),
            node("Pod", "p1", &[("rs1", true)], None),
        ]
        .into_iter()
        .collect();
        assert!(plan(&nodes).is_empty());
    }
}
