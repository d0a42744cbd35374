#!/usr/bin/env bash
# API server benchmark (issue: durable creates/s, get/list/watch latency, memory).
# Usage: ./x bench api [PODS]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
pods="${1:-10000}"
work=$(mktemp -d /tmp/nodeless-bench-api.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cargo build --release --quiet -p nodeless-apiserver --example apibench
"$NODELESS_BIN" apiserver --data-dir "$work" --listen "127.0.0.1:$port" --max-requests-inflight 1000 >"$work.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work" "$work.log"' EXIT
for _ in $(seq 1 100); do curl -skf "https://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
echo "nodeless apiserver (pid $pid), SQLite WAL with synchronous=FULL, $(nproc) cores"
"$(dirname "$NODELESS_BIN")/examples/apibench" "$work/kubeconfig" "$pid" "$pods"
