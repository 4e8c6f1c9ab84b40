-- Shared by the scripts that end sessions (delete.lua, mixed.lua): each wrk
-- thread sends a planned number of requests, then holds its connections,
-- prints `thread-done` once every answer is in, and stops (`cargo xtask
-- bench` interrupts wrk when all have, so a pool smaller than the run's
-- duration allows ends the run early). Throughput is measured here, from
-- the first request sent to the last answer received, since wrk divides by
-- the whole -d duration. The ids answered 202 are read from the Location
-- header and written to a file, so the caller can check that each of them
-- is durable after killing the server.

local report = require("report")

local M = {}

-- Defines wrk's setup, init, delay, request, response and done from `spec`:
--   spec.name         what the script runs, for the messages
--   spec.init(args)   reads the script's arguments in a thread; answers the
--                     file to write the ids answered 202 to
--   spec.planned()    how many requests this thread sends
--   spec.request(i)   this thread's i-th request (1-based); nil: any
--                     request, for wrk's parse check
--   spec.answer(s)    optional: true when status s (not 202) is expected
--   spec.counters     optional: names of numeric globals spec.answer keeps,
--                     summed over the threads in the JSON line
function M.install(spec)
   -- In the main state: the threads, for done().
   local threads = {}

   function setup(thread)
      thread:set("tid", #threads)
      threads[#threads + 1] = thread
   end

   -- In each thread's state: globals, for done() to read.
   issued, answered, others = 0, 0, 0
   first_us, last_us = -1, -1
   acked = {}
   acked_file = nil
   for _, name in ipairs(spec.counters or {}) do
      _G[name] = 0
   end
   local next_req, reserved = 1, 0
   local verified, finished = false, false

   function init(args)
      acked_file = spec.init(args)
   end

   -- wrk asks delay() before each request of a connection: a request is
   -- promised here, so no two connections send the last one.
   function delay()
      if reserved >= spec.planned() then
         return 3600 * 1000 -- nothing left to send: hold the connection
      end
      reserved = reserved + 1
      return 0
   end

   function request()
      -- wrk calls request() once on the first thread, before it runs, only
      -- to check that the request parses: that call must use up nothing.
      if tid == 0 and not verified then
         verified = true
         return spec.request(nil)
      end
      local i = next_req
      next_req = next_req + 1
      issued = issued + 1
      if first_us < 0 then
         first_us = report.now_us()
      end
      return spec.request(i)
   end

   function response(status, headers, body)
      answered = answered + 1
      last_us = report.now_us()
      if status == 202 then
         -- A 202 without the session's id still counts: the check cannot
         -- find it on disk, so it shows up as lost rather than unseen.
         local location = headers["location"] or headers["Location"] or ""
         acked[#acked + 1] = location:match("([^/]+)$")
            or ("(202 without a Location, thread " .. tid .. ", answer " .. answered .. ")")
      elseif not (spec.answer and spec.answer(status)) then
         others = others + 1
         if others <= 3 then
            io.stderr:write(spec.name, " answered ", status, ": ", body, "\n")
         end
      end
      if answered >= spec.planned() and not finished then
         finished = true
         io.write("thread-done\n")
         io.stdout:flush()
         wrk.thread:stop()
      end
   end

   function done(summary, latency, requests)
      local counters = spec.counters or {}
      local out = assert(io.open(threads[1]:get("acked_file"), "w"))
      local totals = { acked = 0, other_status = 0, answered = 0 }
      for _, name in ipairs(counters) do
         totals[name] = 0
      end
      local first, last = nil, nil
      for _, t in ipairs(threads) do
         for _, id in ipairs(t:get("acked")) do
            out:write(id, "\n")
            totals.acked = totals.acked + 1
         end
         totals.other_status = totals.other_status + t:get("others")
         totals.answered = totals.answered + t:get("answered")
         for _, name in ipairs(counters) do
            totals[name] = totals[name] + t:get(name)
         end
         local f, l = t:get("first_us"), t:get("last_us")
         if f >= 0 and (first == nil or f < first) then first = f end
         if l >= 0 and (last == nil or l > last) then last = l end
      end
      out:close()
      totals.elapsed_us = (first and last and last > first) and (last - first) or 0
      report.emit(summary, latency, totals)
   end
end

-- The DELETE requests of the ids in `file` that fall to thread `tid` of
-- `nthreads` (every n-th), so no two threads end the same session.
function M.share(file, nthreads, tid)
   local reqs, n = {}, 0
   for id in io.lines(file) do
      if n % nthreads == tid then
         reqs[#reqs + 1] = wrk.format("DELETE", "/api/v1/ActivitySession/" .. id)
      end
      n = n + 1
   end
   if #reqs == 0 then
      error("thread " .. tid .. " has no session ids to end in " .. file)
   end
   return reqs
end

return M
