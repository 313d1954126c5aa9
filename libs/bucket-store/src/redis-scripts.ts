import { CREDIT_EPSILON, MIN_LEVEL_MILLI, toMilli } from './bucket-math';
import { SCOPE_TYPES, StoreDefaults } from './bucket-store.interface';
import { resolveDefaults } from './bucket-store.validation';

/** A Lua number literal that reads back as exactly `value`. */
function luaNumber(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
  return `tonumber('${String(value)}')`;
}

/** A Lua string literal of `text`, any byte escaped as \ddd where it could matter. */
function luaString(text: string): string {
  let out = "'";
  for (const byte of Buffer.from(text, 'utf8')) {
    out +=
      byte >= 0x20 && byte < 0x7f && byte !== 0x27 && byte !== 0x5c
        ? String.fromCharCode(byte)
        : `\\${String(byte).padStart(3, '0')}`;
  }
  return `${out}'`;
}

/**
 * Lua scripts of RedisBucketStore. Each runs atomically in Redis, reads the time from
 * `redis.call('TIME')` (never from a gateway) and follows `bucket-math.ts` step by step, with
 * times in microseconds instead of milliseconds.
 *
 * Cost is what shapes them: with 5 scopes per request Redis is the bottleneck. What costs is
 * the fixed price of each script call (parsing the command, building KEYS and ARGV, the
 * reply), each `redis.call` inside a script (about 1 µs for a PSETEX, most of it the passage
 * between Lua and Redis), and each Lua string or table the script creates (0.1 to 0.3 µs);
 * the arithmetic is cheap. Hence:
 * - reserve and settle have no scripts of their own: the store coalesces the reserves and
 *   settles made in one event-loop turn (see redis-batcher.ts) into one call of the batch
 *   script, which reads every key once with a few MGETs, runs the requests in order on that
 *   state, and writes each changed key once at the end. Requests of a batch share the clock
 *   reading and the bucket keys they have in common (all of them the global bucket);
 * - the store does the string work where it is cheap, in Node: it sends the bucket and policy
 *   keys themselves, the reservation record ready to store, and the scopes of a request as
 *   positions in the batch's list of scopes, one character each;
 * - a settle of a reservation this store made says what the record should be; when the stored
 *   record is exactly that string the script takes the scopes from the request instead of
 *   parsing the record (any other record is parsed, so the stored value always decides);
 * - bucket state is two doubles packed with Lua's `struct` library, not text;
 * - TTLs go to PSETEX as strings, each formatted once per batch.
 * Measured on the bench (test/bench/bucket-store.bench.ts): Redis CPU per reserve (5 scopes)
 * plus settle went from about 47 µs as two separate scripts to about 16 µs in batches of
 * 16 of each, on a private Redis 7.0 on this machine.
 *
 * Values (see redis-keys.ts):
 * - bucket state: 17 bytes, a tag byte 1 then level and at as little-endian doubles
 *   (STATE_FORMAT); level in integer milli-tokens, at in microseconds of the Redis clock (it
 *   keeps the fraction of a microsecond that refill left over). Doubles round-trip exactly.
 *   The text "<level> <at>" written by earlier versions is still read;
 * - policy override: JSON with string fields {"c": tokens, "cm": milli-tokens, "r": tokens/s},
 *   only those an operator set (strings, because cjson would print numbers with 14 digits).
 *   Decoded only where an override exists, once per batch and scope;
 * - reservation: "<tokens>" then, per scope, " <bytes> <type>:<id>" (the length makes any id
 *   safe, spaces included), built by the store; a scope with a fixed charge (see below) is
 *   " *<amount> <bytes> <type>:<id>" instead. The JSON array [tokens, "<type>:<id>", ...]
 *   written by earlier versions is still read, and so is a record without fixed charges.
 *
 * Conventions:
 * - Levels are integer milli-tokens; rates are milli-tokens per millisecond (= tokens/s).
 * - Replies: integers only where the value is a whole number within ±2^53 (levels,
 *   refunds); anything else (a retry wait that may be huge) is sent as a string, with 17
 *   significant digits (`%.17g`), which round-trips any double. Absent values are `false` in
 *   Lua (nil in the reply), never nil inside a table.
 *
 * The batch script declares only the reservation keys; it reaches bucket and policy keys by
 * name. All of them carry the namespace's hash tag, so on Redis Cluster they live in the same
 * slot on the same node, which Redis 7 accepts for scripts without flags.
 */

