-- Drop-in replacement for peer-bench's bench.lua (same arguments, same WRKRESULT line),
-- used by bench/run.sh in a private copy of peer-bench.
--
-- Two additions, both off unless their environment variable is set:
--   BENCH_VARY_BODY=1   every request gets its own body: "@N@" in the body file is replaced
--                       by "<run>-<thread>-<counter>" (run = start time + random, so a
--                       warm-up and the measured run never repeat a body). Our write path refuses a duplicate (same
--                       author, same text, same thread: 409), Isso's does not, so without
--                       this every post after the first would be a 409. A body without
--                       "@N@" is sent unchanged (Isso's), through the same per-request code.
--   BENCH_HEADER="Name: value"   one extra request header (e.g. If-None-Match for the 304 run).
local method, body_file, ctype, body
local vary = os.getenv("BENCH_VARY_BODY")
local extra = os.getenv("BENCH_HEADER")
local counter = 0
local thread_ids = 0
math.randomseed(os.time())
local run_id = tostring(os.time()) .. tostring(math.random(100000, 999999))

function setup(thread)
  thread_ids = thread_ids + 1
  thread:set("tid", run_id .. "-" .. tostring(thread_ids))
end

function init(args)
  method = args[1] or "GET"
  body_file = args[2]
  ctype = args[3] or "application/json"
  wrk.method = method
  if body_file and body_file ~= "-" and body_file ~= "" then
    local f = assert(io.open(body_file, "rb"))
    body = f:read("*a")
    f:close()
    body = body:gsub("\n$", "")
    wrk.body = body
    wrk.headers["Content-Type"] = ctype
  end
  if extra and extra ~= "" then
    local name, value = extra:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
end

if vary and vary ~= "" and vary ~= "0" then
  function request()
    counter = counter + 1
    local b = body and body:gsub("@N@", tostring(tid) .. "-" .. tostring(counter)) or nil
    return wrk.format(nil, nil, nil, b)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRKRESULT requests=%d duration_s=%.3f rps=%.2f bytes=%d non2xx=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d " ..
    "lat_mean_us=%.0f lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d lat_max_us=%d\n",
    summary.requests, secs, summary.requests / secs, summary.bytes, e.status,
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
