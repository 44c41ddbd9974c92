-- GCRA admission of one tenant's notifications (tenant_limits.rs, admission_wait): KEYS[1] the
-- tenant's theoretical arrival time in ms; ARGV rate per second, burst, cost. Answers the wait in
-- ms, 0 when admitted (then recorded). Redis's clock: the replicas' clocks never matter.
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local interval = 1000 / rate
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local cost_ms = cost * interval
local burst_ms = burst * interval
if tat > now and tat + cost_ms - now > burst_ms then
    return math.ceil(math.min(tat - now, tat + cost_ms - burst_ms - now))
end
redis.call('SET', KEYS[1], tostring(tat + cost_ms), 'PX', math.ceil(tat + cost_ms - now) + 1000)
return 0
