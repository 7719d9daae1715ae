-- Written by `cargo xtask bench`: GET /auth/check, random line of args[1].
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
end
function request()
  return reqs[math.random(#reqs)]
end
