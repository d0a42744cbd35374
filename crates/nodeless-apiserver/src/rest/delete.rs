//! delete: preconditions, graceful deletion, finalizers and propagation policies.

use super::{Api, Change};
use nodeless_core::resource::ResourceType;
use nodeless_core::{meta, StatusError};
use serde_json::{json, Value};
use std::sync::Arc;

pub const FOREGROUND: &str = "foregroundDeletion";
/// Namespaces every cluster relies on, which upstream's lifecycle admission protects.
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];
pub const ORPHAN: &str = "orphan";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body and query parameters (the query wins where both are set).
    pub fn from_parts(
        body: Option<&Value>,
        query: &std::collections::HashMap<String, String>,
    ) -> Result<Self, StatusError> {
        let mut o = DeleteOptions::default();
        if let Some(b) = body {
            o.grace_period_seconds = b.get("gracePeriodSeconds").and_then(Value::as_i64);
            o.propagation = b
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(parse_propagation)
                .transpose()?;
            if o.propagation.is_none() {
                // The deprecated field, still sent by older clients.
                if let Some(orphan) = b.get("orphanDependents").and_then(Value::as_bool) {
                    o.propagation = Some(if orphan {
                        Propagation::Orphan
                    } else {
                        Propagation::Background
                    });
                }
            }
            o.precondition_uid = b
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from);
            o.precondition_resource_version = b
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from);
            o.dry_run = b
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        }
        if let Some(g) = query.get("gracePeriodSeconds") {
            o.grace_period_seconds = Some(g.parse().map_err(|_| {
                StatusError::bad_request(format!("invalid gracePeriodSeconds: {g:?}"))
            })?);
        }
        if let Some(p) = query.get("propagationPolicy") {
            o.propagation = Some(parse_propagation(p)?);
        }
        if query.get("dryRun").is_some_and(|d| d == "All") {
            o.dry_run = true;
        }
        if o.grace_period_seconds.is_some_and(|g| g < 0) {
            o.grace_period_seconds = Some(0);
        }
        Ok(o)
    }
}

fn parse_propagation(s: &str) -> Result<Propagation, StatusError> {
    match s {
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        "Orphan" => Ok(Propagation::Orphan),
        other => Err(StatusError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        ))),
    }
}

#[derive(Debug, Clone)]
pub enum DeleteOutcome {
    /// The object is gone; this was its last state.
    Deleted(Arc<Value>),
    /// Deletion started and waits for finalizers or a grace period.
    Pending(Arc<Value>),
}

/// Whether a deleting object has nothing left to wait for.
pub fn finished_deleting(rt: &ResourceType, obj: &Value) -> bool {
    if meta::deletion_timestamp(obj).is_none() || !meta::finalizers(obj).is_empty() {
        return false;
    }
    if rt.group.is_empty() && rt.kind == "Namespace" {
        let spec_finalizers = obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .map(|a| a.len())
            .unwrap_or(0);
        return spec_finalizers == 0;
    }
    obj.pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        == 0
}

impl Api {
    pub async fn delete(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome, StatusError> {
        if rt.group.is_empty() && rt.kind == "Namespace" && PROTECTED_NAMESPACES.contains(&name) {
            return Err(StatusError::forbidden(
                "",
                "namespaces",
                name,
                "this namespace may not be deleted",
            ));
        }
        let key = rt.key(ns, name);
        let mut pending = false;
        let mut dry = None;
        let (last, _) = self
            .modify(rt, &key, name, |cur| {
                check_preconditions(rt, name, cur, opts)?;
                let (change, is_pending) = plan_delete(rt, cur, opts);
                pending = is_pending;
                if opts.dry_run {
                    dry = Some(cur.clone());
                    return Ok(Change::Unchanged);
                }
                Ok(change)
            })
            .await?;
        let last = dry.unwrap_or(last);
        Ok(if pending {
            DeleteOutcome::Pending(last)
        } else {
            DeleteOutcome::Deleted(last)
        })
    }
}

fn check_preconditions(
    rt: &ResourceType,
    name: &str,
    cur: &Value,
    opts: &DeleteOptions,
) -> Result<(), StatusError> {
    if let Some(uid) = &opts.precondition_uid {
        let actual = meta::uid(cur).unwrap_or("");
        if uid != actual {
            return Err(StatusError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = &opts.precondition_resource_version {
        let actual = meta::resource_version(cur).unwrap_or("");
        if rv != actual {
            return Err(StatusError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"),
            ));
        }
    }
    Ok(())
}

/// Decides how a delete request changes the object; the bool says deletion is still pending.
fn plan_delete(rt: &ResourceType, cur: &Value, opts: &DeleteOptions) -> (Change, bool) {
    let mut obj = cur.clone();
    let mut finalizers = meta::finalizers(&obj);
    let mut changed = false;
    match opts.propagation {
        Some(Propagation::Foreground) => {
            finalizers.retain(|f| f != ORPHAN);
            if !finalizers.iter().any(|f| f == FOREGROUND) {
                finalizers.push(FOREGROUND.into());
            }
        }
        Some(Propagation::Orphan) => {
            finalizers.retain(|f| f != FOREGROUND);
            if !finalizers.iter().any(|f| f == ORPHAN) {
                finalizers.push(ORPHAN.into());
            }
        }
        Some(Propagation::Background) => finalizers.retain(|f| f != FOREGROUND && f != ORPHAN),
        None => {}
    }
    if finalizers != meta::finalizers(&obj) {
        meta::set_finalizers(&mut obj, &finalizers);
        changed = true;
    }
    let grace = grace_period(rt, &obj, opts);
    let existing_grace = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    let deleting = meta::deletion_timestamp(&obj).is_some();
    let is_namespace = rt.group.is_empty() && rt.kind == "Namespace";
    if finalizers.is_empty() && grace == 0 && !is_namespace {
        return (Change::Delete(None), false);
    }
    // Start (or shorten) graceful deletion.
    if !deleting || existing_grace.is_some_and(|g| grace < g) {
        let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
        let md = meta::metadata_mut(&mut obj);
        md.insert(
            "deletionTimestamp".into(),
            json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        );
        md.insert("deletionGracePeriodSeconds".into(), json!(grace));
        changed = true;
    }
    if is_namespace && obj.pointer("/status/phase").and_then(Value::as_str) != Some("Terminating") {
        obj["status"]["phase"] = json!("Terminating");
        changed = true;
    }
    if is_namespace && finished_deleting(rt, &obj) {
        return (Change::Delete(None), false);
    }
    (
        if changed {
            Change::Put(obj)
        } else {
            Change::Unchanged
        },
        true,
    )
}

/// Only Pods that may be running get a grace period; everything else goes at once.
fn grace_period(rt: &ResourceType, obj: &Value, opts: &DeleteOptions) -> i64 {
    if !(rt.group.is_empty() && rt.kind == "Pod") {
        return 0;
    }
    let scheduled = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !scheduled || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    opts.grace_period_seconds
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}
