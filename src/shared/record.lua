-- llm-sidecar: an account's usage (one batch of requests) on its shared ledger, and what follows.
-- ARGV: 1 prefix, 2 pool, 3 account, 4 cost (USD), 5 tokens, 6 requests (one batch of an
--       account's usage), 7 weekly budget (USD, 0: none), 8.. notification thresholds (shares
--       of the budget). Time is the store's own clock.
-- Returns {week_cost, week_tokens, block_cost, block_tokens, block_requests, cost_last_hour,
--          tokens_this_minute, thresholds reached first by this request...}.
-- The ledger is one hash per account: c<hour> cost, t<hour> tokens, n<hour> requests,
-- m<minute> cost; _-fields hold the totals of the complete hours and minutes, summed again
-- only when the hour or the minute turns (old fields are deleted then).
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local p, pool, acct = ARGV[1], ARGV[2], ARGV[3]
local cost, tokens, requests, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local week = math.floor(now / 604800000)
local a = p .. ':a:' .. pool .. ':' .. acct
local k = a .. ':ledger'
local hour, minute = math.floor(now / 3600000), math.floor(now / 60000)
local day = math.floor(hour / 24) * 24
local block = day + math.floor((hour - day) / 5) * 5
if cost > 0 then
  redis.call('HINCRBYFLOAT', k, 'c' .. hour, cost)
  redis.call('HINCRBYFLOAT', k, 'm' .. minute, cost)
end
if tokens > 0 then redis.call('HINCRBY', k, 't' .. hour, tokens) end
redis.call('HINCRBY', k, 'n' .. hour, requests)
local tk = a .. ':tpm:' .. minute
local minute_tokens = redis.call('INCRBY', tk, tokens)
redis.call('PEXPIRE', tk, 120000)
local turned = redis.call('HMGET', k, '_h', '_m')
if tonumber(turned[1]) ~= hour or tonumber(turned[2]) ~= minute then
  local wc, wt, bc, bt, bn, mc = 0, 0, 0, 0, 0, 0
  local all, stale = redis.call('HGETALL', k), {}
  for j = 1, #all, 2 do
    local f = all[j]
    local kind, at, v = string.sub(f, 1, 1), tonumber(string.sub(f, 2)), tonumber(all[j + 1])
    if at and kind == 'm' then
      if at <= minute - 60 then stale[#stale + 1] = f elseif at < minute then mc = mc + v end
    elseif at and (kind == 'c' or kind == 't' or kind == 'n') then
      if at <= hour - 168 then
        stale[#stale + 1] = f
      elseif at < hour then
        local in_block = at >= block
        if kind == 'c' then
          wc = wc + v
          if in_block then bc = bc + v end
        elseif kind == 't' then
          wt = wt + v
          if in_block then bt = bt + v end
        elseif in_block then
          bn = bn + v
        end
      end
    end
  end
  if #stale > 0 then redis.call('HDEL', k, unpack(stale)) end
  redis.call('HSET', k, '_h', hour, '_m', minute, '_wc', wc, '_wt', wt, '_bc', bc, '_bt', bt, '_bn', bn, '_mc', mc)
end
redis.call('PEXPIRE', k, 691200000)
local v = redis.call('HMGET', k, '_wc', '_wt', '_bc', '_bt', '_bn', '_mc', 'c' .. hour, 't' .. hour, 'n' .. hour, 'm' .. minute)
local function num(j) return tonumber(v[j]) or 0 end
local week_cost, hour_cost = num(1) + num(7), num(6) + num(10)
local out = {tostring(week_cost), tostring(num(2) + num(8)), tostring(num(3) + num(7)),
  tostring(num(4) + num(8)), tostring(num(5) + num(9)), tostring(hour_cost), tostring(minute_tokens)}
if budget > 0 then
  local used = week_cost / budget
  for j = 8, #ARGV do
    if used >= tonumber(ARGV[j]) and redis.call('SET', a .. ':note:' .. ARGV[j] .. ':' .. week, '1', 'NX', 'PX', 691200000) then
      out[#out + 1] = ARGV[j]
    end
  end
end
return out
