//! What a StatefulSet should do next, as upstream's `updateStatefulSet` decides it: fill the
//! ordinals in order (OrderedReady: one at a time, each waiting for the one before to be
//! Running and Ready; Parallel: all at once), replace failed Pods under the same name, scale
//! down from the highest ordinal, and roll updates from the highest ordinal down to the
//! partition, one Pod at a time. Pure, so every rule is tested without a server.

use std::collections::BTreeMap;

/// What the plan needs of one Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub revision: String,
    /// Succeeded or Failed: upstream replaces such a Pod under the same name.
    pub finished: bool,
    pub terminating: bool,
    /// Running and Ready.
    pub ready: bool,
    /// Ready for minReadySeconds.
    pub available: bool,
}

impl Member {
    fn healthy(&self) -> bool {
        self.ready && !self.terminating
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub replicas: i32,
    pub start: i32,
    pub ordered: bool,
    /// None for OnDelete.
    pub partition: Option<i32>,
    pub current_revision: String,
    pub update_revision: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create { ordinal: i32, revision: String },
    Delete { name: String },
}

/// The steps to take now, given the Pods by ordinal. In OrderedReady mode the plan stops at
/// the first step or the first Pod it must wait for.
pub fn plan(shape: &Shape, pods: &BTreeMap<i32, Member>) -> Vec<Step> {
    let mut steps = Vec::new();
    let end = shape.start.saturating_add(shape.replicas.max(0));
    let in_range = |o: &i32| *o >= shape.start && *o < end;
    let first_unhealthy = pods
        .range(shape.start..end)
        .chain(pods.iter().rev().filter(|(o, _)| !in_range(o)))
        .find(|(_, m)| !m.healthy())
        .map(|(o, _)| *o);
    for ordinal in shape.start..end {
        match pods.get(&ordinal) {
            None => {
                let revision = revision_for(shape, ordinal);
                steps.push(Step::Create { ordinal, revision });
                if shape.ordered {
                    return steps;
                }
            }
            Some(m) if m.finished && !m.terminating => {
                // Recreated under its name once the deletion is done.
                steps.push(Step::Delete {
                    name: m.name.clone(),
                });
                if shape.ordered {
                    return steps;
                }
            }
            Some(m) if shape.ordered && !(m.healthy() && m.available) => return steps,
            Some(_) => {}
        }
    }
    for (ordinal, m) in pods.iter().rev().filter(|(o, _)| !in_range(o)) {
        if m.terminating {
            if shape.ordered {
                return steps;
            }
            continue;
        }
        if shape.ordered && !m.healthy() && Some(*ordinal) != first_unhealthy {
            return steps;
        }
        steps.push(Step::Delete {
            name: m.name.clone(),
        });
        if shape.ordered {
            return steps;
        }
    }
    let Some(partition) = shape.partition else {
        return steps;
    };
    let floor = shape.start.saturating_add(partition.max(0));
    for ordinal in (floor..end).rev() {
        // A Pod still being made counts as not yet healthy.
        let Some(m) = pods.get(&ordinal) else {
            return steps;
        };
        if m.revision != shape.update_revision && !m.terminating {
            steps.push(Step::Delete {
                name: m.name.clone(),
            });
            return steps;
        }
        if !(m.healthy() && m.available) {
            return steps;
        }
    }
    steps
}

/// Below the partition new Pods keep the current revision; at and above it, the update.
fn revision_for(shape: &Shape, ordinal: i32) -> String {
    match shape.partition {
        Some(p) if ordinal < shape.start.saturating_add(p) => shape.current_revision.clone(),
        _ => shape.update_revision.clone(),
    }
}

/// The counts of a StatefulSet's status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
    /// The revision status.currentRevision should name.
    pub current_revision: String,
}

pub fn counts(shape: &Shape, pods: &BTreeMap<i32, Member>) -> Counts {
    let mut c = Counts {
        current_revision: shape.current_revision.clone(),
        ..Default::default()
    };
    for m in pods.values() {
        c.replicas += 1;
        c.ready += i32::from(m.ready);
        c.available += i32::from(m.available);
        if !m.terminating {
            c.current += i32::from(m.revision == shape.current_revision);
            c.updated += i32::from(m.revision == shape.update_revision);
        }
    }
    // A rolling update is complete once every Pod runs the update and is ready.
    let rolled = shape.partition.is_some() && c.updated == c.replicas && c.ready == c.replicas;
    if rolled {
        c.current_revision = shape.update_revision.clone();
        c.current = c.updated;
    }
    c
}

/// The ordinal of `<set>-<ordinal>`, if `pod` is named so.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.starts_with('+') || (rest.len() > 1 && rest.starts_with('0')) {
        return None;
    }
    rest.parse::<i32>().ok().filter(|o| *o >= 0)
}

#[cfg(test)]
mod tests;
