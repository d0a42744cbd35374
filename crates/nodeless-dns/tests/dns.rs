//! Cluster DNS against a real API server: the server runs on 127.0.0.1:<free port>, objects
//! are created through kube-rs, queries go over UDP and TCP with hickory's client, and names
//! outside the cluster are forwarded to a small upstream server the test runs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_net::client::{Client as DnsClient, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Message, Metadata, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server};
use hickory_server::zone_handler::MessageResponseBuilder;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};
use kube::{Client, Config};
use nodeless_apiserver::server::Limits;
use nodeless_dns::{DnsConfig, Upstream};
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct Harness {
    client: Client,
    dns: SocketAddr,
    shutdown: CancellationToken,
    running: Option<nodeless_apiserver::Running>,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(r) = self.running.take() {
            drop(tokio::spawn(r.shutdown()));
        }
    }
}

async fn harness() -> anyhow::Result<Harness> {
    let dir = tempfile::tempdir()?;
    let config = nodeless_apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        limits: Limits::default(),
    };
    let running = nodeless_apiserver::start(config).await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&running.kubeconfig)?;
    let cfg = Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = Client::try_from(cfg)?;
    let shutdown = CancellationToken::new();
    let upstream = start_upstream(shutdown.clone()).await?;
    let dns = free_port()?;
    let config = DnsConfig {
        listen: dns,
        advertise: IpAddr::V4(Ipv4Addr::LOCALHOST),
        upstream: Upstream::Servers(vec![upstream]),
        bind_wait: Duration::from_secs(5),
        ..DnsConfig::default()
    };
    let server = nodeless_dns::run(client.clone(), config, shutdown.clone());
    tokio::spawn(async move {
        if let Err(e) = server.await {
            eprintln!("dns server failed: {e:?}");
        }
    });
    Ok(Harness {
        client,
        dns,
        shutdown,
        running: Some(running),
        _dir: dir,
    })
}

/// A port free on both UDP and TCP right now.
fn free_port() -> anyhow::Result<SocketAddr> {
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let addr = udp.local_addr()?;
        if std::net::TcpListener::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    anyhow::bail!("no free port")
}

/// The upstream: `upstream.example.` is 192.0.2.7, every other name NXDOMAIN.
struct Upstream1;

#[async_trait::async_trait]
impl RequestHandler for Upstream1 {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut handle: R,
    ) -> ResponseInfo {
        let query = request.queries.queries()[0].original().clone();
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let mut answers = Vec::new();
        if query
            .name()
            .to_ascii()
            .eq_ignore_ascii_case("upstream.example.")
            && query.query_type() == RecordType::A
        {
            let a = RData::A(A(Ipv4Addr::new(192, 0, 2, 7)));
            answers.push(Record::from_rdata(query.name().clone(), 60, a));
        } else {
            metadata.response_code = ResponseCode::NXDomain;
        }
        let response = MessageResponseBuilder::new(&request.queries, None).build(
            metadata,
            answers.iter(),
            [],
            [],
            [],
        );
        handle.send_response(response).await.expect("send")
    }
}

async fn start_upstream(shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let addr = udp.local_addr()?;
    let tcp = tokio::net::TcpListener::bind(addr).await?;
    let mut server = Server::new(Upstream1);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 8);
    tokio::spawn(async move {
        shutdown.cancelled().await;
        let _ = server.shutdown_gracefully().await;
    });
    Ok(addr)
}

async fn udp_client(server: SocketAddr) -> DnsClient<TokioRuntimeProvider> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default()).build();
    let (client, bg) = DnsClient::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(bg);
    client
}

async fn query(server: SocketAddr, name: &str, rtype: RecordType) -> anyhow::Result<Message> {
    let mut client = udp_client(server).await;
    let response = client
        .query(Name::from_str(name)?, DNSClass::IN, rtype)
        .await?;
    Ok(response.into_message())
}

fn addresses(message: &Message) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    ips.sort();
    ips
}

