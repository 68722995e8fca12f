package lease

import "github.com/redis/go-redis/v9"

// acquireScript takes a free lease (or one held by an earlier run of the
// same owner name, which is dead: consumer names are unique per replica)
// and returns the new fencing token, or nil when another owner holds it.
// KEYS: lease, fence. ARGV: owner, ttl ms.
var acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local owner = string.match(v, '^(.*) %d+$')
  if owner ~= ARGV[1] then return false end
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. t, 'PX', ARGV[2])
return t
`)

// renewScript extends the lease if it still holds value. KEYS: lease.
// ARGV: value, ttl ms. Returns 1, or 0 when the lease is not ours.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes the lease if it still holds value. KEYS: lease.
// ARGV: value.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// ackScript acknowledges entries only while the lease holds value.
// KEYS: lease, stream. ARGV: value, group, ids... Returns the XACK count,
// or -1 when the lease is not ours.
var ackScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
return redis.call('XACK', KEYS[2], ARGV[2], unpack(ARGV, 3))
`)

// countScript sets an entry's delivery counter (XCLAIM to the owner with
// RETRYCOUNT) only while the lease holds value, so a replica that lost the
// stream never takes an entry back from the new owner.
// KEYS: lease, stream. ARGV: value, group, consumer, id, count.
var countScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('XCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[4], 'RETRYCOUNT', ARGV[5], 'JUSTID')
return 1
`)
