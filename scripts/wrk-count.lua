-- wrk script for scripts/bench-pixel.sh: counts responses by status code over all
-- wrk threads and prints them, with the request rate, from done().
--
--   wrk -d <measure + drain>s -s scripts/wrk-count.lua URL -- <measure seconds>
--
-- After <measure> seconds each connection stops sending (delay() parks it), so
-- when wrk exits no request is in flight: a request cut off at exit may already
-- have been recorded by the server although its response is never counted here.
-- The rate is computed over the measured part only.
--
-- wrk runs each thread in its own Lua state, and setup()/done() in a third one:
-- the counters are globals of each thread's state, and done() sums them through
-- the thread objects that setup() kept.

local ffi = require("ffi")
ffi.cdef([[
  struct wrk_count_timespec { long tv_sec; long tv_nsec; };
  int clock_gettime(int clock, struct wrk_count_timespec *ts);
]])
local ts = ffi.new("struct wrk_count_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Per thread (locals of this thread's copy of the script).
local measure, started

function init(args)
  measure = tonumber(args[1])
  if not measure then
    error("usage: wrk ... -s wrk-count.lua URL -- <measure seconds>")
  end
  -- Globals, so that done() can read them with thread:get().
  statuses = {} -- status code -> responses
  responses = 0 -- all responses
  reasons = 0 -- responses carrying X-Pixel-Reason (answered, not stored)
  measured = 0 -- responses before this thread stopped sending
  elapsed = 0 -- seconds from its first request until it stopped sending
end

function delay()
  local t = now()
  started = started or t
  if t - started < measure then
    return 0
  end
  if elapsed == 0 then
    elapsed, measured = t - started, responses
  end
  return 3600 * 1000 -- park the connection until wrk exits
end

function response(status, headers)
  statuses[status] = (statuses[status] or 0) + 1
  responses = responses + 1
  if headers["x-pixel-reason"] or headers["X-Pixel-Reason"] then
    reasons = reasons + 1
  end
end

function done(summary, latency)
  local total, codes, rps, all_measured = {}, {}, 0, true
  local sum = { responses = 0, reasons = 0 }
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do
      total[code] = (total[code] or 0) + n
    end
    sum.responses = sum.responses + t:get("responses")
    sum.reasons = sum.reasons + t:get("reasons")
    local e = t:get("elapsed")
    if e > 0 then
      rps = rps + t:get("measured") / e
    else
      all_measured = false
    end
  end
  if not all_measured then
    -- Some thread never reached the end of the measured part (wrk -d too short).
    rps = summary.requests / (summary.duration / 1e6)
  end
  for code, n in pairs(total) do
    table.insert(codes, string.format("%d:%d", code, n))
  end
  table.sort(codes)
  local e = summary.errors
  io.write(
    string.format(
      "wrk-count: requests=%d non2xx=%d status200=%d responses=%d pixel_reason=%d"
        .. " rps=%.1f p50_us=%d p99_us=%d socket_errors=%d statuses=%s\n",
      summary.requests,
      e.status,
      total[200] or 0,
      sum.responses,
      sum.reasons,
      rps,
      latency:percentile(50),
      latency:percentile(99),
      e.connect + e.read + e.write + e.timeout,
      table.concat(codes, ",")
    )
  )
end
