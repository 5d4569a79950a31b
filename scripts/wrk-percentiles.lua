-- wrk script of scripts/bench-api.sh and bench-ui.sh: prints one machine-readable line with the
-- request count, p50 / p99 / p99.9 latency (ms), the run's duration (s) and the error counts.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKSTATS requests=%d p50=%.3f p99=%.3f p999=%.3f seconds=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout))
end
