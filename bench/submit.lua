-- wrk script: durable submits of a task that will wait in the queue.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"user":"nobody","cmd":"true","cores":1}'
