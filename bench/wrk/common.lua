-- Shared by the wrk scripts: one token per line in the file named by the first script argument.
local M = {}

function M.load_tokens(path)
  local tokens = {}
  for line in io.lines(path) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  return tokens
end

return M
