//! services/proxy: HTTP to one ready endpoint of a Service's port (see `direct.rs`), chosen
//! as upstream chooses it: the port by name (a number names the Service port with that
//! number; none, the unnamed port), then a random subset of the Service's Endpoints that has
//! the port and a random ready address in it.

use super::direct;
use super::Peer;
use http::{Request, Response};
use hyper::body::Incoming;
use nodeless_core::StatusError;
use serde_json::Value;

use crate::respond::Body;

/// The Service port's name that `port` stands for.
fn port_name(service: &Value, name: &str, port: &str) -> Result<String, StatusError> {
    let Ok(number) = port.parse::<u64>() else {
        return Ok(port.to_string());
    };
    service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(number))
        .map(|p| {
            p.get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .ok_or_else(|| {
            StatusError::service_unavailable(format!(
                "no service port {number} found for service {name:?}"
            ))
        })
}

/// A ready address and the target port of the Endpoints port named `port`, starting the
/// search at `seed` so that requests spread over the endpoints.
fn pick(endpoints: &Value, port: &str, seed: usize) -> Option<(String, u16)> {
    let subsets = endpoints.get("subsets").and_then(Value::as_array)?;
    (0..subsets.len()).find_map(|i| {
        let subset = &subsets[(seed + i) % subsets.len()];
        let addresses = subset.get("addresses").and_then(Value::as_array)?;
        if addresses.is_empty() {
            return None;
        }
        let number = subset
            .get("ports")
            .and_then(Value::as_array)?
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or_default() == port)?
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())?;
        let ip = addresses[seed % addresses.len()].get("ip")?.as_str()?;
        Some((ip.to_string(), number))
    })
}

/// A seed that differs from request to request.
fn seed() -> usize {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as usize)
        .unwrap_or(0)
}

/// Proxies `req`, a services/proxy request for Service `id` in `ns`, to one of its endpoints.
pub async fn serve(
    api: &crate::rest::Api,
    req: Request<Incoming>,
    rt: &nodeless_core::resource::ResourceType,
    ns: &str,
    id: &str,
) -> Result<Response<Body>, StatusError> {
    let parts = direct::check(req.method(), id, "services")?;
    let service = api.get(rt, Some(ns), parts.name)?;
    let port = port_name(&service, parts.name, parts.port)?;
    let none =
        || StatusError::service_unavailable(format!("no endpoints available for service {:?}", id));
    let endpoints_rt = api
        .registry
        .lookup("", "v1", "endpoints")
        .ok_or_else(none)?;
    let endpoints = api
        .get(&endpoints_rt, Some(ns), parts.name)
        .map_err(|_| none())?;
    let (ip, number) = pick(&endpoints, &port, seed()).ok_or_else(none)?;
    let peer = Peer {
        label: format!("service {ns}/{}", parts.name),
        authority: direct::authority(&ip, number),
        tls: parts.tls()?,
    };
    direct::forward(req, "services", id, peer).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Value {
        json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "metrics", "port": 9100}
        ]}})
    }

    #[test]
    fn a_port_number_names_the_service_port_with_that_number() {
        assert_eq!(port_name(&service(), "web", "80").expect("found"), "http");
        assert_eq!(
            port_name(&service(), "web", "metrics").expect("name"),
            "metrics"
        );
        assert_eq!(port_name(&service(), "web", "").expect("unnamed"), "");
        assert_eq!(
            port_name(&service(), "web", "81").expect_err("none").code,
            503
        );
    }

    #[test]
    fn an_endpoint_with_the_port_and_a_ready_address_is_picked() {
        let endpoints = json!({"subsets": [
            {"notReadyAddresses": [{"ip": "10.88.0.9"}], "ports": [{"name": "http", "port": 8080}]},
            {"addresses": [{"ip": "10.88.0.5"}, {"ip": "10.88.0.6"}],
             "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9100}]}
        ]});
        for seed in 0..4 {
            let (ip, port) = pick(&endpoints, "http", seed).expect("picked");
            assert!(ip == "10.88.0.5" || ip == "10.88.0.6", "{ip}");
            assert_eq!(port, 8080);
        }
        assert_eq!(pick(&endpoints, "metrics", 0).expect("picked").1, 9100);
        assert!(pick(&endpoints, "admin", 0).is_none());
        assert!(pick(&json!({"subsets": []}), "http", 0).is_none());
    }

    #[test]
    fn an_unnamed_port_matches_the_unnamed_endpoint_port() {
        let endpoints =
            json!({"subsets": [{"addresses": [{"ip": "10.88.0.5"}], "ports": [{"port": 80}]}]});
        assert_eq!(
            pick(&endpoints, "", 7).expect("picked"),
            ("10.88.0.5".to_string(), 80)
        );
    }
}
