// Package dispatch is the HTTP adapter: it sends one router.Request to one
// instance with fasthttp's HostClient (one per instance address) and
// reports the answer as a router.Result. It never picks instances and
// never retries on another instance: the router does both. Its only resend
// is a request that got no answer byte at all on a connection that turned
// out closed (see resendIf), as fasthttp does for idempotent requests;
// every request carries an Idempotency-Key.
package dispatch
