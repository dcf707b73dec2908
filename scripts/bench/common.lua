-- Shared by every benchmark script: thread ids, data files, URL encoding, and a
-- done() that prints one machine-readable line for scripts/bench.py to parse.
-- wrk runs one Lua state per thread; setup() runs in the main state once per thread.

local M = {}
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local now_ts = ffi.new("bench_timespec")
local threads, next_id = {}, 0

-- BENCH_TID_BASE: where this wrk process's thread ids start, so that two wrk processes
-- driving two servers at once (scripts/bench.py on PostgreSQL) never share a thread id.
local tid_base = tonumber(os.getenv("BENCH_TID_BASE") or "0")

function setup(thread)
   thread:set("tid", tid_base + next_id)
   threads[#threads + 1] = thread
   next_id = next_id + 1
end

-- Monotonic microseconds.
function M.now()
   ffi.C.clock_gettime(1, now_ts)
   return tonumber(now_ts.tv_sec) * 1e6 + tonumber(now_ts.tv_nsec) / 1e3
end

-- For a workload of a fixed number of requests: count answers, remember when the thread
-- started and finished, and once `quota` answers are in, stop the thread and drop a
-- marker file so scripts/bench.py can end wrk (which otherwise sleeps out its -d).
function M.mark_start()
   if first_at == nil then first_at = M.now() end
end

function M.quota_response(quota)
   local answered = 0
   return function(status, headers, body)
      answered = answered + 1
      responses = answered  -- read back by done(): answers per thread (writer fairness)
      if answered == quota then
         last_at, finished = M.now(), answered
         local marker = io.open(os.getenv("BENCH_DONE_DIR") .. "/done." .. tid, "w")
         marker:write(tostring(answered))
         marker:close()
         wrk.thread:stop()
      end
   end
end

function M.lines(path)
   local items = {}
   for line in io.lines(path) do
      if line ~= "" then items[#items + 1] = line end
   end
   return items
end

function M.urlencode(text)
   return (string.gsub(text, "[^%w%-%._~]", function(c)
      return string.format("%%%02X", string.byte(c))
   end))
end

function M.seed()
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function done(summary, latency, requests)
   local e = summary.errors
   -- Quota runs: the window from the first answer to the last thread's last one.
   local window, first, last = 0, nil, nil
   for _, t in ipairs(threads) do
      local a, b = t:get("first_at"), t:get("last_at")
      if a and (first == nil or a < first) then first = a end
      if b and (last == nil or b > last) then last = b end
   end
   if first and last then window = last - first end
   local per_thread = {}
   for _, t in ipairs(threads) do
      per_thread[#per_thread + 1] = tostring(t:get("responses") or 0)
   end
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
      '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,"window_us":%d,' ..
      '"per_thread":[%s]}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.mean, latency.max, window, table.concat(per_thread, ",")))
end

return M
