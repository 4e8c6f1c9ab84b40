-- GetByIdAsync with DeleteAsync alongside: of every `every` requests one is a
-- DELETE of a distinct Active session, the others GETs of random sessions.
-- Script arguments: a file of session ids to read, a file of Active session
-- ids to end (one a line), the number of wrk threads, a file to write the
-- ids answered 202 to, and `every`.
--
-- Each thread takes every n-th id to end and plans `every` requests per id;
-- once it has sent them all it holds its connections, prints `thread-done`
-- when every answer is in, and stops, as delete.lua does. Throughput is
-- measured here, from the first request sent to the last answer. GETs answer
-- 200 and DELETEs 202, which is how the answers are told apart.

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

-- In the main state: the threads, for done().
local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   threads[#threads + 1] = thread
end

-- In each thread's state.
local gets = {}
local ends = {}
local every = 10
local planned = 0
local next_req = 1
local reserved = 0
local verified = false
local finished = false
issued = 0
answered = 0
read = 0
acked = {}
others = 0
first_us = -1
last_us = -1
acked_file = nil

function init(args)
   for id in io.lines(args[1]) do
      gets[#gets + 1] = wrk.format("GET", "/api/v1/ActivitySession/" .. id)
   end
   local nthreads = tonumber(args[3])
   acked_file = args[4]
   every = tonumber(args[5])
   local n = 0
   for id in io.lines(args[2]) do
      if n % nthreads == tid then
         ends[#ends + 1] = wrk.format("DELETE", "/api/v1/ActivitySession/" .. id)
      end
      n = n + 1
   end
   if #gets == 0 or #ends == 0 then
      error("thread " .. tid .. " has no ids to read or to end")
   end
   planned = #ends * every
   math.randomseed(os.time() + tid)
end

function delay()
   if reserved >= planned then
      return 3600 * 1000 -- nothing left to send: hold the connection
   end
   reserved = reserved + 1
   return 0
end

function request()
   -- The parse check's call (first thread, before it runs) uses up nothing.
   if tid == 0 and not verified then
      verified = true
      return gets[1]
   end
   local i = next_req
   next_req = next_req + 1
   issued = issued + 1
   if first_us < 0 then
      first_us = report.now_us()
   end
   if i % every == 0 then
      return ends[math.floor(i / every)]
   end
   return gets[math.random(#gets)]
end

function response(status, headers, body)
   answered = answered + 1
   last_us = report.now_us()
   if status == 200 then
      read = read + 1
   elseif status == 202 then
      local location = headers["location"] or headers["Location"] or ""
      acked[#acked + 1] = location:match("([^/]+)$")
         or ("(202 without a Location, thread " .. tid .. ", answer " .. answered .. ")")
   else
      others = others + 1
      if others <= 3 then
         io.stderr:write("mixed run answered ", status, ": ", body, "\n")
      end
   end
   if answered >= planned and not finished then
      finished = true
      io.write("thread-done\n")
      io.stdout:flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local out = assert(io.open(threads[1]:get("acked_file"), "w"))
   local n_acked, n_read, n_others, n_answered, first, last = 0, 0, 0, 0, nil, nil
   for _, t in ipairs(threads) do
      for _, id in ipairs(t:get("acked")) do
         out:write(id, "\n")
         n_acked = n_acked + 1
      end
      n_read = n_read + t:get("read")
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
      read = n_read,
      other_status = n_others,
      answered = n_answered,
      elapsed_us = elapsed,
   })
end
