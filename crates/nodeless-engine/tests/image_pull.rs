//! Pulls from a real registry (Debian's docker-registry on loopback, started per test): anonymous
//! and basic auth, image indexes, mirrors, digest verification, caching, single-flight and GC.
//! Root only, like the other engine integration tests (whiteouts and ownership need it).

mod image_support;
mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use base64::Engine as _;
use image_support::Proxy;
use nodeless_engine::image::{
    host_platform, ImageError, ImageService, PullPolicy, RegistryAuth, RegistryConfig,
};

fn open(root: &std::path::Path, cfg: RegistryConfig) -> ImageService {
    let svc = ImageService::open(root, cfg).expect("open image service");
    svc.set_gc_grace(Duration::ZERO);
    svc
}

/// PUTs a manifest (or index) straight to the registry.
fn put_manifest(registry: &support::Registry, repo_tag: &str, media_type: &str, body: &[u8]) {
    let (repo, tag) = repo_tag.split_once(':').expect("repo:tag");
    let mut conn = std::net::TcpStream::connect(registry.addr).expect("connect");
    let head = format!(
        "PUT /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        registry.addr,
        body.len()
    );
    conn.write_all(head.as_bytes())
        .and_then(|()| conn.write_all(body))
        .expect("send");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_is_pulled_once_and_then_served_without_the_registry() {
    if support::skip_unless_root("busybox_is_pulled_once_and_then_served_without_the_registry") {
        return;
    }
    let registry = support::Registry::start();
    let layout = tempfile::tempdir().expect("layout");
    let built = support::build_busybox_image(layout.path());
    let digest = support::push(&built, &registry, "library/busybox:latest");
    let root = tempfile::tempdir().expect("root");
    let svc = open(root.path(), RegistryConfig::default());
    let reference = format!("{}/library/busybox", registry.host());

    let started = Instant::now();
    let image = svc
        .ensure(&reference, PullPolicy::IfNotPresent, None)
        .await
        .expect("pull");
    let cold = started.elapsed();
    assert_eq!(image.reference, format!("{reference}:latest"));
    assert_eq!(image.digest, digest);
    assert_eq!(image.id, built.config.digest);
    assert_eq!(image.config.cmd, vec!["sh"]);
    assert_eq!(
        image.layers,
        vec![root
            .path()
            .join("snapshots")
            .join(&built.diff_ids[0]["sha256:".len()..])
            .join("fs")]
    );
    let busybox = std::fs::metadata(image.layers[0].join("bin/busybox")).expect("busybox");
    assert_eq!(
        busybox.len(),
        std::fs::metadata("/bin/busybox")
            .expect("host busybox")
            .len()
    );
    assert_eq!(
        std::fs::read_link(image.layers[0].join("bin/sh")).expect("sh"),
        std::path::PathBuf::from("busybox")
    );

    // No registry any more: the second use must not need it, in this process or a new one.
    drop(registry);
    let started = Instant::now();
    let again = svc
        .ensure(&reference, PullPolicy::IfNotPresent, None)
        .await
        .expect("cached");
    let warm = started.elapsed();
    assert_eq!(again, image);
    let reopened = open(root.path(), RegistryConfig::default());
    assert_eq!(
        reopened
            .ensure(&reference, PullPolicy::Never, None)
            .await
            .expect("after restart"),
        image
    );
    // Always does ask, and says why it cannot (usually "cannot reach the registry"; the freed
    // port may meanwhile belong to another test's registry, which answers 404).
    let err = svc
        .ensure(&reference, PullPolicy::Always, None)
        .await
        .expect_err("should fail");
    assert!(matches!(err, ImageError::Pull { .. }), "{err}");
    eprintln!("busybox pull: cold {cold:?}, warm {warm:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_names_the_image_and_the_registry_answer() {
    if support::skip_unless_root("a_missing_image_names_the_image_and_the_registry_answer") {
        return;
    }
    let registry = support::Registry::start();
    let root = tempfile::tempdir().expect("root");
    let svc = open(root.path(), RegistryConfig::default());
    let reference = format!("{}/nope:1", registry.host());
    let err = svc
        .ensure(&reference, PullPolicy::IfNotPresent, None)
        .await
        .expect_err("should fail");
    assert_eq!(
        err.to_string(),
        format!(r#"pulling image "{reference}": manifest unknown (registry answered 404)"#)
    );
    assert!(matches!(err, ImageError::Pull { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_credentials_come_from_a_dockerconfigjson_secret() {
    if support::skip_unless_root("basic_auth_credentials_come_from_a_dockerconfigjson_secret") {
        return;
    }
    let registry = support::Registry::start_with_auth("alice", "s3cret");
    let layout = tempfile::tempdir().expect("layout");
    support::push(
        support::build_busybox_image(layout.path()),
        &registry,
        "private/busybox:1",
    );
    let root = tempfile::tempdir().expect("root");
    let svc = open(root.path(), RegistryConfig::default());
    let reference = format!("{}/private/busybox:1", registry.host());

    let err = svc
        .ensure(&reference, PullPolicy::IfNotPresent, None)
        .await
        .expect_err("should fail");
    assert!(
        err.to_string().ends_with("(registry answered 401)"),
        "{err}"
    );
    let wrong = RegistryAuth::basic("alice", "guess");
    let err = svc
        .ensure(&reference, PullPolicy::IfNotPresent, Some(&wrong))
        .await
        .expect_err("should fail");
    assert!(
        err.to_string().ends_with("(registry answered 401)"),
        "{err}"
    );

    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let secret = format!(
        r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
        registry.host()
    );
    let creds =
        RegistryAuth::from_docker_config_json(secret.as_bytes(), &registry.host()).expect("creds");
    let image = svc
        .ensure(&reference, PullPolicy::IfNotPresent, Some(&creds))
        .await
        .expect("pull with auth");
    assert_eq!(image.config.cmd, vec!["sh"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_index_resolves_to_the_hosts_platform() {
    if support::skip_unless_root("an_image_index_resolves_to_the_hosts_platform") {
        return;
    }
    let registry = support::Registry::start();
    let layout = tempfile::tempdir().expect("layout");
    let native = support::push(
        support::build_busybox_image(&layout.path().join("n")),
        &registry,
        "multi:native",
    );
    let foreign_image = support::build_image(
        &layout.path().join("f"),
        &[vec![support::LayerEntry::file("foreign", "x")]],
        serde_json::json!({ "Cmd": ["foreign"] }),
    );
    let foreign = support::push(&foreign_image, &registry, "multi:foreign");
    let size = |d: &str| -> u64 {
        let dir = if d == native { "n" } else { "f" };
        std::fs::metadata(
            layout
                .path()
                .join(dir)
                .join("blobs/sha256")
                .join(&d["sha256:".len()..]),
        )
        .expect("blob")
        .len()
    };
    let entry = |digest: &str, os: &str, arch: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size(digest),
            "platform": { "os": os, "architecture": arch },
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&foreign, "unknown", "unknown"), entry(&foreign, "linux", "s390x"), entry(&native, "linux", &host_platform().architecture)],
    });
    let index_bytes = serde_json::to_vec(&index).expect("index");
    put_manifest(
        &registry,
        "multi:1",
        "application/vnd.oci.image.index.v1+json",
        &index_bytes,
    );

    let root = tempfile::tempdir().expect("root");
    let svc = open(root.path(), RegistryConfig::default());
    let image = svc
        .ensure(
            &format!("{}/multi:1", registry.host()),
            PullPolicy::IfNotPresent,
            None,
        )
        .await
        .expect("pull index");
    assert_eq!(image.config.cmd, vec!["sh"]);
    assert_eq!(
        image.digest,
        format!(
            "sha256:{:x}",
            <sha2::Sha256 as sha2::Digest>::digest(&index_bytes)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_hub_mirror_serves_short_names() {
    if support::skip_unless_root("a_docker_hub_mirror_serves_short_names") {
        return;
    }
    let registry = support::Registry::start();
    let layout = tempfile::tempdir().expect("layout");
    support::push(
        support::build_busybox_image(layout.path()),
        &registry,
        "library/busybox:latest",
    );
    let proxy = Proxy::start(registry.addr).await;
    let root = tempfile::tempdir().expect("root");
    let mirror =
        RegistryConfig::parse_mirror(&format!("docker.io={}", proxy.url())).expect("mirror");
    let svc = open(
        root.path(),
        RegistryConfig {
            mirrors: vec![mirror],
            insecure: vec![],
        },
    );

    let image = svc
        .ensure("busybox", PullPolicy::IfNotPresent, None)
        .await
        .expect("pull through mirror");
    assert_eq!(image.reference, "docker.io/library/busybox:latest");
    assert_eq!(image.config.cmd, vec!["sh"]);
    // containerd's convention: the mirror is told which registry the request is for.
    assert!(
        proxy.count("GET /v2/library/busybox/manifests/latest?ns=docker.io") == 1,
        "{:?}",
        proxy.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_layer_is_rejected_and_a_clean_retry_succeeds() {
    if support::skip_unless_root("a_corrupted_layer_is_rejected_and_a_clean_retry_succeeds") {
        return;
    }
    let registry = support::Registry::start();
    let layout = tempfile::tempdir().expect("layout");
    let built = support::build_busybox_image(layout.path());
    support::push(&built, &registry, "busybox:1");
    let proxy = Proxy::start(registry.addr).await;
    let layer = built.layers[0].digest.clone();
    proxy.corrupt(&layer);
    let root = tempfile::tempdir().expect("root");
    let svc = open(root.path(), RegistryConfig::default());
    let reference = format!("{}/busybox:1", proxy.addr);

    let err = svc
        .ensure(&reference, PullPolicy::IfNotPresent, None)
        .await
        .expect_err("should fail");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(r#"pulling image "{reference}": blob {layer}: "#)),
        "{text}"
    );
    assert!(text.contains("digest"), "{text}");
    assert!(
        proxy.count(&format!("GET /v2/busybox/blobs/{layer}")) > 1,
        "transfer errors are retried"
    );
    assert!(!root
        .path()
        .join("blobs/sha256")
        .join(&layer["sha256:".len()..])
        .exists());
    assert_eq!(
        std::fs::read_dir(root.path().join("snapshots"))
            .expect("snapshots")
            .count(),
        0
    );

    proxy.stop_corrupting();
    svc.ensure(&reference, PullPolicy::IfNotPresent, None)
        .await
        .expect("clean pull");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_fetch_it_once_and_always_fetches_only_the_manifest() {
    if support::skip_unless_root(
        "concurrent_pulls_of_one_image_fetch_it_once_and_always_fetches_only_the_manifest",
    ) {
        return;
    }
    let registry = support::Registry::start();
    let layout = tempfile::tempdir().expect("layout");
    support::push(
        support::build_busybox_image(layout.path()),
        &registry,
        "busybox:1",
    );
    let proxy = Proxy::start(registry.addr).await;
    let root = tempfile::tempdir().expect("root");
    let svc = open(root.path(), RegistryConfig::default());
    let reference = format!("{}/busybox:1", proxy.addr);

    let pulls = (0..8).map(|_| svc.ensure(&reference, PullPolicy::IfNotPresent, None));
    let images = futures::future::join_all(pulls).await;
    let first = images[0].as_ref().expect("pull").clone();
    assert!(images.iter().all(|i| i.as_ref().ok() == Some(&first)));
    assert_eq!(proxy.count("/manifests/"), 1, "{:?}", proxy.requests());
    assert_eq!(
        proxy.count("/blobs/"),
        2,
        "config and layer: {:?}",
        proxy.requests()
    );

    proxy.reset();
    svc.ensure(&reference, PullPolicy::Always, None)
        .await
        .expect("always");
    assert_eq!(
        (proxy.count("/manifests/"), proxy.count("/blobs/")),
        (1, 0),
        "{:?}",
        proxy.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_unused_images_but_keeps_layers_shared_with_used_ones() {
    if support::skip_unless_root("gc_removes_unused_images_but_keeps_layers_shared_with_used_ones")
    {
        return;
    }
    let registry = support::Registry::start();
    let layout = tempfile::tempdir().expect("layout");
    support::push(
        support::build_busybox_image(&layout.path().join("b")),
        &registry,
        "busybox:1",
    );
    support::push(
        support::build_httpd_image(&layout.path().join("h")),
        &registry,
        "httpd:1",
    );
    let root = tempfile::tempdir().expect("root");
    let svc = open(root.path(), RegistryConfig::default());
    let busybox = svc
        .ensure(
            &format!("{}/busybox:1", registry.host()),
            PullPolicy::IfNotPresent,
            None,
        )
        .await
        .expect("busybox");
    let httpd = svc
        .ensure(
            &format!("{}/httpd:1", registry.host()),
            PullPolicy::IfNotPresent,
            None,
        )
        .await
        .expect("httpd");
    assert_eq!(
        httpd.layers[0], busybox.layers[0],
        "the busybox layer is unpacked once"
    );

    let report = svc
        .gc(&HashSet::from([busybox.digest.clone()]))
        .expect("gc");
    assert_eq!(report.images_removed, vec![httpd.reference.clone()]);
    assert_eq!(
        (report.snapshots_removed, report.blobs_removed),
        (1, 3),
        "www layer; its blob, config, manifest"
    );
    assert!(busybox.layers[0].join("bin/busybox").exists());
    assert!(!httpd.layers[1].exists());

    let report = svc.gc(&HashSet::new()).expect("gc everything");
    assert_eq!(report.images_removed, vec![busybox.reference.clone()]);
    for dir in ["blobs/sha256", "snapshots", "images"] {
        assert_eq!(
            std::fs::read_dir(root.path().join(dir)).expect(dir).count(),
            0,
            "{dir} not empty"
        );
    }
    assert!(svc.list().expect("list").is_empty());
}

/// Timings for the busybox image, not a pass/fail test:
/// `cargo test --release -p nodeless-engine --test image_pull -- --ignored --nocapture busybox_timings`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn busybox_timings() {
    if support::skip_unless_root("busybox_timings") {
        return;
    }
    let registry = support::Registry::start();
    let layout = tempfile::tempdir().expect("layout");
    let built = support::build_busybox_image(layout.path());
    support::push(&built, &registry, "busybox:1");
    let reference = format!("{}/busybox:1", registry.host());
    let runs = 20;
    let (mut cold, mut warm, mut unpack) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let root = tempfile::tempdir().expect("root");
        let svc = open(root.path(), RegistryConfig::default());
        let started = Instant::now();
        svc.ensure(&reference, PullPolicy::IfNotPresent, None)
            .await
            .expect("cold");
        cold.push(started.elapsed());
        let started = Instant::now();
        svc.ensure(&reference, PullPolicy::IfNotPresent, None)
            .await
            .expect("warm");
        warm.push(started.elapsed());
        let blob = root
            .path()
            .join("blobs/sha256")
            .join(&built.layers[0].digest["sha256:".len()..]);
        let dest = root.path().join("unpack-only");
        std::fs::create_dir(&dest).expect("dest");
        let started = Instant::now();
        nodeless_engine::image::unpack_layer(&blob, &dest, Some(&built.diff_ids[0]))
            .expect("unpack");
        unpack.push(started.elapsed());
    }
    let stats = |name: &str, mut v: Vec<Duration>| {
        v.sort();
        eprintln!(
            "{name}: p50 {:?}, p90 {:?}, min {:?}, max {:?} ({runs} runs)",
            v[v.len() / 2],
            v[v.len() * 9 / 10],
            v[0],
            v[v.len() - 1]
        );
    };
    eprintln!("busybox layer: {} bytes compressed", built.layers[0].size);
    stats("cold ensure (pull + verify + unpack)", cold);
    stats("unpack only", unpack);
    stats("warm ensure", warm);
}
