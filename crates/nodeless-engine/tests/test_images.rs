//! The shared test support: registry start-up, image building and pushing.

mod support;

use std::time::Instant;

use support::{build_busybox_image, build_httpd_image, push, Registry};

#[test]
fn busybox_and_httpd_images_build_quickly_and_share_the_busybox_layer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let busybox = build_busybox_image(&dir.path().join("busybox"));
    let httpd = build_httpd_image(&dir.path().join("httpd"));
    let elapsed = started.elapsed();
    eprintln!("built busybox + httpd images in {elapsed:?}");
    assert_eq!(busybox.layers.len(), 1);
    assert_eq!(httpd.layers.len(), 2);
    assert_eq!(busybox.layers[0], httpd.layers[0]);
    assert!(
        busybox.layers[0].size < 2_000_000,
        "busybox layer is {} bytes",
        busybox.layers[0].size
    );
    assert!(dir.path().join("busybox/index.json").exists());
}

#[test]
fn pushed_image_is_served_by_the_registry() {
    if support::skip_unless_root("pushed_image_is_served_by_the_registry") {
        return;
    }
    let registry = Registry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let image = build_busybox_image(dir.path());
    let started = Instant::now();
    let digest = push(&image, &registry, "library/busybox:latest");
    eprintln!("pushed busybox in {:?}", started.elapsed());
    assert_eq!(digest, image.manifest.digest);
    let accept = [(
        "Accept",
        "application/vnd.oci.image.manifest.v1+json".to_string(),
    )];
    let r = support_get(&registry, "/v2/library/busybox/manifests/latest", &accept);
    assert_eq!(r.0, 200);
    assert!(r.1.contains(&image.layers[0].digest));
}

#[test]
fn registry_with_auth_refuses_anonymous_pulls_and_accepts_pushes_with_credentials() {
    if support::skip_unless_root("registry_with_auth_refuses_anonymous_pulls") {
        return;
    }
    let registry = Registry::start_with_auth("tester", "s3cret");
    let dir = tempfile::tempdir().expect("tempdir");
    push(
        build_busybox_image(dir.path()),
        &registry,
        "private/busybox:v1",
    );
    assert_eq!(
        support_get(&registry, "/v2/private/busybox/manifests/v1", &[]).0,
        401
    );
    let auth = [(
        "Authorization",
        registry.authorization().expect("credentials"),
    )];
    assert_eq!(
        support_get(&registry, "/v2/private/busybox/tags/list", &auth).0,
        200
    );
}

/// GET through a plain TCP stream, so this test does not depend on the support's own client.
fn support_get(registry: &Registry, path: &str, headers: &[(&str, String)]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(registry.addr).expect("connect to registry");
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        registry.host()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    conn.write_all(format!("{req}\r\n").as_bytes())
        .expect("send");
    let mut out = String::new();
    conn.read_to_string(&mut out).expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    (status, out)
}
