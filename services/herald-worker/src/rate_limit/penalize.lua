-- A provider answered 429: cut its shared rate (multiplicative decrease, at most once per cut
-- interval: the 429s of one burst are one signal) and pause every replica until its Retry-After.
-- KEYS[1]: the provider's state hash (see acquire.lua).
-- ARGV: decrease factor, lowest share, share regained per second, pause in µs (0: none),
-- cut interval in µs, TTL in ms.
-- Returns {the share now in millionths, µs the provider stays paused}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local decrease = tonumber(ARGV[1])
local lowest = tonumber(ARGV[2])
local recovery = tonumber(ARGV[3])
local pause = tonumber(ARGV[4])
local cut_interval = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])

local state = redis.call('HMGET', KEYS[1], 'share', 'share_at', 'cut_at', 'paused_until')
local share = tonumber(state[1]) or 1
local share_at = tonumber(state[2]) or now
local cut_at = tonumber(state[3]) or 0
local paused_until = tonumber(state[4]) or 0

share = math.min(1, share + recovery * math.max(0, now - share_at) / 1000000)
if now - cut_at >= cut_interval then
    share = math.max(lowest, share * decrease)
    cut_at = now
end
if pause > 0 and now + pause > paused_until then
    paused_until = now + pause
end
redis.call('HSET', KEYS[1], 'share', string.format('%.6f', share),
    'share_at', string.format('%.0f', now), 'cut_at', string.format('%.0f', cut_at),
    'paused_until', string.format('%.0f', paused_until))
redis.call('PEXPIRE', KEYS[1], ttl)
return {math.floor(share * 1000000), math.max(0, paused_until - now)}
