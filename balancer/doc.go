// Package balancer picks, for each dispatch, one healthy instance of a
// service. It sits between rule matching and dispatch in the router's
// pipeline: discovery feeds it instance snapshots through Update, the router
// asks it for an Endpoint with Pick and reports the outcome with Done.
//
// Per-instance statistics (peak-EWMA latency, in-flight count, consecutive
// failures, ejection state) live on long-lived Endpoints keyed by instance
// (Consul node and service ID), so they survive snapshot swaps. Each swap
// publishes a new immutable pool through an atomic.Pointer; Pick loads it
// once, never blocks, never does I/O and does not allocate.
//
// The default algorithm, peak_ewma, follows Finagle's and Linkerd's
// PeakEWMA: power of two random choices comparing
// latency * (1 + in-flight / weight), where latency jumps to any slower
// sample and otherwise decays exponentially, so slow or failing instances
// are avoided and then probed again after a while. The two candidates are
// drawn by weight, and a duel between instances with equal load whose
// average latencies are within 25% of each other is settled by a coin, so
// that equally fast instances share traffic in proportion to their weights.
package balancer
