-- POST /api/v1/queue/tokens for distinct users.  wrk -s join.lua URL -- <concertId> <firstUser> <usersPerThread>
local threads, next_id = {}, 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local concert, user, last

function init(args)
  concert = args[1]
  local per = tonumber(args[3])
  user = tonumber(args[2]) + tid * per
  last = user + per - 1
end

function request()
  if user > last then error("ran out of users: raise usersPerThread") end
  local body = '{"userId":' .. user .. ',"concertId":' .. concert .. '}'
  user = user + 1
  return wrk.format("POST", "/api/v1/queue/tokens", { ["Content-Type"] = "application/json" }, body)
end
