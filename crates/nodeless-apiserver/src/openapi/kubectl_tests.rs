//! The documents as the real kubectl reads them: a throwaway HTTP server serves discovery and
//! OpenAPI (nothing else) and kubectl explains resources and decides on server-side
//! validation against it. Ignored by default because it needs kubectl on PATH:
//! `cargo test -p nodeless-apiserver --lib openapi::kubectl_tests -- --ignored`

use super::*;
use nodeless_core::resource::builtins;
use serde_json::json;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Fixture {
    resources: Vec<ResourceType>,
    crds: Vec<(ResourceType, Value)>,
}

impl Fixture {
    fn new() -> Self {
        let (rt, schema) = super::tests::crontab();
        let mut resources = builtins();
        resources.push(rt.clone());
        Fixture {
            resources,
            crds: vec![(rt, schema)],
        }
    }

    fn input(&self) -> OpenApiInput<'_> {
        OpenApiInput {
            resources: &self.resources,
            crd_schemas: &self.crds,
        }
    }

    fn api_resources(&self, group: &str, version: &str) -> Option<Value> {
        let list: Vec<Value> = self
            .resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .map(|r| {
                json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                       "verbs": r.verbs, "shortNames": r.short_names})
            })
            .collect();
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        (!list.is_empty()).then(|| json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}))
    }

    fn api_groups(&self) -> Value {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.resources.iter().filter(|r| !r.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, vs)) if !vs.contains(&r.version) => vs.push(r.version.clone()),
                Some(_) => {}
                None => groups.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                    .collect();
                json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// (content type, body) for a GET of `path` with `accept`.
    fn respond(&self, path: &str, accept: &str) -> Option<(&'static str, Vec<u8>)> {
        let path = path.split('?').next().unwrap_or_default();
        let json_body = |v: Value| {
            Some((
                "application/json",
                serde_json::to_vec(&v).expect("serializes"),
            ))
        };
        match path
            .trim_end_matches('/')
            .split('/')
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["", "api"] => json_body(json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
            ["", "apis"] => json_body(self.api_groups()),
            ["", "api", v] => json_body(self.api_resources("", v)?),
            ["", "apis", g, v] => json_body(self.api_resources(g, v)?),
            ["", "version"] => {
                json_body(json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0"}))
            }
            ["", "openapi", "v2"] if accepts_v2_protobuf(accept) => Some((
                V2_PROTOBUF_MEDIA_TYPE,
                v2_protobuf(&v2_document(&self.input())),
            )),
            ["", "openapi", "v2"] => json_body(v2_document(&self.input())),
            ["", "openapi", "v3"] => json_body(v3_index(&self.input())),
            ["", "openapi", "v3", "api", v] => json_body(v3_group_version(&self.input(), "", v)?),
            ["", "openapi", "v3", "apis", g, v] => {
                json_body(v3_group_version(&self.input(), g, v)?)
            }
            _ => None,
        }
    }
}

async fn serve_one(fixture: &Fixture, mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let accept = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Accept: ")
                .or_else(|| l.strip_prefix("accept: "))
        })
        .unwrap_or("")
        .to_string();
    let (status, content_type, body) = match fixture.respond(&path, &accept) {
        Some((ct, body)) => ("200 OK", ct, body),
        None => ("404 Not Found", "application/json", br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#.to_vec()),
    };
    let header = format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(header.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

async fn start() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fixture = std::sync::Arc::new(Fixture::new());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let fixture = fixture.clone();
            tokio::spawn(async move {
                let _ = serve_one(&fixture, stream).await;
            });
        }
    });
    format!("http://{addr}")
}

/// Runs kubectl against `server` with a private cache and no kubeconfig; (success, stdout+stderr).
async fn kubectl(server: &str, args: &[&str]) -> (bool, String) {
    let cache =
        std::env::temp_dir().join(format!("nodeless-openapi-kubectl-{}", std::process::id()));
    let mut command = Command::new("kubectl");
    command
        .env("KUBECONFIG", "/dev/null")
        .arg("--server")
        .arg(server)
        .arg("--cache-dir")
        .arg(&cache)
        .args(args);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("kubectl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs kubectl on PATH"]
async fn kubectl_explain_walks_pod_spec_containers_through_v3() {
    let server = start().await;
    let (ok, out) = kubectl(&server, &["explain", "pods.spec.containers"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(out.contains("FIELD: containers <[]Container>"), "{out}");
    assert!(out.contains("image\t<string>"), "{out}");
    let (ok, out) = kubectl(&server, &["explain", "deployments.spec.template.metadata"]).await;
    assert!(
        ok && out.contains("GROUP:      apps") && out.contains("labels\t<map[string]string>"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs kubectl on PATH"]
async fn kubectl_explain_reads_the_v2_protobuf_document() {
    let server = start().await;
    let (ok, out) = kubectl(
        &server,
        &[
            "explain",
            "pods.spec.containers",
            "--output",
            "plaintext-openapiv2",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("RESOURCE: containers <[]Object>") || out.contains("containers"),
        "{out}"
    );
    assert!(out.contains("image\t<string>"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs kubectl on PATH"]
async fn kubectl_explain_describes_a_custom_resource() {
    let server = start().await;
    let (ok, out) = kubectl(&server, &["explain", "crontabs.spec"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("GROUP:      stable.example.com") && out.contains("cronSpec\t<string>"),
        "{out}"
    );
    assert!(out.contains("When to run."), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs kubectl on PATH"]
async fn kubectl_leaves_validation_to_the_server_when_field_validation_is_published() {
    let server = start().await;
    let manifest =
        std::env::temp_dir().join(format!("nodeless-openapi-pod-{}.yaml", std::process::id()));
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: default\nspec:\n  containers:\n  - name: web\n    image: nginx\n    bogusField: 1\n",
    )
    .expect("write manifest");
    let path = manifest.to_string_lossy().to_string();
    // With fieldValidation published, kubectl skips client-side schema validation, so the
    // unknown field is left for the server and a client dry run succeeds.
    let (ok, out) = kubectl(
        &server,
        &[
            "create",
            "--dry-run=client",
            "--validate=strict",
            "-o",
            "name",
            "-f",
            &path,
        ],
    )
    .await;
    assert!(ok && out.contains("pod/web"), "{out}");
    let _ = std::fs::remove_file(manifest);
}
