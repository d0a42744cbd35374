//! The lifecycle state machines of containers and instances.
//!
//! A container moves Waiting → Running → Terminated, and back to Waiting (CrashLoopBackOff)
//! when its restart policy runs it again. An instance moves Creating → Initializing →
//! Running → Succeeded | Failed, and Stopping → Stopped when asked. Transitions are
//! checked: the shim and the engine advance state only through these functions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::restart::RestartPolicy;

/// How a container run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Termination {
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// Completed, Error, OOMKilled, StartError or Unknown, as Kubernetes spells them.
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "state",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ContainerState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        pid: u32,
        started_at: DateTime<Utc>,
    },
    Terminated(Termination),
}

impl ContainerState {
    pub fn creating() -> Self {
        ContainerState::Waiting {
            reason: "ContainerCreating".into(),
            message: None,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, ContainerState::Running { .. })
    }

    pub fn termination(&self) -> Option<&Termination> {
        match self {
            ContainerState::Terminated(t) => Some(t),
            _ => None,
        }
    }
}

/// What happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEvent {
    Started { pid: u32, at: DateTime<Utc> },
    Exited(Termination),
    BackingOff { message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container cannot go from {from} on {event}")]
pub struct TransitionError {
    pub from: &'static str,
    pub event: &'static str,
}

impl ContainerState {
    fn name(&self) -> &'static str {
        match self {
            ContainerState::Waiting { .. } => "waiting",
            ContainerState::Running { .. } => "running",
            ContainerState::Terminated(_) => "terminated",
        }
    }

    /// The container's state after `event`.
    pub fn apply(&self, event: ContainerEvent) -> Result<ContainerState, TransitionError> {
        use ContainerEvent as E;
        use ContainerState as S;
        match (self, event) {
            (S::Waiting { .. }, E::Started { pid, at }) => Ok(S::Running {
                pid,
                started_at: at,
            }),
            // A start that failed goes straight from Waiting to Terminated (StartError).
            (S::Waiting { .. } | S::Running { .. }, E::Exited(t)) => Ok(S::Terminated(t)),
            (S::Terminated(_), E::BackingOff { message }) => Ok(S::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(message),
            }),
            (from, e) => Err(TransitionError {
                from: from.name(),
                event: match e {
                    E::Started { .. } => "started",
                    E::Exited(_) => "exited",
                    E::BackingOff { .. } => "backing off",
                },
            }),
        }
    }
}

/// One container's status as the shim records it in `status.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    pub state: ContainerState,
    pub last_state: Option<Termination>,
    pub restart_count: u32,
}

impl ContainerStatus {
    pub fn new(name: &str) -> Self {
        ContainerStatus {
            name: name.to_string(),
            state: ContainerState::creating(),
            last_state: None,
            restart_count: 0,
        }
    }
}

/// The phase of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstancePhase {
    /// Pulling images, attaching the network, preparing root filesystems.
    Creating,
    /// Init containers are running, in order.
    Initializing,
    Running,
    /// Every container exited and none will restart: all with 0.
    Succeeded,
    /// Every container exited and none will restart, one or more with an error; or setup failed.
    Failed,
    /// Stop was requested; containers are being signalled.
    Stopping,
    Stopped,
}