/** Longest key TTL set; a bucket that needs longer to refill simply has no TTL. */
export const MAX_BUCKET_TTL_MS = 2 ** 40;

/** Keys per MGET or DEL inside a script: Lua's unpack() has a stack limit of about 8000. */
const KEYS_PER_CALL = 1_000;

/**
 * Bucket state as stored: a tag byte, then level and at as little-endian doubles (Lua's
 * `struct` library). Packing and unpacking two doubles costs a fraction of printing and
 * parsing them as text, and doubles round-trip exactly.
 */
export const STATE_FORMAT = '<Bdd';
export const STATE_TAG = 1;
export const STATE_BYTES = 17;

const PRELUDE = `
local EPS = ${CREDIT_EPSILON}
local MIN_LEVEL = ${MIN_LEVEL_MILLI}
local MAX_TTL = ${MAX_BUCKET_TTL_MS}
local STATE = '${STATE_FORMAT}'

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

-- A stored state as (level, at); false when there is none (the bucket reads full). Reads the
-- binary form and the text form "<level> <at>" written by earlier versions. A value that
-- does not parse gives nil, and arithmetic on it fails the request that reads it.
local function parse(raw)
  if not raw then return false, false end
  if #raw == ${STATE_BYTES} and string.byte(raw, 1) == ${STATE_TAG} then
    local _, level, at = struct.unpack(STATE, raw)
    return level, at
  end
  local sep = string.find(raw, ' ', 1, true)
  if not sep then return nil, nil end
  return tonumber(string.sub(raw, 1, sep - 1)), tonumber(string.sub(raw, sep + 1))
end

-- Level at now and the instant it counts from (bucket-math refill). No state = full.
local function refill(level, at, cap, rate, now)
  if level == false or level >= cap then return cap, now end
  local elapsed = (now - at) / 1000
  if not (elapsed > 0) or rate <= 0 then return level, now end
  local gained = math.floor(rate * elapsed + EPS)
  level = level + gained
  if level >= cap then return cap, now end
  return level, math.min(now, at + gained / rate * 1000)
end

-- TTL of a bucket key below capacity: margin ms after it would read full, at least 1 ms.
-- False when it never refills (or only after MAX_TTL): such a key keeps no TTL.
local function ttl_of(level, at, cap, rate, now, margin)
  if rate <= 0 then return false end
  local ttl = math.ceil((cap - level) / rate - (now - at) / 1000 + margin)
  if ttl >= MAX_TTL then return false end
  if ttl < 1 then return 1 end
  return ttl
end

-- Write one bucket back. Full reads the same as absent, so a full bucket is deleted.
local function save(bkey, level, at, cap, rate, now, margin)
  if level >= cap then
    redis.call('DEL', bkey)
    return
  end
  local value = struct.pack(STATE, ${STATE_TAG}, level, at)
  local ttl = ttl_of(level, at, cap, rate, now, margin)
  if ttl then
    redis.call('PSETEX', bkey, ttl, value)
  else
    redis.call('SET', bkey, value)
  end
end
`;

/**
 * Fixed charges (ReserveRequest.fixedCharges) come last among a request's scopes: the request
 * kinds 'f' and 'F' are 'r' and 'S' plus one more argument, the amounts of the last m scopes
 * separated by spaces. A scope with a fixed charge takes that amount instead of the tokens, and
 * gets it back only from a settle with 0 actual tokens. Requests without fixed charges use the
 * kinds without them, so their cost is unchanged.
 *
 * The batch script of a store: reserves and settles, processed in order, each on its own:
 * all-or-nothing per reserve, and an error in one request (a value that does not parse) fails
 * that request only, before it changes anything. The batch happens at one instant of the
 * Redis clock, so the result is the one the requests would have had as separate scripts run
 * back to back, and the answers are those of MemoryBucketStore.
 *
 * The store's constants (key prefix, reservation TTL, TTL margin, each type's default policy)
 * are written into the script rather than sent with every call.
 *
 * KEYS: the reservation key of each request, in request order.
 * ARGV: [w, the width of a position (see below),
 *        the types of the L listed scopes as one string, one digit per scope (the type's
 *        1-based place in SCOPE_TYPES), then their L bucket keys, then their L policy keys,
 *        then per request, in the order of KEYS:
 *          reserve: 'r' + its scopes, tokens, the reservation value to store;
 *                   or 'f' + its scopes, tokens, value, fixed amounts;
 *          settle:  's', actual tokens; or, when the store made the reservation and knows it:
 *                   'S' + its scopes, actual tokens, its tokens, its value;
 *                   or 'F' + its scopes, actual tokens, its tokens, its value, fixed amounts].
 * A request's scopes are positions (1-based) in the list, w characters per scope, each
 * character a base-64 digit written as the byte 48 + digit ("0" to "o").
 * Reply, flat: first the number of listed scopes with an override, then for each its position
 * and the override's JSON; then per request in order:
 *   reserve: status, then for status 0, 1, 2: index, wait, level_1..level_n
 *     status 1 admitted (levels after the charge), 0 insufficient, 2 too_large, -1 the
 *     reservation id is open (nothing follows). index: 1-based failing scope. wait: ms as a
 *     string, or nil when the failing scope never refills.
 *   settle: applied (1/0), refunded tokens (negative = extra charge).
 *   either, when the request failed: -2, the error message.
 */
