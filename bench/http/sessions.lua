-- wrk script of bench/http/bench.ts: every request is `GET /index.php?a=hit` with the cookie of one of
-- the sessions listed in the file named by SM_WRK_IDS (one session ID a line), round robin; threads
-- start at different places in the list. Counts answers whose session was missing (the app answers
-- {"missing":true}: the user would have been logged out) and prints one line
-- `SMJSON {...}` with requests, errors and latency percentiles (microseconds) at the end.
-- wrk's Lua API: https://github.com/wg/wrk/blob/master/SCRIPTING

local ids = {}
local cookie_name = os.getenv("SM_WRK_COOKIE") or "PHPSESSID"
local path = os.getenv("SM_WRK_PATH") or "/index.php?a=hit"
local threads = {}

local function load_ids()
  local file = os.getenv("SM_WRK_IDS")
  if file == nil then error("SM_WRK_IDS is not set") end
  for line in io.lines(file) do
    if #line > 0 then ids[#ids + 1] = line end
  end
  if #ids == 0 then error("no session IDs in " .. file) end
end

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local counter = 0
missing = 0
non2xx = 0

function init(args)
  load_ids()
  counter = math.floor((tid or 0) * #ids / 2)
end

function request()
  counter = counter + 1
  local sid = ids[(counter % #ids) + 1]
  return wrk.format("GET", path, { ["Cookie"] = cookie_name .. "=" .. sid })
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif string.find(body, '"missing"', 1, true) then
    missing = missing + 1
  end
end

function done(summary, latency, requests)
  local m, n = 0, 0
  for _, t in ipairs(threads) do
    m = m + (t:get("missing") or 0)
    n = n + (t:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'SMJSON {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,"missing":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, n, m, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
