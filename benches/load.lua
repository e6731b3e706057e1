-- wrk scenarios for benches/load.sh. One file, the scenario chosen by BENCH_MODE:
--
--   static      one fixed request (BENCH_METHOD, BENCH_PATH, BENCH_BODY, BENCH_AUTH):
--               /healthz, discovery, JWKS, client_credentials, userinfo, token exchange
--               (RFC 8693: the same subject token each time). No request() or
--               response() function is defined, so wrk sends its prebuilt request at full
--               speed and counts 4xx/5xx itself.
--   introspect  a fixed /introspect request whose answer must say "active":true.
--   flow        the SSO code flow of a signed-in browser (BENCH_COOKIE), one iteration =
--               /authorize (303 with a code) -> /token (authorization_code + PKCE) -> /userinfo.
--   refresh     a refresh-token chain: each answer's refresh_token is the next request's
--               (rotation), one chain per thread, tokens from BENCH_REFRESH_FILE.
--   device      a device polling /token (RFC 8628) with a pending device code, one per
--               thread from BENCH_DEVICE_FILE, for the public client BENCH_CLIENT_ID; every
--               answer must be a 400 with authorization_pending or slow_down.
--
-- flow, refresh and device keep state per wrk thread, so load.sh runs them with one connection
-- per thread (-t N -c N): a thread's requests then come strictly one after another.
--
-- done() prints one line for load.sh:
--   BENCH requests=… duration_us=… p50_us=… p99_us=… status_errors=… socket_errors=…
--         app_errors=… checked=0|1 iterations=… it_p50_us=… it_p99_us=…
-- With checked=1 the script judged every answer itself (app_errors: any unexpected
-- status or body); otherwise wrk's status_errors (status >= 400) are the answer errors.
-- The flow adds "BENCH_STEPS authorize P50/P99, token P50/P99, userinfo P50/P99" (ms).

