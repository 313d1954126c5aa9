import { CREDIT_EPSILON, MIN_LEVEL_MILLI } from './bucket-math';

/**
 * Lua scripts of RedisBucketStore. Each runs atomically in Redis, reads the time from
 * `redis.call('TIME')` (never from a gateway) and follows `bucket-math.ts` step by step, with
 * times in microseconds instead of milliseconds.
 *
 * Cost is what shapes them: inside a script every `redis.call` costs about a microsecond of
 * Redis CPU, more than the arithmetic, and with 5 scopes Redis is the bottleneck. So all reads
 * of a request are one MGET (reservation, every bucket, every policy), and each bucket is
 * written with one `SET ... PX` (a string carries its TTL; a hash needs HSET and PEXPIRE).
 * Reserve is 8 commands, settle 8, where the first version with hashes (HMGET per key,
 * HSET + PEXPIRE per write) took 23 and 19: raw EVALSHA of the scripts at 64 in flight, 5
 * scopes, on a private local Redis 7.0, went from about 16k to 22k reserve+settle pairs/s.
 *
 * Values (see redis-keys.ts):
 * - bucket state: "<level> <at>", level in integer milli-tokens, at in microseconds of the
 *   Redis clock (a double: it keeps the fraction of a microsecond that refill left over);
 * - policy override: JSON with string fields {"c": tokens, "cm": milli-tokens, "r": tokens/s},
 *   only those an operator set (strings, because cjson would print numbers with 14 digits);
 * - reservation: JSON array [tokens, "<type>:<id>", ...].
 *
 * Conventions:
 * - Levels are integer milli-tokens; rates are milli-tokens per millisecond (= tokens/s).
 * - Numbers are written with 17 significant digits (`%.17g`), which round-trips any double.
 * - Replies: integers only where the value is a whole number within ±2^53 (levels,
 *   refunds); anything else (a retry wait that may be huge) is sent as a string.
 *
 * Settle reaches bucket and policy keys that are named in the reservation record rather than
 * in KEYS. They share the record's hash tag, so on Redis Cluster they live in the same slot on
 * the same node, which Redis 7 accepts for scripts without flags.
 */

/** Longest key TTL set; a bucket that needs longer to refill simply has no TTL. */
export const MAX_BUCKET_TTL_MS = 2 ** 40;

const PRELUDE = `
local EPS = ${CREDIT_EPSILON}
local MIN_LEVEL = ${MIN_LEVEL_MILLI}
local MAX_TTL = ${MAX_BUCKET_TTL_MS}

-- Microseconds on the Redis clock.
local function now_us()
  local t = redis.call('TIME')
  return t[1] * 1000000 + t[2]
end

-- Effective capacity (milli) and rate: the override's fields, else the defaults given.
local function policy(raw, cap, rate)
  if not raw then return cap, rate end
  local o = cjson.decode(raw)
  return tonumber(o.cm) or cap, tonumber(o.r) or rate
end

-- Level at now and the instant it counts from (bucket-math refill). No state = full.
local function refill(raw, cap, rate, now)
  if not raw then return cap, now end
  local sep = string.find(raw, ' ', 1, true)
  local level, at = tonumber(string.sub(raw, 1, sep - 1)), tonumber(string.sub(raw, sep + 1))
  if level >= cap then return cap, now end
  local elapsed = (now - at) / 1000
  if not (elapsed > 0) or rate <= 0 then return level, now end
  local gained = math.floor(rate * elapsed + EPS)
  level = level + gained
  if level >= cap then return cap, now end
  return level, math.min(now, at + gained / rate * 1000)
end

-- Write a bucket back. Full reads the same as absent, so a full bucket is deleted. Otherwise
-- the key expires margin ms after it would read full; one that never refills has no TTL.
local function save(bkey, level, at, cap, rate, now, margin)
  if level >= cap then
    redis.call('DEL', bkey)
    return
  end
  local value = string.format('%.17g %.17g', level, at)
  if rate > 0 then
    local ttl = math.ceil((cap - level) / rate - (now - at) / 1000 + margin)
    if ttl < MAX_TTL then
      if ttl < 1 then ttl = 1 end
      redis.call('SET', bkey, value, 'PX', ttl)
      return
    end
  end
  redis.call('SET', bkey, value)
end
`;

/**
 * KEYS: [record, bucket_1, ..., bucket_n, policy_1, ..., policy_n] (distinct scopes).
 * ARGV: [need (milli), record TTL ms, TTL margin ms, tokens, key prefix,
 *        default capacity_1 (milli), default rate_1, ..., default capacity_n, default rate_n].
 * Reply: [status, index, wait, level_1, policy_1, ..., level_n, policy_n]
 *   status 1 admitted (levels after the charge), 0 insufficient, 2 too_large, -1 the
 *   reservation id is open (reply has only the status). index: 1-based failing scope.
 *   wait: ms as a string, or nil when the failing scope never refills.
 *   policy_i: the override's JSON, nil where the defaults apply.
 */