export function batchScript(
  prefix: string,
  reservationTtlMs: number,
  idleTtlMarginMs: number,
  configured: StoreDefaults,
): string {
  const defaults = resolveDefaults(configured);
  const typeDefaults = SCOPE_TYPES.map(
    (type, i) =>
      `type_of['${type}'], type_cap[${i + 1}], type_rate[${i + 1}] = ${i + 1}, ` +
      `${luaNumber(toMilli(defaults[type].capacity))}, ${luaNumber(defaults[type].refillPerSec)}`,
  ).join('\n');
  return `${PRELUDE}
local CHUNK = ${KEYS_PER_CALL}
local R, S, SX, RF, SF = 114, 115, 83, 102, 70
local argv, keys_in = ARGV, KEYS
local call = redis.call
local byte, find, sub = string.byte, string.find, string.sub
local ceil, huge = math.ceil, math.huge
local spack = struct.pack

local function mget(keys)
  local n = #keys
  if n == 0 then return {} end
  if n <= CHUNK then return call('MGET', unpack(keys)) end
  local got = {}
  for s = 1, n, CHUNK do
    local part = call('MGET', unpack(keys, s, math.min(n, s + CHUNK - 1)))
    for k = 1, #part do got[s + k - 1] = part[k] end
  end
  return got
end

-- This store's constants: key prefix, reservation TTL (ms, as a string), TTL margin (ms),
-- and each scope type's default capacity (milli-tokens) and refill rate.
local prefix, record_ttl, margin = ${luaString(prefix)}, '${Math.ceil(reservationTtlMs)}', ${luaNumber(idleTtlMarginMs)}
local type_cap, type_rate, type_of = {}, {}, {}
${typeDefaults}
local pos = 1
local width = tonumber(argv[pos])
local types = argv[pos + 1]
local listed = #types
local first = pos + 2
pos = first + 2 * listed

-- Every scope the batch touches gets an index j; its state lives in these arrays. The listed
-- scopes come first. The arrays start at the size of the list (a table built from unpack()
-- is allocated at its size at once instead of growing step by step), filled with whatever.
-- level[j], at[j]: the bucket refilled to now. cap[j], rate[j]: its policy; no cap means its
-- state or override does not parse, which fails every request that uses it. stored[j]: its
-- key existed.
local function sized()
  if listed == 0 or listed > CHUNK then return {} end
  return { unpack(argv, first, first + listed - 1) }
end
local level, at, cap, rate, stored = sized(), sized(), sized(), sized(), sized()
for j = 1, listed do
  local t = byte(types, j) - 48
  cap[j], rate[j] = type_cap[t], type_rate[t]
end
local count = listed
local dirty = {}

-- Keys of scope j: in ARGV for a listed scope, else (met in a parsed reservation) in these.
local extra_bkey, extra_pkey = {}, {}
local function bucket_key(j)
  if j <= listed then return argv[first + j - 1] end
  return extra_bkey[j]
end

-- Requests: kind (byte of 'r', 's' or 'S') and the position in ARGV of its first argument.
local nreq = #keys_in
local kinds, starts = {}, {}
for i = 1, nreq do
  local kind = byte(argv[pos], 1)
  kinds[i], starts[i] = kind, pos
  if kind == R then
    pos = pos + 3
  elseif kind == S then
    pos = pos + 2
  elseif kind == SX or kind == RF then
    pos = pos + 4
  elseif kind == SF then
    pos = pos + 5
  else
    return redis.error_reply('unknown request ' .. tostring(argv[pos]))
  end
end

-- The scopes of request i (a reserve, or a settle with what it expects) into the array given.
local function scopes_of(i, into)
  local meta = argv[starts[i]]
  local n = (#meta - 1) / width
  if width == 1 then
    for k = 1, n do into[k] = byte(meta, k + 1) - 48 end
  else
    for k = 1, n do
      local v = 0
      for q = k * width - width + 2, k * width + 1 do v = v * 64 + byte(meta, q) - 48 end
      into[k] = v
    end
  end
  return n
end

-- The fixed amounts of request i ('f' or 'F') into the array given; how many (0 for others).
-- They belong to the last ones of its scopes.
local function fixed_of(i, into)
  local kind = kinds[i]
  local spec
  if kind == RF then
    spec = argv[starts[i] + 3]
  elseif kind == SF then
    spec = argv[starts[i] + 4]
  else
    return 0
  end
  local m = 0
  for v in string.gmatch(spec, '%S+') do
    m = m + 1
    into[m] = tonumber(v)
  end
  return m
end

-- A scope by "<type>:<id>", met in a stored reservation that had to be parsed.
local index_of
local function track(m)
  if not index_of then
    index_of = {}
    for j = 1, listed do index_of[argv[first + j - 1]] = j end
  end
  local b = prefix .. 'b:' .. m
  local j = index_of[b]
  if j then return j end
  local t = type_of[sub(m, 1, find(m, ':', 1, true) - 1)]
  count = count + 1
  extra_bkey[count], extra_pkey[count], index_of[b] = b, prefix .. 'p:' .. m, count
  cap[count], rate[count] = type_cap[t], type_rate[t]
  return count
end

-- The decimal number at byte p of s, and the position after it.
local function number_at(s, p)
  local q = find(s, ' ', p, true) or #s + 1
  local v = tonumber(sub(s, p, q - 1))
  if not v then error('number expected at ' .. p) end
  return v, q
end

-- A stored reservation as { tokens, scope indexes, fixed amounts by scope index or false }:
-- "<tokens>" then, per scope, " <length> <type>:<id>" or, with a fixed charge,
-- " *<amount> <length> <type>:<id>"; or, as written by earlier versions, JSON
-- [tokens, "<type>:<id>", ...].
local function parse_record(raw)
  local js, fx = {}, false
  if byte(raw, 1) == 91 then
    local o = cjson.decode(raw)
    for k = 2, #o do js[k - 1] = track(o[k]) end
    return { tonumber(o[1]), js, false }
  end
  local tokens, p = number_at(raw, 1)
  local n, len = 0, #raw
  while p < len do
    local amount = false
    if byte(raw, p + 1) == 42 then amount, p = number_at(raw, p + 2) end
    local size
    size, p = number_at(raw, p + 1)
    n = n + 1
    js[n] = track(sub(raw, p + 1, p + size))
    if amount then
      fx = fx or {}
      fx[n] = amount
    end
    p = p + size + 1
  end
  return { tokens, js, fx }
end

-- Reservations by key: a parsed stored one { tokens, scope indexes }; the index of the request
-- that describes it (a reserve of this batch that made it, or a settle whose expectation
-- matched it); false (none); or an error message (unparsable).
local records = {}
local got = mget(keys_in)
for i = 1, nreq do
  local key = keys_in[i]
  if records[key] == nil then
    local raw = got[i]
    if not raw then
      records[key] = false
    elseif (kinds[i] == SX or kinds[i] == SF) and raw == argv[starts[i] + 3] then
      records[key] = i
    else
      local ok, record = pcall(parse_record, raw)
      records[key] = ok and record or ('unreadable reservation: ' .. tostring(record))
    end
  end
end

-- The buckets and overrides of every scope, listed or met in a parsed reservation. Each
-- bucket is refilled to now once: the batch happens at one instant, so refilling again
-- before each request would credit nothing.
-- The reply starts with the overrides of listed scopes: how many, then (position, JSON) each.
local now = now_us()
local out, o = { 0 }, 1
-- The listed scopes' keys are one run of ARGV (bucket keys, then policy keys): one MGET.
local got_listed, got_bucket, got_policy = {}, {}, {}
if listed > 0 and 2 * listed <= CHUNK then
  got_listed = call('MGET', unpack(argv, first, first + 2 * listed - 1))
elseif listed > 0 then
  local keys = {}
  for k = 1, 2 * listed do keys[k] = argv[first + k - 1] end
  got_listed = mget(keys)
end
if count > listed then
  local kb, kp = {}, {}
  for j = listed + 1, count do kb[j - listed], kp[j - listed] = extra_bkey[j], extra_pkey[j] end
  got_bucket, got_policy = mget(kb), mget(kp)
end
for j = 1, count do
  local c, r = cap[j], rate[j]
  local raw, json
  if j <= listed then
    raw, json = got_listed[j], got_listed[listed + j]
  else
    raw, json = got_bucket[j - listed], got_policy[j - listed]
  end
  stored[j] = raw ~= false
  if json then
    local ok
    ok, c, r = pcall(policy, json, c, r)
    if not ok then c = nil end
    if j <= listed then
      out[o + 1], out[o + 2] = j, json
      o = o + 2
    end
  end
  local l, t = parse(raw)
  if c and l ~= nil and (l == false or t ~= nil) then
    level[j], at[j] = refill(l, t, c, r, now)
    cap[j], rate[j] = c, r
  else
    cap[j] = nil
  end
end
out[1] = (o - 1) / 2

-- Reservation keys to delete (settled), and scratch arrays of the request being processed:
-- new levels, scope indexes, fixed amounts, and (settle) each scope's fixed amount or false.
local dels, lv, js, fxs, fk = {}, {}, {}, {}, {}

local function reserve(i)
  local key = keys_in[i]
  if records[key] then
    o = o + 1
    out[o] = -1
    return
  end
  local tokens_need = tonumber(argv[starts[i] + 1]) * 1000
  local n = scopes_of(i, js)
  -- Scopes from first_fixed on take their fixed amount (fxs) instead of the tokens.
  local first_fixed = n - fixed_of(i, fxs) + 1

  -- bucket-math decideReserve: too_large first, else the failing scope with the longest
  -- wait (huge = never; the first of equal waits wins).
  local status, index, wait, worst = 1, 0, false, -1
  for k = 1, n do
    local j = js[k]
    local need = tokens_need
    if k >= first_fixed then need = fxs[k - first_fixed + 1] * 1000 end
    if need > cap[j] then
      if status ~= 2 then status, index = 2, k end
    elseif status ~= 2 then
      local l = level[j]
      if l < need then
        local r = rate[j]
        local w = huge
        if r > 0 then w = ceil((need - l) / r) end
        if w > worst then worst, index = w, k end
      end
    end
  end
  if status == 1 and index > 0 then
    status = 0
    if worst < huge then wait = string.format('%.17g', worst) end
  end

  out[o + 1], out[o + 2], out[o + 3] = status, index, wait
  o = o + 3
  if status == 1 then
    for k = 1, n do
      local j = js[k]
      local need = tokens_need
      if k >= first_fixed then need = fxs[k - first_fixed + 1] * 1000 end
      local l = level[j] - need
      level[j], dirty[j] = l, true
      out[o + k] = l
    end
    records[key] = i
  else
    for k = 1, n do out[o + k] = level[js[k]] end
  end
  o = o + n
end

local function settle(i)
  local key = keys_in[i]
  local record = records[key]
  if not record then
    out[o + 1], out[o + 2] = 0, 0
    o = o + 2
    return
  end
  local tokens, n
  local scopes = js
  -- fixed: fk[k] is scope k's fixed amount, or false.
  local fixed = false
  local kind = type(record)
  if kind == 'number' then
    -- Described by request r: a reserve that made it, or a settle whose expectation matched.
    local by = kinds[record]
    tokens = tonumber(argv[starts[record] + ((by == R or by == RF) and 1 or 2)])
    n = scopes_of(record, js)
    local m = fixed_of(record, fxs)
    if m > 0 then
      fixed = true
      for k = 1, n do
        if k > n - m then fk[k] = fxs[k - n + m] else fk[k] = false end
      end
    end
  elseif kind == 'table' then
    tokens, scopes = record[1], record[2]
    n = #scopes
    local fx = record[3]
    if fx then
      fixed = true
      for k = 1, n do fk[k] = fx[k] or false end
    end
  else
    error(record, 0)
  end
  local actual = tonumber(argv[starts[i] + 1])
  local refunded = tokens - actual
  local delta = refunded * 1000
  if delta ~= 0 or fixed then
    -- Every new level first: a scope whose state does not parse fails the request here,
    -- before anything changed.
    for k = 1, n do
      local j = scopes[k]
      local d = delta
      -- A fixed charge (a request counted) comes back only with a full refund.
      if fixed and fk[k] then d = actual == 0 and fk[k] * 1000 or 0 end
      local c, l = cap[j], level[j] + d
      if l > c then l = c elseif l < MIN_LEVEL then l = MIN_LEVEL end
      if d == 0 then lv[k] = false else lv[k] = l end
    end
    for k = 1, n do
      local j = scopes[k]
      local l = lv[k]
      if l then
        -- Full reads the same as no state: a later charge counts from now.
        if l >= cap[j] then at[j] = now end
        level[j], dirty[j] = l, true
      end
    end
  end
  records[key] = false
  dels[#dels + 1] = key
  out[o + 1], out[o + 2] = 1, refunded
  o = o + 2
end

-- One protected call for the whole run rather than one per request: a request that fails
-- does so before it changes anything or adds to the reply, so it is answered with its error and
-- the run goes on with the next one.
local current = 0
local function run(from)
  for i = from, nreq do
    current = i
    local kind = kinds[i]
    if kind == R or kind == RF then reserve(i) else settle(i) end
  end
end
local next_request = 1
while next_request <= nreq do
  local ok, err = pcall(run, next_request)
  if ok then break end
  out[o + 1], out[o + 2] = -2, tostring(err)
  o = o + 2
  next_request = current + 1
end

-- Write back each changed key once: deletions first (settled reservations, buckets that read
-- full) in one DEL, buckets without a TTL in one MSET, then the rest one by one. PSETEX rather
-- than SET ... PX: fewer arguments, measurably cheaper inside a script. A TTL goes to Redis as
-- a string; Lua's own number-to-string conversion is slow, and many buckets share a TTL, so
-- each is formatted once.
local plain, ttl_text = {}, {}
for j = 1, count do
  if dirty[j] then
    local l, t = level[j], at[j]
    if l >= cap[j] then
      if stored[j] then dels[#dels + 1] = bucket_key(j) end
    else
      local value = spack(STATE, ${STATE_TAG}, l, t)
      local ttl = ttl_of(l, t, cap[j], rate[j], now, margin)
      if ttl then
        local text = ttl_text[ttl]
        if not text then
          text = string.format('%d', ttl)
          ttl_text[ttl] = text
        end
        call('PSETEX', bucket_key(j), text, value)
      else
        plain[#plain + 1] = bucket_key(j)
        plain[#plain + 1] = value
      end
    end
  end
end
for s = 1, #dels, CHUNK do
  call('DEL', unpack(dels, s, math.min(#dels, s + CHUNK - 1)))
end
for s = 1, #plain, 2 * CHUNK do
  call('MSET', unpack(plain, s, math.min(#plain, s + 2 * CHUNK - 1)))
end
-- Reservations made here, after the deletions (an id settled and reserved again in one batch).
for i = 1, nreq do
  if (kinds[i] == R or kinds[i] == RF) and records[keys_in[i]] == i then
    call('PSETEX', keys_in[i], record_ttl, argv[starts[i] + 2])
  end
end
return out
`;
}

