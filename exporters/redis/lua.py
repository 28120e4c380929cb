"""The store's one write script: a shard's fenced batch, its roll-ups and its leaderboards, atomically.

Why a script: a batch's counts for one shard, that shard's offset fence and its leaderboards
must change together or not at all, and on Redis Cluster that means one call on one hash slot.
The script compares each partition's fence with the offset the writer last saw (compare and
set) and only then adds the batch's changes, so a change is applied exactly once:

- every fence reads what the writer expected: apply, move the fences, reply OK;
- every fence already reads the batch's new offset: the batch was applied (a retried call
  whose reply was lost), reply DONE and change nothing;
- otherwise: reply CONFLICT with what the fences hold; the writer re-reads and recomputes
  (another writer moved them), or stops if a fence went backwards (Redis lost writes).

Leaderboards: `w:{W}` holds each entity's totals over every minute after `wstate[W]`; the
script first rolls `wstate[W]` up to `now - W` minutes, subtracting the minutes that leave
(the entity's minute bucket, or its hour roll-up when a whole hour leaves, read from keys built
from the prefixes in `ARGV`), then adds
the batch's changes to every window whose span holds their minute. A late record for a minute
that already left a window is in the buckets but not in that window, which is what the window
means. Entities whose window volume drops to zero leave the leaderboard.

Arguments (built by exporters/redis/aggregates.py; the key prefixes come from
stream_app/pipeline/keys.py, which owns the formats: `{minutes prefix}{aggregate}:{hour}` and
`{hours prefix}{aggregate}:{day}`, all in the shard's one hash slot):
  KEYS[1] fence hash, KEYS[2] window-state hash, then 3 keys per window (totals, by volume,
  by share).
  ARGV: now_minute, share_min_volume, minute_prefix, hour_prefix, now, minute_retention_s,
        retention_s, n_parts, (field, expected_offset, new_state) * n_parts,
        n_windows, window_seconds * n_windows,
        n_groups, (aggregate, ranked, "minute,negative,neutral,positive,score_micro;...") * n_groups
  ranked is "1" for `ent:{entity}` aggregates (the leaderboards' members are those keys) and ""
  for source and per-source aggregates. A minute past the minute retention updates only its hour; one past the retention
  nothing (it would expire on arrival).
"""

from __future__ import annotations