export const RESERVE_SCRIPT = `${PRELUDE}
local n = (#KEYS - 1) / 2
local got = redis.call('MGET', unpack(KEYS))
if got[1] then return {-1} end
local need = tonumber(ARGV[1])
local margin = tonumber(ARGV[3])
local plen = #ARGV[5]
local now = now_us()

local caps, rates, levels, ats = {}, {}, {}, {}
for i = 1, n do
  caps[i], rates[i] = policy(got[n + 1 + i], tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i]))
  levels[i], ats[i] = refill(got[1 + i], caps[i], rates[i], now)
end

-- bucket-math decideReserve: too_large first, else the failing scope with the longest wait
-- (math.huge = never; the first of equal waits wins).
local status, index, wait = 1, 0, false
for i = 1, n do
  if need > caps[i] then
    status, index = 2, i
    break
  end
end
if status == 1 then
  local worst = -1
  for i = 1, n do
    if levels[i] < need then
      local w = math.huge
      if rates[i] > 0 then w = math.ceil((need - levels[i]) / rates[i]) end
      if w > worst then worst, index = w, i end
    end
  end
  if index > 0 then
    status = 0
    if worst < math.huge then wait = string.format('%.17g', worst) end
  end
end

if status == 1 then
  local record = { ARGV[4] }
  for i = 1, n do
    levels[i] = levels[i] - need
    save(KEYS[1 + i], levels[i], ats[i], caps[i], rates[i], now, margin)
    record[i + 1] = string.sub(KEYS[1 + i], plen + 3)
  end
  redis.call('SET', KEYS[1], cjson.encode(record), 'PX', ARGV[2])
end

local reply = { status, index, wait }
for i = 1, n do
  reply[2 * i + 2] = levels[i]
  reply[2 * i + 3] = got[n + 1 + i]
end
return reply
`;

/**
 * KEYS: [record].
 * ARGV: [actual tokens, key prefix, TTL margin ms, then per scope type: name, default
 *        capacity (milli), default rate].
 * Reply: [applied (0/1), refunded tokens (negative = extra charge)].
 */
export const SETTLE_SCRIPT = `${PRELUDE}
local raw = redis.call('GETDEL', KEYS[1])
if not raw then return {0, 0} end
local record = cjson.decode(raw)
local refunded = tonumber(record[1]) - tonumber(ARGV[1])
local delta = refunded * 1000
local n = #record - 1
if delta ~= 0 and n > 0 then
  local prefix = ARGV[2]
  local margin = tonumber(ARGV[3])
  local defaults = {}
  for i = 4, #ARGV, 3 do
    defaults[ARGV[i]] = { tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]) }
  end
  local keys = {}
  for i = 1, n do
    keys[i] = prefix .. 'b:' .. record[i + 1]
    keys[n + i] = prefix .. 'p:' .. record[i + 1]
  end
  local got = redis.call('MGET', unpack(keys))
  local now = now_us()
  for i = 1, n do
    local d = defaults[string.match(record[i + 1], '^[^:]*')]
    local cap, rate = policy(got[n + i], d[1], d[2])
    local level, at = refill(got[i], cap, rate, now)
    level = math.max(MIN_LEVEL, math.min(cap, level + delta))
    save(keys[i], level, at, cap, rate, now, margin)
  end
end
return {1, refunded}
`;

/**
 * KEYS: [bucket, policy]. ARGV: [default capacity (milli), default rate].
 * Reply: [level, policy JSON or nil]. Writes nothing.
 */
export const GET_BUCKET_SCRIPT = `${PRELUDE}
local got = redis.call('MGET', KEYS[1], KEYS[2])
local cap, rate = policy(got[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
local level = refill(got[1], cap, rate, now_us())
return { level, got[2] }
`;

/**
 * KEYS: [bucket, policy].
 * ARGV: [default capacity (milli), default rate, TTL margin ms,
 *        new capacity (tokens) or '', new capacity (milli) or '', new rate or ''].
 * Brings the level up to now under the old policy, stores the override fields given, then
 * keeps the level, clamped to the new capacity, and resets the key's TTL for the new policy.
 * Reply: as GET_BUCKET_SCRIPT, after the change.
 */
export const SET_POLICY_SCRIPT = `${PRELUDE}
local def_cap, def_rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local got = redis.call('MGET', KEYS[1], KEYS[2])
local now = now_us()
local cap, rate = policy(got[2], def_cap, def_rate)
local level, at = refill(got[1], cap, rate, now)
local raw = got[2]
if ARGV[4] ~= '' or ARGV[6] ~= '' then
  local o = raw and cjson.decode(raw) or {}
  if ARGV[4] ~= '' then o.c, o.cm = ARGV[4], ARGV[5] end
  if ARGV[6] ~= '' then o.r = ARGV[6] end
  raw = cjson.encode(o)
  redis.call('SET', KEYS[2], raw)
end
cap, rate = policy(raw, def_cap, def_rate)
if level > cap then level = cap end
save(KEYS[1], level, at, cap, rate, now, tonumber(ARGV[3]))
return { level, raw }
`;
