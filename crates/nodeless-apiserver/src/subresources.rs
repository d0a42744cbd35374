//! Subresources: status, scale, pods/binding, pods/eviction, namespaces/finalize, the
//! node-side streaming endpoints (log, exec, attach, portforward), and pods/ and services/proxy.

use crate::handlers::{
    parse_body, patch_body, req_content_type, write_options, write_response, Query,
};
use crate::respond::{json_response, Body, Representation};
use crate::rest::{DeleteOptions, DeleteOutcome};
use crate::server::{read_body, State};
use crate::strategy::Part;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use nodeless_core::patch::{self, PatchType};
use nodeless_core::resource::ResourceType;
use nodeless_core::{meta, StatusError};
use serde_json::{json, Value};

#[allow(clippy::too_many_arguments)]
pub async fn handle(
    state: &State,
    req: Request<Incoming>,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    sub: &str,
    q: &Query,
    rep: Representation,
) -> Result<Response<Body>, StatusError> {
    let api = &state.api;
    let method = req.method().clone();
    let is_pod = rt.group.is_empty() && rt.kind == "Pod";
    match (sub, method) {
        ("status", Method::GET) if rt.has_status => {
            let obj = api.get(rt, ns, name)?;
            Ok(crate::tables::object_response(
                state,
                rt,
                &obj,
                rep,
                StatusCode::OK,
            ))
        }
        ("status", Method::PUT) if rt.has_status => {
            let body = parse_body(
                &req_content_type(&req),
                read_body(req.into_body(), state.limits.max_body_bytes).await?,
            )?;
            let out = api
                .update(rt, ns, name, Part::Status, body, &write_options(q)?)
                .await?;
            Ok(write_response(state, rt, out, rep))
        }
        ("status", Method::PATCH) if rt.has_status => {
            let (pt, bytes) = patch_body(state, req).await?;
            let out = api
                .patch(rt, ns, name, Part::Status, pt, &bytes, &write_options(q)?)
                .await?;
            Ok(write_response(state, rt, out, rep))
        }
        ("scale", m) if rt.scale.is_some() => scale(state, req, m, rt, ns, name, q).await,
        ("finalize", Method::PUT) if rt.group.is_empty() && rt.kind == "Namespace" => {
            let body = parse_body(
                &req_content_type(&req),
                read_body(req.into_body(), state.limits.max_body_bytes).await?,
            )?;
            let finalizers = body
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            let out = api.finalize_namespace(rt, name, finalizers).await?;
            Ok(json_response(StatusCode::OK, &*out))
        }
        ("binding", Method::POST) if is_pod => {
            let body = parse_body(
                &req_content_type(&req),
                read_body(req.into_body(), state.limits.max_body_bytes).await?,
            )?;
            let node = body
                .pointer("/target/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let annotations = binding_annotations(&body)?;
            api.bind_pod(rt, ns, name, &node, &annotations).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        ("eviction", Method::POST) if is_pod => {
            let body = parse_body(
                &req_content_type(&req),
                read_body(req.into_body(), state.limits.max_body_bytes).await?,
            )?;
            let opts = DeleteOptions::from_parts(body.get("deleteOptions"), &Query::new())?;
            api.evict(rt, ns, name, &opts).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        ("log", Method::GET) | ("exec" | "attach" | "portforward", Method::GET | Method::POST)
            if is_pod =>
        {
            let pod = api.get(rt, ns, name)?;
            let container = q.get("container").map(String::as_str);
            crate::proxy::serve(api, req, &pod, sub, container).await
        }
        ("proxy", _) if is_pod => {
            crate::proxy::serve_pod_proxy(api, req, rt, ns.unwrap_or("default"), name).await
        }
        ("proxy", _) if rt.group.is_empty() && rt.kind == "Service" => {
            crate::proxy::serve_service_proxy(api, req, rt, ns.unwrap_or("default"), name).await
        }
        (_, m) => Err(StatusError::new(
            405,
            "MethodNotAllowed",
            format!("{m} is not supported on {}/{sub}", rt.group_resource()),
        )),
    }
}

/// A Binding's `metadata.annotations`; values must be strings, as in any object's metadata.
fn binding_annotations(
    binding: &Value,
) -> Result<std::collections::BTreeMap<String, String>, StatusError> {
    let Some(found) = binding.pointer("/metadata/annotations") else {
        return Ok(Default::default());
    };
    let invalid =
        || StatusError::bad_request("Binding.metadata.annotations must be a map of strings");
    match found {
        Value::Null => Ok(Default::default()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(invalid)?.to_string())))
            .collect(),
        _ => Err(invalid()),
    }
}

/// The `autoscaling/v1` Scale view of an object with a replicas field.
fn scale_of(rt: &ResourceType, obj: &Value) -> Value {
    let paths = rt
        .scale
        .clone()
        .unwrap_or_else(|| nodeless_core::resource::ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        });
    let spec = meta::get_path(obj, &paths.spec_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status = meta::get_path(obj, &paths.status_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut st = json!({"replicas": status});
    let selector = paths
        .label_selector
        .as_deref()
        .and_then(|p| meta::get_path(obj, p))
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| obj.pointer("/spec/selector").and_then(selector_string));
    if let Some(s) = selector {
        st["selector"] = json!(s);
    }
    let md = &obj["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": md["name"], "namespace": md["namespace"], "uid": md["uid"],
                     "resourceVersion": md["resourceVersion"], "creationTimestamp": md["creationTimestamp"]},
        "spec": {"replicas": spec},
        "status": st,
    })
}

