#!lua name=warden
-- warden's fleet decisions, run atomically inside Redis.
--
-- Rust derives the keys, the familiar split, the escalation lengths and the
-- allow and deny lists; these functions do only what must be atomic across
-- hosts: check locks, count, reserve, lock and unlock. Every call takes one
-- JSON argument and answers JSON. Time is Redis's own (TIME), guarded so it
-- never runs backwards, so no host's clock enters a decision.
--
-- Per key K under the prefix P:
--   P.."s:"..K  HASH  the lock: since, until (-1: permanent), len (-1: none),
--                     by ("rule" or "admin"), uid, why
--   P.."f:"..K  ZSET  failures: member attempt id, score time
--   P.."r:"..K  ZSET  leases of attempts in flight: member attempt id, score deadline
--   P.."h:"..K  ZSET  lockout starts, for escalation
--   P.."locks"  ZSET  every lock by its end (permanent: +inf)
--   P.."lockkeys" ZSET every lock, score 0, for paging in key order
--   P.."u:"..user, P.."a:"..rhost  SET  keys naming a user or an address
--   P.."fam:"..user ZSET familiar sources by their last success
--   P.."events" STREAM lock and unlock events, which every host follows
--   P.."clock"  STRING the highest time any call has seen

local DAY = 86400000

local function now_ms(P)
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local c = tonumber(redis.call('GET', P .. 'clock') or '0')
  if c >= ms then return c end
  redis.call('SET', P .. 'clock', ms)
  return ms
end

local function lock_of(P, k)
  local h = redis.call('HGETALL', P .. 's:' .. k)
  if #h == 0 then return nil end
  local l = {}
  for i = 1, #h, 2 do l[h[i]] = h[i + 1] end
  l['until'] = tonumber(l['until'])
  l.since = tonumber(l.since)
  l.len = tonumber(l.len)
  l.jit = tonumber(l.jit) or 0
  return l
end

-- A lock's random extra under its rule's jitter (ms): drawn from the server's
-- clock to the microsecond, which no guesser sees.
local function extra(jit)
  if not jit or jit <= 0 then return 0 end
  local t = redis.call('TIME')
  return (tonumber(t[1]) * 1000003 + tonumber(t[2]) * 7919) % (jit + 1)
end

local function event(P, a, fields)
  local args = {'XADD', P .. 'events', 'MAXLEN', '~', a.stream_length or 10000, '*'}
  for i = 1, #fields, 2 do
    if fields[i + 1] ~= nil then
      table.insert(args, fields[i])
      table.insert(args, tostring(fields[i + 1]))
    end
  end
  table.insert(args, 'host')
  table.insert(args, a.host or '')
  return redis.call(unpack(args))
end

local function index_key(P, spec, ttl)
  if spec.user and spec.user ~= '' then
    redis.call('SADD', P .. 'u:' .. spec.user, spec.k)
    redis.call('PEXPIRE', P .. 'u:' .. spec.user, ttl)
  end
  if spec.rhost and spec.rhost ~= '' then
    redis.call('SADD', P .. 'a:' .. spec.rhost, spec.k)
    redis.call('PEXPIRE', P .. 'a:' .. spec.rhost, ttl)
  end
end

local function set_lock(P, k, l)
  local s = P .. 's:' .. k
  redis.call('DEL', s)
  redis.call('HSET', s, 'since', l.since, 'until', l['until'], 'len', l.len,
    'by', l.by, 'uid', l.uid or '', 'why', l.why or '', 'jit', l.jit or 0)
  if l['until'] >= 0 then
    redis.call('ZADD', P .. 'locks', l['until'], k)
    redis.call('PEXPIREAT', s, l['until'] + DAY)
  else
    redis.call('ZADD', P .. 'locks', '+inf', k)
    -- A permanent lock lasts until an admin lifts it: no TTL.
    redis.call('PERSIST', s)
  end
  redis.call('ZADD', P .. 'lockkeys', 0, k)
end

local function drop_lock(P, k)
  redis.call('DEL', P .. 's:' .. k)
  redis.call('ZREM', P .. 'locks', k)
  redis.call('ZREM', P .. 'lockkeys', k)
end

-- An ended lock is lifted and its failures forgotten (the history stays, so
-- the next lock escalates), as the local engine's settle does.
local function expire_lock(P, a, k, l)
  drop_lock(P, k)
  redis.call('DEL', P .. 'f:' .. k)
  event(P, a, {'kind', 'unlocked', 'key', k, 'at', l['until'], 'by', 'expired'})
end

local function live_lock(P, a, k, now)
  local l = lock_of(P, k)
  if not l then return nil end
  if l['until'] >= 0 and l['until'] <= now then
    expire_lock(P, a, k, l)
    return nil
  end
  return l
