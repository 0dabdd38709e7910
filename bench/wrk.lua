-- wrk script for bench/http.sh: POSTs the JSON in $BODY_FILE and, when $DELAY_MS is
-- set, waits that many milliseconds on each connection between requests (optional
-- pacing; bench/http.sh does not use it for its figures). At the end it
-- prints one machine-readable line:
--   RESULT <requests/s> <p50 µs> <p99 µs> <non-2xx responses> <socket errors> <requests>

local body_file = os.getenv("BODY_FILE")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")

if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "r"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT %.0f %d %d %d %d %d\n",
    summary.requests / seconds,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout, summary.requests))
end
