//! Which endpoint a request is for, and its query.

use nodeless_core::status::StatusError;

use super::response::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ContainerLogs,
    Exec,
    Attach,
    PortForward,
}

/// `/containerLogs|exec|attach/{ns}/{pod}/{uid}/{container}` or `/portForward/{ns}/{pod}/{uid}`.
pub fn parse_path(path: &str) -> Option<(Endpoint, Target)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let endpoint = match *parts.first()? {
        "containerLogs" => Endpoint::ContainerLogs,
        "exec" => Endpoint::Exec,
        "attach" => Endpoint::Attach,
        "portForward" => Endpoint::PortForward,
        _ => return None,
    };
    let want = if endpoint == Endpoint::PortForward {
        4
    } else {
        5
    };
    if parts.len() != want || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let target = Target {
        namespace: parts[1].to_string(),
        pod: parts[2].to_string(),
        uid: parts[3].to_string(),
        container: parts.get(4).map(|c| c.to_string()).unwrap_or_default(),
    };
    Some((endpoint, target))
}

/// The decoded query string.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean as Go's `strconv.ParseBool` reads it; absent is false.
    pub fn flag(&self, name: &str) -> Result<bool, StatusError> {
        match self.get(name) {
            None | Some("") => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(StatusError::bad_request(format!(
                "invalid value {other:?} for {name}: not a boolean"
            ))),
        }
    }

    /// An integer of at least `min`, if present.
    pub fn int(&self, name: &str, min: i64) -> Result<Option<i64>, StatusError> {
        let Some(raw) = self.get(name).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        match raw.parse::<i64>() {
            Ok(v) if v >= min => Ok(Some(v)),
            _ => Err(StatusError::bad_request(format!(
                "invalid value {raw:?} for {name}: must be an integer >= {min}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_endpoint_and_the_pod() {
        let (e, t) = parse_path("/exec/default/web/uid-1/nginx").expect("exec");
        assert_eq!(e, Endpoint::Exec);
        assert_eq!(
            (
                t.namespace.as_str(),
                t.pod.as_str(),
                t.uid.as_str(),
                t.container.as_str()
            ),
            ("default", "web", "uid-1", "nginx")
        );
        assert_eq!(
            parse_path("/portForward/ns/web/uid-1").map(|p| p.0),
            Some(Endpoint::PortForward)
        );
        assert!(parse_path("/exec/ns/web/nginx").is_none());
        assert!(parse_path("/portForward/ns/web/uid/extra").is_none());
        assert!(parse_path("/healthz").is_none());
    }

    #[test]
    fn query_flags_and_numbers_are_validated() {
        let q = Query::parse(Some(
            "command=sh&command=-c&stdin=1&tty=false&tailLines=-1&x=maybe",
        ));
        assert_eq!(q.all("command"), ["sh", "-c"]);
        assert!(q.flag("stdin").expect("bool"));
        assert!(!q.flag("tty").expect("bool"));
        assert!(!q.flag("stdout").expect("absent"));
        assert!(q.flag("x").is_err());
        assert!(q.int("tailLines", 0).is_err());
    }
}
