-- PATCH {"op":"replace","value":{"active":false}} on users, each once: thread T takes every
-- Nth id of the (shuffled) file starting at T, and stops when its share is used up.
-- args: base path, file with one user id per line, number of threads, quota per thread.
local C = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local path, ids, step, i
local BODY = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
             '"Operations":[{"op":"replace","value":{"active":false}}]}'

function init(args)
   path, ids, step = args[1] .. "/Users/", C.lines(args[2]), tonumber(args[3])
   i = tid + 1
   response = C.quota_response(math.min(tonumber(args[4]), math.floor((#ids - tid - 1) / step) + 1))
end

function request()
   C.mark_start()
   local id = ids[i]
   if i + step <= #ids then i = i + step end
   return wrk.format("PATCH", path .. id, nil, BODY)
end
