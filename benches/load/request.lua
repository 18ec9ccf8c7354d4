-- wrk: POST the JSON body in the file named by $BENCH_BODY, keep-alive, with the headers an
-- SDK sends; print one machine-readable line at the end.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = "sk-ant-client-placeholder"
wrk.headers["authorization"] = "Bearer sk-client-placeholder"
wrk.headers["anthropic-version"] = "2023-06-01"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT rps=%.1f p50=%.1f p99=%.1f errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout, summary.requests))
end
