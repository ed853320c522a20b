#!/usr/bin/env bash
# How fast `pixeltrack import` reads an nginx log into the embedded store
# (docs/benchmarks.md, "Importing logs").
#
# usage: scripts/bench-import.sh [LINES]
#   Needs a release build (BIN, default target/release/pixeltrack) and python3.
#   Writes LINES (default 1,000,000) nginx "combined" lines over 7 days: 90 % pixel
#   hits of one site (20,000 visitors by IP and user agent, 40 pages, referrers, UTM
#   tags, 5 % bots), 10 % pages and assets. Imports them into a fresh data dir
#   (first run: everything written), then again (every line a duplicate: the cost of
#   reading, parsing and the dedupe lookups alone, the baseline of the same run), and
#   checks that the second run stored nothing and the first stored every pixel hit.
#   BENCH_DATA_FROM=DIR imports into a copy of DIR's data (a grown store) instead of a
#   fresh one.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-1000000}
BIN=${BIN:-target/release/pixeltrack}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if [ -n "${BENCH_DATA_FROM:-}" ]; then
  cp -a "$BENCH_DATA_FROM" "$dir/d"
fi
# A grown store made by an earlier run holds the site already: its key is reused.
"$BIN" --data "$dir/d" site list --json > "$dir/sites.json" 2>/dev/null || echo '[]' > "$dir/sites.json"
KEY=$(python3 -c 'import json,sys; print(next((s["key"] for s in json.load(open(sys.argv[1])) if s["domain"] == "bench.example"), ""))' "$dir/sites.json")
if [ -z "$KEY" ]; then
  "$BIN" --data "$dir/d" site add bench.example --json > "$dir/site.json"
  KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$dir/site.json")
fi
python3 - "$LINES" "$KEY" > "$dir/access.log" <<'EOF'
import random, sys, time
n, key = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(16)
uas = [
 "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
 "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
 "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
 "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
 "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
]
bots = ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "curl/8.5.0"]
refs = ["-", "https://www.google.com/", "https://news.ycombinator.com/item?id=42", "https://duckduckgo.com/", "https://t.co/x1"]
visitors = [("%d.%d.%d.%d" % (rnd.randrange(1, 224), rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255)), rnd.choice(uas)) for _ in range(20000)]
start = int(time.time()) - 8 * 86400
out = sys.stdout
for i in range(n):
    t = start + i * (7 * 86400) // n
    ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
    ip, ua = rnd.choice(visitors)
    if rnd.random() < 0.05:
        ua = rnd.choice(bots)
    if rnd.random() < 0.10:
        out.write('%s - - [%s] "GET /static/app.%d.css HTTP/1.1" 200 5120 "-" "%s"\n' % (ip, ts, i % 7, ua))
        continue
    page = "/page/%d" % rnd.randrange(40)
    if rnd.random() < 0.1:
        page += "%3Futm_source%3Dnews%26utm_medium%3Demail"
    out.write('%s - - [%s] "GET /p.gif?s=%s&u=https%%3A%%2F%%2Fbench.example%s HTTP/1.1" 200 43 "%s" "%s"\n'
              % (ip, ts, key, page, rnd.choice(refs), ua))
EOF
ls -l "$dir/access.log" | awk '{printf "log: %d bytes\n", $5}'
run() {
  local t0 t1
  t0=$(date +%s.%N)
  "$BIN" --data "$dir/d" import --json --format nginx --site bench.example "$dir/access.log" > "$dir/$1.json"
  t1=$(date +%s.%N)
  python3 - "$dir/$1.json" "$t0" "$t1" "$1" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1])); wall = float(sys.argv[3]) - float(sys.argv[2])
print("%-8s lines %d imported %d duplicate %d  %.2f s  %.0f lines/s (wall, process start included)"
      % (sys.argv[4], s["lines"], s["imported"], s["skipped_by_reason"].get("duplicate", 0), wall, s["lines"] / wall))
EOF
}
run first
run again
python3 - "$dir/first.json" "$dir/again.json" <<'EOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ok = b["imported"] == 0 and b["skipped_by_reason"].get("duplicate", 0) == a["imported"]
print("ratio first/again: %.2f" % (a["seconds"] / max(b["seconds"], 1e-9)))
print("OK" if ok else "MISMATCH: a re-import stored events or missed duplicates")
sys.exit(0 if ok else 1)
EOF
du -sh "$dir/d" | awk '{print "data dir: " $1}'
