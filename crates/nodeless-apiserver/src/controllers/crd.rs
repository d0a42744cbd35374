//! CustomResourceDefinitions: an established CRD's versions become served resource types;
//! a deleted CRD takes its custom objects with it before it goes.

use crate::registry::CustomInfo;
use crate::rest::{Api, Change, DeleteOptions};
use nodeless_core::resource::{ResourceType, ScalePaths, ALL_VERBS};
use nodeless_core::{meta, StatusError};
use nodeless_store::ListOptions;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::watch;

/// Held by every CRD until its custom objects are deleted, as upstream.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
const PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

pub async fn run(api: Api, shutdown: watch::Receiver<bool>) {
    super::run_on_changes(
        api,
        "/registry/",
        concerns_crds,
        Duration::from_secs(5),
        shutdown,
        |api| async move {
            if let Err(e) = reconcile(&api).await {
                tracing::warn!(error = %e, "CRD controller pass failed");
            }
        },
    )
    .await;
}

/// CRD changes, and deletions (which may finish a CRD's cleanup).
fn concerns_crds(e: &nodeless_store::WatchEvent) -> bool {
    e.kind == nodeless_store::WatchEventType::Deleted
        || e.object.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
}

/// Serves every established CRD; call once at startup before taking requests.
pub async fn reconcile(api: &Api) -> Result<(), StatusError> {
    let crds = api
        .cache
        .list(&ListOptions {
            prefix: PREFIX.into(),
            ..Default::default()
        })
        .map_err(crate::rest::cache_error)?
        .items;
    let mut live = HashSet::new();
    for crd in crds {
        let crd = crd.value;
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if meta::deletion_timestamp(&crd).is_some() {
            if remove_instances(api, &crd, &group, &plural).await? {
                api.registry.set_custom(&group, &plural, Vec::new());
                release(api, &crd).await?;
            }
            continue;
        }
        live.insert((group.clone(), plural.clone()));
        let types = types_of(&crd);
        let current: Vec<(ResourceType, CustomInfo)> = api
            .registry
            .custom()
            .into_iter()
            .filter(|(t, _)| t.group == group && t.plural == plural)
            .collect();
        if !same(&current, &types) {
            api.registry.set_custom(&group, &plural, types);
        }
        establish(api, &crd).await?;
    }
    for (t, _) in api.registry.custom() {
        if !live.contains(&(t.group.clone(), t.plural.clone())) {
            api.registry.set_custom(&t.group, &t.plural, Vec::new());
        }
    }
    Ok(())
}

fn same(a: &[(ResourceType, CustomInfo)], b: &[(ResourceType, CustomInfo)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ta, ia), (tb, ib))| {
            ta == tb
                && ia.printer_columns == ib.printer_columns
                && ia.schema_json == ib.schema_json
                && ia.storage_version == ib.storage_version
        })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The served resource types of a CRD, one per served version.
pub fn types_of(crd: &Value) -> Vec<(ResourceType, CustomInfo)> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    let storage_version = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"] != false)
        .map(|v| {
            let subs = &v["subresources"];
            let scale = subs
                .get("scale")
                .filter(|s| s.is_object())
                .map(|s| ScalePaths {
                    spec_replicas: s["specReplicasPath"]
                        .as_str()
                        .unwrap_or(".spec.replicas")
                        .into(),
                    status_replicas: s["statusReplicasPath"]
                        .as_str()
                        .unwrap_or(".status.replicas")
                        .into(),
                    label_selector: s["labelSelectorPath"].as_str().map(String::from),
                });
            let rt = ResourceType {
                group: spec["group"].as_str().unwrap_or_default().into(),
                version: v["name"].as_str().unwrap_or_default().into(),
                kind: kind.clone(),
                list_kind: names["listKind"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| format!("{kind}List")),
                plural: names["plural"].as_str().unwrap_or_default().into(),
                singular: names["singular"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| kind.to_lowercase()),
                namespaced: spec["scope"] != "Cluster",
                short_names: strings(names.get("shortNames")),
                categories: strings(names.get("categories")),
                has_status: subs.get("status").is_some_and(Value::is_object),
                scale,
                has_spec_generation: true,
                verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
                custom: true,
            };
            let info = CustomInfo {
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .cloned()
                    .unwrap_or(Value::Null),
                schema_json: v
                    .pointer("/schema/openAPIV3Schema")
                    .cloned()
                    .unwrap_or(Value::Null),
                storage_version: storage_version.clone(),
            };
            (rt, info)
        })
        .collect()
}

fn crd_type(api: &Api) -> Result<ResourceType, StatusError> {
    api.registry
        .lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .ok_or_else(|| StatusError::internal("CRDs are not served"))
}

/// Records NamesAccepted and Established, accepted names and stored versions.
async fn establish(api: &Api, crd: &Value) -> Result<(), StatusError> {
    let established = crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    let accepted = crd["status"]["acceptedNames"] == crd["spec"]["names"];
    if established && accepted {
        return Ok(());
    }
    let rt = crd_type(api)?;
    let name = meta::name(crd).unwrap_or_default().to_string();
    let now = crate::strategy::now_rfc3339();
    api.modify(&rt, &rt.key(None, &name), &name, |cur| {
        let mut c = (**cur).clone();
        let storage: Vec<Value> = c["spec"]["versions"].as_array().into_iter().flatten().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect();
        let mut stored = c["status"]["storedVersions"].as_array().cloned().unwrap_or_default();
        for s in storage {
            if !stored.contains(&s) {
                stored.push(s);
            }
        }
        let mut names = c["spec"]["names"].clone();
        if names.get("singular").is_none() {
            names["singular"] = json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
        }
        if names.get("listKind").is_none() {
            names["listKind"] = json!(format!("{}List", names["kind"].as_str().unwrap_or_default()));
        }
        c["status"] = json!({
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
            "acceptedNames": names,
            "storedVersions": stored,
        });
        Ok(Change::Put(c))
    })
    .await
    .map(|_| ())
}

/// Deletes a terminating CRD's objects; true once none are left.
async fn remove_instances(
    api: &Api,
    crd: &Value,
    group: &str,
    plural: &str,
) -> Result<bool, StatusError> {
    let Some((rt, _)) = types_of(crd).into_iter().next() else {
        return Ok(true);
    };
    let _ = (group, plural);
    let items = api
        .cache
        .list(&ListOptions {
            prefix: rt.key_prefix(),
            ..Default::default()
        })
        .map_err(crate::rest::cache_error)?
        .items;
    for o in &items {
        if meta::deletion_timestamp(&o.value).is_some() {
            continue;
        }
        let name = meta::name(&o.value).unwrap_or_default().to_string();
        match api
            .delete(
                &rt,
                meta::namespace(&o.value),
                &name,
                &DeleteOptions::default(),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(items.is_empty())
}

async fn release(api: &Api, crd: &Value) -> Result<(), StatusError> {
    let rt = crd_type(api)?;
    let name = meta::name(crd).unwrap_or_default().to_string();
    let r = api
        .modify(&rt, &rt.key(None, &name), &name, |cur| {
            let mut c = (**cur).clone();
            let mut f = meta::finalizers(&c);
            f.retain(|x| x != CLEANUP_FINALIZER);
            meta::set_finalizers(&mut c, &f);
            if crate::rest::finished_deleting(&rt, &c) {
                return Ok(Change::Delete(Some(c)));
            }
            Ok(Change::Put(c))
        })
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
