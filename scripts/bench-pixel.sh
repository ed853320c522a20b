#!/usr/bin/env bash
# Benchmarks pixeltrack's GET /p.gif against examples/bare_pixel.rs (a bare hyper
# server that sends the same GIF and headers and records nothing), with wrk, and
# checks that every 200 pixeltrack answered is an event in its store.
# See docs/benchmarks.md.
#
# Settings (environment):
#   BENCH_THREADS=2  BENCH_CONNECTIONS=64  BENCH_DURATION=15 (seconds, measured)
#   BENCH_WARMUP=3 (seconds per server)  BENCH_ROUNDS=2  BENCH_DRAIN=2 (seconds
#   at the end of each wrk run in which no new request is sent)
# Any PIXELTRACK_* variable is passed to the pixeltrack server as usual, e.g.
#   PIXELTRACK_INGEST__DURABILITY=async scripts/bench-pixel.sh
set -euo pipefail

cd "$(dirname "$0")/.."

THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-15}
DURATION=${DURATION%s}
WARMUP=${BENCH_WARMUP:-3}
WARMUP=${WARMUP%s}
ROUNDS=${BENCH_ROUNDS:-2}
DRAIN=${BENCH_DRAIN:-2}
DRAIN=${DRAIN%s}

PIXEL_ADDR=127.0.0.1:18080
BARE_ADDR=127.0.0.1:18081
UA='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
LUA=scripts/wrk-count.lua
BIN=target/release/pixeltrack
BARE=target/release/examples/bare_pixel

command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
command -v curl >/dev/null || (apt-get update && apt-get install -y curl)

cargo build --release --bin pixeltrack --example bare_pixel

for addr in "$PIXEL_ADDR" "$BARE_ADDR"; do
  if curl -s -o /dev/null --max-time 1 "http://$addr/"; then
    echo "something already listens on $addr; stop it first" >&2
    exit 1
  fi
done

DIR=$(mktemp -d "${TMPDIR:-/tmp}/bench-pixel.XXXXXX")
PIXEL_PID=
BARE_PID=
cleanup() {
  for pid in $PIXEL_PID $BARE_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for URL PID: waits up to 10 s for URL to answer 2xx while PID runs.
wait_for() {
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "no answer from $1" >&2
  exit 1
}

"$BIN" --data "$DIR" serve --listen "$PIXEL_ADDR" --log-level warn &
PIXEL_PID=$!
wait_for "http://$PIXEL_ADDR/readyz" "$PIXEL_PID"

KEY=$("$BIN" --data "$DIR" site add bench.example --json | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
[ -n "$KEY" ] || { echo "could not read the site key" >&2; exit 1; }

"$BARE" "$BARE_ADDR" &
BARE_PID=$!
wait_for "http://$BARE_ADDR/p.gif" "$BARE_PID"

QUERY="/p.gif?s=$KEY&u=https%3A%2F%2Fbench.example%2Fpricing%3Futm_source%3Dnews"
TICK=$(getconf CLK_TCK)

# CPU seconds (user + system) the process has used so far.
cpu_seconds() {
  awk -v tick="$TICK" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / tick }' "/proc/$1/stat"
}

# Sets WRK to the wrk command line for SECONDS measured against ADDR.
wrk_args() {
  WRK=(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$(($1 + DRAIN))s" -s "$LUA"
    -H "User-Agent: $UA" "http://$2$QUERY" -- "$1")
}

# Prints WRK so that it can be pasted into a shell.
show_wrk() {
  local a out=
  for a in "${WRK[@]}"; do
    case $a in
      *[!A-Za-z0-9_./:=@%+,-]*) out+="'$a' " ;;
      *) out+="$a " ;;
    esac
  done
  echo "${out% }"
}

