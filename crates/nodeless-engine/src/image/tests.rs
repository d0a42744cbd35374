//! `ImageService` against the in-memory registry: policies, single-flight, retries, mirrors,
//! digest verification and garbage collection, without network or root.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::fake::{digest_of, FakeRegistry};
use super::pull::RetryPolicy;
use super::*;

const LOCAL: &str = "127.0.0.1:5000";

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    }
}

fn service(
    dir: &std::path::Path,
    registry: &Arc<FakeRegistry>,
    cfg: RegistryConfig,
) -> ImageService {
    let transport: Arc<dyn transport::Transport> = registry.clone();
    let svc = ImageService::with_transport(dir, cfg, transport, fast_retry()).expect("open");
    svc.set_gc_grace(Duration::ZERO);
    svc
}

fn setup() -> (tempfile::TempDir, Arc<FakeRegistry>, ImageService) {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Arc::new(FakeRegistry::default());
    let svc = service(dir.path(), &registry, RegistryConfig::default());
    (dir, registry, svc)
}

#[tokio::test]
async fn a_present_image_is_served_without_network() {
    let (_dir, registry, svc) = setup();
    let digest = registry.push_image(LOCAL, "app", "1", "serve");
    let image = svc
        .ensure("127.0.0.1:5000/app:1", PullPolicy::IfNotPresent, None)
        .await
        .expect("pull");
    assert_eq!(image.reference, "127.0.0.1:5000/app:1");
    assert_eq!(image.digest, digest);
    assert_eq!(image.config.cmd, vec!["serve"]);
    assert_eq!(
        std::fs::read(image.layers[0].join("bin/tool")).expect("unpacked"),
        b"serve"
    );
    let requests = (
        registry.manifest_requests.load(Ordering::SeqCst),
        registry.blob_requests.load(Ordering::SeqCst),
    );

    let again = svc
        .ensure("127.0.0.1:5000/app:1", PullPolicy::IfNotPresent, None)
        .await
        .expect("again");
    assert_eq!(again, image);
    let never = svc
        .ensure("127.0.0.1:5000/app:1", PullPolicy::Never, None)
        .await
        .expect("never");
    assert_eq!(never, image);
    assert_eq!(
        requests,
        (
            registry.manifest_requests.load(Ordering::SeqCst),
            registry.blob_requests.load(Ordering::SeqCst)
        )
    );
}

#[tokio::test]
async fn always_asks_for_the_manifest_but_fetches_no_blob_it_has() {
    let (_dir, registry, svc) = setup();
    registry.push_image(LOCAL, "app", "1", "a");
    svc.ensure("127.0.0.1:5000/app:1", PullPolicy::Always, None)
        .await
        .expect("pull");
    let blobs = registry.blob_requests.load(Ordering::SeqCst);
    svc.ensure("127.0.0.1:5000/app:1", PullPolicy::Always, None)
        .await
        .expect("pull again");
    assert_eq!(registry.manifest_requests.load(Ordering::SeqCst), 2);
    assert_eq!(registry.blob_requests.load(Ordering::SeqCst), blobs);
}

