// Package backoff is the gateway's one capped, jittered exponential wait,
// used by every loop that retries a failed call (the router's reads and
// group creation, the Consul watches).
package backoff
