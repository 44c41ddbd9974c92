-- Admission of one tenant's notifications (tenant_limits.rs; LocalCounts::decide is the same
-- function in process): its daily quota first (fits_in_quota), then its rate (GCRA,
-- admission_wait), each only if the tenant has it; an admitted request is recorded in both, a
-- refused one in neither. KEYS[1] the tenant's theoretical arrival time in ms, KEYS[2] its count of
-- the UTC day; ARGV rate per second (0: none), burst, cost, quota per day (0: none), seconds the
-- day's count is kept. Answers {0, used today} when admitted, {1, wait in ms} over the rate,
-- {2, used today} over the quota. The rate runs on Redis's clock: the replicas' clocks never
-- matter to it.
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local quota = tonumber(ARGV[4])
local day_seconds_kept = tonumber(ARGV[5])

local used = 0
if quota > 0 then
    used = tonumber(redis.call('GET', KEYS[2]) or '0')
    if used + cost > quota then
        return {2, used}
    end
end

if rate > 0 then
    local clock = redis.call('TIME')
    local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
    local interval = 1000 / rate
    local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
    if tat < now then tat = now end
    local cost_ms = cost * interval
    local burst_ms = burst * interval
    if tat > now and tat + cost_ms - now > burst_ms then
        return {1, math.ceil(math.min(tat - now, tat + cost_ms - burst_ms - now))}
    end
    redis.call('SET', KEYS[1], tostring(tat + cost_ms), 'PX', math.ceil(tat + cost_ms - now) + 1000)
end

if quota > 0 then
    redis.call('INCRBY', KEYS[2], cost)
    redis.call('EXPIRE', KEYS[2], day_seconds_kept)
end
return {0, used + cost}