#[tokio::test]
async fn never_fails_for_an_absent_image() {
    let (_dir, registry, svc) = setup();
    let err = svc
        .ensure("busybox", PullPolicy::Never, None)
        .await
        .expect_err("should fail");
    assert!(
        matches!(err, ImageError::NotPresent { ref reference } if reference == "docker.io/library/busybox:latest")
    );
    assert_eq!(registry.manifest_requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn concurrent_ensures_of_one_image_share_one_pull() {
    let (_dir, registry, svc) = setup();
    registry.push_image(LOCAL, "app", "1", "a");
    let gate = Arc::new(tokio::sync::Notify::new());
    *registry.gate.lock().expect("lock") = Some(gate.clone());
    let pulls = (0..8).map(|_| svc.ensure("127.0.0.1:5000/app:1", PullPolicy::IfNotPresent, None));
    let release = async {
        while registry.manifest_requests.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        *registry.gate.lock().expect("lock") = None;
        gate.notify_waiters();
    };
    let (results, ()) = tokio::join!(futures::future::join_all(pulls), release);
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(registry.manifest_requests.load(Ordering::SeqCst), 1);
    assert_eq!(registry.blob_requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_missing_image_reports_the_registry_answer_without_retrying() {
    let (_dir, registry, svc) = setup();
    let err = svc
        .ensure("127.0.0.1:5000/nope:1", PullPolicy::IfNotPresent, None)
        .await
        .expect_err("should fail");
    assert_eq!(
        err.to_string(),
        r#"pulling image "127.0.0.1:5000/nope:1": manifest unknown (registry answered 404)"#
    );
    assert_eq!(registry.manifest_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn transient_registry_faults_are_retried() {
    let (_dir, registry, svc) = setup();
    registry.push_image(LOCAL, "app", "1", "a");
    registry.fail_next.store(2, Ordering::SeqCst);
    svc.ensure("127.0.0.1:5000/app:1", PullPolicy::IfNotPresent, None)
        .await
        .expect("pull after retries");
    assert_eq!(registry.manifest_requests.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_and_give_up() {
    let policy = RetryPolicy::default();
    let started = tokio::time::Instant::now();
    let mut calls = 0;
    let result: Result<(), _> = policy
        .run("test", || {
            calls += 1;
            async { Err(FetchError::Unreachable("connection refused".into())) }
        })
        .await;
    assert!(result.is_err());
    assert_eq!(calls, 4);
    assert_eq!(started.elapsed(), Duration::from_millis(250 + 500 + 1000));
}

#[tokio::test]
async fn a_corrupted_blob_is_detected_and_not_stored() {
    let (dir, registry, svc) = setup();
    registry.push_image(LOCAL, "app", "1", "a");
    let (layer, _) = fake::layer(&[("bin/tool", b"a")]);
    let layer_digest = digest_of(&layer);
    registry
        .corrupt
        .lock()
        .expect("lock")
        .push(layer_digest.clone());
    let err = svc
        .ensure("127.0.0.1:5000/app:1", PullPolicy::IfNotPresent, None)
        .await
        .expect_err("should fail");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "blob {layer_digest}: content does not match its digest {layer_digest}"
        )),
        "{text}"
    );
    assert!(!dir
        .path()
        .join("blobs/sha256")
        .join(&layer_digest["sha256:".len()..])
        .exists());
    assert!(svc.list().expect("list").is_empty());
}

#[tokio::test]
async fn a_mirror_serves_its_registry_and_the_registry_is_the_fallback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Arc::new(FakeRegistry::default());
    let cfg = RegistryConfig {
        mirrors: vec![RegistryConfig::parse_mirror("docker.io=http://mirror:5000").expect("mirror")],
        insecure: vec![],
    };
    let svc = service(dir.path(), &registry, cfg);
    registry.push_image("mirror:5000", "library/busybox", "latest", "from-mirror");
    let image = svc
        .ensure("busybox", PullPolicy::IfNotPresent, None)
        .await
        .expect("via mirror");
    assert_eq!(image.reference, "docker.io/library/busybox:latest");
    assert_eq!(image.config.cmd, vec!["from-mirror"]);

    registry.push_image("docker.io", "library/only-upstream", "latest", "upstream");
    let image = svc
        .ensure("only-upstream", PullPolicy::IfNotPresent, None)
        .await
        .expect("fallback");
    assert_eq!(image.config.cmd, vec!["upstream"]);

    let err = svc
        .ensure("nowhere", PullPolicy::IfNotPresent, None)
        .await
        .expect_err("should fail");
    assert_eq!(
        err.to_string(),
        r#"pulling image "docker.io/library/nowhere:latest": manifest unknown (registry answered 404) (from mirror http://mirror:5000/); manifest unknown (registry answered 404) (from docker.io)"#
    );
}

#[tokio::test]
async fn an_index_resolves_to_this_hosts_platform() {
    let (_dir, registry, svc) = setup();
    let native = registry.push_image(LOCAL, "multi", "native-only", "native");
    let other = registry.push_image(LOCAL, "multi", "other-only", "other");
    let host = host_platform();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{other}","size":1,"platform":{{"os":"linux","architecture":"s390x"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{native}","size":1,"platform":{{"os":"linux","architecture":"{}"}}}}]}}"#,
        host.architecture
    );
    let index_digest = registry.put_manifest(LOCAL, "multi", "1", index.into_bytes());
    let image = svc
        .ensure("127.0.0.1:5000/multi:1", PullPolicy::IfNotPresent, None)
        .await
        .expect("pull");
    assert_eq!(image.config.cmd, vec!["native"]);
    assert_eq!(image.digest, index_digest);
}

#[tokio::test]
async fn a_pinned_digest_must_match_what_the_registry_serves() {
    let (_dir, registry, svc) = setup();
    let digest = registry.push_image(LOCAL, "app", "1", "a");
    let image = svc
        .ensure(
            &format!("127.0.0.1:5000/app@{digest}"),
            PullPolicy::IfNotPresent,
            None,
        )
        .await
        .expect("pinned");
    assert_eq!(image.digest, digest);
    let wrong = format!("sha256:{}", "0".repeat(64));
    assert!(svc
        .ensure(
            &format!("127.0.0.1:5000/app@{wrong}"),
            PullPolicy::IfNotPresent,
            None
        )
        .await
        .is_err());
}

