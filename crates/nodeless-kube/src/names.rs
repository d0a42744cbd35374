//! Well-known names shared by the scheduler, the host agent and the API server.

/// The instance spec the scheduler chose for a Pod, e.g. `2-4Gi` (see `nodeless-core`'s
/// `instance_spec`). Set at binding; the agent sizes the instance from it.
pub const INSTANCE_SPEC_ANNOTATION: &str = "nodeless.dev/instance-spec";

/// The host (a `Host` object's name) a Pod's instance was placed on. Set at binding; read by
/// the host agent (which instances are mine) and the API server (where to proxy logs/exec).
pub const HOST_ANNOTATION: &str = "nodeless.dev/host";

/// `on-demand` or `spot`: the capacity the scheduler placed the instance on. Set at binding.
pub const CAPACITY_TYPE_ANNOTATION: &str = "nodeless.dev/capacity-type";
pub const CAPACITY_ON_DEMAND: &str = "on-demand";
pub const CAPACITY_SPOT: &str = "spot";

/// The instance's on-demand price per hour (decimal, market currency), locked at binding; a
/// spot instance pays it times the spot ratio of each second.
pub const HOURLY_PRICE_ANNOTATION: &str = "nodeless.dev/hourly-price";

/// A spot instance's protection ends at this RFC 3339 time (binding time + protection period).
pub const SPOT_PROTECTED_UNTIL_ANNOTATION: &str = "nodeless.dev/spot-protected-until";

/// Set by the scheduler when it decides to reclaim a spot instance: the RFC 3339 time the
/// agent releases it (the decision plus the notice period).
pub const SPOT_RELEASE_AT_ANNOTATION: &str = "nodeless.dev/spot-release-at";

/// What the Pod has cost so far, kept current by the scheduler's meter for `kubectl describe`.
pub const COST_ANNOTATION: &str = "nodeless.dev/cost";

/// The Pod condition (and event reason) that warns of a spot release, as on ECI.
pub const SPOT_TO_BE_RELEASED: &str = "SpotToBeReleased";
/// The reason of a Pod whose spot instance was released, as on ECI.
pub const BID_FAILED: &str = "BidFailed";

/// The one node users see. Every Pod is bound to it; the hosts behind it stay hidden.
pub const VIRTUAL_NODE: &str = "nodeless";

/// Namespace of the virtual node's heartbeat Lease, as for every node.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The RuntimeClass whose Pods run under gVisor (`runsc`).
pub const GVISOR_RUNTIME_CLASS: &str = "gvisor";
/// The handler named by that RuntimeClass.
pub const GVISOR_HANDLER: &str = "runsc";

/// Pods this scheduler takes: `spec.schedulerName` empty, `default-scheduler`, or this.
pub const SCHEDULER_NAME: &str = "nodeless-scheduler";
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Where the token lives that the API server presents to a host agent's node endpoint:
/// Secret `kube-system/<HOST_TOKEN_SECRET_PREFIX><host>`, key [`HOST_TOKEN_KEY`].
pub const HOST_TOKEN_SECRET_PREFIX: &str = "nodeless-host-";
pub const HOST_TOKEN_KEY: &str = "token";
/// The key of the node endpoint's certificate (PEM) in the same Secret; the API server pins it.
pub const HOST_CERT_KEY: &str = "tls.crt";
pub const SYSTEM_NAMESPACE: &str = "kube-system";

/// Whether a Pod with this `spec.schedulerName` is ours to schedule.
pub fn is_our_scheduler(name: Option<&str>) -> bool {
    matches!(
        name,
        None | Some("") | Some(DEFAULT_SCHEDULER_NAME) | Some(SCHEDULER_NAME)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scheduler_name_is_ours() {
        assert!(is_our_scheduler(None));
        assert!(is_our_scheduler(Some("default-scheduler")));
        assert!(!is_our_scheduler(Some("volcano")));
    }
}
