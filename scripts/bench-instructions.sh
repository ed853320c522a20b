#!/usr/bin/env bash
# Instructions a request costs the collector, counted by valgrind (callgrind) while
# wrk sends the realistic mix (scripts/wrk-realistic.lua, no email hits) over 4
# connections: the same requests in the same order in every run, so two builds
# compare to within about 1 %, where the machine's drift makes req/s and CPU time
# differ by 10-30 % between runs (docs/benchmarks.md, "Instructions a request").
#
#   scripts/bench-instructions.sh [SECONDS]         # measure for SECONDS (default 15)
#   BIN=/other/pixeltrack scripts/bench-instructions.sh
#
# Prints user-space instructions (and calls into the allocator) per request of the HTTP worker threads (hyper,
# routing, parsing, enrichment, the hand-off to the writer), of the writer thread
# and of every other thread. Under valgrind the server answers a few hundred
# requests a second, so the writer commits a few events at a time and writes
# derived rows with them: its figure is that of a lightly loaded server (measure
# the writer under load with `examples/bench_writer.rs`). Valgrind's CPU has no
# SHA extensions, so SHA-256 (the visitor id's HMAC) runs the portable code: about
# 7,000 instructions a request in the workers on the build that added this script,
# several times what this machine's CPU spends on it.
#
# Needs valgrind and wrk (installed with apt-get when missing). Settings: BIN
# (default target/release/pixeltrack, built first), BENCH_PORT (18590).
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_MEASURED=${1:-15}
PORT=${BENCH_PORT:-18590}
for tool in valgrind:valgrind wrk:wrk; do
  if ! command -v "${tool%%:*}" >/dev/null; then
    apt-get install -y "${tool##*:}" >/dev/null
  fi
done
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin pixeltrack
  BIN=target/release/pixeltrack
fi

TMP=$(mktemp -d /tmp/bench-instructions.XXXXXX)
VG=
cleanup() {
  if [ -n "$VG" ] && kill -0 "$VG" 2>/dev/null; then kill -TERM "$VG"; wait "$VG" || true; fi
  if [ -n "${KEEP:-}" ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

export PIXELTRACK_TRUSTED_PROXIES=127.0.0.1/32
export PIXELTRACK_LIMITS__PER_IP_PER_MINUTE=1000000000
KEY=$("$BIN" --data "$TMP/data" site add bench.example --json | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
# Instrumented only between the warm-up and the end of the measured run.
valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes \
  --callgrind-out-file="$TMP/cg.out" \
  "$BIN" --data "$TMP/data" serve --listen "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
VG=$!
for _ in $(seq 1 300); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  sleep 1
done
wrk -t1 -c4 -d8s --timeout 30s -s scripts/wrk-realistic.lua "http://127.0.0.1:$PORT/" \
  -- 6 "$KEY" - 0 >"$TMP/warm.txt"
callgrind_control -i on "$VG" >/dev/null
wrk -t1 -c4 -d$((SECONDS_MEASURED + 3))s --timeout 30s -s scripts/wrk-realistic.lua \
  "http://127.0.0.1:$PORT/" -- "$SECONDS_MEASURED" "$KEY" - 1 >"$TMP/wrk.txt"
sleep 1.5 # the last commits
callgrind_control -i off "$VG" >/dev/null
callgrind_control -d "$VG" >/dev/null
kill -TERM "$VG"
wait "$VG" || true
VG=

line=$(grep '^wrk-realistic:' "$TMP/wrk.txt")
requests=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
acked=$(sed -n 's/.* acked=\([0-9]*\).*/\1/p' <<<"$line")
python3 - "$TMP" "$requests" "$acked" "$BIN" <<'PY'
import glob, re, sys
tmp, requests, acked, binary = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
parts = {"workers": 0, "writer": 0, "other": 0}
allocs = {"workers": 0, "writer": 0, "other": 0}
# The allocator's entry points (mimalloc's, as the Rust allocator calls them).
alloc_fn = re.compile(r"^mi_(malloc|zalloc|realloc)(_aligned)?$")
for path in glob.glob(f"{tmp}/cg.out.1-*"):
    text = open(path).read()
    total = int(re.search(r"^totals: (\d+)", text, re.M).group(1))
    if "src/ingest/writer.rs" in text:
        part = "writer"
    elif "blocking::pool::Inner::run" not in text and (
        "multi_thread::worker::run" in text or "hyper::proto::h1::dispatch" in text
    ):
        # (A build with whole-program LTO inlines the worker's loop: hyper's
        # dispatcher is what names the HTTP threads then.)
        part = "workers"
    else:
        part = "other"
    parts[part] += total
    # Calls into the allocator: names are compressed (`(id) name` once, `(id)` after).
    names, target = {}, None
    for line in text.splitlines():
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?$", line)
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2)
            target = names.get(m.group(1)) if line.startswith("cfn=") else None
        elif line.startswith("calls=") and target and alloc_fn.match(target):
            allocs[part] += int(line[6:].split()[0])
            target = None
print(f"binary       {binary}")
print(f"requests     {requests} ({acked} acknowledged)")
for k in ("workers", "writer", "other"):
    print(f"{k:<12} {parts[k] / requests:>9,.0f} instructions a request, {allocs[k] / requests:5.1f} allocations")
print(f"all          {sum(parts.values()) / requests:>9,.0f} instructions a request")
PY
