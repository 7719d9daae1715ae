-- Written by `cargo xtask bench`: POST /V4/AccessToken/Renew.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
local queue, head, tail = {}, 1, 0
function init(args)
  for line in io.lines(args[1] .. "." .. id .. ".txt") do
    local a, r = line:match("^([^\t]+)\t([^\t]+)$")
    if a then
      tail = tail + 1
      queue[tail] = { a, r }
    end
  end
end
function request()
  local p = { "none", "none" }
  if head <= tail then
    p = queue[head]
    queue[head] = nil
    head = head + 1
  end
  return wrk.format("POST", "/V4/AccessToken/Renew", { ["Content-Type"] = "application/json" },
    '{"accessToken":"' .. p[1] .. '","refreshToken":"' .. p[2] .. '"}')
end
function response(status, headers, body)
  if status == 200 then
    local a = body:match('"accessToken"%s*:%s*"([^"]+)"')
    local r = body:match('"refreshToken"%s*:%s*"([^"]+)"')
    if a and r then
      tail = tail + 1
      queue[tail] = { a, r }
    end
  end
end
