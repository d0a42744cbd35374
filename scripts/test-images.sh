#!/usr/bin/env bash
# Builds the nodeless test images from Debian's busybox-static and pushes them to a registry:
#   REGISTRY/library/busybox:latest  busybox with applet symlinks; CMD ["sh"]
#   REGISTRY/library/httpd:latest    the same layer plus /www/index.html; CMD busybox httpd on port 80
# With `--registry-mirror docker.io=http://REGISTRY` the references `busybox` and `httpd` resolve
# to them. The Rust twin of this script is crates/nodeless-engine/tests/support/image.rs.
# Usage: scripts/test-images.sh 127.0.0.1:5000 [--creds user:pass]
set -euo pipefail

registry=${1:?usage: test-images.sh REGISTRY [--creds USER:PASS]}
creds=()
if [[ ${2:-} == --creds ]]; then creds=(--dest-creds "${3:?--creds needs USER:PASS}"); fi

busybox=/bin/busybox
[[ -x $busybox ]] || { echo "test-images: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }

applets=(sh ash true false echo sleep cat httpd wget nc env id hostname ls ps mkdir rm touch cp mv ln
    chmod grep sed head tail wc tr cut sort uniq seq printf test kill pwd date uname whoami yes dd
    ip ifconfig ping nslookup netstat mount df free top stat timeout nohup tee xargs find du
    basename dirname readlink realpath sync tar tty dmesg gzip)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layout=$work/layout
mkdir -p "$layout/blobs/sha256"

# put_blob FILE -> prints "sha256:<hex> <size>" after storing FILE in the layout
put_blob() {
    local hex size
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    cp "$1" "$layout/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}

# layer DIR NAME -> writes $work/NAME.tar.gz, prints "<blob digest> <size> <diff_id>"
layer() {
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
        -C "$1" -cf "$work/$2.tar" .
    local diff_id
    diff_id=sha256:$(sha256sum "$work/$2.tar" | cut -d' ' -f1)
    gzip -n -1 -c "$work/$2.tar" >"$work/$2.tar.gz"
    echo "$(put_blob "$work/$2.tar.gz") $diff_id"
}

base=$work/base
mkdir -p "$base/bin" "$base/etc" "$base/root" "$base/tmp" "$base/www"
chmod 1777 "$base/tmp"
cp "$busybox" "$base/bin/busybox"
for a in "${applets[@]}"; do ln -s busybox "$base/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$base/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$base/etc/group"
read -r base_digest base_size base_diff < <(layer "$base" base)

www=$work/www
mkdir -p "$www/www"
echo "hello from nodeless" >"$www/www/index.html"
read -r www_digest www_size www_diff < <(layer "$www" www)

env_json='["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
layer_json() { printf '{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}' "$1" "$2"; }

# image NAME CONFIG_EXTRA DIFF_IDS LAYERS -> prints the manifest descriptor for index.json
image() {
    printf '{"architecture":"amd64","os":"linux","config":{"Env":%s,%s},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
        "$env_json" "$2" "$3" >"$work/$1.config.json"
    read -r cdigest csize < <(put_blob "$work/$1.config.json")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
        "$cdigest" "$csize" "$4" >"$work/$1.manifest.json"
    read -r mdigest msize < <(put_blob "$work/$1.manifest.json")
    printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}' \
        "$mdigest" "$msize" "$1"
}

bb=$(image busybox '"Cmd":["sh"]' "\"$base_diff\"" "$(layer_json "$base_digest" "$base_size")")
httpd=$(image httpd '"Cmd":["httpd","-f","-v","-p","80","-h","/www"],"ExposedPorts":{"80/tcp":{}}' \
    "\"$base_diff\",\"$www_diff\"" "$(layer_json "$base_digest" "$base_size"),$(layer_json "$www_digest" "$www_size")")
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[%s,%s]}' "$bb" "$httpd" >"$layout/index.json"

for name in busybox httpd; do
    skopeo copy --quiet --insecure-policy --dest-tls-verify=false "${creds[@]}" \
        "oci:$layout:$name" "docker://$registry/library/$name:latest"
done
