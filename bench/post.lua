-- wrk script: POST a small body; report non-2xx answers on stdout.
wrk.method = "POST"
wrk.body = "ping"
wrk.headers["Content-Type"] = "text/plain"
