-- A crowd's mix: for every join of a new fan, <pollsPerJoin> status polls from fans already
-- waiting (tokens from a file).  wrk -s mix.lua URL -- <tokens file> <concertId> <firstUser> <usersPerThread> <pollsPerJoin>
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
local common = require("common")
setup = common.setup

local tokens, concert, next_user, every, n, i

function init(args)
  tokens = common.load_tokens(args[1])
  concert = args[2]
  next_user = common.users(tonumber(args[3]), tonumber(args[4]))
  every = tonumber(args[5]) + 1
  n, i = 0, math.random(#tokens)
end

function request()
  n = n + 1
  if n % every == 0 then
    return common.join(concert, next_user())
  end
  i = i % #tokens + 1
  return wrk.format("GET", "/api/v1/queue/status", { ["Authorization"] = "Bearer " .. tokens[i] })
end
