-- Alternate a single add and a single remove of the same member of one group.
-- Each thread owns one user (the Nth line of the file), so with one connection per thread
-- every add finds the user absent and every remove finds it present.
-- args: group path (with any query string), file with one user id per line.
local C = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local path, user, n = nil, nil, 0
local PATCH = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[%s]}'

function init(args)
   path = args[1]
   user = C.lines(args[2])[tid + 1]
end

function request()
   n = n + 1
   local op
   if n % 2 == 1 then
      op = string.format('{"op":"add","path":"members","value":[{"value":"%s"}]}', user)
   else
      op = string.format('{"op":"remove","path":"members[value eq \\"%s\\"]"}', user)
   end
   return wrk.format("PATCH", path, nil, string.format(PATCH, op))
end
