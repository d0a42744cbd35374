//! Letting instance traffic through the host's filter FORWARD chain. Hosts running Docker set
//! its policy to DROP, and with `br_netfilter` loaded even traffic between two instances on
//! the bridge passes FORWARD: two ACCEPT rules for the bridge, added once when the network
//! opens (the CNI `firewall` plugin's job, without running it per instance).

use super::masquerade::{must_in, strings, Iptables, IptablesError};

/// The two rules (after `-A FORWARD`), spelled as `iptables -S` prints them.
fn rules(network: &str, bridge: &str) -> [Vec<String>; 2] {
    let comment = format!("nodeless-network-{network}");
    ["-i", "-o"].map(|dir| {
        strings(&[
            dir,
            bridge,
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            "ACCEPT",
        ])
    })
}

/// Adds (`enabled`) or removes the rules; one `iptables -S FORWARD` when nothing changes.
pub fn apply(
    ipt: &dyn Iptables,
    network: &str,
    bridge: &str,
    enabled: bool,
) -> Result<(), IptablesError> {
    let listing = must_in(ipt, "filter", &strings(&["-S", "FORWARD"]))?;
    let present: Vec<Vec<String>> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("-A FORWARD "))
        .map(|r| r.split_whitespace().map(str::to_string).collect())
        .collect();
    for rule in rules(network, bridge) {
        let verb = match (enabled, present.contains(&rule)) {
            (true, false) => "-A",
            (false, true) => "-D",
            _ => continue,
        };
        let mut args = strings(&[verb, "FORWARD"]);
        args.extend(rule);
        must_in(ipt, "filter", &args)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    struct FakeFilter {
        forward: Mutex<Vec<String>>,
        calls: Mutex<Vec<String>>,
    }

    impl Iptables for FakeFilter {
        fn run(
            &self,
            table: &str,
            args: &[String],
        ) -> Result<Result<String, String>, IptablesError> {
            assert_eq!(table, "filter");
            self.calls.lock().expect("lock").push(args.join(" "));
            let mut forward = self.forward.lock().expect("lock");
            let rest = args[2..].join(" ");
            Ok(match args[0].as_str() {
                "-S" => Ok(std::iter::once("-P FORWARD DROP".to_string())
                    .chain(forward.iter().map(|r| format!("-A FORWARD {r}")))
                    .collect::<Vec<_>>()
                    .join("\n")),
                "-A" => {
                    forward.push(rest);
                    Ok(String::new())
                }
                "-D" => {
                    forward.retain(|r| *r != rest);
                    Ok(String::new())
                }
                other => Err(format!("unexpected {other}")),
            })
        }
    }

    #[test]
    fn the_bridge_is_accepted_both_ways_once_and_removed_on_request() {
        let ipt = FakeFilter::default();
        ipt.forward
            .lock()
            .expect("lock")
            .push("-j DOCKER-USER".into());
        apply(&ipt, "nodeless", "nodeless0", true).expect("apply");
        apply(&ipt, "nodeless", "nodeless0", true).expect("apply again");
        assert_eq!(
            *ipt.forward.lock().expect("lock"),
            vec![
                "-j DOCKER-USER",
                "-i nodeless0 -m comment --comment nodeless-network-nodeless -j ACCEPT",
                "-o nodeless0 -m comment --comment nodeless-network-nodeless -j ACCEPT",
            ]
        );
        assert_eq!(
            ipt.calls.lock().expect("lock").len(),
            4,
            "the second apply only lists"
        );
        apply(&ipt, "nodeless", "nodeless0", false).expect("remove");
        assert_eq!(*ipt.forward.lock().expect("lock"), vec!["-j DOCKER-USER"]);
    }
}
