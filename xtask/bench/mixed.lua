-- GetByIdAsync with DeleteAsync alongside: of every `every` requests one is a
-- DELETE of a distinct Active session, the others GETs of random sessions.
-- Script arguments: a file of session ids to read, a file of Active session
-- ids to end (one a line), the number of wrk threads, a file to write the
-- ids answered 202 to, and `every`.
--
-- Each thread ends every n-th id to end, with `every - 1` GETs before each,
-- then stops (see ends.lua, which also measures the throughput and keeps
-- the ids answered 202). GETs answer 200 and DELETEs 202, which is how the
-- answers are told apart.

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local ends = require("ends")

local gets, to_end, every = {}, {}, 10

ends.install({
   name = "the mixed run",
   init = function(args)
      for id in io.lines(args[1]) do
         gets[#gets + 1] = wrk.format("GET", "/api/v1/ActivitySession/" .. id)
      end
      if #gets == 0 then
         error("no session ids to read in " .. args[1])
      end
      to_end = ends.share(args[2], tonumber(args[3]), tid)
      every = tonumber(args[5])
      math.randomseed(os.time() + tid)
      return args[4]
   end,
   planned = function()
      return #to_end * every
   end,
   request = function(i)
      if i and i % every == 0 then
         return to_end[i / every]
      end
      return gets[math.random(#gets)]
   end,
   answer = function(status)
      if status == 200 then
         read = read + 1
         return true
      end
      return false
   end,
   counters = { "read" },
})
