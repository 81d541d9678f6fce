#!/usr/bin/env bash
# Starts one redis-server with the module loaded, walks through a webhook's life in redis-cli,
# and stops the server. Usage: scripts/demo-module.sh [port]
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${1:-${DEDUP_DEMO_PORT:-7001}}"
DIR="$(mktemp -d)"
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$DIR" --save "" --daemonize no \
  --loadmodule "$PWD/target/release/libredis_dedup.so" >"$DIR/server.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$DIR"' EXIT INT TERM
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

run() { echo "> $*"; redis-cli -p "$PORT" "$@"; echo; }
echo "redis-server with the dedup module on port $PORT (pid $PID)"
echo
echo "# Worker A receives evt_1 and claims it for 30 s:"
run DEDUP.CLAIM webhook:evt_1 30000 worker-a-secret FP sha256-of-body
echo "# 40 ms later the sender's duplicate reaches worker B: it is told the event is in progress."
run DEDUP.CLAIM webhook:evt_1 30000 worker-b-secret FP sha256-of-body
echo "# Worker A finishes and stores its answer for 96 h:"
run DEDUP.COMPLETE webhook:evt_1 345600000 worker-a-secret RESULT "record 42"
echo "# A late duplicate gets the first answer back instead of creating a second record:"
run DEDUP.CLAIM webhook:evt_1 30000 worker-c-secret FP sha256-of-body
echo "# The same id with a different body is a conflict (HTTP 422):"
run DEDUP.CLAIM webhook:evt_1 30000 worker-c-secret FP sha256-of-other-body
run DEDUP.STATUS webhook:evt_1
run INFO dedup