/// A LabelSelector as the `key=value,...` string Scale.status.selector carries.
fn selector_string(sel: &Value) -> Option<String> {
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let vals: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    Some(parts.join(","))
}

async fn scale(
    state: &State,
    req: Request<Incoming>,
    method: Method,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    q: &Query,
) -> Result<Response<Body>, StatusError> {
    let api = &state.api;
    let current = api.get(rt, ns, name)?;
    let current_scale = scale_of(rt, &current);
    let requested = match method {
        Method::GET => return Ok(json_response(StatusCode::OK, &current_scale)),
        Method::PUT => parse_body(
            &req_content_type(&req),
            read_body(req.into_body(), state.limits.max_body_bytes).await?,
        )?,
        Method::PATCH => {
            let (pt, bytes) = patch_body(state, req).await?;
            let pt = if pt == PatchType::Strategic {
                PatchType::Merge
            } else {
                pt
            };
            patch::apply_patch(pt, "autoscaling", "Scale", &current_scale, &bytes)?
        }
        m => {
            return Err(StatusError::new(
                405,
                "MethodNotAllowed",
                format!("{m} is not supported on scale"),
            ))
        }
    };
    let replicas = requested
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        let e = nodeless_core::FieldError::invalid(
            "spec.replicas",
            replicas,
            "must be greater than or equal to 0",
        );
        return Err(StatusError::invalid("autoscaling", "Scale", name, &vec![e]));
    }
    let rv = requested
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(String::from);
    let spec_path = rt
        .scale
        .as_ref()
        .map(|s| s.spec_replicas.clone())
        .unwrap_or_else(|| ".spec.replicas".into());
    let mut obj = (*current).clone();
    meta::set_path(&mut obj, &spec_path, json!(replicas));
    match rv {
        Some(rv) => meta::set_str(&mut obj, "resourceVersion", rv),
        None => {
            meta::remove(&mut obj, "resourceVersion");
        }
    }
    let out = api
        .update(rt, ns, name, Part::Main, obj, &write_options(q)?)
        .await?;
    Ok(json_response(StatusCode::OK, &scale_of(rt, &out.object)))
}

