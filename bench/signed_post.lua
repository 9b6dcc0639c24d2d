-- wrk script: POST a stream of signed requests, a distinct one per
-- request, from the files written by bench-discord-sign or
-- bench-slack-sign --split T:
--   wrk -tT ... -s bench/signed_post.lua URL -- FILE [slack|discord] [repeat]
--   (or env SIGNED_LINES=FILE, SIGNED_STYLE=slack)
-- With "repeat", each thread sends the first line of its file over and
-- over (a benchmark of one request, as the peers' scripts do).
-- Thread i (1..T) reads FILE.i line by line; each line is
--   <timestamp>\t<signature>\t<body>
-- and becomes POST URL with the body and the platform's headers: Discord
-- (the default) Content-Type: application/json, X-Signature-Timestamp and
-- X-Signature-Ed25519; slack: a form body, X-Slack-Request-Timestamp and
-- X-Slack-Signature. A thread that
-- runs out of lines stops (wrk.thread:stop()) and is counted as exhausted:
-- its figures then cover less than the whole duration, so the rate is too
-- low; sign more lines. Prints at the end, the first line as the peers'
-- wrk_post.lua does:
--   RESULT rps=.. p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. requests=.. non2xx=.. sock_err=..
--   STREAM lines=.. exhausted=..
-- non2xx is wrk's errors.status (status > 399); lines is what the threads
-- took from their files (sent, or in flight when wrk stopped).

local threads = {}
local nthreads = 0

-- Main state, once per thread before it starts: number the threads 1..T.
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  threads[nthreads] = thread
end

-- Thread state from here to done().
local f
local headers = {}
local ts_header, sig_header
local last
local repeat_first = false
lines = 0
exhausted = 0

-- The next line as a request (kept in `last`); nil at the end.
local function next_request()
  local line = f:read("*l")
  if not line then return nil end
  lines = lines + 1
  local t1 = string.find(line, "\t", 1, true)
  local t2 = string.find(line, "\t", t1 + 1, true)
  headers[ts_header] = string.sub(line, 1, t1 - 1)
  headers[sig_header] = string.sub(line, t1 + 1, t2 - 1)
  last = wrk.format("POST", nil, headers, string.sub(line, t2 + 1))
  return last
end

function init(args)
  local base = (args and args[1]) or os.getenv("SIGNED_LINES")
  assert(base and base ~= "", "signed_post.lua: give FILE after -- or set SIGNED_LINES")
  local style = (args and args[2]) or os.getenv("SIGNED_STYLE") or "discord"
  if style == "slack" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    ts_header, sig_header = "X-Slack-Request-Timestamp", "X-Slack-Signature"
  else
    headers["Content-Type"] = "application/json"
    ts_header, sig_header = "X-Signature-Timestamp", "X-Signature-Ed25519"
  end
  local path = base .. "." .. tostring(tid)
  f = assert(io.open(path, "rb"))
  f:setvbuf("full", 1048576)
  wrk.method = "POST"
  if args and args[3] == "repeat" then
    assert(next_request(), "signed_post.lua: " .. path .. " is empty")
    repeat_first = true
  end
end

function request()
  if repeat_first then return last end
  local req = next_request()
  if req then return req end
  if exhausted == 0 then
    exhausted = 1
    wrk.thread:stop()
  end
  -- Something must be returned; the loop stops before it matters.
  return last or wrk.format("POST", nil, headers, "")
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6                  -- duration is in microseconds
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d non2xx=%d sock_err=%d\n",
    summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
  local n, ex = 0, 0
  for _, t in ipairs(threads) do
    n = n + (t:get("lines") or 0)
    ex = ex + (t:get("exhausted") or 0)
  end
  io.write(string.format("STREAM lines=%d exhausted=%d\n", n, ex))
end
