// Package router is the gateway's pipeline and the only place that knows
// the whole flow: read entries from Redis Streams (new ones and idle ones
// claimed from dead replicas), match them against the active rule set, pick
// an instance, dispatch, and settle each entry: XACK once every matched
// route has a final outcome (delivered or dead-lettered), otherwise leave it
// pending in Redis to be retried.
//
// Backpressure: at most Config.MaxInflight entries are being processed; when
// every slot is taken the readers stop reading, so a burst waits in the
// stream. Each service has a concurrency cap and an admission queue of four
// times that cap: a stream's reader waits for room in the queues of the
// services a message goes to, so a saturated service holds back only the
// streams that feed it. A message whose service has no healthy instance is
// "parked": left pending with its delivery counter unchanged and made
// claimable again a second later, so it waits in Redis without holding a
// slot and without using up its deliveries.
//
// Lease: entries in flight longer than a third of ClaimIdle are re-claimed
// by this consumer (XCLAIM JUSTID), which resets their idle time, so another
// replica's XAUTOCLAIM never takes a message that is still being processed.
//
// Final outcomes write before the ack (failure.go): a dead-lettered route
// writes its on_failure event, then the dead letter, then the requester's
// reply; a delivered one its reply. Any failed write leaves the entry
// pending, so a crash repeats writes but never skips one.
//
// Ordered streams: a stream that a route with order_key reads is read by the
// replica that owns it (Deps.Owner, a lease) and by no other (see
// streammode.go, ordered.go). Its entries are not parked in Redis: each
// route's task retries in process until final; a route with order_key
// sends one message per key at a time, in stream order, and acks it
// (fenced, synchronously) before the key's next message (ordered_task.go).
package router
