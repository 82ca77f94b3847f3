-- Shared by the wrk scripts (each finds it with the package.path line at its top).
local M = {}

-- One token per line in the file at `path`.
function M.load_tokens(path)
  local tokens = {}
  for line in io.lines(path) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  return tokens
end

-- wrk's setup: numbers the threads (each sees its number as the global `tid`, from 0) and keeps
-- them for done(). A script says `setup = common.setup`.
M.threads = {}
function M.setup(thread)
  thread:set("tid", #M.threads)
  table.insert(M.threads, thread)
end

-- This thread's own users: `per` of them from `first + tid * per`, one per call.
function M.users(first, per)
  local user = first + tid * per
  local last = user + per - 1
  return function()
    if user > last then error("ran out of users: raise usersPerThread") end
    user = user + 1
    return user - 1
  end
end

-- POST /api/v1/queue/tokens for `user` in `concert`.
function M.join(concert, user, headers)
  return wrk.format("POST", "/api/v1/queue/tokens", headers or { ["Content-Type"] = "application/json" },
    '{"userId":' .. user .. ',"concertId":' .. concert .. '}')
end

return M
