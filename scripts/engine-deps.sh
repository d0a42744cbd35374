#!/usr/bin/env bash
# Installs the host tools the nodeless engine and its root-only tests use, from Debian's packages.
# Idempotent and quiet: it does nothing when every package is already installed.
set -euo pipefail

packages=(runc runsc containernetworking-plugins docker-registry busybox-static skopeo iptables iproute2 nftables conntrack)

missing=()
for p in "${packages[@]}"; do
    # dpkg-query prints "install ok installed" only for fully installed packages.
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "engine-deps: missing ${missing[*]}; run as root to install them" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "engine-deps: installing ${missing[*]}" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt's chatter goes to a log that is shown only when something fails.
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
