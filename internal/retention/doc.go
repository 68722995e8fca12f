// Package retention watches the consumed streams and, when asked, trims
// them safely. Every pass it reads each stream's consumer groups (all of
// them, not only the gateway's) and publishes what it saw: the lag and
// pending gauges, the age of the oldest unfinished entry, and the snapshot
// behind GET /streams. With retention "acked" it then trims each stream
// with XTRIM MINID up to the oldest entry that some group has not finished
// (pending, or not yet read), never inside the keep window. It also bounds
// the dead-letter stream when a maximum length is set, logging the IDs it
// drops.
package retention