end

local function failures(P, spec, now)
  local f = P .. 'f:' .. spec.k
  redis.call('ZREMRANGEBYSCORE', f, '-inf', now - spec.window)
  return redis.call('ZCARD', f)
end

local function lockouts(P, spec, now)
  return redis.call('ZCOUNT', P .. 'h:' .. spec.k, '(' .. (now - spec.memory), '+inf')
end

local function rule_lock(P, a, spec, now, at)
  local n = lockouts(P, spec, now) + 1
  local lens = spec.lens
  local len = lens[math.min(n, #lens)]
  local l = {since = at, len = len, by = 'rule', jit = spec.jitter or 0}
  if len >= 0 then l['until'] = at + len + extra(l.jit) else l['until'] = -1 end
  set_lock(P, spec.k, l)
  local h = P .. 'h:' .. spec.k
  redis.call('ZADD', h, at, a.id .. ':' .. at)
  redis.call('ZREMRANGEBYSCORE', h, '-inf', now - spec.memory)
  redis.call('PEXPIRE', h, spec.memory)
  return l
end

local function lock_view(k, l, fails)
  return {k = k, since = l.since, ['until'] = l['until'], len = l.len, by = l.by,
    uid = l.uid, why = l.why, failures = fails}
end

-- A failure counted on one key; the lock it made, if any. An attempt id
-- already counted there counts nothing again, so a replay is harmless.
local function fail_key(P, a, spec, id, now, at)
  local f = P .. 'f:' .. spec.k
  redis.call('ZREM', P .. 'r:' .. spec.k, id)
  if redis.call('ZSCORE', f, id) then return nil end
  local l = live_lock(P, a, spec.k, now)
  failures(P, spec, now)
  redis.call('ZADD', f, at, id)
  local n = redis.call('ZCARD', f)
  if n > spec.limit then redis.call('ZREMRANGEBYRANK', f, 0, n - spec.limit - 1) end
  redis.call('PEXPIRE', f, spec.window)
  index_key(P, spec, math.max(spec.window, spec.memory))
  if l then
    -- A failure from an attempt that began before the lock landed.
    if a.extend and l.by == 'rule' and l['until'] >= 0 and l.len >= 0 then
      local new = math.max(now + l.len + extra(l.jit), l['until'])
      if new ~= l['until'] then
        l['until'] = new
        set_lock(P, spec.k, l)
      end
    end
    return nil
  end
  if redis.call('ZCARD', f) >= spec.limit then
    local made = rule_lock(P, a, spec, now, at)
    event(P, a, {'kind', 'locked', 'key', spec.k, 'at', at, 'until', made['until'],
      'failures', redis.call('ZCARD', f), 'service', a.service, 'user', a.user,
      'rhost', a.rhost})
    return lock_view(spec.k, made, redis.call('ZCARD', f))
  end
  return nil
end

-- Leases past their deadline belong to attempts whose host died: they
-- become failures ("abandoned"), whichever host touches the key next.
local function settle(P, a, spec, now)
  local r = P .. 'r:' .. spec.k
  local gone = redis.call('ZRANGEBYSCORE', r, '-inf', now, 'WITHSCORES')
  local n = 0
  for i = 1, #gone, 2 do
    fail_key(P, a, spec, gone[i], now, tonumber(gone[i + 1]))
    n = n + 1
  end
  return n
end


-- begin: the admin's locks, the allowlist, the rules' locks, then the
-- limits; only when every limit has room is a place reserved under each.
local function begin(keys, args)
  local a = cjson.decode(args[1])
  local P = a.p
  local now = now_ms(P)
  local out = {now = now}
  for _, k in ipairs(a.admin) do
    local l = live_lock(P, a, k, now)
    if l then
      out.kind = 'locked'
      out.locks = {lock_view(k, l, 0)}
      return cjson.encode(out)
    end
  end
  if a.allow then
    out.kind = 'allowlisted'
    return cjson.encode(out)
  end
  local specs = a.keys
  out.familiar = false
  if a.fam then
    local t = redis.call('ZSCORE', P .. 'fam:' .. a.fam.user, a.fam.source)
    if t and tonumber(t) > now - a.fam.remember then
      specs = a.fam.keys
      out.familiar = true
    end
  end
  local locked = {}
  local abandoned = 0
  for _, s in ipairs(specs) do
    abandoned = abandoned + settle(P, a, s, now)
    local l = live_lock(P, a, s.k, now)
    if l then table.insert(locked, {s.k, l, redis.call('ZCARD', P .. 'f:' .. s.k)}) end
  end
  for _, k in ipairs(a.others) do
    local l = live_lock(P, a, k, now)
    if l then table.insert(locked, {k, l, 0}) end
  end
  out.abandoned = abandoned
  if #locked > 0 then
    out.kind = 'locked'
    out.locks = {}
    for _, x in ipairs(locked) do
      local k, l = x[1], x[2]
      if not a.dry and a.extend and l.by == 'rule' and l['until'] >= 0 and l.len >= 0 then
        local new = math.max(now + l.len + extra(l.jit), l['until'])
        if new ~= l['until'] then
          l['until'] = new
          set_lock(P, k, l)
        end
      end
      table.insert(out.locks, lock_view(k, l, x[3]))
    end
    return cjson.encode(out)
  end
  -- Exactness: failures counted plus places held may not pass the limit.
  local closest, climit, cfail = nil, 1, 0
  for i, s in ipairs(specs) do
    local r = P .. 'r:' .. s.k
    local f = failures(P, s, now)
    local held = redis.call('ZCARD', r)
    if f + held >= s.limit then
      out.kind = 'busy'
      out.i = i
      out.failures = f
      return cjson.encode(out)
    end
    local used = f + held
    -- The local engine's comparison, term for term, so both name the same rule.
    if closest == nil or used * climit > cfail * s.limit then
      closest, climit, cfail = i, s.limit, f
    end
  end
  out.kind = 'clear'
  out.i = closest
  out.failures = cfail
  if not a.dry then
    for _, s in ipairs(specs) do
      local r = P .. 'r:' .. s.k
      redis.call('ZADD', r, now + a.lease, a.id)
      local ttl = redis.call('PTTL', r)
      if ttl < a.lease_ttl then redis.call('PEXPIRE', r, a.lease_ttl) end
    end
  end
  return cjson.encode(out)
end

local function fail(keys, args)
  local a = cjson.decode(args[1])
  local P = a.p
  local now = now_ms(P)
  local at = now
  if a.at and a.at < now then at = a.at end
  local made = {}
  for _, s in ipairs(a.keys) do
    settle(P, a, s, now)
    local l = fail_key(P, a, s, a.id, now, at)
    if l then table.insert(made, l) end
  end
  return cjson.encode({now = now, locked = made})
end

-- An attempt's end without a failure: its places are freed; a root
-- success also clears the user's failures and makes the source familiar.
local function finish(keys, args)
  local a = cjson.decode(args[1])
  local P = a.p
  local now = now_ms(P)
  for _, k in ipairs(a.keys) do redis.call('ZREM', P .. 'r:' .. k, a.id) end
  for _, k in ipairs(a.reset or {}) do redis.call('DEL', P .. 'f:' .. k) end
  if a.fam then
    local f = P .. 'fam:' .. a.fam.user
    redis.call('ZADD', f, now, a.fam.source)
    redis.call('PEXPIRE', f, a.fam.remember)
  end
  return cjson.encode({now = now})
end

-- A code is awaited: the attempt's places get a fresh deadline.
local function hold(keys, args)
  local a = cjson.decode(args[1])
  local P = a.p
  local now = now_ms(P)
  local n = 0
  for _, k in ipairs(a.keys) do
    local r = P .. 'r:' .. k
    n = n + redis.call('ZADD', r, 'XX', 'CH', now + a.lease, a.id)
    redis.call('PEXPIRE', r, a.lease_ttl)
  end
  return cjson.encode({now = now, held = n})
end

local function admin_lock(keys, args)
  local a = cjson.decode(args[1])
  local P = a.p
  local now = now_ms(P)
  local l = {since = now, by = 'admin', uid = tostring(a.uid), why = a.why}
  if a.len >= 0 then l['until'] = now + a.len; l.len = a.len else l['until'] = -1; l.len = -1 end
  set_lock(P, a.k, l)
  if a.user then index_key(P, {k = a.k, user = a.user}, math.max(a.len, DAY)) end
  if a.rhost then index_key(P, {k = a.k, rhost = a.rhost}, math.max(a.len, DAY)) end
  event(P, a, {'kind', 'locked', 'key', a.k, 'at', now, 'until', l['until'],
    'by', 'uid=' .. a.uid, 'why', a.why})
  return cjson.encode({now = now, locked = {lock_view(a.k, l, 0)}})
end

-- Puts back a lock a failover may have lost (its primary died before a
-- replica had it): set when the key holds none that lasts as long, and
-- announced then, so every host's mirror has it again. Idempotent.
local function assert_lock(keys, args)
  local a = cjson.decode(args[1])
  local P = a.p
  local now = now_ms(P)
  local l = a.lock
  local have = live_lock(P, a, l.k, now)
  local ends = function(x) if x['until'] < 0 then return math.huge end return x['until'] end
  if (l['until'] >= 0 and l['until'] <= now) or (have and ends(have) >= ends(l)) then
    return cjson.encode({now = now, asserted = false})
  end
  set_lock(P, l.k, {since = l.since, ['until'] = l['until'], len = l.len, by = l.by,
    uid = l.uid, why = l.why})
  local by = nil
  if l.by == 'admin' then by = 'uid=' .. (l.uid or '') end
  event(P, a, {'kind', 'locked', 'key', l.k, 'at', l.since, 'until', l['until'],
    'by', by, 'why', l.why, 'failures', l.failures})
  return cjson.encode({now = now, asserted = true})
end

-- Clears keys: the lock, failures and history, so an unlock resets every
-- timer of the key. Places held by attempts in flight stay theirs.
local function unlock(keys, args)
  local a = cjson.decode(args[1])
  local P = a.p
  local now = now_ms(P)
  local lifted, cleared = {}, 0
  for _, k in ipairs(a.keys) do
    local l = lock_of(P, k)
    local n = redis.call('DEL', P .. 'f:' .. k, P .. 'h:' .. k)
    if l then
      drop_lock(P, k)
      n = n + 1
      table.insert(lifted, k)
      event(P, a, {'kind', 'unlocked', 'key', k, 'at', now, 'by', a.by})
    end
    if n > 0 then cleared = cleared + 1 end
  end
  return cjson.encode({now = now, lifted = lifted, cleared = cleared})
end

-- Ends locks whose time is up, so that every host hears of it even when no
-- attempt touches them.
local function sweep(keys, args)
  local a = cjson.decode(args[1])
  local P = a.p
  local now = now_ms(P)
  local due = redis.call('ZRANGEBYSCORE', P .. 'locks', '-inf', now, 'LIMIT', 0, a.max or 256)
  for _, k in ipairs(due) do
    local l = lock_of(P, k)
    if l then expire_lock(P, a, k, l) else drop_lock(P, k) end
  end
  return cjson.encode({now = now, ended = #due})
end

-- What is held on some keys, changing nothing.
local function state(keys, args)
  local a = cjson.decode(args[1])
  local P = a.p
  local out = {}
  for _, k in ipairs(a.keys) do
    local l = lock_of(P, k)
    local f = redis.call('ZRANGE', P .. 'f:' .. k, 0, -1, 'WITHSCORES')
    local h = redis.call('ZRANGE', P .. 'h:' .. k, 0, -1, 'WITHSCORES')
    local fs, hs = {}, {}
    for i = 2, #f, 2 do table.insert(fs, tonumber(f[i])) end
    for i = 2, #h, 2 do table.insert(hs, tonumber(h[i])) end
    local e = {k = k, failures = fs, lockouts = hs,
      held = redis.call('ZCARD', P .. 'r:' .. k)}
    if l then e.lock = lock_view(k, l, #fs) end
    table.insert(out, e)
  end
  return cjson.encode(out)
end

-- TOTP records, sealed by the hosts (Redis never sees a secret): replaced
-- only if unchanged since the caller read them, so two hosts' changes
-- cannot overwrite each other.
local function totp_put(keys, args)
  local a = cjson.decode(args[1])
  local h = a.p .. 'totp'
  local cur = redis.call('HGET', h, a.user) or ''
  if cur ~= (a.old or '') then return cjson.encode({ok = false}) end
  if (a.new or '') == '' then
    redis.call('HDEL', h, a.user)
  else
    redis.call('HSET', h, a.user, a.new)
  end
  return cjson.encode({ok = true})
end

-- Each time step once per user across the fleet: a code seen on one host
-- cannot be used on another.
local function totp_step(keys, args)
  local a = cjson.decode(args[1])
  local k = a.p .. 'tstep:' .. a.user
  local last = tonumber(redis.call('GET', k) or '0')
  if a.step <= last then return cjson.encode({ok = false, last = last}) end
  redis.call('SET', k, a.step, 'PX', 86400000)
  return cjson.encode({ok = true, last = a.step})
end

redis.register_function('warden_begin', begin)
redis.register_function('warden_totp_put', totp_put)
redis.register_function('warden_totp_step', totp_step)
redis.register_function('warden_fail', fail)
redis.register_function('warden_finish', finish)
redis.register_function('warden_hold', hold)
redis.register_function('warden_assert', assert_lock)
redis.register_function('warden_lock', admin_lock)
redis.register_function('warden_unlock', unlock)
redis.register_function('warden_sweep', sweep)
redis.register_function{function_name = 'warden_state', callback = state, flags = {'no-writes'}}
