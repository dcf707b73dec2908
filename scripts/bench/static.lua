-- A fixed request (the URL given to wrk): the ceiling, paging, group listings.
-- Headers come from wrk -H.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
