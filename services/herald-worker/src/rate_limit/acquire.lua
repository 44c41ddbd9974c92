-- Grants up to ARGV[2] tokens of one provider's shared rate limit (a GCRA on Redis's own clock).
-- KEYS[1]: the provider's state hash (tat, share, share_at, cut_at, paused_until; times in µs).
-- ARGV: configured requests per second, tokens wanted, tolerance in µs (the burst: how far ahead of
-- now the theoretical arrival time may run), share of the configured rate regained per second, TTL in ms.
-- Returns {tokens granted, µs to wait before asking again (when none), effective rate in 1/1000 per second}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local rate = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local recovery = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])

local state = redis.call('HMGET', KEYS[1], 'tat', 'share', 'share_at', 'paused_until')
local tat = tonumber(state[1]) or now
local share = tonumber(state[2]) or 1
local share_at = tonumber(state[3]) or now
local paused_until = tonumber(state[4]) or 0

-- Additive increase, computed lazily: the share grows back linearly since it was last written.
share = math.min(1, share + recovery * math.max(0, now - share_at) / 1000000)
local effective = rate * share
local effective_millis = math.floor(effective * 1000)

if paused_until > now then
    return {0, paused_until - now, effective_millis}
end

local interval = 1000000 / effective
if tat < now then
    tat = now
end
-- Token j (from 0) conforms when tat + j * interval - tolerance <= now.
local granted = math.floor((now + tolerance - tat) / interval) + 1
if granted > wanted then
    granted = wanted
end
if granted < 1 then
    return {0, math.ceil(tat - tolerance - now), effective_millis}
end
tat = tat + granted * interval
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat),
    'share', string.format('%.6f', share), 'share_at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], ttl)
return {granted, 0, effective_millis}
