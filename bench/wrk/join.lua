-- POST /api/v1/queue/tokens for distinct users.  wrk -s join.lua URL -- <concertId> <firstUser> <usersPerThread>
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
local common = require("common")
setup = common.setup

local concert, next_user

function init(args)
  concert = args[1]
  next_user = common.users(tonumber(args[2]), tonumber(args[3]))
end

function request()
  return common.join(concert, next_user())
end
