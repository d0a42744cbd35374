//! pods/log, exec, attach and portforward through the API server to a fake host agent node
//! endpoint: routing by the Pod's host annotation, the agent's token, streaming, upgrades,
//! and the errors users see when there is nothing to reach.

use base64::Engine;
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, LogParams, PostParams};
use nodeless_kube::host::{Host, HostSpec};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

use support::node::FakeNode;
use support::{cluster, Cluster};

const NODE_TOKEN: &str = "node-token-1";

/// A cluster with Host `h1` at a fake node endpoint, its token Secret, and Pod `web`
/// (container `app`) bound to it.
struct Fixture {
    c: Cluster,
    node: FakeNode,
    pods: Api<Pod>,
}

async fn fixture() -> anyhow::Result<Fixture> {
    let c = cluster().await?;
    let node = FakeNode::start(NODE_TOKEN).await?;
    nodeless_kube::host::ensure_crd(&c.client).await?;
    add_host(&c, "h1", &node.endpoint(), NODE_TOKEN).await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    create_pod(&pods, "web", &["app"], json!({})).await?;
    bind(&pods, "web", "h1").await?;
    Ok(Fixture { c, node, pods })
}

async fn add_host(c: &Cluster, name: &str, endpoint: &str, token: &str) -> anyhow::Result<()> {
    add_host_with_cert(c, name, endpoint, token, None).await
}

/// A Host whose Secret holds `cert_pem` beside the token, as agents store it.
async fn add_host_with_cert(
    c: &Cluster,
    name: &str,
    endpoint: &str,
    token: &str,
    cert_pem: Option<&str>,
) -> anyhow::Result<()> {
    let secret_name = format!("nodeless-host-{name}");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut data = json!({"token": b64(token)});
    if let Some(pem) = cert_pem {
        data["tls.crt"] = json!(b64(pem));
    }
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": secret_name, "namespace": "kube-system"},
        "data": data
    }))?;
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "kube-system");
    secrets.create(&PostParams::default(), &secret).await?;
    let spec = HostSpec {
        address: "127.0.0.1".into(),
        endpoint: endpoint.into(),
        token_secret: secret_name,
        capacity: Default::default(),
        runtimes: vec!["runc".into()],
    };
    let hosts: Api<Host> = Api::all(c.client.clone());
    hosts
        .create(&PostParams::default(), &Host::new(name, spec))
        .await?;
    Ok(())
}

async fn create_pod(
    pods: &Api<Pod>,
    name: &str,
    containers: &[&str],
    annotations: Value,
) -> anyhow::Result<Pod> {
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": "busybox"}))
        .collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": containers}
    }))?;
    Ok(pods.create(&PostParams::default(), &pod).await?)
}

