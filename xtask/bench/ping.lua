-- Baseline: GET /ping, the server's unauthenticated no-op (unpublished).
-- The request goes through request() like the other scripts' do, so the
-- load generator spends the same work per request in every row.

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local req

function init(args)
   req = wrk.format("GET", "/ping")
end

function request()
   return req
end

function done(summary, latency, requests)
   report.emit(summary, latency)
end