impl InstancePhase {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            InstancePhase::Succeeded | InstancePhase::Failed | InstancePhase::Stopped
        )
    }

    /// Checks an explicit move to `to`.
    pub fn transition(self, to: InstancePhase) -> Result<InstancePhase, PhaseError> {
        use InstancePhase::*;
        let allowed = match self {
            Creating => matches!(to, Initializing | Running | Failed | Stopping),
            Initializing => matches!(to, Running | Failed | Stopping),
            Running => matches!(to, Succeeded | Failed | Stopping),
            Succeeded | Failed => matches!(to, Stopping | Stopped),
            Stopping => matches!(to, Stopped),
            Stopped => false,
        };
        if allowed || self == to {
            Ok(to)
        } else {
            Err(PhaseError { from: self, to })
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instance cannot go from {from:?} to {to:?}")]
pub struct PhaseError {
    pub from: InstancePhase,
    pub to: InstancePhase,
}

/// The phase the containers' statuses imply while the instance is not being stopped.
pub fn derive_phase(
    policy: RestartPolicy,
    init: &[ContainerStatus],
    main: &[ContainerStatus],
    supervisor_alive: bool,
) -> InstancePhase {
    let init_failed = init
        .iter()
        .any(|c| c.state.termination().is_some_and(|t| t.exit_code != 0));
    // A failed init container ends the instance only when nothing will retry it.
    if init_failed && (!supervisor_alive || policy == RestartPolicy::Never) {
        return InstancePhase::Failed;
    }
    let inits_done = init
        .iter()
        .all(|c| c.state.termination().is_some_and(|t| t.exit_code == 0));
    if !inits_done {
        return InstancePhase::Initializing;
    }
    let all_done = !main.is_empty()
        && main.iter().all(|c| match c.state.termination() {
            Some(t) => !supervisor_alive || !policy.restarts(t.exit_code),
            None => false,
        });
    if !all_done {
        return InstancePhase::Running;
    }
    if main
        .iter()
        .all(|c| c.state.termination().is_some_and(|t| t.exit_code == 0))
    {
        InstancePhase::Succeeded
    } else {
        InstancePhase::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(code: i32) -> Termination {
        Termination {
            exit_code: code,
            signal: None,
            reason: "Completed".into(),
            message: None,
            started_at: None,
            finished_at: Utc::now(),
        }
    }

    fn status(state: ContainerState) -> ContainerStatus {
        ContainerStatus {
            state,
            ..ContainerStatus::new("c")
        }
    }

    #[test]
    fn container_runs_exits_and_backs_off_before_the_next_run() {
        let s = ContainerState::creating();
        let s = s
            .apply(ContainerEvent::Started {
                pid: 9,
                at: Utc::now(),
            })
            .expect("start");
        let s = s.apply(ContainerEvent::Exited(term(1))).expect("exit");
        let s = s
            .apply(ContainerEvent::BackingOff {
                message: "back-off 10s".into(),
            })
            .expect("backoff");
        assert!(
            matches!(s, ContainerState::Waiting { ref reason, .. } if reason == "CrashLoopBackOff")
        );
    }

    #[test]
    fn a_running_container_cannot_start_again() {
        let s = ContainerState::Running {
            pid: 1,
            started_at: Utc::now(),
        };
        assert!(s
            .apply(ContainerEvent::Started {
                pid: 2,
                at: Utc::now()
            })
            .is_err());
    }

    #[test]
    fn a_stopped_instance_stays_stopped() {
        assert!(InstancePhase::Stopped
            .transition(InstancePhase::Running)
            .is_err());
        assert_eq!(
            InstancePhase::Running.transition(InstancePhase::Stopping),
            Ok(InstancePhase::Stopping)
        );
    }

    #[test]
    fn phase_follows_init_then_main_containers() {
        let running = status(ContainerState::Running {
            pid: 1,
            started_at: Utc::now(),
        });
        let ok = status(ContainerState::Terminated(term(0)));
        let bad = status(ContainerState::Terminated(term(2)));
        let p = RestartPolicy::Never;
        assert_eq!(
            derive_phase(p, std::slice::from_ref(&running), &[], true),
            InstancePhase::Initializing
        );
        assert_eq!(
            derive_phase(
                p,
                std::slice::from_ref(&ok),
                std::slice::from_ref(&running),
                true
            ),
            InstancePhase::Running
        );
        assert_eq!(
            derive_phase(
                p,
                std::slice::from_ref(&ok),
                std::slice::from_ref(&ok),
                false
            ),
            InstancePhase::Succeeded
        );
        assert_eq!(
            derive_phase(p, std::slice::from_ref(&bad), &[], false),
            InstancePhase::Failed
        );
        // Under Always a failed container is about to restart: still running.
        assert_eq!(
            derive_phase(RestartPolicy::Always, &[], &[bad], true),
            InstancePhase::Running
        );
    }
}
