//! The Pod printer: READY, STATUS (upstream's reason logic), RESTARTS with the last restart's
//! age, and the wide IP / NODE / NOMINATED NODE / READINESS GATES columns.

use super::cell::{arr, i, or, s};
use super::duration::parse_time;
use super::{col, docs, Col, Ctx, Printer, AGE, NAME};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const COLUMNS: &[Col] = &[
    NAME,
    col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "The aggregate status of the containers in this pod."),
    col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    col("IP", docs::POD_IP).wide(),
    col("Node", docs::POD_NODE_NAME).wide(),
    col("Nominated Node", docs::POD_NOMINATED_NODE_NAME).wide(),
    col("Readiness Gates", docs::POD_READINESS_GATES).wide(),
];

pub(crate) fn printer(kind: &str) -> Option<Printer> {
    (kind == "Pod").then_some(Printer {
        columns: COLUMNS,
        cells,
    })
}

/// Finished pods carry a `Completed` row condition, as upstream marks them.
pub(crate) fn row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match s(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// Restart counts and the most recent restart, over some set of containers.
#[derive(Default, Clone, Copy)]
struct Restarts {
    count: i64,
    last: Option<DateTime<Utc>>,
}

impl Restarts {
    fn add(&mut self, status: &Value) {
        self.count += i(status, "/restartCount");
        if let Some(finished) = status
            .pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
        {
            if let Some(t) = parse_time(finished) {
                self.last = Some(self.last.map_or(t, |l| l.max(t)));
            }
        }
    }
}

/// The STATUS, READY count and RESTARTS of a pod, computed as upstream's printPod.
struct Summary {
    reason: String,
    ready: usize,
    restarts: Restarts,
}

fn is_restartable_init(pod: &Value, name: &str) -> bool {
    arr(pod, "/spec/initContainers")
        .iter()
        .any(|c| s(c, "/name") == name && s(c, "/restartPolicy") == "Always")
}

fn condition_true(pod: &Value, type_: &str) -> bool {
    arr(pod, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == type_)
        .is_some_and(|c| s(c, "/status") == "True")
}

fn terminated_reason(prefix: &str, terminated: &Value) -> String {
    let reason = s(terminated, "/reason");
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = i(terminated, "/signal");
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", i(terminated, "/exitCode"))
    }
}

fn summarize(pod: &Value) -> Summary {
    let phase = s(pod, "/status/phase");
    let mut reason = or(s(pod, "/status/reason"), phase).to_string();
    let gated = arr(pod, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == "PodScheduled" && s(c, "/reason") == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".into();
    }
    let mut ready = 0;
    let mut all = Restarts::default();
    let mut sidecars = Restarts::default();
    let init_count = arr(pod, "/spec/initContainers").len();
    let mut initializing = false;
    for (idx, c) in arr(pod, "/status/initContainerStatuses").iter().enumerate() {
        all.add(c);
        let restartable = is_restartable_init(pod, s(c, "/name"));
        if restartable {
            sidecars.add(c);
        }
        let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
        let waiting_reason = c
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if terminated.is_some_and(|t| i(t, "/exitCode") == 0) {
            continue;
        }
        if restartable && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = match terminated {
            Some(t) => terminated_reason("Init:", t),
            None if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" => {
                format!("Init:{waiting_reason}")
            }
            None => format!("Init:{idx}/{init_count}"),
        };
        initializing = true;
        break;
    }
    let mut restarts = all;
    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecars;
        let mut has_running = false;
        for c in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts.add(c);
            let waiting_reason = s(c, "/state/waiting/reason");
            let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
            if !waiting_reason.is_empty() {
                reason = waiting_reason.into();
            } else if let Some(t) = terminated {
                reason = terminated_reason("", t);
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .into();
        }
    }
    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    if deleting && s(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }
    Summary {
        reason,
        ready,
        restarts,
    }
}

fn readiness_gates(pod: &Value) -> String {
    let gates = arr(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".into();
    }
    let conditions = arr(pod, "/status/conditions");
    let passing = gates
        .iter()
        .filter(|g| {
            let wanted = s(g, "/conditionType");
            conditions
                .iter()
                .find(|c| s(c, "/type") == wanted)
                .is_some_and(|c| s(c, "/status") == "True")
        })
        .count();
    format!("{passing}/{}", gates.len())
}

fn cells(pod: &Value, ctx: &Ctx) -> Vec<Value> {
    let summary = summarize(pod);
    let total = arr(pod, "/spec/containers").len()
        + arr(pod, "/spec/initContainers")
            .iter()
            .filter(|c| s(c, "/restartPolicy") == "Always")
            .count();
    let restarts = match summary.restarts {
        Restarts {
            count,
            last: Some(last),
        } if count != 0 => {
            format!(
                "{count} ({} ago)",
                super::duration::human_duration(ctx.now - last)
            )
        }
        Restarts { count, .. } => count.to_string(),
    };
    let ip = arr(pod, "/status/podIPs")
        .first()
        .map(|p| s(p, "/ip"))
        .unwrap_or_else(|| s(pod, "/status/podIP"));
    vec![
        s(pod, "/metadata/name").into(),
        format!("{}/{total}", summary.ready).into(),
        summary.reason.into(),
        restarts.into(),
        ctx.age(pod),
        or(ip, "<none>").into(),
        or(s(pod, "/spec/nodeName"), "<none>").into(),
        or(s(pod, "/status/nominatedNodeName"), "<none>").into(),
        readiness_gates(pod).into(),
    ]
}

#[cfg(test)]
mod tests;
