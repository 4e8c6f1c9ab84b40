-- DeleteAsync over distinct Active sessions: every session is ended once.
-- Script arguments: a file of Active session ids (one a line), the number of
-- wrk threads, and a file to write the ids answered 202 to.
--
-- Each thread ends every n-th id, then stops (see ends.lua, which also
-- measures the throughput and keeps the ids answered 202).

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local ends = require("ends")

local reqs = {}

ends.install({
   name = "DeleteAsync",
   init = function(args)
      reqs = ends.share(args[1], tonumber(args[2]), tid)
      return args[3]
   end,
   planned = function()
      return #reqs
   end,
   request = function(i)
      return reqs[i or 1]
   end,
})
