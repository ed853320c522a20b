#!/usr/bin/env bash
# How fast a spool of demo events is forwarded to ClickHouse (docs/benchmarks.md,
# "Forwarding to ClickHouse").
#
# usage: scripts/bench-forward.sh [single|cluster]
#   Needs ClickHouse from `scripts/clickhouse.sh DIR $CH_BASE all` (CH_BASE default 24100,
#   password pt-secret) and a release build (BIN, default target/release/pixeltrack).
#   Fills a fresh data dir with `pixeltrack demo` (DAYS 30, VISITORS 6000 a day, without
#   the period before, as the numbers in docs/benchmarks.md were measured), starts
#   `serve` with forwarding on, and times it from the start until
#   pixeltrack_forwarded_events_total reaches the stored count; then checks ClickHouse
#   holds every event once. Prints events/s, bytes written by pixeltrack and its RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-single}
BIN=${BIN:-target/release/pixeltrack}
BASE=${CH_BASE:-24100}
PASS=${CH_PASSWORD:-pt-secret}
DB=pt_bench_forward
PORT=${PORT:-18555}
dir=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$dir"' EXIT
PID=
case $MODE in
  single)  URL=http://127.0.0.1:$BASE; EXTRA=() ; NODES=($BASE) ;;
  cluster) URL=http://127.0.0.1:$((BASE+10))
           EXTRA=(PIXELTRACK_STORE__SHARDS=http://127.0.0.1:$((BASE+10)),http://127.0.0.1:$((BASE+20)) PIXELTRACK_STORE__CLUSTER=pt)
           NODES=($((BASE+10)) $((BASE+20))) ;;
  *) echo "usage: $0 [single|cluster]" >&2; exit 2 ;;
esac
for p in "${NODES[@]}"; do
  curl -fsS -u "default:$PASS" --data-binary "DROP DATABASE IF EXISTS $DB" "http://127.0.0.1:$p/"
done
"$BIN" --data "$dir/data" demo --days "${DAYS:-30}" --visitors-per-day "${VISITORS:-6000}" --no-previous >/dev/null
TOTAL=$("$BIN" --data "$dir/data" site list --json |
  python3 -c "import json,sys; print(sum(s['events'] for s in json.load(sys.stdin)))")
env PIXELTRACK_STORE__BACKEND=clickhouse PIXELTRACK_STORE__URL="$URL" PIXELTRACK_STORE__DATABASE=$DB \
  PIXELTRACK_STORE__USER=pixeltrack PIXELTRACK_STORE__PASSWORD="$PASS" "${EXTRA[@]}" \
  "$BIN" --data "$dir/data" serve --listen "127.0.0.1:$PORT" --log-format json 2>"$dir/serve.log" &
PID=$!
start=$(date +%s.%N)
while :; do
  n=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^pixeltrack_forwarded_events_total/ {print $2}')
  [[ ${n:-0} -ge $TOTAL ]] && break
  kill -0 $PID || { cat "$dir/serve.log"; exit 1; }
  sleep 0.2
done
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc)
echo "$MODE: forwarded $TOTAL events in $secs s = $(echo "$TOTAL / $secs" | bc) events/s;" \
  "pixeltrack wrote $(awk '/^write_bytes/ {print $2}' /proc/$PID/io) bytes; $(grep VmRSS /proc/$PID/status | tr -s ' \t' ' ')"
kill $PID; wait $PID || true; PID=
echo "in ClickHouse (rows, distinct ids): $(curl -fsS -u "default:$PASS" \
  --data-binary "SELECT count(), uniqExact(event_id) FROM $DB.events WHERE site_id != 0" "$URL/" | tr '\t' ' ')"