# run LABEL SECONDS ADDR PID: runs wrk, prints one line, sets RPS and OK200.
run() {
  local label=$1 secs=$2 addr=$3 pid=$4 out cpu0 cpu1 requests non2xx
  wrk_args "$secs" "$addr"
  cpu0=$(cpu_seconds "$pid")
  out=$("${WRK[@]}") || { echo "$out" >&2; exit 1; }
  cpu1=$(cpu_seconds "$pid")
  LINE=$(grep '^wrk-count:' <<<"$out") || { echo "$out" >&2; exit 1; }
  RPS=$(field rps)
  OK200=$(field status200)
  requests=$(field requests)
  non2xx=$(field non2xx)
  if [ $((requests - non2xx)) -ne "$OK200" ]; then
    echo "  warning: requests - non-2xx = $((requests - non2xx)), but $OK200 responses were 200" >&2
  fi
  printf '%-18s %8.0f req/s  p50 %5d us  p99 %6d us  %8d x 200  server CPU %3.0f us/req' \
    "$label" "$RPS" "$(field p50_us)" "$(field p99_us)" "$OK200" \
    "$(awk -v a="$cpu0" -v b="$cpu1" -v n="$requests" 'BEGIN { print n ? (b - a) * 1e6 / n : 0 }')"
  [ "$(field socket_errors)" = 0 ] || printf '  socket errors %s' "$(field socket_errors)"
  [ "$(field pixel_reason)" = 0 ] || printf '  X-Pixel-Reason %s' "$(field pixel_reason)"
  printf '\n'
}

# A value from the last wrk-count line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$LINE"; }

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }

echo "== $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== wrk -t$THREADS -c$CONNECTIONS, ${WARMUP}s warm-up each, then $ROUNDS rounds of ${DURATION}s (+${DRAIN}s drain) per server"

PIXEL_200=0
run "warm-up bare" "$WARMUP" "$BARE_ADDR" "$BARE_PID"
run "warm-up pixel" "$WARMUP" "$PIXEL_ADDR" "$PIXEL_PID"
PIXEL_200=$((PIXEL_200 + OK200))
BEST_BARE=0
BEST_PIXEL=0
for round in $(seq "$ROUNDS"); do
  run "round $round bare" "$DURATION" "$BARE_ADDR" "$BARE_PID"
  BEST_BARE=$(max "$BEST_BARE" "$RPS")
  run "round $round pixel" "$DURATION" "$PIXEL_ADDR" "$PIXEL_PID"
  BEST_PIXEL=$(max "$BEST_PIXEL" "$RPS")
  PIXEL_200=$((PIXEL_200 + OK200))
done

# Stop pixeltrack the normal way: it commits everything queued, then exits 0.
kill -TERM "$PIXEL_PID"
status=0
wait "$PIXEL_PID" || status=$?
PIXEL_PID=
[ "$status" = 0 ] || { echo "pixeltrack exited with status $status" >&2; exit 1; }
STORED=$("$BIN" --data "$DIR" site list --json | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
[ -n "$STORED" ] || { echo "could not read the stored event count" >&2; exit 1; }

echo
printf 'bare hyper   %10.0f req/s (best of %s)\n' "$BEST_BARE" "$ROUNDS"
printf 'pixeltrack   %10.0f req/s (best of %s)\n' "$BEST_PIXEL" "$ROUNDS"
printf 'ratio        %10.2f (pixeltrack / bare)\n' "$(awk -v p="$BEST_PIXEL" -v b="$BEST_BARE" 'BEGIN { print p / b }')"
printf 'events       %10d responses 200 from pixeltrack, %d events stored' "$PIXEL_200" "$STORED"
if [ "$PIXEL_200" -ne "$STORED" ]; then
  printf '  MISMATCH\n'
else
  printf '  (equal)\n'
fi
wrk_args "$DURATION" "$BARE_ADDR"
echo "command      $(show_wrk)"
wrk_args "$DURATION" "$PIXEL_ADDR"
echo "             $(show_wrk)"
[ "$PIXEL_200" -eq "$STORED" ] || exit 1
