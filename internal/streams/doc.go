// Package streams is the Redis Streams adapter: it builds the Redis client
// (single node or Cluster, AUTH, TLS) and wraps the commands the router's
// pipeline needs: XGROUP CREATE, XREADGROUP, XAUTOCLAIM, XPENDING, XCLAIM,
// pipelined XACK, and XADD for dead letters and replies. It decides nothing:
// the router owns the flow.
package streams
