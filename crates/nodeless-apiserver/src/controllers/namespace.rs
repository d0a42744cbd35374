//! Namespace lifecycle: the built-in namespaces exist, each namespace has a `default`
//! ServiceAccount, and a deleted namespace stays Terminating until its contents are gone.

use crate::rest::{Api, DeleteOptions, ListQuery, WriteOptions};
use nodeless_core::{meta, StatusError};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::watch;

pub const BUILTIN_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the namespaces every cluster has, if missing.
pub async fn ensure_builtin(api: &Api) -> Result<(), StatusError> {
    let rt = api
        .registry
        .lookup("", "v1", "namespaces")
        .ok_or_else(|| StatusError::internal("namespaces are not served"))?;
    for ns in BUILTIN_NAMESPACES {
        if api.get(&rt, None, ns).is_ok() {
            continue;
        }
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        match api.create(&rt, None, body, &WriteOptions::default()).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub async fn run(api: Api, shutdown: watch::Receiver<bool>) {
    super::run_on_changes(
        api,
        "/registry/",
        concerns_namespaces,
        Duration::from_secs(5),
        shutdown,
        |api| async move {
            if let Err(e) = reconcile(&api).await {
                tracing::warn!(error = %e, "namespace controller pass failed");
            }
        },
    )
    .await;
}

/// Namespace changes, and deletions (which may empty a terminating namespace).
fn concerns_namespaces(e: &nodeless_store::WatchEvent) -> bool {
    e.kind == nodeless_store::WatchEventType::Deleted
        || e.object.get("kind").and_then(Value::as_str) == Some("Namespace")
}

async fn reconcile(api: &Api) -> Result<(), StatusError> {
    ensure_builtin(api).await?;
    let rt = api
        .registry
        .lookup("", "v1", "namespaces")
        .ok_or_else(|| StatusError::internal("namespaces are not served"))?;
    let namespaces = api
        .list(
            &rt,
            None,
            &ListQuery {
                resource_version: Some("0".into()),
                ..Default::default()
            },
        )
        .await?;
    for ns in namespaces.items {
        let name = meta::name(&ns).unwrap_or_default().to_string();
        if meta::deletion_timestamp(&ns).is_some() {
            if empty_namespace(api, &name).await? {
                let remaining: Vec<Value> = ns
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter(|f| *f != "kubernetes").cloned().collect())
                    .unwrap_or_default();
                match api.finalize_namespace(&rt, &name, json!(remaining)).await {
                    Ok(_) => {}
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        } else {
            ensure_default_service_account(api, &name).await?;
        }
    }
    Ok(())
}

/// Deletes what is left in a terminating namespace; true once nothing is left.
async fn empty_namespace(api: &Api, ns: &str) -> Result<bool, StatusError> {
    let mut empty = true;
    for rt in api
        .registry
        .storage_types()
        .into_iter()
        .filter(|t| t.namespaced)
    {
        let prefix = rt.namespace_prefix(Some(ns));
        let items = api
            .cache
            .list(&nodeless_store::ListOptions {
                prefix,
                ..Default::default()
            })
            .map_err(crate::rest::cache_error)?
            .items;
        for obj in items {
            empty = false;
            if meta::deletion_timestamp(&obj.value).is_some() {
                continue;
            }
            let name = meta::name(&obj.value).unwrap_or_default().to_string();
            match api
                .delete(&rt, Some(ns), &name, &DeleteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(empty)
}

async fn ensure_default_service_account(api: &Api, ns: &str) -> Result<(), StatusError> {
    let Some(rt) = api.registry.lookup("", "v1", "serviceaccounts") else {
        return Ok(());
    };
    if api.get(&rt, Some(ns), "default").is_ok() {
        return Ok(());
    }
    let body = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
    match api
        .create(&rt, Some(ns), body, &WriteOptions::default())
        .await
    {
        Ok(_) => Ok(()),
        // Lost a race with a user, or the namespace started terminating meanwhile.
        Err(e) if e.code == 409 || e.code == 403 || e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