/// Binds as the scheduler does: to the virtual node, naming the host in the annotations.
async fn bind(pods: &Api<Pod>, name: &str, host: &str) -> anyhow::Result<()> {
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "annotations": {
            "nodeless.dev/host": host, "nodeless.dev/instance-spec": "1-1Gi"}},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "nodeless"}
    });
    let _: Value = pods
        .create_subresource(
            "binding",
            name,
            &PostParams::default(),
            serde_json::to_vec(&binding)?,
        )
        .await?;
    Ok(())
}

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_puts_its_annotations_on_the_pod_with_the_node_and_scheduled_condition(
) -> anyhow::Result<()> {
    let c = cluster().await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    create_pod(&pods, "web", &["app"], json!({"team": "a"})).await?;
    bind(&pods, "web", "h1").await?;
    let pod = pods.get("web").await?;
    let annotations = pod.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("nodeless.dev/host").map(String::as_str),
        Some("h1")
    );
    assert_eq!(
        annotations
            .get("nodeless.dev/instance-spec")
            .map(String::as_str),
        Some("1-1Gi")
    );
    assert_eq!(annotations.get("team").map(String::as_str), Some("a"));
    assert_eq!(
        pod.spec.and_then(|s| s.node_name).as_deref(),
        Some("nodeless")
    );
    let scheduled = pod
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| c.status);
    assert_eq!(scheduled.as_deref(), Some("True"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_relayed_from_the_pods_host_with_the_hosts_token() -> anyhow::Result<()> {
    let f = fixture().await?;
    let params = LogParams {
        tail_lines: Some(10),
        ..Default::default()
    };
    assert_eq!(f.pods.logs("web", &params).await?, "line 1\nline 2\n");
    let uid = f.pods.get("web").await?.metadata.uid.unwrap_or_default();
    let seen = f.node.seen();
    let last = seen.last().expect("the agent was asked");
    assert_eq!(last.method, "GET");
    assert!(
        last.path_and_query
            .starts_with(&format!("/containerLogs/default/web/{uid}/app?")),
        "{}",
        last.path_and_query
    );
    assert!(
        last.path_and_query.contains("tailLines=10"),
        "{}",
        last.path_and_query
    );
    Ok(())
}

/// A Pod `web` on Host `h2`, served over TLS by `node`, whose Secret holds `pinned`.
async fn tls_fixture(node: &FakeNode, pinned: &str) -> anyhow::Result<(Cluster, Api<Pod>)> {
    let c = cluster().await?;
    nodeless_kube::host::ensure_crd(&c.client).await?;
    add_host_with_cert(&c, "h2", &node.endpoint(), NODE_TOKEN, Some(pinned)).await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    create_pod(&pods, "web", &["app"], json!({})).await?;
    bind(&pods, "web", "h2").await?;
    Ok((c, pods))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_host_presenting_its_pinned_certificate_is_reached() -> anyhow::Result<()> {
    let node = FakeNode::start_tls(NODE_TOKEN).await?;
    let pem = node.cert_pem.clone().expect("a certificate");
    let (_c, pods) = tls_fixture(&node, &pem).await?;
    let params = LogParams::default();
    assert_eq!(pods.logs("web", &params).await?, "line 1\nline 2\n");
    assert_eq!(node.seen().len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_host_presenting_another_certificate_gets_no_request() -> anyhow::Result<()> {
    let node = FakeNode::start_tls(NODE_TOKEN).await?;
    let other = FakeNode::start_tls(NODE_TOKEN).await?;
    let (_c, pods) = tls_fixture(&node, other.cert_pem.as_deref().expect("pem")).await?;
    let err = pods
        .logs("web", &LogParams::default())
        .await
        .expect_err("an untrusted host");
    let (code, message) = api_error(err);
    assert_eq!(code, 503, "{message}");
    assert!(message.contains("host h2"), "{message}");
    assert!(node.seen().is_empty(), "the token never went out");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followed_logs_stream_each_line_as_the_host_sends_it() -> anyhow::Result<()> {
    let f = fixture().await?;
    let params = LogParams {
        follow: true,
        ..Default::default()
    };
    let mut lines = f.pods.log_stream("web", &params).await?.lines();
    let next = |l: Option<Result<String, std::io::Error>>| l.transpose().ok().flatten();
    let within = Duration::from_secs(5);
    assert_eq!(
        next(tokio::time::timeout(within, lines.next()).await?).as_deref(),
        Some("line 1")
    );
    assert_eq!(
        next(tokio::time::timeout(within, lines.next()).await?).as_deref(),
        Some("line 2")
    );
    // The third line exists only after the first two reached the client: nothing was buffered.
    f.node.release_late_line();
    assert_eq!(
        next(tokio::time::timeout(within, lines.next()).await?).as_deref(),
        Some("line 3")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbound_or_missing_pod_has_nothing_to_proxy_to() -> anyhow::Result<()> {
    let f = fixture().await?;
    create_pod(&f.pods, "pending", &["app"], json!({})).await?;
    let (code, message) = api_error(
        f.pods
            .logs("pending", &LogParams::default())
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, 400);
    assert_eq!(message, "pod pending does not have a host assigned");
    let (code, _) = api_error(
        f.pods
            .logs("absent", &LogParams::default())
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unreachable_host_is_service_unavailable_naming_it() -> anyhow::Result<()> {
    let f = fixture().await?;
    create_pod(&f.pods, "lost", &["app"], json!({})).await?;
    bind(&f.pods, "lost", "ghost").await?;
    let (code, message) = api_error(
        f.pods
            .logs("lost", &LogParams::default())
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, 503);
    assert!(message.contains("host ghost"), "{message}");

    // A port nothing listens on: bind one, note it, and close it.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?;
    add_host(&f.c, "down", &format!("http://{closed}"), NODE_TOKEN).await?;
    create_pod(&f.pods, "stranded", &["app"], json!({})).await?;
    bind(&f.pods, "stranded", "down").await?;
    let (code, message) = api_error(
        f.pods
            .logs("stranded", &LogParams::default())
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, 503);
    assert!(message.contains("host down"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_refusal_of_a_wrong_token_is_relayed() -> anyhow::Result<()> {
    let f = fixture().await?;
    add_host(&f.c, "stale", &f.node.endpoint(), "an-old-token").await?;
    create_pod(&f.pods, "misrouted", &["app"], json!({})).await?;
    bind(&f.pods, "misrouted", "stale").await?;
    let (code, message) = api_error(
        f.pods
            .logs("misrouted", &LogParams::default())
            .await
            .expect_err("refused"),
    );
    assert_eq!((code, message.as_str()), (401, "bad token"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_is_implied_only_when_the_choice_is_clear() -> anyhow::Result<()> {
    let f = fixture().await?;
    create_pod(&f.pods, "pair", &["a", "b"], json!({})).await?;
    bind(&f.pods, "pair", "h1").await?;
    let (code, message) = api_error(
        f.pods
            .logs("pair", &LogParams::default())
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, 400);
    assert_eq!(
        message,
        "a container name must be specified for pod pair, choose one of: [a b]"
    );
    let named = LogParams {
        container: Some("b".into()),
        ..Default::default()
    };
    assert_eq!(f.pods.logs("pair", &named).await?, "line 1\nline 2\n");
    assert!(f
        .node
        .seen()
        .last()
        .expect("asked")
        .path_and_query
        .contains("/b?"));

    let annotated = json!({"kubectl.kubernetes.io/default-container": "b"});
    create_pod(&f.pods, "annotated", &["a", "b"], annotated).await?;
    bind(&f.pods, "annotated", "h1").await?;
    f.pods.logs("annotated", &LogParams::default()).await?;
    let path = f.node.seen().last().expect("asked").path_and_query.clone();
    assert!(
        path.starts_with("/containerLogs/default/annotated/") && path.ends_with("/b"),
        "{path}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followed_logs_stream_over_http2_as_kubectl_reads_them() -> anyhow::Result<()> {
    use http_body_util::{BodyExt, Empty};
    let f = fixture().await?;
    let tls = f.c.raw_tls(b"h2").await?;
    let io = hyper_util::rt::TokioIo::new(tls);
    let exec = hyper_util::rt::TokioExecutor::new();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(exec, io).await?;
    let driver = tokio::spawn(conn);
    let req = http::Request::get("/api/v1/namespaces/default/pods/web/log?follow=true")
        .header("authorization", format!("Bearer {}", f.c.admin_token()?))
        .body(Empty::<bytes::Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"text/plain"[..])
    );
    let mut body = resp.into_body();
    let mut got = Vec::new();
    while !got.ends_with(b"line 2\n") {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame()).await?;
        got.extend_from_slice(&frame.expect("more frames")?.into_data().unwrap_or_default());
    }
    f.node.release_late_line();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect()).await??;
    got.extend_from_slice(&rest.to_bytes());
    assert_eq!(got, b"line 1\nline 2\nline 3\n");
    driver.abort();
    Ok(())
}

/// Sends `head` (request line and headers, without the blank line) over a raw TLS connection
/// and returns the response head and the still-open connection.
async fn raw_request(
    c: &Cluster,
    head: &str,
) -> anyhow::Result<(
    String,
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
)> {
    let mut tls = c.raw_http1().await?;
    tls.write_all(format!("{head}\r\n\r\n").as_bytes()).await?;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut byte)).await??;
        anyhow::ensure!(
            n == 1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&got)
        );
        got.push(byte[0]);
    }
    Ok((String::from_utf8(got)?, tls))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_spdy_exec_upgrade_round_trips_bytes_through_the_api_server() -> anyhow::Result<()> {
    let f = fixture().await?;
    let token = f.c.admin_token()?;
    let head = format!(
        "POST /api/v1/namespaces/default/pods/web/exec?command=cat&stdin=true&stdout=true HTTP/1.1\r\n\
         Host: kubernetes\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\
         Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
         X-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: v3.channel.k8s.io"
    );
    let (response, mut tls) = raw_request(&f.c, &head).await?;
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("upgrade: spdy/3.1"),
        "{response}"
    );
    for chunk in ["ping", "pong and more"] {
        tls.write_all(chunk.as_bytes()).await?;
        let mut back = vec![0u8; chunk.len()];
        tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut back)).await??;
        assert_eq!(back, chunk.as_bytes());
    }
    let seen = f.node.seen();
    let exec = seen.last().expect("the agent was asked");
    assert_eq!(exec.method, "POST");
    assert!(
        exec.path_and_query.starts_with("/exec/default/web/"),
        "{}",
        exec.path_and_query
    );
    assert!(exec
        .path_and_query
        .ends_with("/app?command=cat&stdin=true&stdout=true"));
    let versions: Vec<_> = exec
        .headers
        .get_all("x-stream-protocol-version")
        .iter()
        .collect();
    assert_eq!(versions.len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_passes_its_handshake_headers_through() -> anyhow::Result<()> {
    let f = fixture().await?;
    let token = f.c.admin_token()?;
    let head = format!(
        "GET /api/v1/namespaces/default/pods/web/portforward?ports=80 HTTP/1.1\r\n\
         Host: kubernetes\r\nAuthorization: Bearer {token}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io"
    );
    let (response, mut tls) = raw_request(&f.c, &head).await?;
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    tls.write_all(b"frame").await?;
    let mut back = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut back)).await??;
    assert_eq!(&back, b"frame");
    let seen = f.node.seen();
    let pf = seen.last().expect("the agent was asked");
    assert!(pf.path_and_query.starts_with("/portForward/default/web/"));
    assert!(
        pf.path_and_query.ends_with("?ports=80"),
        "{}",
        pf.path_and_query
    );
    for h in [
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
    ] {
        assert!(pf.headers.contains_key(h), "{h} was not passed on");
    }
    let agent_auth = format!("Bearer {NODE_TOKEN}");
    assert_eq!(
        pf.headers.get("authorization").map(|v| v.as_bytes()),
        Some(agent_auth.as_bytes())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upgrade_is_relayed_so_clients_can_fall_back() -> anyhow::Result<()> {
    let f = fixture().await?;
    let token = f.c.admin_token()?;
    let head = format!(
        "GET /api/v1/namespaces/default/pods/web/attach?stdout=true HTTP/1.1\r\n\
         Host: kubernetes\r\nAuthorization: Bearer {token}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io"
    );
    let (response, _) = raw_request(&f.c, &head).await?;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_without_credentials_is_refused_before_any_proxying() -> anyhow::Result<()> {
    let f = fixture().await?;
    let head = "POST /api/v1/namespaces/default/pods/web/exec?command=sh HTTP/1.1\r\n\
                Host: kubernetes\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1";
    let (response, _) = raw_request(&f.c, head).await?;
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(f.node.seen().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_proxy_with_https_speaks_tls_to_the_pod_without_verifying_it() -> anyhow::Result<()> {
    let f = fixture().await?;
    // The Pod's "server": any TLS endpoint at its IP; this one is a fake node.
    let server = FakeNode::start_tls(NODE_TOKEN).await?;
    let status = json!({"status": {"podIP": "127.0.0.1", "phase": "Running"}});
    f.pods
        .patch_status(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&status),
        )
        .await?;
    let port = server.addr.port();
    let req = http::Request::get(format!(
        "/api/v1/namespaces/default/pods/https:web:{port}/proxy/healthz?x=1"
    ))
    .body(Vec::new())?;
    // The fake answers 401 to a request without its token: relayed, so TLS went through.
    let err =
        f.c.client
            .request_text(req)
            .await
            .expect_err("the server's 401");
    let (code, _) = api_error(err);
    assert_eq!(code, 401);
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path_and_query, "/healthz?x=1");
    assert!(
        !seen[0].headers.contains_key("authorization"),
        "the caller's credentials are not passed on"
    );
    Ok(())
}
