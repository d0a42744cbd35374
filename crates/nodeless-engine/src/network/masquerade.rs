//! Egress masquerading for a whole instance subnet: one iptables chain per network, jumped to
//! from nat POSTROUTING for traffic from the subnet, set up once when the network opens.
//!
//! The bridge plugin's `ipMasq` does the same per instance, at the cost of iptables runs on
//! every attach and detach (tens of milliseconds each), and it needs the namespace alive on DEL
//! to find its rules. One subnet-wide rule behaves the same and costs nothing per instance.

use std::fmt;
use std::process::Command;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    #[error("run iptables {args}: {source} (apt-get install iptables)")]
    Spawn {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("iptables {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
}

/// Runs `iptables -w -t TABLE ARGS...`; returns stdout, or the failure's stderr as `Ok(Err)`.
pub trait Iptables: Send + Sync + fmt::Debug {
    fn run(&self, table: &str, args: &[String]) -> Result<Result<String, String>, IptablesError>;
}

#[derive(Debug, Clone, Copy)]
pub struct HostIptables;

impl Iptables for HostIptables {
    fn run(&self, table: &str, args: &[String]) -> Result<Result<String, String>, IptablesError> {
        let out = Command::new("iptables")
            .args(["-w", "-t", table])
            .args(args)
            .output()
            .map_err(|source| IptablesError::Spawn {
                args: args.join(" "),
                source,
            })?;
        Ok(if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        })
    }
}

/// `NODELESS-MASQ-<hash of the network name>`: unique per network, under iptables' 28 bytes.
pub fn chain_name(network: &str) -> String {
    let hash = Sha256::digest(network.as_bytes());
    format!(
        "NODELESS-MASQ-{:02X}{:02X}{:02X}{:02X}",
        hash[0], hash[1], hash[2], hash[3]
    )
}

/// Makes the nat table masquerade traffic from `subnet` to anywhere outside it (and outside
/// multicast) when `enabled`, and removes nodeless's rules for `network` when not. Idempotent;
/// a changed subnet replaces the old rules. When the table is already as wanted (every start
/// but the first) it costs one `iptables -S`.
pub fn apply(
    nat: &dyn Iptables,
    network: &str,
    subnet: Ipv4Net,
    enabled: bool,
) -> Result<(), IptablesError> {
    let chain = chain_name(network);
    let table = NatListing::parse(&must(nat, &strings(&["-S"]))?, &chain);
    let wanted = jump_rule(network, subnet, &chain);
    let wanted_chain = chain_rules(subnet);
    if enabled && table.jumps == [wanted.clone()] && table.chain_rules == wanted_chain {
        return Ok(());
    }
    if !enabled && table.jumps.is_empty() && !table.chain_exists {
        return Ok(());
    }
    for rule in table.jumps.iter().filter(|r| !enabled || **r != wanted) {
        let mut args = strings(&["-D", "POSTROUTING"]);
        args.extend(rule.iter().cloned());
        must(nat, &args)?;
    }
    if !enabled {
        must(nat, &strings(&["-F", &chain]))?;
        must(nat, &strings(&["-X", &chain]))?;
        return Ok(());
    }
    let verb = if table.chain_exists { "-F" } else { "-N" }; // refill it for this subnet
    must(nat, &strings(&[verb, &chain]))?;
    for rule in wanted_chain {
        let mut args = strings(&["-A", &chain]);
        args.extend(rule);
        must(nat, &args)?;
    }
    if !table.jumps.contains(&wanted) {
        let mut args = strings(&["-A", "POSTROUTING"]);
        args.extend(wanted);
        must(nat, &args)?;
    }
    Ok(())
}

/// What `iptables -t nat -S` says about one network's rules.
struct NatListing {
    /// POSTROUTING rules jumping to the chain, as argument lists after `-A POSTROUTING`.
    jumps: Vec<Vec<String>>,
    chain_exists: bool,
    /// The chain's rules, as argument lists after `-A <chain>`.
    chain_rules: Vec<Vec<String>>,
}

impl NatListing {
    fn parse(listing: &str, chain: &str) -> Self {
        let words = |rule: &str| {
            rule.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let chain_prefix = format!("-A {chain} ");
        let mut table = NatListing {
            jumps: Vec::new(),
            chain_exists: false,
            chain_rules: Vec::new(),
        };
        for line in listing.lines() {
            if let Some(rule) = line.strip_prefix("-A POSTROUTING ") {
                let rule = words(rule);
                if rule.windows(2).any(|w| w[0] == "-j" && w[1] == chain) {
                    table.jumps.push(rule);
                }
            } else if let Some(rule) = line.strip_prefix(&chain_prefix) {
                table.chain_rules.push(words(rule));
            } else if line.strip_prefix("-N ") == Some(chain) {
                table.chain_exists = true;
            }
        }
        table
    }
}

/// The chain's rules: leave the subnet and multicast alone, masquerade the rest.
fn chain_rules(subnet: Ipv4Net) -> Vec<Vec<String>> {
    let subnet = subnet.trunc().to_string();
    vec![
        strings(&["-d", &subnet, "-j", "RETURN"]),
        strings(&["-d", "224.0.0.0/4", "-j", "RETURN"]),
        strings(&["-j", "MASQUERADE"]),
    ]
}

/// The POSTROUTING rule (after `-A POSTROUTING`) that sends the subnet's traffic to `chain`,
/// spelled as `iptables -S` prints it.
fn jump_rule(network: &str, subnet: Ipv4Net, chain: &str) -> Vec<String> {
    // No spaces: `iptables -S` would quote the comment, and quotes do not survive an argv.
    let comment = format!("nodeless-network-{network}");
    strings(&[
        "-s",
        &subnet.trunc().to_string(),
        "-m",
        "comment",
        "--comment",
        &comment,
        "-j",
        chain,
    ])
}

fn must(nat: &dyn Iptables, args: &[String]) -> Result<String, IptablesError> {
    must_in(nat, "nat", args)
}

/// Runs a command that must succeed.
pub(super) fn must_in(
    ipt: &dyn Iptables,
    table: &str,
    args: &[String],
) -> Result<String, IptablesError> {
    ipt.run(table, args)?
        .map_err(|stderr| IptablesError::Failed {
            args: format!("-t {table} {}", args.join(" ")),
            stderr,
        })
}

pub(super) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A nat table with just POSTROUTING and chains, answering like iptables.
    #[derive(Debug, Default)]
    struct FakeNat {
        postrouting: Mutex<Vec<String>>,
        chains: Mutex<std::collections::BTreeMap<String, Vec<String>>>,
        calls: Mutex<usize>,
    }

