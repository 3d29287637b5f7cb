-- wrk script for bench/api: replays one pre-signed raw HTTP request.
--
-- The request (request line, headers, body; signed by bench/api/run shortly
-- before wrk starts, so the SigV4 signature is still within its 15-minute
-- window) is read from the file named by BENCH_REQUEST_FILE. A request that
-- carries "Connection: close" makes wrk open a new connection for every
-- request. BENCH_MAX_REQUESTS bounds the run: each thread stops once it has
-- sent its share. wrk still divides by the full -d duration when a thread
-- stops early, so each thread notes when it sent its first and last request
-- (CLOCK_MONOTONIC through LuaJIT's ffi) and done() reports that span too.
-- done() prints one line "BENCH key=value ..." for the driver to parse.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

local raw
local sent = 0
local limit = 0

function init(args)
    local path = os.getenv("BENCH_REQUEST_FILE")
    local f = assert(io.open(path, "rb"), "cannot open BENCH_REQUEST_FILE")
    raw = f:read("*a")
    f:close()
    local max = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")
    local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
    if max > 0 then
        limit = math.ceil(max / nthreads)
    end
    first_us = 0
    last_us = 0
    capped = 0
end

function request()
    local t = now_us()
    if sent == 0 then
        first_us = t
    end
    last_us = t
    sent = sent + 1
    if limit > 0 and sent >= limit then
        capped = 1
        wrk.thread:stop()
    end
    return raw
end

function done(summary, latency, requests)
    local span = 0
    local anycap = 0
    for _, t in ipairs(threads) do
        local s = (t:get("last_us") or 0) - (t:get("first_us") or 0)
        if s > span then
            span = s
        end
        if (t:get("capped") or 0) ~= 0 then
            anycap = 1
        end
    end
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d span_us=%d capped=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
        "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
        summary.requests, summary.duration, span, anycap,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        e.connect, e.read, e.write, e.status, e.timeout))
end
