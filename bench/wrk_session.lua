-- SPDX-License-Identifier: BSL-1.0
-- wrk script for scripts/bench.sh and scripts/soak.sh: requests carrying a session cookie
-- ("name=value", obtained first with curl), or none.
--   WS_COOKIE="c"            every request sends the same cookie, so each one loads and saves
--                            one existing session (the worst case: concurrent requests contend)
--   WS_COOKIES="c1 c2 ..."   each wrk thread sends the cookies in turn, one per request (N
--                            sessions: concurrent requests rarely share one)
--   neither                  no cookie: every request is a new visitor, for whom the server
--                            creates a session (scripts/soak.sh: the sessions nobody uses again)
--   WS_DELAY_MS=n            each connection waits n ms before each request (a paced load)
-- At the end one line "WRKJSON {...}" gives the throughput, the error counts and the latency
-- percentiles in microseconds.
local cookie = os.getenv("WS_COOKIE")
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

local list = os.getenv("WS_COOKIES")
if list and list ~= "" then
  local requests_by_cookie, next_one = {}, 0
  function init(args)
    for c in list:gmatch("%S+") do
      wrk.headers["Cookie"] = c
      requests_by_cookie[#requests_by_cookie + 1] = wrk.format()
    end
  end
  function request()
    next_one = next_one % #requests_by_cookie + 1
    return requests_by_cookie[next_one]
  end
end

local delay_ms = tonumber(os.getenv("WS_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "ops_per_s": %.1f, "errors": %d, ' ..
    '"non_2xx": %d, "timeouts": %d, "p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, ' ..
    '"p999_us": %.1f, "max_us": %.1f}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6), errors,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
