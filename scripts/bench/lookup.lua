-- GET /Users?filter=userName eq "<random existing userName>" (the lookup IdPs make before a create).
-- args: base path, file with one userName per line.
local C = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local path, names

function init(args)
   C.seed()
   path, names = args[1] .. "/Users?filter=", C.lines(args[2])
end

function request()
   local name = names[math.random(#names)]
   return wrk.format("GET", path .. C.urlencode('userName eq "' .. name .. '"'))
end
