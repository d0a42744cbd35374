//! Host port mappings (`hostPort`, `--publish`), handed to the portmap plugin as its
//! `portMappings` capability.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default)]
    pub protocol: Protocol,
    /// `None`: every host address.
    #[serde(default)]
    pub host_ip: Option<IpAddr>,
}

impl PortMapping {
    pub fn tcp(host_port: u16, container_port: u16) -> Self {
        PortMapping {
            host_port,
            container_port,
            protocol: Protocol::Tcp,
            host_ip: None,
        }
    }
}

/// Port 0 on either side is refused up front: portmap would fail with a less clear message.
pub fn validate(ports: &[PortMapping]) -> Result<(), String> {
    match ports
        .iter()
        .find(|p| p.host_port == 0 || p.container_port == 0)
    {
        Some(p) => Err(format!(
            "port mapping {}:{} has a zero port",
            p.host_port, p.container_port
        )),
        None => Ok(()),
    }
}

/// The runtime arguments of the chain: `{"portMappings": [...]}` as the CNI conventions spell
/// them.
pub fn runtime_config(ports: &[PortMapping]) -> Value {
    let mappings: Vec<Value> = ports
        .iter()
        .map(|p| {
            let mut m = json!({
                "hostPort": p.host_port,
                "containerPort": p.container_port,
                "protocol": p.protocol.as_str(),
            });
            if let Some(ip) = p.host_ip {
                m["hostIP"] = json!(ip.to_string());
            }
            m
        })
        .collect();
    json!({ "portMappings": mappings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_mappings_use_the_cni_convention_names() {
        let mut udp = PortMapping::tcp(5353, 53);
        udp.protocol = Protocol::Udp;
        udp.host_ip = Some("127.0.0.1".parse().expect("ip"));
        let rc = runtime_config(&[PortMapping::tcp(8080, 80), udp]);
        assert_eq!(
            rc["portMappings"][0],
            json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"})
        );
        assert_eq!(rc["portMappings"][1]["protocol"], "udp");
        assert_eq!(rc["portMappings"][1]["hostIP"], "127.0.0.1");
    }

    #[test]
    fn zero_ports_are_refused() {
        assert!(validate(&[PortMapping::tcp(0, 80)]).is_err());
        assert!(validate(&[PortMapping::tcp(8080, 80)]).is_ok());
    }
}
