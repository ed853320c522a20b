-- wrk script for `scripts/bench-pixel.sh --mix realistic`: every request is a
-- different hit, shaped like a real site's traffic (see docs/benchmarks.md,
-- "Realistic traffic mix"), and every response is counted.
--
--   wrk -d <measure + drain>s -s scripts/wrk-realistic.lua http://HOST:PORT/ \
--       -- <measure seconds> <site key> <email paths file, or -> <stream number>
--          [<rate/s> <connections> [email]]
--
-- What one request is (shares of all requests; RATE below):
--   76 %  page view of a human visitor: one of ~2,000 pages, Zipf-distributed, with
--         its title (t=), a referrer (r=) or none, sometimes utm_* in the page URL
--    7 %  custom event of a human visitor (e=signup&p.plan=pro, e=download&p.file=…)
--    1 %  conversion (e=conversion&v=19.99&cur=EUR&id=<order id never sent before>)
--   10 %  bot or HTTP tool (Googlebot, bingbot, AhrefsBot, curl, python-requests,
--         HeadlessChrome) loading a page, uniform over the pages
--  4.5 %  email open (/o/<token>.gif) of one of the tagged recipients
--  1.5 %  email click (/c/<token>) of one of the tagged recipients
-- Without an email paths file the email share becomes page views. With "email" as
-- the seventh argument (bench-pixel.sh --mix email), only email hits: 75 % opens,
-- 25 % clicks.
--
-- Visitors: the client IP goes in X-Forwarded-For. A human hit comes from one of
-- 40,000 known IPs (Zipf-ish, exponent 0.8: some return often, most rarely) or, for
-- 24 % of human hits (about 20 % of all hits), from an IP never sent before (a
-- counter, unique per stream and thread). A known IP always has the same browser.
-- About 15 % of the IPs are IPv6.
--
-- Repeatable: the generator is a counter-based hash seeded with (stream, thread),
-- so the same stream number gives the same requests in the same order per thread,
-- whichever server answers. bench-pixel.sh gives the bare server and pixeltrack the
-- same stream number in each round. Order ids and new IPs include the stream number,
-- so different streams never repeat them (a repeated order id is a `duplicate`,
-- which pixeltrack answers 200 and does not store).
--
-- Measuring and counting work as in wrk-count.lua: after <measure seconds> each
-- connection stops sending (delay() parks it), and done() prints one line with the
-- responses by status, the acknowledged responses (200 or 302 without an
-- X-Pixel-Reason header: what the server says it stored), the X-Pixel-Reason
-- values, latency percentiles, the requests still in flight when wrk exited, and
-- the mix actually sent.

local ffi = require("ffi")
local bit = require("bit")
local band, bor, bxor, rshift, lshift, tobit = bit.band, bit.bor, bit.bxor, bit.rshift, bit.lshift, bit.tobit
local floor, format, concat = math.floor, string.format, table.concat

