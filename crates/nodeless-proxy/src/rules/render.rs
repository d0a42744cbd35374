//! Rulesets as `nft -f` scripts. Each script is one transaction: the kernel applies all of it
//! or nothing, so packets never see a half-written table.

use std::fmt::Write;

use super::{
    RulesConfig, Ruleset, CLUSTER_IPS_SET, MARK_CHAIN, NO_ENDPOINT_MAP, REJECT_CHAIN,
    SERVICES_CHAIN, SERVICE_IPS_MAP,
};

/// Replaces the table with `rs` whatever it held (the first sync of a process): `add` then
/// `delete` so the delete cannot fail on a missing table.
pub fn render_full(rs: &Ruleset) -> String {
    let t = &rs.config.table;
    let mut out = format!("add table ip {t}\ndelete table ip {t}\n");
    base(&mut out, &rs.config);
    for (name, timeout) in &rs.affinity_sets {
        add_set(&mut out, t, name, *timeout);
    }
    // Every chain exists before any rule jumps to one.
    for name in rs.chains.keys() {
        line(&mut out, format_args!("add chain ip {t} {name}"));
    }
    for (name, rules) in &rs.chains {
        for rule in rules {
            line(&mut out, format_args!("add rule ip {t} {name} {rule}"));
        }
    }
    elements(&mut out, rs);
    out
}

/// Turns the table from `prev` (as last applied) into `next` in place, touching only what
/// differs: one endpoint changing among a thousand Services is a handful of lines, not a
/// rewrite of every chain. It also keeps the affinity sets' entries of endpoints that stay,
/// so clients keep their endpoint across changes elsewhere in the Service.
pub fn render_update(prev: &Ruleset, next: &Ruleset) -> String {
    let t = &next.config.table;
    let mut out = String::new();
    // Sets whose timeout changes are recreated, so chains naming them are rewritten too.
    let recreated: Vec<&String> = prev
        .affinity_sets
        .iter()
        .filter(|(name, timeout)| next.affinity_sets.get(*name).is_some_and(|t| t != *timeout))
        .map(|(name, _)| name)
        .collect();
    let names_recreated = |rules: &[String]| {
        recreated
            .iter()
            .any(|set| rules.iter().any(|r| r.contains(&format!("@{set} "))))
    };
    let rewritten: Vec<&String> = next
        .chains
        .iter()
        .filter(|(name, rules)| {
            prev.chains.get(*name).is_some_and(|old| old != *rules) || names_recreated(rules)
        })
        .map(|(name, _)| name)
        .collect();
    let gone: Vec<&String> = prev
        .chains
        .keys()
        .filter(|name| !next.chains.contains_key(*name))
        .collect();

    // References go first (map elements, then chain contents), so chains and sets can be
    // deleted further down the same transaction.
    for (map, old, new) in [
        (SERVICE_IPS_MAP, &prev.service_ips, &next.service_ips),
        (NO_ENDPOINT_MAP, &prev.no_endpoint, &next.no_endpoint),
    ] {
        for (key, verdict) in old {
            if new.get(key) != Some(verdict) {
                line(
                    &mut out,
                    format_args!("delete element ip {t} {map} {{ {key} }}"),
                );
            }
        }
    }
    for ip in prev.cluster_ips.difference(&next.cluster_ips) {
        line(
            &mut out,
            format_args!("delete element ip {t} {CLUSTER_IPS_SET} {{ {ip} }}"),
        );
    }
    for name in rewritten.iter().chain(&gone) {
        line(&mut out, format_args!("flush chain ip {t} {name}"));
    }
    for name in &gone {
        line(&mut out, format_args!("delete chain ip {t} {name}"));
    }
    for (name, timeout) in &prev.affinity_sets {
        if next.affinity_sets.get(name) != Some(timeout) {
            line(&mut out, format_args!("delete set ip {t} {name}"));
        }
    }
    for (name, timeout) in &next.affinity_sets {
        if prev.affinity_sets.get(name) != Some(timeout) {
            add_set(&mut out, t, name, *timeout);
        }
    }
    let added = || next.chains.keys().filter(|n| !prev.chains.contains_key(*n));
    for name in added() {
        line(&mut out, format_args!("add chain ip {t} {name}"));
    }
    for (name, rules) in &next.chains {
        if !prev.chains.contains_key(name) || rewritten.contains(&name) {
            for rule in rules {
                line(&mut out, format_args!("add rule ip {t} {name} {rule}"));
            }
        }
    }
    let added_ips: Vec<String> = next
        .cluster_ips
        .difference(&prev.cluster_ips)
        .map(ToString::to_string)
        .collect();
    if !added_ips.is_empty() {
        let ips = added_ips.join(" , ");
        line(
            &mut out,
            format_args!("add element ip {t} {CLUSTER_IPS_SET} {{ {ips} }}"),
        );
    }
    for (map, old, new) in [
        (SERVICE_IPS_MAP, &prev.service_ips, &next.service_ips),
        (NO_ENDPOINT_MAP, &prev.no_endpoint, &next.no_endpoint),
    ] {
        for (key, verdict) in new {
            if old.get(key) != Some(verdict) {
                line(
                    &mut out,
                    format_args!("add element ip {t} {map} {{ {key} : {verdict} }}"),
                );
            }
        }
    }
    out
}

