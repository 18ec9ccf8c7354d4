-- llm-sidecar: one request's check-and-count, atomic (no read-then-write race between replicas).
-- ARGV: 1 prefix, 2 now (ms), 3 nonce, 4 pool, 5 session id ('' none), 6 session ttl (ms),
--       7 client key ('' none), 8 client rpm, then 4 per candidate, best first:
--       name, rpm (0: none), tpm (0: none), bindable (1/0: under its budget threshold).
-- Returns {i, wait, rate_limited}: i the candidate taken (1-based), 0 none (wait: ms until one
-- may be free, -1 unknown), -1 the client is over its rpm (wait: ms until it is not).
local p, now, nonce, pool = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local sid, sttl, client, crpm = ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
if client ~= '' then
  local k = p .. ':c:' .. client
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - 60000)
  if redis.call('ZCARD', k) >= crpm then
    local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
    local wait = 1000
    if first[2] then wait = tonumber(first[2]) + 60000 - now end
    return {-1, wait, 1}
  end
  redis.call('ZADD', k, now, nonce)
  redis.call('PEXPIRE', k, 60000)
end
local n = (#ARGV - 8) / 4
local minute = math.floor(now / 60000)
local wait, limited, blocked = -1, 1, 0
local function note(ms, rl)
  blocked = 1
  if rl == 0 then limited = 0 end
  if ms >= 0 and (wait < 0 or ms < wait) then wait = ms end
end
local function name(i) return ARGV[5 + i * 4] end
local function account(i) return p .. ':a:' .. pool .. ':' .. name(i) end
-- Whether candidate i may take the request now (noting why not).
local function usable(i)
  local a = account(i)
  local h = redis.call('GET', a .. ':health')
  if h then
    note(redis.call('PTTL', a .. ':health'), h == 'cool' and 1 or 0)
    return false
  end
  if redis.call('EXISTS', a .. ':stop') == 1 then
    note(-1, 0)
    return false
  end
  local rpm, tpm = tonumber(ARGV[6 + i * 4]), tonumber(ARGV[7 + i * 4])
  if rpm > 0 then
    local k = a .. ':rpm'
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now - 60000)
    if redis.call('ZCARD', k) >= rpm then
      local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
      note(tonumber(first[2]) + 60000 - now, 1)
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
  if tonumber(ARGV[6 + i * 4]) > 0 then
    local k = account(i) .. ':rpm'
    redis.call('ZADD', k, now, nonce)
    redis.call('PEXPIRE', k, 60000)
  end
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
    if sid == '' or ARGV[8 + i * 4] == '1' then return take(i, sid ~= '') end
    if unbindable == 0 then unbindable = i end
  end
end
if unbindable > 0 then return take(unbindable, false) end
if blocked == 0 then limited = 0 end
return {0, wait, limited}
