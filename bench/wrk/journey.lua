-- A buyer's whole journey on one connection per thread (run with -t N -c N):
-- join -> poll status until ACTIVE -> hold a seat nobody else is given -> pay.
-- wrk -s journey.lua URL -- <concertId> <firstUser> <firstSchedule> <seatsPerSchedule> <schedules>
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
local common = require("common")
setup = common.setup

local concert, first_user, first_schedule, seats, schedules, nthreads
local state, n, token, reservation, seat_idx
paid, holds_lost, errors = 0, 0, 0

function init(args)
  concert = args[1]
  first_user = tonumber(args[2])
  first_schedule = tonumber(args[3])
  seats = tonumber(args[4])
  schedules = tonumber(args[5])
  nthreads = tonumber(args[6])
  state, n = "join", 0
end

local function json_headers(extra)
  local h = { ["Content-Type"] = "application/json" }
  if token then h["Authorization"] = "Bearer " .. token end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

function request()
  local idx = tid + n * nthreads
  if state == "join" then
    token = nil
    return common.join(concert, first_user + idx, json_headers())
  elseif state == "status" then
    return wrk.format("GET", "/api/v1/queue/status", json_headers())
  elseif state == "hold" then
    if idx >= seats * schedules then error("ran out of seats") end
    local schedule = first_schedule + math.floor(idx / seats)
    local seat = idx % seats + 1
    return wrk.format("POST", "/api/v1/reservations", json_headers(),
      '{"scheduleId":' .. schedule .. ',"seatNo":' .. seat .. '}')
  else
    return wrk.format("POST", "/api/v1/payments", json_headers({ ["Idempotency-Key"] = "bench-" .. concert .. "-" .. idx }),
      '{"reservationId":' .. reservation .. '}')
  end
end

function response(status, headers, body)
  if state == "join" then
    token = body:match('"token":"([^"]+)"')
    if not token then errors = errors + 1; return end
    state = body:match('"status":"ACTIVE"') and "hold" or "status"
  elseif state == "status" then
    if body:match('"status":"ACTIVE"') then state = "hold" end
  elseif state == "hold" then
    if status == 201 then
      reservation = body:match('"reservationId":(%d+)')
      state = "pay"
    else
      holds_lost = holds_lost + 1
      n = n + 1
      state = "join"
    end
  else
    if status == 201 then paid = paid + 1 else errors = errors + 1 end
    n = n + 1
    state = "join"
  end
end

function done(summary, latency, requests)
  local p, l, e = 0, 0, 0
  for _, t in ipairs(common.threads) do
    p = p + t:get("paid")
    l = l + t:get("holds_lost")
    e = e + t:get("errors")
  end
  io.write(string.format("JOURNEYS paid=%d holds_lost=%d errors=%d seconds=%.3f\n", p, l, e, summary.duration / 1e6))
end