local mode = os.getenv("BENCH_MODE") or "static"
local env = function(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local basic = env("BENCH_AUTH", nil) -- the Authorization header: "Basic …" or "Bearer …"

-- Main state: one handle per thread, so done() can collect per-thread counters.
local threads = {}
local refresh_tokens = nil
local device_codes = nil

-- The non-empty lines of a file.
local function lines_of(path)
  local list = {}
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if line ~= "" then table.insert(list, line) end
  end
  file:close()
  return list
end

function setup(thread)
  table.insert(threads, thread)
  if mode == "refresh" then
    if refresh_tokens == nil then
      refresh_tokens = lines_of(env("BENCH_REFRESH_FILE", ""))
    end
    thread:set("refresh_token", refresh_tokens[#threads] or "")
  elseif mode == "device" then
    if device_codes == nil then
      device_codes = lines_of(env("BENCH_DEVICE_FILE", ""))
    end
    thread:set("device_code", device_codes[#threads] or "")
  end
end

-- Per-thread counters, read by done() through thread:get().
app_errors = 0
iterations = 0
samples = {}
-- The flow's requests one by one (flat tables: wrk's thread:get() copies one level well).
steps_authorize, steps_token, steps_userinfo = {}, {}, {}
last_error = ""

local function fail(what)
  app_errors = app_errors + 1
  last_error = what
end

if mode == "static" then
  wrk.method = env("BENCH_METHOD", "GET")
  wrk.path = env("BENCH_PATH", "/")
  wrk.body = env("BENCH_BODY", nil)
  wrk.headers["Authorization"] = basic
  if wrk.body then
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
elseif mode == "introspect" then
  wrk.method = "POST"
  wrk.path = "/introspect"
  wrk.body = env("BENCH_BODY", "")
  wrk.headers["Authorization"] = basic
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  response = function(status, headers, body)
    if status ~= 200 or not body:find('"active":true', 1, true) then
      fail("introspect " .. status)
    end
  end
elseif mode == "flow" then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clk_id, bench_timespec *tp);
  ]]
  local ts = ffi.new("bench_timespec")
  local function now_us()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
  end

  local authorize
  init = function(args)
    -- Built here, not at load: wrk sets the Host header just before init().
    authorize = wrk.format("GET", env("BENCH_AUTHORIZE", "/authorize"),
      { ["Cookie"] = "lanyard_session=" .. env("BENCH_COOKIE", "") })
  end
  local token_headers = { ["Authorization"] = basic, ["Content-Type"] = "application/x-www-form-urlencoded" }
  local token_prefix = env("BENCH_TOKEN_BODY", "") .. "&code="
  local step, code, access, started, sent = 1, nil, nil, 0, 0

  request = function()
    sent = now_us()
    if step == 1 then
      started = sent
      return authorize
    elseif step == 2 then
      return wrk.format("POST", "/token", token_headers, token_prefix .. code)
    end
    return wrk.format("GET", "/userinfo", { ["Authorization"] = "Bearer " .. access })
  end

  response = function(status, headers, body)
    local took = now_us() - sent
    if step == 1 then
      steps_authorize[#steps_authorize + 1] = took
      local location = headers["location"] or headers["Location"] or ""
      code = status == 303 and location:match("[?&]code=([^&]+)")
      if code then step = 2 else fail("authorize " .. status .. " " .. location) end
    elseif step == 2 then
      steps_token[#steps_token + 1] = took
      access = status == 200 and body:match('"access_token":"([^"]+)"')
      if access then step = 3 else fail("token " .. status .. " " .. body); step = 1 end
    else
      steps_userinfo[#steps_userinfo + 1] = took
      if status == 200 and body:find('"sub":', 1, true) then
        iterations = iterations + 1
        samples[#samples + 1] = now_us() - started
      else
        fail("userinfo " .. status .. " " .. body)
      end
      step = 1
    end
  end
elseif mode == "refresh" then
  local token_headers = { ["Authorization"] = basic, ["Content-Type"] = "application/x-www-form-urlencoded" }
  request = function()
    return wrk.format("POST", "/token", token_headers, "grant_type=refresh_token&refresh_token=" .. refresh_token)
  end
  response = function(status, headers, body)
    local next_token = status == 200 and body:match('"refresh_token":"([^"]+)"')
    if next_token then
      refresh_token = next_token
      iterations = iterations + 1
    else
      fail("refresh " .. status .. " " .. body)
    end
  end
elseif mode == "device" then
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  local prefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=" ..
    env("BENCH_CLIENT_ID", "") .. "&device_code="
  request = function()
    return wrk.format("POST", "/token", headers, prefix .. device_code)
  end
  response = function(status, headers, body)
    local pending = body:find('"authorization_pending"', 1, true) or body:find('"slow_down"', 1, true)
    if status ~= 400 or not pending then
      fail("device poll " .. status .. " " .. body)
    end
  end
else
  error("unknown BENCH_MODE " .. mode)
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  local i = math.max(1, math.ceil(#sorted * p / 100))
  return sorted[i]
end

function done(summary, latency, requests)
  local app, its, all, last = 0, 0, {}, ""
  local steps = { authorize = {}, token = {}, userinfo = {} }
  for _, thread in ipairs(threads) do
    app = app + (thread:get("app_errors") or 0)
    its = its + (thread:get("iterations") or 0)
    local e = thread:get("last_error")
    if e and e ~= "" then last = e end
    for _, v in ipairs(thread:get("samples") or {}) do all[#all + 1] = v end
    for name, list in pairs(steps) do
      for _, v in ipairs(thread:get("steps_" .. name) or {}) do list[#list + 1] = v end
    end
  end
  table.sort(all)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d socket_errors=%d " ..
    "app_errors=%d checked=%d iterations=%d it_p50_us=%d it_p99_us=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout, app, (mode == "static") and 0 or 1, its,
    percentile(all, 50), percentile(all, 99)))
  if #steps.token > 0 then
    local parts = {}
    for _, name in ipairs({ "authorize", "token", "userinfo" }) do
      table.sort(steps[name])
      parts[#parts + 1] = string.format("%s %.1f/%.1f", name, percentile(steps[name], 50) / 1000,
        percentile(steps[name], 99) / 1000)
    end
    io.write("BENCH_STEPS " .. table.concat(parts, ", ") .. "\n")
  end
  if last ~= "" then
    io.write("BENCH_LAST_ERROR " .. last:sub(1, 300):gsub("\n", " ") .. "\n")
  end
end