ffi.cdef([[
  struct wrk_realistic_timespec { long tv_sec; long tv_nsec; };
  int clock_gettime(int clock, struct wrk_realistic_timespec *ts);
]])
local ts = ffi.new("struct wrk_realistic_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- Shares of all requests, in percent (see the header).
local RATE = {
  { "pageview", 76 },
  { "event", 7 },
  { "conversion", 1 },
  { "bot", 10 },
  { "email_open", 4.5 },
  { "email_click", 1.5 },
}
local PAGES = 2000
local PAGE_ZIPF = 1.0
local KNOWN_IPS = 40000
local IP_ZIPF = 0.8
local NEW_VISITOR = 0.24 -- of human web hits
local IPV6 = 0.15
local UTM = 0.12 -- of human page views
local BOT_IPS = 200

---------------------------------------------------------------------------
-- Deterministic integer hashing (32-bit, LuaJIT bit ops) and the generator.

-- a * b mod 2^32 as int32, exact (partial products stay below 2^53).
local function mul32(a, b)
  return tobit(a * band(b, 0xffff) + tobit(a * rshift(b, 16)) * 65536)
end

-- "lowbias32" (Chris Wellons): a bijection of 32-bit integers with good mixing.
local function hash32(x)
  x = tobit(x)
  x = bxor(x, rshift(x, 16))
  x = mul32(x, 0x7feb352d)
  x = bxor(x, rshift(x, 15))
  x = mul32(x, 0x846ca68b)
  x = bxor(x, rshift(x, 16))
  return x
end

local function u32(x)
  return x % 4294967296
end

-- A value in [0, 1) from a fixed key: the same in every thread and every run.
local function fixed(key, salt)
  return u32(hash32(bxor(hash32(key), salt))) / 4294967296
end

-- The per-thread generator: the n-th value of (seed) is hash(hash(n) ^ seed).
local seed, ctr = 0, 0
local function rand()
  ctr = ctr + 1
  return u32(hash32(bxor(hash32(ctr), seed))) / 4294967296
end

-- Cumulative table for weighted picks: { {w, value}, ... } -> cdf, values. Values of
-- weight 0 are left out (never picked, even for a draw of exactly 0).
local function weighted(list)
  local cdf, vals, total = {}, {}, 0
  for _, e in ipairs(list) do
    total = total + e[1]
  end
  local acc = 0
  for _, e in ipairs(list) do
    if e[1] > 0 then
      acc = acc + e[1] / total
      table.insert(cdf, acc)
      table.insert(vals, e[2])
    end
  end
  cdf[#cdf] = 1
  return { cdf = cdf, vals = vals }
end

-- Smallest i with cdf[i] >= u (binary search).
local function search(cdf, u)
  local lo, hi = 1, #cdf
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if cdf[mid] < u then
      lo = mid + 1
    else
      hi = mid
    end
  end
  return lo
end

local function pick(w, u)
  return w.vals[search(w.cdf, u or rand())]
end

-- Zipf over 1..n with exponent s: a cdf to search.
local function zipf(n, s)
  local cdf, total = {}, 0
  for k = 1, n do
    total = total + k ^ -s
    cdf[k] = total
  end
  for k = 1, n do
    cdf[k] = cdf[k] / total
  end
  cdf[n] = 1
  return cdf
end

---------------------------------------------------------------------------
-- What the hits carry.

local function urlencode(s)
  return (s:gsub("[^A-Za-z0-9%-._~]", function(c)
    return format("%%%02X", c:byte())
  end))
end

local BROWSERS = weighted({
  { 30, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36" },
  { 6, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36" },
  { 20, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1" },
  { 4, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1" },
  { 14, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36" },
  { 11, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15" },
  { 8, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0" },
  { 4, "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0" },
  { 3, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0" },
})
local BROWSER_ACCEPT = "\r\nAccept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
  .. "\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br"

local BOTS = weighted({
  { 35, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)" },
  { 10, "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)" },
  { 10, "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)" },
  { 15, "curl/8.5.0" },
  { 15, "python-requests/2.31.0" },
  { 15, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36" },
})

-- Email clients that load the open pixel: user agent and where the load comes from.
local MAIL_CLIENTS = weighted({
  { 40, { "Mozilla/5.0", "apple" } }, -- Apple Mail Privacy Protection
  { 28, { "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", "gmail" } },
  { 12, { "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)", "home" } },
  { 10, { "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "home" } },
  { 5, { "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0", "home" } },
  { 5, { "Mozilla/5.0 (compatible; Barracuda Sentinel URL Scanner)", "scanner" } },
})
local SCANNER_CLICK = 0.05 -- of clicks: a security gateway from 104.47.0.0/16
local LINK_SHARE = { 0.60, 0.85, 0.95 } -- cumulative: link 1, 2, 3, then the rest

local REFERRERS = weighted({
  { 40, false }, -- direct: no r=
  { 18, true }, -- another page of the site
  { 22, "https://www.google.com/" },
  { 1, "https://www.google.de/" },
  { 4, "https://www.bing.com/" },
  { 2, "https://duckduckgo.com/" },
  { 3, "https://t.co/" },
  { 1, "https://twitter.com/" },
  { 3, "https://l.facebook.com/" },
  { 2, "https://news.ycombinator.com/" },
  { 2, "https://www.reddit.com/r/programming/" },
  { 1, "https://www.theguardian.com/technology" },
  { 1, "https://www.bbc.co.uk/news/technology" },
})

local UTMS = weighted({
  { 30, "utm_source=newsletter&utm_medium=email&utm_campaign=weekly_digest" },
  { 20, "utm_source=twitter&utm_medium=social&utm_campaign=launch_2026" },
  { 20, "utm_source=google&utm_medium=cpc&utm_campaign=brand_search" },
  { 10, "utm_source=facebook&utm_medium=paid_social&utm_campaign=spring_sale" },
  { 15, "utm_source=news" },
  { 5, "utm_source=partner_blog&utm_medium=referral" },
})

local EVENTS = weighted({
  { 15, "e=download&p.file=whitepaper-2026.pdf" },
  { 10, "e=download&p.file=pricing-sheet.pdf" },
  { 5, "e=download&p.file=bench-cli-1.4.2.tar.gz" },
  { 15, "e=signup&p.plan=free" },
  { 7, "e=signup&p.plan=pro" },
  { 3, "e=signup&p.plan=team" },
  { 20, "e=newsletter_subscribe&p.list=weekly" },
  { 15, "e=video_play&p.video=product-tour&p.source=homepage" },
  { 10, "e=video_play&p.video=webinar-2026-03" },
})

local ORDERS = weighted({
  { 40, "v=19.99&cur=EUR&p.plan=pro" },
  { 20, "v=49.00&cur=EUR&p.plan=team" },
  { 10, "v=99.90&cur=EUR&p.plan=team" },
  { 20, "v=29.00&cur=USD&p.plan=pro" },
  { 10, "v=15.50&cur=GBP&p.plan=pro" },
})

-- The pages: a fixed list of site pages, then generated blog posts, docs, product
-- and help pages. page[i] = { u = encoded page URL, r = encoded as a referrer,
-- t = encoded title }; rank i is the Zipf rank.
local WORDS = {
  "analytics", "privacy", "pixel", "tracking", "email", "campaign", "dashboard", "report",
  "cookieless", "visitors", "funnel", "goals", "conversion", "revenue", "attribution", "bots",
  "scanner", "sqlite", "rust", "performance", "guide", "setup", "install", "docker", "proxy",
  "nginx", "retention", "consent", "gdpr", "export", "api", "tokens", "webhooks", "release",
  "roadmap", "team", "pricing", "migration", "benchmarks", "sessions", "referrers", "countries",
}
local TITLE_WORDS = { "Café", "Naïve", "Über", "Résumé" } -- some titles are not ASCII
local SECTIONS = { "getting-started", "tracking", "email", "ads", "api", "self-hosting", "privacy" }
local CATEGORIES = { "plans", "add-ons", "integrations", "hardware" }
local FIXED = {
  { "/", "Bench Example – Privacy-first analytics" },
  { "/pricing", "Pricing – Bench Example" },
  { "/features", "Features – Bench Example" },
  { "/blog", "Blog – Bench Example" },
  { "/docs", "Documentation – Bench Example" },
  { "/signup", "Create your account – Bench Example" },
  { "/login", "Sign in – Bench Example" },
  { "/about", "About us – Bench Example" },
  { "/customers", "Customers – Bench Example" },
  { "/integrations", "Integrations – Bench Example" },
  { "/changelog", "Changelog – Bench Example" },
  { "/contact", "Contact – Bench Example" },
  { "/security", "Security – Bench Example" },
  { "/careers", "Careers – Bench Example" },
  { "/status", "Status – Bench Example" },
}
local ORIGIN = "https://bench.example"

local function word(i, salt)
  return WORDS[1 + floor(fixed(i, salt) * #WORDS)]
end

local function cap(w)
  return w:sub(1, 1):upper() .. w:sub(2)
end

local function make_pages()
  local pages, seen = {}, {}
  local function add(path, title)
    if seen[path] then
      return false
    end
    seen[path] = true
    local url = ORIGIN .. path
    table.insert(pages, { path = path, u = urlencode(url), r = urlencode(url), t = urlencode(title) })
    return true
  end
  for _, p in ipairs(FIXED) do
    add(p[1], p[2])
  end
  local i = 0
  while #pages < PAGES do
    i = i + 1
    local kind = fixed(i, 0x51)
    local a, b, c = word(i, 0x52), word(i, 0x53), word(i, 0x54)
    local path, title
    if kind < 0.40 then
      path = format("/blog/%d/%s-%s-%s", 2019 + floor(fixed(i, 0x55) * 8), a, b, c)
      title = format("%s %s and %s – Bench Example blog", cap(a), b, c)
      if fixed(i, 0x56) < 0.05 then
        title = TITLE_WORDS[1 + floor(fixed(i, 0x57) * #TITLE_WORDS)] .. " " .. title
      end
    elseif kind < 0.70 then
      local s = SECTIONS[1 + floor(fixed(i, 0x55) * #SECTIONS)]
      path = format("/docs/%s/%s-%s", s, a, b)
      title = format("%s %s · %s · Docs", cap(a), b, s)
    elseif kind < 0.85 then
      local cat = CATEGORIES[1 + floor(fixed(i, 0x55) * #CATEGORIES)]
      path = format("/products/%s/%s-%s-%d", cat, a, b, 100 + floor(fixed(i, 0x56) * 900))
      title = format("%s %s (%s) – Bench Example shop", cap(a), b, cat)
    else
      path = format("/help/%d-%s-%s", 1000 + floor(fixed(i, 0x55) * 9000), a, b)
      title = format("How do I %s %s? – Help", a, b)
    end
    add(path, title)
  end
  return pages
end

-- IPs. `n` is a distinct input of the hash; a hash that lands in a private,
-- reserved, loopback or scanner network is skipped (the caller moves to n + 1).
local function public_v4(x)
  local a, b = rshift(x, 24), band(rshift(x, 16), 255)
  return not (a == 0 or a == 10 or a == 127 or a >= 224 or (a == 100 and b >= 64 and b < 128)
    or (a == 169 and b == 254) or (a == 172 and b >= 16 and b < 32) or (a == 192 and b == 168)
    or (a == 104 and b == 47) or (a == 198 and (b == 18 or b == 19)))
end

local function v4(x)
  return format("%d.%d.%d.%d", rshift(x, 24), band(rshift(x, 16), 255), band(rshift(x, 8), 255), band(x, 255))
end

-- An IPv6 address in 2a00::/12 (RIPE) or 2600::/12 (ARIN), unique per x.
local function v6(x, y)
  local prefix = (band(y, 1) == 0) and "2a0" or "260"
  return format("%s%x:%x:%x:%x::%x", prefix, 1 + band(rshift(y, 1), 7), rshift(x, 16), band(x, 0xffff),
    band(rshift(y, 8), 0xffff), 1 + band(rshift(y, 24), 0x7f))
end

-- The IP for hash input n (searching upwards for a public v4 address), and the
-- next input to use.
local function ip_at(n)
  while true do
    local x = hash32(n)
    local y = hash32(bxor(n, 0x3c6ef372))
    if u32(y) / 4294967296 < IPV6 then
      return v6(x, y), n + 1
    end
    if public_v4(x) then
      return v4(x), n + 1
    end
    n = n + 1
  end
end

local function pool(first, count)
  local ips, n = {}, first
  for i = 1, count do
    ips[i], n = ip_at(n)
  end
  return ips
end

---------------------------------------------------------------------------
-- Per thread state (each wrk thread has its own copy of this script).

local threads = {}
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid) -- a global of the thread, before its init()
  table.insert(threads, thread)
end

local measure, key, host
local started -- when this thread's first delay() ran
local pages, page_cdf, known_ips, ip_cdf, ip_browser, bot_ips
local recipients = {}
local fresh_n, order_n, stream
local pace_ms = 0
local kinds_w

function init(args)
  measure = tonumber(args[1])
  key = args[2]
  local email_file = args[3]
  stream = tonumber(args[4] or "0")
  if not measure or not key or not stream then
    error("usage: wrk ... -s wrk-realistic.lua URL -- <measure seconds> <site key> <email file|-> <stream> [<rate/s> <connections>]")
  end
  -- Paced (a soak at a set rate): each connection waits connections/rate between its
  -- requests; 0 or absent: as fast as the server answers.
  local rate, conns = tonumber(args[5] or "0"), tonumber(args[6] or "0")
  pace_ms = (rate > 0 and conns > 0) and (conns * 1000 / rate) or 0
  host = wrk.host .. ((wrk.port and wrk.port ~= "") and (":" .. wrk.port) or "")
  seed = hash32(stream * 7919 + tid * 104729 + 1)

  pages = make_pages()
  page_cdf = zipf(#pages, PAGE_ZIPF)
  known_ips = pool(0, KNOWN_IPS)
  ip_cdf = zipf(KNOWN_IPS, IP_ZIPF)
  ip_browser = {} -- a known IP always uses the same browser
  for i = 1, KNOWN_IPS do
    ip_browser[i] = pick(BROWSERS, fixed(i, 0x61))
  end
  bot_ips = pool(0x100000, BOT_IPS)
  -- Never-seen IPs: hash inputs from 2^24 up, a separate block of 2^24 inputs per
  -- (stream, thread); the hash is a bijection, so they differ from every other IP.
  fresh_n = (1 + (stream * 16 + tid) % 255) * 16777216

  if email_file and email_file ~= "-" then
    local f = assert(io.open(email_file, "r"))
    local by = {}
    for line in f:lines() do
      local i, kind, path = line:match("^(%d+) ([oc]) (%S+)$")
      if i then
        i = tonumber(i)
        by[i] = by[i] or { clicks = {} }
        if kind == "o" then
          by[i].open = path
        else
          table.insert(by[i].clicks, path)
        end
      end
    end
    f:close()
    for i, r in pairs(by) do
      if r.open and #r.clicks > 0 then
        r.client = pick(MAIL_CLIENTS, fixed(i, 0x71))
        -- The recipient is one of the known visitors: their IP and their browser.
        local v = 1 + floor(fixed(i, 0x73) * KNOWN_IPS)
        r.ip, r.browser = known_ips[v], ip_browser[v]
        r.index = i
        table.insert(recipients, r)
      end
    end
    table.sort(recipients, function(a, b)
      return a.index < b.index
    end)
  end
  local only_email = args[7] == "email"
  if only_email and #recipients == 0 then
    error("an email-only mix needs an email paths file with recipients")
  end
  local rate = {}
  for _, e in ipairs(RATE) do
    local w = e[2]
    if only_email then
      w = (e[1] == "email_open" and 75) or (e[1] == "email_click" and 25) or 0
    elseif #recipients == 0 and e[1]:find("^email_") then
      w = 0
    elseif #recipients == 0 and e[1] == "pageview" then
      w = w + 6
    end
    table.insert(rate, { w, e[1] })
  end
  kinds_w = weighted(rate)

  order_n = 0
  -- Globals, so that done() can read them with thread:get().
  statuses = {} -- status code -> responses
  responses = 0 -- all responses
  acked = 0 -- 200 or 302 without X-Pixel-Reason: stored, says the server
  reasons = {} -- X-Pixel-Reason value -> responses
  measured = 0 -- responses before this thread stopped sending
  elapsed = 0 -- seconds from its first request until it stopped sending
  sent = 0 -- request() calls
  kinds = {} -- kind of request -> requests generated
  email_recipients = #recipients
end

function delay()
  local t = now()
  started = started or t
  if t - started < measure then
    return pace_ms
  end
  if elapsed == 0 then
    elapsed, measured = t - started, responses
  end
  return 3600 * 1000 -- park the connection until wrk exits
end

local function get(path, ua, ip, browser)
  return "GET " .. path .. " HTTP/1.1\r\nHost: " .. host .. "\r\nUser-Agent: " .. ua
    .. "\r\nX-Forwarded-For: " .. ip .. (browser and BROWSER_ACCEPT or "\r\nAccept: */*") .. "\r\n\r\n"
end

-- A human visitor: (IP, user agent).
local function visitor()
  if rand() < NEW_VISITOR then
    local ip
    ip, fresh_n = ip_at(fresh_n)
    return ip, pick(BROWSERS)
  end
  local i = search(ip_cdf, rand())
  return known_ips[i], ip_browser[i]
end

local function page()
  return pages[search(page_cdf, rand())]
end

local generate = {}

function generate.pageview()
  local ip, ua = visitor()
  local p = page()
  local u = p.u
  if rand() < UTM then
    u = u .. "%3F" .. urlencode(pick(UTMS))
  end
  local ref = pick(REFERRERS)
  local r = ""
  if ref == true then
    r = "&r=" .. page().r
  elseif ref then
    r = "&r=" .. urlencode(ref)
  end
  return get("/p.gif?s=" .. key .. "&u=" .. u .. "&t=" .. p.t .. r, ua, ip, true)
end

function generate.event()
  local ip, ua = visitor()
  return get("/p.gif?s=" .. key .. "&" .. pick(EVENTS) .. "&u=" .. page().u, ua, ip, true)
end

local THANK_YOU = urlencode(ORIGIN .. "/checkout/thank-you")
function generate.conversion()
  local ip, ua = visitor()
  order_n = order_n + 1
  local id = format("bench-%d-%d-%d", stream, tid, order_n)
  return get("/p.gif?s=" .. key .. "&e=conversion&" .. pick(ORDERS) .. "&id=" .. id .. "&u=" .. THANK_YOU,
    ua, ip, true)
end

function generate.bot()
  local p = pages[1 + floor(rand() * #pages)]
  return get("/p.gif?s=" .. key .. "&u=" .. p.u .. "&t=" .. p.t, pick(BOTS), bot_ips[1 + floor(rand() * BOT_IPS)], false)
end

local function random_in(prefix)
  return format("%s.%d.%d", prefix, floor(rand() * 256), 1 + floor(rand() * 254))
end

function generate.email_open()
  local r = recipients[1 + floor(rand() * #recipients)]
  local ua, from = r.client[1], r.client[2]
  local ip = r.ip
  if from == "apple" then
    ip = random_in("17.58")
  elseif from == "gmail" then
    ip = random_in("66.102")
  elseif from == "scanner" then
    ip = random_in("104.47")
  end
  return get(r.open, ua, ip, from == "home")
end

function generate.email_click()
  local r = recipients[1 + floor(rand() * #recipients)]
  local u, k = rand(), 1
  while k <= #LINK_SHARE and u >= LINK_SHARE[k] do
    k = k + 1
  end
  local path = r.clicks[math.min(k, #r.clicks)]
  if rand() < SCANNER_CLICK then
    return get(path, "Mozilla/5.0 (compatible; Barracuda Sentinel URL Scanner)", random_in("104.47"), false)
  end
  return get(path, r.browser, r.ip, true)
end

function request()
  local kind = pick(kinds_w)
  -- wrk calls request() once in the first thread before it starts, to check the
  -- request; that one is never sent. Every connection calls delay() before its
  -- first request, so a call before any delay() is that check.
  if started then
    sent = sent + 1
    kinds[kind] = (kinds[kind] or 0) + 1
  end
  return generate[kind]()
end

function response(status, headers)
  statuses[status] = (statuses[status] or 0) + 1
  responses = responses + 1
  local reason = headers["X-Pixel-Reason"] or headers["x-pixel-reason"]
  if reason then
    reasons[reason] = (reasons[reason] or 0) + 1
  elseif status == 200 or status == 302 then
    acked = acked + 1
  end
end

local function list(t)
  local out = {}
  for k, n in pairs(t) do
    table.insert(out, format("%s:%d", tostring(k), n))
  end
  table.sort(out)
  return #out > 0 and concat(out, ",") or "-"
end

function done(summary, latency, requests)
  local total, why, mix = {}, {}, {}
  local rps, all_measured = 0, true
  local sum = { responses = 0, acked = 0, sent = 0 }
  local nrecipients = 0
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do
      total[code] = (total[code] or 0) + n
    end
    for r, n in pairs(t:get("reasons")) do
      why[r] = (why[r] or 0) + n
    end
    for k, n in pairs(t:get("kinds")) do
      mix[k] = (mix[k] or 0) + n
    end
    sum.responses = sum.responses + t:get("responses")
    sum.acked = sum.acked + t:get("acked")
    sum.sent = sum.sent + t:get("sent")
    nrecipients = t:get("email_recipients")
    local e = t:get("elapsed")
    if e > 0 then
      rps = rps + t:get("measured") / e
    else
      all_measured = false
    end
  end
  if not all_measured then
    rps = summary.requests / (summary.duration / 1e6)
  end
  local inflight = sum.sent - sum.responses
  local nreasons = 0
  for _, n in pairs(why) do
    nreasons = nreasons + n
  end
  local e = summary.errors
  io.write(format(
    "wrk-realistic: requests=%d non2xx=%d status200=%d status302=%d responses=%d acked=%d"
      .. " pixel_reason=%d reasons=%s rps=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d"
      .. " socket_errors=%d timeouts=%d inflight=%d statuses=%s recipients=%d mix=%s\n",
    summary.requests, e.status, total[200] or 0, total[302] or 0, sum.responses, sum.acked,
    nreasons, list(why), rps,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max,
    e.connect + e.read + e.write + e.timeout, e.timeout, inflight, list(total), nrecipients, list(mix)
  ))
end