impl crate::rest::Api {
    /// Assigns a Pod to a node once, as the binding subresource does. The Binding's
    /// annotations land on the Pod in the same write (upstream's assignPod does too): the
    /// scheduler records there which host and instance size it chose.
    pub async fn bind_pod(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        node: &str,
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StatusError> {
        if node.is_empty() {
            let e = nodeless_core::FieldError::required("target.name", "");
            return Err(StatusError::invalid("", "Binding", name, &vec![e]));
        }
        let key = rt.key(ns, name);
        self.modify(rt, &key, name, |cur| {
            if meta::deletion_timestamp(cur).is_some() {
                return Err(StatusError::conflict(
                    "",
                    "pods",
                    name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            let existing = cur
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !existing.is_empty() {
                return Err(StatusError::conflict(
                    "",
                    "pods",
                    name,
                    &format!("pod {name} is already assigned to node \"{existing}\""),
                ));
            }
            let mut pod = (**cur).clone();
            pod["spec"]["nodeName"] = json!(node);
            if !annotations.is_empty() {
                let mut merged = pod
                    .pointer("/metadata/annotations")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (k, v) in annotations {
                    merged.insert(k.clone(), json!(v));
                }
                pod["metadata"]["annotations"] = Value::Object(merged);
            }
            set_condition(&mut pod, "PodScheduled", "True");
            Ok(crate::rest::Change::Put(pod))
        })
        .await
        .map(|_| ())
    }

    /// Deletes a Pod through the eviction API, honouring its PodDisruptionBudget as upstream:
    /// a running Pod is evicted only while the budget allows a disruption, and each eviction
    /// spends one (recorded in the budget's status before the Pod goes).
    pub async fn evict(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome, StatusError> {
        let pod = self.get(rt, ns, name)?;
        let phase = pod
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        let exempt = meta::deletion_timestamp(&pod).is_some()
            || matches!(phase, "Pending" | "Succeeded" | "Failed" | "");
        if !exempt {
            self.spend_disruption(&pod, ns, name).await?;
        }
        self.delete(rt, ns, name, opts).await
    }

    async fn spend_disruption(
        &self,
        pod: &Value,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), StatusError> {
        let Some(pdb_type) = self.registry.lookup("policy", "v1", "poddisruptionbudgets") else {
            return Ok(());
        };
        let labels = meta::labels(pod);
        let budgets = self
            .list(
                &pdb_type,
                ns,
                &crate::rest::ListQuery {
                    resource_version: Some("0".into()),
                    ..Default::default()
                },
            )
            .await?;
        let matching: Vec<_> = budgets
            .items
            .iter()
            .filter(|b| {
                b.pointer("/spec/selector")
                    .and_then(|s| nodeless_core::selector::LabelSelector::from_json(s).ok())
                    .is_some_and(|s| s.matches(&labels))
            })
            .collect();
        let budget = match matching.as_slice() {
            [] => return Ok(()),
            [one] => one,
            _ => {
                return Err(StatusError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ))
            }
        };
        let budget_name = meta::name(budget).unwrap_or_default().to_string();
        let refuse = |why: String| {
            let mut e = StatusError::new(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            );
            e.details = Some(nodeless_core::status::Details {
                causes: vec![nodeless_core::status::Cause {
                    reason: "DisruptionBudget".into(),
                    message: why,
                    field: String::new(),
                }],
                retry_after_seconds: Some(10),
                ..Default::default()
            });
            e
        };
        let key = pdb_type.key(ns, &budget_name);
        let now = crate::strategy::now_rfc3339();
        self.modify(&pdb_type, &key, &budget_name, |cur| {
            let generation = cur.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            let observed = cur.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0);
            if observed < generation {
                return Err(refuse(format!("The disruption budget {budget_name} is still being processed by the server.")));
            }
            let allowed = cur.pointer("/status/disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0);
            if allowed <= 0 {
                let desired = cur.pointer("/status/desiredHealthy").and_then(Value::as_i64).unwrap_or(0);
                let current = cur.pointer("/status/currentHealthy").and_then(Value::as_i64).unwrap_or(0);
                return Err(refuse(format!(
                    "The disruption budget {budget_name} needs {desired} healthy pods and has {current} currently"
                )));
            }
            let mut b = (**cur).clone();
            b["status"]["disruptionsAllowed"] = json!(allowed - 1);
            b["status"]["disruptedPods"][name] = json!(now);
            Ok(crate::rest::Change::Put(b))
        })
        .await
        .map(|_| ())
    }

    /// Sets a namespace's spec.finalizers; the namespace goes once nothing else holds it.
    pub async fn finalize_namespace(
        &self,
        rt: &ResourceType,
        name: &str,
        finalizers: Value,
    ) -> Result<std::sync::Arc<Value>, StatusError> {
        let key = rt.key(None, name);
        let (obj, _) = self
            .modify(rt, &key, name, |cur| {
                let mut ns = (**cur).clone();
                ns["spec"]["finalizers"] = finalizers.clone();
                if crate::rest::finished_deleting(rt, &ns) {
                    return Ok(crate::rest::Change::Delete(Some(ns)));
                }
                Ok(crate::rest::Change::Put(ns))
            })
            .await?;
        Ok(obj)
    }
}

fn set_condition(pod: &mut Value, kind: &str, status: &str) {
    let now = crate::strategy::now_rfc3339();
    let cond =
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    let conds = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != kind).collect();
    conds.push(cond);
    pod["status"]["conditions"] = json!(conds);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_annotations_must_be_strings() {
        let ok = json!({"metadata": {"annotations": {"nodeless.dev/host": "h1"}}});
        let got = binding_annotations(&ok).expect("strings are fine");
        assert_eq!(got.get("nodeless.dev/host").map(String::as_str), Some("h1"));
        assert!(binding_annotations(&json!({"metadata": {}}))
            .expect("none")
            .is_empty());
        let bad = json!({"metadata": {"annotations": {"replicas": 3}}});
        assert_eq!(binding_annotations(&bad).map_err(|e| e.code), Err(400));
    }
}
