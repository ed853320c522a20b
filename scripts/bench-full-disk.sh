#!/usr/bin/env bash
# The server on a full disk: a tmpfs of SIZE MiB holds a fresh data directory, the
# realistic mix (scripts/wrk-realistic.lua) runs for 6 s, a file fills what is left of
# the disk, and the mix runs 10 s more. Prints wrk's summary of those 10 s (answers,
# reasons, latency) and the server's CPU time meanwhile; then frees space (the filler
# removed, the tmpfs grown four times), sends one hit and prints /readyz's status (200:
# writes resumed without a restart).
#
#   scripts/bench-full-disk.sh [SIZE]     # MiB, default 48 (the warm-up fills it)
#   BIN=/other/pixeltrack scripts/bench-full-disk.sh
#
# Needs root (mount) and wrk. Port 18599.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-48}
BIN=${BIN:-target/release/pixeltrack}
[ -x "$BIN" ] || cargo build --release --bin pixeltrack
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
D=$(mktemp -d /tmp/bench-full-disk.XXXXXX)
OUT=$(mktemp -d /tmp/bench-full-disk-out.XXXXXX) # off the full disk
P=
cleanup() {
  [ -z "$P" ] || { kill "$P" 2>/dev/null; wait "$P" 2>/dev/null || true; }
  umount -l "$D" 2>/dev/null || true
  rm -rf "$D" "$OUT"
}
trap cleanup EXIT
mount -t tmpfs -o "size=${SIZE}m" tmpfs "$D"
mkdir "$D/d"
KEY=$("$BIN" --data "$D/d" site add bench.example --json | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
PIXELTRACK_TRUSTED_PROXIES=127.0.0.1/32 PIXELTRACK_LIMITS__PER_IP_PER_MINUTE=1000000000 \
  "$BIN" --data "$D/d" serve --listen 127.0.0.1:18599 --log-level warn >"$OUT/server.log" 2>&1 &
P=$!
for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:18599/healthz && break; sleep 0.2; done
wrk -t2 -c32 -d6s -s scripts/wrk-realistic.lua http://127.0.0.1:18599/ -- 6 "$KEY" - 0 >/dev/null 2>&1
dd if=/dev/zero of="$D/filler" bs=64k 2>/dev/null || true
sleep 1
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$P/stat")
wrk -t2 -c32 -d10s -s scripts/wrk-realistic.lua http://127.0.0.1:18599/ -- 10 "$KEY" - 0 >"$OUT/wrk.txt" 2>&1
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$P/stat")
tail -1 "$OUT/wrk.txt" | tr " " "\n" | grep -E "^(requests|acked|reasons|rps|p50_us|p99_us|timeouts|socket_errors)="
echo "server CPU $(( (u1 - u0 + s1 - s0) * 1000 / $(getconf CLK_TCK) )) ms over the 10 s ($BIN, ${SIZE} MiB)"
rm -f "$D/filler"
mount -o "remount,size=$((SIZE * 4))m" "$D" # space returns, whatever filled the disk
sleep 1.2
curl -s -o /dev/null "http://127.0.0.1:18599/p.gif?s=$KEY&u=https%3A%2F%2Fbench.example%2F"
sleep 0.5
curl -s -o /dev/null -w "readyz after space returns: %{http_code}\n" http://127.0.0.1:18599/readyz
