-- GetByIdAsync over random existing sessions.
-- Script argument: a file of session ids, one a line. Each request picks one
-- at random; the requests are formatted once, in init. The bearer token comes
-- from wrk's -H option.

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

-- Each thread seeds its own random sequence.
local nthreads = 0

function setup(thread)
   thread:set("tid", nthreads)
   nthreads = nthreads + 1
end

local reqs = {}

function init(args)
   for id in io.lines(args[1]) do
      reqs[#reqs + 1] = wrk.format("GET", "/api/v1/ActivitySession/" .. id)
   end
   if #reqs == 0 then
      error("no session ids in " .. args[1])
   end
   math.randomseed(os.time() + tid)
end

function request()
   return reqs[math.random(#reqs)]
end

function done(summary, latency, requests)
   report.emit(summary, latency)
end