/// Removes the table (and with it every rule of nodeless's data path).
pub fn render_delete(table: &str) -> String {
    format!("add table ip {table}\ndelete table ip {table}\n")
}

/// The chains hooked into netfilter and the fixed helpers, as in the module docs.
fn base(out: &mut String, config: &RulesConfig) {
    let t = &config.table;
    let mark = format!("{:#x}", config.masquerade_mark);
    let ports_key = "ipv4_addr . inet_proto . inet_service";
    let lines = [
        format!("add table ip {t} {{ comment \"nodeless ClusterIP data path\" ; }}"),
        format!("add set ip {t} {CLUSTER_IPS_SET} {{ type ipv4_addr ; }}"),
        format!("add map ip {t} {SERVICE_IPS_MAP} {{ type {ports_key} : verdict ; }}"),
        format!("add map ip {t} {NO_ENDPOINT_MAP} {{ type {ports_key} : verdict ; }}"),
        format!("add chain ip {t} nat-prerouting {{ type nat hook prerouting priority -100 ; }}"),
        format!("add chain ip {t} nat-output {{ type nat hook output priority -100 ; }}"),
        format!("add chain ip {t} nat-postrouting {{ type nat hook postrouting priority 100 ; }}"),
        format!("add chain ip {t} filter-forward {{ type filter hook forward priority 0 ; }}"),
        format!("add chain ip {t} filter-output {{ type filter hook output priority 0 ; }}"),
        format!("add chain ip {t} {SERVICES_CHAIN}"),
        format!("add chain ip {t} service-endpoints-check"),
        format!("add chain ip {t} cluster-ips-check"),
        format!("add chain ip {t} {MARK_CHAIN}"),
        format!("add chain ip {t} masquerading"),
        format!("add chain ip {t} {REJECT_CHAIN}"),
        format!("add rule ip {t} nat-prerouting jump {SERVICES_CHAIN}"),
        format!("add rule ip {t} nat-output jump {SERVICES_CHAIN}"),
        format!("add rule ip {t} nat-postrouting jump masquerading"),
        format!("add rule ip {t} filter-forward ct state new jump service-endpoints-check"),
        format!("add rule ip {t} filter-forward ct state new jump cluster-ips-check"),
        format!("add rule ip {t} filter-output ct state new jump service-endpoints-check"),
        format!("add rule ip {t} filter-output ct state new jump cluster-ips-check"),
        format!(
            "add rule ip {t} {SERVICES_CHAIN} ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS_MAP}"
        ),
        format!(
            "add rule ip {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_MAP}"
        ),
        // Reached only by packets still addressed to a ClusterIP after DNAT: a port no
        // Service has.
        format!("add rule ip {t} cluster-ips-check ip daddr @{CLUSTER_IPS_SET} reject"),
        format!("add rule ip {t} {MARK_CHAIN} mark set mark or {mark}"),
        format!("add rule ip {t} masquerading mark and {mark} == 0 return"),
        // The bit is cleared so a packet routed on (a later netfilter pass) is not
        // masqueraded twice.
        format!("add rule ip {t} masquerading mark set mark xor {mark}"),
        format!("add rule ip {t} masquerading masquerade fully-random"),
        format!("add rule ip {t} {REJECT_CHAIN} meta l4proto tcp reject with tcp reset"),
        format!("add rule ip {t} {REJECT_CHAIN} reject"),
    ];
    for l in lines {
        line(out, format_args!("{l}"));
    }
    if let Some(cidr) = config.service_cidr {
        line(
            out,
            format_args!(
                "add rule ip {t} cluster-ips-check ip daddr {} drop",
                cidr.trunc()
            ),
        );
    }
}

fn add_set(out: &mut String, table: &str, name: &str, timeout: u32) {
    line(
        out,
        format_args!(
            "add set ip {table} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}"
        ),
    );
}

fn elements(out: &mut String, rs: &Ruleset) {
    let t = &rs.config.table;
    if !rs.cluster_ips.is_empty() {
        let ips: Vec<String> = rs.cluster_ips.iter().map(ToString::to_string).collect();
        line(
            out,
            format_args!(
                "add element ip {t} {CLUSTER_IPS_SET} {{ {} }}",
                ips.join(" , ")
            ),
        );
    }
    for (map, elements) in [
        (SERVICE_IPS_MAP, &rs.service_ips),
        (NO_ENDPOINT_MAP, &rs.no_endpoint),
    ] {
        for (key, verdict) in elements {
            line(
                out,
                format_args!("add element ip {t} {map} {{ {key} : {verdict} }}"),
            );
        }
    }
}

fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    // Writing to a String cannot fail.
    let _ = out.write_fmt(args);
    out.push('\n');
}
