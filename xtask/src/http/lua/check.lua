-- Written by `cargo xtask bench`: GET /auth/check, a line of args[1]. In
-- the warm-up (args[2] == "warmup") each thread walks the lines in order
-- from its own offset, so that together they present every token once and
-- the measured run meets a warm cache; measured, a random line each time.
local reqs = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
function init(args)
  for line in io.lines(args[1]) do
    local tok, m, uri = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    if tok then
      reqs[#reqs + 1] = wrk.format("GET", "/auth/check", {
        ["Authorization"] = "Bearer " .. tok,
        ["X-Original-Method"] = m,
        ["X-Original-URI"] = uri,
      })
    end
  end
  math.randomseed(os.time() * 16 + (id or 0))
  walk = args[2] == "warmup"
  at = (((id or 1) - 1) * math.floor(#reqs / 2)) % #reqs
end
function request()
  if walk then
    at = at % #reqs + 1
    return reqs[at]
  end
  return reqs[math.random(#reqs)]
end