APPLY = r"""
local function parse(raw)
  if not raw then return 0, 0, 0, 0 end
  local a, b, c, d = string.match(raw, '^(-?%d+),(-?%d+),(-?%d+),(-?%d+)$')
  return tonumber(a), tonumber(b), tonumber(c), tonumber(d)
end
local function fmt(a, b, c, d)
  return string.format('%.0f,%.0f,%.0f,%.0f', a, b, c, d)
end
local function offset_of(raw)
  if not raw then return -1 end
  return tonumber(string.match(raw, '^(-?%d+)'))
end
local SHARE_SCALE = 1000000000

local function rank(hkey, vkey, skey, ent, n, u, p, m, share_min)
  local vol = n + u + p
  if vol <= 0 then
    redis.call('HDEL', hkey, ent)
    redis.call('ZREM', vkey, ent)
    redis.call('ZREM', skey, ent)
    return
  end
  redis.call('HSET', hkey, ent, fmt(n, u, p, m))
  redis.call('ZADD', vkey, vol, ent)
  if vol >= share_min then
    local share = math.floor(n * 1000000 / vol)
    redis.call('ZADD', skey, share * SHARE_SCALE + math.min(vol, SHARE_SCALE - 1), ent)
  else
    redis.call('ZREM', skey, ent)
  end
end

local fence_key, wstate_key = KEYS[1], KEYS[2]
local now_minute = tonumber(ARGV[1])
local unpack = unpack or table.unpack
local share_min = tonumber(ARGV[2])
local minute_prefix, hour_prefix = ARGV[3], ARGV[4]
local now, minute_retention, retention = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local RESET_MARGIN = 600
local i = 8
local nparts = tonumber(ARGV[i]); i = i + 1
local parts, seen = {}, {}
local all_expected, all_done = true, true
for p = 1, nparts do
  local field, expected, new = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  i = i + 3
  local cur = redis.call('HGET', fence_key, field)
  local cur_offset = offset_of(cur)
  if cur_offset ~= expected then all_expected = false end
  if cur_offset ~= offset_of(new) then all_done = false end
  parts[p] = {field, new}
  seen[#seen + 1] = field
  seen[#seen + 1] = cur or ''
end
if nparts > 0 and not all_expected then
  if all_done then return {'DONE'} end
  local out = {'CONFLICT'}
  for j = 1, #seen do out[#out + 1] = seen[j] end
  return out
end

local nwin = tonumber(ARGV[i]); i = i + 1
local wins = {}
for w = 1, nwin do
  local span = tonumber(ARGV[i])
  i = i + 1
  local hkey, vkey, skey = KEYS[3 + (w - 1) * 3], KEYS[4 + (w - 1) * 3], KEYS[5 + (w - 1) * 3]
  local target = now_minute - span
  local s = tonumber(redis.call('HGET', wstate_key, tostring(span)) or '')
  if s == nil then
    s = target
  elseif target - s >= span + RESET_MARGIN then
    -- Idle for longer than the window and the future-time bound: everything in it has left.
    redis.call('DEL', hkey, vkey, skey)
    s = target
  end
  while s < target do
    local entries = redis.call('HGETALL', hkey)
    if #entries == 0 then
      s = target
      break
    end
    local first = s + 60
    local whole_hour = (first % 3600 == 0) and (first + 3600 - 60 <= target)
    local key_suffix, field, last
    if whole_hour then
      key_suffix = ':' .. tostring(first - (first % 86400))
      field = tostring((first % 86400) / 3600)
      last = first + 3600 - 60
    else
      key_suffix = ':' .. tostring(first - (first % 3600))
      field = tostring((first % 3600) / 60)
      last = first
    end
    local prefix = whole_hour and hour_prefix or minute_prefix
    for j = 1, #entries, 2 do
      local ent = entries[j]
      local gone = redis.call('HGET', prefix .. ent .. key_suffix, field)
      if gone then
        local a, b, c, d = parse(entries[j + 1])
        local x, y, z, q = parse(gone)
        rank(hkey, vkey, skey, ent, a - x, b - y, c - z, d - q, share_min)
      end
    end
    s = last
  end
  redis.call('HSET', wstate_key, tostring(span), s)
  wins[w] = {s, hkey, vkey, skey}
end

-- Changes, grouped by aggregate: each hash is read and written once per call, however many of its
-- minutes the batch touches (a replay or a rebuild touches many).
local function add_fields(key, adds, expire_at)
  local fields, order = {}, {}
  for field, d in pairs(adds) do
    order[#order + 1] = field
  end
  local current = redis.call('HMGET', key, unpack(order))
  local args = {}
  for j = 1, #order do
    local d = adds[order[j]]
    local a, b, c, e = parse(current[j])
    args[#args + 1] = order[j]
    args[#args + 1] = fmt(a + d[1], b + d[2], c + d[3], e + d[4])
  end
  redis.call('HSET', key, unpack(args))
  redis.call('EXPIREAT', key, expire_at, 'NX')
end
local function accumulate(t, k, n, u, p, m)
  local d = t[k]
  if d then d[1], d[2], d[3], d[4] = d[1] + n, d[2] + u, d[3] + p, d[4] + m
  else t[k] = {n, u, p, m} end
end

local ngroups = tonumber(ARGV[i]); i = i + 1
for g = 1, ngroups do
  local agg, ranked, packed = ARGV[i], ARGV[i + 1] == '1', ARGV[i + 2]
  i = i + 3
  local by_hour, by_day, by_window = {}, {}, {}
  for mm, n, u, p, m in string.gmatch(packed, '(%d+),(-?%d+),(-?%d+),(-?%d+),(-?%d+)') do
    local minute = tonumber(mm)
    n, u, p, m = tonumber(n), tonumber(u), tonumber(p), tonumber(m)
    local hour = minute - (minute % 3600)
    local day = minute - (minute % 86400)
    if day + 86400 + retention > now then
      if hour + 3600 + minute_retention > now then
        by_hour[hour] = by_hour[hour] or {}
        accumulate(by_hour[hour], tostring((minute % 3600) / 60), n, u, p, m)
      end
      by_day[day] = by_day[day] or {}
      accumulate(by_day[day], tostring((hour % 86400) / 3600), n, u, p, m)
      if ranked then
        for w = 1, nwin do
          if minute > wins[w][1] then accumulate(by_window, w, n, u, p, m) end
        end
      end
    end
  end
  for hour, adds in pairs(by_hour) do
    add_fields(minute_prefix .. agg .. ':' .. hour, adds, hour + 3600 + minute_retention)
  end
  for day, adds in pairs(by_day) do
    add_fields(hour_prefix .. agg .. ':' .. day, adds, day + 86400 + retention)
  end
  for w, d in pairs(by_window) do
    local win = wins[w]
    local x, y, z, q = parse(redis.call('HGET', win[2], agg))
    rank(win[2], win[3], win[4], agg, x + d[1], y + d[2], z + d[3], q + d[4], share_min)
  end
end
for p = 1, nparts do
  redis.call('HSET', fence_key, parts[p][1], parts[p][2])
end
return {'OK'}
"""