    impl Iptables for FakeNat {
        fn run(
            &self,
            table: &str,
            args: &[String],
        ) -> Result<Result<String, String>, IptablesError> {
            assert_eq!(table, "nat");
            *self.calls.lock().expect("lock") += 1;
            let mut post = self.postrouting.lock().expect("lock");
            let mut chains = self.chains.lock().expect("lock");
            if args == ["-S"] {
                let mut out = String::from("-P POSTROUTING ACCEPT\n");
                out.extend(chains.keys().map(|c| format!("-N {c}\n")));
                out.extend(post.iter().map(|r| format!("-A POSTROUTING {r}\n")));
                for (c, rules) in chains.iter() {
                    out.extend(rules.iter().map(|r| format!("-A {c} {r}\n")));
                }
                return Ok(Ok(out));
            }
            let rest = args[2..].join(" ");
            let done = Ok(String::new());
            let no_chain = Err("No chain/target/match by that name.".to_string());
            Ok(match (args[0].as_str(), args[1].as_str()) {
                ("-A", "POSTROUTING") => {
                    post.push(rest);
                    done
                }
                ("-D", "POSTROUTING") => match post.iter().position(|r| *r == rest) {
                    Some(i) => {
                        post.remove(i);
                        done
                    }
                    None => Err("Bad rule".into()),
                },
                ("-N", c) if chains.contains_key(c) => Err("Chain already exists.".into()),
                ("-N", c) => {
                    chains.insert(c.into(), vec![]);
                    done
                }
                ("-F", c) => match chains.get_mut(c) {
                    Some(rules) => {
                        rules.clear();
                        done
                    }
                    None => no_chain,
                },
                ("-X", c) => chains.remove(c).map_or(no_chain, |_| done),
                ("-A", c) => match chains.get_mut(c) {
                    Some(rules) => {
                        rules.push(rest);
                        done
                    }
                    None => no_chain,
                },
                _ => Err(format!("unexpected {args:?}")),
            })
        }
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("subnet")
    }

    #[test]
    fn masquerade_adds_one_jump_and_a_chain_that_skips_the_subnet() {
        let nat = FakeNat::default();
        apply(&nat, "nodeless", net("10.88.0.0/16"), true).expect("apply");
        *nat.calls.lock().expect("lock") = 0;
        apply(&nat, "nodeless", net("10.88.0.0/16"), true).expect("apply again");
        assert_eq!(
            *nat.calls.lock().expect("lock"),
            1,
            "an unchanged table costs one listing"
        );
        let chain = chain_name("nodeless");
        assert_eq!(
            *nat.postrouting.lock().expect("lock"),
            vec![format!(
                "-s 10.88.0.0/16 -m comment --comment nodeless-network-nodeless -j {chain}"
            )]
        );
        assert_eq!(
            nat.chains.lock().expect("lock")[&chain],
            vec![
                "-d 10.88.0.0/16 -j RETURN",
                "-d 224.0.0.0/4 -j RETURN",
                "-j MASQUERADE"
            ]
        );
    }

    #[test]
    fn a_new_subnet_replaces_the_old_rules() {
        let nat = FakeNat::default();
        apply(&nat, "nodeless", net("10.88.0.0/16"), true).expect("apply");
        apply(&nat, "nodeless", net("10.90.0.0/16"), true).expect("apply");
        let post = nat.postrouting.lock().expect("lock").clone();
        assert_eq!(post.len(), 1);
        assert!(post[0].starts_with("-s 10.90.0.0/16"));
    }

    #[test]
    fn disabling_removes_jump_and_chain_and_is_idempotent() {
        let nat = FakeNat::default();
        nat.postrouting
            .lock()
            .expect("lock")
            .push("-j SOMEONE-ELSE".into());
        apply(&nat, "nodeless", net("10.88.0.0/16"), true).expect("apply");
        apply(&nat, "nodeless", net("10.88.0.0/16"), false).expect("disable");
        apply(&nat, "nodeless", net("10.88.0.0/16"), false).expect("disable again");
        assert_eq!(
            *nat.postrouting.lock().expect("lock"),
            vec!["-j SOMEONE-ELSE"]
        );
        assert!(nat.chains.lock().expect("lock").is_empty());
    }

    #[test]
    fn chain_names_fit_iptables_and_differ_per_network() {
        assert!(chain_name("a-very-long-network-name-indeed").len() <= 28);
        assert_ne!(chain_name("a"), chain_name("b"));
    }
}
