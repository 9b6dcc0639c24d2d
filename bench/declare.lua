-- wrk script: declare incidents over the REST API.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"Checkout API returns 500","severity":"SEV-3","service":"checkout"}'
