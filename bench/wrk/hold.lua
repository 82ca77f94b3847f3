-- POST /api/v1/reservations on distinct seats, each by its own ACTIVE token (a fan holds one set
-- of seats at a time): the n-th seat overall is held with the n-th token.
-- wrk -s hold.lua URL -- <tokens file> <firstSchedule> <seatsPerSchedule> <schedules> <seatsPerThread>
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
local common = require("common")
setup = common.setup

local tokens, first_schedule, seats, schedules, idx, last, i

function init(args)
  tokens = common.load_tokens(args[1])
  first_schedule = tonumber(args[2])
  seats = tonumber(args[3])
  schedules = tonumber(args[4])
  local per = tonumber(args[5])
  idx = tid * per
  last = idx + per - 1
  i = tid
end

function request()
  if idx > last or idx >= seats * schedules then error("ran out of seats: raise seatsPerThread or seed more") end
  local schedule = first_schedule + math.floor(idx / seats)
  local seat = idx % seats + 1
  if idx >= #tokens then error("ran out of tokens: raise --hold-fans") end
  local token = tokens[idx + 1]
  idx = idx + 1
  return wrk.format("POST", "/api/v1/reservations",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token },
    '{"scheduleId":' .. schedule .. ',"seatNo":' .. seat .. '}')
end
