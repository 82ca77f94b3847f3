-- A crowd's mix: for every join of a new fan, <pollsPerJoin> status polls from fans already
-- waiting (tokens from a file).  wrk -s mix.lua URL -- <tokens file> <concertId> <firstUser> <usersPerThread> <pollsPerJoin>
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
local common = require("common")
local threads, next_id = {}, 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local tokens, concert, user, last, every, n, i

function init(args)
  tokens = common.load_tokens(args[1])
  concert = args[2]
  local per = tonumber(args[4])
  user = tonumber(args[3]) + tid * per
  last = user + per - 1
  every = tonumber(args[5]) + 1
  n, i = 0, math.random(#tokens)
end

function request()
  n = n + 1
  if n % every == 0 then
    if user > last then error("ran out of users: raise usersPerThread") end
    local body = '{"userId":' .. user .. ',"concertId":' .. concert .. '}'
    user = user + 1
    return wrk.format("POST", "/api/v1/queue/tokens", { ["Content-Type"] = "application/json" }, body)
  end
  i = i % #tokens + 1
  return wrk.format("GET", "/api/v1/queue/status", { ["Authorization"] = "Bearer " .. tokens[i] })
end
