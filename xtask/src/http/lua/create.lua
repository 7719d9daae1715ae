-- Written by `cargo xtask bench`: POST /V4/AccessToken.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
local session
local n = 0
function init(args)
  local f = assert(io.open(args[1]))
  session = f:read("*l")
  f:close()
end
function request()
  n = n + 1
  return wrk.format("POST", "/V4/AccessToken", {
    ["Authtoken"] = session,
    ["Content-Type"] = "application/json",
  }, '{"tokenName":"bench-create-' .. (id or 0) .. '-' .. n .. '","tokenType":2}')
end
