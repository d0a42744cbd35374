//! Small kinds: Namespace, Event (core and events.k8s.io), Lease and RuntimeClass.

use super::meta::validate_label_name;
use super::names;
use super::{field, int, text};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::Value;

pub(crate) fn validate_namespace(obj: &Value) -> ErrorList {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec").child("finalizers");
    super::items(spec, "finalizers")
        .iter()
        .filter_map(Value::as_str)
        .flat_map(|f| {
            names::is_qualified_name(f)
                .into_iter()
                .map(|m| FieldError::invalid(&path, f, m))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An Event seen through the core API's field names (events.k8s.io renames several).
struct EventView<'a> {
    obj: &'a Value,
    events_api: bool,
}

impl<'a> EventView<'a> {
    fn get(&self, core: &str, events: &str) -> Option<&'a Value> {
        field(self.obj, if self.events_api { events } else { core })
    }
    fn str(&self, core: &str, events: &str) -> &'a str {
        self.get(core, events).and_then(Value::as_str).unwrap_or("")
    }
}

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

/// `legacyValidateEvent` for every Event, plus the strict checks of events.k8s.io.
/// Paths use the core API's names, as upstream reports them.
pub(crate) fn validate_event(obj: &Value, events_api: bool) -> ErrorList {
    let ev = EventView { obj, events_api };
    let mut errs = legacy(&ev);
    if events_api {
        errs.extend(strict(&ev));
    }
    errs
}

fn legacy(ev: &EventView) -> ErrorList {
    let mut errs = ErrorList::new();
    let namespace = crate::meta::namespace(ev.obj).unwrap_or("");
    let involved_ns = ev
        .get("involvedObject", "regarding")
        .map_or("", |o| text(o, "namespace"));
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        )
    };
    if ev.get("eventTime", "eventTime").is_none() {
        let ok = if involved_ns.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved_ns
        };
        if !ok {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(mismatch());
        }
        let controller = ev.str("reportingComponent", "reportingController");
        if controller.is_empty() {
            errs.push(FieldError::required("reportingController", ""));
        }
        errs.extend(validate_label_name(
            controller,
            &Path::new("reportingController"),
        ));
        errs.extend(bounded(
            "reportingInstance",
            ev.str("reportingInstance", "reportingInstance"),
            REPORTING_INSTANCE_LIMIT,
            true,
        ));
        errs.extend(bounded(
            "action",
            ev.str("action", "action"),
            ACTION_LIMIT,
            true,
        ));
        errs.extend(bounded(
            "reason",
            ev.str("reason", "reason"),
            REASON_LIMIT,
            true,
        ));
        errs.extend(bounded(
            "message",
            ev.str("message", "note"),
            NOTE_LIMIT,
            false,
        ));
    }
    for msg in names::is_dns1123_subdomain(namespace) {
        errs.push(FieldError::invalid("namespace", namespace, msg));
    }
    errs
}

fn bounded(name: &str, value: &str, limit: usize, required: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    if required && value.is_empty() {
        errs.push(FieldError::required(name, ""));
    }
    if value.len() > limit {
        errs.push(FieldError::invalid(
            name,
            "",
            format!("can have at most {limit} characters"),
        ));
    }
    errs
}

fn strict(ev: &EventView) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(series) = ev.get("series", "series") {
        if int(series, "count").unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if field(series, "lastObservedTime").is_none() {
            errs.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    if ev.get("eventTime", "eventTime").is_none() {
        errs.push(FieldError::required("eventTime", ""));
    }
    let event_type = ev.str("type", "type");
    if event_type != "Normal" && event_type != "Warning" {
        errs.push(FieldError::invalid(
            "type",
            "",
            format!("has invalid value: {event_type}"),
        ));
    }
    for (core, events) in [
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
    ] {
        if ev.get(core, events).is_some() {
            errs.push(FieldError::invalid(core, "", "needs to be unset"));
        }
    }
    if ev
        .get("count", "deprecatedCount")
        .and_then(Value::as_i64)
        .is_some_and(|c| c != 0)
    {
        errs.push(FieldError::invalid("count", "", "needs to be unset"));
    }
    let source = ev.get("source", "deprecatedSource");
    if source.is_some_and(|s| !text(s, "component").is_empty() || !text(s, "host").is_empty()) {
        errs.push(FieldError::invalid("source", "", "needs to be unset"));
    }
    errs
}

pub(crate) fn validate_lease(obj: &Value) -> ErrorList {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    if let Some(d) = int(spec, "leaseDurationSeconds").filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            path.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = int(spec, "leaseTransitions").filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            path.child("leaseTransitions"),
            t,
            super::meta::NEGATIVE,
        ));
    }
    errs
}

/// RuntimeClass `handler` names a CRI handler: a DNS-1123 label, fixed once created.
pub(crate) fn validate_runtime_class(obj: &Value) -> ErrorList {
    let handler = text(obj, "handler");
    names::is_dns1123_label(handler)
        .into_iter()
        .map(|m| FieldError::invalid("handler", handler, m))
        .collect()
}

pub(crate) fn validate_runtime_class_update(new: &Value, old: &Value) -> ErrorList {
    super::meta::immutable(
        field(new, "handler"),
        field(old, "handler"),
        &Path::new("handler"),
    )
    .into_iter()
    .collect()
}
