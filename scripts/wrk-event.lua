-- wrk script: the tracker's `POST /e` (what t.js sends with sendBeacon), every request a
-- page view of one of 2,000 pages from its own client address (X-Forwarded-For: start
-- the server with PIXELTRACK_TRUSTED_PROXIES=127.0.0.1/32), with one of seven referrers.
-- A measurement of that route's cost, not a traffic mix (see docs/benchmarks.md):
--
--   KEY=<site key of shop.example> wrk -t2 -c64 -d10s -s scripts/wrk-event.lua http://127.0.0.1:PORT/
local n = 0
local key = os.getenv("KEY") or error("KEY=<site key> is needed")
local ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
request = function()
  n = n + 1
  local body = string.format(
    '{"s":"%s","n":"pageview","u":"https://shop.example/p/%d","r":"https://news.example/%d","w":1280}',
    key, n % 2000, n % 7)
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("POST", "/e", {
    ["Content-Type"] = "text/plain;charset=UTF-8",
    ["Origin"] = "https://shop.example",
    ["X-Forwarded-For"] = ip,
    ["User-Agent"] = ua,
  }, body)
end
