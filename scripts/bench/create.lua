-- POST /Users with a new realistic user per request; each thread stops after its quota.
-- args: base path, run tag, quota per thread.
local C = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local given = {"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis"}
local family = {"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie"}
local departments = {"Engineering", "Sales", "Support", "Marketing", "Finance"}
local path, tag
local sent = 0

function init(args)
   path, tag = args[1] .. "/Users", args[2]
   response = C.quota_response(tonumber(args[3]))
end

function request()
   C.mark_start()
   sent = sent + 1
   local n = sent
   local g, f = given[n % #given + 1], family[(n * 7) % #family + 1]
   local name = string.format("%s.%s.%s-%d-%d@example.com", string.lower(g), string.lower(f), tag, tid, n)
   local body = string.format(
      '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User",' ..
      '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],' ..
      '"userName":"%s","externalId":"ext-%s-%d-%d","active":true,"displayName":"%s %s",' ..
      '"name":{"givenName":"%s","familyName":"%s","formatted":"%s %s"},' ..
      '"emails":[{"value":"%s","type":"work","primary":true}],"title":"Staff","locale":"en-US",' ..
      '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"%s","employeeNumber":"%s-%d-%d"}}',
      name, tag, tid, n, g, f, g, f, g, f, name, departments[n % #departments + 1], tag, tid, n)
   return wrk.format("POST", path, nil, body)
end
