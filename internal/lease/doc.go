// Package lease gives each ordered stream one reader at a time across the
// gateway's replicas. A stream that a route with order_key reads must be
// consumed by a single replica, or two replicas would deliver one key's
// messages concurrently. Ownership is a lease in Redis:
//
//   - key gateway:lease:{STREAM}:GROUP holds "OWNER TOKEN" with a TTL
//     (SET NX PX); the token comes from INCR of gateway:lease:{STREAM}:GROUP:fence,
//     so every grant has a larger token than the one before it;
//   - the owner renews it every Interval with a compare-and-PEXPIRE script,
//     and considers it lost TTL-Margin after the start of its last
//     successful renewal, before Redis can let it expire, so two replicas
//     never both believe they own a stream;
//   - acknowledgements of an ordered stream go through a script that checks
//     the lease value first (fencing): a replica that lost its lease cannot
//     ack an entry the new owner is working on;
//   - a graceful stop or a handover deletes the key at once (compare-and-DEL).
//
// Replicas announce themselves in the sorted set gateway:lease:GROUP:replicas
// (score: heartbeat expiry in Unix ms). With n wanted streams and r live
// replicas, the replica of rank i (by name) targets n/r streams, plus one if
// i < n%r; one above its target hands streams over, one below takes free
// ones. A stream left free for a whole TTL is taken by anyone, so differing
// views of the replica set never leave a stream unread.
//
// The stream name is the keys' hash tag, so the scripts' keys (and the
// stream itself, for the fenced ack) live in one Redis Cluster slot.
package lease