#[tokio::test]
async fn gc_removes_unused_images_and_only_their_own_content() {
    let (dir, registry, svc) = setup();
    registry.push_image(LOCAL, "keep", "1", "k");
    registry.push_image(LOCAL, "drop", "1", "d");
    let keep = svc
        .ensure("127.0.0.1:5000/keep:1", PullPolicy::IfNotPresent, None)
        .await
        .expect("keep");
    let drop = svc
        .ensure("127.0.0.1:5000/drop:1", PullPolicy::IfNotPresent, None)
        .await
        .expect("drop");
    let report = svc.gc(&HashSet::from([keep.digest.clone()])).expect("gc");
    assert_eq!(report.images_removed, vec![drop.reference.clone()]);
    assert_eq!((report.snapshots_removed, report.blobs_removed), (1, 3));
    assert!(report.bytes_freed > 0);
    assert!(!drop.layers[0].exists());
    assert!(keep.layers[0].join("bin/tool").exists());
    assert_eq!(svc.list().expect("list").len(), 1);
    let blobs = std::fs::read_dir(dir.path().join("blobs/sha256"))
        .expect("blobs")
        .count();
    assert_eq!(blobs, 3);
}

#[tokio::test]
async fn gc_spares_images_used_within_the_grace_period() {
    let (_dir, registry, svc) = setup();
    registry.push_image(LOCAL, "fresh", "1", "f");
    svc.ensure("127.0.0.1:5000/fresh:1", PullPolicy::IfNotPresent, None)
        .await
        .expect("pull");
    svc.set_gc_grace(Duration::from_secs(3600));
    assert!(svc
        .gc(&HashSet::new())
        .expect("gc")
        .images_removed
        .is_empty());
    svc.set_gc_grace(Duration::ZERO);
    assert_eq!(svc.gc(&HashSet::new()).expect("gc").images_removed.len(), 1);
}

#[tokio::test]
async fn remove_forgets_by_reference_or_digest_and_reports_unknown_images() {
    let (_dir, registry, svc) = setup();
    let digest = registry.push_image(LOCAL, "app", "1", "a");
    let bytes = registry_manifest(&registry, &digest).await;
    registry.put_manifest(LOCAL, "app", "2", bytes);
    svc.ensure("127.0.0.1:5000/app:1", PullPolicy::IfNotPresent, None)
        .await
        .expect("pull 1");
    svc.ensure("127.0.0.1:5000/app:2", PullPolicy::IfNotPresent, None)
        .await
        .expect("pull 2");
    svc.remove("127.0.0.1:5000/app:1")
        .expect("remove by reference");
    assert!(svc.get("127.0.0.1:5000/app:1").expect("get").is_none());
    svc.remove(&digest).expect("remove by digest");
    assert!(svc.list().expect("list").is_empty());
    assert!(matches!(
        svc.remove("127.0.0.1:5000/app:1"),
        Err(ImageError::NotFound { .. })
    ));
}

/// The manifest bytes stored under `digest`, to tag them again.
async fn registry_manifest(registry: &FakeRegistry, digest: &str) -> Vec<u8> {
    let endpoint = registry::RegistryConfig::default()
        .endpoints(LOCAL)
        .remove(0);
    let image: ImageReference = "127.0.0.1:5000/app".parse().expect("ref");
    let fetched = transport::Transport::manifest(registry, &endpoint, &image, digest, None).await;
    fetched.expect("manifest").bytes.to_vec()
}

#[tokio::test]
async fn invalid_references_are_rejected_before_any_request() {
    let (_dir, registry, svc) = setup();
    let err = svc
        .ensure("Not/Valid", PullPolicy::IfNotPresent, None)
        .await
        .expect_err("should fail");
    assert!(matches!(err, ImageError::InvalidReference { .. }));
    assert_eq!(registry.manifest_requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_digest_pinned_reference_is_served_from_a_tag_of_the_same_repository() {
    let (_dir, registry, svc) = setup();
    let digest = registry.push_image(LOCAL, "app", "1", "a");
    registry.push_image(LOCAL, "other", "1", "a");
    svc.ensure("127.0.0.1:5000/app:1", PullPolicy::IfNotPresent, None)
        .await
        .expect("pull");
    svc.ensure("127.0.0.1:5000/other:1", PullPolicy::IfNotPresent, None)
        .await
        .expect("pull");
    let requests = registry.manifest_requests.load(Ordering::SeqCst);
    let pinned = format!("127.0.0.1:5000/app@{digest}");
    let image = svc
        .ensure(&pinned, PullPolicy::Never, None)
        .await
        .expect("pinned from the tag");
    assert_eq!(
        (image.reference.as_str(), image.digest.as_str()),
        (pinned.as_str(), digest.as_str())
    );
    assert_eq!(registry.manifest_requests.load(Ordering::SeqCst), requests);
    let elsewhere = format!("127.0.0.1:5000/third@{digest}");
    assert!(svc.get(&elsewhere).expect("get").is_none());
}
