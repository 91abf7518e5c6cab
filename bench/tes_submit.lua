-- wrk script (bench/tes.sh): durable submits of queued tasks with a name
-- and tags that TES's list filters select: name "bench-N", tags
-- {wf: "wN%10", lab: "x"}. Each wrk thread numbers its own requests.
local n = 0
local prefix = tostring(math.random(1000000))
request = function()
  n = n + 1
  local body = string.format(
    '{"user":"nobody","cmd":"true","cores":1,"name":"bench-%s-%d","tags":{"wf":"w%d","lab":"x"}}',
    prefix, n, n % 10)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
