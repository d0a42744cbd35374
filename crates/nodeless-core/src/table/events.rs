//! Event printers: core `v1` Events and `events.k8s.io/v1` Events (printed through the core
//! shape, as upstream converts both to one internal type before printing).

use super::cell::{i, or, s};
use super::{col, docs, Col, Ctx, Printer, NAME};
use serde_json::{json, Value};

const COLUMNS: &[Col] = &[
    col("Last Seen", docs::EVENT_LAST_TIMESTAMP),
    col("Type", docs::EVENT_TYPE),
    col("Reason", docs::EVENT_REASON),
    col("Object", docs::EVENT_INVOLVED_OBJECT),
    col("Subobject", docs::OBJECT_REFERENCE_FIELD_PATH).wide(),
    col("Source", docs::EVENT_SOURCE).wide(),
    col("Message", docs::EVENT_MESSAGE),
    col("First Seen", docs::EVENT_FIRST_TIMESTAMP).wide(),
    col("Count", docs::EVENT_COUNT).wide(),
    NAME.wide(),
];

pub(crate) fn core_printer() -> Printer {
    Printer {
        columns: COLUMNS,
        cells: core_event,
    }
}

pub(crate) fn printer(kind: &str) -> Option<Printer> {
    (kind == "Event").then_some(Printer {
        columns: COLUMNS,
        cells: new_event,
    })
}

fn new_event(ev: &Value, ctx: &Ctx) -> Vec<Value> {
    core_event(&to_core(ev), ctx)
}

/// Maps an `events.k8s.io/v1` Event onto the core `v1` field names.
fn to_core(ev: &Value) -> Value {
    let get = |k: &str| ev.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "metadata": get("metadata"),
        "involvedObject": get("regarding"),
        "message": get("note"),
        "source": get("deprecatedSource"),
        "firstTimestamp": get("deprecatedFirstTimestamp"),
        "lastTimestamp": get("deprecatedLastTimestamp"),
        "count": get("deprecatedCount"),
        "eventTime": get("eventTime"),
        "series": get("series"),
        "reportingComponent": get("reportingController"),
        "reportingInstance": get("reportingInstance"),
        "type": get("type"),
        "reason": get("reason"),
    })
}

fn core_event(ev: &Value, ctx: &Ctx) -> Vec<Value> {
    let first_set = !s(ev, "/firstTimestamp").is_empty();
    let first = ctx.since(if first_set {
        s(ev, "/firstTimestamp")
    } else {
        s(ev, "/eventTime")
    });
    let mut last = if s(ev, "/lastTimestamp").is_empty() {
        first.clone()
    } else {
        ctx.since(s(ev, "/lastTimestamp"))
    };
    let mut count = i(ev, "/count");
    if ev.get("series").is_some_and(Value::is_object) {
        last = ctx.since(s(ev, "/series/lastObservedTime"));
        count = i(ev, "/series/count");
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }
    let kind = s(ev, "/involvedObject/kind").to_lowercase();
    let name = s(ev, "/involvedObject/name");
    let target = if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    };
    let component = or(s(ev, "/source/component"), s(ev, "/reportingComponent"));
    let host = or(s(ev, "/source/host"), s(ev, "/reportingInstance"));
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        last.into(),
        s(ev, "/type").into(),
        s(ev, "/reason").into(),
        target.into(),
        s(ev, "/involvedObject/fieldPath").into(),
        source.into(),
        s(ev, "/message").trim().into(),
        first.into(),
        count.into(),
        s(ev, "/metadata/name").into(),
    ]
}
