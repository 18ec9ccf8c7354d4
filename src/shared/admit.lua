-- llm-sidecar: one request's check-and-count, atomic (no read-then-write race between replicas).
-- ARGV: 1 prefix, 2 pool, 3 session id ('' none), 4 session ttl (ms), 5 client key ('' none),
--       6 client rpm, then 5 per candidate, best first: name, rpm (0: none), tpm (0: none), bindable (1/0: under its budget threshold),
--       weekly budget in USD (0: none).
-- Returns {i, wait, rate_limited}: i the candidate taken (1-based), 0 none (wait: ms until one
-- may be free, -1 unknown), -1 the client is over its rpm (wait: ms until it is not).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local p, pool = ARGV[1], ARGV[2]
local sid, sttl, client, crpm = ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local sec = math.floor(now / 1000)
-- A sliding minute in one-second buckets (a hash of at most 61 fields, whatever the rate): the
-- current second and the 60 before it, so no span of 60 s holds more than `limit` (as the
-- local window). The ms until it has room when it already holds `limit`, else nil.
local function full(k, limit)
  local all, n, oldest, stale = redis.call('HGETALL', k), 0, nil, {}
  for j = 1, #all, 2 do
    local s = tonumber(all[j])
    if s < sec - 60 then
      stale[#stale + 1] = all[j]
    else
      n = n + tonumber(all[j + 1])
      if not oldest or s < oldest then oldest = s end
    end
  end
  if #stale > 0 then redis.call('HDEL', k, unpack(stale)) end
  if n >= limit then return (oldest + 61) * 1000 - now end
  return nil
end
local function count(k)
  redis.call('HINCRBY', k, sec, 1)
  redis.call('PEXPIRE', k, 62000)
end
if client ~= '' then
  local k = p .. ':c:' .. client
  local wait = full(k, crpm)
  if wait then return {-1, wait, 1} end
  count(k)
end
local n = (#ARGV - 6) / 5
local minute = math.floor(now / 60000)
local wait, limited, blocked = -1, 1, 0
local function note(ms, rl)
  blocked = 1
  if rl == 0 then limited = 0 end
  if ms >= 0 and (wait < 0 or ms < wait) then wait = ms end
end
local function name(i) return ARGV[2 + i * 5] end
local function account(i) return p .. ':a:' .. pool .. ':' .. name(i) end
-- Whether candidate i may take the request now (noting why not).
local function usable(i)
  local a = account(i)
  local h = redis.call('GET', a .. ':health')
  if h then
    note(redis.call('PTTL', a .. ':health'), h == 'cool' and 1 or 0)
    return false
  end
  local budget = tonumber(ARGV[6 + i * 5])
  if budget > 0 then
    -- The week's spend: the complete hours' total plus this hour's (record.lua keeps both);
    -- when the hour turned since the last record, the last known total (at most the spend of
    -- the hour that dropped out too high).
    local v = redis.call('HMGET', a .. ':ledger', '_h', '_wc')
    local h = tonumber(v[1])
    if h then
      local spent = tonumber(v[2]) + tonumber(redis.call('HGET', a .. ':ledger', 'c' .. h) or '0')
      if spent >= budget then
        note(-1, 0)
        return false
      end
    end
  end
  local rpm, tpm = tonumber(ARGV[3 + i * 5]), tonumber(ARGV[4 + i * 5])
  if rpm > 0 then
    local wait = full(a .. ':rpm', rpm)
    if wait then
      note(wait, 1)
      return false
    end
  end
  if tpm > 0 and tonumber(redis.call('GET', a .. ':tpm:' .. minute) or '0') >= tpm then
    note(60000 - now % 60000, 1)
    return false
  end
  return true
end
local function take(i, bind)
  if tonumber(ARGV[3 + i * 5]) > 0 then count(account(i) .. ':rpm') end
  if bind then redis.call('SET', p .. ':s:' .. pool .. ':' .. sid, name(i), 'PX', sttl) end
  return {i, 0, 0}
end
local bound = false
if sid ~= '' then bound = redis.call('GET', p .. ':s:' .. pool .. ':' .. sid) end
if bound then
  for i = 1, n do
    if name(i) == bound then
      if usable(i) then return take(i, true) end
      break
    end
  end
end
local unbindable = 0
for i = 1, n do
  if name(i) ~= bound and usable(i) then
    if sid == '' or ARGV[5 + i * 5] == '1' then return take(i, sid ~= '') end
    if unbindable == 0 then unbindable = i end
  end
end
if unbindable > 0 then return take(unbindable, false) end
if blocked == 0 then limited = 0 end
return {0, wait, limited}
