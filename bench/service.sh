#!/usr/bin/env bash
# Services benchmark (issue 5): request latency and throughput from one network namespace to
# an HTTP server in another on a test bridge, directly to the "Pod IP" and through a Service
# address DNATed by nodeless-proxy's real nftables ruleset (a table of its own, removed after).
# Sequential requests (new connection each, and keep-alive) give p50/p99; wrk (-t1 -c8) gives
# throughput. Rounds alternate Pod IP and ClusterIP. Needs root, nft, wrk.
# Usage: ./bench/service.sh [ROUNDS] [WRK_SECONDS]   (default 3 and 5)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "bench service: run as root" >&2; exit 1; }
for bin in nft wrk ip; do
  command -v "$bin" >/dev/null || { echo "bench service: $bin missing (apt-get install nftables wrk iproute2)" >&2; exit 1; }
done
cargo build --release --quiet -p nodeless-proxy --example service_bench
exec target/release/examples/service_bench "${1:-3}" "${2:-5}"
