-- wrk script: durable submits of a task that will wait in the queue; with
-- $OCPS_TOKEN set, each carries it as a bearer token (bench/auth.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"user":"nobody","cmd":"true","cores":1}'
local token = os.getenv("OCPS_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
