-- Shared by the benchmark's wrk scripts (see xtask/src/bench.rs): a
-- monotonic clock in microseconds, and the one JSON line each run ends with,
-- which `cargo xtask bench` reads (wrk's own text summary is not parsed).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]

local M = {}
local ts = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

function M.now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
   return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

-- Prints `BENCH-RESULT {...}` with wrk's totals and latency percentiles
-- (microseconds); `extra` adds numeric fields.
function M.emit(summary, latency, extra)
   local fields = {
      string.format('"requests":%d', summary.requests),
      string.format('"duration_us":%d', summary.duration),
      string.format('"status_errors":%d', summary.errors.status),
      string.format('"socket_errors":%d', summary.errors.connect + summary.errors.read
         + summary.errors.write + summary.errors.timeout),
      string.format('"p50_us":%d', latency:percentile(50)),
      string.format('"p99_us":%d', latency:percentile(99)),
      string.format('"mean_us":%.1f', latency.mean),
      string.format('"max_us":%d', latency.max),
   }
   for k, v in pairs(extra or {}) do
      fields[#fields + 1] = string.format('"%s":%.3f', k, v)
   end
   io.write("BENCH-RESULT {" .. table.concat(fields, ",") .. "}\n")
   io.stdout:flush()
end

return M
