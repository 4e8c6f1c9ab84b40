-- DeleteAsync over distinct Active sessions: every session is ended once.
-- Script arguments: a file of Active session ids (one a line), the number of
-- wrk threads, and a file to write the ids answered 202 to.
--
-- Each thread takes every n-th id. A thread that has sent all of its ids stops
-- sending (delay() holds its connections) and, once every answer is in, prints
-- `thread-done` and stops; `cargo xtask bench` interrupts wrk when all have,
-- so a pool smaller than the run's duration allows ends the run early.
-- Throughput is measured here, from the first request sent to the last answer
-- received, since wrk divides by the whole -d duration. The ids answered 202
-- are read from the Location header, so the caller can check that each of
-- them is durable after killing the server.

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

-- In the main state: the threads, for done().
local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   threads[#threads + 1] = thread
end

-- In each thread's state.
local reqs = {}
local next_req = 1 -- the next request() sends reqs[next_req]
local reserved = 0 -- ids promised by delay() to a connection
local verified = false
local finished = false
issued = 0
answered = 0
acked = {}
others = 0
first_us = -1
last_us = -1
acked_file = nil

function init(args)
   local nthreads = tonumber(args[2])
   acked_file = args[3]
   local n = 0
   for id in io.lines(args[1]) do
      if n % nthreads == tid then
         reqs[#reqs + 1] = wrk.format("DELETE", "/api/v1/ActivitySession/" .. id)
      end
      n = n + 1
   end
   if #reqs == 0 then
      error("thread " .. tid .. " has no session ids in " .. args[1])
   end
end

-- wrk asks delay() before each request of a connection: an id is promised
-- here, so no two connections send the last one.
function delay()
   if reserved >= #reqs then
      return 3600 * 1000 -- nothing left to send: hold the connection
   end
   reserved = reserved + 1
   return 0
end

function request()
   -- wrk calls request() once on the first thread, before it runs, only to
   -- check that the request parses: that call must not use up an id.
   if tid == 0 and not verified then
      verified = true
      return reqs[1]
   end
   local req = reqs[next_req]
   next_req = next_req + 1
   issued = issued + 1
   if first_us < 0 then
      first_us = report.now_us()
   end
   return req
end

function response(status, headers, body)
   answered = answered + 1
   last_us = report.now_us()
   if status == 202 then
      local location = headers["location"] or headers["Location"] or ""
      -- A 202 without the session's id still counts: the check cannot find
      -- it on disk, so it shows up as lost rather than unseen.
      acked[#acked + 1] = location:match("([^/]+)$")
         or ("(202 without a Location, thread " .. tid .. ", answer " .. answered .. ")")
   else
      others = others + 1
      if others <= 3 then
         io.stderr:write("DeleteAsync answered ", status, ": ", body, "\n")
      end
   end
   if answered >= #reqs and not finished then
      finished = true
      io.write("thread-done\n")
      io.stdout:flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local out = assert(io.open(threads[1]:get("acked_file"), "w"))
   local n_acked, n_others, n_answered, first, last = 0, 0, 0, nil, nil
   for _, t in ipairs(threads) do
      for _, id in ipairs(t:get("acked")) do
         out:write(id, "\n")
         n_acked = n_acked + 1
      end
      n_others = n_others + t:get("others")
      n_answered = n_answered + t:get("answered")
      local f, l = t:get("first_us"), t:get("last_us")
      if f >= 0 and (first == nil or f < first) then first = f end
      if l >= 0 and (last == nil or l > last) then last = l end
   end
   out:close()
   local elapsed = (first and last and last > first) and (last - first) or 0
   report.emit(summary, latency, {
      acked = n_acked,
      other_status = n_others,
      answered = n_answered,
      elapsed_us = elapsed,
   })
end