/**
 * KEYS: [bucket, policy]. ARGV: [default capacity (milli), default rate].
 * Reply: [level, policy JSON or nil]. Writes nothing.
 */
export const GET_BUCKET_SCRIPT = `${PRELUDE}
local got = redis.call('MGET', KEYS[1], KEYS[2])
local cap, rate = policy(got[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
local l, t = parse(got[1])
local level = refill(l, t, cap, rate, now_us())
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
local l, t = parse(got[1])
local level, at = refill(l, t, cap, rate, now)
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

/**
 * KEYS: [bucket, policy]. ARGV: [default capacity (milli), default rate, TTL margin ms,
 * target level (milli)]. Brings the level up to now, then lowers it to the target (floored at
 * the debt limit) when it is higher; a lower level is left alone. Reply: as GET_BUCKET_SCRIPT,
 * after the change.
 */
export const LOWER_LEVEL_SCRIPT = `${PRELUDE}
local got = redis.call('MGET', KEYS[1], KEYS[2])
local now = now_us()
local cap, rate = policy(got[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
local l, t = parse(got[1])
local level, at = refill(l, t, cap, rate, now)
local target = tonumber(ARGV[4])
if target < MIN_LEVEL then target = MIN_LEVEL end
if target < level then
  level = target
  save(KEYS[1], level, at, cap, rate, now, tonumber(ARGV[3]))
end
return { level, got[2] }
`;
