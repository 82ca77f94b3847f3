-- GET a path with a rotating Bearer token.  wrk -s token_get.lua URL -- <tokens file> <path>
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
local common = require("common")
local tokens, path, i

function init(args)
  tokens = common.load_tokens(args[1])
  path = args[2]
  i = math.random(#tokens)
end

function request()
  i = i % #tokens + 1
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tokens[i] })
end
