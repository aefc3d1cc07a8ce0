-- The wrk script of licensorbench's HTTP scenarios (go:embed; written to
-- the run's temporary directory and passed to wrk with -s).
--
--   wrk ... -s wrk.lua URL -- MODE ARGS...
--
-- MODE is one of
--   random PREFIX N [SUFFIX]      GET PREFIX .. k .. SUFFIX, k uniform in 1..N
--   stride PREFIX N STRIDE SUFFIX GET PREFIX .. (1 + j*STRIDE) .. SUFFIX, j uniform in 0..N-1
--   create PATH USERS PRODUCTS TAG
--                                 POST PATH a CreateLicense body: random user and
--                                 product, an order id unique to the run (TAG, thread, counter)
--
-- done() prints one line "licensorbench-wrk {json}" with the counts and the
-- latency percentiles (microseconds, from wrk's per-microsecond histogram:
-- exact to the microsecond).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local mode, prefix, n, suffix, stride, users, products, tag

function init(args)
  mode = args[1]
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
  if mode == "random" then
    prefix, n, suffix = args[2], tonumber(args[3]), args[4] or ""
  elseif mode == "stride" then
    prefix, n, stride, suffix = args[2], tonumber(args[3]), tonumber(args[4]), args[5] or ""
  elseif mode == "create" then
    -- a nonce per wrk run: the warm-up and the measured run share TAG
    prefix, users, products = args[2], tonumber(args[3]), tonumber(args[4])
    tag = args[5] .. "-" .. math.random(1, 2000000000)
    wrk.headers["Content-Type"] = "application/vnd.api+json"
  else
    error("licensorbench wrk.lua: unknown mode " .. tostring(mode))
  end
end

function request()
  if mode == "random" then
    return wrk.format("GET", prefix .. math.random(1, n) .. suffix)
  elseif mode == "stride" then
    return wrk.format("GET", prefix .. (1 + math.random(0, n - 1) * stride) .. suffix)
  end
  counter = counter + 1
  local body = string.format(
    '{"data":{"type":"License","attributes":{"order_id":"wrk-%s-%d-%d","purchase_record":{"payment_method":"credit_card"}},' ..
    '"relationships":{"user":{"data":{"type":"User","id":"%d"}},"product":{"data":{"type":"Product","id":"%d"}}}}}',
    tag, tid or 0, counter, math.random(1, users), math.random(1, products))
  return wrk.format("POST", prefix, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'licensorbench-wrk {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
