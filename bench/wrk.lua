-- wrk script for bench/load.py.
--   wrk ... -s bench/wrk.lua URL                                 GET URL
--   wrk ... -s bench/wrk.lua URL -- FILE NAME CONTENT_TYPE       POST FILE as multipart field "file"
-- When wrk stops it prints one line, "BENCH_JSON {...}": requests, duration, latency
-- percentiles (microseconds) and wrk's error counts (status = responses with status >= 400).

local boundary = "----bench-load-7d4a1c9e"

function init(args)
  if #args == 0 then
    return
  end
  local handle = assert(io.open(args[1], "rb"))
  local data = handle:read("*a")
  handle:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
  wrk.body = "--" .. boundary .. "\r\n"
    .. 'Content-Disposition: form-data; name="file"; filename="' .. args[2] .. '"\r\n'
    .. "Content-Type: " .. args[3] .. "\r\n\r\n"
    .. data .. "\r\n--" .. boundary .. "--\r\n"
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max))
end