/// Queries until `check` accepts the answer, for at most 20 s (watches take a moment).
async fn eventually(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    check: impl Fn(&Message) -> bool,
) -> anyhow::Result<Message> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let last = query(server, name, rtype).await;
        if let Ok(message) = &last {
            if check(message) {
                return last;
            }
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{name} {rtype}: never as wanted; last answer {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn service(name: &str, spec: serde_json::Value) -> anyhow::Result<Service> {
    Ok(serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
    )?)
}

#[tokio::test]
async fn services_endpoints_and_external_names_resolve_through_the_server() -> anyhow::Result<()> {
    let h = harness().await?;
    let services: Api<Service> = Api::namespaced(h.client.clone(), "default");
    let web = services
        .create(
            &PostParams::default(),
            &service(
                "web",
                json!({"selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
            )?,
        )
        .await?;
    let web_ip: IpAddr = web
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("allocated cluster ip")
        .parse()?;

    // A ClusterIP Service: its address, with a 5 s TTL.
    let answer = eventually(
        h.dns,
        "web.default.svc.cluster.local.",
        RecordType::A,
        |m| !m.answers.is_empty(),
    )
    .await?;
    assert_eq!(addresses(&answer), [web_ip]);
    assert_eq!(answer.answers[0].ttl, 5);
    assert!(answer.metadata.authoritative);

    // Case does not matter.
    let answer = query(h.dns, "Web.DEFAULT.svc.Cluster.Local.", RecordType::A).await?;
    assert_eq!(addresses(&answer), [web_ip]);

    // SRV for the named port, with the target's address alongside.
    let answer = query(
        h.dns,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await?;
    let RData::SRV(srv) = &answer.answers[0].data else {
        panic!("not an srv answer: {answer:?}");
    };
    assert_eq!(srv.port, 80);
    assert_eq!(srv.target.to_ascii(), "web.default.svc.cluster.local.");
    assert_eq!(
        answer
            .additionals
            .iter()
            .filter(|r| r.record_type() == RecordType::A)
            .count(),
        1
    );

    // NXDOMAIN for a Service that does not exist, NODATA for a type a name lacks; both carry
    // the zone's SOA.
    let answer = query(h.dns, "nope.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(answer.authorities[0].record_type(), RecordType::SOA);
    let answer = query(h.dns, "web.default.svc.cluster.local.", RecordType::AAAA).await?;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty());
    assert_eq!(answer.authorities[0].record_type(), RecordType::SOA);

    // The DNS Service itself, kept by the server.
    let answer = eventually(
        h.dns,
        "kube-dns.kube-system.svc.cluster.local.",
        RecordType::A,
        |m| !m.answers.is_empty(),
    )
    .await?;
    assert_eq!(addresses(&answer), ["10.96.0.10".parse::<IpAddr>()?]);

    // Names outside the cluster go to the upstream, its NXDOMAIN included.
    let answer = query(h.dns, "upstream.example.", RecordType::A).await?;
    assert_eq!(addresses(&answer), ["192.0.2.7".parse::<IpAddr>()?]);
    let answer = query(h.dns, "missing.example.", RecordType::A).await?;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);

    // TCP answers too.
    let (stream, sender) = TcpClientStream::new(h.dns, None, None, TokioRuntimeProvider::new());
    let (mut tcp, bg) = DnsClient::<TokioRuntimeProvider>::new(stream.await?, sender);
    tokio::spawn(bg);
    let answer = tcp
        .query(
            Name::from_str("web.default.svc.cluster.local.")?,
            DNSClass::IN,
            RecordType::A,
        )
        .await?
        .into_message();
    assert_eq!(addresses(&answer), [web_ip]);
    Ok(())
}

#[tokio::test]
async fn a_headless_service_resolves_to_its_ready_endpoints_and_their_hostnames(
) -> anyhow::Result<()> {
    let h = harness().await?;
    let services: Api<Service> = Api::namespaced(h.client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &service(
                "db",
                json!({"clusterIP": "None",
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}),
            )?,
        )
        .await?;
    let slices: Api<EndpointSlice> = Api::namespaced(h.client.clone(), "default");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "db-1", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.88.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.88.0.6"], "conditions": {"ready": true}},
            {"addresses": ["10.88.0.7"], "hostname": "db-2", "conditions": {"ready": false}},
        ],
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
    }))?;
    slices.create(&PostParams::default(), &slice).await?;

    let answer = eventually(h.dns, "db.default.svc.cluster.local.", RecordType::A, |m| {
        m.answers.len() == 2
    })
    .await?;
    assert_eq!(
        addresses(&answer),
        ["10.88.0.5".parse::<IpAddr>()?, "10.88.0.6".parse()?]
    );
    let answer = query(h.dns, "db-0.db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&answer), ["10.88.0.5".parse::<IpAddr>()?]);
    let answer = query(h.dns, "db-2.db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);

    let answer = query(
        h.dns,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await?;
    let mut targets: Vec<String> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.target.to_ascii()),
            _ => None,
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            "10-88-0-6.db.default.svc.cluster.local.",
            "db-0.db.default.svc.cluster.local."
        ]
    );
    Ok(())
}

#[tokio::test]
async fn the_kube_dns_service_and_endpointslice_point_at_the_listener() -> anyhow::Result<()> {
    let h = harness().await?;
    let services: Api<Service> = Api::namespaced(h.client.clone(), "kube-system");
    let slices: Api<EndpointSlice> = Api::namespaced(h.client.clone(), "kube-system");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let slice = loop {
        if let Some(slice) = slices.get_opt("kube-dns-nodeless").await? {
            break slice;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no kube-dns endpointslice"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let svc = services.get("kube-dns").await?;
    let spec = svc.spec.clone().expect("spec");
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
    assert!(spec.selector.is_none());
    assert_eq!(slice.endpoints[0].addresses, ["127.0.0.1"]);
    let ports: Vec<(Option<String>, Option<i32>, Option<String>)> = slice
        .ports
        .clone()
        .into_iter()
        .flatten()
        .map(|p| (p.name, p.port, p.protocol))
        .collect();
    let port = i32::from(h.dns.port());
    assert_eq!(
        ports,
        [
            (Some("dns".into()), Some(port), Some("UDP".into())),
            (Some("dns-tcp".into()), Some(port), Some("TCP".into())),
        ]
    );
    // A slice someone changed is put back.
    let mut changed = slice.clone();
    changed.endpoints[0].addresses = vec!["10.1.2.3".into()];
    slices
        .replace("kube-dns-nodeless", &PostParams::default(), &changed)
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = slices.get("kube-dns-nodeless").await?;
        if now.endpoints[0].addresses == ["127.0.0.1"] {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "slice not repaired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
